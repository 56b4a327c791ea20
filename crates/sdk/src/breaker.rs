//! The breaker handle and its hot path: [`Breaker::allow`] and [`Breaker::record`].
//!
//! Both are a handful of atomic operations on memory local to the process: no lock, no
//! allocation, no system call, no `await`, no clock read.
//!
//! - `allow()` loads the breaker's [`Admission`] (one relaxed `u8` load, published by the
//!   agent). Only in HALF_OPEN does it do more: it takes a probe token with a CAS.
//! - `record()` increments this thread's stripe: one latency bucket (the sum of the buckets
//!   is the call count, so successes need no separate counter), plus `failures` and `slow`
//!   when they apply. Probe calls also bump a probe-outcome counter.
//!
//! The agent swaps all stripes to zero every report interval ([`BreakerShared::drain`]),
//! which is how counts leave the process.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use switchyard_core::{BreakerKey, BreakerState};

use crate::fleet_retry::FleetRetryCell;
use crate::latency::{self, LATENCY_SLOTS};
use crate::stripe::{self, CachePadded};
use crate::wrapped_call::WrappedCall;
use crate::{
    Admission, CallError, Classifier, ErrorIsFailure, Mode, Outcome, RejectReason,
    RetryBudgetSource,
};

/// One thread's counters for one breaker.
#[derive(Debug)]
pub(crate) struct Stripe {
    failures: AtomicU64,
    slow: AtomicU64,
    /// First attempts and retries of calls made under a retry budget (fleet retry budget).
    first_attempts: AtomicU64,
    retries: AtomicU64,
    rejected: [AtomicU64; RejectReason::COUNT],
    latency: [AtomicU64; LATENCY_SLOTS],
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
const PROBE_SUCCESS: usize = 0;
const PROBE_FAILURE: usize = 1;

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
    admission: AtomicU8,
    /// The effective state this instance sees (index into `BreakerState::ALL`), for display.
    state: AtomicU8,
    slow_call_duration_us: AtomicU64,
    applied_index: AtomicU64,
    stripe_mask: usize,
    latency_tables: &'static latency::Tables,
    stripes: Box<[CachePadded<Stripe>]>,
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
    fn stripe(&self) -> &Stripe {
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

/// What kind of admission a [`Permit`] carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PermitKind {
    /// An ordinary admitted call.
    Normal,
    /// A trial call under a cluster probe permit (cluster HALF_OPEN).
    ClusterProbe,
    /// A trial call under a local probe permit (local HALF_OPEN).
    LocalProbe,
}

/// Permission to make one call, returned by [`Breaker::allow`]. Hand it back with
/// [`Breaker::record`] once the call is made; drop it if the call is not made.
///
/// A permit gives itself back: a probe permit dropped without being recorded (a cancelled
/// future, an early `?`) returns its token to the breaker at once, so the next call can
/// make the trial instead of waiting for the lease (`probe_lease_ms`) to run out. An
/// ordinary permit holds nothing. A permit is `Send` and `'static`: it can cross `await`s
/// and threads freely.
#[must_use = "a permit is returned with Breaker::record once the call is made"]
#[derive(Debug)]
pub struct Permit {
    kind: PermitKind,
    /// The breaker whose probe pool a dropped probe permit returns its token to; `None`
    /// for an ordinary permit (no reference count on the hot path) and once recorded.
    probe_of: Option<Arc<BreakerShared>>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(shared) = self.probe_of.take() {
            shared.probes[pool_of(self.kind)]
                .tokens
                .fetch_add(1, Relaxed);
        }
    }
}

/// The probe pool a probe permit's token came from.
fn pool_of(kind: PermitKind) -> usize {
    match kind {
        PermitKind::LocalProbe => POOL_LOCAL,
        _ => POOL_CLUSTER,
    }
}

impl Permit {
    const NORMAL: Permit = Permit {
        kind: PermitKind::Normal,
        probe_of: None,
    };

    /// The kind of admission.
    pub fn kind(&self) -> PermitKind {
        self.kind
    }

    /// True when this call is a half-open trial call.
    pub fn is_probe(&self) -> bool {
        self.kind != PermitKind::Normal
    }
}

/// A call the breaker did not admit, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("call to `{key}` rejected: {reason}")]
pub struct Rejected {
    /// The breaker key, `scope/name`.
    pub key: Arc<str>,
    /// Why.
    pub reason: RejectReason,
}

/// A handle on one breaker. Cheap to clone (one `Arc`); all clones share the same state.
///
/// Obtain it from [`crate::Client::breaker`]. See the module docs for the hot-path costs.
#[derive(Clone)]
pub struct Breaker {
    pub(crate) shared: Arc<BreakerShared>,
}

impl fmt::Debug for Breaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Breaker")
            .field("key", &self.shared.key_str)
            .field("admission", &self.admission())
            .field("applied_index", &self.applied_index())
            .finish()
    }
}

impl Breaker {
    pub(crate) fn from_shared(shared: Arc<BreakerShared>) -> Self {
        Self { shared }
    }

    /// A breaker attached to no client: it always admits (nobody publishes decisions) and
    /// nobody drains its counters. For benchmarks and tests of code that takes a `Breaker`.
    pub fn detached(key: BreakerKey) -> Self {
        let shared = BreakerShared::new(key, stripe::default_stripes(), 1_000);
        Self {
            shared: Arc::new(shared),
        }
    }

    /// The breaker key, `scope/name`.
    pub fn key(&self) -> &str {
        &self.shared.key_str
    }

    /// What `allow()` currently does.
    pub fn admission(&self) -> Admission {
        self.shared.admission()
    }

    /// The state this instance sees: the cluster's state (Cluster and Stale modes, when the
    /// cluster has judged the key and it is not CLOSED), else the local breaker's. One atomic
    /// load, never waits; for display and logs, not for admission (use [`Breaker::allow`]).
    pub fn state(&self) -> BreakerState {
        let index = usize::from(self.shared.state.load(Relaxed));
        BreakerState::ALL
            .get(index)
            .copied()
            .unwrap_or(BreakerState::Closed)
    }

    /// The cluster applied index of the decision in force (0 before any).
    pub fn applied_index(&self) -> u64 {
        self.shared.applied_index.load(Relaxed)
    }

    /// Which budget a retry budget applies to this breaker's retries right now: the fleet's
    /// (cluster mode, with fleet figures for the breaker) or the process's own.
    pub fn retry_budget_source(&self) -> RetryBudgetSource {
        self.shared.retry_budget_source()
    }

    /// Asks to make one call. Hot path: one atomic load when CLOSED or OPEN.
    #[inline]
    pub fn allow(&self) -> Result<Permit, Rejected> {
        let code = self.shared.admission.load(Relaxed);
        if code == Admission::Allow as u8 {
            return Ok(Permit::NORMAL);
        }
        self.allow_slow(Admission::from_u8(code))
    }

    #[cold]
    fn allow_slow(&self, admission: Admission) -> Result<Permit, Rejected> {
        let (pool, kind) = match admission {
            Admission::ClusterProbe => (POOL_CLUSTER, PermitKind::ClusterProbe),
            Admission::LocalProbe => (POOL_LOCAL, PermitKind::LocalProbe),
            Admission::Allow => return Ok(Permit::NORMAL),
            rejecting => {
                let reason = rejecting
                    .reject_reason()
                    .unwrap_or(RejectReason::ClusterOpen);
                return Err(self.reject(reason));
            }
        };
        let probes = &self.shared.probes[pool];
        if probes.reclaim_token() {
            return Ok(Permit {
                kind,
                probe_of: Some(Arc::clone(&self.shared)),
            });
        }
        if !probes.demand.load(Relaxed) {
            probes.demand.store(true, Relaxed);
        }
        Err(self.reject(RejectReason::HalfOpenNoPermit))
    }

    pub(crate) fn reject(&self, reason: RejectReason) -> Rejected {
        self.shared.count_rejection(reason);
        Rejected {
            key: Arc::clone(&self.shared.key_str),
            reason,
        }
    }

    /// Records the outcome and latency of a call made under `permit`. Hot path: one
    /// increment of this thread's latency bucket, plus one each for a failure and a slow call.
    #[inline]
    pub fn record(&self, mut permit: Permit, outcome: Outcome, latency: Duration) {
        let shared = &*self.shared;
        let us = latency::duration_us(latency);
        let stripe = shared.stripe();
        stripe.latency[latency::slot_in(shared.latency_tables, us)].fetch_add(1, Relaxed);
        if outcome == Outcome::Failure {
            stripe.failures.fetch_add(1, Relaxed);
        }
        if us >= shared.slow_call_duration_us.load(Relaxed) {
            stripe.slow.fetch_add(1, Relaxed);
        }
        if permit.kind != PermitKind::Normal {
            self.record_probe(&mut permit, outcome);
        }
    }

    /// Counts a probe's outcome for the agent, and keeps the permit's token out of the
    /// pool: the trial was made.
    #[cold]
    fn record_probe(&self, permit: &mut Permit, outcome: Outcome) {
        let which = match outcome {
            Outcome::Success => PROBE_SUCCESS,
            Outcome::Failure => PROBE_FAILURE,
        };
        permit.probe_of = None;
        self.shared.probes[pool_of(permit.kind)].outcomes[which].fetch_add(1, Relaxed);
    }

    /// Gives back a permit whose call was never made: the same as dropping it (a probe
    /// permit's token goes back to the pool, for the next call).
    pub fn release_unused(&self, permit: Permit) {
        drop(permit);
    }

    /// Guards one async call: `allow()`, run `call`, measure its latency with the TSC clock
    /// (`quanta`, a few ns), classify with [`ErrorIsFailure`], `record()`.
    ///
    /// If the returned future is dropped before `call` completes, a probe permit goes back
    /// to the breaker at once (see [`Permit`]).
    pub async fn call<T, E, F, Fut>(&self, call: F) -> Result<T, CallError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.call_classified(&ErrorIsFailure, call).await
    }

    /// Like [`Breaker::call`], with a user classifier (e.g. 4xx is not a failure).
    pub async fn call_classified<T, E, C, F, Fut>(
        &self,
        classifier: &C,
        call: F,
    ) -> Result<T, CallError<E>>
    where
        C: Classifier<T, E> + ?Sized,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        WrappedCall::start(self, classifier, None, call)?
            .await
            .into_call_result()
    }

    /// Records a call measured elsewhere and classified by `classifier`; returns the outcome.
    pub fn record_result<T, E, C>(
        &self,
        permit: Permit,
        classifier: &C,
        result: &Result<T, E>,
        latency: Duration,
    ) -> Outcome
    where
        C: Classifier<T, E> + ?Sized,
    {
        let outcome = classifier.classify(result);
        self.record(permit, outcome, latency);
        outcome
    }

    /// The sketch bucket a latency is counted in (for tests and tools).
    pub fn latency_bucket(latency: Duration) -> u16 {
        latency::bucket_index(latency::duration_us(latency))
    }

    /// A latency sketch of the counts since the last drain, without draining (for tests).
    #[cfg(test)]
    pub(crate) fn peek_latency(&self) -> switchyard_core::LatencySketch {
        use switchyard_core::LatencySketch;
        let mut sketch = LatencySketch::default();
        for s in self.shared.stripes.iter() {
            for (i, b) in s.latency.iter().enumerate() {
                let n = b.load(Relaxed);
                if n > 0 {
                    sketch.record_n(LatencySketch::bucket_value_us(i as u16), n);
                }
            }
        }
        sketch
    }
}

#[cfg(test)]
#[path = "breaker_test.rs"]
mod tests;
