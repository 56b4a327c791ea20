"""OpenTelemetry spans around guarded calls, for clients made with ``Client(tracing=True)``.

``opentelemetry-api`` is optional: without it, a traced client works and records nothing.
With it and a tracer provider configured, each guarded call records one span
(``switchyard.call``) in the current trace, and the call runs inside it (so the spans and
the W3C ``traceparent`` of what it calls hang under it). Every attribute value comes from
the native SDK: the decision and permit kind from the ``Permit``, the reason and state from
``Rejected``, the state and mode from the breaker, the outcome from what the permit recorded.
The span and attribute names are the Rust SDK's (``switchyard._switchyard.ATTR_*``).
"""

from __future__ import annotations

from typing import Any, MutableMapping, Optional

from . import _switchyard as _n
from ._errors import Rejected
from ._switchyard import Permit, _Breaker

try:
    from opentelemetry import context as _context
    from opentelemetry import propagate as _propagate
    from opentelemetry import trace as _trace
    from opentelemetry.trace import Status, StatusCode
except ImportError:  # pragma: no cover - exercised by a test in a process without it
    _trace = None  # type: ignore[assignment]

#: Whether ``opentelemetry-api`` could be imported.
AVAILABLE = _trace is not None

# A proxy until a provider is set, then the provider's tracer: fetched once, not per call.
_TRACER: Any = _trace.get_tracer(_n.TRACER_NAME) if AVAILABLE else None


def traced(breaker: _Breaker) -> bool:
    """Whether calls through ``breaker`` record spans."""
    return AVAILABLE and breaker._tracing


class CallSpan:
    """The span of one guarded call: started (and made current) before the breaker decides,
    ended once the permit is recorded or released."""

    __slots__ = ("_span", "_token", "permit")

    def __init__(self, breaker: _Breaker, step: Optional[str] = None) -> None:
        """Starts the span and asks ``breaker`` for a permit; a rejection ends the span
        with its reason and is raised."""
        attributes = {_n.ATTR_KEY: breaker.key, _n.ATTR_MODE: breaker._mode}
        if step is not None:
            attributes[_n.ATTR_FALLBACK_STEP] = step
        self._span = _TRACER.start_span(_n.SPAN_CALL, attributes=attributes)
        self._token = _context.attach(_trace.set_span_in_context(self._span))
        try:
            self.permit = breaker.allow()
        except Rejected as exc:
            self._span.set_attributes(
                {
                    _n.ATTR_DECISION: _n.DECISION_REJECTED,
                    _n.ATTR_REJECT_REASON: exc.reason,
                    _n.ATTR_STATE: exc.state,
                }
            )
            self._span.set_status(Status(StatusCode.ERROR, str(exc)))
            self._close()
            raise
        self._span.set_attributes(
            {
                _n.ATTR_DECISION: self.permit.decision,
                _n.ATTR_PERMIT: self.permit.kind or "normal",
                _n.ATTR_STATE: breaker.state,
            }
        )

    def inject(self, headers: MutableMapping[str, Any]) -> None:
        """Writes this span's W3C ``traceparent`` (and ``tracestate``) into ``headers``."""
        _propagate.inject(headers)

    def end(self, timed_out: bool = False) -> None:
        """Ends the span with what the permit recorded (``released``: cancelled)."""
        outcome = self.permit.outcome
        if timed_out:
            label = "timeout"
        elif outcome in ("success", "failure"):
            label = outcome
        else:
            label = "cancelled"
        self._span.set_attribute(_n.ATTR_OUTCOME, label)
        if outcome == "failure":
            self._span.set_status(Status(StatusCode.ERROR, label))
        self._close()

    def _close(self) -> None:
        _context.detach(self._token)
        self._span.end()


class FallbackSpan:
    """The span around a fallback chain; the steps' call spans are its children."""

    __slots__ = ("_span", "_token")

    def __init__(self) -> None:
        self._span = _TRACER.start_span(_n.SPAN_FALLBACK)
        self._token = _context.attach(_trace.set_span_in_context(self._span))

    def end(self, decided_by: Optional[str], steps_tried: int) -> None:
        self._span.set_attribute(_n.ATTR_FALLBACK_STEPS_TRIED, steps_tried)
        if decided_by is None:
            self._span.set_status(Status(StatusCode.ERROR, "every fallback step failed"))
        else:
            self._span.set_attribute(_n.ATTR_FALLBACK_DECIDED_BY, decided_by)
        _context.detach(self._token)
        self._span.end()


def call(breaker: _Breaker, func: Any, args: Any, kwargs: Any, step: Optional[str] = None) -> Any:
    """The traced sync guarded call: the permit records (natively) on leaving its block."""
    span = CallSpan(breaker, step)
    try:
        with span.permit:
            return func(*args, **kwargs)
    finally:
        span.end()


__all__ = ["AVAILABLE", "CallSpan", "FallbackSpan", "Permit", "call", "traced"]
