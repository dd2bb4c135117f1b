"""What only one store does: SQLite's shared commits and read-only files, Redis going away and refusing trio."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import stat
from pathlib import Path

import anyio
import pytest

from fota_callbacks.inbox import InboxUnavailableError, RedisInbox, SqliteInbox
from tests.support.inbox import RedisServer, redis_server, stats_reach

pytestmark = pytest.mark.anyio

__all__ = ["redis_server"]  # a fixture, used below


def message(n: int) -> bytes:
    return json.dumps({"type": "upgradeProgress", "n": n}).encode()


# --- SQLite ---------------------------------------------------------------------------------------------------------


async def test_a_new_sqlite_file_used_at_once_by_a_put_and_the_worker_is_never_locked(tmp_path: Path) -> None:
    # A new inbox's two connections open together (the router's put, the worker's reads): switching the new file
    # to WAL used to answer "database is locked" to one of them about once in 30 files (a 503 for the sender).
    for n in range(100):
        async with SqliteInbox(tmp_path / f"inbox-{n}.db") as inbox, anyio.create_task_group() as tasks:
            tasks.start_soon(inbox.put, message(n))
            tasks.start_soon(inbox.stats)
        async with SqliteInbox(tmp_path / f"inbox-{n}.db") as inbox:
            assert (await inbox.stats()).pending == 1


async def test_a_sqlite_file_another_connection_keeps_locked_does_not_hold_up_an_inbox_on_another_file(
    tmp_path: Path,
) -> None:
    # The first inbox waits (up to its 30 s busy timeout) to switch a file another connection holds exclusively.
    # Nothing outside shows when it has started waiting, so the test gives it a moment first: should it not have
    # started yet, the second inbox simply goes first and the test passes without proving anything, never the
    # reverse.
    held = sqlite3.connect(tmp_path / "held.db", isolation_level=None)
    held.execute("BEGIN EXCLUSIVE")
    first_done = anyio.Event()
    async with SqliteInbox(tmp_path / "held.db") as first, SqliteInbox(tmp_path / "free.db") as second:

        async def put_first() -> None:
            await first.put(message(1))
            first_done.set()

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(put_first)
            await anyio.sleep(0.3)
            with anyio.fail_after(20):
                assert await second.put(message(2)) is True
            assert not first_done.is_set()  # still waiting for its file, while the other file was written
            held.rollback()
            held.close()
        assert (await first.stats()).pending == 1
        assert (await second.stats()).pending == 1


async def test_sqlite_puts_arriving_together_each_get_their_own_answer(tmp_path: Path) -> None:
    # Concurrent puts share one transaction; duplicates among them must still be told apart.
    answers: dict[int, bool] = {}
    async with SqliteInbox(tmp_path / "inbox.db") as inbox:

        async def put(n: int) -> None:
            answers[n] = await inbox.put(message(n % 150))

        async with anyio.create_task_group() as tasks:
            for n in range(300):
                tasks.start_soon(put, n)
    assert all(answers[n] != answers[n + 150] for n in range(150))  # exactly one of each pair was stored
    async with SqliteInbox(tmp_path / "inbox.db") as reopened:
        assert (await reopened.stats()).pending == 150


async def test_sqlite_a_read_only_file_refuses_puts_and_keeps_what_it_has(tmp_path: Path) -> None:
    path = tmp_path / "inbox.db"
    async with SqliteInbox(path) as inbox:
        await inbox.put(message(1))
    os.chmod(path, stat.S_IRUSR | stat.S_IRGRP)  # even root, who could write it, is refused: the file says so
    try:
        async with SqliteInbox(path) as read_only:
            with pytest.raises(InboxUnavailableError, match=r"inbox\.db cannot take writes: the file is read-only"):
                await read_only.put(message(2))
            assert (await read_only.stats()).pending == 1
    finally:
        os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    async with SqliteInbox(path) as writable:
        assert await writable.put(message(2)) is True
        assert (await writable.stats()).pending == 2


# --- Redis ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_redis_inbox_on_trio_says_it_needs_asyncio(redis_server: RedisServer) -> None:
    inbox = RedisInbox(redis_server.url, stream="trio-refused")
    with pytest.raises(RuntimeError, match="RedisInbox runs on asyncio only"):
        await inbox.put(message(1))
    with pytest.raises(RuntimeError, match="asyncio only"):
        await inbox.run(lambda message: anyio.sleep(1))


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_redis_that_went_away_refuses_puts_and_keeps_what_it_acknowledged(tmp_path: Path) -> None:
    server = RedisServer(tmp_path).start()
    try:
        async with RedisInbox(server.url, stream="outage", socket_timeout=2) as inbox:
            assert [await inbox.put(message(n)) for n in range(5)] == [True] * 5
            server.stop(signal.SIGKILL)  # appendfsync always: what was acknowledged is on disk
            with pytest.raises(InboxUnavailableError, match="the Redis inbox 'outage' failed: ConnectionError"):
                await inbox.put(message(5))
            server.start()  # same port, same directory
            assert await inbox.put(message(5)) is True
            assert await inbox.put(message(0)) is False  # the dedup keys survived too
            assert (await inbox.stats()).pending == 6
    finally:
        server.stop()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_redis_a_closed_worker_leaves_the_consumer_group(redis_server: RedisServer) -> None:
    import redis.asyncio

    observer = redis.asyncio.Redis.from_url(redis_server.url)
    try:
        async with RedisInbox(redis_server.url, stream="leaving", poll_interval=0.01) as inbox:
            await inbox.put(message(1))
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(inbox.run, lambda message: anyio.sleep(0.01))
                await stats_reach(inbox, done=1)
                tasks.cancel_scope.cancel()
            [consumer] = await observer.xinfo_consumers("leaving", "fota-callbacks")
            assert consumer["name"].decode() == inbox.consumer
        assert await observer.xinfo_consumers("leaving", "fota-callbacks") == []
    finally:
        await observer.aclose()


def test_redis_inbox_refuses_bad_arguments(redis_server: RedisServer) -> None:
    with pytest.raises(ValueError, match="stream"):
        RedisInbox(redis_server.url, stream="")
    with pytest.raises(ValueError, match="url"):
        RedisInbox("http://not-redis")
