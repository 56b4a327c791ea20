"""``switchyard.httpx.Transport``: an httpx transport whose calls go through breakers.

    client = switchyard.Client()
    http = httpx.Client(transport=switchyard.httpx.Transport(client))
    ahttp = httpx.AsyncClient(transport=switchyard.httpx.Transport(client, key="ml/scoring"))

Each request takes a permit from its breaker (``key``: default one breaker per host,
``"http/{host}"``; a fixed key; or a function of the ``httpx.Request``). A 5xx response or a
transport error (connection refused, timeout) counts as a failure; a 4xx does not. A
rejected request raises ``switchyard.Rejected`` without being sent.

With ``Client(tracing=True)`` and ``opentelemetry-api`` installed, each request records a
``switchyard.call`` span in the current trace and carries its W3C ``traceparent`` header.
"""

from __future__ import annotations

from typing import Optional

import httpx

from . import _otel
from ._client import Client
from ._switchyard import Permit
from ._keys import BreakerPerKey, KeySpec, host_name

__all__ = ["Transport"]

_DEFAULT_PORTS = {"http": 80, "https": 443}


class Transport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Sync and async: pass it to ``httpx.Client`` or ``httpx.AsyncClient``. ``transport``
    and ``async_transport`` are the wrapped transports (default: httpx's own)."""

    def __init__(
        self,
        client: Client,
        key: KeySpec = None,
        *,
        transport: Optional[httpx.BaseTransport] = None,
        async_transport: Optional[httpx.AsyncBaseTransport] = None,
    ) -> None:
        self._keys = BreakerPerKey(client, key)
        self._transport = transport
        self._async_transport = async_transport

    def _breaker(self, request: httpx.Request):  # type: ignore[no-untyped-def]
        url = request.url
        host = host_name(url.host, url.port, _DEFAULT_PORTS.get(url.scheme))
        return self._keys.breaker(request, host)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self._transport is None:
            self._transport = httpx.HTTPTransport()
        breaker = self._breaker(request)
        if _otel.traced(breaker):
            span = _otel.CallSpan(breaker)
            try:
                span.inject(request.headers)
                return self._send(span.permit, request)
            finally:
                span.end()
        return self._send(breaker.allow(), request)

    def _send(self, permit: Permit, request: httpx.Request) -> httpx.Response:
        assert self._transport is not None
        try:
            response = self._transport.handle_request(request)
        except Exception:
            permit.record(False)
            raise
        except BaseException:
            permit.release()
            raise
        permit.record(response.status_code < 500)
        return response

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._async_transport is None:
            self._async_transport = httpx.AsyncHTTPTransport()
        breaker = self._breaker(request)
        if _otel.traced(breaker):
            span = _otel.CallSpan(breaker)
            try:
                span.inject(request.headers)
                return await self._asend(span.permit, request)
            finally:
                span.end()
        return await self._asend(breaker.allow(), request)

    async def _asend(self, permit: Permit, request: httpx.Request) -> httpx.Response:
        assert self._async_transport is not None
        try:
            response = await self._async_transport.handle_async_request(request)
        except Exception:
            permit.record(False)
            raise
        except BaseException:
            permit.release()
            raise
        permit.record(response.status_code < 500)
        return response

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    async def aclose(self) -> None:
        if self._async_transport is not None:
            await self._async_transport.aclose()
