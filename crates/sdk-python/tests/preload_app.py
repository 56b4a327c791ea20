"""A WSGI app for the gunicorn --preload test: the client is made in the master, before
the workers fork; each answer says which process served it and what its client says."""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Iterable

import switchyard

client = switchyard.Client(endpoints=[], instance_id="preloaded")
breaker = client.breaker("web/dep")
MASTER = os.getpid()


def app(environ: Any, start_response: Callable[..., Any]) -> Iterable[bytes]:
    with breaker:
        body = json.dumps({
            "pid": os.getpid(),
            "master": MASTER,
            "instance_id": client.instance_id,
            "mode": client.mode,
            "state": breaker.state,
        }).encode()
    start_response("200 OK", [("content-type", "application/json")])
    return [body]
