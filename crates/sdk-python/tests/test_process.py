"""Process life: fork (both behaviours), multiprocessing, interpreter exit with a live client."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import textwrap
from typing import Callable

import pytest

import switchyard
from conftest import FAST_POLICY, wait_for

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX")


def run_in_child(code: Callable[[], int], timeout_s: float = 10.0) -> int:
    """Forks, runs `code` in the child, returns its exit status; a hung child fails the test."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        status = 1
        try:
            status = code()
        except BaseException as e:  # noqa: BLE001
            print(f"child failed: {e!r}", file=sys.stderr)
        os._exit(status)
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            raise AssertionError("the child hung after fork")
        time.sleep(0.01)


def test_fork_restarts_the_agent_in_the_child() -> None:
    """A client and breaker made before fork work in the child: its own agent judges them."""
    client = switchyard.Client.local_only()
    b = client.breaker("svc/forked", policy=FAST_POLICY)
    b.allow().record(True)

    def child() -> int:
        assert client.mode == "local_only"
        assert b.state == "closed"
        # The child's agent is alive: failures here open the breaker in the child.
        for _ in range(6):
            b.allow().record(False)
        wait_for(lambda: b.state == "open", what="the child's agent to open the breaker")
        return 0

    assert run_in_child(child) == 0
    assert b.state == "closed", "the parent's breaker is untouched by the child"
    client.close()


def test_fork_with_on_fork_raise_gives_a_clear_error() -> None:
    """With on_fork="raise", a client used in a child raises SwitchyardError naming fork."""
    client = switchyard.Client(endpoints=[], on_fork="raise")
    b = client.breaker("svc/strict")

    def child() -> int:
        try:
            b.allow()
        except switchyard.SwitchyardError as e:
            assert "os.fork()" in str(e), str(e)
        else:
            return 1
        try:
            _ = client.mode
        except switchyard.SwitchyardError:
            return 0
        return 2

    assert run_in_child(child) == 0
    b.allow().record(True)  # the parent is unaffected
    client.close()


def _mp_worker(q: "multiprocessing.Queue[str]") -> None:
    q.put(_CLIENT.breaker("svc/mp").state + "/" + _CLIENT.mode)


_CLIENT = switchyard.Client.local_only()


def test_multiprocessing_fork_children_use_the_inherited_client() -> None:
    """multiprocessing with the fork start method: each child gets a working client."""
    ctx = multiprocessing.get_context("fork")
    q: "multiprocessing.Queue[str]" = ctx.Queue()
    procs = [ctx.Process(target=_mp_worker, args=(q,)) for _ in range(3)]
    for p in procs:
        p.start()
    results = [q.get(timeout=10) for _ in procs]
    for p in procs:
        p.join(10)
        assert p.exitcode == 0
    assert results == ["closed/local_only"] * 3


@pytest.mark.parametrize("close", [False, True])
def test_interpreter_exit_with_a_live_client(close: bool) -> None:
    """Exiting with a client still running (its agent retrying a dead endpoint) neither
    hangs nor crashes."""
    code = textwrap.dedent(
        f"""
        import threading, switchyard
        c = switchyard.Client("127.0.0.1:9", instance_id="exit-test", report_interval_ms=10)
        b = c.breaker("svc/exit")
        def spin():
            while True:
                try:
                    b.allow().record(True)
                except switchyard.Rejected:
                    pass
        threading.Thread(target=spin, daemon=True).start()
        if {close}:
            c.close()
        print("bye")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=20
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "bye"
