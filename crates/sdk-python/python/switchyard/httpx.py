"""``switchyard.httpx.Transport``: an httpx transport whose calls go through breakers.

    client = switchyard.Client()
    http = httpx.Client(transport=switchyard.httpx.Transport(client))
    ahttp = httpx.AsyncClient(transport=switchyard.httpx.Transport(client, key="ml/scoring"))

Each request takes a permit from its breaker (``key``: default one breaker per host,
``"http/{host}"``; a fixed key; or a function of the ``httpx.Request``). A 5xx response or a
transport error (connection refused, timeout) counts as a failure; a 4xx does not. A
rejected request raises ``switchyard.Rejected`` without being sent.
"""

from __future__ import annotations

from typing import Optional

import httpx

from ._client import Client
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
        permit = self._breaker(request).allow()
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
        permit = self._breaker(request).allow()
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
