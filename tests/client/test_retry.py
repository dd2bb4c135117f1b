"""Retries, Retry-After, timeouts, the total deadline, per-call options and middleware.

Every test runs with the same `ScriptedTransport` script in memory and through `HttpxTransport` against it served
by uvicorn (real HTTP on 127.0.0.1). Backoff is never really slept: the client
gets `sleep=RecordingSleep()`.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import anyio
import pytest

import fota_callbacks as fota
from fota_callbacks.testing import ScriptedAnswer, ScriptedTransport
from fota_callbacks.transport import SendNext
from tests.support.harness import ACCOUNT, TOKEN_PATH, RecordingSleep, Scripted, resource_warnings
from tests.support.harness import V2_PATH as API_PATH

pytestmark = pytest.mark.anyio

CALLBACK_URL = "https://example.com/callback"
LISTING = {"url": CALLBACK_URL}
SUMMARY = fota.CallbackSummary(url=CALLBACK_URL)
NO_JITTER = fota.RetryPolicy(jitter=0)


def status(
    script: ScriptedTransport, code: int, headers: dict[str, str] | None = None, **kwargs: Any
) -> ScriptedAnswer:
    """Queue an error answer with a body of the documented shape."""
    body = {"errorCode": f"E{code}", "errorMessage": "scripted"}
    return script.respond(code, json=body, headers=headers, **kwargs)


def ok(script: ScriptedTransport, **kwargs: Any) -> ScriptedAnswer:
    return script.respond(json=LISTING, **kwargs)


def token(script: ScriptedTransport, value: str) -> ScriptedAnswer:
    return script.respond(json={"access_token": value, "token_type": "Bearer", "expires_in": 3600})


Failure = Callable[[ScriptedTransport, int], object]
"""Queues a failing answer for the next `times` requests."""


def failing(code: int) -> Failure:
    return lambda script, times: status(script, code, times=times)


# kind -> (queue the failing answer, the error it ends in, its status code, extra client options)
FAILURES: dict[str, tuple[Failure, type[fota.FotaError], int | None, dict[str, float]]] = {
    "408": (failing(408), fota.ApiError, 408, {}),
    "429": (failing(429), fota.RateLimitError, 429, {}),
    "500": (failing(500), fota.ServerError, 500, {}),
    "502": (failing(502), fota.ServerError, 502, {}),
    "503": (failing(503), fota.ServerError, 503, {}),
    "504": (failing(504), fota.ServerError, 504, {}),
    "drop": (lambda script, times: script.drop(times=times), fota.ApiConnectionError, None, {}),
    "timeout": (lambda script, times: ok(script, delay=1.0, times=times), fota.ApiTimeoutError, None, {"timeout": 0.2}),
}


async def list_raw(client: fota.FotaCallbacksClient) -> fota.ApiResponse[fota.CallbackSummary]:
    return await client.v2.with_raw_response.list_registered_callbacks(ACCOUNT)


@pytest.mark.parametrize("kind", list(FAILURES))
async def test_retryable_failure_is_tried_three_times(scripted: Scripted, kind: str) -> None:
    fail, error, code, options = FAILURES[kind]
    fail(scripted.script, 3)
    sleep = RecordingSleep()
    async with scripted.client(retry_policy=NO_JITTER, sleep=sleep, **options) as client:
        with pytest.raises(error) as excinfo:
            await list_raw(client)

    exc = excinfo.value
    assert isinstance(exc, (fota.ApiError, fota.ApiConnectionError))
    if kind == "drop":
        assert not isinstance(exc, fota.ApiTimeoutError)
    if code is not None:
        assert isinstance(exc, fota.ApiError)
        assert exc.status_code == code
    assert exc.retries_taken == 2
    assert scripted.attempts == 3
    assert scripted.paths() == [API_PATH] * 3
    assert sleep.delays == [0.5, 1.0]


@pytest.mark.parametrize("kind", list(FAILURES))
async def test_success_after_two_retryable_failures(scripted: Scripted, kind: str) -> None:
    fail, _, _, options = FAILURES[kind]
    fail(scripted.script, 2)
    ok(scripted.script)
    sleep = RecordingSleep()
    async with scripted.client(retry_policy=NO_JITTER, sleep=sleep, **options) as client:
        response = await list_raw(client)

    assert response.data == SUMMARY
    assert response.status_code == 200
    assert response.retries_taken == 2
    assert scripted.attempts == 3
    assert sleep.delays == [0.5, 1.0]


async def test_default_jitter_keeps_each_delay_within_a_quarter_below_the_base(scripted: Scripted) -> None:
    sleep = RecordingSleep()
    async with scripted.client(sleep=sleep) as client:
        for _ in range(10):
            status(scripted.script, 503, times=2)
            ok(scripted.script)
            assert (await list_raw(client)).retries_taken == 2

    firsts, seconds = sleep.delays[0::2], sleep.delays[1::2]
    assert len(firsts) == len(seconds) == 10
    assert all(0.75 * 0.5 <= delay <= 0.5 for delay in firsts)
    assert all(0.75 * 1.0 <= delay <= 1.0 for delay in seconds)
    assert len(set(sleep.delays)) > 2  # really random


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (400, fota.FotaV2ResultException),
        (403, fota.PermissionDeniedError),
        (404, fota.NotFoundError),
        (409, fota.ConflictError),
        (413, fota.ApiError),
        (422, fota.ApiError),
        (501, fota.ServerError),
    ],
)
async def test_no_retry_on_other_statuses(scripted: Scripted, code: int, error: type[fota.ApiError]) -> None:
    status(scripted.script, code)
    ok(scripted.script)
    sleep = RecordingSleep()
    async with scripted.client(sleep=sleep) as client:
        with pytest.raises(error) as excinfo:
            await list_raw(client)
    assert excinfo.value.status_code == code
    assert excinfo.value.retries_taken == 0
    assert scripted.attempts == 1
    assert sleep.delays == []


async def test_no_retry_after_a_401_that_follows_a_token_renewal(scripted: Scripted) -> None:
    script = scripted.script
    token(script, "t1")
    status(script, 401)
    token(script, "t2")
    status(script, 401)
    ok(script)
    sleep = RecordingSleep()
    async with scripted.client(client_id="id", client_secret="secret", max_retries=5, sleep=sleep) as client:
        with pytest.raises(fota.AuthenticationError) as excinfo:
            await list_raw(client)
    assert excinfo.value.retries_taken == 1  # the retry with renewed credentials counts
    assert scripted.paths() == [TOKEN_PATH, API_PATH, TOKEN_PATH, API_PATH]
    assert scripted.header(1, "authorization") == "Bearer t1"
    assert scripted.header(3, "authorization") == "Bearer t2"
    assert sleep.delays == []


@pytest.mark.parametrize("kind", ["503", "drop"])
async def test_max_retries_zero_makes_one_attempt(scripted: Scripted, kind: str) -> None:
    fail, error, _, _ = FAILURES[kind]
    fail(scripted.script, 1)
    ok(scripted.script)
    sleep = RecordingSleep()
    async with scripted.client(max_retries=0, sleep=sleep) as client:
        assert client.max_retries == 0
        with pytest.raises(error) as excinfo:
            await list_raw(client)
    assert isinstance(excinfo.value, (fota.ApiError, fota.ApiConnectionError))
    assert excinfo.value.retries_taken == 0
    assert scripted.attempts == 1
    assert sleep.delays == []


# -- Retry-After ----------------------------------------------------------------------------------------------


def http_date(seconds_from_now: float) -> str:
    return email.utils.format_datetime(datetime.now(timezone.utc) + timedelta(seconds=seconds_from_now), usegmt=True)


@pytest.mark.parametrize("code", [429, 503])
@pytest.mark.parametrize(
    ("headers", "low", "high"),
    [
        pytest.param({"Retry-After": "2"}, 2.0, 2.0, id="seconds"),
        pytest.param({"Retry-After": "0"}, 0.0, 0.0, id="zero"),
        pytest.param({"retry-after-ms": "1500"}, 1.5, 1.5, id="ms"),
        pytest.param({"retry-after-ms": "250", "Retry-After": "7"}, 0.25, 0.25, id="ms-first"),
        # An HTTP date has whole seconds: 10 s from now is 9 to 10 s away when it is read.
        pytest.param({"Retry-After": "DATE+10"}, 8.5, 10.0, id="http-date"),
    ],
)
async def test_retry_after_is_the_delay(
    scripted: Scripted, code: int, headers: dict[str, str], low: float, high: float
) -> None:
    headers = {k: (http_date(10) if v == "DATE+10" else v) for k, v in headers.items()}
    status(scripted.script, code, headers)
    ok(scripted.script)
    sleep = RecordingSleep()
    async with scripted.client(sleep=sleep) as client:
        response = await list_raw(client)
    assert response.retries_taken == 1
    [delay] = sleep.delays
    assert low <= delay <= high


async def test_unusable_retry_after_ms_falls_back_to_backoff(scripted: Scripted) -> None:
    status(scripted.script, 429, {"retry-after-ms": "nan"})
    ok(scripted.script)
    sleep = RecordingSleep()
    async with scripted.client(sleep=sleep, retry_policy=NO_JITTER) as client:
        response = await list_raw(client)
    assert response.retries_taken == 1
    assert sleep.delays == [0.5]


@pytest.mark.parametrize(
    ("header", "value", "expected"),
    [
        pytest.param("Retry-After", "120", 120.0, id="seconds"),
        pytest.param("retry-after-ms", "61000", 61.0, id="ms"),
        pytest.param("Retry-After", "DATE+300", 300.0, id="http-date"),
    ],
)
async def test_retry_after_beyond_the_cap_raises_at_once(
    scripted: Scripted, header: str, value: str, expected: float
) -> None:
    value = http_date(300) if value == "DATE+300" else value
    status(scripted.script, 429, {header: value})
    ok(scripted.script)
    sleep = RecordingSleep()
    async with scripted.client(sleep=sleep) as client:
        assert client.retry_policy.max_retry_after == 60.0
        with pytest.raises(fota.RateLimitError) as excinfo:
            await list_raw(client)
    assert expected - 2 <= (excinfo.value.retry_after or 0) <= expected
    assert excinfo.value.retries_taken == 0
    assert scripted.attempts == 1
    assert sleep.delays == []


async def test_retry_after_cap_is_configurable(scripted: Scripted) -> None:
    status(scripted.script, 503, {"Retry-After": "10"})
    ok(scripted.script)
    sleep = RecordingSleep()
    async with scripted.client(sleep=sleep, retry_policy=fota.RetryPolicy(max_retry_after=5)) as client:
        with pytest.raises(fota.ServerError):
            await list_raw(client)
    assert scripted.attempts == 1
    assert sleep.delays == []


async def test_rate_limit_error_after_retries_carries_retry_after(scripted: Scripted) -> None:
    status(scripted.script, 429, {"Retry-After": "3"}, times=3)
    sleep = RecordingSleep()
    async with scripted.client(sleep=sleep) as client:
        with pytest.raises(fota.RateLimitError) as excinfo:
            await list_raw(client)
    assert excinfo.value.retry_after == 3.0
    assert excinfo.value.retries_taken == 2
    assert sleep.delays == [3.0, 3.0]


# -- the total deadline, per-call options -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("slow", "how"),
    [
        pytest.param(lambda script: script.hang(), "constructor", id="hang-constructor"),
        pytest.param(lambda script: ok(script, delay=3.0), "with_options", id="slow-with_options"),
    ],
)
async def test_deadline_cuts_a_slow_server_off_on_time(
    scripted: Scripted, slow: Callable[[ScriptedTransport], object], how: str
) -> None:
    slow(scripted.script)
    ok(scripted.script)
    if how == "constructor":
        client = scripted.client(deadline=0.3)
        caller = client
    else:
        client = scripted.client()
        caller = client.with_options(deadline=0.3)
        assert client.deadline is None
    assert caller.deadline == 0.3
    async with client:
        started = time.monotonic()
        with pytest.raises(fota.ApiTimeoutError):
            await list_raw(caller)
        elapsed = time.monotonic() - started
        assert 0.25 <= elapsed < 2.0
        assert scripted.attempts == 1
        assert (await list_raw(client)).data == SUMMARY  # still usable


async def test_deadline_spans_retries(scripted: Scripted) -> None:
    """Retries that would overrun the deadline are not started (or are cut off)."""
    status(scripted.script, 503, delay=0.15, times=None)
    started = time.monotonic()
    async with scripted.client(deadline=0.5, retry_policy=fota.RetryPolicy(initial_delay=0.1, jitter=0)) as client:
        with pytest.raises((fota.ServerError, fota.ApiTimeoutError)):
            await list_raw(client)
    assert time.monotonic() - started < 2.0
    assert 1 <= scripted.attempts <= 3


async def test_deadline_error_reports_the_retries_taken(scripted: Scripted) -> None:
    scripted.script.drop(times=2)
    scripted.script.hang()
    policy = fota.RetryPolicy(initial_delay=0.01, jitter=0)
    async with scripted.client(deadline=0.3, retry_policy=policy, max_retries=5, sleep=RecordingSleep()) as client:
        with pytest.raises(fota.ApiTimeoutError) as excinfo:
            await list_raw(client)
    assert scripted.attempts == 3
    assert excinfo.value.retries_taken == 2


async def test_deadline_does_not_wait_for_a_retry_after_beyond_it(scripted: Scripted) -> None:
    status(scripted.script, 503, {"Retry-After": "5"})
    ok(scripted.script)
    async with scripted.client(deadline=1.0) as client:  # the real anyio.sleep
        started = time.monotonic()
        with pytest.raises(fota.ServerError):
            await list_raw(client)
        assert time.monotonic() - started < 0.8
    assert scripted.attempts == 1


async def test_with_options_overrides_per_call_without_changing_the_parent(scripted: Scripted) -> None:
    script = scripted.script
    sleep = RecordingSleep()
    async with scripted.client(sleep=sleep, retry_policy=NO_JITTER) as client:
        fast = client.with_options(timeout=0.2, max_retries=0)
        assert (fast.timeout, fast.max_retries) == (0.2, 0)
        assert (client.timeout, client.max_retries) == (30.0, 2)

        ok(script, delay=1.0)
        with pytest.raises(fota.ApiTimeoutError) as excinfo:
            await list_raw(fast)
        assert excinfo.value.retries_taken == 0
        assert scripted.attempts == 1

        ok(script, delay=0.3)  # longer than `fast` allows, fine for the parent
        assert (await list_raw(client)).data == SUMMARY

        status(script, 503, times=4)
        ok(script)
        patient = client.with_options(max_retries=4)
        response = await list_raw(patient)
        assert response.retries_taken == 4
        assert sleep.delays == [0.5, 1.0, 2.0, 4.0]

        await fast.aclose()  # a derived client never closes the shared transport
        ok(script)
        assert (await list_raw(client)).data == SUMMARY
    assert (client.timeout, client.max_retries) == (30.0, 2)


# -- middleware ---------------------------------------------------------------------------------------------------


async def test_middleware_sees_every_attempt_and_its_headers_reach_the_wire(scripted: Scripted) -> None:
    seen: list[tuple[str, str, int]] = []

    async def tracing(request: fota.Request, call_next: SendNext) -> fota.Response:
        traced = fota.Request(
            request.method,
            request.url,
            [*request.headers.raw(), ("X-Trace-Id", "trace-123")],
            request.content,
            request.timeout,
        )
        response = await call_next(traced)
        seen.append((request.method, request.url.removeprefix(scripted.base_url), response.status_code))
        return response

    async def outer(request: fota.Request, call_next: SendNext) -> fota.Response:
        assert request.headers.get("X-Trace-Id") is None  # the first middleware runs outermost
        return await call_next(request)

    token(scripted.script, "t1")
    status(scripted.script, 503)
    ok(scripted.script)
    sleep = RecordingSleep()
    async with scripted.client(
        client_id="id", client_secret="secret", middleware=[outer, tracing], sleep=sleep
    ) as client:
        assert (await list_raw(client)).retries_taken == 1

    assert seen == [("POST", TOKEN_PATH, 200), ("GET", API_PATH, 503), ("GET", API_PATH, 200)]
    assert [scripted.header(i, "x-trace-id") for i in range(3)] == ["trace-123"] * 3
    assert scripted.header(2, "authorization") == "Bearer t1"


async def test_middleware_sees_dropped_attempts_as_errors(scripted: Scripted) -> None:
    outcomes: list[str] = []

    async def observe(request: fota.Request, call_next: SendNext) -> fota.Response:
        try:
            response = await call_next(request)
        except fota.ApiConnectionError as exc:
            outcomes.append(type(exc).__name__)
            raise
        outcomes.append(str(response.status_code))
        return response

    scripted.script.drop()
    ok(scripted.script)
    async with scripted.client(middleware=[observe], sleep=RecordingSleep()) as client:
        await list_raw(client)
    assert outcomes == ["ApiConnectionError", "200"]


# -- odd bodies --------------------------------------------------------------------------------------------------


async def test_broken_content_encoding_is_a_fota_error(served_script: Scripted) -> None:
    served_script.script.respond(200, headers={"content-encoding": "gzip"}, content=b"this is not gzip")
    # (httpx abandons its own body generators on a decoding error: trio warns when they are collected.)
    async with (
        resource_warnings(),
        fota.FotaCallbacksClient(
            access_token="t", m2m_token="m", base_url=served_script.base_url, max_retries=0
        ) as client,
    ):
        with pytest.raises(fota.FotaError):
            await client.v2.list_registered_callbacks(ACCOUNT)


async def test_oversized_body_is_refused_and_leaves_nothing_behind(served_script: Scripted) -> None:
    """Refused midway, and nothing left for the garbage collector (on trio, an HTTP stack's body generator
    left suspended is reported as a ResourceWarning when collected)."""
    body = b'{"url":"' + b"x" * 50_000 + b'"}'  # sent chunked: no content-length to refuse it up front
    chunked = {"content-type": "application/json", "transfer-encoding": "chunked"}
    served_script.script.respond(200, headers=chunked, content=body)
    ok(served_script.script)
    transport = fota.HttpxTransport(verify=False, max_response_bytes=1000)
    async with (
        resource_warnings() as leaks,
        fota.FotaCallbacksClient(
            access_token="t", m2m_token="m", base_url=served_script.base_url, transport=transport, max_retries=0
        ) as client,
    ):
        with pytest.raises(fota.ApiConnectionError, match="max_response_bytes"):
            await list_raw(client)
        assert (await list_raw(client)).data == SUMMARY  # the client goes on
    assert leaks == []


async def test_cancelled_sleep_is_not_swallowed(scripted: Scripted) -> None:
    """A `sleep=` that gets cancelled propagates the cancellation (nothing is retried behind the caller)."""
    status(scripted.script, 503)
    ok(scripted.script)
    async with scripted.client() as client:  # the real anyio.sleep, 0.5 s backoff
        with anyio.move_on_after(0.1) as scope:
            await list_raw(client)
        assert scope.cancelled_caught
        assert scripted.attempts == 1


def test_the_policy_decides_each_next_delay_in_one_place() -> None:
    """`RetryPolicy.next_delay`: the wait before the next attempt, or None to give up, from the retries taken,
    the response or failure, and what is left of the deadline."""
    policy = fota.RetryPolicy(max_retries=2, initial_delay=1.0, jitter=0.0, max_retry_after=5.0)
    dropped = fota.ApiConnectionError("reset", request_sent=True)
    assert policy.next_delay(0, fota.Response(503)) == 1.0
    assert policy.next_delay(1, dropped) == 2.0
    assert policy.next_delay(2, fota.Response(503)) is None  # max_retries spent
    assert policy.next_delay(0, fota.Response(404)) is None  # never retried
    assert policy.next_delay(0, fota.Response(200)) is None
    assert policy.next_delay(0, fota.Response(429, {"Retry-After": "4"})) == 4.0
    assert policy.next_delay(0, fota.Response(429, {"Retry-After": "6"})) is None  # beyond the cap: give up now
    assert policy.next_delay(0, fota.Response(503), remaining=0.5) is None  # would end past the deadline
    assert policy.next_delay(0, fota.Response(503), remaining=1.5) == 1.0
    cautious = fota.RetryPolicy(retry_maybe_processed=False)
    assert cautious.next_delay(0, dropped) is None
    assert cautious.next_delay(0, fota.ApiConnectionError("refused", request_sent=False)) is not None
