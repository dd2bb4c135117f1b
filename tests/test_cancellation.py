"""Cancellation from outside (`anyio.move_on_after`, task group cancellation): mid-send, mid-backoff and
mid-token-refresh. It is never retried, and it leaves the client usable; the httpx pool keeps no connection
busy after many cancelled calls."""

from __future__ import annotations

import time
from collections.abc import Iterator

import anyio
import httpx
import pytest

import fota_callbacks as fota
from tests.auth_server import (
    ACCOUNT,
    API_PATH,
    CALLBACK_URL,
    TOKEN_PATH,
    FakeAuthServer,
    HandlerApp,
    Harness,
    RecordingSleep,
    json_response,
    ok,
    run_handler_app,
    token_response,
    wait_until,
)
from tests.scripted_server import Hang, ScriptedServer, Slow

pytestmark = pytest.mark.anyio

SUMMARY = fota.CallbackSummary(url=CALLBACK_URL)


@pytest.fixture(params=["memory", "http"])
def harness(request: pytest.FixtureRequest) -> Harness:
    if request.param == "http":
        server: ScriptedServer = request.getfixturevalue("scripted_server")
        return Harness("http", server)
    return Harness("memory")


@pytest.fixture(scope="module")
def _handler_app() -> Iterator[HandlerApp]:
    yield from run_handler_app()


async def list_once(client: fota.FotaCallbacksClient) -> fota.CallbackSummary:
    return await client.v2.list_registered_callbacks(ACCOUNT)


async def test_cancelled_mid_send_with_move_on_after(harness: Harness) -> None:
    harness.script(Hang(), ok())
    sleep = RecordingSleep()
    async with harness.client(sleep=sleep) as client:
        started = time.monotonic()
        with anyio.move_on_after(0.2) as scope:
            await list_once(client)
        assert scope.cancelled_caught
        assert time.monotonic() - started < 1.5
        assert harness.attempts == 1  # the cancelled call was not retried
        assert sleep.delays == []

        assert await list_once(client) == SUMMARY
    assert harness.attempts == 2


async def test_cancelled_mid_send_by_its_task_group(harness: Harness) -> None:
    harness.script(Hang(), ok())
    outcome: list[str] = []

    async def call(client: fota.FotaCallbacksClient) -> None:
        try:
            await list_once(client)
        except anyio.get_cancelled_exc_class():
            outcome.append("cancelled")
            raise
        outcome.append("returned")

    async with harness.client(sleep=RecordingSleep()) as client:
        async with anyio.create_task_group() as tg:
            tg.start_soon(call, client)
            await wait_until(lambda: harness.attempts == 1)  # the request is on the wire (or in the handler)
            tg.cancel_scope.cancel()
        assert outcome == ["cancelled"]
        assert harness.attempts == 1

        assert await list_once(client) == SUMMARY


async def test_cancelled_during_a_slow_in_memory_handler() -> None:
    calls: list[fota.Request] = []

    async def slow(request: fota.Request) -> fota.Response:
        calls.append(request)
        if len(calls) == 1:
            await anyio.sleep(10)
        return ok()

    async with fota.FotaCallbacksClient(
        access_token="t", m2m_token="m", transport=fota.InMemoryTransport(slow), timeout=None
    ) as client:
        with anyio.move_on_after(0.05):
            await list_once(client)
        assert len(calls) == 1
        assert await list_once(client) == SUMMARY


async def test_cancelled_mid_backoff(harness: Harness) -> None:
    """The real anyio.sleep: the call is cancelled while it waits 1 s before its retry."""
    harness.script(json_response(503, {}), ok())
    policy = fota.RetryPolicy(initial_delay=1.0, jitter=0)
    async with harness.client(retry_policy=policy) as client:
        started = time.monotonic()
        with anyio.move_on_after(0.2) as scope:
            await list_once(client)
        assert scope.cancelled_caught
        assert time.monotonic() - started < 0.9
        assert harness.attempts == 1  # the retry was never sent

        assert await list_once(client) == SUMMARY  # answered by the step the retry would have had
    assert harness.attempts == 2


async def test_cancelled_mid_token_refresh(harness: Harness) -> None:
    harness.script(Hang(), token_response("t2"), ok())
    async with harness.client(client_id="id", client_secret="secret", sleep=RecordingSleep()) as client:
        with anyio.move_on_after(0.2) as scope:
            await list_once(client)
        assert scope.cancelled_caught
        assert harness.paths() == [TOKEN_PATH]

        assert await list_once(client) == SUMMARY  # a new token request: the cancelled one is not cached
    assert harness.paths() == [TOKEN_PATH, TOKEN_PATH, API_PATH]
    assert harness.header(2, "authorization") == "Bearer t2"


async def test_cancelled_mid_login() -> None:
    server = FakeAuthServer()
    server.login_answers.append(Hang())
    async with fota.FotaCallbacksClient(
        client_id="my-client",
        client_secret="my-secret",
        username="my-user",
        password="my-password",
        transport=fota.InMemoryTransport(server),
    ) as client:
        with anyio.move_on_after(0.1) as scope:
            await list_once(client)
        assert scope.cancelled_caught
        assert (len(server.token_requests), len(server.login_requests), len(server.api_requests)) == (1, 1, 0)

        assert await list_once(client) == SUMMARY
    assert (len(server.token_requests), len(server.login_requests), len(server.api_requests)) == (1, 2, 1)


@pytest.mark.parametrize("kind", ["memory", "http"])
async def test_waiters_survive_the_cancellation_of_the_task_fetching_the_token(
    kind: str, request: pytest.FixtureRequest
) -> None:
    """The task running the token request is cancelled; the calls waiting for its token are not: one of them
    requests a new token, and all of them succeed with it."""
    server = FakeAuthServer()
    # Slow rather than Hang: the leader gives up after 0.2 s, and the server is not left with a task to cancel.
    server.token_answers.append(Slow(0.6, token_response("too-late")))
    if kind == "http":
        app: HandlerApp = request.getfixturevalue("_handler_app")
        app.handler = server
        client = fota.FotaCallbacksClient(
            client_id="my-client",
            client_secret="my-secret",
            m2m_token="static-session",
            base_url=app.base_url,
            transport=fota.HttpxTransport(verify=False),
        )
    else:
        client = fota.FotaCallbacksClient(
            client_id="my-client",
            client_secret="my-secret",
            m2m_token="static-session",
            transport=fota.InMemoryTransport(server),
        )
    server.valid_sessions.add("static-session")
    results: list[fota.CallbackSummary] = []

    async def leader() -> None:
        with anyio.move_on_after(0.2):
            await list_once(client)

    async def waiter() -> None:
        await wait_until(lambda: len(server.token_requests) == 1)
        results.append(await list_once(client))

    async with client, anyio.create_task_group() as tg:
        tg.start_soon(leader)
        for _ in range(20):
            tg.start_soon(waiter)
    assert results == [SUMMARY] * 20
    assert len(server.token_requests) == 2
    assert len(server.api_requests) == 20


async def test_cancelled_calls_leave_no_busy_connection_in_the_httpx_pool(scripted_server: ScriptedServer) -> None:
    scripted_server.default = Hang()
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=50), verify=False) as http:
        client = fota.FotaCallbacksClient(
            access_token="t", m2m_token="m", base_url=scripted_server.base_url, transport=fota.HttpxTransport(http)
        )
        async with anyio.create_task_group() as tg:
            for _ in range(200):
                tg.start_soon(list_once, client)
            # 50 requests hang on the server, 150 wait for a connection from the pool: cancel them all.
            await wait_until(lambda: len(scripted_server.received) >= 50)
            tg.cancel_scope.cancel()
        assert len(scripted_server.received) == 50

        pool = http._transport._pool  # type: ignore[attr-defined]  # httpx/httpcore internals
        busy = [conn for conn in pool.connections if not (conn.is_idle() or conn.is_closed())]
        assert busy == []

        scripted_server.default = ok()
        assert await list_once(client) == SUMMARY
        await client.aclose()
        assert not http.is_closed  # a client you pass is yours to close


async def test_cancelled_slow_response_is_not_retried_and_not_delivered_later(harness: Harness) -> None:
    """A response that arrives after its call was cancelled is never handed to another call."""
    harness.script(Slow(0.4, json_response(200, {"url": "https://example.com/late"})), ok())
    async with harness.client(sleep=RecordingSleep()) as client:
        with anyio.move_on_after(0.1):
            await list_once(client)
        assert await list_once(client) == SUMMARY
    assert harness.attempts == 2
