//! [`WrappedCall`]: the one wrapped-call primitive — allow → time → classify → record.
//!
//! ```text
//!  start(): allow() ──rejected──► Err(Rejected)        (the call is not made)
//!              │ permit
//!              ▼
//!  poll():  call future ──ready──► classify ─► record(permit) ─► Recorded
//!              │ (optional timeout fires: a failure)
//!              ▼
//!  dropped mid-call: the Permit's Drop gives a probe token back to its pool
//! ```
//!
//! [`Breaker::call`], [`crate::Guard`], [`crate::Fallback`] and the tower layer all run
//! their calls through this future, so the rules live in one place: the call is only made
//! once admitted, its latency is measured with the TSC clock, its outcome is recorded
//! exactly once, and cancelling it cannot leak a probe permit (the permit is a value whose
//! `Drop` returns it, see [`crate::Permit`]).
//!
//! It is a named future (not an `async fn`) so the tower layer's response future can hold
//! it without boxing, and it allocates nothing. A traced breaker's calls run as the same
//! future inside `otel::Traced`, which adds the span (see `otel.rs`): each entry point tests
//! `Breaker::tracing` once and starts one or the other, so an untraced call runs exactly
//! this code.

use std::borrow::Borrow;
use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use crate::clock::CallTimer;
use crate::mode::duration_ms;
use crate::{Breaker, CallError, Classifier, Outcome, Permit, Rejected};

/// A call that ran past its timeout (and was counted as a failure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TimedOut {
    /// The timeout, ms.
    pub(crate) timeout_ms: u64,
    /// The breaker's key; `None` for an unguarded call.
    pub(crate) key: Option<Arc<str>>,
}

/// What a completed wrapped call produced, and what it told the breaker.
#[derive(Debug)]
pub(crate) struct Recorded<T, E> {
    /// The call's own result, or `Err(TimedOut)` if the timeout fired first.
    pub(crate) result: Result<Result<T, E>, TimedOut>,
    /// The outcome recorded (a timeout is a failure).
    pub(crate) outcome: Outcome,
}

impl<T, E> Recorded<T, E> {
    /// The result as a guarded call returns it.
    pub(crate) fn into_call_result(self) -> Result<T, CallError<E>> {
        match self.result {
            Ok(result) => result.map_err(CallError::Failed),
            Err(TimedOut { timeout_ms, key }) => Err(CallError::Timeout {
                key: key.unwrap_or_else(|| Arc::from("")),
                timeout_ms,
            }),
        }
    }
}

pin_project_lite::pin_project! {
    /// One call under a breaker (see the module docs). `B` is a `Breaker` or a `&Breaker`;
    /// `K` an `Arc` or a reference to the [`Classifier`].
    pub(crate) struct WrappedCall<B, Fut, K> {
        #[pin]
        future: Fut,
        #[pin]
        deadline: Option<tokio::time::Sleep>,
        timeout_ms: u64,
        // `None` for a call with no breaker (an unguarded fallback step), and once recorded.
        admitted: Option<(B, Permit)>,
        start: CallTimer,
        classifier: K,
    }
}

impl<B, Fut, K> WrappedCall<B, Fut, K>
where
    B: Borrow<Breaker>,
{
    /// Asks `breaker` to admit one call; if it does, makes it with `call` and starts its
    /// clock. With a `timeout`, the call fails once it has run that long (this needs a tokio
    /// runtime with time enabled).
    #[inline]
    pub(crate) fn start<F>(
        breaker: B,
        classifier: K,
        timeout: Option<Duration>,
        call: F,
    ) -> Result<Self, Rejected>
    where
        F: FnOnce() -> Fut,
    {
        let permit = breaker.borrow().allow()?;
        Ok(Self::new(
            Some((breaker, permit)),
            classifier,
            timeout,
            call,
        ))
    }

    /// A call guarded by no breaker: timed out like the others, recorded nowhere.
    pub(crate) fn unguarded<F>(classifier: K, timeout: Option<Duration>, call: F) -> Self
    where
        F: FnOnce() -> Fut,
    {
        Self::new(None, classifier, timeout, call)
    }

    #[inline]
    pub(crate) fn new<F>(
        admitted: Option<(B, Permit)>,
        classifier: K,
        timeout: Option<Duration>,
        call: F,
    ) -> Self
    where
        F: FnOnce() -> Fut,
    {
        let start = CallTimer::start();
        Self {
            future: call(),
            deadline: timeout.map(tokio::time::sleep),
            timeout_ms: timeout.map_or(0, duration_ms),
            admitted,
            start,
            classifier,
        }
    }
}

impl<B, Fut, K, T, E> Future for WrappedCall<B, Fut, K>
where
    B: Borrow<Breaker>,
    Fut: Future<Output = Result<T, E>>,
    K: Deref,
    K::Target: Classifier<T, E>,
{
    type Output = Recorded<T, E>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = match this.future.poll(cx) {
            Poll::Ready(result) => Ok(result),
            Poll::Pending => match this.deadline.as_pin_mut() {
                None => return Poll::Pending,
                Some(deadline) => {
                    ready!(deadline.poll(cx));
                    let key = this.admitted.as_ref();
                    Err(TimedOut {
                        timeout_ms: *this.timeout_ms,
                        key: key.map(|(b, _)| Arc::clone(&b.borrow().shared.key_str)),
                    })
                }
            },
        };
        let latency = this.start.elapsed();
        let outcome = match &result {
            Ok(result) => this.classifier.classify(result),
            Err(TimedOut { .. }) => Outcome::Failure,
        };
        if let Some((breaker, permit)) = this.admitted.take() {
            breaker.borrow().record(permit, outcome, latency);
        }
        Poll::Ready(Recorded { result, outcome })
    }
}

/// Helpers for the cancellation tests of every entry point.
#[cfg(test)]
pub(crate) mod test_support {
    use std::future::Future;
    use std::sync::atomic::Ordering::Relaxed;
    use std::task::{Context, Waker};

    use switchyard_core::BreakerKey;

    use crate::breaker_shared::POOL_CLUSTER;
    use crate::{Admission, Breaker};

    /// A detached breaker in cluster HALF_OPEN whose pool holds one probe token.
    pub(crate) fn half_open_with_one_token(key: &str) -> Breaker {
        let b = Breaker::detached(BreakerKey::parse(key).expect("key"));
        b.shared.publish(Admission::ClusterProbe, 1);
        b.shared.probes[POOL_CLUSTER].tokens.store(1, Relaxed);
        b
    }

    /// Untaken probe tokens of the cluster pool.
    pub(crate) fn probe_tokens(b: &Breaker) -> u32 {
        b.shared.probes[POOL_CLUSTER].tokens.load(Relaxed)
    }

    /// Polls `call` once (it must then be mid-call), and drops it.
    pub(crate) fn cancel_mid_call<F: Future>(call: F) {
        let mut call = Box::pin(call);
        let mut cx = Context::from_waker(Waker::noop());
        assert!(
            call.as_mut().poll(&mut cx).is_pending(),
            "the call is in flight"
        );
        drop(call);
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;
    use crate::ErrorIsFailure;

    #[test]
    fn a_call_dropped_mid_flight_gives_its_probe_permit_back() {
        let b = half_open_with_one_token("payments/ml-fraud");
        let call = WrappedCall::start(&b, &ErrorIsFailure, None, || {
            std::future::pending::<Result<(), ()>>()
        })
        .expect("the probe token admits the call");
        assert_eq!(probe_tokens(&b), 0, "the call holds the only token");
        cancel_mid_call(call);
        assert_eq!(probe_tokens(&b), 1, "the token is back at once");
        assert!(b.allow().expect("a second call is admitted").is_probe());
    }

    #[test]
    fn a_completed_call_records_its_outcome_once() {
        let b = half_open_with_one_token("payments/ml-fraud");
        let call = WrappedCall::start(&b, &ErrorIsFailure, None, || async { Err::<(), _>("boom") })
            .expect("admitted");
        let mut call = Box::pin(call);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let Poll::Ready(recorded) = call.as_mut().poll(&mut cx) else {
            panic!("an immediate call completes on its first poll");
        };
        assert_eq!(recorded.outcome, Outcome::Failure);
        drop(call);
        assert_eq!(probe_tokens(&b), 0, "a recorded probe is not given back");
        let pool = &b.shared.probes[crate::breaker_shared::POOL_CLUSTER];
        assert_eq!(pool.take_outcomes(), (0, 1), "one failed probe");
    }
}
