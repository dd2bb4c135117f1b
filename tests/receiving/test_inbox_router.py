"""`callback_router(inbox=...)` and `fota_lifespan(inbox=..., handler=...)`: acknowledge only what is stored."""

from __future__ import annotations

import json
import os
import signal
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI

import fota_callbacks as fota
from fota_callbacks.inbox import Inbox, MemoryInbox, RedisInbox, SqliteInbox
from fota_callbacks.integrations.fastapi import callback_router, fota_lifespan
from tests.support.inbox import (
    MakeInbox,
    RedisServer,
    anyio_backend,
    case,
    make_inbox,
    postgres_server,
    redis_server,
    stats_reach,
)

pytestmark = pytest.mark.anyio

__all__ = ["anyio_backend", "case", "make_inbox", "postgres_server", "redis_server"]  # fixtures, used below


def client_factory() -> fota.FotaCallbacksClient:
    return fota.FotaCallbacksClient(access_token="unused", m2m_token="unused")


def body(n: int, **fields: Any) -> bytes:
    return json.dumps(
        {"type": "upgradeProgress", "username": "listener", "password": "s3cret", "n": n, **fields}
    ).encode()


@asynccontextmanager
async def receiver(
    inbox: Inbox, handler: Any = None, *, max_attempts: int = 10, **router: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """An app that stores into `inbox` (and works it off with `handler`), running with its lifespan."""
    app = FastAPI(
        lifespan=fota_lifespan(client_factory, inbox=inbox, handler=handler, workers=2, max_attempts=max_attempts)
    )
    app.include_router(callback_router(inbox=inbox, **router))
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://receiver")
    async with app.router.lifespan_context(app), http:
        yield http


async def test_the_router_acknowledges_what_it_stored_and_the_lifespan_worker_handles_it(
    make_inbox: MakeInbox,
) -> None:
    handled: list[int] = []

    async def handler(message: fota.CallbackMessage) -> None:
        handled.append(message.raw["n"])

    inbox = make_inbox()
    async with receiver(inbox, handler, username="listener", password="s3cret") as http:
        answers = [await http.post("/fota/callbacks", content=body(n)) for n in range(5)]
        retried = await http.post("/fota/callbacks", content=body(0))  # the sender's retry of an answered message
        refused = [
            await http.post("/fota/callbacks", content=body(9, password="wrong")),
            await http.post("/fota/callbacks", content=b"[1]"),
        ]
        await stats_reach(inbox, pending=0, done=5)

    assert [(a.status_code, a.json()) for a in answers] == [(200, {"status": "ok"})] * 5
    assert retried.status_code == 200
    assert [answer.status_code for answer in refused] == [401, 400]
    assert sorted(handled) == [0, 1, 2, 3, 4]  # once each; nothing refused was stored


async def test_the_lifespan_worker_dead_letters_a_message_after_max_attempts_failures(make_inbox: MakeInbox) -> None:
    attempts: list[int] = []

    async def failing(message: fota.CallbackMessage) -> None:
        attempts.append(message.raw["n"])
        raise RuntimeError("the downstream system is down")

    inbox = make_inbox(retry_base=0.01, retry_max=0.01)
    async with receiver(inbox, failing, max_attempts=2) as http:
        assert (await http.post("/fota/callbacks", content=body(1))).status_code == 200
        await stats_reach(inbox, pending=0, dead=1)
        [dead] = await inbox.dead_letters()
        assert (dead.body, dead.attempts) == (body(1), 2)
        assert dead.last_error == "RuntimeError: the downstream system is down"
    assert attempts == [1, 1]  # buried after the second failure, not retried up to the default 10


async def test_at_shutdown_the_worker_stops_and_what_it_was_handling_is_handled_after_the_restart(
    make_inbox: MakeInbox,
) -> None:
    started = anyio.Event()
    calls: list[int] = []

    async def slow(message: fota.CallbackMessage) -> None:
        calls.append(message.raw["n"])
        started.set()
        await anyio.sleep_forever()

    async def quick(message: fota.CallbackMessage) -> None:
        calls.append(message.raw["n"])

    async with receiver(make_inbox("restart"), slow) as http:
        assert (await http.post("/fota/callbacks", content=body(1))).status_code == 200
        await started.wait()
    # The lifespan ended: the worker was cancelled and awaited, the entry given back.
    restarted = make_inbox("restart")
    if isinstance(restarted, MemoryInbox):
        return  # nothing outlives a MemoryInbox
    async with receiver(restarted, quick):
        await stats_reach(restarted, pending=0, done=1)
    assert calls == [1, 1]


async def test_an_app_whose_lifespan_runs_again_goes_on_with_the_same_inbox(make_inbox: MakeInbox) -> None:
    """A module-level app and inbox, and `with TestClient(app)` in two tests: the first lifespan's shutdown closed
    the inbox, and the second lifespan stores into it and works it off all the same."""
    handled: list[int] = []

    async def handler(message: fota.CallbackMessage) -> None:
        handled.append(message.raw["n"])

    inbox = make_inbox()
    app = FastAPI(lifespan=fota_lifespan(client_factory, inbox=inbox, handler=handler))
    app.include_router(callback_router(inbox=inbox))
    for n in (1, 2):
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://receiver")
        async with app.router.lifespan_context(app), http:
            assert (await http.post("/fota/callbacks", content=body(n))).status_code == 200
            await stats_reach(inbox, pending=0, done=n)
    assert handled == [1, 2]


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_a_read_only_sqlite_file_gives_503_and_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "inbox.db"
    async with receiver(SqliteInbox(path)) as http:
        assert (await http.post("/fota/callbacks", content=body(1))).status_code == 200
    os.chmod(path, stat.S_IRUSR)
    try:
        async with receiver(SqliteInbox(path)) as http:
            refused = await http.post("/fota/callbacks", content=body(2))
    finally:
        os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    assert refused.status_code == 503
    assert refused.json() == {"error": "unavailable", "detail": "the callback could not be stored; retry later"}

    handled: list[int] = []

    async def handler(message: fota.CallbackMessage) -> None:
        handled.append(message.raw["n"])

    inbox = SqliteInbox(path, poll_interval=0.01)
    async with receiver(inbox, handler) as http:
        assert (await http.post("/fota/callbacks", content=body(2))).status_code == 200  # the sender's retry
        await stats_reach(inbox, pending=0, done=2)
    assert sorted(handled) == [1, 2]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_redis_that_went_away_gives_503_and_loses_nothing_acknowledged(tmp_path: Path) -> None:
    server = RedisServer(tmp_path).start()
    try:
        inbox = RedisInbox(server.url, stream="outage", socket_timeout=2, poll_interval=0.01)
        async with receiver(inbox) as http:
            answers = [(await http.post("/fota/callbacks", content=body(n))).status_code for n in range(5)]
            server.stop(signal.SIGKILL)  # appendfsync always: what was acknowledged is on disk
            refused = await http.post("/fota/callbacks", content=body(5))
            server.start()  # same port, same directory
            answers.append((await http.post("/fota/callbacks", content=body(5))).status_code)
        assert answers == [200] * 6
        assert refused.status_code == 503

        handled: list[int] = []

        async def handler(message: fota.CallbackMessage) -> None:
            handled.append(message.raw["n"])

        worker = RedisInbox(server.url, stream="outage", poll_interval=0.01)
        async with receiver(worker, handler):
            await stats_reach(worker, pending=0, done=6)
        assert sorted(handled) == [0, 1, 2, 3, 4, 5]
    finally:
        server.stop()


def test_router_and_lifespan_refuse_unclear_configurations() -> None:
    async def handler(message: fota.CallbackMessage) -> None:
        pass

    inbox = MemoryInbox()
    routers: list[tuple[tuple[Any, ...], dict[str, Any], str]] = [
        ((), {}, "handler"),
        ((handler,), {"inbox": inbox}, "handler"),
        ((), {"inbox": inbox, "background": True}, "background"),
        ((), {"inbox": object()}, "inbox"),
    ]
    for arguments, options, parameter in routers:
        with pytest.raises(fota.InvalidArgumentError) as caught:
            callback_router(*arguments, **options)
        assert caught.value.parameter == parameter
    lifespans: list[tuple[dict[str, Any], str]] = [
        ({"handler": handler}, "handler"),
        ({"inbox": inbox, "handler": handler, "workers": 0}, "workers"),
        ({"inbox": inbox, "handler": handler, "max_attempts": 0}, "max_attempts"),
        ({"inbox": inbox, "handler": handler, "max_attempts": True}, "max_attempts"),
    ]
    for options, parameter in lifespans:
        with pytest.raises(fota.InvalidArgumentError) as caught:
            fota_lifespan(**options)
        assert caught.value.parameter == parameter
