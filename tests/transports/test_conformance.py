"""Every transport keeps the same contract: the same requests on the wire, the same decoded responses and the
same error classes for the same failures, cancellation without leaked connections, and the same ownership rules.

Each test drives the public client against a `ScriptedTransport` script served on 127.0.0.1, over httpx, httpx2
and aiohttp (aiohttp on asyncio only) and, when it is not about connections, in this process (an
`InMemoryTransport` on the same script).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import gzip
import socket
import ssl
import subprocess
import sys
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import httpx
import pytest
import trio
from anyio.streams.tls import TLSListener

import fota_callbacks as fota
from fota_callbacks.transport import AiohttpTransport, Httpx2Transport
from tests.support.harness import (
    ACCOUNT,
    STATIC_SESSION,
    STATIC_TOKEN,
    Scripted,
    client_on,
    json_response,
    list_once,
    make_transport,
    resource_warnings,
    wait_until,
)
from tests.support.raw_server import Connection, serving
from tests.support.transports import OK, SUMMARY, pool_connections, require, tls_for_127_0_0_1
from tests.support.wire_cases import OPERATIONS, Op

pytestmark = pytest.mark.anyio

SDK_HEADERS = ("accept", "authorization", "vz-m2m-token", "user-agent", "content-type")


# --- the same requests, the same responses --------------------------------------------------------------------


@pytest.mark.parametrize("op", OPERATIONS, ids=str)
async def test_same_request_on_the_wire_and_same_result(kind: str, op: Op, served_script: Scripted) -> None:
    served_script.script.add(json_response(200, op.response))
    async with served_script.client(kind, max_retries=0) as client:
        assert await op.run(client) == op.expected

    [sent] = served_script.sent
    assert (sent.method, sent.path, sent.query) == (op.method, op.path, "")
    assert sent.body == (op.body or b"")
    assert sent.header("accept") == "application/json"
    assert sent.header("authorization") == f"Bearer {STATIC_TOKEN}"
    assert sent.header("vz-m2m-token") == STATIC_SESSION
    assert sent.header("user-agent") == f"fota-callbacks-python/{fota.__version__}"
    assert sent.header("content-type") == ("application/json" if op.body else None)
    names = [name.lower() for name, _ in sent.headers]
    for name in SDK_HEADERS:
        assert names.count(name) <= 1, f"{name} sent twice"
    assert "cookie" not in names
    if kind != "memory":
        assert sent.header("host") == served_script.base_url.removeprefix("http://")
        assert "transfer-encoding" not in names
        if op.body:
            assert sent.header("content-length") == str(len(op.body))
        else:
            assert sent.header("content-length") in (None, "0")


async def test_same_response_status_headers_and_request_id(kind: str, served_script: Scripted) -> None:
    served_script.script.add(
        fota.Response(
            201,
            [
                ("Content-Type", "application/json"),
                ("X-Request-ID", "req-42"),
                ("X-Repeated", "one"),
                ("X-Repeated", "two"),
            ],
            b'{"success":true}',
        )
    )
    async with served_script.client(kind, max_retries=0) as client:
        raw = await client.v3.with_raw_response.deregister_callback(ACCOUNT)
    assert raw.status_code == 201
    assert raw.data == fota.FotaV3SuccessResult(success=True)
    assert raw.request_id == "req-42"
    assert raw.headers["x-request-id"] == "req-42"
    assert raw.headers["x-repeated"] == "one, two"
    assert [value for name, value in raw.headers.raw() if name.lower() == "x-repeated"] == ["one", "two"]


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, fota.FotaV2ResultException),
        (401, fota.AuthenticationError),
        (404, fota.NotFoundError),
        (429, fota.RateLimitError),
        (503, fota.ServerError),
    ],
)
async def test_same_error_class_for_a_status(
    kind: str, status: int, error: type[fota.ApiError], served_script: Scripted
) -> None:
    body = b'{"errorCode":"E42","errorMessage":"no"}'
    served_script.script.add(json_response(status, body, {"x-request-id": "req-7"}))
    async with served_script.client(kind, max_retries=0) as client:
        with pytest.raises(fota.ApiError) as info:
            await list_once(client)
    assert type(info.value) is error
    assert (info.value.status_code, info.value.body, info.value.request_id) == (status, body, "req-7")


async def test_gzip_body_is_decoded(http_kind: str, served_script: Scripted) -> None:
    served_script.script.add(
        fota.Response(200, {"content-type": "application/json", "content-encoding": "gzip"}, gzip.compress(OK.content))
    )
    async with served_script.client(http_kind, max_retries=0) as client:
        assert await list_once(client) == SUMMARY


async def test_a_body_that_does_not_decode_is_a_connection_error(http_kind: str, served_script: Scripted) -> None:
    served_script.script.add(fota.Response(200, {"content-encoding": "gzip"}, b"this is not gzip"))
    served_script.script.add(OK)
    # (httpx abandons its own body generators on a decoding error: trio warns when they are collected.)
    async with resource_warnings(), served_script.client(http_kind, max_retries=0) as client:
        with pytest.raises(fota.ApiConnectionError) as info:
            await list_once(client)
        assert type(info.value) is fota.ApiConnectionError
        assert info.value.request_sent is True
        assert await list_once(client) == SUMMARY


@pytest.mark.parametrize(
    "body", [b"not json", b'{"url": 5}', b"[]", b'{"url":"https://e.com/cb"'], ids=["text", "type", "array", "cut"]
)
async def test_malformed_body_is_a_response_validation_error(kind: str, body: bytes, served_script: Scripted) -> None:
    served_script.script.add(json_response(200, body))
    async with served_script.client(kind, max_retries=0) as client:
        with pytest.raises(fota.ResponseValidationError) as info:
            await list_once(client)
    assert info.value.body == body


async def test_a_redirect_is_not_followed(kind: str, served_script: Scripted) -> None:
    elsewhere = served_script.base_url + "/elsewhere"
    served_script.script.add(fota.Response(302, {"location": elsewhere, "content-length": "0"}))
    served_script.script.add(OK)
    async with served_script.client(kind, max_retries=0) as client:
        with pytest.raises(fota.ApiError) as info:
            await list_once(client)
    assert info.value.status_code == 302
    assert info.value.headers["location"] == elsewhere
    assert [r.path for r in served_script.sent] == [f"/api/fota/v2/callbacks/{ACCOUNT}"]


# --- the same errors for the same failures ------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_refused_connection_was_never_sent(http_kind: str) -> None:
    transport = make_transport(http_kind)
    async with client_on(transport, f"http://127.0.0.1:{_closed_port()}", max_retries=0) as client:
        with pytest.raises(fota.ApiConnectionError) as info:
            await list_once(client)
    assert type(info.value) is fota.ApiConnectionError
    assert info.value.request_sent is False


async def test_reset_mid_body(http_kind: str, served_script: Scripted) -> None:
    served_script.script.drop()
    served_script.script.add(OK)
    async with served_script.client(http_kind, max_retries=0) as client:
        with pytest.raises(fota.ApiConnectionError) as info:
            await list_once(client)
        assert type(info.value) is fota.ApiConnectionError
        assert info.value.request_sent is True
        assert await list_once(client) == SUMMARY  # the broken connection is not reused
    assert len(served_script.sent) == 2


async def test_no_answer_within_the_timeout(kind: str, served_script: Scripted) -> None:
    served_script.script.hang()
    served_script.script.add(OK)
    async with served_script.client(kind, max_retries=0, timeout=0.2) as client:
        started = time.monotonic()
        with pytest.raises(fota.ApiTimeoutError) as info:
            await list_once(client)
        assert time.monotonic() - started < 2
        assert info.value.request_sent is True
        assert await list_once(client) == SUMMARY
    assert len(served_script.sent) == 2


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_body_over_max_response_bytes(http_kind: str, declared: bool, served_script: Scripted) -> None:
    body = b'{"url":"' + b"x" * 2000 + b'"}'
    headers = {"content-type": "application/json"}
    if declared:
        headers["content-length"] = str(len(body))
    else:
        headers["transfer-encoding"] = "chunked"
    served_script.script.add(fota.Response(200, headers, body))
    served_script.script.add(OK)
    async with served_script.client(
        transport=make_transport(http_kind, max_response_bytes=1000), max_retries=0
    ) as client:
        with pytest.raises(fota.ApiConnectionError, match="max_response_bytes=1000") as info:
            await list_once(client)
        assert type(info.value) is fota.ApiConnectionError
        assert info.value.request_sent is True
        assert await list_once(client) == SUMMARY


async def test_max_response_bytes_holds_for_the_decompressed_body(http_kind: str, served_script: Scripted) -> None:
    bomb = gzip.compress(b"0" * 1_000_000)  # ~1 KB on the wire
    served_script.script.add(fota.Response(200, {"content-encoding": "gzip"}, bomb))
    async with served_script.client(
        transport=make_transport(http_kind, max_response_bytes=100_000), max_retries=0
    ) as client:
        with pytest.raises(fota.ApiConnectionError, match="max_response_bytes"):
            await list_once(client)


@contextlib.asynccontextmanager
async def raw_server(answer: bytes, tls: ssl.SSLContext | None = None) -> AsyncIterator[tuple[str, list[bytes]]]:
    """A TCP server on 127.0.0.1 (over TLS with `tls`) that reads each request's head, writes `answer` and closes
    the connection. Yields its base URL and the request heads it read."""
    heads: list[bytes] = []

    async def serve(stream: anyio.abc.ByteStream) -> None:
        async with stream:
            head = b""
            while b"\r\n\r\n" not in head:
                head += await stream.receive()
            heads.append(head)
            if answer:
                await stream.send(answer)

    tcp = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = tcp.extra(anyio.abc.SocketAttribute.local_port)
    listener: anyio.abc.Listener[Any] = tcp if tls is None else TLSListener(tcp, tls, standard_compatible=False)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, serve)
        yield f"{'http' if tls is None else 'https'}://127.0.0.1:{port}", heads
        tg.cancel_scope.cancel()


@pytest.mark.parametrize(
    "answer",
    [b"", b"HTTP/1.1 200 OK\r\nContent-Length: 1", b"HTTP/1.1 20 whatever\r\n\r\n", b"\x00\x01 not http\r\n\r\n"],
    ids=["closed-before-answering", "cut-in-the-head", "bad-status-line", "not-http"],
)
async def test_broken_or_malformed_http_is_a_connection_error(http_kind: str, answer: bytes) -> None:
    """Once sent, the request is not sent again by the HTTP stack: the client's RetryPolicy decides retries."""
    async with (
        raw_server(answer) as (base_url, heads),
        client_on(make_transport(http_kind), base_url, max_retries=0) as client,
    ):
        with pytest.raises(fota.ApiConnectionError) as info:
            await list_once(client)
    assert type(info.value) is fota.ApiConnectionError
    assert info.value.request_sent is True
    assert len(heads) == 1


async def test_tls_is_verified_by_default_and_a_ca_bundle_can_be_given(http_kind: str, tmp_path: Path) -> None:
    server_context, bundle = tls_for_127_0_0_1(tmp_path)
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
        len(OK.content),
        OK.content,
    )
    option = "ssl" if http_kind == "aiohttp" else "verify"
    async with raw_server(answer, tls=server_context) as (base_url, heads):
        transport = {"httpx": fota.HttpxTransport, "httpx2": Httpx2Transport, "aiohttp": AiohttpTransport}[http_kind]
        async with client_on(transport(), base_url, max_retries=0) as client:  # the default CA certificates
            with pytest.raises(fota.ApiConnectionError) as info:
                await list_once(client)
            assert type(info.value) is fota.ApiConnectionError
            assert info.value.request_sent is False
        async with client_on(transport(**{option: str(bundle)}), base_url, max_retries=0) as client:
            assert await list_once(client) == SUMMARY
        async with client_on(
            transport(**{option: ssl.create_default_context(cafile=bundle)}), base_url, max_retries=0
        ) as client:
            assert await list_once(client) == SUMMARY
    assert len(heads) == 2  # the first client sent nothing


# --- cancellation -------------------------------------------------------------------------------------------


async def test_cancelled_call_then_a_call_that_succeeds(kind: str, served_script: Scripted) -> None:
    served_script.script.hang()
    served_script.script.add(OK)
    async with served_script.client(kind, max_retries=0) as client:
        with anyio.move_on_after(0.2) as scope:
            await list_once(client)
        assert scope.cancelled_caught
        assert await list_once(client) == SUMMARY
    assert len(served_script.sent) == 2


async def test_no_connection_leaked_after_50_cancellations(http_kind: str, served_script: Scripted) -> None:
    served_script.script.hang(times=10)
    transport = make_transport(http_kind, max_connections=10)
    async with client_on(transport, served_script.base_url, max_retries=0) as client:
        async with anyio.create_task_group() as tg:
            for _ in range(50):
                tg.start_soon(list_once, client)
            # 10 calls hang on the server, 40 wait for a connection from the pool: cancel them all.
            await wait_until(lambda: len(served_script.sent) >= 10)
            tg.cancel_scope.cancel()
        assert len(served_script.sent) == 10
        assert pool_connections(transport)[1] == 0

        served_script.script.hang(times=10)
        async with anyio.create_task_group() as tg:
            for _ in range(10):  # all ten places are free again: ten requests reach the server at once
                tg.start_soon(list_once, client)
            await wait_until(lambda: len(served_script.sent) >= 20)
            tg.cancel_scope.cancel()

        served_script.script.add(OK, times=10)
        results: list[fota.CallbackSummary] = []

        async def call() -> None:
            results.append(await list_once(client))

        async with anyio.create_task_group() as tg:
            for _ in range(10):  # as many at once as the pool holds: none of its places was lost
                tg.start_soon(call)
        assert results == [SUMMARY] * 10
        assert pool_connections(transport)[1] == 0


# --- ownership and lifecycle --------------------------------------------------------------------------------


async def test_owned_client_is_closed_by_aclose(http_kind: str, served_script: Scripted) -> None:
    served_script.script.add(OK)
    transport = make_transport(http_kind)
    async with client_on(transport, served_script.base_url, max_retries=0) as client:
        await list_once(client)
    if isinstance(transport, AiohttpTransport):
        assert transport.session is None  # closed and let go
    else:
        assert isinstance(transport, fota.HttpxTransport | Httpx2Transport)
        assert transport.client.is_closed
    await transport.aclose()  # twice is fine
    with pytest.raises(fota.ClientClosedError, match=f"{type(transport).__name__} was closed"):
        await transport.send(fota.Request("GET", served_script.base_url + "/"))


async def test_owned_transport_never_used_closes_twice_and_refuses_to_send(
    http_kind: str, served_script: Scripted
) -> None:
    served_script.script.add(OK)
    transport = make_transport(http_kind)
    await transport.aclose()
    await transport.aclose()
    if isinstance(transport, AiohttpTransport):
        assert transport.session is None  # no session was ever opened
    else:
        assert isinstance(transport, fota.HttpxTransport | Httpx2Transport)
        assert transport.client.is_closed
    with pytest.raises(fota.ClientClosedError, match="closed"):
        await transport.send(fota.Request("GET", served_script.base_url + "/"))
    assert served_script.script.requests == []  # nothing was sent after the close


async def failure_of(call: Callable[[], Awaitable[object]], failures: list[BaseException]) -> None:
    """Run `call`, keeping the `FotaError` it ends with."""
    try:
        await call()
    except fota.FotaError as exc:
        failures.append(exc)


async def test_calls_in_flight_when_the_client_is_closed_say_so(http_kind: str, served_script: Scripted) -> None:
    served_script.script.hang(times=3)
    failures: list[BaseException] = []
    client = client_on(make_transport(http_kind), served_script.base_url, max_retries=2)
    async with client, anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(failure_of, functools.partial(list_once, client), failures)
        await wait_until(lambda: len(served_script.sent) == 3)
        await client.aclose()
    assert [type(failure) for failure in failures] == [fota.ClientClosedError] * 3
    for failure in failures:
        assert "closed while this" in str(failure)
        assert "in flight" in str(failure)
    assert len(served_script.sent) == 3  # none was retried on the closed client


async def test_a_transport_closed_under_another_client_fails_its_calls_as_closed(
    http_kind: str, served_script: Scripted
) -> None:
    """Two clients on one transport: the first one closing it ends the second one's calls, which say why."""
    served_script.script.hang()
    transport = make_transport(http_kind)
    owner = client_on(transport, served_script.base_url, max_retries=0)
    failures: list[BaseException] = []
    async with client_on(transport, served_script.base_url, max_retries=0) as borrower:
        async with anyio.create_task_group() as tg:
            tg.start_soon(failure_of, functools.partial(list_once, borrower), failures)
            await wait_until(lambda: len(served_script.sent) == 1)
            await owner.aclose()
        await failure_of(functools.partial(list_once, borrower), failures)
    name = type(transport).__name__
    assert [type(failure) for failure in failures] == [fota.ClientClosedError] * 2
    assert f"{name} was closed while this request was in flight" in str(failures[0])
    assert f"{name} was closed (" in str(failures[1])
    assert len(served_script.sent) == 1


def run_on(library: str, call: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """`call()` in a new event loop of `library`, as `asyncio.run` / `trio.run` make one."""
    return asyncio.run(call()) if library == "asyncio" else trio.run(call)


@pytest.mark.parametrize(
    ("kind", "first", "second"),
    [
        ("httpx", "asyncio", "asyncio"),
        ("httpx2", "asyncio", "asyncio"),
        ("aiohttp", "asyncio", "asyncio"),
        ("httpx", "trio", "asyncio"),
        ("httpx", "asyncio", "trio"),
        ("httpx2", "trio", "asyncio"),
    ],
)
def test_a_client_used_in_a_second_event_loop_says_what_to_do(
    kind: str, first: str, second: str, served_script: Scripted
) -> None:
    """Connections belong to the event loop that opened them: a second `asyncio.run` gets a `FotaError` that says
    to make the client in the loop that uses it, in the call and in `aclose()`, not a bare RuntimeError."""
    require(kind, "asyncio")
    served_script.script.add(OK, times=2)
    name = type(make_transport(kind)).__name__
    client = client_on(make_transport(kind), served_script.base_url, max_retries=0)
    assert run_on(first, functools.partial(list_once, client)) == SUMMARY
    with warnings.catch_warnings():  # the first loop's connections cannot be closed any more: collected unclosed
        warnings.simplefilter("ignore", ResourceWarning)
        with pytest.raises(fota.ClientClosedError) as call:
            run_on(second, functools.partial(list_once, client))
        with pytest.raises(fota.ClientClosedError) as close:
            run_on(second, client.aclose)
        run_on(second, client.aclose)  # closed now: nothing more to say
        with pytest.raises(fota.ClientClosedError, match="this client is closed"):
            run_on(first, functools.partial(list_once, client))
        messages = {"cannot send": str(call.value), "cannot close its connections": str(close.value)}
        del client, call, close  # their tracebacks hold the transport: collected here, while warnings are off
        gc.collect()
    for doing, message in messages.items():
        assert f"{name} {doing} here" in message
        assert "belong to the event loop it first sent in, and this is another one" in message
        assert "Make the client inside the event loop that uses it" in message
    assert len(served_script.sent) == 1  # nothing was sent from the second loop


def test_a_client_may_go_from_one_trio_run_to_the_next(served_script: Scripted) -> None:
    """trio's sockets are not tied to one `trio.run`: the same client works in the next one, and closes there."""
    served_script.script.add(OK, times=2)
    client = client_on(make_transport("httpx"), served_script.base_url, max_retries=0)
    assert run_on("trio", functools.partial(list_once, client)) == SUMMARY
    assert run_on("trio", functools.partial(list_once, client)) == SUMMARY
    run_on("trio", client.aclose)
    assert len(served_script.sent) == 2


async def test_a_call_whose_next_request_would_follow_aclose_says_the_client_is_closed() -> None:
    """In memory, `aclose()` breaks nothing in flight: a call whose answer arrives gets it, and one that still has a
    request to make (here the API call after the token it was waiting for) is refused with `ClientClosedError`."""
    token_asked, release = anyio.Event(), anyio.Event()

    async def server(request: fota.Request) -> fota.Response:
        if request.url.endswith("/oauth2/token"):
            token_asked.set()
            await release.wait()
            return json_response(200, {"access_token": "issued", "expires_in": 3600})
        return OK

    client = client_on(server, client_id="id", client_secret="secret")
    failures: list[BaseException] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(failure_of, functools.partial(list_once, client), failures)
        await token_asked.wait()
        await client.aclose()
        release.set()
    [failure] = failures
    assert isinstance(failure, fota.ClientClosedError)
    assert str(failure) == f"GET /api/fota/v2/callbacks/{ACCOUNT}: this client is closed; make a new one"


class ClosingTransport:
    """A custom transport whose requests in flight fail as dropped connections when it is closed."""

    def __init__(self) -> None:
        self.closed = anyio.Event()
        self.sent = 0

    async def send(self, request: fota.Request) -> fota.Response:
        self.sent += 1
        await self.closed.wait()
        raise fota.ApiConnectionError("connection closed under the request", request=request)

    async def aclose(self) -> None:
        self.closed.set()


async def test_a_custom_transport_broken_by_aclose_ends_its_calls_as_closed() -> None:
    transport = ClosingTransport()
    client = client_on(transport, "https://thingspace.example", max_retries=3)
    failures: list[BaseException] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(failure_of, functools.partial(list_once, client), failures)
        await wait_until(lambda: transport.sent == 1)
        await client.aclose()
    [failure] = failures
    assert isinstance(failure, fota.ClientClosedError)
    assert "the client was closed while this call was in flight (the request may have reached" in str(failure)
    assert isinstance(failure.__cause__, fota.ApiConnectionError)
    assert transport.sent == 1


@pytest.mark.parametrize("anyio_backend", [("asyncio", {})], ids=["asyncio"])
async def test_aiohttp_does_not_resend_on_its_own() -> None:
    """aiohttp resends a GET, PUT or DELETE once when a connection breaks before the answer, unless its private
    `ClientSession._retry_connection` is off (no public switch, aiohttp 3.14): the client's RetryPolicy must decide
    every resend. This fails when aiohttp renames or drops that attribute."""
    require("aiohttp", "asyncio")
    ok = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"

    def answer_once_then_close(conn: Connection) -> None:  # keep-alive: answers one request, drops the next
        if conn.read_request():
            conn.send(ok)
            conn.read_request()

    transport = make_transport("aiohttp")
    with serving(answer_once_then_close) as server:
        async with client_on(transport, server.base_url, max_retries=0) as client:
            assert await list_once(client) == fota.CallbackSummary()
            assert isinstance(transport, AiohttpTransport)
            assert transport.session is not None
            assert transport.session._retry_connection is False
            with pytest.raises(fota.ApiConnectionError) as info:
                await list_once(client)
    assert info.value.request_sent is True
    assert (len(server.requests), server.connections) == (2, 1)


async def test_a_client_you_pass_is_not_closed(http_kind: str, served_script: Scripted) -> None:
    served_script.script.add(OK, times=2)
    http: Any
    transport: fota.Transport
    if http_kind == "aiohttp":
        import aiohttp

        http = aiohttp.ClientSession()
        transport = AiohttpTransport(http)
        assert transport.session is http
    elif http_kind == "httpx":
        http = httpx.AsyncClient()
        transport = fota.HttpxTransport(http)
    else:
        import httpx2

        http = httpx2.AsyncClient()
        transport = Httpx2Transport(http)
    async with http:
        async with client_on(transport, served_script.base_url, max_retries=0) as client:
            assert await list_once(client) == SUMMARY
        assert not _is_closed(http)
        await transport.aclose()
        assert not _is_closed(http)
        # still yours, and still usable
        assert (await transport.send(fota.Request("GET", served_script.base_url + "/x"))).status_code == 200
    assert _is_closed(http)


def _is_closed(http: Any) -> bool:
    return bool(http.is_closed if hasattr(http, "is_closed") else http.closed)  # httpx(2) | aiohttp


@pytest.fixture
def aiohttp_made_outside_any_loop() -> AiohttpTransport:
    pytest.importorskip("aiohttp", reason="the aiohttp extra is not installed")
    return AiohttpTransport()


@pytest.mark.parametrize("anyio_backend", [("trio", {})], ids=["trio"])
async def test_aiohttp_refuses_trio(aiohttp_made_outside_any_loop: AiohttpTransport) -> None:
    with pytest.raises(RuntimeError, match=r"asyncio only.*use HttpxTransport"):
        AiohttpTransport()
    with pytest.raises(RuntimeError, match=r"asyncio only.*use HttpxTransport"):
        await aiohttp_made_outside_any_loop.send(fota.Request("GET", "http://127.0.0.1:9/"))
    await aiohttp_made_outside_any_loop.aclose()


# --- optional packages --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("transport", "package", "extra"),
    [(AiohttpTransport, "aiohttp", "aiohttp"), (Httpx2Transport, "httpx2", "httpx2")],
    ids=["aiohttp", "httpx2"],
)
def test_a_missing_extra_is_named(
    transport: type[fota.Transport], package: str, extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, package, None)  # as if not installed
    wanted = rf"pip install 'fota-callbacks\[{extra}\]'"
    if package == "httpx2" and sys.version_info < (3, 11):
        wanted = r"needs the httpx2 package, which needs Python 3\.11 or later"  # no extra would help
    with pytest.raises(ImportError, match=wanted) as info:
        transport()
    assert info.value.name == package


def test_importing_the_sdk_imports_no_optional_http_stack() -> None:
    code = (
        "import sys, fota_callbacks, fota_callbacks.transport; "
        "print(sorted(m for m in ('aiohttp', 'httpx2', 'httpcore2', 'yarl', 'multidict') if m in sys.modules))"
    )
    output = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert output.strip() == "[]"
