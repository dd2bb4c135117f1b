"""Cancellation from outside (`anyio.move_on_after`, task group cancellation): mid-send, mid-backoff and
mid-token-refresh. It is never retried, and it leaves the client usable; the httpx pool keeps no connection
busy after many cancelled calls."""

from __future__ import annotations

import time

import anyio
import httpx
import pytest

import fota_callbacks as fota
from fota_callbacks.testing import FakeThingSpace, Fault, serve
from tests.support.harness import (
    ACCOUNT,
    TOKEN_PATH,
    V2_PATH,
    RecordingSleep,
    Scripted,
    json_response,
    list_once,
    wait_until,
)

pytestmark = pytest.mark.anyio

CALLBACK_URL = "https://example.com/callback"
LISTING = {"url": CALLBACK_URL}
SUMMARY = fota.CallbackSummary(url=CALLBACK_URL)


async def test_cancelled_mid_send_with_move_on_after(scripted: Scripted) -> None:
    scripted.script.hang()
    scripted.script.respond(json=LISTING)
    sleep = RecordingSleep()
    async with scripted.client(sleep=sleep) as client:
        started = time.monotonic()
        with anyio.move_on_after(0.2) as scope:
            await list_once(client)
        assert scope.cancelled_caught
        assert time.monotonic() - started < 1.5
        assert scripted.attempts == 1  # the cancelled call was not retried
        assert sleep.delays == []

        assert await list_once(client) == SUMMARY
    assert scripted.attempts == 2


async def test_cancelled_mid_send_by_its_task_group(scripted: Scripted) -> None:
    scripted.script.hang()
    scripted.script.respond(json=LISTING)
    outcome: list[str] = []

    async def call(client: fota.FotaCallbacksClient) -> None:
        try:
            await list_once(client)
        except anyio.get_cancelled_exc_class():
            outcome.append("cancelled")
            raise
        outcome.append("returned")

    async with scripted.client(sleep=RecordingSleep()) as client:
        async with anyio.create_task_group() as tg:
            tg.start_soon(call, client)
            await wait_until(lambda: scripted.attempts == 1)  # the request is on the wire (or in the handler)
            tg.cancel_scope.cancel()
        assert outcome == ["cancelled"]
        assert scripted.attempts == 1

        assert await list_once(client) == SUMMARY


async def test_cancelled_during_a_slow_in_memory_handler() -> None:
    calls: list[fota.Request] = []

    async def slow(request: fota.Request) -> fota.Response:
        calls.append(request)
        if len(calls) == 1:
            await anyio.sleep(10)
        return json_response(200, LISTING)

    async with fota.FotaCallbacksClient(
        access_token="t", m2m_token="m", transport=fota.InMemoryTransport(slow), timeout=None
    ) as client:
        with anyio.move_on_after(0.05):
            await list_once(client)
        assert len(calls) == 1
        assert await list_once(client) == SUMMARY


async def test_cancelled_mid_backoff(scripted: Scripted) -> None:
    """The real anyio.sleep: the call is cancelled while it waits 1 s before its retry."""
    scripted.script.respond(503, json={})
    scripted.script.respond(json=LISTING)
    policy = fota.RetryPolicy(initial_delay=1.0, jitter=0)
    async with scripted.client(retry_policy=policy) as client:
        started = time.monotonic()
        with anyio.move_on_after(0.2) as scope:
            await list_once(client)
        assert scope.cancelled_caught
        assert time.monotonic() - started < 0.9
        assert scripted.attempts == 1  # the retry was never sent

        assert await list_once(client) == SUMMARY  # answered by the step the retry would have had
    assert scripted.attempts == 2


async def test_cancelled_mid_token_refresh(scripted: Scripted) -> None:
    scripted.script.hang()
    scripted.script.respond(json={"access_token": "t2", "token_type": "Bearer", "expires_in": 3600})
    scripted.script.respond(json=LISTING)
    async with scripted.client(client_id="id", client_secret="secret", sleep=RecordingSleep()) as client:
        with anyio.move_on_after(0.2) as scope:
            await list_once(client)
        assert scope.cancelled_caught
        assert scripted.paths() == [TOKEN_PATH]

        assert await list_once(client) == SUMMARY  # a new token request: the cancelled one is not cached
    assert scripted.paths() == [TOKEN_PATH, TOKEN_PATH, V2_PATH]
    assert scripted.header(2, "authorization") == "Bearer t2"


def counts(fake: FakeThingSpace) -> tuple[int, int, int]:
    """How many token, login and API requests the fake received."""
    token, login = fake.requests_for(operation="token"), fake.requests_for(operation="login")
    return len(token), len(login), len(fake.requests_for(version="v2"))


async def test_cancelled_mid_login() -> None:
    fake = FakeThingSpace()
    fake.inject(Fault.delay(3600), operation="login")  # no answer until the caller gives up
    fake.seed(ACCOUNT, v2=CALLBACK_URL)
    async with fake.client() as client:
        with anyio.move_on_after(0.1) as scope:
            await list_once(client)
        assert scope.cancelled_caught
        assert counts(fake) == (1, 1, 0)

        assert await list_once(client) == SUMMARY
    assert counts(fake) == (1, 2, 1)


@pytest.mark.parametrize("kind", ["memory", "http"])
async def test_waiters_survive_the_cancellation_of_the_task_fetching_the_token(kind: str) -> None:
    """The task running the token request is cancelled; the calls waiting for its token are not: one of them
    requests a new token, and all of them succeed with it."""
    fake = FakeThingSpace()
    fake.seed(ACCOUNT, v2=CALLBACK_URL)
    _, session = fake.issue_tokens()
    # A slow answer rather than none: the leader gives up after 0.2 s, and the server is not left with a task
    # to cancel.
    fake.inject(Fault.delay(0.6), operation="token")
    results: list[fota.CallbackSummary] = []

    async def leader(client: fota.FotaCallbacksClient) -> None:
        with anyio.move_on_after(0.2):
            await list_once(client)

    async def waiter(client: fota.FotaCallbacksClient) -> None:
        await wait_until(lambda: counts(fake)[0] == 1)
        results.append(await list_once(client))

    async def run(client: fota.FotaCallbacksClient) -> None:
        async with client, anyio.create_task_group() as tg:
            tg.start_soon(leader, client)
            for _ in range(20):
                tg.start_soon(waiter, client)

    if kind == "http":
        with serve(fake) as base_url:
            await run(fake.client(m2m_token=session, base_url=base_url, transport=fota.HttpxTransport(verify=False)))
    else:
        await run(fake.client(m2m_token=session))
    assert results == [SUMMARY] * 20
    assert counts(fake) == (2, 0, 20)
    # every call used the token of the second request, none the one that came too late
    assert len({request.headers["authorization"] for request in fake.requests_for(version="v2")}) == 1


async def test_cancelled_calls_leave_no_busy_connection_in_the_httpx_pool(served_script: Scripted) -> None:
    script = served_script.script
    script.hang(times=50)
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=50), verify=False) as http:
        client = fota.FotaCallbacksClient(
            access_token="t", m2m_token="m", base_url=served_script.base_url, transport=fota.HttpxTransport(http)
        )
        async with anyio.create_task_group() as tg:
            for _ in range(200):
                tg.start_soon(list_once, client)
            # 50 requests hang on the server, 150 wait for a connection from the pool: cancel them all.
            await wait_until(lambda: served_script.attempts >= 50)
            tg.cancel_scope.cancel()
        assert served_script.attempts == 50

        pool = http._transport._pool  # type: ignore[attr-defined]  # httpx/httpcore internals
        busy = [conn for conn in pool.connections if not (conn.is_idle() or conn.is_closed())]
        assert busy == []

        script.respond(json=LISTING)
        assert await list_once(client) == SUMMARY
        await client.aclose()
        assert not http.is_closed  # a client you pass is yours to close


async def test_cancelled_slow_response_is_not_retried_and_not_delivered_later(scripted: Scripted) -> None:
    """A response that arrives after its call was cancelled is never handed to another call."""
    scripted.script.respond(json={"url": "https://example.com/late"}, delay=0.4)
    scripted.script.respond(json=LISTING)
    async with scripted.client(sleep=RecordingSleep()) as client:
        with anyio.move_on_after(0.1):
            await list_once(client)
        assert await list_once(client) == SUMMARY
    assert scripted.attempts == 2
