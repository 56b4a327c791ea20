"""Breaker keys for outbound HTTP calls: one per host, or per a user function."""

from __future__ import annotations

import re
from typing import Callable, Dict, Optional, Union

from ._client import Breaker, Client

_NOT_NAME = re.compile(r"[^a-z0-9._-]+")

#: ``key`` of an integration: a fixed key, a template with ``{host}`` (the default is
#: ``"http/{host}"``), or a function of the request returning a key.
KeySpec = Union[str, Callable[..., str], None]


def host_name(host: str, port: Optional[int], default_port: Optional[int]) -> str:
    """``api.example.com`` or ``10.0.0.1-8443``: a breaker name made from a URL's host."""
    name = _NOT_NAME.sub("-", host.lower()).strip("-") or "host"
    if port is not None and port != default_port:
        name = f"{name}-{port}"
    return name


class BreakerPerKey:
    """Creates each key's breaker once and keeps it."""

    def __init__(self, client: Client, key: KeySpec) -> None:
        if not isinstance(client, Client):
            raise TypeError(f"client: must be a switchyard.Client, got {type(client).__name__}")
        if key is None:
            key = "http/{host}"
        if not (isinstance(key, str) or callable(key)):
            raise TypeError(
                "key: must be a str (a breaker key, or a template with {host}) or a callable"
            )
        if isinstance(key, str) and "{host}" not in key:
            client.breaker(key)  # validates the key now, with a clear error
        self.client = client
        self.key = key
        self._breakers: Dict[str, Breaker] = {}

    def breaker(self, request: object, host: str) -> Breaker:
        if isinstance(self.key, str):
            key = self.key.replace("{host}", host)
        else:
            key = self.key(request)
        b = self._breakers.get(key)
        if b is None:
            b = self._breakers.setdefault(key, self.client.breaker(key))
        return b
