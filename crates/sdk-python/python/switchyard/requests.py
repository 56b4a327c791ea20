"""``switchyard.requests.Adapter``: a requests adapter whose calls go through breakers.

    client = switchyard.Client()
    session = requests.Session()
    session.mount("https://", switchyard.requests.Adapter(client))

Each request takes a permit from its breaker (``key``: default one breaker per host,
``"http/{host}"``; a fixed key; or a function of the ``PreparedRequest``). A 5xx response
or a connection error counts as a failure; a 4xx does not. A rejected request raises
``switchyard.Rejected`` without being sent.

With ``Client(tracing=True)`` and ``opentelemetry-api`` installed, each request records a
``switchyard.call`` span in the current trace and carries its W3C ``traceparent`` header.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Tuple, Union
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from . import _otel
from ._client import Client
from ._switchyard import Permit
from ._keys import BreakerPerKey, KeySpec, host_name

__all__ = ["Adapter"]

_DEFAULT_PORTS = {"http": 80, "https": 443}


class Adapter(HTTPAdapter):
    """An ``HTTPAdapter`` (all its keyword arguments apply) guarded by Switchyard."""

    def __init__(self, client: Client, key: KeySpec = None, **kwargs: Any) -> None:
        self._keys = BreakerPerKey(client, key)
        super().__init__(**kwargs)

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Union[None, float, Tuple[float, float], Tuple[float, None]] = None,
        verify: Union[bool, str] = True,
        cert: Union[None, bytes, str, Tuple[Union[bytes, str], Union[bytes, str]]] = None,
        proxies: Optional[Mapping[str, str]] = None,
    ) -> requests.Response:
        url = urlsplit(request.url or "")
        host = host_name(url.hostname or "", url.port, _DEFAULT_PORTS.get(url.scheme))
        breaker = self._keys.breaker(request, host)
        if not _otel.traced(breaker):
            return self._send(breaker.allow(), request, stream, timeout, verify, cert, proxies)
        span = _otel.CallSpan(breaker)
        try:
            span.inject(request.headers)
            return self._send(span.permit, request, stream, timeout, verify, cert, proxies)
        finally:
            span.end()

    def _send(self, permit: Permit, request: requests.PreparedRequest, *args: Any) -> requests.Response:
        try:
            response = super().send(request, *args)
        except Exception:
            permit.record(False)
            raise
        except BaseException:
            permit.release()
            raise
        permit.record(response.status_code < 500)
        return response
