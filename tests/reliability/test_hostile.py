"""Hostile responses: whatever a server (or something pretending to be one) sends back, a call ends in a documented
error, within the configured timeout, with bounded memory.

Over real HTTP on 127.0.0.1 through the default `HttpxTransport`: raw socket servers (tests/support/raw_server.py)
act out what no HTTP server library will (silence, trickles, resets, floods, invalid HTTP, a 50 MB body, a gzip
bomb). In process, through `InMemoryTransport`, hypothesis throws arbitrary bodies, statuses and `Retry-After`
values at every operation and at the token and login endpoints.
"""

from __future__ import annotations

import json
import random
import time
import tracemalloc
import zlib
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import anyio
import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fota_callbacks as fota
from tests.support import figures
from tests.support.harness import RecordingSleep, client_on, make_transport, no_wait
from tests.support.operations import OPERATIONS, Operation
from tests.support.raw_server import (
    Behaviour,
    Connection,
    RawServer,
    answer,
    close_after_head,
    endless_body,
    hang_after_head,
    http_response,
    never_read,
    reset_mid_body,
    serving,
    trickle_body,
    trickle_headers,
)
from tests.support.scale import scaled

pytestmark = [pytest.mark.anyio, pytest.mark.stress]

ACCOUNT = "0000123456-00001"
TIMEOUT = 0.3
SLACK = 2.0
"""Seconds allowed beyond the timeout for scheduling on a loaded 2-core machine."""
MiB = 1024 * 1024
DEFAULT_LIMIT = 10 * MiB
FIFTY_MB = 50 * 1000 * 1000

STRESS_SETTINGS = settings(
    max_examples=scaled(100, 1500),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


@attrs.frozen
class Outcome:
    error: BaseException | None
    seconds: float
    hung: bool = False
    """The call had not ended `within` seconds: the test's own guard stopped it."""


async def outcome_of(call: Callable[[], Awaitable[object]], within: float) -> Outcome:
    """Run `call`, never for longer than `within` seconds."""
    started = time.monotonic()
    try:
        with anyio.fail_after(within):
            await call()
    except TimeoutError:  # our guard (fota.ApiTimeoutError is not a TimeoutError)
        return Outcome(None, time.monotonic() - started, hung=True)
    except Exception as exc:
        return Outcome(exc, time.monotonic() - started)
    return Outcome(None, time.monotonic() - started)


async def list_through(server: RawServer, *, within: float = TIMEOUT + SLACK, **options: Any) -> Outcome:
    """A V2 list through `server` with a client on httpx (unless `options` give a transport) that does not retry."""
    options.setdefault("timeout", TIMEOUT)
    options.setdefault("max_retries", 0)
    async with client_on(options.pop("transport", make_transport("httpx")), server.base_url, **options) as client:
        return await outcome_of(lambda: client.v2.list_registered_callbacks(ACCOUNT), within)


# --- invalid HTTP, broken connections -----------------------------------------------------------------------


def _header_flood() -> Behaviour:
    """A status line, then header lines as fast as the client takes them, forever."""

    def behaviour(conn: Connection) -> None:
        if not conn.read_request():
            return
        conn.send(b"HTTP/1.1 200 OK\r\n")
        line = b"X-Flood: " + b"a" * 1000 + b"\r\n"
        while not conn.stopping.is_set():
            conn.send(line)

    return behaviour


INVALID_HTTP: dict[str, Behaviour] = {
    "random-bytes": answer(random.Random(9).randbytes(4096).replace(b"HTTP", b"xxxx")),
    "not-http-at-all": answer(b"SSH-2.0-OpenSSH_9.6\r\n"),
    "garbage-status-line": answer(b"HELLO WORLD\r\n\r\n"),
    "status-not-a-number": answer(b"HTTP/1.1 abc OK\r\nContent-Length: 0\r\n\r\n"),
    "header-without-colon": answer(b"HTTP/1.1 200 OK\r\nNoColonHere\r\nContent-Length: 2\r\n\r\n{}"),
    "negative-content-length": answer(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n{}"),
    "conflicting-content-lengths": answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 7\r\n\r\n{}"),
    "nul-in-header": answer(b"HTTP/1.1 200 OK\r\nX-Bad: a\x00b\r\nContent-Length: 2\r\n\r\n{}"),
    "bad-chunk-size": answer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"),
    "bare-body-no-status-line": answer(b'{"url": "https://listener.example.com/fota"}'),
    "closed-before-any-byte": close_after_head(b""),
    "closed-mid-status-line": close_after_head(b"HTTP/1.1 20"),
    "closed-mid-headers": close_after_head(b"HTTP/1.1 200 OK\r\nContent-Type: appl"),
    "body-shorter-than-declared": close_after_head(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"url"'),
    "reset-mid-body": reset_mid_body(),
    "endless-headers": _header_flood(),
}


@pytest.mark.parametrize("case", list(INVALID_HTTP))
async def test_invalid_http_or_a_broken_connection_is_a_connection_error(case: str) -> None:
    with serving(INVALID_HTTP[case]) as server:
        result = await list_through(server, max_retries=2, sleep=no_wait)
    assert not result.hung, f"{case}: no outcome after {result.seconds:.1f} s"
    assert type(result.error) is fota.ApiConnectionError, f"{case}: {result.error!r}"
    assert result.error.request_sent is True  # the request went out: it may have been processed
    assert result.error.retries_taken == 2  # every operation is idempotent: retried on a new connection
    assert server.connections == 3
    assert result.seconds < SLACK
    figures.add("hostile: invalid HTTP and broken connections", cases=1, attempts=server.connections)


# --- silence and trickles -----------------------------------------------------------------------------------

SILENCE: dict[str, Behaviour] = {
    "accepts-never-reads": never_read(),
    "reads-never-answers": hang_after_head(),
    "half-a-status-line-then-silence": hang_after_head(b"HTTP/1.1 2"),
    "headers-then-silence": hang_after_head(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"),
    "half-a-body-then-silence": hang_after_head(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"url": '),
}


@pytest.mark.parametrize("case", list(SILENCE))
async def test_silence_is_a_timeout_at_the_configured_timeout(case: str) -> None:
    with serving(SILENCE[case]) as server:
        result = await list_through(server)
    assert not result.hung, f"{case}: no outcome after {result.seconds:.1f} s"
    assert type(result.error) is fota.ApiTimeoutError, f"{case}: {result.error!r}"
    assert result.error.request_sent is True
    assert TIMEOUT * 0.9 <= result.seconds <= TIMEOUT + SLACK
    figures.add("hostile: silent servers", cases=1)


TRICKLES: dict[str, Behaviour] = {
    "trickled-body": trickle_body(interval=TIMEOUT / 5),
    "trickled-headers": trickle_headers(interval=TIMEOUT / 5),
}


@pytest.mark.parametrize("case", list(TRICKLES))
async def test_a_response_that_never_ends_times_out_at_the_configured_timeout(case: str) -> None:
    with serving(TRICKLES[case]) as server:
        result = await list_through(server, within=TIMEOUT + 1.0)
    assert not result.hung, f"{case}: still running after {result.seconds:.1f} s (timeout={TIMEOUT})"
    assert type(result.error) is fota.ApiTimeoutError


@pytest.mark.parametrize("case", list(TRICKLES))
async def test_a_response_that_never_ends_is_cut_by_the_deadline(case: str) -> None:
    """The total limit on a call (`deadline=`) ends it too, retries included."""
    deadline = 2 * TIMEOUT
    with serving(TRICKLES[case]) as server:
        result = await list_through(server, deadline=deadline, timeout=10 * deadline, within=deadline + SLACK)
    assert not result.hung
    assert type(result.error) is fota.ApiTimeoutError, repr(result.error)
    assert deadline * 0.9 <= result.seconds <= deadline + SLACK
    figures.add("hostile: never-ending responses cut by deadline", cases=1)


# --- hostile bodies over HTTP ----------------------------------------------------------------------------------

DEEP_ARRAY = b"[" * 100_000
DEEP_OBJECT = b'{"a":' * 100_000
BODIES: dict[str, bytes] = {
    "random-bytes": random.Random(7).randbytes(2048),
    "truncated-json": b'{"url": "https://listener.exa',
    "wrong-type-url": b'{"url": 5}',
    "wrong-type-array": b"[]",
    "wrong-type-string": b'"https://listener.example.com/fota"',
    "null": b"null",
    "nan": b'{"url": NaN}',
    "deeply-nested-array": DEEP_ARRAY,
    "deeply-nested-object": DEEP_OBJECT,
    "deep-but-parsable": b'{"url": ' + b"[" * 500 + b"]" * 500 + b"}",
    "huge-integer": b'{"url": ' + b"9" * 100_000 + b"}",
    "invalid-utf8": b'{"url": "https://\xff\xfe.example"}',
    "duplicate-keys-wrong-last": b'{"url": "https://a.example", "url": false}',
}


def _http_answer(status: int, body: bytes) -> Behaviour:
    return answer(http_response(status, body, [("Content-Type", "application/json")], reason="Whatever"))


@pytest.mark.parametrize("case", list(BODIES))
async def test_a_hostile_2xx_body_is_a_response_validation_error(case: str) -> None:
    with serving(_http_answer(200, BODIES[case])) as server:
        result = await list_through(server)
    assert type(result.error) is fota.ResponseValidationError, f"{case}: {result.error!r}"
    assert result.error.body == BODIES[case]
    assert result.error.errors
    assert result.seconds < SLACK
    figures.add("hostile: 2xx bodies over HTTP", cases=1)


@pytest.mark.parametrize("case", list(BODIES))
async def test_a_hostile_error_body_keeps_its_error_class(case: str) -> None:
    with serving(_http_answer(400, BODIES[case])) as server:
        result = await list_through(server)
    assert type(result.error) is fota.FotaV2ResultException, f"{case}: {result.error!r}"
    assert result.error.error_code is None
    assert result.error.error_message is None
    assert result.error.status_code == 400
    figures.add("hostile: error bodies over HTTP", cases=1)


@pytest.mark.parametrize("body", [DEEP_ARRAY, DEEP_OBJECT, b"9" * 100_000], ids=["array", "object", "huge-int"])
async def test_a_hostile_token_response_is_a_documented_error(body: bytes) -> None:
    with serving(_http_answer(200, body)) as server:
        async with client_on(
            make_transport("httpx"),
            server.base_url,
            timeout=TIMEOUT,
            max_retries=0,
            client_id="id",
            client_secret="secret",
            username="u",
            password="p",
        ) as client:
            result = await outcome_of(lambda: client.v1.list_registered_callbacks(ACCOUNT), TIMEOUT + SLACK)
    assert type(result.error) is fota.ResponseValidationError, repr(result.error)
    assert b"/api/ts/v1/oauth2/token" in server.requests[0]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # no I/O involved in the bug
async def test_error_json_of_a_deeply_nested_body_is_none() -> None:
    with serving(_http_answer(503, DEEP_ARRAY)) as server:
        result = await list_through(server)
    assert isinstance(result.error, fota.ServerError)
    assert result.error.json() is None


# --- size: the response body limit ----------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [None, 2 * MiB], ids=["default-10MiB", "configured-2MiB"])
async def test_the_response_size_limit_is_exactly_the_default_or_the_configured_one(limit: int | None) -> None:
    allowed = DEFAULT_LIMIT if limit is None else limit
    for size, fits in ((allowed, True), (allowed + 1, False)):
        with serving(answer(http_response(503, b"x" * size, reason="Unavailable"))) as server:
            transport = fota.HttpxTransport(verify=False, max_response_bytes=allowed) if limit else None
            result = await list_through(server, transport=transport or fota.HttpxTransport(verify=False))
        if fits:
            assert isinstance(result.error, fota.ServerError), repr(result.error)
            assert len(result.error.body) == allowed
        else:
            assert type(result.error) is fota.ApiConnectionError, repr(result.error)
            assert f"max_response_bytes={allowed}" in str(result.error)


@attrs.frozen
class Traced:
    peak: int


@pytest.fixture
def traced_memory() -> Iterator[Callable[[], Traced]]:
    """Python memory allocated in the test (every thread) from now: call the fixture's value to read the peak."""
    started_here = not tracemalloc.is_tracing()
    if started_here:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base, _ = tracemalloc.get_traced_memory()

    def read() -> Traced:
        _, peak = tracemalloc.get_traced_memory()
        return Traced(peak - base)

    yield read
    if started_here:
        tracemalloc.stop()


BIG_BODIES: dict[str, Callable[[], Behaviour]] = {
    "declared-content-length": lambda: endless_body(FIFTY_MB, chunked=False, declare=True),
    "chunked": lambda: endless_body(FIFTY_MB, chunked=True),
    "until-close": lambda: endless_body(FIFTY_MB, chunked=False),
    "chunked-never-ending": lambda: endless_body(None, chunked=True),
}


@pytest.mark.parametrize("limit", [None, 1 * MiB], ids=["default-10MiB", "1MiB"])
@pytest.mark.parametrize("case", list(BIG_BODIES))
async def test_a_50mb_body_hits_the_size_limit_with_bounded_memory(
    case: str, limit: int | None, traced_memory: Callable[[], Traced]
) -> None:
    options: dict[str, Any] = {} if limit is None else {"max_response_bytes": limit}
    allowed = DEFAULT_LIMIT if limit is None else limit
    with serving(BIG_BODIES[case]()) as server:
        result = await list_through(
            server, transport=fota.HttpxTransport(verify=False, **options), timeout=10.0, within=30.0
        )
        sent = server.bytes_sent
    peak = traced_memory().peak
    figures.report(
        f"hostile: 50 MB body, limit {allowed // MiB} MiB",
        **{f"{case}: peak_MiB": round(peak / MiB, 1), f"{case}: server_sent_MiB": round(sent / MiB, 1)},
    )
    assert type(result.error) is fota.ApiConnectionError, f"{case}: {result.error!r}"
    assert "max_response_bytes" in str(result.error)
    assert result.error.request_sent is True
    assert peak < allowed + 4 * MiB, f"{case}: {peak / MiB:.1f} MiB allocated for a {allowed / MiB:.0f} MiB limit"
    assert sent < FIFTY_MB  # the client stopped reading: the server could not push it all


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """50 MB of zeros, gzip-compressed: made once, before memory is traced."""
    return gzip_bomb(FIFTY_MB)


def gzip_bomb(size: int) -> bytes:
    """`size` zero bytes, gzip-compressed (about 1000:1), made without holding `size` bytes at once."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"\0" * MiB
    parts = [compressor.compress(block) for _ in range(size // MiB)]
    parts.append(compressor.flush())
    return b"".join(parts)


async def test_a_gzip_bomb_hits_the_size_limit_with_bounded_memory(
    bomb: bytes, traced_memory: Callable[[], Traced]
) -> None:
    response = http_response(
        200, bomb, [("Content-Type", "application/json"), ("Content-Encoding", "gzip")], reason="OK"
    )
    with serving(answer(response)) as server:
        result = await list_through(server, timeout=10.0, within=30.0)
    peak = traced_memory().peak
    figures.report(
        "hostile: gzip bomb (10 MiB limit)",
        compressed_KiB=len(bomb) // 1024,
        inflated_MB=FIFTY_MB // 10**6,
        peak_MiB=round(peak / MiB, 1),
    )
    assert type(result.error) is fota.ApiConnectionError, repr(result.error)
    assert peak < DEFAULT_LIMIT + 4 * MiB, f"{peak / MiB:.1f} MiB"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_max_response_bytes_is_exact(chunked: bool) -> None:
    limit = 4096
    prefix, suffix = b'{"url": "https://listener.example.com/', b'"}'
    exact = prefix + b"a" * (limit - len(prefix) - len(suffix)) + suffix
    for body, fits in ((exact, True), (exact[:-2] + b'a"}', False)):
        headers = [("Content-Type", "application/json")]
        if chunked:
            headers.append(("Transfer-Encoding", "chunked"))
            framed = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
        else:
            framed = body
        with serving(answer(http_response(200, framed, headers))) as server:
            result = await list_through(server, transport=fota.HttpxTransport(verify=False, max_response_bytes=limit))
        if fits:
            assert result.error is None, repr(result.error)
        else:
            assert type(result.error) is fota.ApiConnectionError, repr(result.error)


# --- any response, in process (hypothesis) ---------------------------------------------------------------------


def _json_containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20), _json_containers, max_leaves=20
)
DOCUMENTED_KEYS = ["url", "success", "accountName", "serviceName", "aname", "name", "username", "password", "errorCode"]
documented_shapes = st.dictionaries(st.sampled_from(DOCUMENTED_KEYS), json_values, max_size=5)
hostile_bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda value: json.dumps(value).encode()),
    documented_shapes.map(lambda value: json.dumps(value).encode()),
    st.lists(documented_shapes, max_size=3).map(lambda value: json.dumps(value).encode()),
    st.builds(
        lambda depth, opener, closed: opener * depth + (b"]" * depth if closed and opener == b"[" else b""),
        st.integers(1, 50_000),
        st.sampled_from([b"[", b'{"url":']),
        st.booleans(),
    ),
)
statuses = st.one_of(
    st.sampled_from([200, 201, 202, 204, 400, 401, 403, 404, 409, 429, 500, 503]), st.integers(200, 599)
)


async def settle(call: Awaitable[Any]) -> tuple[Any, Exception | None]:
    """(result, None), or (None, the exception) the call raised."""
    try:
        return await call, None
    except Exception as exc:
        return None, exc


def expected_error(status: int, operation: Operation) -> type[fota.FotaError] | None:
    """The error class a user sees for `status` (None: a model, or ResponseValidationError for a 2xx)."""
    if 200 <= status < 300:
        return None
    if status == 400:
        return {"v1": fota.FotaV1ResultException, "v2": fota.FotaV2ResultException, "v3": fota.FotaV3ResultException}[
            operation.version
        ]
    return {401: fota.AuthenticationError, 403: fota.PermissionDeniedError, 404: fota.NotFoundError}.get(
        status,
        {409: fota.ConflictError, 429: fota.RateLimitError}.get(
            status, fota.ServerError if status >= 500 else fota.ApiError
        ),
    )


@STRESS_SETTINGS
@given(status=statuses, body=hostile_bodies, content_type=st.sampled_from(["application/json", "text/html", ""]))
def test_any_response_to_any_operation_ends_in_its_documented_outcome(
    status: int, body: bytes, content_type: str
) -> None:
    answers = fota.Response(status, {"content-type": content_type} if content_type else {}, body)

    async def handler(request: fota.Request) -> fota.Response:
        return answers

    async def run() -> None:
        async with fota.FotaCallbacksClient(
            access_token="static-access-token",
            m2m_token="static-session-token",
            transport=fota.InMemoryTransport(handler),
            max_retries=0,
        ) as client:
            for operation in OPERATIONS:
                for raw in (False, True):
                    result, error = await settle(operation.call(client, ACCOUNT, raw=raw))
                    if isinstance(error, fota.ResponseValidationError):
                        assert 200 <= status < 300, f"{operation.id}: {error!r} for HTTP {status}"
                        assert error.body == body
                        assert error.errors
                    elif isinstance(error, fota.ApiError):
                        assert type(error) is expected_error(status, operation), f"{operation.id}: {error!r}"
                        assert error.status_code == status
                        assert error.body == body
                    else:
                        assert error is None, f"{operation.id}: {error!r}"
                        assert 200 <= status < 300, f"{operation.id}: HTTP {status} returned {result!r}"
                        if raw:
                            assert isinstance(result, fota.ApiResponse)
                            assert result.status_code == status

    anyio.run(run, backend="asyncio")
    figures.add("hostile: any response to any operation (in process)", inputs=1, calls=2 * len(OPERATIONS))


@STRESS_SETTINGS
@given(
    token_status=statuses,
    token_body=hostile_bodies,
    login_status=statuses,
    login_body=hostile_bodies,
)
def test_any_token_or_login_response_ends_in_a_documented_error(
    token_status: int, token_body: bytes, login_status: int, login_body: bytes
) -> None:
    async def handler(request: fota.Request) -> fota.Response:
        if request.url.endswith("/oauth2/token"):
            return fota.Response(token_status, {"content-type": "application/json"}, token_body)
        if request.url.endswith("/session/login"):
            return fota.Response(login_status, {"content-type": "application/json"}, login_body)
        return fota.Response(200, {"content-type": "application/json"}, b'{"url": "https://listener.example.com/x"}')

    async def run() -> None:
        async with fota.FotaCallbacksClient(
            client_id="id",
            client_secret="secret",
            username="user",
            password="password",
            transport=fota.InMemoryTransport(handler),
            max_retries=0,
        ) as client:
            _, error = await settle(client.v2.list_registered_callbacks(ACCOUNT))
        if isinstance(error, fota.OAuthError):
            assert not 200 <= token_status < 300
        elif isinstance(error, fota.SessionLoginError):
            assert not 200 <= login_status < 300
        elif isinstance(error, fota.ResponseValidationError):
            assert 200 <= token_status < 300 or 200 <= login_status < 300
        else:
            assert error is None, repr(error)

    anyio.run(run, backend="asyncio")
    figures.add("hostile: any token/login response (in process)", inputs=1)


retry_after_values = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["1e308", "-1", "NaN", "inf", "-inf", "1e-308", "0", "99999999999999999999", "0x10", " 1 "]),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.integers().map(str),
    st.datetimes().map(lambda moment: moment.strftime("%a, %d %b %Y %H:%M:%S GMT")),
)


@STRESS_SETTINGS
@given(
    status=st.sampled_from([429, 503]),
    header=st.sampled_from(["Retry-After", "retry-after-ms"]),
    value=retry_after_values,
)
def test_no_retry_after_value_makes_the_client_wait_beyond_the_cap(status: int, header: str, value: str) -> None:
    policy = fota.RetryPolicy(max_retries=1)
    sleep = RecordingSleep()
    answers = [fota.Response(status, {header: value}, b""), fota.Response(200, {}, b'{"url": "https://x.example/"}')]

    async def handler(request: fota.Request) -> fota.Response:
        return answers.pop(0)

    async def run() -> None:
        async with fota.FotaCallbacksClient(
            access_token="a-token",
            m2m_token="a-session",
            transport=fota.InMemoryTransport(handler),
            retry_policy=policy,
            sleep=sleep,
        ) as client:
            _, error = await settle(client.v2.list_registered_callbacks(ACCOUNT))
        if error is None:
            [delay] = sleep.delays
            assert 0 <= delay <= max(policy.max_retry_after, policy.max_delay)
        else:
            assert isinstance(error, (fota.RateLimitError, fota.ServerError)), repr(error)
            assert error.status_code == status
            assert sleep.delays == []  # asked to wait beyond the cap: raised at once, not waited for
            if isinstance(error, fota.RateLimitError) and error.retry_after is not None:
                assert error.retry_after > policy.max_retry_after

    anyio.run(run, backend="asyncio")
    figures.add("hostile: Retry-After values", inputs=1)
