//! [`BreakerShared`]: the state every clone of a [`crate::Breaker`] shares with the agent —
//! per-thread counter stripes, the published admission and state, and the probe pools.
//!
//! The agent swaps all stripes to zero every report interval ([`BreakerShared::drain`]),
//! which is how counts leave the process.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering::Relaxed};

use switchyard_core::{BreakerKey, BreakerState};

use crate::fleet_retry::FleetRetryCell;
use crate::latency::{self, LATENCY_SLOTS};
use crate::stripe::{self, CachePadded};
use crate::{Admission, Mode, RejectReason, RetryBudgetSource};

/// One thread's counters for one breaker.
#[derive(Debug)]
pub(crate) struct Stripe {
    pub(crate) failures: AtomicU64,
    pub(crate) slow: AtomicU64,
    /// First attempts and retries of calls made under a retry budget (fleet retry budget).
    pub(crate) first_attempts: AtomicU64,
    pub(crate) retries: AtomicU64,
    rejected: [AtomicU64; RejectReason::COUNT],
    pub(crate) latency: [AtomicU64; LATENCY_SLOTS],
}

impl Stripe {
    fn new() -> Self {
        Self {
            failures: AtomicU64::new(0),
            slow: AtomicU64::new(0),
            first_attempts: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            rejected: std::array::from_fn(|_| AtomicU64::new(0)),
            latency: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// Index of a probe-outcome counter: `[pool][outcome]`.
pub(crate) const PROBE_SUCCESS: usize = 0;
pub(crate) const PROBE_FAILURE: usize = 1;

/// Probe permits handed to the hot path by the agent, and what became of them.
#[derive(Debug, Default)]
pub(crate) struct ProbePool {
    /// Permits available to calls.
    pub(crate) tokens: AtomicU32,
    /// Set by a call rejected for lack of a permit: the agent should ask for one.
    pub(crate) demand: AtomicBool,
    /// Outcomes of recorded probe calls: success, failure. (A probe permit dropped without
    /// a record goes back to `tokens`, for the next call.)
    pub(crate) outcomes: [AtomicU64; 2],
}

impl ProbePool {
    /// Takes back one untaken token; false if all were taken by calls.
    pub(crate) fn reclaim_token(&self) -> bool {
        self.tokens
            .fetch_update(Relaxed, Relaxed, |t| t.checked_sub(1))
            .is_ok()
    }

    /// Swaps the outcome counters to zero: (successes, failures).
    pub(crate) fn take_outcomes(&self) -> (u64, u64) {
        (
            self.outcomes[PROBE_SUCCESS].swap(0, Relaxed),
            self.outcomes[PROBE_FAILURE].swap(0, Relaxed),
        )
    }
}

/// Counts swapped out of a breaker's stripes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct DrainedCounts {
    pub(crate) calls: u64,
    pub(crate) failures: u64,
    pub(crate) slow: u64,
    pub(crate) rejected: [u64; RejectReason::COUNT],
    /// Sparse `(bucket index, count)`, sorted by index.
    pub(crate) latency: Vec<(u16, u64)>,
    /// First attempts and retries under a retry budget (see [`BreakerShared::drain`]).
    pub(crate) first_attempts: u64,
    pub(crate) retries: u64,
}

impl DrainedCounts {
    pub(crate) fn rejected_total(&self) -> u64 {
        self.rejected.iter().sum()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.calls == 0 && self.rejected_total() == 0
    }
}

/// The state shared by every clone of a [`Breaker`] and the agent.
#[derive(Debug)]
pub(crate) struct BreakerShared {
    pub(crate) key_str: Arc<str>,
    /// Read on every call, written only by the agent: keep it away from written lines.
    pub(crate) admission: AtomicU8,
    /// The effective state this instance sees (index into `BreakerState::ALL`), for display.
    pub(crate) state: AtomicU8,
    pub(crate) slow_call_duration_us: AtomicU64,
    pub(crate) applied_index: AtomicU64,
    stripe_mask: usize,
    pub(crate) latency_tables: &'static latency::Tables,
    pub(crate) stripes: Box<[CachePadded<Stripe>]>,
    /// Cluster (0) and local (1) probe pools.
    pub(crate) probes: [CachePadded<ProbePool>; 2],
    /// The fleet retry figures for retry budgets (written on retries: its own lines).
    pub(crate) fleet: CachePadded<FleetRetryCell>,
    /// Failures swapped out before their calls (a race with `record`): carried over so a
    /// delta never has `failures > calls`.
    carry: std::sync::Mutex<(u64, u64)>,
}

pub(crate) const POOL_CLUSTER: usize = 0;
pub(crate) const POOL_LOCAL: usize = 1;

impl BreakerShared {
    pub(crate) fn new(key: BreakerKey, stripes: usize, slow_call_duration_ms: u64) -> Self {
        let stripes = stripes.clamp(1, stripe::STRIPES_MAX).next_power_of_two();
        Self {
            key_str: Arc::from(key.as_str()),
            admission: AtomicU8::new(Admission::Allow as u8),
            state: AtomicU8::new(0),
            slow_call_duration_us: AtomicU64::new(slow_call_duration_ms.saturating_mul(1_000)),
            applied_index: AtomicU64::new(0),
            stripe_mask: stripes - 1,
            latency_tables: latency::tables(),
            stripes: (0..stripes).map(|_| CachePadded(Stripe::new())).collect(),
            probes: [
                CachePadded(ProbePool::default()),
                CachePadded(ProbePool::default()),
            ],
            fleet: CachePadded(FleetRetryCell::default()),
            carry: std::sync::Mutex::new((0, 0)),
        }
    }

    #[inline]
    pub(crate) fn stripe(&self) -> &Stripe {
        // `stripe_mask + 1 == stripes.len()`, a power of two: the index is always in bounds.
        &self.stripes[stripe::thread_number() as usize & self.stripe_mask]
    }

    pub(crate) fn admission(&self) -> Admission {
        Admission::from_u8(self.admission.load(Relaxed))
    }

    /// Publishes a new admission; returns the previous one.
    pub(crate) fn publish(&self, admission: Admission, applied_index: u64) -> Admission {
        self.applied_index.fetch_max(applied_index, Relaxed);
        Admission::from_u8(self.admission.swap(admission as u8, Relaxed))
    }

    /// Publishes the admission the decision rule gives, and the state [`Breaker::state`] shows.
    pub(crate) fn publish_decision(
        &self,
        mode: Mode,
        cluster: Option<BreakerState>,
        local: BreakerState,
        applied_index: u64,
    ) {
        self.publish(crate::decide(mode, cluster, local), applied_index);
        let shown = crate::decision::shown_state(mode, cluster, local);
        let index = BreakerState::ALL.iter().position(|s| *s == shown);
        self.state.store(index.unwrap_or(0) as u8, Relaxed);
    }

    pub(crate) fn set_slow_call_duration_ms(&self, ms: u64) {
        self.slow_call_duration_us
            .store(ms.saturating_mul(1_000), Relaxed);
    }

    pub(crate) fn count_rejection(&self, reason: RejectReason) {
        self.stripe().rejected[reason as usize].fetch_add(1, Relaxed);
    }

    /// Counts a first attempt made under a retry budget, for the cluster's fleet figures.
    #[inline]
    pub(crate) fn count_first_attempt(&self) {
        self.stripe().first_attempts.fetch_add(1, Relaxed);
    }

    /// Counts a retry made under a retry budget.
    pub(crate) fn count_retry(&self) {
        self.stripe().retries.fetch_add(1, Relaxed);
    }

    /// Which budget retries through this breaker use now.
    pub(crate) fn retry_budget_source(&self) -> RetryBudgetSource {
        if self.fleet.in_force() {
            RetryBudgetSource::Fleet
        } else {
            RetryBudgetSource::Local
        }
    }

    /// This instance's first attempts and retries not yet handed to the fleet cell by a drain.
    pub(crate) fn undrained_retry_counts(&self) -> (u64, u64) {
        self.stripes.iter().fold((0, 0), |(a, r), s| {
            (
                a + s.first_attempts.load(Relaxed),
                r + s.retries.load(Relaxed),
            )
        })
    }

    /// Swaps every stripe to zero and returns the sums.
    pub(crate) fn drain(&self) -> DrainedCounts {
        let mut buckets = [0u64; LATENCY_SLOTS];
        let mut out = DrainedCounts::default();
        for s in self.stripes.iter() {
            out.failures += s.failures.swap(0, Relaxed);
            out.slow += s.slow.swap(0, Relaxed);
            for (sum, r) in out.rejected.iter_mut().zip(&s.rejected) {
                *sum += r.swap(0, Relaxed);
            }
            for (sum, b) in buckets.iter_mut().zip(&s.latency) {
                // Relaxed load first: most buckets are zero, and a swap dirties the line.
                if b.load(Relaxed) != 0 {
                    *sum += b.swap(0, Relaxed);
                }
            }
        }
        for (index, &count) in buckets.iter().enumerate() {
            if count != 0 {
                out.latency.push((index as u16, count));
            }
        }
        out.calls = out.latency.iter().map(|&(_, n)| n).sum();
        // A `record` racing with this drain may have bumped `failures`/`slow` in a stripe we
        // already passed while its latency bucket is still to come (or the reverse): carry the
        // excess to the next drain so every delta is consistent.
        let mut carry = self.carry.lock().unwrap_or_else(|e| e.into_inner());
        let failures = out.failures + carry.0;
        let slow = out.slow + carry.1;
        out.failures = failures.min(out.calls);
        out.slow = slow.min(out.calls);
        *carry = (failures - out.failures, slow - out.slow);
        drop(carry);
        // Retry counts ride along only with calls or rejections: a delta of retry counts alone
        // would be refused by nodes that predate them (and dropped with its whole report).
        if !out.is_empty() {
            self.drain_retry_counts(&mut out);
        }
        out
    }

    /// Moves the stripes' retry counts into `out` and into the fleet cell's "since the
    /// figures" counts. The cell is credited before the stripes are debited, so a retry budget
    /// reading both in between counts some twice (refuses a little early), never zero times.
    fn drain_retry_counts(&self, out: &mut DrainedCounts) {
        let mut loaded = [(0u64, 0u64); stripe::STRIPES_MAX];
        for (slot, s) in loaded.iter_mut().zip(self.stripes.iter()) {
            *slot = (s.first_attempts.load(Relaxed), s.retries.load(Relaxed));
        }
        let (first_attempts, retries) =
            loaded.iter().fold((0, 0), |(a, r), &(x, y)| (a + x, r + y));
        if first_attempts == 0 && retries == 0 {
            return;
        }
        self.fleet.add_since(first_attempts, retries);
        for (s, &(x, y)) in self.stripes.iter().zip(&loaded) {
            s.first_attempts.fetch_sub(x, Relaxed);
            s.retries.fetch_sub(y, Relaxed);
        }
        out.first_attempts = first_attempts;
        out.retries = retries;
    }
}
