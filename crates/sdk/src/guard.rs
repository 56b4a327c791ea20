//! [`Guard`]: a breaker plus the rest of the resilience kit around one dependency call.
//!
//! ```text
//!  bulkhead slot ─► [ allow() ─► call (timeout) ─► record() ]  ─► done
//!   (once)            ▲                               │ failure or timeout
//!                     └── backoff (full jitter) ◄─────┘ while attempts and budget remain
//! ```
//!
//! Each attempt is one [`WrappedCall`]: dropping the guard's future mid-attempt gives a
//! probe permit back at once, and the bulkhead slot with it.
//!
//! Rejections by the breaker are never retried (the breaker just said the dependency is
//! down). A `Result` that the classifier calls a success (a 4xx, say) is returned as is,
//! not retried. Retries draw on the retry budget through the guarded breaker, so in cluster
//! mode the fleet retry budget bounds them (see [`crate::RetryBudget`]).

use std::future::Future;
use std::time::Duration;

use crate::otel;
use crate::wrapped_call::WrappedCall;
use crate::{
    Breaker, Bulkhead, CallError, Classifier, ErrorIsFailure, Outcome, RejectReason, Retry,
};

/// A breaker with an optional timeout, retry policy and bulkhead. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Guard {
    breaker: Breaker,
    timeout: Option<Duration>,
    retry: Option<Retry>,
    bulkhead: Option<Bulkhead>,
}

impl Guard {
    /// A guard that only applies the breaker.
    pub fn new(breaker: Breaker) -> Self {
        Self {
            breaker,
            timeout: None,
            retry: None,
            bulkhead: None,
        }
    }

    /// Fails each attempt that takes longer than `timeout` (counted as a failure).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Retries failed attempts under `retry`.
    pub fn retry(mut self, retry: Retry) -> Self {
        self.retry = Some(retry);
        self
    }

    /// Limits concurrent calls with `bulkhead`.
    pub fn bulkhead(mut self, bulkhead: Bulkhead) -> Self {
        self.bulkhead = Some(bulkhead);
        self
    }

    /// The guarded breaker.
    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    /// Runs `call` (once per attempt) with the default classifier (`Err` is a failure).
    pub async fn call<T, E, F, Fut>(&self, call: F) -> Result<T, CallError<E>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.call_classified(&ErrorIsFailure, call).await
    }

    /// Runs `call` (once per attempt), classifying results with `classifier`.
    pub async fn call_classified<T, E, C, F, Fut>(
        &self,
        classifier: &C,
        mut call: F,
    ) -> Result<T, CallError<E>>
    where
        C: Classifier<T, E> + ?Sized,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let _slot = match &self.bulkhead {
            Some(bulkhead) => match bulkhead.try_acquire() {
                Ok(slot) => Some(slot),
                Err(_) => {
                    let rejected = self.breaker.reject(RejectReason::Bulkhead);
                    otel::on_rejected(&self.breaker, &rejected);
                    return Err(rejected.into());
                }
            },
            None => None,
        };
        if let Some(retry) = &self.retry {
            retry.budget.deposit_for(&self.breaker);
        }
        let mut attempt: u32 = 0;
        loop {
            let (b, timeout) = (&self.breaker, self.timeout);
            let recorded = match &b.tracing {
                None => WrappedCall::start(b, classifier, timeout, &mut call)?.await,
                Some(tracing) => {
                    tracing
                        .start(b, classifier, timeout, None, &mut call)?
                        .await
                }
            };
            let succeeded = recorded.outcome == Outcome::Success;
            let failed = recorded.into_call_result();
            if succeeded {
                return failed;
            }
            attempt += 1;
            let Some(retry) = &self.retry else {
                return failed;
            };
            if attempt >= retry.attempts_max || !retry.budget.try_withdraw_for(&self.breaker) {
                return failed;
            }
            tokio::time::sleep(retry.backoff.delay(attempt - 1, &retry.rng)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use switchyard_core::BreakerKey;

    use super::*;
    use crate::clock::CoarseClock;
    use crate::wrapped_call::test_support::{
        cancel_mid_call, half_open_with_one_token, probe_tokens,
    };
    use crate::{Admission, Backoff, RetryBudget, RetryBudgetOptions, SmallRng};

    fn breaker() -> Breaker {
        Breaker::detached(BreakerKey::parse("payments/ml-fraud").expect("key"))
    }

    fn retry(attempts: u32, budget: RetryBudgetOptions) -> Retry {
        let budget = Arc::new(RetryBudget::new(budget, CoarseClock::new(0)));
        Retry::new(attempts, budget, Arc::new(SmallRng::new(1))).with_backoff(Backoff {
            base: Duration::from_millis(1),
            max: Duration::from_millis(2),
        })
    }

    #[tokio::test]
    async fn retries_until_success() {
        let guard = Guard::new(breaker()).retry(retry(5, RetryBudgetOptions::default()));
        let attempts = AtomicU32::new(0);
        let v = guard
            .call(|| async {
                let n = attempts.fetch_add(1, Ordering::Relaxed);
                if n < 2 { Err("flaky") } else { Ok(n) }
            })
            .await
            .expect("third attempt succeeds");
        assert_eq!(v, 2);
    }

    #[tokio::test]
    async fn exhausted_budget_stops_retries() {
        // Goal: with a budget of 20 % and no floor, 5 failing calls earn one retry in total.
        let options = RetryBudgetOptions {
            ttl: Duration::from_secs(10),
            min_retries_per_sec: 0,
            retry_percent: 20,
        };
        let guard = Guard::new(breaker()).retry(retry(10, options));
        let attempts = AtomicU32::new(0);
        for _ in 0..5 {
            let e = guard
                .call(|| async {
                    attempts.fetch_add(1, Ordering::Relaxed);
                    Err::<(), _>("down")
                })
                .await
                .expect_err("always fails");
            assert!(matches!(e, CallError::Failed("down")));
        }
        assert_eq!(
            attempts.load(Ordering::Relaxed),
            5 + 1,
            "5 first attempts + 1 budgeted retry"
        );
    }

    #[tokio::test]
    async fn client_errors_are_returned_without_retry() {
        let guard = Guard::new(breaker()).retry(retry(5, RetryBudgetOptions::default()));
        let attempts = AtomicU32::new(0);
        let classify = |r: &Result<u16, ()>| r.map_or(Outcome::Failure, Outcome::from_http_status);
        let v = guard
            .call_classified(&classify, || async {
                attempts.fetch_add(1, Ordering::Relaxed);
                Ok(404)
            })
            .await;
        assert_eq!(v.expect("ok"), 404);
        assert_eq!(attempts.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn rejected_calls_are_not_attempted_or_retried() {
        let b = breaker();
        b.shared.publish(Admission::RejectClusterOpen, 1);
        let guard = Guard::new(b).retry(retry(5, RetryBudgetOptions::default()));
        let attempts = AtomicU32::new(0);
        let e = guard
            .call(|| async {
                attempts.fetch_add(1, Ordering::Relaxed);
                Ok::<_, ()>(())
            })
            .await
            .expect_err("open");
        assert!(matches!(e, CallError::Rejected(r) if r.reason == RejectReason::ClusterOpen));
        assert_eq!(attempts.load(Ordering::Relaxed), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn timeout_counts_as_failure() {
        let guard = Guard::new(breaker()).timeout(Duration::from_millis(50));
        let e = guard
            .call(|| async {
                tokio::time::sleep(Duration::from_secs(1)).await;
                Ok::<_, ()>(())
            })
            .await
            .expect_err("times out");
        assert!(
            matches!(e, CallError::Timeout { timeout_ms: 50, .. }),
            "{e:?}"
        );
        let d = guard.breaker().shared.drain();
        assert_eq!((d.calls, d.failures), (1, 1));
    }

    #[tokio::test]
    async fn full_bulkhead_rejects_with_reason() {
        let bulkhead = Bulkhead::new("ml", 1);
        let guard = Guard::new(breaker()).bulkhead(bulkhead.clone());
        let held = bulkhead.try_acquire().expect("take the only slot");
        let e = guard
            .call(|| async { Ok::<_, ()>(()) })
            .await
            .expect_err("full");
        assert!(matches!(e, CallError::Rejected(r) if r.reason == RejectReason::Bulkhead));
        drop(held);
        guard
            .call(|| async { Ok::<_, ()>(()) })
            .await
            .expect("slot free again");
    }

    #[test]
    fn a_dropped_guard_call_gives_its_probe_permit_back_at_once() {
        let b = half_open_with_one_token("payments/ml-fraud");
        let bulkhead = Bulkhead::new("ml", 1);
        let guard = Guard::new(b.clone())
            .timeout(Duration::from_secs(60))
            .bulkhead(bulkhead.clone());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        let _entered = rt.enter();
        cancel_mid_call(guard.call(std::future::pending::<Result<(), ()>>));
        assert_eq!(probe_tokens(&b), 1, "the token is back in the pool");
        assert!(b.allow().expect("the next call makes the trial").is_probe());
        assert!(bulkhead.try_acquire().is_ok(), "the bulkhead slot is free");
    }
}
