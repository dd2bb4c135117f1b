"""The limits every transport enforces, seen from the public client: `timeout` bounds an attempt as a whole
(a server trickling bytes cannot hold it), `max_response_bytes` bounds the body as decoded (gzip bombs, stacked
codings) with bounded memory, a failed connection says why and to which host, a cancelled POST leaves nothing
for the garbage collector, and proxies named by the environment are used by the transports that own their
connections.

Servers are raw sockets on 127.0.0.1 (tests/support/raw_server.py, threads: the same server serves asyncio and trio).
"""

from __future__ import annotations

import contextlib
import gzip
import random
import socket
import ssl
import struct
import threading
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

import fota_callbacks as fota
from fota_callbacks.transport import Httpx2Transport
from tests.support.harness import Scripted, client_on, list_once, make_transport, resource_warnings, wait_until
from tests.support.raw_server import (
    Behaviour,
    Connection,
    answer,
    hang_after_head,
    http_response,
    serving,
    trickle_body,
    trickle_headers,
)
from tests.support.transports import OK, SUMMARY, tls_for_127_0_0_1
from tests.support.wire_cases import ACCOUNT

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024
LIST_BODY = OK.content
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


# --- timeout: one attempt as a whole ---------------------------------------------------------------------------


TRICKLES = {"in-the-headers": trickle_headers(interval=0.2), "in-the-body": trickle_body(interval=0.2)}


@pytest.mark.parametrize("where", list(TRICKLES))
async def test_a_trickling_server_cannot_hold_an_attempt_past_its_timeout(kind: str, where: str) -> None:
    async def trickling_handler(request: fota.Request) -> fota.Response:
        await anyio.sleep_forever()  # the in-memory counterpart: a handler that never finishes
        raise AssertionError

    with serving(TRICKLES[where]) as server:
        transport = fota.InMemoryTransport(trickling_handler) if kind == "memory" else make_transport(kind)
        async with client_on(transport, server.base_url, timeout=1.0, max_retries=0) as client:
            started = time.monotonic()
            with anyio.move_on_after(10):  # what the bug looked like: the call would still be running
                with pytest.raises(fota.ApiTimeoutError) as info:
                    await list_once(client)
            elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 2.5, f"{elapsed:.2f} s"
    assert info.value.request_sent is True  # the server had the request: it may have processed it
    assert "timed out" in str(info.value)


async def test_a_timeout_waiting_for_a_pooled_connection_was_never_sent(http_kind: str) -> None:
    """The attempt's budget also covers the wait for a connection: a request still waiting was never sent."""
    with serving(hang_after_head()) as server:
        transport = make_transport(http_kind, max_connections=1)
        client = client_on(transport, server.base_url, timeout=0.5, max_retries=0)
        async with client, anyio.create_task_group() as tg:
            tg.start_soon(list_once, client.with_options(timeout=30))  # holds the only connection
            await anyio.sleep(0.1)
            with pytest.raises(fota.ApiTimeoutError) as info:
                await list_once(client)
            tg.cancel_scope.cancel()
    assert info.value.request_sent is False
    assert len(server.requests) == 1


def keep_alive(gate: threading.Event, closed: list[int] | None = None) -> Behaviour:
    """Answer every request of a connection with the V2 listing, keeping it open; each answer waits for `gate`.
    A connection the client closes adds an item to `closed`."""
    response = http_response(200, LIST_BODY, [("Content-Type", "application/json"), ("Connection", "keep-alive")])

    def behaviour(conn: Connection) -> None:
        while conn.read_request():
            while not gate.wait(0.05):
                if conn.stopping.is_set():
                    return
            conn.send(response)
        if closed is not None:
            closed.append(1)

    return behaviour


@contextlib.asynccontextmanager
async def calls_in_flight(client: fota.FotaCallbacksClient, count: int) -> AsyncIterator[list[fota.CallbackSummary]]:
    """`count` V2 list calls started in a task group; the block runs while they are under way, and the list of
    their results is complete once it ends."""
    results: list[fota.CallbackSummary] = []

    async def call() -> None:
        results.append(await list_once(client))

    async with anyio.create_task_group() as tg:
        for _ in range(count):
            tg.start_soon(call)
        yield results


async def test_an_owned_pool_holds_max_connections_in_all_and_reuses_them(http_kind: str) -> None:
    """The owned pool (httpx's split in several) keeps to `max_connections` and sends one call after another on
    one kept-alive connection."""
    gate = threading.Event()
    gate.set()
    with serving(keep_alive(gate)) as server:
        client = client_on(make_transport(http_kind, max_connections=20), server.base_url, max_retries=0)
        async with client:
            for _ in range(10):
                assert await list_once(client) == SUMMARY
            assert server.connections == 1
            gate.clear()
            async with calls_in_flight(client, 50) as results:
                await wait_until(lambda: len(server.requests) >= 10 + 20)
                await anyio.sleep(0.2)  # the other 30 wait for a connection
                assert (len(server.requests), server.connections) == (10 + 20, 20)
                gate.set()
        assert results == [SUMMARY] * 50
        assert (len(server.requests), server.connections) == (10 + 50, 20)


async def test_cancelled_calls_give_their_places_back(http_kind: str) -> None:
    """Calls cancelled while the server holds them leave every place of the pool free: as many calls as
    `max_connections` then reach the server at once."""
    gate = threading.Event()
    with serving(keep_alive(gate)) as server:
        client = client_on(make_transport(http_kind, max_connections=10), server.base_url, max_retries=0)
        async with client:
            async with anyio.create_task_group() as tg:
                for _ in range(7):
                    tg.start_soon(list_once, client)
                await wait_until(lambda: len(server.requests) >= 7)
                tg.cancel_scope.cancel()  # their connections are dropped mid-exchange
            async with calls_in_flight(client, 10) as results:
                await wait_until(lambda: len(server.requests) >= 7 + 10)
                gate.set()
        assert results == [SUMMARY] * 10
        assert server.connections == 7 + 10


async def test_idle_connections_of_a_burst_are_closed_after_keepalive_expiry(http_kind: str) -> None:
    """After a burst, the connections it opened are closed once idle for `keepalive_expiry`, even those of the
    pools past the first that later traffic does not need (httpx's pools expire connections only when used)."""
    gate, closed = threading.Event(), list[int]()
    with serving(keep_alive(gate, closed)) as server:
        transport = make_transport(http_kind, max_connections=16, keepalive_expiry=0.3)
        async with client_on(transport, server.base_url, max_retries=0) as client:
            async with calls_in_flight(client, 12) as results:
                await wait_until(lambda: len(server.requests) >= 12)
                gate.set()
            assert (results, server.connections) == ([SUMMARY] * 12, 12)
            await anyio.sleep(0.5)
            assert await list_once(client) == SUMMARY  # one call after another needs one connection
            await wait_until(lambda: len(closed) >= 12, within=3)
            assert server.connections == 13


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("max_connections", 0),
        ("max_connections", None),
        ("max_connections", True),
        ("max_connections", 2.5),
        ("keepalive_expiry", 0),
        ("keepalive_expiry", "5"),
        ("max_response_bytes", -1),
    ],
)
def test_pool_options_a_stack_would_read_another_way_are_refused(http_kind: str, option: str, value: object) -> None:
    """httpx reads `max_connections=None` as no limit, aiohttp reads 0 so: neither is what the name says."""
    with pytest.raises(fota.InvalidArgumentError) as info:
        make_transport(http_kind, **{option: value})
    assert info.value.parameter == option
    assert repr(value) in str(info.value)


# --- max_response_bytes: the decoded body, bounded while decoding ----------------------------------------------


def zeros_gzip(mib: int) -> bytes:
    """A valid gzip member of `mib` MiB of zeros, made in well under a second: each MiB is compressed from a fresh
    dictionary (a full flush), so its compressed form is the same block repeated."""
    block = b"\0" * MiB
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    first = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeated = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    end = compressor.flush()[:-8]  # the trailer computed here is for 2 MiB: the right one follows
    crc = 0
    for _ in range(mib):
        crc = zlib.crc32(block, crc)
    return first + repeated * (mib - 1) + end + struct.pack("<II", crc, (mib * MiB) & 0xFFFFFFFF)


@pytest.fixture(scope="module")
def bombs() -> dict[str, tuple[str, bytes]]:
    return {
        "gzip-300KB-to-300MiB": ("gzip", zeros_gzip(300)),
        "gzip,gzip-5KB-to-2GiB": ("gzip, gzip", gzip.compress(zeros_gzip(2048), 9)),
    }


@contextlib.contextmanager
def traced_peak() -> Iterator[list[int]]:
    """The peak of Python's traced allocations in the block (bodies and decoder outputs are Python bytes)."""
    peak: list[int] = []
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        yield peak
        peak.append(tracemalloc.get_traced_memory()[1] - base)
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("bomb", ["gzip-300KB-to-300MiB", "gzip,gzip-5KB-to-2GiB"])
async def test_a_compression_bomb_stops_at_the_limit_with_bounded_memory(
    http_kind: str, bomb: str, bombs: dict[str, tuple[str, bytes]]
) -> None:
    coding, body = bombs[bomb]
    response = http_response(200, body, [("Content-Type", "application/json"), ("Content-Encoding", coding)])
    with serving(answer(response)) as server:
        async with client_on(
            make_transport(http_kind, max_response_bytes=MiB), server.base_url, timeout=30, max_retries=0
        ) as client:
            with traced_peak() as peak, pytest.raises(fota.ApiConnectionError) as info:
                await list_once(client)
    assert type(info.value) is fota.ApiConnectionError
    assert f"max_response_bytes={MiB}" in str(info.value)
    assert info.value.request_sent is True
    assert peak[0] < 6 * MiB, f"peak {peak[0] / MiB:.1f} MiB for a 1 MiB limit"


def framed(body: bytes, coding: str) -> bytes:
    return http_response(200, body, [("Content-Type", "application/json"), ("Content-Encoding", coding)])


def _raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


ENCODED = {
    "gzip": gzip.compress(LIST_BODY),
    "x-gzip": gzip.compress(LIST_BODY),
    "deflate": zlib.compress(LIST_BODY),
    "gzip, gzip": gzip.compress(gzip.compress(LIST_BODY)),
    "deflate, gzip": gzip.compress(zlib.compress(LIST_BODY)),
    "deflate-raw": _raw_deflate(LIST_BODY),
    "identity": LIST_BODY,
}


@pytest.mark.parametrize("coding", list(ENCODED))
async def test_every_coding_asked_for_is_decoded(http_kind: str, coding: str) -> None:
    header = "deflate" if coding == "deflate-raw" else coding
    with serving(answer(framed(ENCODED[coding], header))) as server:
        async with client_on(make_transport(http_kind), server.base_url, max_retries=0) as client:
            assert await list_once(client) == SUMMARY
    [head] = server.requests
    asked = [line for line in head.lower().split(b"\r\n") if line.startswith(b"accept-encoding:")]
    assert asked == [b"accept-encoding: gzip, deflate"]  # only what is decoded within the limit


@pytest.mark.parametrize("coding", ["gzip", "gzip, gzip"])
async def test_max_response_bytes_counts_decoded_bytes_exactly(http_kind: str, coding: str) -> None:
    limit = 4096
    prefix, suffix = b'{"url":"https://listener.example.com/', b'"}'
    exact = prefix + b"a" * (limit - len(prefix) - len(suffix)) + suffix
    for body, fits in ((exact, True), (exact[:-2] + b'a"}', False)):
        encoded = body
        for _ in coding.split(","):
            encoded = gzip.compress(encoded)
        with serving(answer(framed(encoded, coding))) as server:
            transport = make_transport(http_kind, max_response_bytes=limit)
            async with client_on(transport, server.base_url, max_retries=0) as client:
                if fits:
                    assert (await list_once(client)).url == exact[len(b'{"url":"') : -len(suffix)].decode()
                else:
                    with pytest.raises(fota.ApiConnectionError, match=f"max_response_bytes={limit}"):
                        await list_once(client)


# --- connection errors say why, and where ----------------------------------------------------------------------


async def test_a_refused_certificate_says_why_and_which_host(http_kind: str, tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme")
    untrusted = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    untrusted.issue_cert("127.0.0.1").configure_cert(context)
    trusted = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(trusted))
    option = "ssl" if http_kind == "aiohttp" else "verify"
    with serving(answer(http_response(200, LIST_BODY)), tls=context) as server:
        transport = make_transport(http_kind, **{option: str(trusted)})
        async with client_on(transport, server.base_url, max_retries=0) as client:
            with pytest.raises(fota.ApiConnectionError) as info:
                await list_once(client)
    message = str(info.value)
    assert f"127.0.0.1:{server.port}" in message
    assert "certificate verify failed: unable to get local issuer certificate" in message
    assert info.value.request_sent is False


async def test_a_refused_connection_says_why_and_which_host(http_kind: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with client_on(make_transport(http_kind), f"http://127.0.0.1:{port}", max_retries=0) as client:
        with pytest.raises(fota.ApiConnectionError) as info:
            await list_once(client)
    message = str(info.value)
    assert message.startswith(f"connection failed (127.0.0.1:{port}): ")
    reason = message.rsplit(": ", 1)[1]
    assert reason, message
    assert reason != "no reason given", message


# --- cancellation leaves nothing to finalize --------------------------------------------------------------------


async def test_cancelled_posts_leave_no_async_generator_behind(http_kind: str, served_script: Scripted) -> None:
    """Cancelled at random points, many while the body is being written: trio warns about any async generator
    of the HTTP stack left suspended for the garbage collector (httpx's `ByteStream` used to be one)."""
    served_script.script.respond(json={"url": "https://listener.example.com/fota"}, times=None)
    rng = random.Random(13)
    registration = fota.FotaV2CallbackRegistrationRequest(url="https://listener.example.com/fota")
    transport = make_transport(http_kind)
    async with resource_warnings() as found, client_on(transport, served_script.base_url, max_retries=0) as client:
        await client.v2.register_callback(ACCOUNT, registration)  # connected: the rest reuse it
        for _ in range(300):
            with anyio.move_on_after(rng.uniform(0, 0.002)):
                await client.v2.register_callback(ACCOUNT, registration)
        assert await list_once(client) == SUMMARY
    assert found == []


# --- proxies from the environment -------------------------------------------------------------------------------


class Proxy:
    """A forward proxy on 127.0.0.1 recording each request head: it answers plain-HTTP requests itself (with
    `LIST_BODY`) and tunnels `CONNECT` to the named host."""

    def __init__(self) -> None:
        self.heads: list[bytes] = []

    def __call__(self, conn: Connection) -> None:
        head = conn.read_request()
        if not head:
            return
        self.heads.append(head)
        method, target, _ = head.split(b" ", 2)
        if method != b"CONNECT":
            conn.send(http_response(200, LIST_BODY))
            return
        host, _, port = target.decode().rpartition(":")
        with socket.create_connection((host, int(port))) as upstream:
            conn.send(b"HTTP/1.1 200 Connection established\r\n\r\n")
            pump = threading.Thread(target=_copy, args=(upstream, conn.sock), daemon=True)
            pump.start()
            _copy(conn.sock, upstream)
            pump.join(timeout=5)


def _copy(source: socket.socket, target: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            target.sendall(data)
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_WR)


@pytest.fixture
def no_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


async def test_http_proxy_from_the_environment_is_used(http_kind: str, no_proxy_variables: pytest.MonkeyPatch) -> None:
    proxy = Proxy()
    with serving(answer(http_response(200, LIST_BODY))) as target, serving(proxy) as proxy_server:
        no_proxy_variables.setenv("HTTP_PROXY", proxy_server.base_url)
        async with client_on(make_transport(http_kind), target.base_url, max_retries=0) as client:
            assert await list_once(client) == SUMMARY
    [head] = proxy.heads
    assert head.startswith(f"GET {target.base_url}/api/fota/v2/callbacks/{ACCOUNT} HTTP/1.1\r\n".encode())
    assert target.connections == 0


async def test_https_proxy_from_the_environment_tunnels(
    http_kind: str, no_proxy_variables: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    context, bundle = tls_for_127_0_0_1(tmp_path)
    option = "ssl" if http_kind == "aiohttp" else "verify"
    proxy = Proxy()
    with serving(answer(http_response(200, LIST_BODY)), tls=context) as target, serving(proxy) as proxy_server:
        no_proxy_variables.setenv("HTTPS_PROXY", proxy_server.base_url)
        async with client_on(
            make_transport(http_kind, **{option: str(bundle)}), target.base_url, max_retries=0
        ) as client:
            assert await list_once(client) == SUMMARY
    [head] = proxy.heads
    assert head.startswith(f"CONNECT 127.0.0.1:{target.port} HTTP/1.1\r\n".encode())
    assert len(target.requests) == 1  # through the tunnel, TLS end to end


@pytest.mark.parametrize("no_proxy", ["127.0.0.1", "*", "localhost,127.0.0.1"])
async def test_no_proxy_bypasses_the_proxy(
    http_kind: str, no_proxy: str, no_proxy_variables: pytest.MonkeyPatch
) -> None:
    proxy = Proxy()
    with serving(answer(http_response(200, LIST_BODY))) as target, serving(proxy) as proxy_server:
        no_proxy_variables.setenv("HTTP_PROXY", proxy_server.base_url)
        no_proxy_variables.setenv("NO_PROXY", no_proxy)
        async with client_on(make_transport(http_kind), target.base_url, max_retries=0) as client:
            assert await list_once(client) == SUMMARY
    assert proxy.heads == []
    assert len(target.requests) == 1


# --- a client you pass is used as it is --------------------------------------------------------------------------


@pytest.mark.parametrize("package", ["httpx", "httpx2"])
async def test_a_client_you_pass_keeps_its_hooks_mounts_and_mocks(package: str) -> None:
    module: Any = httpx if package == "httpx" else pytest.importorskip("httpx2")
    transport_class = fota.HttpxTransport if package == "httpx" else Httpx2Transport
    seen: list[str] = []

    async def hook(request: Any) -> None:
        seen.append(f"{request.method} {request.url.path} {request.headers['accept-encoding']}")

    def mocked(request: Any) -> Any:
        assert request.content == b""  # the body can be read, as mocks do
        return module.Response(200, headers={"content-encoding": "gzip"}, content=gzip.compress(LIST_BODY))

    base_url = "http://thingspace.mock"
    http = module.AsyncClient(event_hooks={"request": [hook]}, mounts={base_url: module.MockTransport(mocked)})
    async with http:
        async with client_on(transport_class(http), base_url, max_retries=0) as client:
            assert await list_once(client) == SUMMARY
        assert not http.is_closed
    assert seen == [f"GET /api/fota/v2/callbacks/{ACCOUNT} gzip, deflate"]


async def test_a_client_you_pass_keeps_its_bounded_body(backend: str, bombs: dict[str, tuple[str, bytes]]) -> None:
    coding, body = bombs["gzip-300KB-to-300MiB"]
    with serving(answer(framed(body, coding))) as server:
        async with httpx.AsyncClient() as http:
            transport = fota.HttpxTransport(http, max_response_bytes=MiB)
            async with client_on(transport, server.base_url, timeout=30, max_retries=0) as client:
                with traced_peak() as peak, pytest.raises(fota.ApiConnectionError, match=f"max_response_bytes={MiB}"):
                    await list_once(client)
    assert peak[0] < 6 * MiB, f"peak {peak[0] / MiB:.1f} MiB for a 1 MiB limit"
