"""What happens to a SqliteInbox when its file changes under it: made read-only and writable again, deleted or
replaced while open, not an inbox at all (`create=False`), or written by the earlier layout. Real files, the public
API, asyncio and trio."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import pytest

import fota_callbacks as fota
from fota_callbacks.inbox import InboxNotFoundError, InboxUnavailableError, Readiness, SqliteInbox
from tests.support.inbox import Running, stats_reach, until

pytestmark = pytest.mark.anyio


def message(n: int) -> bytes:
    return json.dumps({"type": "upgradeProgress", "accountName": "0000123456-00001", "n": n}).encode()


class Recorder:
    def __init__(self) -> None:
        self.handled: list[int] = []

    async def __call__(self, message: fota.CallbackMessage) -> None:
        self.handled.append(message.raw["n"])


def remove_files(path: Path) -> None:
    """What an operator's `rm inbox.db*` does."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


@pytest.fixture
def read_only() -> Iterator[Callable[[Path], None]]:
    """Makes a file read-only (even root is refused: the mode says so); writable again at the end."""
    changed: list[Path] = []

    def make(path: Path) -> None:
        os.chmod(path, stat.S_IRUSR | stat.S_IRGRP)
        changed.append(path)

    yield make
    for path in changed:
        if path.exists():
            os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)


async def handled_after_restart(path: Path) -> list[int]:
    """Every message a fresh inbox on `path` (a restarted process) has, handled."""
    recorder = Recorder()
    async with SqliteInbox(path, poll_interval=0.01) as restarted:
        expected = (await restarted.stats()).pending
        async with Running(restarted, recorder):
            await stats_reach(restarted, pending=0)
    assert len(recorder.handled) == expected
    return recorder.handled


# --- read-only, then writable again ---------------------------------------------------------------------------------


async def test_a_file_made_read_only_refuses_puts_and_takes_them_again_once_writable_without_a_restart(
    tmp_path: Path, read_only: Callable[[Path], None]
) -> None:
    path = tmp_path / "inbox.db"
    async with SqliteInbox(path) as inbox:
        assert await inbox.put(message(1)) is True
        read_only(path)
        with pytest.raises(InboxUnavailableError, match=r"inbox\.db cannot take writes: the file is read-only"):
            await inbox.put(message(2))  # the receiver answers 503: ThingSpace retries
        readiness = await inbox.ready()
        assert not readiness.ok
        assert "read-only" in str(readiness.reason)
        assert (await inbox.stats()).pending == 1  # what it holds can still be read
        os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
        assert await inbox.put(message(2)) is True  # the same inbox object: no restart
        assert await inbox.ready() == Readiness(ok=True)
    assert sorted(await handled_after_restart(path)) == [1, 2]


async def test_an_inbox_opened_on_a_read_only_file_writes_once_the_file_is_writable(
    tmp_path: Path, read_only: Callable[[Path], None]
) -> None:
    # The process starts while the file is read-only: its connection is opened read-only, and must not be kept.
    path = tmp_path / "inbox.db"
    async with SqliteInbox(path) as first:
        await first.put(message(1))
    read_only(path)
    recorder = Recorder()
    async with SqliteInbox(path, poll_interval=0.01) as inbox:
        assert (await inbox.stats()).pending == 1
        async with Running(inbox, recorder):
            with pytest.raises(InboxUnavailableError, match="read-only"):
                await inbox.put(message(2))
            assert not (await inbox.ready()).ok
            os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
            assert await inbox.put(message(2)) is True
            await stats_reach(inbox, pending=0, done=2)  # the worker, refused meanwhile, works again too
    assert recorder.handled == [1, 2]


# --- deleted or replaced while open ---------------------------------------------------------------------------------


async def test_files_deleted_while_open_are_noticed_and_nothing_acknowledged_after_vanishes(tmp_path: Path) -> None:
    path = tmp_path / "inbox.db"
    recorder = Recorder()
    async with SqliteInbox(path, poll_interval=0.01) as inbox:
        async with Running(inbox, recorder):
            await inbox.put(message(1))
            await stats_reach(inbox, done=1)
            remove_files(path)
            assert await inbox.put(message(2)) is True
            assert path.exists()  # written at the path, not into the unlinked file
            await until(lambda: recorder.handled == [1, 2])  # the worker re-opened too
            await stats_reach(inbox, pending=0, done=1)
            assert await inbox.ready() == Readiness(ok=True)
        assert await inbox.put(message(3)) is True
    assert await handled_after_restart(path) == [3]  # a restart finds what was acknowledged after the deletion
    async with SqliteInbox(path) as restarted:
        assert (await restarted.stats()).done == 2


async def test_readiness_reports_files_deleted_under_an_inbox_made_not_to_create(tmp_path: Path) -> None:
    # With create=False there is nothing to re-open: the probe says what happened, and creates nothing.
    path = tmp_path / "inbox.db"
    async with SqliteInbox(path) as receiver:
        await receiver.put(message(1))
        async with SqliteInbox(path, create=False) as worker:
            assert await worker.ready() == Readiness(ok=True)
            remove_files(path)
            readiness = await worker.ready()
            assert not readiness.ok
            assert "the file does not exist" in str(readiness.reason)
            with pytest.raises(InboxNotFoundError):
                await worker.stats()
            assert not path.exists()
            assert await receiver.put(message(2)) is True  # the receiver (create=True) makes a new one
            assert await worker.ready() == Readiness(ok=True)  # which the worker then uses
            assert (await worker.stats()).pending == 1


async def test_a_file_deleted_during_a_commit_gets_that_batch_written_again_at_its_path(tmp_path: Path) -> None:
    # Another connection holds the write lock, so the put has checked the file and waits to commit; the files are
    # deleted meanwhile, then the lock is let go: the commit goes into the unlinked file. Only the check after the
    # commit sees it. (Should the put not be waiting yet after the pause, it simply writes the new file: the test
    # then passes without proving the check, never the reverse.)
    path = tmp_path / "inbox.db"
    async with SqliteInbox(path) as inbox:
        await inbox.put(message(1))
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        answers: list[bool] = []

        async def put() -> None:
            answers.append(await inbox.put(message(2)))

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(put)
            await anyio.sleep(0.3)
            remove_files(path)
            holder.rollback()
            holder.close()
        assert answers == [True]
    assert await handled_after_restart(path) == [2]


async def test_a_file_replaced_by_another_inbox_while_open_is_used_from_then_on(tmp_path: Path) -> None:
    path, other = tmp_path / "inbox.db", tmp_path / "restored.db"
    async with SqliteInbox(other) as restored:
        await restored.put(message(10))
    async with SqliteInbox(path) as inbox:
        await inbox.put(message(1))
        remove_files(path)
        other.rename(path)  # a restore: the old files removed, another inbox moved into place
        assert await inbox.put(message(2)) is True
        assert (await inbox.stats()).pending == 2
    assert await handled_after_restart(path) == [10, 2]


async def test_a_file_removed_without_its_wal_is_refused_until_the_wal_is_gone(tmp_path: Path) -> None:
    # The -wal beside a new file at the path belongs to the old one: SQLite would replay it into the new file.
    path = tmp_path / "inbox.db"
    async with SqliteInbox(path) as inbox:
        await inbox.put(message(1))
        path.unlink()
        with pytest.raises(InboxUnavailableError, match="remove the -wal and -shm files"):
            await inbox.put(message(2))
        assert "-wal" in str((await inbox.ready()).reason)
        remove_files(path)
        assert await inbox.put(message(3)) is True
    assert await handled_after_restart(path) == [3]


async def test_a_file_replaced_by_another_programs_database_is_refused_and_left_unchanged(tmp_path: Path) -> None:
    path, foreign = tmp_path / "inbox.db", tmp_path / "app.db"
    make_foreign_database(foreign)
    fingerprint = hashlib.sha256(foreign.read_bytes()).hexdigest()
    async with SqliteInbox(path) as inbox:
        await inbox.put(message(1))
        remove_files(path)
        foreign.rename(path)
        with pytest.raises(InboxUnavailableError, match="another program's database"):
            await inbox.put(message(2))
        assert not (await inbox.ready()).ok
    assert hashlib.sha256(path.read_bytes()).hexdigest() == fingerprint
    assert sorted(os.listdir(tmp_path)) == ["inbox.db"]


# --- create=False: what is not an inbox is not touched ------------------------------------------------------------


def make_foreign_database(path: Path) -> None:
    """Another program's SQLite database, in WAL mode as many are, with a table and a user_version of its own."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE accounts (name TEXT)")
    db.execute("INSERT INTO accounts VALUES ('someone')")
    db.execute("PRAGMA user_version = 7")
    db.commit()
    db.close()


NOT_INBOXES: dict[str, Callable[[Path], object]] = {
    "an empty file": lambda path: path.write_bytes(b""),
    "another program's database": make_foreign_database,
    "a text file": lambda path: path.write_text("pending 3\n"),
}


@pytest.mark.parametrize("kind", NOT_INBOXES)
async def test_an_inbox_made_not_to_create_refuses_what_is_not_an_inbox_and_changes_nothing(
    tmp_path: Path, kind: str
) -> None:
    path = tmp_path / "inbox.db"
    NOT_INBOXES[kind](path)
    before = path.read_bytes()
    inbox = SqliteInbox(path, create=False)
    try:
        steps = (inbox.put(message(1)), inbox.stats(), inbox.dead_letters(), inbox.retry_dead(), inbox.replay(since=0))
        for step in steps:
            with pytest.raises(InboxNotFoundError, match=r"no inbox at .*inbox\.db: the file is "):
                await step
        readiness = await inbox.ready()
        assert not readiness.ok
        assert "no inbox at" in str(readiness.reason)
    finally:
        await inbox.aclose()
    assert path.read_bytes() == before  # no WAL switch, no table, no user_version
    assert sorted(os.listdir(tmp_path)) == ["inbox.db"]  # no -wal, no -shm left beside it


async def test_an_inbox_made_not_to_create_finds_no_file_and_creates_none(tmp_path: Path) -> None:
    async with SqliteInbox(tmp_path / "typo.db", create=False) as inbox:
        with pytest.raises(InboxNotFoundError, match="the file does not exist"):
            await inbox.stats()
    assert os.listdir(tmp_path) == []


async def test_an_inbox_that_may_create_still_refuses_another_programs_database(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    make_foreign_database(path)
    before = path.read_bytes()
    async with SqliteInbox(path) as inbox:
        with pytest.raises(InboxUnavailableError, match="give the inbox a file of its own"):
            await inbox.put(message(1))
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["app.db"]


async def test_a_file_of_a_newer_layout_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "inbox.db"
    async with SqliteInbox(path) as inbox:
        await inbox.put(message(1))
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.commit()
    db.close()
    before = path.read_bytes()
    async with SqliteInbox(path) as inbox:
        with pytest.raises(InboxUnavailableError, match=r"newer fota-callbacks \(layout 99"):
            await inbox.put(message(2))
    assert path.read_bytes() == before


# --- the earlier layout, migrated in place --------------------------------------------------------------------------

LEGACY_SCHEMA = """
CREATE TABLE IF NOT EXISTS fota_inbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    body BLOB NOT NULL,
    received_at REAL NOT NULL,
    due_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    dead INTEGER NOT NULL DEFAULT 0,
    claim TEXT
);
CREATE INDEX IF NOT EXISTS fota_inbox_queue ON fota_inbox (dead, id);
CREATE TABLE IF NOT EXISTS fota_inbox_dedup (key BLOB PRIMARY KEY, expires_at REAL NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS fota_inbox_dedup_expiry ON fota_inbox_dedup (expires_at);
CREATE TABLE IF NOT EXISTS fota_inbox_counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
"""
"""The layout fota-callbacks wrote before the batch worker (user_version 0), as its SqliteInbox created it."""
NOW = 1_800_000_000.0


def make_legacy_inbox(path: Path) -> None:
    """A file as the earlier SqliteInbox left it: entries waiting, retrying, claimed by a worker that was killed,
    dead; handled ones deleted (ids 2 and 6) and counted; the dedup keys of the last 300 s."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(LEGACY_SCHEMA)
    rows = [  # id, body, received_at, due_at, attempts, last_error, dead, claim
        (1, message(1), NOW - 50, NOW - 50, 0, None, 0, None),
        (3, message(3), NOW - 40, NOW + 30, 2, "KeyError: 'device'", 0, None),
        (4, message(4), NOW - 30, NOW + 45, 0, None, 0, "5f0c8d0e9a1b2c3d"),
        (5, message(5), NOW - 20, NOW - 20, 10, "RuntimeError: down", 1, None),
        (6, message(6), NOW - 10, NOW - 10, 0, None, 0, None),
    ]
    db.executemany("INSERT INTO fota_inbox VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    db.execute("DELETE FROM fota_inbox WHERE id = 6")  # handled: the earlier layout deleted done entries
    db.execute("INSERT INTO fota_inbox_counters VALUES ('done', 2)")
    keys = [(hashlib.sha256(message(n)).digest(), NOW + 250) for n in (1, 3, 4, 5)]
    db.executemany("INSERT INTO fota_inbox_dedup VALUES (?, ?)", keys)
    db.close()


async def test_a_file_of_the_earlier_layout_is_migrated_in_place_keeping_pending_and_dead_entries(
    tmp_path: Path,
) -> None:
    path = tmp_path / "inbox.db"
    make_legacy_inbox(path)
    now = NOW

    def clock() -> float:
        return now

    recorder = Recorder()
    async with SqliteInbox(path, clock=clock, poll_interval=0.01) as inbox:
        shown = await inbox.stats()
        assert (shown.pending, shown.dead, shown.done, shown.oldest_pending_age) == (3, 1, 0, 50.0)
        [dead] = await inbox.dead_letters()
        assert (dead.id, dead.body, dead.attempts, dead.last_error) == (5, message(5), 10, "RuntimeError: down")
        assert dead.received_at.timestamp() == NOW - 20
        assert await inbox.put(message(3)) is False  # its dedup keys were kept
        assert await inbox.put(message(7)) is True
        async with Running(inbox, recorder):
            await until(lambda: recorder.handled == [1, 7])  # 3 waits for its retry, 4 for its claim to lapse
            now += 60
            await stats_reach(inbox, pending=0, dead=1, done=4)
    assert recorder.handled == [1, 7, 3, 4]
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA user_version").fetchone() == (1,)
        assert db.execute("SELECT MAX(id) FROM fota_inbox").fetchone() == (7,)  # 6 was used: never again
    finally:
        db.close()


async def test_a_file_of_the_earlier_layout_is_not_migrated_by_an_inbox_made_not_to_create(tmp_path: Path) -> None:
    path = tmp_path / "inbox.db"
    make_legacy_inbox(path)
    before = path.read_bytes()
    async with SqliteInbox(path, create=False) as inbox:
        with pytest.raises(InboxNotFoundError, match="earlier fota-callbacks: a receiver or worker of this version"):
            await inbox.stats()
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["inbox.db"]
