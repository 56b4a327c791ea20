//! [`Ledger`]: the probe permits of one pool that the agent handed to the hot path.
//!
//! The hot path takes and returns tokens (`ProbePool::tokens`) without saying which permit
//! they stand for; the ledger keeps the permits' ids and leases, and infers which are in use.

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;

use switchyard_core::ProbeOutcome;

use crate::breaker_shared::ProbePool;

/// A probe permit held by this process, and when its lease ends.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeldPermit {
    pub(crate) id: u64,
    pub(crate) expires_at_ms: u64,
}

/// Permits of one pool handed to the hot path, oldest first. The hot path takes tokens
/// without saying which permit, so permits are assumed taken in order: the first
/// `held.len() - tokens` are in use, the rest untaken.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    pub(crate) held: VecDeque<HeldPermit>,
    pub(crate) acquiring: bool,
}

/// Recorded probe outcomes, failures first: one failed probe re-opens the breaker whatever
/// the others say. (A probe permit dropped unrecorded never shows here: its token went back
/// to the pool, and an untaken token is released as unused when it expires or the breaker
/// leaves HALF_OPEN.)
pub(crate) fn outcome_counts(ok: u64, failed: u64) -> [(u64, ProbeOutcome); 2] {
    [(failed, ProbeOutcome::Failure), (ok, ProbeOutcome::Success)]
}

/// Drops expired permits from the front of `ledger`; an expired untaken permit also takes
/// its token back. Returns how many untaken permits were reclaimed.
pub(crate) fn expire(ledger: &mut Ledger, pool: &ProbePool, now_ms: u64) -> u32 {
    let mut reclaimed = 0;
    while let Some(front) = ledger.held.front() {
        if front.expires_at_ms > now_ms {
            break;
        }
        let untaken = pool.tokens.load(Relaxed) as usize;
        if untaken >= ledger.held.len() && pool.reclaim_token() {
            reclaimed += 1;
        }
        ledger.held.pop_front();
    }
    reclaimed
}

/// Takes back every untaken token; returns the permits they stood for (newest last).
pub(crate) fn reclaim_all(ledger: &mut Ledger, pool: &ProbePool) -> Vec<HeldPermit> {
    let mut out = Vec::new();
    while pool.reclaim_token() {
        match ledger.held.pop_back() {
            Some(p) => out.push(p),
            None => break,
        }
    }
    out
}
