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
//! The counters themselves live in [`BreakerShared`] (`breaker_shared.rs`), which the
//! agent drains every report interval.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use switchyard_core::{BreakerKey, BreakerState};

use crate::breaker_shared::{
    BreakerShared, POOL_CLUSTER, POOL_LOCAL, PROBE_FAILURE, PROBE_SUCCESS,
};
use crate::latency;
use crate::otel::CallTracing;
use crate::stripe;
use crate::wrapped_call::WrappedCall;
use crate::{
    Admission, CallError, Classifier, ErrorIsFailure, Outcome, RejectReason, RetryBudgetSource,
};

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

impl PermitKind {
    /// `normal`, `cluster_probe` or `local_probe` (span attributes, the Python SDK).
    pub fn as_str(self) -> &'static str {
        match self {
            PermitKind::Normal => "normal",
            PermitKind::ClusterProbe => "cluster_probe",
            PermitKind::LocalProbe => "local_probe",
        }
    }
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
    /// Spans around wrapped calls; `None` (the default) costs one test per call.
    pub(crate) tracing: Option<Arc<CallTracing>>,
}

impl fmt::Debug for Breaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Breaker")
            .field("key", &self.shared.key_str)
            .field("admission", &self.admission())
            .field("applied_index", &self.applied_index())
            .field("tracing", &self.tracing.is_some())
            .finish()
    }
}

impl Breaker {
    pub(crate) fn from_shared(shared: Arc<BreakerShared>) -> Self {
        Self {
            shared,
            tracing: None,
        }
    }

    /// This handle, recording spans through `tracing`.
    pub(crate) fn with_tracing(mut self, tracing: Option<Arc<CallTracing>>) -> Self {
        self.tracing = tracing;
        self
    }

    /// A breaker attached to no client: it always admits (nobody publishes decisions) and
    /// nobody drains its counters. For benchmarks and tests of code that takes a `Breaker`.
    pub fn detached(key: BreakerKey) -> Self {
        let shared = BreakerShared::new(key, stripe::default_stripes(), 1_000);
        Self::from_shared(Arc::new(shared))
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
        if let Some(tracing) = &self.tracing {
            let traced = tracing.start(self, classifier, None, None, call)?;
            return traced.await.into_call_result();
        }
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
