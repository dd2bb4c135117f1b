"""The SQLite file under a `SqliteInbox`: opened only once it is known to be an inbox (or nothing, to be created),
created or migrated from the earlier layout, and opened again whenever the file at the path is no longer the one
that is open (deleted, replaced, made writable again).

Every function here runs in a worker thread, under the lock of the `SqliteFile` it is given.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import sqlite3
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .._logsafe import printable
from ._records import InboxNotFoundError, InboxUnavailableError

__all__ = ["SCHEMA_VERSION", "SqliteFile"]

logger = logging.getLogger("fota_callbacks.inbox")

SCHEMA_VERSION = 1
"""`PRAGMA user_version` of an inbox file in this layout. The earlier layout (fota-callbacks before the batch
worker) left it at 0; a file with a higher one was written by a newer fota-callbacks and is not touched."""

_ENTRIES = """
CREATE TABLE fota_inbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,   -- never reused: a lower id is an older entry
    body BLOB NOT NULL,
    received_at REAL NOT NULL,
    state INTEGER NOT NULL DEFAULT 0,       -- 0 pending, 1 done, 2 dead
    due_at REAL NOT NULL,                   -- pending: when a worker may take it (arrival, retry, end of a claim)
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    claim TEXT,                             -- the token of the claim that holds it until due_at
    renewed_at REAL,                        -- when that claim was taken or last renewed
    order_key TEXT,                         -- NULL until a worker keyed it; '' for a message without a key
    trace TEXT,                             -- the W3C traceparent of the request that stored it
    done_at REAL
)"""
_INDEXES = """
CREATE INDEX fota_inbox_queue ON fota_inbox (id, due_at) WHERE state = 0;
CREATE INDEX fota_inbox_keys ON fota_inbox (order_key, id) WHERE state = 0 AND order_key != '';
CREATE INDEX fota_inbox_done ON fota_inbox (done_at) WHERE state = 1;
CREATE INDEX fota_inbox_dead ON fota_inbox (id) WHERE state = 2;
"""
_DEDUP = """
CREATE TABLE IF NOT EXISTS fota_inbox_dedup (key BLOB PRIMARY KEY, expires_at REAL NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS fota_inbox_dedup_expiry ON fota_inbox_dedup (expires_at);
"""
# The earlier layout: dead 0/1 instead of state, done entries deleted (and counted in fota_inbox_counters).
_FROM_LEGACY = """
INSERT INTO fota_inbox_migrating (id, body, received_at, state, due_at, attempts, last_error)
SELECT id, body, received_at, CASE WHEN dead THEN 2 ELSE 0 END, due_at, attempts, last_error FROM fota_inbox
"""

_BUSY_TIMEOUT = 30.0
"""Seconds a statement waits for another process's lock on the file."""
_SQLITE_HEADER = b"SQLite format 3\x00"


class _Layout(enum.Enum):
    EMPTY = "no tables"
    CURRENT = "an inbox"
    LEGACY = "an inbox in the earlier layout"
    NEWER = "an inbox of a newer fota-callbacks"
    FOREIGN = "another program's database"


# Per file (by real path), shared by every connection of this process: writes take turns here rather than in
# SQLite's busy handler (which sleeps a millisecond or more), and so does the switch of a new file to WAL, which
# SQLite answers "database is locked" at once, without waiting, when another connection opens the file meanwhile.
_WRITING: dict[str, threading.Lock] = {}
_WRITING_GUARD = threading.Lock()


def _write_lock(path: Path) -> threading.Lock:
    key = os.path.realpath(path)  # the same file by any name (relative, through a symlink) is one lock
    with _WRITING_GUARD:
        return _WRITING.setdefault(key, threading.Lock())


def _identity(status: os.stat_result) -> tuple[int, int]:
    return status.st_dev, status.st_ino


def _identity_of(path: str) -> tuple[int, int] | None:
    try:
        return _identity(os.stat(path))
    except OSError:
        return None


def _hold(path: str) -> int | None:
    """A read-only descriptor on the file at `path`, kept to see whether that file is still linked anywhere: an
    inode number alone cannot tell, since a deleted file's number is soon given to a new file."""
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None


def _unlinked(held: int | None) -> bool:
    """Whether the file behind a descriptor from `_hold` has been deleted (or renamed over)."""
    return held is not None and os.fstat(held).st_nlink == 0


def _release(held: int | None) -> None:
    if held is not None:
        os.close(held)


def _writable(path: Path, status: os.stat_result) -> bool:
    """A file without any write permission counts as read-only even for root (who could write it): the operator
    said so."""
    return bool(status.st_mode & 0o222) and os.access(path, os.W_OK)


class SqliteFile:
    """One sqlite3 connection to the inbox file at `path`, used by one thread at a time (under `lock`)."""

    def __init__(self, path: Path, *, synchronous: str, create: bool) -> None:
        self.path, self.synchronous, self.create = path, synchronous, create
        self.lock = threading.Lock()
        self.writing = _write_lock(path)
        self.db: sqlite3.Connection | None = None
        self.identity: tuple[int, int] | None = None  # (device, inode) of the open file
        self.wal_identity: tuple[int, int] | None = None  # and of its -wal
        self.left_wal: tuple[int, int] | None = None  # the -wal of a file that was deleted or replaced
        self.held: int | None = None  # descriptors on the open file and its -wal (see `_hold`)
        self.wal_held: int | None = None
        self.read_only = False

    # --- using it ---------------------------------------------------------------------------------------------------

    def use(self, *, write: bool) -> sqlite3.Connection:
        """The connection, (re)opened on the file now at the path (after `close` too); for a `write`, refused while
        it is read-only."""
        status = self._status()
        if self.db is not None and self._moved(status):
            self._drop("was deleted" if status is None else "was replaced by another file")
        writable = status is not None and _writable(self.path, status)
        if self.db is not None and self.read_only and writable:
            self._drop(None)  # opened read-only, writable again: write through a new connection
        if write and status is not None and not writable:
            raise InboxUnavailableError(f"the SQLite inbox {self.path} cannot take writes: the file is read-only")
        if self.db is None:
            self._open()
        assert self.db is not None
        return self.db

    def moved(self) -> bool:
        """Whether the file at the path is no longer the open one (checked after a commit: was it written into a
        file that had just been deleted or replaced?)."""
        return self._moved(self._status())

    def _moved(self, status: os.stat_result | None) -> bool:
        return status is None or _identity(status) != self.identity or _unlinked(self.held)

    @contextmanager
    def transaction(self, db: sqlite3.Connection) -> Iterator[None]:
        """A write transaction: this process's connections to the file take turns, then `BEGIN IMMEDIATE`."""
        with self.writing:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                _rollback(db)
                raise
            db.execute("COMMIT")

    def close(self) -> None:
        with self.lock:
            self._drop(None)

    def _status(self) -> os.stat_result | None:
        try:
            return os.stat(self.path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise InboxUnavailableError(f"the SQLite inbox {self.path} cannot be reached: {exc}") from exc

    def _drop(self, what_happened: str | None) -> None:
        if what_happened is not None:
            logger.warning(
                "the FOTA inbox file %s %s while open; opening the file at that path (what the old file held is "
                "not in it)",
                printable(self.path),
                what_happened,
            )
            # Only a -wal still linked can be left beside the new file (its inode number cannot be reused then).
            self.left_wal = None if _unlinked(self.wal_held) else self.wal_identity
        if self.db is not None:
            # Safe for a file at the same path: SQLite neither checkpoints nor deletes the -wal of a moved file.
            self.db.close()
            self.db, self.identity, self.wal_identity = None, None, None
        _release(self.held)
        _release(self.wal_held)
        self.held = self.wal_held = None

    # --- opening it -------------------------------------------------------------------------------------------------

    def _open(self) -> None:
        if self.left_wal is not None:
            if _identity_of(f"{self.path}-wal") == self.left_wal:
                raise InboxUnavailableError(
                    f"the SQLite inbox {self.path} was deleted or replaced while open, but its -wal file is still "
                    "there: SQLite would mix it into the file now at the path; remove the -wal and -shm files beside it"
                )
            self.left_wal = None
        for _ in range(3):
            before = _examine(self.path, self.create)
            read_only = before is not None and not _writable(self.path, before)
            db = _connect(self.path, "ro" if read_only else "rwc" if self.create else "rw")
            try:
                self._prepare(db, read_only)
                after = os.stat(self.path)
            except BaseException:
                db.close()
                raise
            held = _hold(str(self.path))
            if (before is None or _identity(before) == _identity(after)) and (
                held is None or _identity(os.fstat(held)) == _identity(after)
            ):
                self.db, self.identity, self.read_only, self.held = db, _identity(after), read_only, held
                self.wal_held = _hold(f"{self.path}-wal")
                self.wal_identity = None if self.wal_held is None else _identity(os.fstat(self.wal_held))
                return
            _release(held)
            db.close()  # replaced while it was being opened: open what is there now
        raise InboxUnavailableError(f"the SQLite inbox {self.path} keeps being replaced while it is opened")

    def _prepare(self, db: sqlite3.Connection, read_only: bool) -> None:
        layout, version = _layout(db)
        if layout is _Layout.CURRENT:
            pass
        elif not self.create or layout is _Layout.NEWER:
            raise _not_an_inbox(self.path, layout, version, self.create)
        elif layout is _Layout.FOREIGN:
            raise InboxUnavailableError(
                f"the SQLite inbox {self.path} cannot be used: it is another program's database (tables of its own, "
                "no fota_inbox table); give the inbox a file of its own"
            )
        elif read_only:
            raise InboxUnavailableError(f"the SQLite inbox {self.path} cannot be set up: the file is read-only")
        else:
            with self.writing:
                found = _initialise(db)
            if found is _Layout.LEGACY:
                logger.warning(
                    "the FOTA inbox file %s was migrated to layout %d (its pending and dead entries kept)",
                    printable(self.path),
                    SCHEMA_VERSION,
                )
        db.execute(f"PRAGMA synchronous={self.synchronous}")


def _examine(path: Path, create: bool) -> os.stat_result | None:
    """The file's status, once it looks like an inbox or something to create one in; None when there is none and
    one may be created. Raises `InboxNotFoundError` (`create=False`) without changing anything."""
    try:
        status = os.stat(path)
        with open(path, "rb") as file:
            header = file.read(len(_SQLITE_HEADER))
    except FileNotFoundError:
        if create:
            return None
        raise InboxNotFoundError(f"no inbox at {path}: the file does not exist") from None
    except IsADirectoryError:
        if create:
            raise InboxUnavailableError(f"the SQLite inbox {path} cannot be used: it is a directory") from None
        raise InboxNotFoundError(f"no inbox at {path}: it is a directory") from None
    except OSError as exc:
        raise InboxUnavailableError(f"the SQLite inbox {path} cannot be read: {exc}") from exc
    if header != _SQLITE_HEADER and (header or not create):
        what = "the file is empty" if not header else "the file is not an SQLite database"
        if create:
            raise InboxUnavailableError(f"the SQLite inbox {path} cannot be used: {what}")
        raise InboxNotFoundError(f"no inbox at {path}: {what}")
    if not create and not os.path.exists(f"{path}-wal"):
        # Nothing has the file open in WAL mode: read it as it is, creating nothing beside it (no -wal, no -shm).
        layout, version = _layout_untouched(path)
        if layout is not _Layout.CURRENT:
            raise _not_an_inbox(path, layout, version, create)
    return status


def _layout_untouched(path: Path) -> tuple[_Layout, int]:
    db = sqlite3.connect(f"file:{urllib.request.pathname2url(str(path))}?immutable=1", uri=True)
    try:
        return _layout(db)
    except sqlite3.DatabaseError:
        raise InboxNotFoundError(f"no inbox at {path}: the file is not an SQLite database") from None
    finally:
        db.close()


def _not_an_inbox(path: Path, layout: _Layout, version: int, create: bool) -> InboxUnavailableError:
    if layout is _Layout.NEWER:
        return InboxUnavailableError(
            f"the SQLite inbox {path} was written by a newer fota-callbacks (layout {version}; this one knows "
            f"{SCHEMA_VERSION}): upgrade fota-callbacks"
        )
    if layout is _Layout.LEGACY:
        return InboxNotFoundError(
            f"the inbox at {path} has the layout of an earlier fota-callbacks: a receiver or worker of this version "
            "migrates it when it opens the file"
        )
    return InboxNotFoundError(f"no inbox at {path}: the file is {layout.value}")


def _connect(path: Path, mode: str) -> sqlite3.Connection:
    target = f"file:{urllib.request.pathname2url(str(path))}?mode={mode}"
    return sqlite3.connect(target, uri=True, timeout=_BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)


def _layout(db: sqlite3.Connection) -> tuple[_Layout, int]:
    """What the file holds (a read: nothing changes), and its `user_version`, seen in one snapshot: another process
    may be creating the tables meanwhile."""
    own_snapshot = not db.in_transaction
    if own_snapshot:
        db.execute("BEGIN")
    try:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        (version,) = db.execute("PRAGMA user_version").fetchone()
    finally:
        if own_snapshot:
            _rollback(db)
    tables = {name for name in tables if not name.startswith("sqlite_")}
    if "fota_inbox" not in tables:
        return (_Layout.EMPTY if not tables and version == 0 else _Layout.FOREIGN), version
    if version == 0:
        return _Layout.LEGACY, version
    return (_Layout.CURRENT if version == SCHEMA_VERSION else _Layout.NEWER), version


def _initialise(db: sqlite3.Connection) -> _Layout:
    """WAL, then the tables (or the migration of the earlier layout), in one transaction; idempotent, and safe
    when several processes open a new file at once. The caller holds the file's write lock. Returns what the file
    held."""
    deadline = time.monotonic() + _BUSY_TIMEOUT
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as exc:  # another process is opening it: wait, as SQLite does not
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)
    db.execute("BEGIN IMMEDIATE")
    try:
        layout, _ = _layout(db)  # again, in the transaction: another process may have done it meanwhile
        if layout is _Layout.EMPTY:
            db.execute(_ENTRIES)
            _finish_schema(db)
        elif layout is _Layout.LEGACY:
            _migrate(db)
    except BaseException:
        _rollback(db)
        raise
    db.execute("COMMIT")
    return layout


def _finish_schema(db: sqlite3.Connection) -> None:
    for statement in (_INDEXES + _DEDUP).split(";"):
        if statement.strip():
            db.execute(statement)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _migrate(db: sqlite3.Connection) -> None:
    """The earlier layout rebuilt in this one: pending and dead entries kept (with attempts and last error), ids
    kept and never reused, dedup keys kept. Its done entries had been deleted; only their count is dropped."""
    row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'fota_inbox'").fetchone()
    last_id = row[0] if row else 0
    db.execute(_ENTRIES.replace("CREATE TABLE fota_inbox (", "CREATE TABLE fota_inbox_migrating (", 1))
    db.execute(_FROM_LEGACY)
    db.execute("DROP TABLE fota_inbox")
    db.execute("DROP TABLE IF EXISTS fota_inbox_counters")
    db.execute("ALTER TABLE fota_inbox_migrating RENAME TO fota_inbox")
    if db.execute("UPDATE sqlite_sequence SET seq = MAX(seq, ?) WHERE name = 'fota_inbox'", (last_id,)).rowcount == 0:
        db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('fota_inbox', ?)", (last_id,))
    _finish_schema(db)


def _rollback(db: sqlite3.Connection) -> None:
    if db.in_transaction:
        # The error being raised says more; SQLite rolls back a transaction it could not go on with itself.
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
