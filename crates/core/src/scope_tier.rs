//! A scope's tier state machine: rule demand, hysteresis and operator pin.
//!
//! ```text
//!   demand > tier ──────────────▶ tier = demand at once (worsening is never delayed)
//!   demand < tier ──▶ PENDING(since, target = max demand seen while pending)
//!        │ demand >= tier again: pending dropped (the clock restarts next time)
//!        └ now >= since + recover_after_ms: tier = target
//!   override set ──▶ tier pinned; rules ignored until it expires or is cleared,
//!                    then the rule-derived demand applies at once
//! ```
//!
//! Keeping the *maximum* demand seen while pending means the tier improves only to a level
//! that has itself been continuously satisfied for `recover_after_ms`: a brief dip to FULL
//! followed by a DEGRADED demand does not jump the scope to FULL.

use serde::{Deserialize, Serialize};

use crate::Tier;
use crate::sla::ScopeLedger;

/// An operator's tier pin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TierPin {
    pub tier: Tier,
    pub reason: String,
    pub expires_at_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Pending {
    target: Tier,
    since_ms: u64,
}

/// The tier state of one scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeTier {
    tier: Tier,
    reason: String,
    since_ms: u64,
    pin: Option<TierPin>,
    pending: Option<Pending>,
    pub(crate) ledger: ScopeLedger,
    pub(crate) updated_index: u64,
}

/// A tier change: from, to, reason.
pub(crate) type TierChange = (Tier, Tier, String);

impl ScopeTier {
    /// A scope at FULL.
    pub fn new(now_ms: u64) -> Self {
        Self {
            tier: Tier::Full,
            reason: "initial".to_owned(),
            since_ms: now_ms,
            pin: None,
            pending: None,
            ledger: ScopeLedger::starting(now_ms),
            updated_index: 0,
        }
    }

    /// The current tier.
    pub fn tier(&self) -> Tier {
        self.tier
    }

    /// Why the scope is in its tier.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// When the tier was entered.
    pub fn since_ms(&self) -> u64 {
        self.since_ms
    }

    /// The pinned tier, if any.
    pub fn override_tier(&self) -> Option<Tier> {
        self.pin.as_ref().map(|p| p.tier)
    }

    /// When the pin ends.
    pub fn override_expires_at_ms(&self) -> Option<u64> {
        self.pin.as_ref().and_then(|p| p.expires_at_ms)
    }

    /// True when evaluating the scope without tier rules would change nothing: FULL, not
    /// pinned, no improvement pending.
    pub(crate) fn at_rest(&self) -> bool {
        self.tier == Tier::Full && self.pin.is_none() && self.pending.is_none()
    }

    /// True when a pin is active at `now_ms` (not yet expired).
    pub(crate) fn pinned_at(&self, now_ms: u64) -> bool {
        self.pin
            .as_ref()
            .is_some_and(|p| p.expires_at_ms.is_none_or(|e| now_ms < e))
    }

    fn set(&mut self, now_ms: u64, to: Tier, reason: String) -> Option<TierChange> {
        let from = self.tier;
        self.reason.clone_from(&reason);
        if from == to {
            return None;
        }
        self.tier = to;
        self.since_ms = now_ms;
        Some((from, to, reason))
    }

    /// Applies the rules' current demand with hysteresis. Ignored while pinned.
    pub(crate) fn apply_demand(
        &mut self,
        now_ms: u64,
        demand: Tier,
        why: &str,
        recover_after_ms: u64,
    ) -> Option<TierChange> {
        if self.pin.is_some() {
            return None;
        }
        if demand > self.tier {
            self.pending = None;
            return self.set(now_ms, demand, why.to_owned());
        }
        if demand == self.tier {
            self.pending = None;
            return None;
        }
        let pending = self.pending.get_or_insert(Pending {
            target: demand,
            since_ms: now_ms,
        });
        if demand > pending.target {
            pending.target = demand;
        }
        let pending = *pending;
        if now_ms >= pending.since_ms.saturating_add(recover_after_ms) {
            let reason = format!(
                "demand below {} for {} ms; now {}",
                self.tier.as_str(),
                now_ms - pending.since_ms,
                why
            );
            self.pending = (demand < pending.target).then_some(Pending {
                target: demand,
                since_ms: now_ms,
            });
            return self.set(now_ms, pending.target, reason);
        }
        None
    }

    /// The time the pending improvement is due, if any.
    pub(crate) fn pending_due_ms(&self, recover_after_ms: u64) -> Option<u64> {
        if self.pin.is_some() {
            return None;
        }
        self.pending
            .map(|p| p.since_ms.saturating_add(recover_after_ms))
    }

    /// Pins the tier.
    pub(crate) fn pin(
        &mut self,
        now_ms: u64,
        tier: Tier,
        reason: &str,
        expires_at_ms: Option<u64>,
    ) -> (Tier, Option<TierChange>) {
        let from = self.tier;
        let text = if reason.is_empty() {
            format!("pinned to {} by operator", tier.as_str())
        } else {
            reason.to_owned()
        };
        self.pin = Some(TierPin {
            tier,
            reason: text.clone(),
            expires_at_ms,
        });
        self.pending = None;
        (from, self.set(now_ms, tier, text))
    }

    /// Removes the pin (expired or cleared) and applies `demand` at once.
    pub(crate) fn unpin(
        &mut self,
        now_ms: u64,
        demand: Tier,
        reason: String,
    ) -> (Tier, Option<TierChange>) {
        let from = self.tier;
        self.pin = None;
        self.pending = None;
        (from, self.set(now_ms, demand, reason))
    }

    /// Sets the tier at once (rules deleted).
    pub(crate) fn force(&mut self, now_ms: u64, tier: Tier, reason: &str) -> Option<TierChange> {
        self.pending = None;
        if self.tier == tier {
            return None;
        }
        self.set(now_ms, tier, reason.to_owned())
    }
}
