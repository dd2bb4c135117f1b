"""InMemoryTransport's timeout, whatever the handler does before and after it first suspends.

The timer (asyncio) or cancel scope (trio: one per wait, entered while the handler is suspended) is set up only
once the handler suspends; these pin down that a timeout still cuts a
slow handler, that the handler's own cancel scopes (entered before or after it suspends) keep working, that
the caller's cancellation stays the caller's, and that any awaitable works as a handler; on asyncio and trio.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Generator
from typing import Any

import anyio
import anyio.lowlevel
import pytest

import fota_callbacks as fota

pytestmark = pytest.mark.anyio

ACCOUNT = "0000123456-00001"
BODY = json.dumps({"url": "https://listener.example.com/fota"}).encode()
Handler = Callable[[fota.Request], Awaitable[fota.Response]]


def ok() -> fota.Response:
    return fota.Response(200, {"content-type": "application/json"}, BODY)


def client(handler: Handler, timeout: float | None = 0.2) -> fota.FotaCallbacksClient:
    return fota.FotaCallbacksClient(
        access_token="t", m2m_token="m", transport=fota.InMemoryTransport(handler), timeout=timeout, max_retries=0
    )


async def answers_at_once(request: fota.Request) -> fota.Response:
    return ok()


async def sleeps(request: fota.Request) -> fota.Response:
    await anyio.sleep(30)
    return ok()


async def sleeps_in_its_own_scope(request: fota.Request) -> fota.Response:
    with anyio.CancelScope():  # entered before the handler first suspends
        await anyio.sleep(30)
    return ok()


async def uses_scopes_and_answers(request: fota.Request) -> fota.Response:
    with anyio.fail_after(5):  # entered before the first suspension, left after it
        await anyio.sleep(0.01)
    await anyio.lowlevel.checkpoint()
    with anyio.move_on_after(5):  # entered after suspending
        await anyio.sleep(0.01)
    return ok()


async def times_out_itself(request: fota.Request) -> fota.Response:
    with anyio.move_on_after(0.01):
        await anyio.sleep(30)
    return ok()


class NotACoroutine:
    """An awaitable that is not a coroutine object, suspending once."""

    def __await__(self) -> Generator[Any, None, fota.Response]:
        yield from anyio.sleep(0.01).__await__()
        return ok()


@pytest.mark.parametrize(
    "handler", [answers_at_once, uses_scopes_and_answers, times_out_itself, lambda request: NotACoroutine()]
)
async def test_handlers_that_answer_in_time_are_answered(handler: Handler) -> None:
    async with client(handler) as fota_client:
        summary = await fota_client.v2.list_registered_callbacks(ACCOUNT)
    assert summary.url == "https://listener.example.com/fota"


@pytest.mark.parametrize("handler", [sleeps, sleeps_in_its_own_scope])
async def test_a_handler_slower_than_the_timeout_times_out(handler: Handler) -> None:
    async with client(handler, timeout=0.05) as fota_client:
        with anyio.fail_after(10), pytest.raises(fota.ApiTimeoutError) as info:
            await fota_client.v2.list_registered_callbacks(ACCOUNT)
    assert info.value.request is not None
    assert info.value.request.url.endswith(ACCOUNT)


async def test_the_callers_cancellation_is_not_a_timeout() -> None:
    async with client(sleeps, timeout=30) as fota_client:
        with anyio.move_on_after(0.05) as scope:
            await fota_client.v2.list_registered_callbacks(ACCOUNT)
        # The call was cancelled by the caller's scope, which absorbed it: no ApiTimeoutError escaped.
        assert scope.cancelled_caught


async def test_a_timeout_inside_the_callers_scope_stays_a_timeout_and_the_scope_goes_on() -> None:
    async with client(sleeps, timeout=0.05) as fota_client:
        with anyio.CancelScope() as scope:
            with pytest.raises(fota.ApiTimeoutError):
                await fota_client.v2.list_registered_callbacks(ACCOUNT)
            await anyio.sleep(0.01)  # the scope is not cancelled: waiting still works
        assert not scope.cancelled_caught


async def cleans_up_with_awaits(request: fota.Request) -> fota.Response:
    try:
        await anyio.sleep(30)
    finally:
        # Cleanup that waits after the timeout, in a scope of its own (on trio that wait is cancelled at once, as
        # under one scope held throughout; asyncio's timer cancels once, and the short wait ends).
        with anyio.CancelScope():
            await anyio.sleep(0.01)
    return ok()


async def swallows_the_timeout_and_answers(request: fota.Request) -> fota.Response:
    try:
        await anyio.sleep(30)
    except anyio.get_cancelled_exc_class():
        return ok()  # a handler may catch its cancellation: what it answers is the answer
    raise AssertionError("not cancelled")


async def suspends_many_times_then_sleeps(request: fota.Request) -> fota.Response:
    for _ in range(20):
        async with anyio.create_task_group() as group:  # a scope and a nursery per wait, entered and left in order
            group.start_soon(anyio.lowlevel.checkpoint)
            await anyio.lowlevel.checkpoint()
    await anyio.sleep(30)
    return ok()


@pytest.mark.parametrize("handler", [cleans_up_with_awaits, suspends_many_times_then_sleeps])
async def test_a_handler_that_waits_again_or_often_still_times_out(handler: Handler) -> None:
    async with client(handler, timeout=0.05) as fota_client:
        with anyio.fail_after(10), pytest.raises(fota.ApiTimeoutError):
            await fota_client.v2.list_registered_callbacks(ACCOUNT)


async def test_a_handler_that_catches_its_cancellation_answers() -> None:
    async with client(swallows_the_timeout_and_answers, timeout=0.05) as fota_client:
        with anyio.fail_after(10):
            summary = await fota_client.v2.list_registered_callbacks(ACCOUNT)
    assert summary.url == "https://listener.example.com/fota"


async def test_an_in_memory_transport_inside_another_times_out_once() -> None:
    inner = fota.InMemoryTransport(sleeps)

    async def forwards(request: fota.Request) -> fota.Response:
        return await inner.send(request)

    async with client(forwards, timeout=0.05) as fota_client:
        with anyio.fail_after(10), pytest.raises(fota.ApiTimeoutError):
            await fota_client.v2.list_registered_callbacks(ACCOUNT)
        # And the client goes on working: no cancel scope was left behind in this task.
        await anyio.sleep(0.01)
