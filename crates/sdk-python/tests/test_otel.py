"""OpenTelemetry spans of guarded calls (``Client(tracing=True)``), seen by the SDK's
in-memory exporter, and the W3C ``traceparent`` the HTTP integrations send to a real server.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Iterator, List, Optional

import httpx
import pytest
import requests
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

import switchyard
import switchyard.httpx
import switchyard.requests
from conftest import FAST_POLICY, wait_for

_EXPORTER = InMemorySpanExporter()
_PROVIDER = TracerProvider()
_PROVIDER.add_span_processor(SimpleSpanProcessor(_EXPORTER))
trace.set_tracer_provider(_PROVIDER)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    _EXPORTER.clear()
    yield _EXPORTER


@pytest.fixture
def traced() -> Iterator[switchyard.Client]:
    with switchyard.Client(endpoints=[], tracing=True) as c:
        yield c


def calls(exporter: InMemorySpanExporter, key: str) -> List[ReadableSpan]:
    return [
        s
        for s in exporter.get_finished_spans()
        if s.name == "switchyard.call" and (s.attributes or {}).get("switchyard.breaker.key") == key
    ]


def attrs(span: ReadableSpan) -> Dict[str, Any]:
    return dict(span.attributes or {})


def test_a_guarded_call_joins_the_current_trace(
    traced: switchyard.Client, spans: InMemorySpanExporter
) -> None:
    """The decorator's span is a child of the caller's, and the call runs inside it."""
    ml = traced.breaker("payments/ml-fraud")
    seen: List[int] = []

    @ml
    def score() -> float:
        seen.append(trace.get_current_span().get_span_context().span_id)
        return 0.9

    with trace.get_tracer("test").start_as_current_span("checkout") as parent:
        assert score() == 0.9
    [call] = calls(spans, "payments/ml-fraud")
    assert call.context is not None and call.parent is not None
    assert call.context.trace_id == parent.get_span_context().trace_id
    assert call.parent.span_id == parent.get_span_context().span_id
    assert seen == [call.context.span_id], "the function ran inside the call's span"
    assert attrs(call) == {
        "switchyard.breaker.key": "payments/ml-fraud",
        "switchyard.sdk.mode": "local_only",
        "switchyard.decision": "admitted",
        "switchyard.permit": "normal",
        "switchyard.breaker.state": "closed",
        "switchyard.outcome": "success",
    }


def test_an_open_breaker_records_the_rejection_reason(
    traced: switchyard.Client, spans: InMemorySpanExporter
) -> None:
    """Failures trip the local breaker; the rejected call's span says why, and errs."""
    ml = traced.breaker("payments/ml-open", policy=FAST_POLICY)

    def boom() -> None:
        raise RuntimeError("model down")

    for _ in range(10):
        with pytest.raises((RuntimeError, switchyard.Rejected)):
            ml.call(boom)
    wait_for(lambda: ml.state == "open", what="the breaker to open")
    with pytest.raises(switchyard.Rejected) as rejected:
        ml.call(lambda: 1)
    assert rejected.value.reason == "local_open"
    last = calls(spans, "payments/ml-open")[-1]
    a = attrs(last)
    assert a["switchyard.decision"] == "rejected"
    assert a["switchyard.reject_reason"] == "local_open"
    assert a["switchyard.breaker.state"] == "open"
    assert "switchyard.outcome" not in a, "the call was not made"
    assert last.status.status_code == StatusCode.ERROR
    failed = [attrs(s) for s in calls(spans, "payments/ml-open") if attrs(s)["switchyard.decision"] == "admitted"]
    assert failed and all(f["switchyard.outcome"] == "failure" for f in failed)

    # phase: after the open duration, the probe is recorded as one
    def probe() -> int:
        return ml.call(lambda: 1)

    wait_for(lambda: _admitted(probe), what="a probe to be admitted")
    assert attrs(calls(spans, "payments/ml-open")[-1])["switchyard.decision"] == "probe"


def _admitted(call: Any) -> bool:
    try:
        call()
    except switchyard.Rejected:
        return False
    return True


def test_context_manager_async_and_fallback_spans(
    traced: switchyard.Client, spans: InMemorySpanExporter
) -> None:
    """``with breaker:``, ``acall`` and a fallback chain naming the step that decided."""
    ml = traced.breaker("payments/ml-cm")
    with pytest.raises(KeyError):
        with ml:
            raise KeyError("x")
    assert attrs(calls(spans, "payments/ml-cm")[0])["switchyard.outcome"] == "failure"

    async def fetch() -> int:
        return 7

    assert asyncio.run(ml.acall(fetch)) == 7
    assert attrs(calls(spans, "payments/ml-cm")[1])["switchyard.outcome"] == "success"

    async def slow() -> int:
        await asyncio.sleep(5)
        return 0

    with pytest.raises(switchyard.Timeout):
        asyncio.run(ml.acall(slow, timeout_s=0.01))
    assert attrs(calls(spans, "payments/ml-cm")[2])["switchyard.outcome"] == "timeout"

    primary = traced.breaker("payments/ml-primary")

    def primary_down() -> float:
        raise RuntimeError("down")

    decided = switchyard.Fallback([(primary, primary_down), lambda: 0.5]).run()
    assert decided.value == 0.5
    [chain] = [s for s in spans.get_finished_spans() if s.name == "switchyard.fallback"]
    step = calls(spans, "payments/ml-primary")[0]
    assert attrs(chain)["switchyard.fallback.decided_by"] == decided.step
    assert attrs(chain)["switchyard.fallback.steps_tried"] == 2
    assert step.parent is not None and chain.context is not None
    assert step.parent.span_id == chain.context.span_id
    assert attrs(step)["switchyard.fallback.step"] == "payments/ml-primary"


def test_tracing_off_records_nothing(spans: InMemorySpanExporter) -> None:
    with switchyard.Client(endpoints=[]) as client:
        assert not client.tracing
        client.breaker("payments/quiet").call(lambda: 1)
    assert calls(spans, "payments/quiet") == []


class Recorder(BaseHTTPRequestHandler):
    traceparents: List[Optional[str]] = []

    def do_GET(self) -> None:  # noqa: N802
        Recorder.traceparents.append(self.headers.get("traceparent"))
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    Recorder.traceparents = []
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def traceparent_of(span: ReadableSpan) -> str:
    assert span.context is not None
    c = span.context
    return f"00-{c.trace_id:032x}-{c.span_id:016x}-{int(c.trace_flags):02x}"


def test_httpx_sends_the_calls_traceparent(
    traced: switchyard.Client, spans: InMemorySpanExporter, server: str
) -> None:
    """Sync and async: the server receives the switchyard span's traceparent, in the
    caller's trace."""
    transport = switchyard.httpx.Transport(traced, key="http/recorder")
    with trace.get_tracer("test").start_as_current_span("checkout") as parent:
        with httpx.Client(transport=transport) as http:
            assert http.get(server).status_code == 200

        async def get() -> int:
            async with httpx.AsyncClient(transport=transport) as ahttp:
                return (await ahttp.get(server)).status_code

        assert asyncio.run(get()) == 200
    sync_call, async_call = calls(spans, "http/recorder")
    assert Recorder.traceparents == [traceparent_of(sync_call), traceparent_of(async_call)]
    assert sync_call.context is not None
    assert sync_call.context.trace_id == parent.get_span_context().trace_id
    assert attrs(sync_call)["switchyard.outcome"] == "success"


def test_requests_sends_the_calls_traceparent(
    traced: switchyard.Client, spans: InMemorySpanExporter, server: str
) -> None:
    session = requests.Session()
    session.mount("http://", switchyard.requests.Adapter(traced, key="http/recorder-rq"))
    assert session.get(server).status_code == 200
    [call] = calls(spans, "http/recorder-rq")
    assert Recorder.traceparents == [traceparent_of(call)]


def test_untraced_http_sends_no_traceparent(client: switchyard.Client, server: str) -> None:
    with httpx.Client(transport=switchyard.httpx.Transport(client, key="http/plain")) as http:
        assert http.get(server).status_code == 200
    assert Recorder.traceparents == [None]


def test_tracing_without_opentelemetry_installed() -> None:
    """In a process where ``opentelemetry`` cannot be imported, a traced client works."""
    code = (
        "import sys; sys.modules['opentelemetry'] = None\n"
        "import switchyard\n"
        "from switchyard import _otel\n"
        "assert not _otel.AVAILABLE\n"
        "c = switchyard.Client(endpoints=[], tracing=True)\n"
        "b = c.breaker('payments/ml-fraud')\n"
        "assert b(lambda: 41)() == 41 and b.call(lambda: 1) == 1\n"
        "with b: pass\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
