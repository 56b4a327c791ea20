"""The fleet scenario of compare.py: 8 worker processes × 50 calls/s against one dependency.

Timeline (seconds from the common start): 0–3 healthy; 3 the dependency dies; 9 it recovers;
14 the shared backend is killed (Redis, or every Switchyard node); 19 the end. A call's
outcome is `ok`, `failed` (the dependency's error), `rejected` (the breaker said no) or
`breaker_error` (the breaker library itself raised: the failure that must not happen).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

WORKERS = 8
RATE = 50
DIES, RECOVERS, BACKEND_KILLED, END = 3.0, 9.0, 14.0, 19.0

POLICY = {
    "key": "fleet/dep",
    # A count window: the rate reflects the last calls of the fleet, so a dead dependency
    # trips it within tens of calls (pybreaker, in comparison, trips on consecutive failures).
    "window": {"kind": "count", "calls": 40},
    "min_calls": 20,
    "failure_rate_threshold": 50,
    "min_instances": 2,
    "open_duration_ms": 2000,
    "open_jitter_percent": 0,
    "probe_permits": 3,
    "probe_success_threshold": 3,
}
PYBREAKER_FAIL_MAX = 10
PYBREAKER_RESET_S = 2.0


class DependencyDown(Exception):
    pass


def machine() -> Dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cpus": os.cpu_count(), "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d", time.gmtime())}


def worker(argv: List[str]) -> None:
    """`compare.py --worker KIND TARGET FLAG T0 INDEX`: runs one process's calls, prints
    one JSON list of [t, outcome, probe, call_ms]."""
    kind, target, flag, t0_s, index = argv
    t0 = float(t0_s)

    def dependency() -> None:
        if os.path.exists(flag):
            raise DependencyDown()

    if kind == "switchyard":
        import switchyard

        client = switchyard.Client(target, instance_id=f"fleet-{index}")
        while client.mode != "cluster":
            time.sleep(0.01)
        b = client.breaker("fleet/dep")

        def call() -> tuple:
            try:
                permit = b.allow()
            except switchyard.Rejected:
                return ("rejected", False)
            probe = permit.is_probe
            try:
                dependency()
            except DependencyDown:
                permit.record(False)
                return ("failed", probe)
            permit.record(True)
            return ("ok", probe)
    else:
        import pybreaker
        import redis

        storage = pybreaker.CircuitRedisStorage(
            pybreaker.STATE_CLOSED, redis.Redis.from_url(target), namespace="fleet"
        )
        cb = pybreaker.CircuitBreaker(
            fail_max=PYBREAKER_FAIL_MAX, reset_timeout=PYBREAKER_RESET_S,
            state_storage=storage, throw_new_error_on_trip=False, name="fleet-dep",
        )

        def call() -> tuple:
            probe = cb.current_state != pybreaker.STATE_CLOSED
            try:
                cb.call(dependency)
            except pybreaker.CircuitBreakerError:
                return ("rejected", False)
            except DependencyDown:
                return ("failed", probe)
            return ("ok", probe)

    events: List[List[Any]] = []
    while time.time() < t0:
        time.sleep(0.005)
    n = 0
    while True:
        due = t0 + n / RATE
        if due - t0 >= END:
            break
        delay = due - time.time()
        if delay > 0:
            time.sleep(delay)
        start = time.perf_counter()
        try:
            outcome, probe = call()
        except Exception as exc:  # the breaker library itself failed the call
            outcome, probe = "breaker_error:" + type(exc).__name__, False
        ms = (time.perf_counter() - start) * 1e3
        events.append([round(time.time() - t0, 4), outcome, probe, round(ms, 3)])
        n += 1
    print(json.dumps(events))


def summarize(name: str, events: List[List[Any]]) -> Dict[str, Any]:
    def count(pred: Callable[[List[Any]], bool]) -> int:
        return sum(1 for e in events if pred(e))

    killed = [e for e in events if e[0] >= BACKEND_KILLED]
    errors = sorted({e[1].split(":", 1)[1] for e in events if e[1].startswith("breaker_error")})
    return {
        "name": name,
        "calls": len(events),
        "failed_at_onset": count(lambda e: DIES <= e[0] < RECOVERS and e[1] == "failed" and not e[2]),
        "failed_while_down": count(lambda e: DIES <= e[0] < RECOVERS and e[1] == "failed"),
        "probe_calls_in_recovery": count(lambda e: e[2]),
        "rejected": count(lambda e: e[1] == "rejected"),
        "breaker_errors": count(lambda e: e[1].startswith("breaker_error")),
        "breaker_error_types": errors,
        "breaker_errors_backend_killed": sum(1 for e in killed if e[1].startswith("breaker_error")),
        "ok_backend_killed": sum(1 for e in killed if e[1] == "ok"),
        "calls_backend_killed": len(killed),
        "max_call_ms_backend_killed": max((e[3] for e in killed), default=0.0),
        "max_call_ms_before_kill": max((e[3] for e in events if e[0] < BACKEND_KILLED), default=0.0),
    }


def run(name: str, redis: Any, script: str, progress: Callable[[str], None]) -> Dict[str, Any]:
    cluster: Optional[Any] = None
    if redis is None:
        from cluster import Cluster

        progress("starting a 3-node cluster")
        cluster = Cluster(3)
        cluster.put_policy(POLICY)
        kind, target = "switchyard", cluster.endpoints
    else:
        import redis as redis_py

        redis_py.Redis.from_url(redis.url).flushall()
        kind, target = "pybreaker", redis.url
    tmp = tempfile.TemporaryDirectory(prefix="compare-fleet-")
    flag = str(Path(tmp.name) / "dependency-down")
    t0 = time.time() + 6.0
    procs = [
        subprocess.Popen(
            [sys.executable, script, "--worker", kind, target, flag, str(t0), str(i)],
            stdout=subprocess.PIPE, text=True,
        )
        for i in range(WORKERS)
    ]
    try:
        progress(f"{name}: {WORKERS} processes × {RATE} calls/s for {END:.0f} s")
        for at, what in [(DIES, "dependency dies"), (RECOVERS, "dependency recovers"),
                         (BACKEND_KILLED, "backend killed")]:
            time.sleep(max(0.0, t0 + at - time.time()))
            progress(f"{name}: t={at:.0f} s {what}")
            if what == "dependency dies":
                Path(flag).touch()
            elif what == "dependency recovers":
                os.unlink(flag)
            elif cluster is not None:
                cluster.kill_all()
            else:
                redis.kill()
        events: List[List[Any]] = []
        for p in procs:
            out, _ = p.communicate(timeout=120)
            events.extend(json.loads(out))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        if cluster is not None:
            cluster.close()
        tmp.cleanup()
    result = summarize(name, events)
    progress(f"{name}: {result}")
    return result
