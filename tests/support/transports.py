"""The transports the tests run on, by kind ("httpx", "httpx2", "aiohttp", "memory": `harness.make_transport` makes
them): which to run, what a test may read of their HTTP stacks' pools, a TLS server context to trust."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest

import fota_callbacks as fota
from fota_callbacks.transport import AiohttpTransport, Httpx2Transport

__all__ = [
    "CALLBACK_URL",
    "HTTP_KINDS",
    "KINDS",
    "OK",
    "SUMMARY",
    "pool_connections",
    "require",
    "tls_for_127_0_0_1",
]

HTTP_KINDS = ["httpx", "httpx2", "aiohttp"]
"""The transports that open connections."""
KINDS = [*HTTP_KINDS, "memory"]
CALLBACK_URL = "https://listener.example.com/fota"
OK = fota.Response(200, {"content-type": "application/json"}, b'{"url":"' + CALLBACK_URL.encode() + b'"}')
"""A V2 list answer, and what the client makes of it: `SUMMARY`."""
SUMMARY = fota.CallbackSummary(url=CALLBACK_URL)


def require(kind: str, backend: str) -> None:
    """Skip when the extra a transport needs is not installed (a CI run installs them all); aiohttp runs on asyncio."""
    if kind == "httpx2":
        pytest.importorskip("httpx2", reason="the httpx2 extra is not installed (it needs Python >= 3.11)")
    if kind == "aiohttp":
        pytest.importorskip("aiohttp", reason="the aiohttp extra is not installed")
        # On trio it is not run at all (tests/conftest.py); its refusal of trio is tested in test_conformance.py.
        assert backend == "asyncio"


def pool_connections(transport: fota.Transport) -> tuple[int, int]:
    """(connections the transport's pool holds, those of them checked out). The HTTP stacks keep their pools
    private: their internals are read here."""
    if isinstance(transport, AiohttpTransport):
        assert transport.session is not None
        connector: Any = transport.session.connector
        busy = len(connector._acquired)
        return busy + sum(len(idle) for idle in connector._conns.values()), busy
    assert isinstance(transport, fota.HttpxTransport | Httpx2Transport)
    pools = transport.client._transport.pools  # type: ignore[union-attr]
    connections = [conn for pool in pools for conn in pool._pool.connections]
    return len(connections), sum(1 for conn in connections if not (conn.is_idle() or conn.is_closed()))


def tls_for_127_0_0_1(tmp_path: Path) -> tuple[ssl.SSLContext, Path]:
    """A server TLS context for 127.0.0.1 from a new trustme CA, and the path of a bundle holding that CA."""
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    return server_context, bundle
