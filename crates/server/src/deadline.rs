//! The caller's deadline, carried through the node and across the forwarding hop.
//!
//! A gRPC client states its deadline as a `grpc-timeout` header. [`DeadlineLayer`] turns it
//! into an [`Instant`] visible to everything the call does (a task-local, so no handler has to
//! thread it through). A follower that forwards the call gives the leader the same deadline:
//! as `grpc-timeout` on the hop (so the hop never outlives the caller), and as an absolute
//! wall-clock time in [`DEADLINE_HEADER`], because a call held up in a stuck connection during
//! a partition reaches the leader seconds late with a relative timeout that looks fresh. The
//! leader refuses to propose a write whose deadline has passed: a client that saw its write
//! time out must not find it committed after the network heals. The absolute form assumes the
//! nodes' clocks agree to well within a deadline (NTP does that by orders of magnitude).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;
use tower::{Layer, Service};

/// Metadata key of the caller's deadline on a forwarded call, in Unix milliseconds.
pub const DEADLINE_HEADER: &str = "x-switchyard-deadline-unix-ms";

tokio::task_local! {
    static CALLER_DEADLINE: Option<Instant>;
}

/// The deadline of the gRPC call being served, if its client set one.
pub fn current() -> Option<Instant> {
    CALLER_DEADLINE.try_with(|d| *d).ok().flatten()
}

/// Time left before the current call's deadline: `None` without a deadline, zero once passed.
pub fn remaining() -> Option<Duration> {
    current().map(|d| d.saturating_duration_since(Instant::now()))
}

/// Runs `f` as a call whose caller's deadline is `deadline` (a node's own background calls,
/// such as a follower forwarding its buffered reports, so the hop carries a deadline too).
pub async fn scope<F: Future>(deadline: Instant, f: F) -> F::Output {
    CALLER_DEADLINE.scope(Some(deadline), f).await
}

/// A tower layer that makes each call's `grpc-timeout` its [`current`] deadline.
#[derive(Clone, Debug, Default)]
pub struct DeadlineLayer;

impl<S> Layer<S> for DeadlineLayer {
    type Service = DeadlineService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DeadlineService { inner }
    }
}

/// The service [`DeadlineLayer`] wraps around the gRPC router.
#[derive(Clone, Debug)]
pub struct DeadlineService<S> {
    inner: S,
}

impl<S, B> Service<http::Request<B>> for DeadlineService<S>
where
    S: Service<http::Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let deadline = crate::response_date::grpc_timeout(request.headers())
            .map(|timeout| Instant::now() + timeout);
        let call = self.inner.call(request);
        Box::pin(CALLER_DEADLINE.scope(deadline, call))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_deadline_is_visible_inside_the_call_only() {
        assert_eq!(current(), None);
        let deadline = Instant::now() + Duration::from_secs(3);
        let seen = CALLER_DEADLINE
            .scope(Some(deadline), async { current() })
            .await;
        assert_eq!(seen, Some(deadline));
        assert_eq!(current(), None);
    }
}
