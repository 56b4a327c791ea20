//! [`Fallback`]: try step A, then B, then C; skip steps whose breaker is open; say who decided.
//!
//! A degraded answer from a cheaper source beats an error: a fraud check can fall back
//! from the primary ML model to a cheap model to fixed rules. Steps guarded by a breaker
//! are skipped without being called while the breaker rejects (no timeout is wasted on a
//! dependency known to be down). The answer tells which step decided
//! ([`Decided::decided_by`]); when every step fails, [`FallbackError`] lists every attempt
//! and why it failed or was skipped.
//!
//! Each step runs as one [`WrappedCall`]: a chain dropped mid-step gives that step's probe
//! permit back at once.
//!
//! A chain is built per request (its closures capture the request), and holds at most
//! [`FALLBACK_STEPS_MAX`] steps.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use opentelemetry::context::FutureExt as _;

use crate::otel;
use crate::wrapped_call::{TimedOut, WrappedCall};
use crate::{Breaker, ErrorIsFailure, Rejected};

/// Upper bound on steps in one chain; `then` past it panics (a programming error).
pub const FALLBACK_STEPS_MAX: usize = 16;

type StepFuture<'a, T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'a>>;
type StepFn<'a, T, E> = Box<dyn FnOnce() -> StepFuture<'a, T, E> + Send + 'a>;

struct Step<'a, T, E> {
    name: Cow<'static, str>,
    breaker: Option<Breaker>,
    run: StepFn<'a, T, E>,
}

/// What happened to one step of a chain.
#[derive(Debug)]
pub enum AttemptOutcome<E> {
    /// The step's breaker rejected the call; the step was not run.
    Skipped(Rejected),
    /// The step ran and failed.
    Failed(E),
    /// The step ran longer than the chain's per-step timeout.
    TimedOut {
        /// The timeout, ms.
        timeout_ms: u64,
    },
}

/// One step's attempt.
#[derive(Debug)]
pub struct Attempt<E> {
    /// The step's name.
    pub step: Cow<'static, str>,
    /// What happened.
    pub outcome: AttemptOutcome<E>,
}

/// The answer of a chain: the value and the step that produced it.
#[derive(Debug)]
pub struct Decided<T, E> {
    /// The value.
    pub value: T,
    /// The name of the step that produced it.
    pub decided_by: Cow<'static, str>,
    /// The steps tried before it, in order, with why each did not decide.
    pub earlier: Vec<Attempt<E>>,
}

/// Every step of a chain failed or was skipped.
#[derive(Debug)]
pub struct FallbackError<E> {
    /// Every step, in order, with why it failed or was skipped.
    pub attempts: Vec<Attempt<E>>,
}

impl<E: fmt::Display> fmt::Display for FallbackError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "all {} fallback steps failed:", self.attempts.len())?;
        for (i, a) in self.attempts.iter().enumerate() {
            let sep = if i == 0 { " " } else { "; " };
            match &a.outcome {
                AttemptOutcome::Skipped(r) => write!(f, "{sep}{}: skipped ({})", a.step, r.reason)?,
                AttemptOutcome::Failed(e) => write!(f, "{sep}{}: failed ({e})", a.step)?,
                AttemptOutcome::TimedOut { timeout_ms } => {
                    write!(f, "{sep}{}: timed out after {timeout_ms} ms", a.step)?
                }
            }
        }
        Ok(())
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for FallbackError<E> {}

/// A fallback chain (see the module docs).
pub struct Fallback<'a, T, E> {
    steps: Vec<Step<'a, T, E>>,
    step_timeout: Option<Duration>,
}

impl<T, E> fmt::Debug for Fallback<'_, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.steps.iter().map(|s| s.name.as_ref()).collect();
        f.debug_struct("Fallback").field("steps", &names).finish()
    }
}

impl<T, E> Default for Fallback<'_, T, E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a, T, E> Fallback<'a, T, E> {
    /// An empty chain.
    pub fn new() -> Self {
        Self {
            steps: Vec::new(),
            step_timeout: None,
        }
    }

    /// Fails each step that takes longer than `timeout` (needs a tokio runtime with time).
    pub fn step_timeout(mut self, timeout: Duration) -> Self {
        self.step_timeout = Some(timeout);
        self
    }

    /// Adds a step guarded by `breaker`: skipped while it rejects, outcomes recorded on it.
    pub fn then<F, Fut>(self, name: impl Into<Cow<'static, str>>, breaker: &Breaker, run: F) -> Self
    where
        F: FnOnce() -> Fut + Send + 'a,
        Fut: Future<Output = Result<T, E>> + Send + 'a,
    {
        self.push(name.into(), Some(breaker.clone()), run)
    }

    /// Adds a step with no breaker (typically the last resort, e.g. local rules).
    pub fn then_unguarded<F, Fut>(self, name: impl Into<Cow<'static, str>>, run: F) -> Self
    where
        F: FnOnce() -> Fut + Send + 'a,
        Fut: Future<Output = Result<T, E>> + Send + 'a,
    {
        self.push(name.into(), None, run)
    }

    fn push<F, Fut>(mut self, name: Cow<'static, str>, breaker: Option<Breaker>, run: F) -> Self
    where
        F: FnOnce() -> Fut + Send + 'a,
        Fut: Future<Output = Result<T, E>> + Send + 'a,
    {
        assert!(
            self.steps.len() < FALLBACK_STEPS_MAX,
            "a fallback chain has at most {FALLBACK_STEPS_MAX} steps"
        );
        self.steps.push(Step {
            name,
            breaker,
            run: Box::new(move || Box::pin(run())),
        });
        self
    }

    /// Runs the steps in order until one succeeds.
    ///
    /// When a step's breaker is traced, the chain records a span ([`crate::otel::SPAN_FALLBACK`])
    /// around its steps' spans, naming the step that decided.
    pub async fn run(self) -> Result<Decided<T, E>, FallbackError<E>> {
        let tracing = self
            .steps
            .iter()
            .find_map(|s| s.breaker.as_ref().and_then(|b| b.tracing.clone()));
        let Some(tracing) = tracing else {
            return self.run_steps().await;
        };
        let cx = tracing.fallback();
        let result = self.run_steps().with_context(cx.clone()).await;
        let (decided_by, tried) = match &result {
            Ok(d) => (Some(d.decided_by.clone()), d.earlier.len() + 1),
            Err(e) => (None, e.attempts.len()),
        };
        otel::end_fallback(&cx, decided_by, tried);
        result
    }

    async fn run_steps(self) -> Result<Decided<T, E>, FallbackError<E>> {
        let mut attempts = Vec::with_capacity(self.steps.len());
        for step in self.steps {
            let timeout = self.step_timeout;
            let started = match &step.breaker {
                None => Ok(WrappedCall::<&Breaker, _, _>::unguarded(
                    &ErrorIsFailure,
                    timeout,
                    step.run,
                )
                .await),
                Some(b) => match &b.tracing {
                    None => match WrappedCall::start(b, &ErrorIsFailure, timeout, step.run) {
                        Ok(call) => Ok(call.await),
                        Err(rejected) => Err(rejected),
                    },
                    Some(t) => {
                        let name = Some(&step.name);
                        match t.start(b, &ErrorIsFailure, timeout, name, step.run) {
                            Ok(call) => Ok(call.await),
                            Err(rejected) => Err(rejected),
                        }
                    }
                },
            };
            let result = match started {
                Ok(recorded) => recorded.result,
                Err(rejected) => {
                    attempts.push(Attempt {
                        step: step.name,
                        outcome: AttemptOutcome::Skipped(rejected),
                    });
                    continue;
                }
            };
            match result {
                Ok(Ok(value)) => {
                    return Ok(Decided {
                        value,
                        decided_by: step.name,
                        earlier: attempts,
                    });
                }
                Ok(Err(e)) => attempts.push(Attempt {
                    step: step.name,
                    outcome: AttemptOutcome::Failed(e),
                }),
                Err(TimedOut { timeout_ms, .. }) => attempts.push(Attempt {
                    step: step.name,
                    outcome: AttemptOutcome::TimedOut { timeout_ms },
                }),
            }
        }
        Err(FallbackError { attempts })
    }
}

#[cfg(test)]
mod tests {
    use switchyard_core::BreakerKey;

    use super::*;
    use crate::wrapped_call::test_support::{
        cancel_mid_call, half_open_with_one_token, probe_tokens,
    };
    use crate::{Admission, RejectReason};

    fn breaker(key: &str) -> Breaker {
        Breaker::detached(BreakerKey::parse(key).expect("key"))
    }

    #[tokio::test]
    async fn open_breakers_are_skipped_and_the_deciding_step_is_named() {
        let primary = breaker("payments/ml-primary");
        let cheap = breaker("payments/ml-cheap");
        primary.shared.publish(Admission::RejectClusterOpen, 3);
        let decided = Fallback::new()
            .then("ml-primary", &primary, || async { Ok::<_, String>(0.9) })
            .then("ml-cheap", &cheap, || async { Ok(0.7) })
            .then_unguarded("rules", || async { Ok(0.5) })
            .run()
            .await
            .expect("cheap model answers");
        assert_eq!(decided.value, 0.7);
        assert_eq!(decided.decided_by, "ml-cheap");
        assert_eq!(decided.earlier.len(), 1);
        assert!(matches!(
            &decided.earlier[0].outcome,
            AttemptOutcome::Skipped(r) if r.reason == RejectReason::ClusterOpen
        ));
        assert_eq!(
            cheap.shared.drain().calls,
            1,
            "the step that ran is recorded"
        );
        assert_eq!(
            primary.shared.drain().calls,
            0,
            "the skipped step was not called"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn when_all_fail_the_error_lists_every_attempt() {
        let primary = breaker("payments/ml-primary");
        let cheap = breaker("payments/ml-cheap");
        primary.shared.publish(Admission::RejectLocalOpen, 3);
        let err = Fallback::<f64, String>::new()
            .step_timeout(Duration::from_millis(100))
            .then("ml-primary", &primary, || async { Ok(0.9) })
            .then("ml-cheap", &cheap, || async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok(0.7)
            })
            .then_unguarded("rules", || async { Err("rule table missing".to_owned()) })
            .run()
            .await
            .expect_err("nothing answers");
        assert_eq!(err.attempts.len(), 3);
        assert_eq!(
            err.to_string(),
            "all 3 fallback steps failed: ml-primary: skipped (local_open); \
             ml-cheap: timed out after 100 ms; rules: failed (rule table missing)"
        );
        assert_eq!(
            cheap.shared.drain().failures,
            1,
            "the timeout counts as a failure"
        );
    }

    #[test]
    fn a_dropped_chain_gives_the_running_steps_probe_permit_back_at_once() {
        let primary = half_open_with_one_token("payments/ml-primary");
        let chain = Fallback::<f64, String>::new()
            .then("ml-primary", &primary, std::future::pending)
            .then_unguarded("rules", || async { Ok(0.5) })
            .run();
        cancel_mid_call(chain);
        assert_eq!(probe_tokens(&primary), 1, "the token is back in the pool");
        assert!(
            primary
                .allow()
                .expect("the next call makes the trial")
                .is_probe()
        );
    }
}
