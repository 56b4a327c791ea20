"""Switchyard's Python SDK against the Python circuit breakers in use today.

    python crates/sdk-python/bench/compare.py            # tables
    python crates/sdk-python/bench/compare.py --json     # one JSON document
    python crates/sdk-python/bench/compare.py --skip-fleet
    python crates/sdk-python/bench/compare.py --tracing  # only: tracing off vs on

1. Overhead per guarded call around one trivial function, sync and async, all in this run:
   switchyard, pybreaker (in memory and with CircuitRedisStorage), circuitbreaker, aiobreaker,
   purgatory (in memory and with Redis). Redis is a real `redis-server` started here on a
   loopback port. Overhead = guarded call − bare call, median of several rounds.
2. Fleet scenario: 8 Python processes × 50 calls/s; the dependency dies, then recovers;
   then the shared backend (Redis, or every Switchyard node) is killed mid-run. Once with
   pybreaker + Redis, once with switchyard against a local 3-node cluster.

Needs: pip install pybreaker circuitbreaker aiobreaker purgatory redis; redis-server on PATH;
the `switchyard` binary (SWITCHYARD_BIN, else target/release, else target/debug).
Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

import fleet  # noqa: E402


def progress(msg: str) -> None:
    print(f"[compare] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Redis:
    """A real redis-server on a loopback port, no persistence."""

    def __init__(self) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            raise SystemExit("redis-server not found: apt-get install redis-server")
        self.port = free_port()
        self.dir = tempfile.TemporaryDirectory(prefix="compare-redis-")
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir.name],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("redis-server did not start")
                time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def close(self) -> None:
        self.kill()
        self.dir.cleanup()


# ---------------------------------------------------------------------------- overhead


def trivial() -> int:
    return 1


async def atrivial() -> int:
    return 1


def time_sync(fn: Callable[[], Any], n: int) -> float:
    """ns per call of fn, median of 5 rounds of n calls."""
    rounds = []
    for _ in range(5):
        t0 = time.perf_counter_ns()
        for _ in range(n):
            fn()
        rounds.append((time.perf_counter_ns() - t0) / n)
    return statistics.median(rounds)


def time_async(fn: Callable[[], Awaitable[Any]], n: int) -> float:
    async def run() -> float:
        rounds = []
        for _ in range(5):
            t0 = time.perf_counter_ns()
            for _ in range(n):
                await fn()
            rounds.append((time.perf_counter_ns() - t0) / n)
        return statistics.median(rounds)

    return asyncio.run(run())


def overhead(redis: Redis, quick: bool) -> List[Dict[str, Any]]:
    import aiobreaker
    import circuitbreaker
    import purgatory
    import pybreaker
    import redis as redis_py

    import switchyard

    n_mem = 20_000 if quick else 200_000
    n_net = 500 if quick else 3_000
    rows: List[Dict[str, Any]] = []
    bare_sync = time_sync(trivial, n_mem)
    bare_async = time_async(atrivial, n_mem)

    def add(name: str, mode: str, per_call_ns: float, n: int) -> None:
        bare = bare_sync if mode == "sync" else bare_async
        rows.append({
            "breaker": name, "mode": mode, "calls": n * 5,
            "per_call_ns": round(per_call_ns, 1),
            "overhead_ns": round(max(per_call_ns - bare, 0.0), 1),
        })
        progress(f"{name} ({mode}): {per_call_ns - bare:.0f} ns overhead")

    client = switchyard.Client.local_only()
    sy = client.breaker("bench/overhead")
    add("switchyard @breaker", "sync", time_sync(sy(trivial), n_mem), n_mem)

    def allow_record() -> int:
        p = sy.allow()
        r = trivial()
        p.record(True)
        return r

    add("switchyard allow/record", "sync", time_sync(allow_record, n_mem), n_mem)
    add("switchyard @breaker", "async", time_async(sy(atrivial), n_mem), n_mem)

    pb = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=60)
    add("pybreaker (memory)", "sync", time_sync(pb(trivial), n_mem), n_mem)
    rclient = redis_py.Redis.from_url(redis.url)
    storage = pybreaker.CircuitRedisStorage(pybreaker.STATE_CLOSED, rclient, namespace="ovh")
    pbr = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=60, state_storage=storage)
    add("pybreaker + Redis", "sync", time_sync(pbr(trivial), n_net), n_net)

    cb = circuitbreaker.circuit(failure_threshold=5, recovery_timeout=60)
    add("circuitbreaker", "sync", time_sync(cb(trivial), n_mem), n_mem)
    cba = circuitbreaker.circuit(failure_threshold=5, recovery_timeout=60)
    add("circuitbreaker", "async", time_async(cba(atrivial), n_mem), n_mem)

    ab = aiobreaker.CircuitBreaker(fail_max=5)
    add("aiobreaker", "async", time_async(ab(atrivial), n_mem), n_mem)

    pf = purgatory.SyncCircuitBreakerFactory(default_threshold=5)
    add("purgatory (memory)", "sync", time_sync(pf("ovh")(trivial), n_mem // 4), n_mem // 4)
    try:
        pfr = purgatory.SyncCircuitBreakerFactory(
            default_threshold=5, uow=purgatory.SyncRedisUnitOfWork(redis.url)
        )
        pfr.initialize()
        add("purgatory + Redis", "sync", time_sync(pfr("ovh")(trivial), n_net), n_net)
    except Exception as exc:  # purgatory 3.0.1's sync Redis repository awaits nothing
        rows.append({"breaker": "purgatory + Redis", "mode": "sync", "calls": 0,
                     "per_call_ns": None, "overhead_ns": None,
                     "error": f"{type(exc).__name__}: {exc}"})
        progress(f"purgatory + Redis (sync): fails: {exc!r}")

    async def purgatory_async(uow: Any, n: int) -> float:
        f = purgatory.AsyncCircuitBreakerFactory(default_threshold=5, uow=uow)
        await f.initialize()
        guarded = f("ovh")(atrivial)
        rounds = []
        for _ in range(5):
            t0 = time.perf_counter_ns()
            for _ in range(n):
                await guarded()
            rounds.append((time.perf_counter_ns() - t0) / n)
        return statistics.median(rounds)

    add("purgatory (memory)", "async",
        asyncio.run(purgatory_async(None, n_mem // 4)), n_mem // 4)
    add("purgatory + Redis", "async",
        asyncio.run(purgatory_async(purgatory.AsyncRedisUnitOfWork(redis.url), n_net)), n_net)
    client.close()
    return rows


def tracing_cost(quick: bool) -> List[Dict[str, Any]]:
    """A guarded sync call (``@breaker``) with tracing off, on with no tracer provider
    configured (opentelemetry-api's no-op), and on with the SDK's provider recording every
    span (no exporter). Needs opentelemetry-api and opentelemetry-sdk."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    import switchyard

    n = 20_000 if quick else 200_000
    bare = time_sync(trivial, n)
    rows: List[Dict[str, Any]] = []

    def add(name: str, client: switchyard.Client) -> None:
        guarded = client.breaker("bench/tracing")(trivial)
        per_call = time_sync(guarded, n)
        rows.append({"breaker": name, "mode": "sync", "calls": n * 5,
                     "per_call_ns": round(per_call, 1),
                     "overhead_ns": round(max(per_call - bare, 0.0), 1)})
        progress(f"{name}: {per_call - bare:.0f} ns overhead")

    with switchyard.Client(endpoints=[]) as off:
        add("switchyard @breaker, tracing off", off)
    with switchyard.Client(endpoints=[], tracing=True) as on:
        add("switchyard @breaker, tracing on, no provider", on)
        trace.set_tracer_provider(TracerProvider())
        add("switchyard @breaker, tracing on, SDK provider", on)
    return rows


def print_overhead(rows: List[Dict[str, Any]]) -> None:
    sy = next(r for r in rows if r["breaker"] == "switchyard @breaker" and r["mode"] == "sync")
    print("\nOverhead per guarded call (trivial function; guarded − bare, median of 5 rounds)\n")
    print(f"{'breaker':<26}{'mode':<7}{'per call':>12}{'overhead':>12}{'× switchyard':>14}")
    for r in rows:
        if r["overhead_ns"] is None:
            print(f"{r['breaker']:<26}{r['mode']:<7}  does not run: {r['error'][:60]}")
            continue
        ratio = r["overhead_ns"] / sy["overhead_ns"] if sy["overhead_ns"] else float("nan")
        print(f"{r['breaker']:<26}{r['mode']:<7}{r['per_call_ns']:>9.0f} ns"
              f"{r['overhead_ns']:>9.0f} ns{ratio:>13.1f}×")


# ---------------------------------------------------------------------------- fleet


def print_fleet(results: List[Dict[str, Any]]) -> None:
    print("\nFleet scenario: 8 processes × 50 calls/s; dependency down, up; backend killed\n")
    cols = [
        ("failed_at_onset", "failed at onset"),
        ("failed_while_down", "failed while down"),
        ("probe_calls_in_recovery", "probe calls"),
        ("rejected", "rejected"),
        ("breaker_errors_backend_killed", "breaker errors (backend killed)"),
        ("ok_backend_killed", "ok (backend killed)"),
        ("max_call_ms_backend_killed", "max call ms (backend killed)"),
        ("max_call_ms_before_kill", "max call ms (before)"),
    ]
    print(f"{'':<34}" + "".join(f"{r['name']:>24}" for r in results))
    for key, title in cols:
        print(f"{title:<34}" + "".join(f"{r[key]!s:>24}" for r in results))


def main() -> None:
    parser = argparse.ArgumentParser(description="switchyard vs Python circuit breakers")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--quick", action="store_true", help="fewer calls (smoke run)")
    parser.add_argument("--skip-fleet", action="store_true")
    parser.add_argument("--tracing", action="store_true",
                        help="only the cost of tracing off vs on (no Redis, no fleet)")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        fleet.worker(args.worker)
        return
    if args.tracing:
        rows = tracing_cost(args.quick)
        machine = fleet.machine()
        if args.json:
            print(json.dumps({"machine": machine, "tracing": rows}, indent=2))
        else:
            print(f"machine: {machine['cpu']} ({machine['cpus']} CPUs), python {machine['python']}")
            for r in rows:
                print(f"{r['breaker']:<48} {r['per_call_ns']:>9.1f} ns/call"
                      f"  overhead {r['overhead_ns']:>9.1f} ns")
        return
    release = HERE.parents[2] / "target" / "release" / "switchyard"
    if "SWITCHYARD_BIN" not in os.environ and release.exists():
        os.environ["SWITCHYARD_BIN"] = str(release)
    redis = Redis()
    try:
        progress(f"redis-server on 127.0.0.1:{redis.port}")
        rows = overhead(redis, args.quick)
        results: List[Dict[str, Any]] = []
        if not args.skip_fleet:
            results.append(fleet.run("pybreaker + Redis", redis=redis, script=__file__,
                                     progress=progress))
            results.append(fleet.run("switchyard + cluster", redis=None, script=__file__,
                                     progress=progress))
    finally:
        redis.close()
    machine = fleet.machine()
    if args.json:
        print(json.dumps({"machine": machine, "overhead": rows, "fleet": results}, indent=2))
    else:
        print(f"machine: {machine['cpu']} ({machine['cpus']} CPUs), python {machine['python']}")
        print_overhead(rows)
        if results:
            print_fleet(results)


if __name__ == "__main__":
    main()
