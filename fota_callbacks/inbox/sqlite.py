"""`SqliteInbox`: the embedded inbox, one SQLite file (standard library `sqlite3`, WAL), nothing to install or run.

Every call runs in a worker thread (`anyio.to_thread`), never on the event loop. Puts arriving together are
written in one transaction and one fsync (group commit), and none of them returns before that commit. Several
processes may share the file: a worker claims an entry until `claim_idle` seconds from now and renews the claim
while its handler runs, so the entries of a killed process become due again once their claim lapses.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import stat
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import attrs

from ._base import BaseInbox, Claim, InboxEntry, InboxOptions, InboxStats, InboxUnavailableError, utc

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["SqliteInbox"]

_T = TypeVar("_T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS fota_inbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    body BLOB NOT NULL,
    received_at REAL NOT NULL,
    due_at REAL NOT NULL,          -- when a worker may take it: arrival, next retry, or end of a claim
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    dead INTEGER NOT NULL DEFAULT 0,
    claim TEXT                     -- the token of the worker holding it, until due_at
);
CREATE INDEX IF NOT EXISTS fota_inbox_queue ON fota_inbox (dead, id);
CREATE TABLE IF NOT EXISTS fota_inbox_dedup (key BLOB PRIMARY KEY, expires_at REAL NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS fota_inbox_dedup_expiry ON fota_inbox_dedup (expires_at);
CREATE TABLE IF NOT EXISTS fota_inbox_counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
"""


@attrs.define
class _Put:
    body: bytes
    key: bytes
    now: float
    stored: bool | None = None
    error: BaseException | None = None


_BUSY_TIMEOUT = 30.0  # seconds a statement waits for another connection's lock
# Switching a new file to WAL needs it to itself, and SQLite reports "database is locked" at once (no busy wait)
# when another connection opens it at the same moment: the two connections of one inbox, or two processes. The
# connections of this process to one file take turns (a lock per file: other files need not wait); other processes
# are waited out by retrying.
_INITIALISING: dict[str, threading.Lock] = {}
_INITIALISING_GUARD = threading.Lock()


def _initialising(path: Path) -> threading.Lock:
    key = os.path.realpath(path)  # the same file by any name (relative, through a symlink) is one lock
    with _INITIALISING_GUARD:
        return _INITIALISING.setdefault(key, threading.Lock())


def _initialise(db: sqlite3.Connection, path: Path) -> None:
    deadline = time.monotonic() + _BUSY_TIMEOUT
    with _initialising(path):
        while True:
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(_SCHEMA)
                return
            except sqlite3.OperationalError as exc:  # noqa: PERF203 - once per connection; another is initialising
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.01)


class _Connection:
    """One sqlite3 connection, used by one thread at a time."""

    def __init__(self, path: Path, *, synchronous: str) -> None:
        self.path, self.synchronous = path, synchronous
        self.lock = threading.Lock()
        self.db: sqlite3.Connection | None = None
        self.closed = False

    def open(self) -> sqlite3.Connection:
        if self.closed:
            raise InboxUnavailableError(f"the SQLite inbox {self.path} is closed")
        if self.db is None:
            try:
                mode = self.path.stat().st_mode
            except FileNotFoundError:
                mode = stat.S_IWUSR
            # A file without any write permission is opened read-only, even by root: the operator said so.
            writable = bool(mode & 0o222)
            target = f"file:{urllib.request.pathname2url(str(self.path))}?mode={'rwc' if writable else 'ro'}"
            db = sqlite3.connect(target, uri=True, timeout=_BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
            try:
                if writable:
                    _initialise(db, self.path)
                db.execute(f"PRAGMA synchronous={self.synchronous}")
            except BaseException:
                db.close()
                raise
            self.db = db
        return self.db

    def close(self) -> None:
        with self.lock:
            self.closed = True
            if self.db is not None:
                self.db.close()
                self.db = None


class SqliteInbox(BaseInbox):
    """A durable inbox in the SQLite file at `path` (created if missing): survives restarts and `kill -9`.

    A body is committed (fsync, `synchronous=FULL`) before `put` returns; claims and outcomes are committed
    with `synchronous=NORMAL`, which survives a killed process, and a power cut at worst has an entry handled
    again. A file without write permission makes `put` raise `InboxUnavailableError`.
    Options: see `fota_callbacks.inbox`.
    """

    def __init__(self, path: str | os.PathLike[str], **options: Unpack[InboxOptions]) -> None:
        super().__init__(**options)
        self.path = Path(os.fspath(path)).absolute()
        # Puts on their own connection: they need a full fsync, and must not queue behind the workers.
        self._writer = _Connection(self.path, synchronous="FULL")
        self._reader = _Connection(self.path, synchronous="NORMAL")
        self._queued: list[_Put] = []
        self._flushing = anyio.Lock()
        self._next_purge = 0.0

    def __repr__(self) -> str:
        return f"SqliteInbox({str(self.path)!r})"

    async def _call(self, connection: _Connection, step: Callable[[sqlite3.Connection], _T]) -> _T:
        def locked() -> _T:
            with connection.lock:
                db = connection.open()
                try:
                    return step(db)
                except BaseException:
                    if db.in_transaction:
                        db.rollback()
                    raise

        try:
            return await anyio.to_thread.run_sync(locked)
        except sqlite3.Error as exc:
            raise InboxUnavailableError(f"the SQLite inbox {self.path} failed: {exc}") from exc

    # --- storing ------------------------------------------------------------------------------------------------------

    async def _store(self, body: bytes, key: bytes, now: float) -> bool:
        put = _Put(body, key, now)
        self._queued.append(put)
        async with self._flushing:
            if put.stored is None and put.error is None:
                # Whoever gets the lock writes every put queued so far: one transaction, one fsync.
                batch, self._queued = self._queued, []
                try:
                    await self._call(self._writer, lambda db: self._insert(db, batch))
                except Exception as exc:
                    for queued in batch:
                        queued.error = exc
        if put.error is not None:
            raise put.error
        assert put.stored is not None
        return put.stored

    def _insert(self, db: sqlite3.Connection, batch: list[_Put]) -> None:
        db.execute("BEGIN IMMEDIATE")
        outcomes = [self._insert_one(db, put) for put in batch]
        if batch and batch[-1].now >= self._next_purge:
            db.execute("DELETE FROM fota_inbox_dedup WHERE expires_at <= ?", (batch[-1].now,))
            self._next_purge = batch[-1].now + 60
        db.execute("COMMIT")
        for put, stored in zip(batch, outcomes, strict=True):
            put.stored = stored

    def _insert_one(self, db: sqlite3.Connection, put: _Put) -> bool:
        if self.dedup_window:
            seen = db.execute("SELECT expires_at FROM fota_inbox_dedup WHERE key = ?", (put.key,)).fetchone()
            if seen is not None and seen[0] > put.now:
                return False
            db.execute(
                "INSERT OR REPLACE INTO fota_inbox_dedup (key, expires_at) VALUES (?, ?)",
                (put.key, put.now + self.dedup_window),
            )
        db.execute("INSERT INTO fota_inbox (body, received_at, due_at) VALUES (?, ?, ?)", (put.body, put.now, put.now))
        return True

    # --- the worker's steps ---------------------------------------------------------------------------------------

    async def _claim(self, now: float) -> Claim | None:
        def claim(db: sqlite3.Connection) -> Claim | None:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute(
                "SELECT id, body, attempts FROM fota_inbox WHERE dead = 0 AND due_at <= ? ORDER BY id LIMIT 1", (now,)
            ).fetchone()
            if row is None:
                db.execute("COMMIT")
                return None
            token = secrets.token_hex(8)
            db.execute(
                "UPDATE fota_inbox SET due_at = ?, claim = ? WHERE id = ?", (now + self.claim_idle, token, row[0])
            )
            db.execute("COMMIT")
            return Claim(id=row[0], body=row[1], attempts=row[2], token=token)

        return await self._call(self._reader, claim)

    async def _update(self, claim: Claim, assignments: str, *values: Any) -> int:
        """Change the claimed entry, if `claim` still holds it; how many rows changed (0 or 1)."""
        sql = f"UPDATE fota_inbox SET {assignments}, claim = NULL WHERE id = ? AND claim = ?"
        return await self._call(self._reader, lambda db: db.execute(sql, (*values, claim.id, claim.token)).rowcount)

    async def _renew(self, claim: Claim, now: float) -> None:
        sql = "UPDATE fota_inbox SET due_at = ? WHERE id = ? AND claim = ?"
        await self._call(self._reader, lambda db: db.execute(sql, (now + self.claim_idle, claim.id, claim.token)))

    async def _complete(self, claim: Claim) -> None:
        def complete(db: sqlite3.Connection) -> None:
            db.execute("BEGIN IMMEDIATE")
            if db.execute("DELETE FROM fota_inbox WHERE id = ? AND claim = ?", (claim.id, claim.token)).rowcount:
                db.execute(
                    "INSERT INTO fota_inbox_counters (name, value) VALUES ('done', 1) "
                    "ON CONFLICT (name) DO UPDATE SET value = value + 1"
                )
            db.execute("COMMIT")

        await self._call(self._reader, complete)

    async def _reschedule(self, claim: Claim, error: str, due: float) -> None:
        await self._update(claim, "attempts = ?, last_error = ?, due_at = ?", claim.attempts + 1, error, due)

    async def _bury(self, claim: Claim, error: str) -> None:
        await self._update(claim, "attempts = ?, last_error = ?, dead = 1", claim.attempts + 1, error)

    async def _release(self, claim: Claim) -> None:
        await self._update(claim, "due_at = ?", self._clock())

    # --- for operators ------------------------------------------------------------------------------------------------

    async def stats(self) -> InboxStats:
        """Counts of pending (waiting, being handled, or waiting for a retry), dead and handled entries."""

        def count(db: sqlite3.Connection) -> InboxStats:
            pending, dead = db.execute(
                "SELECT COALESCE(SUM(dead = 0), 0), COALESCE(SUM(dead = 1), 0) FROM fota_inbox"
            ).fetchone()
            done = db.execute("SELECT value FROM fota_inbox_counters WHERE name = 'done'").fetchone()
            return InboxStats(pending=pending, dead=dead, done=done[0] if done else 0)

        return await self._call(self._reader, count)

    async def dead_letters(self) -> list[InboxEntry]:
        """The dead letters, oldest first."""
        sql = "SELECT id, body, attempts, last_error, received_at FROM fota_inbox WHERE dead = 1 ORDER BY id"
        rows = await self._call(self._reader, lambda db: db.execute(sql).fetchall())
        return [
            InboxEntry(id=id, body=body, attempts=attempts, last_error=error, received_at=utc(received))
            for id, body, attempts, error, received in rows
        ]

    async def retry_dead(self, id: int | None = None) -> int:
        """Put dead letter `id` (or every one) back in the queue with its attempts reset; how many were."""
        sql = "UPDATE fota_inbox SET dead = 0, attempts = 0, due_at = ?, claim = NULL WHERE dead = 1"
        values: tuple[Any, ...] = (self._clock(),)
        if id is not None:
            sql, values = sql + " AND id = ?", (*values, id)
        revived = await self._call(self._reader, lambda db: db.execute(sql, values).rowcount)
        if revived:
            self._wake()
        return revived

    async def aclose(self) -> None:
        """Close the file. Entries claimed by a running worker are released by that worker when it is cancelled."""
        for connection in (self._writer, self._reader):
            await anyio.to_thread.run_sync(connection.close)
