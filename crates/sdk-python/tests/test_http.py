"""The httpx transport and the requests adapter against a real HTTP server on loopback:
5xx and connection errors are failures, 4xx are not, one breaker per host by default."""

from __future__ import annotations

import asyncio
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator, Tuple

import httpx
import pytest
import requests

import switchyard
import switchyard.httpx
import switchyard.requests
from conftest import FAST_POLICY, wait_for
from cluster import free_port


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        status = int(self.path.strip("/") or "200")
        self.send_response(status)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def guarded(client: switchyard.Client, key: str) -> switchyard.Breaker:
    return client.breaker(key, policy=FAST_POLICY)


def test_httpx_sync_4xx_is_not_a_failure_5xx_is(client: switchyard.Client, server: str) -> None:
    """404s keep the breaker closed; 503s open it; then requests are rejected unsent."""
    b = guarded(client, "ml/sync")
    with httpx.Client(transport=switchyard.httpx.Transport(client, key="ml/sync")) as http:
        for _ in range(20):
            assert http.get(f"{server}/404").status_code == 404
        assert b.state == "closed"
        for _ in range(20):
            try:
                http.get(f"{server}/503")
            except switchyard.Rejected:
                break
        wait_for(lambda: b.state == "open")
        with pytest.raises(switchyard.Rejected):
            http.get(f"{server}/200")


def test_httpx_async_connection_errors_are_failures(client: switchyard.Client) -> None:
    """Connection refused counts as a failure through the async transport."""
    b = guarded(client, "ml/async")
    dead = f"http://127.0.0.1:{free_port()}/"

    async def main() -> None:
        transport = switchyard.httpx.Transport(client, key="ml/async")
        async with httpx.AsyncClient(transport=transport) as http:
            for _ in range(10):
                with pytest.raises((httpx.ConnectError, switchyard.Rejected)):
                    await http.get(dead)

    asyncio.run(main())
    wait_for(lambda: b.state == "open")


def test_httpx_default_key_is_per_host(client: switchyard.Client, server: str) -> None:
    """Without key=, each host gets its own breaker, http/<host>-<port>."""
    port = server.rsplit(":", 1)[1]
    with httpx.Client(transport=switchyard.httpx.Transport(client)) as http:
        assert http.get(f"{server}/200").status_code == 200
    assert client.breaker(f"http/127.0.0.1-{port}").state == "closed"


def test_requests_adapter(client: switchyard.Client, server: str) -> None:
    """The requests adapter: 4xx not failures, 5xx failures, a key function per request."""
    keys = []

    def key(request: requests.PreparedRequest) -> str:
        keys.append(request.url)
        return "ml/requests"

    b = guarded(client, "ml/requests")
    session = requests.Session()
    session.mount("http://", switchyard.requests.Adapter(client, key=key))
    for _ in range(20):
        assert session.get(f"{server}/429").status_code == 429
    assert b.state == "closed"
    for _ in range(20):
        try:
            session.get(f"{server}/500")
        except switchyard.Rejected:
            break
    wait_for(lambda: b.state == "open")
    with pytest.raises(switchyard.Rejected):
        session.get(f"{server}/200")
    assert keys and keys[0].endswith("/429")


def test_integration_bad_input(client: switchyard.Client) -> None:
    """A bad key or client is refused when the transport is made, naming the argument."""
    with pytest.raises(ValueError, match="key:"):
        switchyard.httpx.Transport(client, key="not a key")
    with pytest.raises(TypeError, match="client: must be a switchyard.Client"):
        switchyard.requests.Adapter("nope", key="a/b")  # type: ignore[arg-type]
