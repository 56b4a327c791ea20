//! OpenTelemetry spans around guarded calls: off by default, free when off.
//!
//! With [`crate::ClientBuilder::tracing`] (or [`crate::ClientBuilder::tracer`]) on, every
//! call through the SDK's one wrapped-call primitive — [`crate::Breaker::call`],
//! [`crate::Guard`], [`crate::Fallback`] and the tower layer — records one span
//! ([`SPAN_CALL`]) in the trace that is current in the caller (`opentelemetry::Context`),
//! and the call itself runs with that span as its current context, so the spans and the
//! `traceparent` of what it calls hang under it. A fallback chain adds one span around its
//! steps ([`SPAN_FALLBACK`]) naming the step that decided.
//!
//! ```text
//!  caller's span
//!    └─ switchyard.fallback        decided_by = ml-cheap
//!         ├─ switchyard.call       key = payments/ml-primary  decision = rejected  reason = cluster_open
//!         └─ switchyard.call       key = payments/ml-cheap    decision = admitted  outcome = success
//! ```
//!
//! Attributes ([`attr`]): the breaker key, the decision (`admitted`, `rejected` with its
//! reason, `probe` with its permit kind), the breaker state and the SDK mode when the call
//! was decided, the outcome when it completed, and for a fallback step its name.
//!
//! Free when off: a breaker handle holds `Option<Arc<CallTracing>>`, `None` unless its
//! client was built with tracing. Each entry point tests it once and then runs either the
//! plain wrapped call or the same call inside [`Traced`], so an untraced call runs the code
//! it ran before tracing existed (the counting-allocator test and the instruction counts in
//! docs/benchmarks.md hold it to that).

use std::borrow::{Borrow, Cow};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Poll, ready};
use std::time::Duration;

use opentelemetry::global::BoxedTracer;
use opentelemetry::trace::{Span, SpanBuilder, Status, TraceContextExt};
use opentelemetry::{Context, KeyValue};
use switchyard_core::BreakerState;

use crate::agent_state::Published;
use crate::wrapped_call::{Recorded, WrappedCall};
use crate::{Breaker, Mode, Outcome, Permit, Rejected};

/// Name of the span of one guarded call (one attempt, for a [`crate::Guard`] that retries).
pub const SPAN_CALL: &str = "switchyard.call";
/// Name of the span around a fallback chain.
pub const SPAN_FALLBACK: &str = "switchyard.fallback";
/// The instrumentation scope of the global provider's tracer.
pub const TRACER_NAME: &str = "switchyard";

/// Span attribute names, shared with the Python SDK.
pub mod attr {
    /// The breaker key, `scope/name`.
    pub const KEY: &str = "switchyard.breaker.key";
    /// `admitted`, `rejected` or `probe` (a half-open trial call).
    pub const DECISION: &str = "switchyard.decision";
    /// Why a call was rejected (`cluster_open`, `forced_open`, `local_open`,
    /// `half_open_no_permit`, `bulkhead`).
    pub const REJECT_REASON: &str = "switchyard.reject_reason";
    /// The permit of an admitted call: `normal`, `cluster_probe` or `local_probe`.
    pub const PERMIT: &str = "switchyard.permit";
    /// The breaker state this instance saw when deciding (snake_case, e.g. `half_open`).
    pub const STATE: &str = "switchyard.breaker.state";
    /// The SDK mode when deciding: `cluster`, `stale` or `local_only`.
    pub const MODE: &str = "switchyard.sdk.mode";
    /// How an admitted call ended: `success`, `failure`, `timeout` or `cancelled`.
    pub const OUTCOME: &str = "switchyard.outcome";
    /// The fallback step a call ran for.
    pub const FALLBACK_STEP: &str = "switchyard.fallback.step";
    /// The fallback step whose answer the chain returned (absent when every step failed).
    pub const FALLBACK_DECIDED_BY: &str = "switchyard.fallback.decided_by";
    /// Steps a fallback chain tried, the deciding one included.
    pub const FALLBACK_STEPS_TRIED: &str = "switchyard.fallback.steps_tried";
}

/// Values of [`attr::DECISION`].
pub mod decision {
    /// An ordinary admitted call.
    pub const ADMITTED: &str = "admitted";
    /// Not admitted: the call was not made.
    pub const REJECTED: &str = "rejected";
    /// Admitted under a probe permit (a half-open trial call).
    pub const PROBE: &str = "probe";
}

/// The snake_case name of a breaker state, as spans and the Python SDK show it.
pub fn state_label(state: BreakerState) -> &'static str {
    match state {
        BreakerState::Closed => "closed",
        BreakerState::Open => "open",
        BreakerState::HalfOpen => "half_open",
        BreakerState::ForcedOpen => "forced_open",
        BreakerState::ForcedClosed => "forced_closed",
        BreakerState::Disabled => "disabled",
        BreakerState::MetricsOnly => "metrics_only",
    }
}

/// Where a traced breaker reads the SDK mode from.
#[derive(Debug)]
pub(crate) enum ModeSource {
    /// Its client's published mode.
    Client(Arc<Published>),
    /// A fixed mode (breakers detached from any client, in tests and benchmarks).
    #[cfg_attr(not(any(test, feature = "bench")), allow(dead_code))]
    Fixed(Mode),
}

/// What a client built with tracing gives each of its breaker handles.
#[derive(Debug)]
pub(crate) struct CallTracing {
    tracer: BoxedTracer,
    mode: ModeSource,
}

impl CallTracing {
    pub(crate) fn new(tracer: BoxedTracer, mode: ModeSource) -> Self {
        Self { tracer, mode }
    }

    fn mode(&self) -> Mode {
        match &self.mode {
            ModeSource::Client(published) => Mode::from_u8(published.mode.load(Relaxed)),
            ModeSource::Fixed(mode) => *mode,
        }
    }

    /// The attributes every decision carries.
    fn decided(
        &self,
        breaker: &Breaker,
        decision: &'static str,
        step: Option<&Cow<'static, str>>,
    ) -> Vec<KeyValue> {
        let mut attributes = Vec::with_capacity(6);
        attributes.push(KeyValue::new(
            attr::KEY,
            Arc::clone(&breaker.shared.key_str),
        ));
        attributes.push(KeyValue::new(attr::DECISION, decision));
        attributes.push(KeyValue::new(attr::STATE, state_label(breaker.state())));
        attributes.push(KeyValue::new(attr::MODE, self.mode().as_str()));
        if let Some(step) = step {
            attributes.push(KeyValue::new(attr::FALLBACK_STEP, step.clone()));
        }
        attributes
    }

    /// Starts the span of an admitted call, as a child of the caller's current context.
    fn admitted(
        &self,
        breaker: &Breaker,
        permit: &Permit,
        step: Option<&Cow<'static, str>>,
    ) -> CallSpan {
        let decision = if permit.is_probe() {
            decision::PROBE
        } else {
            decision::ADMITTED
        };
        let mut attributes = self.decided(breaker, decision, step);
        attributes.push(KeyValue::new(attr::PERMIT, permit.kind().as_str()));
        let span = SpanBuilder::from_name(SPAN_CALL)
            .with_attributes(attributes)
            .start_with_context(&self.tracer, &Context::current());
        CallSpan {
            cx: Context::current_with_span(span),
            finished: false,
        }
    }

    /// Records a rejected call: a span that ends at once, with the reason.
    #[cold]
    #[inline(never)]
    pub(crate) fn rejected(
        &self,
        breaker: &Breaker,
        rejected: &Rejected,
        step: Option<&Cow<'static, str>>,
    ) {
        let mut attributes = self.decided(breaker, decision::REJECTED, step);
        attributes.push(KeyValue::new(attr::REJECT_REASON, rejected.reason.as_str()));
        let mut span = SpanBuilder::from_name(SPAN_CALL)
            .with_attributes(attributes)
            .with_status(Status::error(rejected.to_string()))
            .start_with_context(&self.tracer, &Context::current());
        span.end();
    }

    /// Starts the span of a fallback chain; the chain runs its steps inside the returned
    /// context.
    pub(crate) fn fallback(&self) -> Context {
        let span = SpanBuilder::from_name(SPAN_FALLBACK)
            .start_with_context(&self.tracer, &Context::current());
        Context::current_with_span(span)
    }
}

/// Records `rejected` on `breaker`'s tracing, if it has any (one branch when off).
#[inline]
pub(crate) fn on_rejected(breaker: &Breaker, rejected: &Rejected) {
    if let Some(tracing) = &breaker.tracing {
        tracing.rejected(breaker, rejected, None);
    }
}

impl CallTracing {
    /// [`WrappedCall::start`] with a span: the decision is recorded, and the call is made
    /// and polled inside the span (`step`: the fallback step it runs for).
    pub(crate) fn start<B, Fut, K, F>(
        &self,
        breaker: B,
        classifier: K,
        timeout: Option<Duration>,
        step: Option<&Cow<'static, str>>,
        call: F,
    ) -> Result<Traced<WrappedCall<B, Fut, K>>, Rejected>
    where
        B: Borrow<Breaker>,
        F: FnOnce() -> Fut,
    {
        let b = breaker.borrow();
        let permit = match b.allow() {
            Ok(permit) => permit,
            Err(rejected) => {
                self.rejected(b, &rejected, step);
                return Err(rejected);
            }
        };
        let span = self.admitted(b, &permit, step);
        let call = {
            let _attached = span.cx.clone().attach();
            WrappedCall::new(Some((breaker, permit)), classifier, timeout, call)
        };
        Ok(Traced {
            call,
            span: Some(Box::new(span)),
        })
    }
}

pin_project_lite::pin_project! {
    /// A [`WrappedCall`] with its span: polled inside it, ended with the call's outcome
    /// (`cancelled` when dropped mid-call).
    pub(crate) struct Traced<C> {
        #[pin]
        call: C,
        span: Option<Box<CallSpan>>,
    }
}

impl<C, T, E> Future for Traced<C>
where
    C: Future<Output = Recorded<T, E>>,
{
    type Output = Recorded<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let polled = match this.span.as_ref() {
            Some(span) => {
                let _attached = span.cx.clone().attach();
                this.call.poll(cx)
            }
            None => this.call.poll(cx),
        };
        let recorded = ready!(polled);
        if let Some(mut span) = this.span.take() {
            span.finish(recorded.outcome, recorded.result.is_err());
        }
        Poll::Ready(recorded)
    }
}

/// The span of one admitted call, in the context the call runs in. Dropped before
/// [`CallSpan::finish`] (the call was cancelled), it ends with outcome `cancelled`.
#[derive(Debug)]
pub(crate) struct CallSpan {
    cx: Context,
    finished: bool,
}

impl CallSpan {
    /// Ends the span with the call's outcome (`timed_out`: the timeout fired first).
    fn finish(&mut self, outcome: Outcome, timed_out: bool) {
        let label = match (timed_out, outcome) {
            (true, _) => "timeout",
            (false, Outcome::Success) => "success",
            (false, Outcome::Failure) => "failure",
        };
        self.end(label, outcome == Outcome::Failure);
    }

    fn end(&mut self, label: &'static str, failed: bool) {
        self.finished = true;
        let span = self.cx.span();
        span.set_attribute(KeyValue::new(attr::OUTCOME, label));
        if failed {
            span.set_status(Status::error(label));
        }
        span.end();
    }
}

impl Drop for CallSpan {
    fn drop(&mut self) {
        if !self.finished {
            self.end("cancelled", false);
        }
    }
}

/// Ends a fallback chain's span: which step decided, how many steps were tried.
pub(crate) fn end_fallback(
    cx: &Context,
    decided_by: Option<Cow<'static, str>>,
    steps_tried: usize,
) {
    let span = cx.span();
    span.set_attribute(KeyValue::new(
        attr::FALLBACK_STEPS_TRIED,
        i64::try_from(steps_tried).unwrap_or(i64::MAX),
    ));
    match decided_by {
        Some(step) => span.set_attribute(KeyValue::new(attr::FALLBACK_DECIDED_BY, step)),
        None => span.set_status(Status::error("every fallback step failed")),
    }
    span.end();
}

#[cfg(test)]
#[path = "otel_test.rs"]
mod tests;
