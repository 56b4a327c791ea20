"""The whole API in local-only mode: each test states its goal in its first line."""

from __future__ import annotations

import asyncio
import gc
import os
import threading
from typing import Any, List

import pytest

import switchyard
from conftest import FAST_POLICY, wait_for


def trip(b: switchyard.Breaker) -> None:
    for _ in range(10):
        try:
            b.allow().record(False)
        except switchyard.Rejected:
            return


def test_local_only_client_reports_its_mode_and_stats(client: switchyard.Client) -> None:
    """A local-only client is in mode local_only and exposes its counters as a dict."""
    assert client.mode == "local_only"
    assert client.applied_index == 0
    stats = client.stats()
    assert stats["mode"] == "local_only"
    assert set(stats) >= {"reports_queued", "reports_sent", "reports_dropped", "watch_reconnects"}


def test_endpoints_default_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """endpoints=None reads SWITCHYARD_ENDPOINTS, a str is split on commas, a list is taken."""
    monkeypatch.setenv("SWITCHYARD_ENDPOINTS", "127.0.0.1:1, 127.0.0.1:2")
    with switchyard.Client(instance_id="t-1") as c:
        assert c.endpoints == ["127.0.0.1:1", "127.0.0.1:2"]
        assert c.instance_id == "t-1"
    with switchyard.Client("a:1,b:2", instance_id="t-2") as c:
        assert c.endpoints == ["a:1", "b:2"]
    with switchyard.Client(["a:1"], instance_id="t-3") as c:
        assert c.endpoints == ["a:1"]
    monkeypatch.delenv("SWITCHYARD_ENDPOINTS")
    with switchyard.Client() as c:
        assert c.endpoints == [] and c.mode == "local_only"
        assert c.instance_id.endswith(f"-{os.getpid()}"), "default: <hostname>-<pid>"
    with switchyard.Client(endpoints=[], instance_id="svc-1") as c:
        assert c.instance_id == "svc-1"


def test_closed_client_refuses_use(client: switchyard.Client) -> None:
    """After close(), the client raises SwitchyardError instead of acting."""
    client.close()
    assert client.closed
    with pytest.raises(switchyard.SwitchyardError, match="closed"):
        client.breaker("svc/dep")
    with pytest.raises(switchyard.SwitchyardError, match="closed"):
        _ = client.mode


def test_allow_and_record_trip_the_local_breaker(client: switchyard.Client) -> None:
    """Failures recorded through permits open the breaker; then allow() raises Rejected."""
    b = client.breaker("svc/dep", policy=FAST_POLICY)
    assert b.state == "closed"
    for _ in range(6):
        b.allow().record(False, latency_s=0.001)
    wait_for(lambda: b.state == "open", what="the local breaker to open")
    with pytest.raises(switchyard.Rejected) as info:
        b.allow()
    err = info.value
    assert isinstance(err, switchyard.SwitchyardError)
    assert (err.key, err.state, err.reason) == ("svc/dep", "open", "local_open")
    assert "svc/dep" in str(err)


def test_half_open_probe_closes_the_breaker(client: switchyard.Client) -> None:
    """After open_duration one probe permit is handed out; a good probe closes the breaker."""
    b = client.breaker("svc/probe", policy=FAST_POLICY)
    trip(b)
    wait_for(lambda: b.state == "open")
    wait_for(lambda: b.state == "half_open", what="half-open")
    permit = None

    def take() -> bool:
        nonlocal permit
        try:
            permit = b.allow()
            return True
        except switchyard.Rejected as r:
            assert r.reason == "half_open_no_permit"
            return False

    wait_for(take, what="a probe permit")
    assert permit is not None and permit.is_probe and permit.kind == "local_probe"
    permit.record(True)
    wait_for(lambda: b.state == "closed", what="the breaker to close")


def test_a_dropped_probe_permit_is_released(client: switchyard.Client) -> None:
    """A probe permit garbage-collected unrecorded goes back: another call can probe."""
    b = client.breaker("svc/leak", policy=FAST_POLICY)
    trip(b)
    wait_for(lambda: b.state == "half_open")

    def probe() -> Any:
        try:
            return b.allow()
        except switchyard.Rejected:
            return None

    wait_for(lambda: (p := probe()) is not None and (p.release() or True), what="first probe")
    # Take a permit and drop it without recording: the agent must hand out another.
    got: List[Any] = []
    wait_for(lambda: (p := probe()) is not None and not got.append(p), what="second probe")
    del got[:]
    gc.collect()
    wait_for(lambda: (p := probe()) is not None and (p.record(True) or True), what="third probe")
    wait_for(lambda: b.state == "closed")


def test_permit_cannot_be_recorded_twice(client: switchyard.Client) -> None:
    """A second record() names the permit's key instead of counting the call twice."""
    p = client.breaker("svc/dep").allow()
    assert p.pending and p.kind == "normal" and not p.is_probe
    p.record(True)
    assert not p.pending
    with pytest.raises(switchyard.SwitchyardError, match="svc/dep.*already recorded"):
        p.record(True)


def test_decorator_guards_def_and_counts_failures(client: switchyard.Client) -> None:
    """@breaker on a def: values and exceptions pass through; failures open the breaker."""
    b = client.breaker("svc/deco", policy=FAST_POLICY)

    @b
    def divide(a: int, b: int = 1) -> float:
        return a / b

    assert divide(6, b=3) == 2.0
    assert divide.__name__ == "divide"
    for _ in range(6):
        with pytest.raises(ZeroDivisionError):
            divide(1, 0)
    wait_for(lambda: b.state == "open")
    with pytest.raises(switchyard.Rejected):
        divide(1, 1)


def test_failure_classifier_decides_what_counts(client: switchyard.Client) -> None:
    """failure(exc) -> False keeps the breaker closed however often the call raises."""
    b = client.breaker("svc/classified", policy=FAST_POLICY, failure=lambda e: not isinstance(e, KeyError))
    assert not b.is_failure(KeyError("x")) and b.is_failure(ValueError())

    @b
    def lookup() -> None:
        raise KeyError("missing")

    for _ in range(20):
        with pytest.raises(KeyError):
            lookup()
    lookup_bad = b(lambda: 1 / 0)
    for _ in range(20):
        with pytest.raises(ZeroDivisionError):
            lookup_bad()
    wait_for(lambda: b.state == "open", what="real failures to open it")


def test_with_block_records_like_the_decorator(client: switchyard.Client) -> None:
    """`with breaker:` records success or failure of the block; nested blocks work."""
    b = client.breaker("svc/with", policy=FAST_POLICY)
    with b as permit:
        assert permit.pending
        with b as inner:
            assert inner is not permit
        assert not inner.pending
    assert not permit.pending
    for _ in range(6):
        with pytest.raises(RuntimeError):
            with b:
                raise RuntimeError("dependency down")
    wait_for(lambda: b.state == "open")


def test_async_decorator_and_async_with(client: switchyard.Client) -> None:
    """@breaker on async def and `async with breaker:` guard coroutines, concurrently too."""
    b = client.breaker("svc/async", policy=FAST_POLICY)

    @b
    async def fetch(x: int) -> int:
        await asyncio.sleep(0.001)
        return x * 2

    @b
    async def broken() -> None:
        raise ConnectionError("refused")

    async def main() -> None:
        assert await asyncio.gather(*(fetch(i) for i in range(20))) == [i * 2 for i in range(20)]
        async with b as permit:
            assert permit.pending
        for _ in range(30):
            with pytest.raises(ConnectionError):
                await broken()

    asyncio.run(main())
    wait_for(lambda: b.state == "open")


def test_async_timeout_counts_as_failure(client: switchyard.Client) -> None:
    """guard(timeout_s=...) cancels a slow coroutine, raises Timeout, counts a failure."""
    b = client.breaker("svc/slow", policy=FAST_POLICY)

    @b.guard(timeout_s=0.01)
    async def slow() -> None:
        await asyncio.sleep(10)

    async def main() -> None:
        for _ in range(6):
            with pytest.raises(switchyard.Timeout) as info:
                await slow()
            assert isinstance(info.value, TimeoutError) and info.value.key == "svc/slow"

    asyncio.run(main())
    wait_for(lambda: b.state == "open")
    with pytest.raises(TypeError, match="timeout_s"):
        b.guard(timeout_s=1)(lambda: None)
    with pytest.raises(ValueError, match="timeout_s"):
        b.guard(timeout_s=0)


def test_cancelled_task_releases_its_permit(client: switchyard.Client) -> None:
    """A cancelled guarded coroutine neither counts as a failure nor keeps its permit."""
    b = client.breaker("svc/cancel", policy=FAST_POLICY)

    @b
    async def hang() -> None:
        await asyncio.sleep(10)

    async def main() -> None:
        for _ in range(10):
            task = asyncio.ensure_future(hang())
            await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(main())
    assert b.state == "closed"


def test_tier_and_features_default_to_full(client: switchyard.Client) -> None:
    """Without decisions a scope is at Tier.FULL and every feature is on."""
    tier = client.tier("payments")
    assert tier is switchyard.Tier.FULL and tier == 1 and isinstance(tier, int)
    assert [t.value for t in switchyard.Tier] == [1, 2, 3, 4, 5]
    assert switchyard.Tier.MAINTENANCE.name == "MAINTENANCE"
    assert client.feature_enabled("payments", "recommendations") is True


def test_fallback_skips_open_breakers_and_lists_attempts(client: switchyard.Client) -> None:
    """Fallback tries each step in order, skips open breakers, and reports every attempt."""
    primary = client.breaker("svc/primary", policy=FAST_POLICY)
    secondary = client.breaker("svc/secondary", policy=FAST_POLICY)
    calls: List[str] = []

    def ml(x: int) -> str:
        calls.append("ml")
        raise ConnectionError("ml down")

    def backup(x: int) -> str:
        calls.append("backup")
        return f"backup:{x}"

    chain = switchyard.Fallback([(primary, ml), (secondary, backup), lambda x: f"rules:{x}"])
    decided = chain.run(7)
    assert (decided.value, decided.step) == ("backup:7", "svc/secondary")
    assert [a.outcome for a in decided.attempts] == ["failed", "ok"]
    trip(primary)
    wait_for(lambda: primary.state == "open")
    calls.clear()
    assert chain(8) == "backup:8"
    assert calls == ["backup"], "an open breaker's step is skipped without calling it"

    def broken(x: int) -> str:
        raise ValueError("rules broken")

    with pytest.raises(switchyard.FallbackError) as info:
        switchyard.Fallback([(primary, ml), broken]).run(1)
    assert [(a.name, a.outcome) for a in info.value.attempts] == [
        ("svc/primary", "rejected"),
        ("test_fallback_skips_open_breakers_and_lists_attempts.<locals>.broken", "failed"),
    ]
    assert "svc/primary: rejected" in str(info.value)

    async def amain() -> None:
        async def aml(x: int) -> str:
            return f"aml:{x}"

        d = await switchyard.Fallback([(primary, aml), (secondary, aml)]).arun(3)
        assert (d.value, d.step) == ("aml:3", "svc/secondary")

    asyncio.run(amain())


def test_retry_retries_under_the_budget(client: switchyard.Client) -> None:
    """client.retry(3) retries a failing call up to 3 attempts; an empty budget stops it."""
    attempts: List[int] = []

    @client.retry(3)
    def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("try again")
        return "ok"

    assert flaky() == "ok" and len(attempts) == 3

    # A budget of 1 % of calls with no floor has no retry to give on a first call.
    empty = client.retry_budget(retry_percent=1, min_retries_per_sec=0)
    tries: List[int] = []

    @client.retry(5, budget=empty)
    def always_fails() -> None:
        tries.append(1)
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        always_fails()
    assert len(tries) == 1, "no budget, no retry"

    async def amain() -> None:
        n: List[int] = []

        @client.retry(2)
        async def aflaky() -> int:
            n.append(1)
            if len(n) == 1:
                raise ConnectionError()
            return len(n)

        assert await aflaky() == 2

    asyncio.run(amain())


def test_retry_never_retries_a_rejection(client: switchyard.Client) -> None:
    """A call rejected by an open breaker is not retried (the breaker already said no)."""
    b = client.breaker("svc/noretry", policy=FAST_POLICY)
    trip(b)
    wait_for(lambda: b.state == "open")
    n: List[int] = []

    @client.retry(5).through(b)
    @b
    def call() -> None:
        n.append(1)

    with pytest.raises(switchyard.Rejected):
        call()
    assert n == []


def test_bulkhead_rejects_beyond_max_concurrent() -> None:
    """Bulkhead(2): a third concurrent call is rejected at once; slots come back."""
    bh = switchyard.Bulkhead(2)
    with bh, bh:
        assert bh.in_flight == 2
        with pytest.raises(switchyard.Rejected) as info:
            with bh:
                pass
        assert info.value.reason == "bulkhead"
    assert bh.in_flight == 0 and bh.rejected_total == 1
    started, release = threading.Event(), threading.Event()

    @bh
    def busy() -> None:
        started.set()
        release.wait()

    threads = [threading.Thread(target=busy) for _ in range(2)]
    for t in threads:
        t.start()
    wait_for(lambda: bh.in_flight == 2)
    with pytest.raises(switchyard.Rejected):
        busy()
    release.set()
    for t in threads:
        t.join()
    assert bh.in_flight == 0


def test_another_thread_progresses_while_calls_run(client: switchyard.Client) -> None:
    """A guarded call that blocks (sleeping, with the GIL released) does not stop others."""
    b = client.breaker("svc/threads")
    gate = threading.Event()
    progressed: List[int] = []

    @b
    def blocking() -> None:
        gate.wait(5)

    t = threading.Thread(target=blocking)
    t.start()
    for i in range(1000):
        b.allow().record(True)
        progressed.append(i)
    gate.set()
    t.join()
    assert len(progressed) == 1000
