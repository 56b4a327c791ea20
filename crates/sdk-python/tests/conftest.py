"""Shared helpers: a local-only client per test, and a policy that trips quickly."""

from __future__ import annotations

from typing import Any, Dict, Iterator

import pytest

import switchyard

#: Trips after 5 calls at ≥ 50 % failures, stays open 200 ms, closes after 1 good probe.
FAST_POLICY: Dict[str, Any] = {
    "min_calls": 5,
    "failure_rate_threshold": 50,
    "min_instances": 1,
    "open_duration_ms": 200,
    "open_jitter_percent": 0,
    "probe_permits": 1,
    "probe_success_threshold": 1,
}


@pytest.fixture
def client() -> Iterator[switchyard.Client]:
    with switchyard.Client.local_only() as c:
        yield c


def wait_for(predicate: Any, timeout_s: float = 5.0, what: str = "condition") -> None:
    """Polls ``predicate`` until true (the agent judges local breakers every 100 ms)."""
    import time

    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.01)
