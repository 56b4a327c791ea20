"""A forking server: gunicorn --preload makes the client in the master, then forks workers.
Each worker's first use restarts the agent in that worker, with its own instance id."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
from cluster import free_port

def test_gunicorn_preload_workers_restart_the_agent() -> None:
    """Two preloaded workers answer with their own pid-suffixed instance id; none hangs."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--preload", "--workers", "2",
         "--bind", f"127.0.0.1:{port}", "--chdir", str(Path(__file__).parent),
         "--graceful-timeout", "5", "preload_app:app"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        seen = {}
        deadline = time.monotonic() + 30
        while len(seen) < 2:
            assert time.monotonic() < deadline, f"answers only from {list(seen)}"
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                # A new connection each time, so both workers get requests.
                r = httpx.get(f"http://127.0.0.1:{port}/", timeout=5,
                              headers={"connection": "close"})
            except httpx.TransportError:
                time.sleep(0.05)
                continue
            answer = r.json()
            seen[answer["pid"]] = answer
        for pid, answer in seen.items():
            assert pid != answer["master"]
            assert answer["instance_id"] == f"preloaded-{pid}", answer
            assert (answer["mode"], answer["state"]) == ("local_only", "closed")
    finally:
        proc.terminate()
        proc.wait(15)
