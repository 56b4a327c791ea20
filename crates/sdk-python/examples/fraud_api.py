"""A fraud-scoring API whose ML scoring is guarded by Switchyard.

- ML scoring goes through httpx with ``switchyard.httpx.Transport``: 5xx and connection
  errors count against the ``fraud/ml-scoring`` breaker, which the whole fleet shares when
  a cluster is configured.
- When the breaker is open (or the model fails), a ``switchyard.Fallback`` chain answers
  with rule-based scoring instead.
- Feature flags follow the scope's tier: at a degraded tier the ``ml_scoring`` feature is
  off (tier rules on the cluster), and the service goes straight to the rules.
- Every answer says which method decided, and the tier in force.

Run it alone (local-only) or against ``switchyard local-cluster``:

    python crates/sdk-python/examples/fraud_api.py
    SWITCHYARD_ENDPOINTS=127.0.0.1:7071,127.0.0.1:7072,127.0.0.1:7073 \\
        python crates/sdk-python/examples/fraud_api.py

Then ``curl -s localhost:8000/score -d '{"id":"t1","amount":120,"country":"FR"}'``. The
service carries a stand-in ML model at ``/model/score``; ``POST /model/down`` and
``POST /model/up`` make it fail and recover, to watch the breaker and the fallback work.
``FRAUD_ML_URL`` points the scoring at a real model instead.
"""

from __future__ import annotations

import argparse
import os
from typing import Any, Dict, List, Optional

import httpx
import uvicorn
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

import switchyard
import switchyard.httpx

SCOPE = "fraud"
ML_KEY = "fraud/ml-scoring"


class Transaction(BaseModel):
    id: str
    amount: float
    country: str
    card_present: bool = True


class Verdict(BaseModel):
    id: str
    score: float
    decision: str
    #: "ml" or "rules": which method decided.
    method: str
    tier: str
    breaker_state: str
    #: Every step tried, e.g. ["fraud/ml-scoring: rejected", "rules: ok"].
    attempts: List[str]


# Local policy until the cluster sends one: trip after 10 calls at >= 50 % failures,
# probe again after 5 s.
ML_POLICY: Dict[str, Any] = {
    "min_calls": 10,
    "failure_rate_threshold": 50,
    "open_duration_ms": 5000,
    "probe_permits": 1,
    "probe_success_threshold": 2,
}


def rules_score(tx: Transaction) -> float:
    """The rule-based fallback: crude, always available."""
    score = 0.1
    if tx.amount > 1000:
        score += 0.4
    if not tx.card_present:
        score += 0.2
    if tx.country not in {"FR", "DE", "GB", "US"}:
        score += 0.2
    return min(score, 1.0)


def decide(score: float) -> str:
    return "decline" if score >= 0.8 else "review" if score >= 0.5 else "approve"


def make_app(client: switchyard.Client, ml_url: Optional[str] = None) -> FastAPI:
    app = FastAPI(title="fraud scoring, guarded by Switchyard")
    ml_breaker = client.breaker(ML_KEY, policy=ML_POLICY)
    transport = switchyard.httpx.Transport(client, key=ML_KEY)
    http = httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(0.5))
    model = {"down": False}
    base = ml_url or f"http://127.0.0.1:{os.environ.get('FRAUD_PORT', '8000')}/model/score"

    async def ml_score(tx: Transaction) -> float:
        if not client.feature_enabled(SCOPE, "ml_scoring"):
            raise RuntimeError("feature ml_scoring is off at this tier")
        response = await http.post(base, json=tx.model_dump())
        response.raise_for_status()
        return float(response.json()["score"])

    async def rules(tx: Transaction) -> float:
        return rules_score(tx)

    ml_score.__qualname__ = "ml"
    rules.__qualname__ = "rules"
    chain = switchyard.Fallback([ml_score, rules])

    @app.post("/score", response_model=Verdict)
    async def score(tx: Transaction) -> Verdict:
        decided = await chain.arun(tx)
        return Verdict(
            id=tx.id,
            score=decided.value,
            decision=decide(decided.value),
            method=decided.step,
            tier=client.tier(SCOPE).name,
            breaker_state=ml_breaker.state,
            attempts=[f"{a.name}: {a.outcome}" for a in decided.attempts],
        )

    @app.get("/status")
    async def status() -> Dict[str, Any]:
        return {
            "mode": client.mode,
            "tier": client.tier(SCOPE).name,
            "ml_breaker": ml_breaker.state,
            "stats": client.stats(),
        }

    # The stand-in model: a fixed scoring that can be made to fail.
    @app.post("/model/score")
    async def model_score(tx: Transaction) -> Dict[str, float]:
        if model["down"]:
            raise HTTPException(status_code=503, detail="model unavailable")
        return {"score": min(tx.amount / 2000.0, 1.0)}

    @app.post("/model/{state}")
    async def model_state(state: str) -> Dict[str, bool]:
        if state not in ("up", "down"):
            raise HTTPException(status_code=404, detail="use /model/up or /model/down")
        model["down"] = state == "down"
        return {"down": model["down"]}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("FRAUD_PORT", "8000")))
    args = parser.parse_args()
    os.environ["FRAUD_PORT"] = str(args.port)
    # Endpoints from SWITCHYARD_ENDPOINTS; without it, local-only.
    client = switchyard.Client()
    app = make_app(client, os.environ.get("FRAUD_ML_URL"))
    print(f"switchyard mode: {client.mode}; serving on 127.0.0.1:{args.port}", flush=True)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")
    client.close()


if __name__ == "__main__":
    main()
