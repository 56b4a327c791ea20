"""``switchyard.requests.Adapter``: a requests adapter whose calls go through breakers.

    client = switchyard.Client()
    session = requests.Session()
    session.mount("https://", switchyard.requests.Adapter(client))

Each request takes a permit from its breaker (``key``: default one breaker per host,
``"http/{host}"``; a fixed key; or a function of the ``PreparedRequest``). A 5xx response
or a connection error counts as a failure; a 4xx does not. A rejected request raises
``switchyard.Rejected`` without being sent.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Tuple, Union
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from ._client import Client
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
        permit = self._keys.breaker(request, host).allow()
        try:
            response = super().send(request, stream, timeout, verify, cert, proxies)
        except Exception:
            permit.record(False)
            raise
        except BaseException:
            permit.release()
            raise
        permit.record(response.status_code < 500)
        return response
