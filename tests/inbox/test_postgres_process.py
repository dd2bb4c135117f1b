"""PostgresInbox against real processes: receivers under uvicorn killed with `kill -9`, PostgreSQL itself killed
and restarted under load, and transactional handlers whose writes must exist exactly once whatever was killed when.

As in test_process.py: every message answered 2xx must be handled after a restart (or by the surviving replica),
and handled twice at most when it was in flight at a kill. The handler (tests/support/inbox_app.py) appends one
line per handling to a file; in transactional mode it also inserts the message's `n` into a table of its own, on
the connection that commits the entry's completion.
"""

from __future__ import annotations

import itertools
import json
import signal
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import asyncpg
import httpx
import pytest

from fota_callbacks.inbox import InboxStats, PostgresInbox
from tests.inbox.test_process import MESSAGES, WORKERS, Sender, handled, kill_mid_work, wait_until
from tests.support.inbox import AppServer, app_servers, postgres_binaries, postgres_server
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.anyio

__all__ = ["app_servers", "postgres_server"]  # fixtures, used below

_tables = itertools.count()

IN_FLIGHT = WORKERS + 16
"""The most handlings a kill can cut short: those running, and those done whose outcome the worker had not
recorded yet (it records outcomes in batches of up to 16, every 50 ms)."""


async def resend_and_check(server: AppServer, record: Path, sender: Sender, dsn: str, table: str) -> InboxStats:
    """The sender retries what was not acknowledged, through `server`; every acknowledged message is handled, and
    no more were handled twice than a kill can cut short. Returns the drained inbox's stats."""
    await acknowledge_all(sender, [server.base_url])
    await wait_until(lambda: set(handled(record)) >= sender.acknowledged)
    stats = await drained(dsn, table)  # a record line is written before its entry is marked done
    server.stop()
    counts = handled(record)
    duplicates = sum(counts.values()) - len(counts)
    assert duplicates <= IN_FLIGHT, f"{duplicates} handled twice, but only {IN_FLIGHT} were in flight"
    return stats


async def acknowledge_all(sender: Sender, base_urls: list[str]) -> None:
    """Send what was not acknowledged until everything is (a sender retrying after 503s and refused connections)."""
    with anyio.fail_after(60):
        while missing := sorted(set(range(MESSAGES)) - sender.acknowledged):
            await sender.send_all(missing, base_urls, concurrency=4)
            await anyio.sleep(0.1)


async def drained(dsn: str, table: str) -> InboxStats:
    async with PostgresInbox(dsn, table=table, create=False) as inbox:
        with anyio.fail_after(60):
            while (stats := await inbox.stats()).pending:  # noqa: ASYNC110 - other processes drain it
                await anyio.sleep(0.05)
    return stats


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def settings(dsn: str, record: Path, **more: str) -> dict[str, str]:
    table = f"proc{next(_tables)}"
    return {"inbox": f"postgres:{dsn}", "table": table, "record": str(record), "delay": "0.01", **more}


async def test_a_killed_receiver_loses_nothing_acknowledged(
    postgres_server: PostgresServer, app_servers: Callable[..., AppServer], tmp_path: Path
) -> None:
    record = tmp_path / "handled.txt"
    options = settings(postgres_server.dsn, record, workers=str(WORKERS))
    sender = Sender()
    first = app_servers(**options).ready()
    await kill_mid_work(first, record, sender, [first.base_url])  # mid-burst and mid-handler
    handled_before_restart = handled(record)

    # Restarted on the same tables: what was in flight at the kill is handled again once its claim lapsed.
    stats = await resend_and_check(
        app_servers(**options).ready(), record, sender, postgres_server.dsn, options["table"]
    )
    assert sum(handled_before_restart.values()) < MESSAGES  # the kill really came mid-work
    assert (stats.pending, stats.dead) == (0, 0)
    assert stats.done >= MESSAGES


async def test_two_receivers_on_one_database_handle_each_message_once_and_survive_a_kill(
    postgres_server: PostgresServer, app_servers: Callable[..., AppServer], tmp_path: Path
) -> None:
    record = tmp_path / "handled.txt"
    options = settings(postgres_server.dsn, record, workers=str(WORKERS))
    doomed, survivor = app_servers(**options), app_servers(**options)
    doomed.ready(), survivor.ready()
    sender = Sender()
    await kill_mid_work(doomed, record, sender, [doomed.base_url, survivor.base_url])
    # What the killed replica had claimed is taken over by the survivor after claim_idle (1 s here).
    stats = await resend_and_check(survivor, record, sender, postgres_server.dsn, options["table"])
    assert (stats.pending, stats.dead) == (0, 0)
    assert stats.done >= MESSAGES


class CountingSender(Sender):
    """A `Sender` that also counts the answers by status, and keeps sending in a loop until told to stop."""

    def __init__(self) -> None:
        super().__init__()
        self.statuses: Counter[int] = Counter()

    async def send(self, numbers: Iterator[int], base_urls: list[str]) -> None:
        async with httpx.AsyncClient(timeout=5) as http:
            for n in numbers:
                body = json.dumps({"type": "upgradeProgress", "accountName": "0000123456-00001", "n": n})
                try:
                    answer = await http.post(f"{base_urls[n % len(base_urls)]}/fota/callbacks", content=body)
                except httpx.TransportError:
                    continue
                self.statuses[answer.status_code] += 1
                if answer.is_success:
                    self.acknowledged.add(n)
                else:
                    await anyio.sleep(0.01)  # a 503 comes at once: do not spin through the numbers


async def test_postgres_restarted_under_load_loses_nothing_acknowledged(
    app_servers: Callable[..., AppServer], tmp_path: Path
) -> None:
    database = PostgresServer(postgres_binaries()).start()
    try:
        record = tmp_path / "handled.txt"
        options = settings(database.dsn, record, workers=str(WORKERS))
        server = app_servers(**options).ready()
        sender = CountingSender()
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(sender.send_all, list(range(MESSAGES)), [server.base_url], 4)
            await wait_until(lambda: sum(handled(record).values()) >= MESSAGES // 6)
            database.stop(signal.SIGKILL)  # a crash: it recovers from its WAL at the start below
            await wait_until(lambda: sender.statuses[503] >= 5)  # the router refuses while the database is down
            database.start()
        assert 0 < len(sender.acknowledged) < MESSAGES
        await acknowledge_all(sender, [server.base_url])  # the sender's retries, answered once it is back
        stats = await resend_and_check(server, record, sender, database.dsn, options["table"])
        assert (stats.pending, stats.dead) == (0, 0)
    finally:
        database.remove()


async def test_transactional_effects_exist_exactly_once_across_kills(
    postgres_server: PostgresServer, app_servers: Callable[..., AppServer], tmp_path: Path
) -> None:
    # Three receivers are killed in turn while they store and handle: four handlers run at once, each for 20 ms
    # between its insert and its commit, so each kill lands before, during and after handlings. A fourth receiver
    # finishes the work. Handlings are repeated (the record file shows them); the handler's rows are not.
    record = tmp_path / "handled.txt"
    options = settings(postgres_server.dsn, record, workers=str(WORKERS), transactional="1", delay="0.02")
    table = options["table"]
    connection = await asyncpg.connect(postgres_server.dsn)
    try:
        await connection.execute(f'CREATE TABLE "{table}_effects" (n int NOT NULL)')  # no unique key: count them
        sender = Sender()
        for kill in range(1, 4):
            server = app_servers(**options).ready()
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(sender.send_all, sorted(set(range(MESSAGES)) - sender.acknowledged), [server.base_url])
                await wait_until(lambda: sum(handled(record).values()) >= kill * MESSAGES // 5)  # noqa: B023
                server.kill()
        last = app_servers(**options).ready()
        await acknowledge_all(sender, [last.base_url])
        await drained(postgres_server.dsn, table)
        last.stop()
        rows = Counter(row[0] for row in await connection.fetch(f'SELECT n FROM "{table}_effects"'))
    finally:
        await connection.close()
    assert set(rows) == set(range(MESSAGES))
    assert [n for n, count in rows.items() if count != 1] == []
    assert sum(handled(record).values()) > MESSAGES  # handlings were cut short and repeated: the test had teeth
