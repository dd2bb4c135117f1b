"""What only PostgresInbox does: tables made once by replicas starting together, LISTEN/NOTIFY wake-ups, handlers
whose writes commit with the entry's completion, a server that goes away, and no password anywhere.

The contract suite (test_contract.py) runs on PostgreSQL too; these are the store's own promises. Each test uses
tables of its own in the session's server (tests/support/inbox.py's `postgres_server`).
"""

from __future__ import annotations

import itertools
import json
import logging
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.lowlevel
import asyncpg
import pytest

import fota_callbacks as fota
from fota_callbacks.inbox import InboxNotFoundError, InboxStats, InboxUnavailableError, PostgresInbox
from tests.support.inbox import Clock, Running, postgres_binaries, postgres_server, stats_reach, until
from tests.support.postgres import PostgresServer
from tests.support.sentinels import SENTINEL_PASSWORD

pytestmark = pytest.mark.anyio

__all__ = ["postgres_server"]  # a fixture, used below

_tables = itertools.count()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # asyncpg's asyncio client; trio's refusal has a test of its own


@pytest.fixture
def table() -> str:
    return f"pg{next(_tables)}"


def message(n: int, **fields: Any) -> bytes:
    return json.dumps({"type": "upgradeProgress", "accountName": "0000123456-00001", "n": n, **fields}).encode()


@pytest.fixture
async def database(postgres_server: PostgresServer) -> AsyncIterator[asyncpg.Connection[Any]]:
    """A plain connection to the test database, to look at what the inbox stored as an operator would."""
    connection = await asyncpg.connect(postgres_server.dsn)
    yield connection
    await connection.close()


async def test_replicas_starting_together_create_the_tables_once(postgres_server: PostgresServer, table: str) -> None:
    # CREATE TABLE IF NOT EXISTS from several sessions at once fails with a duplicate key in the catalog.
    inboxes = [PostgresInbox(postgres_server.dsn, table=table) for _ in range(8)]
    answers: list[bool] = []
    try:
        async with anyio.create_task_group() as tasks:
            for n, inbox in enumerate(inboxes):
                tasks.start_soon(_put_into, inbox, n, answers)
    finally:
        for inbox in inboxes:
            await inbox.aclose()
    assert answers == [True] * 8
    async with PostgresInbox(postgres_server.dsn, table=table, create=False) as existing:
        assert (await existing.stats()).pending == 8


async def _put_into(inbox: PostgresInbox, n: int, answers: list[bool]) -> None:
    answers.append(await inbox.put(message(n)))


async def test_puts_arriving_together_share_a_commit_and_each_get_their_own_answer(
    postgres_server: PostgresServer, table: str
) -> None:
    answers: dict[int, bool] = {}
    async with PostgresInbox(postgres_server.dsn, table=table) as inbox:

        async def put(n: int) -> None:
            answers[n] = await inbox.put(message(n % 150))

        async with anyio.create_task_group() as tasks:
            for n in range(300):
                tasks.start_soon(put, n)
        assert all(answers[n] != answers[n + 150] for n in range(150))  # exactly one of each pair was stored
        assert (await inbox.stats()).pending == 150
        handled: list[int] = []

        async def handler(message: fota.CallbackMessage) -> None:
            handled.append(message.raw["n"])

        async with Running(inbox, handler):
            await stats_reach(inbox, pending=0, done=150)
    assert sorted(handled) == list(range(150))
    async with PostgresInbox(postgres_server.dsn, table=f"{table}_all", dedup_window=0) as inbox:
        async with anyio.create_task_group() as tasks:
            for n in range(100):
                tasks.start_soon(put, n % 10)
        assert (await inbox.stats()).pending == 100


async def test_an_inbox_made_not_to_create_says_that_migrate_creates_the_tables(
    postgres_server: PostgresServer, database: asyncpg.Connection[Any], table: str
) -> None:
    async with PostgresInbox(postgres_server.dsn, table=table, create=False) as absent:
        with pytest.raises(InboxNotFoundError) as caught:
            await absent.put(message(1))
        assert f"fota-callbacks inbox migrate --postgres DSN --table {table}" in str(caught.value)
        readiness = await absent.ready()
        assert not readiness.ok
        assert "inbox migrate" in str(readiness.reason)
    assert await database.fetchval("SELECT to_regclass($1)", table) is None  # nothing was created

    async with PostgresInbox(postgres_server.dsn, table=table, create=False) as existing:
        assert await existing.migrate() is True  # what `inbox migrate` does
        assert await existing.migrate() is False
    await database.execute(PostgresInbox.schema(table))  # what `inbox migrate --print` shows, applied by hand
    async with PostgresInbox(postgres_server.dsn, table=table, create=False) as existing:
        assert await existing.put(message(1)) is True
        assert (await existing.stats()).pending == 1


async def test_tables_dropped_under_a_running_inbox_are_made_again(
    postgres_server: PostgresServer, database: asyncpg.Connection[Any], table: str
) -> None:
    async with PostgresInbox(postgres_server.dsn, table=table) as inbox:
        await inbox.put(message(1))
        await database.execute(f'DROP TABLE "{table}", "{table}_dedup"')
        assert await inbox.put(message(2)) is True
        assert (await inbox.stats()).pending == 1


async def test_a_worker_elsewhere_wakes_on_notify_not_on_its_poll(postgres_server: PostgresServer, table: str) -> None:
    # The worker polls once an hour: only LISTEN/NOTIFY can tell it that another process stored a message.
    handled: list[int] = []

    async def handler(message: fota.CallbackMessage) -> None:
        handled.append(message.raw["n"])

    async with (
        PostgresInbox(postgres_server.dsn, table=table, poll_interval=3600) as worker,
        PostgresInbox(postgres_server.dsn, table=table) as receiver,
    ):
        await worker.stats()  # tables made before the worker's first look
        async with Running(worker, handler):
            await anyio.sleep(0.2)  # the worker has looked once, found nothing, and waits
            for n in range(3):
                await receiver.put(message(n))
                await until(lambda: len(handled) == n + 1, within=20)  # noqa: B023 - read at once, in the loop
    assert handled == [0, 1, 2]


# --- transactional handlers ---------------------------------------------------------------------------------------


async def _effects(database: asyncpg.Connection[Any], table: str) -> list[int]:
    return [row[0] for row in await database.fetch(f'SELECT n FROM "{table}_effects" ORDER BY n')]


async def test_a_transactional_handler_commits_its_writes_with_the_entry_and_rolls_back_a_failure(
    postgres_server: PostgresServer, database: asyncpg.Connection[Any], table: str
) -> None:
    await database.execute(f'CREATE TABLE "{table}_effects" (n int NOT NULL)')
    failing = {2}

    async def handler(message: fota.CallbackMessage, connection: asyncpg.Connection[Any]) -> None:
        n = message.raw["n"]
        await connection.execute(f'INSERT INTO "{table}_effects" (n) VALUES ($1)', n)
        if n in failing:
            failing.discard(n)
            raise RuntimeError(f"cannot handle {n} yet")

    async with PostgresInbox(postgres_server.dsn, table=table, retry_base=0.05, retry_max=0.05) as inbox:
        for n in range(1, 4):
            await inbox.put(message(n))
        async with Running(inbox, handler, transactional=True):
            await stats_reach(inbox, pending=0, done=3)
        assert (await inbox.dead_letters()) == []
    assert await _effects(database, table) == [1, 2, 3]  # the failed attempt's insert was rolled back


async def test_a_transactional_handling_whose_claim_was_taken_over_is_rolled_back(
    postgres_server: PostgresServer, database: asyncpg.Connection[Any], table: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The first handling stalls past claim_idle (on the inbox's clock, before a renewal is due), so the entry is
    # claimed again and handled a second time: only one of the two handlings may commit its writes.
    await database.execute(f'CREATE TABLE "{table}_effects" (n int NOT NULL, attempt int NOT NULL)')
    clock = Clock()
    started, second_done = anyio.Event(), anyio.Event()
    calls = 0

    async def handler(message: fota.CallbackMessage, connection: asyncpg.Connection[Any]) -> None:
        nonlocal calls
        calls += 1
        attempt = calls
        await connection.execute(
            f'INSERT INTO "{table}_effects" (n, attempt) VALUES ($1, $2)', message.raw["n"], attempt
        )
        if attempt == 1:
            started.set()
            await second_done.wait()

    async with PostgresInbox(postgres_server.dsn, table=table, claim_idle=60, poll_interval=0.02, clock=clock) as inbox:
        await inbox.put(message(7))
        async with Running(inbox, handler, concurrency=2, transactional=True):
            await started.wait()
            clock.advance(61)  # the first handling's claim has lapsed: the entry is claimed and handled again
            await stats_reach(inbox, pending=0, done=1)
            with caplog.at_level(logging.WARNING, "fota_callbacks.inbox"):
                second_done.set()  # the first handling now tries to commit, finds its claim gone, rolls back
                await until(lambda: "another worker took it over" in caplog.text)
        assert await inbox.stats() == InboxStats(pending=0, dead=0, done=1, in_flight=0, oldest_pending_age=0.0)
    rows = await database.fetch(f'SELECT n, attempt FROM "{table}_effects"')
    assert [tuple(row) for row in rows] == [(7, 2)]


async def test_transactional_needs_a_boolean(postgres_server: PostgresServer, table: str) -> None:
    async with PostgresInbox(postgres_server.dsn, table=table) as inbox:
        with pytest.raises(fota.InvalidArgumentError) as caught:
            await inbox.run(lambda message, connection: anyio.lowlevel.checkpoint(), transactional="yes")  # type: ignore[arg-type]
        assert caught.value.parameter == "transactional"


# --- a server that goes away; what is never shown ----------------------------------------------------------------


async def test_a_server_that_went_away_refuses_puts_and_keeps_what_it_acknowledged(table: str) -> None:
    server = PostgresServer(postgres_binaries()).start()
    try:
        dsn = server.dsn.replace("postgres@", f"postgres:{SENTINEL_PASSWORD}@")  # trust auth ignores it
        async with PostgresInbox(dsn, table=table, timeout=2) as inbox:
            assert [await inbox.put(message(n)) for n in range(5)] == [True] * 5
            assert (await inbox.ready()).ok
            server.stop(signal.SIGKILL)
            with pytest.raises(InboxUnavailableError) as caught:
                await inbox.put(message(5))
            text = str(caught.value)
            assert text.startswith(f"the Postgres inbox '{table}' at 127.0.0.1:{server.port}/postgres failed: ")
            readiness = await inbox.ready()
            assert not readiness.ok
            assert SENTINEL_PASSWORD not in text + str(readiness.reason) + repr(inbox)
            server.start()  # same port, same data directory: it recovers from its WAL
            assert await inbox.put(message(5)) is True
            assert await inbox.put(message(0)) is False  # the dedup keys survived too
            assert (await inbox.stats()).pending == 6
            assert (await inbox.ready()).ok
    finally:
        server.remove()


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_postgres_inbox_on_trio_says_it_needs_asyncio(postgres_server: PostgresServer, table: str) -> None:
    inbox = PostgresInbox(postgres_server.dsn, table=table)
    with pytest.raises(RuntimeError, match="PostgresInbox runs on asyncio only"):
        await inbox.put(message(1))
    with pytest.raises(RuntimeError, match="asyncio only"):
        await inbox.run(lambda message: anyio.sleep(1))


def test_bad_arguments_are_refused_without_echoing_the_dsn() -> None:
    secret_dsn = f"mysql://user:{SENTINEL_PASSWORD}@db/inbox"
    refused: list[tuple[dict[str, Any], str]] = [
        ({"dsn": secret_dsn}, "dsn"),
        ({"dsn": 5}, "dsn"),
        ({"dsn": f"postgresql://user:{SENTINEL_PASSWORD}@db:port/inbox"}, "dsn"),
        ({"table": "fota-inbox"}, "table"),
        ({"table": "x" * 41}, "table"),
        ({"table": 'a"; DROP TABLE users; --'}, "table"),
        ({"pool_size": 0}, "pool_size"),
        ({"timeout": 0}, "timeout"),
        ({"dedup_window": -1}, "dedup_window"),
    ]
    for options, parameter in refused:
        arguments = {"dsn": "postgresql://127.0.0.1/inbox", **options}
        with pytest.raises(fota.InvalidArgumentError) as caught:
            PostgresInbox(**arguments)
        assert caught.value.parameter == parameter
        assert SENTINEL_PASSWORD not in str(caught.value)
    inbox = PostgresInbox(f"postgresql://fota:{SENTINEL_PASSWORD}@db.example:6543/events", table="events_inbox")
    assert repr(inbox) == "PostgresInbox(table='events_inbox', at='db.example:6543/events')"


def test_without_the_extra_the_inbox_says_which_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "asyncpg", None)  # as if asyncpg were not installed
    with pytest.raises(ImportError, match=r"pip install 'fota-callbacks\[postgres\]'"):
        PostgresInbox("postgresql://127.0.0.1/app")


def test_importing_the_inbox_package_does_not_import_asyncpg() -> None:
    code = "import sys, fota_callbacks.inbox; print('asyncpg' in sys.modules)"
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == "False"
