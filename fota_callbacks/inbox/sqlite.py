"""`SqliteInbox`: the embedded inbox, one SQLite file (standard library `sqlite3`, WAL), nothing to install or run.

Every call runs in a worker thread (`anyio.to_thread`), never on the event loop. Puts arriving together are
written in one transaction and one fsync (group commit), and none of them returns before that commit. A worker
records what became of the entries it handled and claims the next ones in one transaction. Several processes may
share the file: a claim holds an entry until `claim_idle` seconds after it was taken or last renewed, so the
entries of a killed process become due again once their claims lapse.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import attrs

from .._errors import InvalidArgumentError
from ._base import BaseInbox
from ._records import Claim, InboxEntry, InboxStats, InboxUnavailableError, Outcome, utc
from ._sqlite_file import SqliteFile

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._base import InboxOptions

__all__ = ["SqliteInbox"]

_T = TypeVar("_T")

_STORE_KEY = (
    "INSERT INTO fota_inbox_dedup (key, expires_at) VALUES (?, ?) "
    "ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at WHERE expires_at <= ?"
)
_STORE_ENTRY = "INSERT INTO fota_inbox (body, received_at, due_at, trace) VALUES (?, ?, ?, ?)"
_DUE = """
SELECT id, body, attempts, received_at, order_key, trace FROM fota_inbox AS entry
WHERE state = 0 AND due_at <= ? AND (order_key IS NULL OR order_key = '' OR NOT EXISTS (
    SELECT 1 FROM fota_inbox AS older
    WHERE older.state = 0 AND older.order_key != '' AND older.order_key = entry.order_key AND older.id < entry.id))
ORDER BY id LIMIT ?
"""
_HOLDING = "WHERE id = ? AND claim = ? AND state = 0"
"""Only while the claim still holds the entry: a lapsed claim another worker took is not settled twice."""
_SETTLE = {
    "done": f"UPDATE fota_inbox SET state = 1, done_at = ?, claim = NULL {_HOLDING}",
    "retry": f"UPDATE fota_inbox SET attempts = ?, last_error = ?, due_at = ?, claim = NULL {_HOLDING}",
    "dead": f"UPDATE fota_inbox SET attempts = ?, last_error = ?, state = 2, claim = NULL {_HOLDING}",
    "release": f"UPDATE fota_inbox SET due_at = ?, claim = NULL {_HOLDING}",
}
_FORGET = f"DELETE FROM fota_inbox {_HOLDING}"
"""A done entry when `retain_done` is 0."""
_SAME_KEY_OLDER = "SELECT 1 FROM fota_inbox WHERE state = 0 AND order_key != '' AND order_key = ? AND id < ? LIMIT 1"
_KEYING_OLDER = (
    "SELECT 1 FROM fota_inbox WHERE state = 0 AND order_key IS NULL AND id < ? AND claim IS NOT NULL AND due_at > ? "
    "LIMIT 1"
)
_PENDING_COUNTS = """
SELECT COUNT(*), MIN(received_at), TOTAL(claimed), TOTAL(claimed AND stale),
       MIN(CASE WHEN claimed AND stale THEN due_at END)
FROM (SELECT received_at, due_at, claim IS NOT NULL AND due_at > :now AS claimed,
             :now - renewed_at > (due_at - renewed_at) / 2 AS stale
      FROM fota_inbox WHERE state = 0)
"""
_PURGE_CHUNK = 1000
"""Done entries deleted per transaction, so that puts are not held up by a long purge."""
_DEDUP_PURGE_EVERY = 60.0
"""Seconds (on the inbox's clock) between the group commit's deletions of expired dedup keys."""


@attrs.define
class _Put:
    body: bytes
    key: bytes
    now: float
    trace: str | None
    stored: bool | None = None
    error: BaseException | None = None


class SqliteInbox(BaseInbox):
    """A durable inbox in the SQLite file at `path`: survives restarts and `kill -9`.

    A body is committed (fsync, `synchronous=FULL`) before `put` returns; claims and outcomes are committed
    with `synchronous=NORMAL`, which survives a killed process (a power cut at worst has an entry handled again).
    Several processes on one machine may share the file (not over a network file system).

    The file is created on first use (WAL mode, the layout recorded in `PRAGMA user_version`); a file written by
    an earlier fota-callbacks is migrated in place, its pending and dead entries kept. With `create=False` nothing
    is created or changed: a missing file, an empty one, or one that is not an inbox raises `InboxNotFoundError`.
    A file made read-only refuses puts (`InboxUnavailableError`: the receiver answers 503) until it is writable
    again; a file deleted or replaced while open is noticed at the next step and the file at the path is used
    (created, with `create=True`): nothing is written into a file no longer at the path.

    Options: `path`, and those of every inbox (see `BaseInbox`).
    """

    def __init__(self, path: str | os.PathLike[str], **options: Unpack[InboxOptions]) -> None:
        super().__init__(**options)
        if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
            raise InvalidArgumentError("path", f"expected the path of the inbox file, got {path!r}")
        self.path = Path(os.fspath(path)).absolute()
        # Puts on their own connection: they need a full fsync, and must not queue behind the workers.
        self._writer = SqliteFile(self.path, synchronous="FULL", create=self.create)
        self._reader = SqliteFile(self.path, synchronous="NORMAL", create=self.create)
        self._queued: list[_Put] = []
        self._committed: anyio.Event | None = None  # set when the batch being written is committed (or failed)
        self._next_dedup_purge = 0.0

    def __repr__(self) -> str:
        return f"SqliteInbox({str(self.path)!r})"

    async def _call(self, file: SqliteFile, step: Callable[[sqlite3.Connection], _T], *, write: bool) -> _T:
        """`step(connection)` in a worker thread, on the file now at the path; sqlite3 errors as the inbox's."""

        def locked() -> _T:
            with file.lock:
                return step(file.use(write=write))

        return await self._in_thread(locked)

    async def _in_thread(self, call: Callable[[], _T]) -> _T:
        try:
            return await anyio.to_thread.run_sync(call)
        except sqlite3.Error as exc:
            raise InboxUnavailableError(f"the SQLite inbox {self.path} failed: {exc}") from exc

    # --- storing ------------------------------------------------------------------------------------------------------

    async def _store(self, body: bytes, key: bytes, now: float, trace: str | None) -> bool:
        put = _Put(body, key, now, trace)
        self._queued.append(put)
        while put.stored is None and put.error is None:
            if self._committed is None:
                await self._write_queued()
            else:
                # Every put of a batch wakes at once when it is committed (not one after another, as behind a lock),
                # so the worker they wake claims them together.
                await self._committed.wait()
        if put.error is not None:
            raise put.error
        assert put.stored is not None
        return put.stored

    async def _write_queued(self) -> None:
        """Write every put queued so far: one transaction, one fsync; the puts queued meanwhile are the next batch."""
        committed = self._committed = anyio.Event()
        batch, self._queued = self._queued, []
        try:
            await self._in_thread(lambda: self._write(batch))
        except Exception as exc:
            for queued in batch:
                queued.error = exc
        finally:
            for queued in batch:
                if queued.stored is None and queued.error is None:  # never left waiting, whatever happened
                    queued.error = InboxUnavailableError(f"the write to the SQLite inbox {self.path} was interrupted")
            self._committed = None
            committed.set()

    def _write(self, batch: list[_Put]) -> None:
        """Commit the batch to the file at the path. Checked before (the file is the open one) and after: a file
        deleted or replaced during the commit got the batch in vain, and it is written again to the new one."""
        file = self._writer
        with file.lock:
            for _ in range(3):
                db = file.use(write=True)
                with file.transaction(db):
                    stored = [self._insert(db, put) for put in batch]
                    self._forget_expired_keys(db, batch[-1].now)
                if not file.moved():
                    for put, was_stored in zip(batch, stored, strict=True):
                        put.stored = was_stored
                    return
        raise InboxUnavailableError(f"the SQLite inbox {self.path} keeps being replaced while it is written")

    def _insert(self, db: sqlite3.Connection, put: _Put) -> bool:
        if self.dedup_window and not db.execute(_STORE_KEY, (put.key, put.now + self.dedup_window, put.now)).rowcount:
            return False  # the same body was stored within the window
        db.execute(_STORE_ENTRY, (put.body, put.now, put.now, put.trace))
        return True

    def _forget_expired_keys(self, db: sqlite3.Connection, now: float) -> None:
        # Here too, not only in the worker's purge: a process that only receives keeps its keys bounded.
        if now >= self._next_dedup_purge:
            db.execute("DELETE FROM fota_inbox_dedup WHERE expires_at <= ?", (now,))
            self._next_dedup_purge = now + _DEDUP_PURGE_EVERY

    # --- the worker's steps ---------------------------------------------------------------------------------------

    async def _exchange(self, outcomes: Sequence[Outcome], now: float, limit: int) -> list[Claim]:
        def exchange(db: sqlite3.Connection) -> list[Claim]:
            with self._reader.transaction(db):
                self._settle(db, outcomes)
                return self._claim(db, now, limit) if limit > 0 else []

        return await self._call(self._reader, exchange, write=True)

    def _settle(self, db: sqlite3.Connection, outcomes: Sequence[Outcome]) -> None:
        rows: dict[str, list[tuple[Any, ...]]] = {}
        for outcome in outcomes:
            sql, values = self._settling(outcome)
            rows.setdefault(sql, []).append(values)
        for sql, values_list in rows.items():
            db.executemany(sql, values_list)

    def _settling(self, outcome: Outcome) -> tuple[str, tuple[Any, ...]]:
        """The statement that records `outcome`, and its values."""
        claim = outcome.claim
        holder = (claim.id, claim.token)
        if outcome.kind == "done":
            return (_SETTLE["done"], (outcome.at, *holder)) if self.retain_done else (_FORGET, holder)
        if outcome.kind == "release":
            return _SETTLE["release"], (outcome.at, *holder)
        if outcome.kind == "retry":
            return _SETTLE["retry"], (claim.attempts + 1, outcome.error, outcome.due, *holder)
        return _SETTLE["dead"], (claim.attempts + 1, outcome.error, *holder)

    def _claim(self, db: sqlite3.Connection, now: float, limit: int) -> list[Claim]:
        due = db.execute(_DUE, (now, limit)).fetchall()
        if not due:
            return []
        token = secrets.token_hex(8)  # one per batch: a later claim of any of these entries has another
        ids = [row[0] for row in due]
        db.execute(
            f"UPDATE fota_inbox SET claim = ?, due_at = ?, renewed_at = ? WHERE id IN ({','.join('?' * len(ids))})",
            (token, now + self.claim_idle, now, *ids),
        )
        return [
            Claim(id, body, attempts, token, received_at, order_key, trace)
            for id, body, attempts, received_at, order_key, trace in due
        ]

    async def _hold(self, keyed: Sequence[tuple[Claim, str]], now: float) -> set[int]:
        def hold(db: sqlite3.Connection) -> set[int]:
            with self._reader.transaction(db):
                mine = [
                    (claim, key)
                    for claim, key in keyed
                    if db.execute(
                        f"UPDATE fota_inbox SET order_key = ? {_HOLDING}", (key, claim.id, claim.token)
                    ).rowcount
                ]
                waiting = {claim.id for claim, key in mine if self._must_wait(db, claim.id, key, now)}
                if waiting:
                    db.executemany(
                        "UPDATE fota_inbox SET claim = NULL, due_at = ? WHERE id = ?", [(now, id) for id in waiting]
                    )
            return waiting

        return await self._call(self._reader, hold, write=True)

    @staticmethod
    def _must_wait(db: sqlite3.Connection, id: int, key: str, now: float) -> bool:
        """An older pending entry has the same key, or an older entry is claimed with its key not stored yet."""
        if key and db.execute(_SAME_KEY_OLDER, (key, id)).fetchone():
            return True
        return db.execute(_KEYING_OLDER, (id, now)).fetchone() is not None

    async def _renew(self, claims: Sequence[Claim], now: float) -> None:
        def renew(db: sqlite3.Connection) -> None:
            with self._reader.transaction(db):
                db.executemany(
                    f"UPDATE fota_inbox SET due_at = ?, renewed_at = ? {_HOLDING}",
                    [(now + self.claim_idle, now, claim.id, claim.token) for claim in claims],
                )

        await self._call(self._reader, renew, write=True)

    async def _purge(self, now: float) -> None:
        def purge(db: sqlite3.Connection) -> None:
            while True:
                with self._reader.transaction(db):
                    deleted = db.execute(
                        "DELETE FROM fota_inbox WHERE id IN "
                        "(SELECT id FROM fota_inbox WHERE state = 1 AND done_at <= ? LIMIT ?)",
                        (now - self.retain_done, _PURGE_CHUNK),
                    ).rowcount
                if deleted < _PURGE_CHUNK:
                    break
            with self._reader.transaction(db):
                db.execute("DELETE FROM fota_inbox_dedup WHERE expires_at <= ?", (now,))

        await self._call(self._reader, purge, write=True)

    # --- for operators ------------------------------------------------------------------------------------------------

    async def _counts(self, now: float) -> InboxStats:
        """A claim is stale when it was not renewed for more than half of the `claim_idle` its worker claimed it
        with (the stored claim's length), whatever this handle's `claim_idle`: `inbox stats` judges another
        process's claims."""

        def count(db: sqlite3.Connection) -> InboxStats:
            db.execute("BEGIN")  # one snapshot for every count
            try:
                pending, oldest, in_flight, stale, first_lapse = db.execute(_PENDING_COUNTS, {"now": now}).fetchone()
                (done,) = db.execute(
                    "SELECT COUNT(*) FROM fota_inbox INDEXED BY fota_inbox_done WHERE state = 1"
                ).fetchone()
                (dead,) = db.execute("SELECT COUNT(*) FROM fota_inbox WHERE state = 2").fetchone()
            finally:
                db.execute("COMMIT")
            return InboxStats(
                pending=pending,
                dead=dead,
                done=done,
                in_flight=int(in_flight),
                oldest_pending_age=max(0.0, now - oldest) if pending else 0.0,
                stale=int(stale),
                next_takeover=None if first_lapse is None else first_lapse - now,
            )

        return await self._call(self._reader, count, write=False)

    async def _dead(self) -> list[InboxEntry]:
        sql = "SELECT id, body, attempts, last_error, received_at FROM fota_inbox WHERE state = 2 ORDER BY id"
        rows = await self._call(self._reader, lambda db: db.execute(sql).fetchall(), write=False)
        return [
            InboxEntry(id=id, body=body, attempts=attempts, last_error=error, received_at=utc(received))
            for id, body, attempts, error, received in rows
        ]

    async def _revive(self, id: int | None, now: float) -> int:
        sql = "UPDATE fota_inbox SET state = 0, attempts = 0, due_at = ?, claim = NULL WHERE state = 2"
        values: tuple[Any, ...] = (now,) if id is None else (now, id)
        if id is not None:
            sql += " AND id = ?"

        def revive(db: sqlite3.Connection) -> int:
            with self._reader.transaction(db):
                return db.execute(sql, values).rowcount

        return await self._call(self._reader, revive, write=True)

    async def _handled(self, since: float, until: float | None, after: int, limit: int) -> list[tuple[int, bytes]]:
        sql = "SELECT id, body FROM fota_inbox WHERE state = 1 AND id > ? AND received_at >= ?"
        values: tuple[Any, ...] = (after, since)
        if until is not None:
            sql, values = sql + " AND received_at < ?", (*values, until)
        sql, values = sql + " ORDER BY id LIMIT ?", (*values, limit)
        rows = await self._call(self._reader, lambda db: db.execute(sql, values).fetchall(), write=False)
        return [(id, body) for id, body in rows]

    async def _requeue(self, ids: Sequence[int], now: float) -> int:
        sql = "UPDATE fota_inbox SET state = 0, attempts = 0, due_at = ?, claim = NULL, done_at = NULL "
        sql += "WHERE state = 1 AND id = ?"

        def requeue(db: sqlite3.Connection) -> int:
            with self._reader.transaction(db):
                return db.executemany(sql, [(now, id) for id in ids]).rowcount

        return await self._call(self._reader, requeue, write=True)

    async def _probe(self) -> None:
        """The file at the path is the open one (re-opened if not), writable, and its write lock can be taken."""

        def probe(db: sqlite3.Connection) -> None:
            with self._writer.transaction(db):
                pass

        await self._call(self._writer, probe, write=True)

    async def _close(self) -> None:
        """Close the file. Entries claimed by a running worker are released by that worker when it is cancelled."""
        for file in (self._writer, self._reader):
            await anyio.to_thread.run_sync(file.close)
