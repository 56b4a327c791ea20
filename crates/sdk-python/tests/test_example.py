"""The fraud API example as its README runs it (a real uvicorn process, local-only): ML
decides while the model is up; rules decide, without calling it, once its breaker opens;
ML decides again after the model recovers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterator

import httpx
import pytest

from cluster import free_port
from conftest import wait_for

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "fraud_api.py"
TX = {"id": "t1", "amount": 1200.0, "country": "FR"}


@pytest.fixture
def api() -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHYARD_")}
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLE), "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{url}/status").status_code == 200
        except httpx.TransportError:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            return False

    try:
        wait_for(up, 30, "the example to serve")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def score(url: str) -> Dict[str, Any]:
    r = httpx.post(f"{url}/score", json=TX)
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_fraud_api_falls_back_to_rules_and_recovers(api: str) -> None:
    """Each answer names the method: ml, then rules while the breaker is open, then ml."""
    # phase: the model is up
    first = score(api)
    assert (first["method"], first["tier"], first["decision"]) == ("ml", "FULL", "review")
    assert httpx.get(f"{api}/status").json()["mode"] == "local_only"
    # phase: the model fails; rules answer, then the breaker opens and ML is not even called
    httpx.post(f"{api}/model/down")
    seen = set()
    deadline = time.monotonic() + 20
    while True:
        v = score(api)
        assert v["method"] == "rules" and v["decision"] == "review"
        seen.add(v["attempts"][0])
        if v["attempts"][0] == "ml: rejected":
            assert v["breaker_state"] == "open"
            break
        assert time.monotonic() < deadline, seen
        time.sleep(0.02)
    assert "ml: failed" in seen
    # phase: the model recovers; after the open duration, probes close the breaker
    httpx.post(f"{api}/model/up")
    wait_for(lambda: score(api)["method"] == "ml", 30, "ML to decide again")
