//! [`SwitchyardLayer`]: a tower `Layer` that guards every call of a service with a breaker.
//!
//! `call` asks `allow()`; a rejected request fails at once with
//! [`CallError::Rejected`] without reaching the inner service. An admitted request's
//! latency is measured with the TSC clock and its result classified and recorded.
//! The response future is boxed (one allocation per request): the layer serves
//! request/response services, whose own costs dwarf it; the allocation-free path is
//! [`Breaker::allow`]/[`Breaker::record`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower::{Layer, Service};

use crate::{Breaker, CallError, Classifier, ErrorIsFailure, Permit, Rejected};

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
    S::Future: Send + 'static,
    C: Classifier<S::Response, S::Error> + 'static,
{
    type Response = S::Response;
    type Error = CallError<S::Error>;
    type Future = ResponseFuture<S::Future, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(CallError::Failed)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        match self.breaker.allow() {
            Err(rejected) => ResponseFuture {
                state: State::Rejected(Some(rejected)),
            },
            Ok(permit) => ResponseFuture {
                state: State::Running {
                    future: Box::pin(self.inner.call(request)),
                    permit: Some(permit),
                    start: crate::clock::CallTimer::start(),
                    breaker: self.breaker.clone(),
                    classifier: Arc::clone(&self.classifier),
                },
            },
        }
    }
}

enum State<F, C> {
    Rejected(Option<Rejected>),
    Running {
        future: Pin<Box<F>>,
        permit: Option<Permit>,
        start: crate::clock::CallTimer,
        breaker: Breaker,
        classifier: Arc<C>,
    },
}

/// The response future of a [`SwitchyardService`].
pub struct ResponseFuture<F, C> {
    state: State<F, C>,
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
        // Every field is `Unpin` (the inner future is boxed), so the future is too.
        let this = self.get_mut();
        match &mut this.state {
            State::Rejected(rejected) => match rejected.take() {
                Some(r) => Poll::Ready(Err(CallError::Rejected(r))),
                None => panic!("ResponseFuture polled after completion"),
            },
            State::Running {
                future,
                permit,
                start,
                breaker,
                classifier,
            } => {
                let result = match future.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(result) => result,
                };
                if let Some(permit) = permit.take() {
                    breaker.record_result(permit, classifier.as_ref(), &result, start.elapsed());
                }
                Poll::Ready(result.map_err(CallError::Failed))
            }
        }
    }
}

impl<F, C> Drop for ResponseFuture<F, C> {
    fn drop(&mut self) {
        if let State::Running {
            permit, breaker, ..
        } = &mut self.state
            && let Some(permit) = permit.take()
        {
            breaker.release_unused(permit);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use switchyard_core::BreakerKey;
    use tower::{ServiceBuilder, ServiceExt};

    use super::*;
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
}
