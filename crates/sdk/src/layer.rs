//! [`SwitchyardLayer`]: a tower `Layer` that guards every call of a service with a breaker.
//!
//! `call` asks `allow()`; a rejected request fails at once with
//! [`CallError::Rejected`] without reaching the inner service. An admitted request's
//! latency is measured with the TSC clock and its result classified and recorded: the
//! response future is the SDK's one wrapped call (`WrappedCall`), unboxed, so a request
//! dropped mid-call gives a probe permit back at once.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use tower::{Layer, Service};

use crate::otel::Traced;
use crate::wrapped_call::WrappedCall;
use crate::{Breaker, CallError, Classifier, ErrorIsFailure, Rejected};

/// Wraps services in a [`SwitchyardService`] guarded by one breaker.
#[derive(Clone)]
pub struct SwitchyardLayer<C = ErrorIsFailure> {
    breaker: Breaker,
    classifier: Arc<C>,
}

impl<C> fmt::Debug for SwitchyardLayer<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SwitchyardLayer")
            .field("breaker", &self.breaker)
            .finish()
    }
}

impl SwitchyardLayer {
    /// A layer using `breaker` and the default classifier (`Err` is a failure).
    pub fn new(breaker: Breaker) -> Self {
        Self {
            breaker,
            classifier: Arc::new(ErrorIsFailure),
        }
    }
}

impl<C> SwitchyardLayer<C> {
    /// Replaces the classifier (e.g. so a 4xx response is not a failure).
    pub fn with_classifier<C2>(self, classifier: C2) -> SwitchyardLayer<C2> {
        SwitchyardLayer {
            breaker: self.breaker,
            classifier: Arc::new(classifier),
        }
    }
}

impl<S, C> Layer<S> for SwitchyardLayer<C> {
    type Service = SwitchyardService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        SwitchyardService {
            inner,
            breaker: self.breaker.clone(),
            classifier: Arc::clone(&self.classifier),
        }
    }
}

/// A service guarded by a breaker (see [`SwitchyardLayer`]).
#[derive(Clone)]
pub struct SwitchyardService<S, C = ErrorIsFailure> {
    inner: S,
    breaker: Breaker,
    classifier: Arc<C>,
}

impl<S, C> fmt::Debug for SwitchyardService<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SwitchyardService")
            .field("breaker", &self.breaker)
            .finish()
    }
}

impl<S, C, Req> Service<Req> for SwitchyardService<S, C>
where
    S: Service<Req>,
    C: Classifier<S::Response, S::Error>,
{
    type Response = S::Response;
    type Error = CallError<S::Error>;
    type Future = ResponseFuture<S::Future, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(CallError::Failed)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let classifier = Arc::clone(&self.classifier);
        let inner = &mut self.inner;
        let breaker = self.breaker.clone();
        if let Some(tracing) = &self.breaker.tracing {
            let state = match tracing.start(breaker, classifier, None, None, || inner.call(request))
            {
                Ok(call) => State::Traced { call },
                Err(rejected) => State::Rejected {
                    rejected: Some(rejected),
                },
            };
            return ResponseFuture { state };
        }
        let state = match WrappedCall::start(breaker, classifier, None, || inner.call(request)) {
            Ok(call) => State::Running { call },
            Err(rejected) => State::Rejected {
                rejected: Some(rejected),
            },
        };
        ResponseFuture { state }
    }
}

pin_project_lite::pin_project! {
    #[project = StateProj]
    enum State<F, C> {
        Rejected { rejected: Option<Rejected> },
        Running {
            #[pin]
            call: WrappedCall<Breaker, F, Arc<C>>,
        },
        Traced {
            #[pin]
            call: Traced<WrappedCall<Breaker, F, Arc<C>>>,
        },
    }
}

pin_project_lite::pin_project! {
    /// The response future of a [`SwitchyardService`].
    pub struct ResponseFuture<F, C> {
        #[pin]
        state: State<F, C>,
    }
}

impl<F, C> fmt::Debug for ResponseFuture<F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResponseFuture")
    }
}

impl<F, C, T, E> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<T, E>>,
    C: Classifier<T, E>,
{
    type Output = Result<T, CallError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Rejected { rejected } => match rejected.take() {
                Some(r) => Poll::Ready(Err(CallError::Rejected(r))),
                None => panic!("ResponseFuture polled after completion"),
            },
            StateProj::Running { call } => Poll::Ready(ready!(call.poll(cx)).into_call_result()),
            StateProj::Traced { call } => Poll::Ready(ready!(call.poll(cx)).into_call_result()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use switchyard_core::BreakerKey;
    use tower::{ServiceBuilder, ServiceExt};

    use super::*;
    use crate::wrapped_call::test_support::{
        cancel_mid_call, half_open_with_one_token, probe_tokens,
    };
    use crate::{Admission, Outcome, RejectReason};

    fn breaker() -> Breaker {
        Breaker::detached(BreakerKey::parse("payments/ml-fraud").expect("key"))
    }

    #[tokio::test]
    async fn layer_records_admitted_calls_and_rejects_when_open() {
        let b = breaker();
        let svc = ServiceBuilder::new()
            .layer(SwitchyardLayer::new(b.clone()).with_classifier(
                |r: &Result<u16, Infallible>| r.map_or(Outcome::Failure, Outcome::from_http_status),
            ))
            .service_fn(|status: u16| async move { Ok::<_, Infallible>(status) });
        assert_eq!(svc.clone().oneshot(200).await.expect("ok"), 200);
        assert_eq!(svc.clone().oneshot(404).await.expect("ok"), 404);
        assert_eq!(svc.clone().oneshot(503).await.expect("ok"), 503);
        let d = b.shared.drain();
        assert_eq!((d.calls, d.failures), (3, 1), "only the 503 is a failure");

        b.shared.publish(Admission::RejectForcedOpen, 9);
        let err = svc.oneshot(200).await.expect_err("forced open");
        assert!(matches!(err, CallError::Rejected(r) if r.reason == RejectReason::ForcedOpen));
    }

    #[test]
    fn a_dropped_response_future_gives_its_probe_permit_back_at_once() {
        let b = half_open_with_one_token("payments/ml-fraud");
        let mut svc = SwitchyardLayer::new(b.clone()).layer(tower::service_fn(|_: ()| {
            std::future::pending::<Result<(), Infallible>>()
        }));
        cancel_mid_call(svc.call(()));
        assert_eq!(probe_tokens(&b), 1, "the token is back in the pool");
        assert!(b.allow().expect("the next call makes the trial").is_probe());
    }
}
