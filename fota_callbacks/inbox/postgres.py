"""`PostgresInbox`: the inbox in PostgreSQL, shared by any number of receiver processes (extra `postgres`).

Two tables, both named from `table`: `<table>` holds one row per entry (its state, claim, attempts, order key and
trace), `<table>_dedup` one row per dedup key with the time it expires on the inbox's clock. Each storage step is
one statement or one short transaction: `put` is one `INSERT ... ON CONFLICT` (the dedup key and the entry
together); a worker's `_exchange` records its outcomes and claims the next batch (`FOR UPDATE SKIP LOCKED LIMIT
n`) in one transaction. The driver is asyncpg (chosen by measurement against psycopg 3: benchmarks/README.md), so
the inbox runs on asyncio only.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar, cast
from urllib.parse import unquote, urlsplit

import anyio
import sniffio

from .._errors import InvalidArgumentError
from .._validation import positive_int
from ._base import BaseInbox, stale_after
from ._records import (
    Claim,
    InboxEntry,
    InboxHandler,
    InboxNotFoundError,
    InboxStats,
    InboxUnavailableError,
    OrderKey,
    Outcome,
    utc,
)

if TYPE_CHECKING:
    import asyncpg
    from asyncpg.pool import PoolConnectionProxy
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider
    from typing_extensions import Unpack

    from ..callbacks import CallbackMessage
    from ._base import InboxOptions

__all__ = ["PostgresInbox", "TransactionalHandler", "schema"]

_T = TypeVar("_T")
_Pooled: TypeAlias = "PoolConnectionProxy[Any]"

TransactionalHandler = Callable[["CallbackMessage", Any], Awaitable[object]]
"""`async def handler(message, connection)` for `run(..., transactional=True)`: `connection` is an asyncpg
connection (a pooled `asyncpg.Connection`: every method of one) inside the transaction that marks the entry done;
what the handler writes on it commits with that, or not at all."""

_TABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}\Z")
_PENDING, _DONE, _DEAD = 0, 1, 2


def schema(table: str = "fota_inbox") -> str:
    """The DDL of an inbox named `table`: what `PostgresInbox` runs on first use (with `create=True`, the
    default) and `fota-callbacks inbox migrate --postgres DSN [--print]` applies or prints. Idempotent."""
    t = _identifier(table)
    return f"""\
CREATE TABLE IF NOT EXISTS "{t}" (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    body bytea NOT NULL,
    received_at double precision NOT NULL,
    due double precision NOT NULL,
    state smallint NOT NULL DEFAULT 0,  -- 0 pending, 1 done, 2 dead
    attempts integer NOT NULL DEFAULT 0,
    last_error text,
    token text,
    claimed_until double precision,
    renewed_at double precision,
    order_key text,
    done_at double precision,
    trace text
);
CREATE INDEX IF NOT EXISTS "{t}_pending" ON "{t}" (id) WHERE state = 0;
CREATE INDEX IF NOT EXISTS "{t}_ordered" ON "{t}" (order_key, id) WHERE state = 0 AND order_key <> '';
CREATE INDEX IF NOT EXISTS "{t}_done" ON "{t}" (done_at) WHERE state = 1;
CREATE TABLE IF NOT EXISTS "{t}_dedup" (
    key bytea PRIMARY KEY,
    stored_at double precision NOT NULL,
    until double precision NOT NULL
);
CREATE INDEX IF NOT EXISTS "{t}_dedup_until" ON "{t}_dedup" (until);
"""


def _identifier(table: object) -> str:
    if not isinstance(table, str) or not _TABLE.match(table):
        raise InvalidArgumentError(
            "table", f"expected letters, digits and underscores (at most 40, not starting with a digit), got {table!r}"
        )
    return table


def _lock_key(table: str, purpose: str) -> int:
    """A 64-bit advisory lock key of its own for each inbox table and purpose."""
    return int.from_bytes(hashlib.sha256(f"fota-callbacks:{table}:{purpose}".encode()).digest()[:8], "big", signed=True)


class _Statements:
    """Every statement of one inbox, made once (asyncpg prepares and caches each per connection)."""

    def __init__(self, table: str) -> None:
        t, dedup = f'"{table}"', f'"{table}_dedup"'
        self._storing(t, dedup)
        self._working(t)
        self._operating(t, dedup)

    def _storing(self, t: str, dedup: str) -> None:
        # A scan of pg_class on the statement's snapshot, not to_regclass(): its cache keeps answering "missing"
        # within a transaction that began before another session created the tables.
        self.exists = """
            SELECT count(*) = 2
            FROM pg_catalog.pg_class AS c JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
            WHERE n.nspname = current_schema() AND c.relname IN ($1, $2)"""
        # Puts arriving together, in one statement: $1 bodies, $2 times received, $3 traces, [$4 dedup keys (each
        # once), $5 dedup window]. A key comes back when its entry was stored (not a duplicate within the window).
        rows = "unnest($1::bytea[], $2::float8[], $3::text[]"
        self.put = f"""
            INSERT INTO {t} (body, received_at, due, trace)
            SELECT body, at, at, trace FROM {rows}) WITH ORDINALITY AS i(body, at, trace, ord) ORDER BY ord"""
        self.put_once = f"""
            WITH input AS (
                SELECT * FROM {rows}, $4::bytea[]) WITH ORDINALITY AS i(body, at, trace, key, ord)
            ), fresh AS (
                INSERT INTO {dedup} AS seen (key, stored_at, until) SELECT key, at, at + $5::float8 FROM input
                ON CONFLICT (key) DO UPDATE SET stored_at = excluded.stored_at, until = excluded.until
                WHERE seen.until <= excluded.stored_at
                RETURNING key
            ), stored AS (
                INSERT INTO {t} (body, received_at, due, trace)
                SELECT i.body, i.at, i.at, i.trace FROM input AS i JOIN fresh USING (key) ORDER BY i.ord
            )
            SELECT key FROM fresh"""
        self.notify = "SELECT pg_notify($1, '')"

    def _working(self, t: str) -> None:
        # $1 ids, $2 tokens, $3 kinds, $4 errors, $5 dues, $6 at, $7 attempts before, $8 retain_done is 0.
        self.settle = f"""
            WITH outcome AS (
                SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::float8[],
                                     $6::float8[], $7::int[]) AS o(id, token, kind, error, due, at, attempts)
            ), dropped AS (
                DELETE FROM {t} AS e USING outcome AS o
                WHERE $8 AND o.kind = 'done' AND e.id = o.id AND e.token = o.token
            )
            UPDATE {t} AS e SET
                state = CASE o.kind WHEN 'done' THEN {_DONE} WHEN 'dead' THEN {_DEAD} ELSE {_PENDING} END,
                attempts = CASE WHEN o.kind IN ('retry', 'dead') THEN o.attempts + 1 ELSE e.attempts END,
                last_error = CASE WHEN o.kind IN ('retry', 'dead') THEN o.error ELSE e.last_error END,
                due = CASE o.kind WHEN 'retry' THEN o.due WHEN 'release' THEN o.at ELSE e.due END,
                done_at = CASE WHEN o.kind = 'done' THEN o.at ELSE e.done_at END,
                token = NULL, claimed_until = NULL
            FROM outcome AS o
            WHERE e.id = o.id AND e.token = o.token AND NOT ($8 AND o.kind = 'done')"""
        # $1 now, $2 limit, $3 token, $4 claim_idle. Oldest first; an entry whose order key an older pending
        # entry shares waits; rows another worker is claiming right now are skipped, not waited for.
        self.claim = f"""
            UPDATE {t} AS e SET token = $3, claimed_until = $1::float8 + $4::float8, renewed_at = $1
            FROM (
                SELECT c.id FROM {t} AS c
                WHERE c.state = {_PENDING} AND c.due <= $1 AND (c.claimed_until IS NULL OR c.claimed_until <= $1)
                  AND (c.order_key IS NULL OR c.order_key = '' OR NOT EXISTS (
                      SELECT 1 FROM {t} AS o
                      WHERE o.state = {_PENDING} AND o.order_key = c.order_key AND o.id < c.id))
                ORDER BY c.id LIMIT $2 FOR UPDATE SKIP LOCKED
            ) AS chosen
            WHERE e.id = chosen.id
            RETURNING e.id, e.body, e.attempts, e.received_at, e.order_key, e.trace"""
        # $1 id, $2 token, $3 now, $4 retain_done is 0: a transactional handling's own completion.
        self.finish = f"""
            WITH dropped AS (DELETE FROM {t} WHERE $4 AND id = $1 AND token = $2 RETURNING id),
            finished AS (
                UPDATE {t} SET state = {_DONE}, done_at = $3, token = NULL, claimed_until = NULL
                WHERE NOT $4 AND id = $1 AND token = $2 RETURNING id
            )
            SELECT id FROM dropped UNION ALL SELECT id FROM finished"""
        self.renew = f"""
            UPDATE {t} AS e SET claimed_until = $1::float8 + $2::float8, renewed_at = $1
            FROM unnest($3::bigint[], $4::text[]) AS c(id, token) WHERE e.id = c.id AND e.token = c.token"""
        self.lock = "SELECT pg_advisory_xact_lock($1)"
        self.key = f"""
            UPDATE {t} AS e SET order_key = k.key
            FROM unnest($1::bigint[], $2::text[], $3::text[]) AS k(id, token, key)
            WHERE e.id = k.id AND e.token = k.token"""
        # $1 now, $2 ids, $3 tokens: release (and name) the claims an older pending entry holds back.
        self.hold_back = f"""
            UPDATE {t} AS e SET token = NULL, claimed_until = NULL, due = $1
            FROM unnest($2::bigint[], $3::text[]) AS m(id, token)
            WHERE e.id = m.id AND e.token = m.token AND EXISTS (
                SELECT 1 FROM {t} AS o WHERE o.state = {_PENDING} AND o.id < e.id AND (
                    (e.order_key <> '' AND o.order_key = e.order_key)
                    OR (o.order_key IS NULL AND o.claimed_until > $1)))
            RETURNING e.id"""

    def _operating(self, t: str, dedup: str) -> None:
        self.purge_done = f"DELETE FROM {t} WHERE state = {_DONE} AND done_at <= $1"
        self.purge_keys = f"DELETE FROM {dedup} WHERE until <= $1"
        # $1 now, $2 stale after.
        self.counts = f"""
            SELECT count(*) FILTER (WHERE state = {_PENDING}),
                   count(*) FILTER (WHERE state = {_DEAD}),
                   count(*) FILTER (WHERE state = {_DONE}),
                   count(*) FILTER (WHERE state = {_PENDING} AND claimed_until > $1),
                   min(received_at) FILTER (WHERE state = {_PENDING}),
                   count(*) FILTER (WHERE state = {_PENDING} AND claimed_until > $1 AND $1 - renewed_at > $2),
                   min(claimed_until) FILTER (WHERE state = {_PENDING} AND claimed_until > $1 AND $1 - renewed_at > $2)
            FROM {t}"""
        self.dead = f"SELECT id, body, attempts, last_error, received_at FROM {t} WHERE state = {_DEAD} ORDER BY id"
        self.revive = f"""
            UPDATE {t} SET state = {_PENDING}, attempts = 0, due = $1, token = NULL, claimed_until = NULL
            WHERE state = {_DEAD} AND ($2::bigint IS NULL OR id = $2)"""
        self.handled = f"""
            SELECT id, body FROM {t}
            WHERE state = {_DONE} AND received_at >= $1 AND ($2::float8 IS NULL OR received_at < $2) AND id > $3
            ORDER BY id LIMIT $4"""
        self.requeue = f"""
            UPDATE {t} SET state = {_PENDING}, attempts = 0, due = $1, token = NULL, claimed_until = NULL
            WHERE state = {_DONE} AND id = ANY($2::bigint[])"""
        self.probe = "SELECT pg_is_in_recovery(), current_setting('transaction_read_only') = 'on'"


class _Put:
    """One `put` waiting for its batch: what to store, then whether it was stored (or why not)."""

    __slots__ = ("body", "error", "key", "now", "stored", "trace")

    def __init__(self, body: bytes, key: bytes, now: float, trace: str | None) -> None:
        self.body, self.key, self.now, self.trace = body, key, now, trace
        self.stored: bool | None = None
        self.error: BaseException | None = None


def _check_dsn(dsn: object) -> str:
    # Never quote a rejected DSN: it may hold a password.
    if not isinstance(dsn, str):
        raise InvalidArgumentError("dsn", f"expected a postgresql:// URL (str), got {type(dsn).__name__}")
    if urlsplit(dsn).scheme not in ("postgresql", "postgres"):
        raise InvalidArgumentError("dsn", "expected a postgresql://user:password@host:port/database URL")
    return dsn


def _where(dsn: str) -> str:
    """host:port/database, for messages: never the user's password."""
    parts = urlsplit(dsn)
    try:
        port = parts.port or 5432
    except ValueError:
        raise InvalidArgumentError("dsn", "the port in the postgresql:// URL is not a number") from None
    return f"{parts.hostname or 'localhost'}:{port}/{unquote(parts.path.lstrip('/')) or '-'}"


async def _no_reset(connection: Any) -> None:
    return None


async def _close_pool(pool: asyncpg.Pool[Any], grace: float) -> None:
    """Close gracefully, or terminate after `grace` seconds (a connection stuck on a dead server)."""
    with anyio.move_on_after(grace, shield=True) as scope:
        await pool.close()
    if scope.cancelled_caught:
        pool.terminate()


def _affected(status: str) -> int:
    """The row count of a command status such as `UPDATE 3`."""
    return int(status.rsplit(" ", 1)[-1])


class PostgresInbox(BaseInbox):
    """An inbox in the PostgreSQL database at `dsn` (`postgresql://user:password@host:5432/db`), shared by any
    number of receiver processes (extra `postgres`: asyncpg, so asyncio only; on trio it raises `RuntimeError`).

    - `table` ("fota_inbox"): the prefix of every table it uses (`<table>` and `<table>_dedup`). They are created
      on first use (safe when replicas start together); with `create=False` nothing is created, and every step
      raises `InboxNotFoundError` where they do not exist (`fota-callbacks inbox migrate` creates them; `schema()`
      is their DDL).
    - `put` commits the body before it returns, its dedup key in the same statement (timed by the inbox's
      `clock`, not the database's); puts arriving together share one statement and one commit. Then it wakes
      idle workers anywhere with `NOTIFY`; workers `LISTEN`, and also look every `poll_interval`.
    - Workers claim batches with `FOR UPDATE SKIP LOCKED` and record outcomes and the next claims in one
      transaction; a claim is renewed while its handler runs and taken over `claim_idle` seconds after a
      worker stopped renewing it.
    - `run(handler, transactional=True)`: see `run`: the handler's own writes commit with the entry's completion.
    - `pool_size` (10): connections for puts and the worker's steps; `timeout` (10 s): the longest a connection
      attempt or one of the inbox's own statements may take before the step raises `InboxUnavailableError`.

    Other options: see `BaseInbox`. Every database failure is raised as `InboxUnavailableError` naming the table,
    host and cause, never the password.
    """

    def __init__(
        self,
        dsn: str,
        *,
        table: str = "fota_inbox",
        pool_size: int = 10,
        timeout: float = 10.0,
        **options: Unpack[InboxOptions],
    ) -> None:
        super().__init__(**options)
        self.table = _identifier(table)
        self._dsn = _check_dsn(dsn)
        self._where = _where(dsn)
        password = urlsplit(dsn).password or ""
        self._secrets = {secret for secret in (password, unquote(password)) if secret}
        self.pool_size = positive_int(pool_size, "pool_size")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < math.inf:
            raise InvalidArgumentError("timeout", f"expected a positive number of seconds, got {timeout!r}")
        self.timeout = float(timeout)
        try:
            import asyncpg
        except ImportError as exc:
            raise ImportError("PostgresInbox needs asyncpg: pip install 'fota-callbacks[postgres]'") from exc
        self._asyncpg = asyncpg
        self._errors: tuple[type[BaseException], ...] = (
            asyncpg.PostgresError,
            asyncpg.InterfaceError,
            OSError,
            asyncio.TimeoutError,
        )
        self._sql = _Statements(self.table)
        self._pool: asyncpg.Pool[Any] | None = None
        self._opening: asyncio.Lock | None = None
        self._schema_ready = False
        self._closed = False
        self._listener: asyncpg.Connection[Any] | None = None
        self._listen_retry_at = 0.0
        self._notifier: asyncpg.Connection[Any] | None = None
        self._announcer: asyncio.Task[None] | None = None
        self._announce_wanted = False
        self._queued: list[_Put] = []
        self._writing: asyncio.Lock | None = None
        self._transactional = False
        self._handler_pool: asyncpg.Pool[Any] | None = None
        self._handler_pool_size = 1

    def __repr__(self) -> str:
        return f"PostgresInbox(table={self.table!r}, at={self._where!r})"

    @staticmethod
    def schema(table: str = "fota_inbox") -> str:
        """The DDL of the inbox `table` (see the module function `schema`)."""
        return schema(table)

    async def migrate(self) -> bool:
        """Create this inbox's tables where they are missing, whatever `create` says (what `fota-callbacks inbox
        migrate` does); True when it created them, False when they were there. Safe to run from several places."""
        self._require_asyncio()
        self._closed = False  # a closed inbox used again opens its pool again
        try:
            pool = await self._open()
            async with pool.acquire(timeout=self.timeout) as connection:
                created = await self._create_tables(connection)
        except self._errors as exc:
            raise InboxUnavailableError(self._failure(exc)) from exc
        self._schema_ready = True
        return created

    # --- connections --------------------------------------------------------------------------------------------

    def _require_asyncio(self) -> None:
        library = sniffio.current_async_library()
        if library != "asyncio":
            raise RuntimeError(f"PostgresInbox runs on asyncio only (asyncpg), not on {library}")

    def _failure(self, exc: BaseException) -> str:
        text = f"the Postgres inbox {self.table!r} at {self._where} failed: {type(exc).__name__}: {exc}"
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    async def _call(self, step: Callable[[_Pooled], Awaitable[_T]]) -> _T:
        """Run `step` on a pooled connection; every database failure becomes `InboxUnavailableError`."""
        self._require_asyncio()
        self._closed = False  # a closed inbox used again opens its pool again
        try:
            return await self._on_connection(step)
        except self._asyncpg.UndefinedTableError:
            # The tables went away under a running inbox (dropped, another database restored): make them again
            # when this inbox may create, else say there is no inbox.
            self._schema_ready = False
            if not self.create:
                raise self._not_found() from None
            try:
                return await self._on_connection(step)
            except self._errors as again:
                raise InboxUnavailableError(self._failure(again)) from again
        except self._errors as exc:
            raise InboxUnavailableError(self._failure(exc)) from exc

    async def _on_connection(self, step: Callable[[_Pooled], Awaitable[_T]]) -> _T:
        pool = await self._open()
        async with pool.acquire(timeout=self.timeout) as connection:
            if not self._schema_ready:
                await self._ensure_schema(connection)
            return await step(connection)

    async def _open(self) -> asyncpg.Pool[Any]:
        if self._pool is not None:
            return self._pool
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._pool is None:
                # The inbox's own statements leave no session state behind (transaction-scoped locks, no SET, no
                # LISTEN on pooled connections): the pool's reset on every release would be a round trip for nothing.
                self._pool = await self._connect_pool(self.pool_size, command_timeout=self.timeout, reset=_no_reset)
        return self._pool

    async def _connect_pool(
        self, size: int, *, command_timeout: float | None, reset: Callable[[Any], Awaitable[None]] | None = None
    ) -> asyncpg.Pool[Any]:
        pool = self._asyncpg.create_pool(
            self._dsn, min_size=1, max_size=size, timeout=self.timeout, command_timeout=command_timeout, reset=reset
        )
        try:
            await pool
        except BaseException:
            pool.terminate()
            raise
        return pool

    async def _ensure_schema(self, connection: _Pooled) -> None:
        if not await connection.fetchval(self._sql.exists, self.table, f"{self.table}_dedup"):
            if not self.create:
                raise self._not_found()
            await self._create_tables(connection)
        self._schema_ready = True

    async def _create_tables(self, connection: _Pooled) -> bool:
        async with connection.transaction():
            # Replicas starting together: CREATE ... IF NOT EXISTS alone races on the catalog's unique keys, and on
            # existing tables it still takes locks that deadlock with puts: create only what is missing, one
            # replica at a time.
            await connection.execute(self._sql.lock, _lock_key(self.table, "schema"))
            if await connection.fetchval(self._sql.exists, self.table, f"{self.table}_dedup"):
                return False
            await connection.execute(schema(self.table))
        return True

    def _not_found(self) -> InboxNotFoundError:
        return InboxNotFoundError(
            f"there is no Postgres inbox {self.table!r} at {self._where} (no tables {self.table} and "
            f"{self.table}_dedup): `fota-callbacks inbox migrate --postgres DSN --table {self.table}` creates them"
        )

    # --- storing ------------------------------------------------------------------------------------------------

    async def _store(self, body: bytes, key: bytes, now: float, trace: str | None) -> bool:
        put = _Put(body, key, now, trace)
        self._queued.append(put)
        if self._writing is None:
            self._writing = asyncio.Lock()
        async with self._writing:
            if put.stored is None and put.error is None:
                # Whoever gets the lock writes every put queued so far: one statement, one commit. Shielded: the
                # others wait on this write, and must get an answer even when this put's caller is cancelled.
                batch, self._queued = self._queued, []
                with anyio.CancelScope(shield=True):
                    await self._write(batch)
        if put.error is not None:
            raise put.error
        assert put.stored is not None  # every put of a batch is answered, stored or not, or gets its error
        return put.stored

    async def _write(self, batch: list[_Put]) -> None:
        try:
            await self._call(lambda connection: self._insert(connection, batch))
        except Exception as exc:
            for queued in batch:
                queued.error = exc
            return
        if any(queued.stored for queued in batch):
            self._announce()

    async def _insert(self, connection: _Pooled, batch: list[_Put]) -> None:
        columns = [put.body for put in batch], [put.now for put in batch], [put.trace for put in batch]
        if not self.dedup_window:
            await connection.execute(self._sql.put, *columns)
            for put in batch:
                put.stored = True
            return
        first: dict[bytes, _Put] = {}
        for put in batch:
            first.setdefault(put.key, put)  # an identical body twice in one batch: the later one is a duplicate
        unique = list(first.values())
        rows = await connection.fetch(
            self._sql.put_once,
            [put.body for put in unique],
            [put.now for put in unique],
            [put.trace for put in unique],
            [put.key for put in unique],
            self.dedup_window,
        )
        fresh = {bytes(row[0]) for row in rows}
        for put in batch:
            put.stored = first[put.key] is put and put.key in fresh

    def _announce(self) -> None:
        """Wake idle workers in every process with a NOTIFY, after the put that asks has committed.

        NOTIFY in the put's own transaction would serialise every put's commit (PostgreSQL holds a global lock from
        queueing a notification until its commit is flushed): puts would lose group commit. So one NOTIFY is in
        flight at a time, on a connection of its own without a synchronous commit, and the puts that commit
        meanwhile share the next one.
        """
        self._announce_wanted = True
        if self._announcer is None or self._announcer.done():
            self._announcer = asyncio.get_running_loop().create_task(self._announce_loop())

    async def _announce_loop(self) -> None:
        while self._announce_wanted and not self._closed:
            self._announce_wanted = False
            try:
                if self._notifier is None or self._notifier.is_closed():
                    self._notifier = await self._asyncpg.connect(
                        self._dsn, timeout=self.timeout, server_settings={"synchronous_commit": "off"}
                    )
                await self._notifier.execute(self._sql.notify, self.table)
            except Exception:
                # Not worth a failed put (it is committed): workers still look every poll_interval. Whatever the
                # failure left the connection in (a server gone mid-statement), it is dropped, not reused.
                notifier, self._notifier = self._notifier, None
                if notifier is not None:
                    notifier.terminate()
                return

    # --- the worker's steps -------------------------------------------------------------------------------------

    async def _exchange(self, outcomes: Sequence[Outcome], now: float, limit: int) -> list[Claim]:
        if limit and self._worker.wake is not None:
            await self._keep_listening()

        if not outcomes and not limit:
            return []
        token = secrets.token_hex(8)

        async def exchange(connection: _Pooled) -> list[Any]:
            if not outcomes:  # one statement is atomic by itself: no BEGIN and COMMIT round trips
                return await connection.fetch(self._sql.claim, now, limit, token, self.claim_idle)
            if not limit:
                await connection.execute(self._sql.settle, *self._outcome_columns(outcomes))
                return []
            async with connection.transaction():
                await connection.execute(self._sql.settle, *self._outcome_columns(outcomes))
                return await connection.fetch(self._sql.claim, now, limit, token, self.claim_idle)

        rows = await self._call(exchange)
        return sorted(
            (Claim(row[0], row[1], row[2], token, row[3], row[4], row[5]) for row in rows), key=lambda claim: claim.id
        )

    def _outcome_columns(self, outcomes: Sequence[Outcome]) -> list[Any]:
        return [
            [outcome.claim.id for outcome in outcomes],
            [outcome.claim.token for outcome in outcomes],
            [outcome.kind for outcome in outcomes],
            [outcome.error for outcome in outcomes],
            [outcome.due for outcome in outcomes],
            [outcome.at for outcome in outcomes],
            [outcome.claim.attempts for outcome in outcomes],
            self.retain_done == 0,
        ]

    async def _hold(self, keyed: Sequence[tuple[Claim, str]], now: float) -> set[int]:
        ids = [claim.id for claim, _ in keyed]
        tokens = [claim.token for claim, _ in keyed]

        async def hold(connection: _Pooled) -> set[int]:
            async with connection.transaction():
                # One keying at a time per inbox: each sees the keys the one before it stored (a new snapshot per
                # statement), so two workers keying messages of one device never both go first.
                await connection.execute(self._sql.lock, _lock_key(self.table, "hold"))
                await connection.execute(self._sql.key, ids, tokens, [key for _, key in keyed])
                rows = await connection.fetch(self._sql.hold_back, now, ids, tokens)
            return {row[0] for row in rows}

        return await self._call(hold)

    async def _renew(self, claims: Sequence[Claim], now: float) -> None:
        ids, tokens = [claim.id for claim in claims], [claim.token for claim in claims]
        await self._call(lambda connection: connection.execute(self._sql.renew, now, self.claim_idle, ids, tokens))

    async def _purge(self, now: float) -> None:
        async def purge(connection: _Pooled) -> None:
            await connection.execute(self._sql.purge_done, now - self.retain_done)
            await connection.execute(self._sql.purge_keys, now)

        await self._call(purge)

    # --- for operators ------------------------------------------------------------------------------------------

    async def _counts(self, now: float) -> InboxStats:
        stale = stale_after(self.claim_idle)
        row = await self._call(lambda connection: connection.fetchrow(self._sql.counts, now, stale))
        assert row is not None
        pending, dead, done, in_flight, oldest, stale_count, first_lapse = row
        return InboxStats(
            pending=pending,
            dead=dead,
            done=done,
            in_flight=in_flight,
            oldest_pending_age=max(0.0, now - oldest) if oldest is not None else 0.0,
            stale=stale_count,
            next_takeover=None if first_lapse is None else first_lapse - now,
        )

    async def _dead(self) -> list[InboxEntry]:
        rows = await self._call(lambda connection: connection.fetch(self._sql.dead))
        return [InboxEntry(row[0], row[1], row[2], row[3], utc(row[4])) for row in rows]

    async def _revive(self, id: int | None, now: float) -> int:
        return _affected(await self._call(lambda connection: connection.execute(self._sql.revive, now, id)))

    async def _handled(self, since: float, until: float | None, after: int, limit: int) -> list[tuple[int, bytes]]:
        rows = await self._call(lambda connection: connection.fetch(self._sql.handled, since, until, after, limit))
        return [(row[0], row[1]) for row in rows]

    async def _requeue(self, ids: Sequence[int], now: float) -> int:
        chosen = list(ids)
        return _affected(await self._call(lambda connection: connection.execute(self._sql.requeue, now, chosen)))

    async def _probe(self) -> None:
        """A read-only check (no write, no fsync): the server answers, is not a standby, and takes writes."""
        row = await self._call(lambda connection: connection.fetchrow(self._sql.probe))
        assert row is not None
        if row[0] or row[1]:
            raise InboxUnavailableError(
                f"the Postgres inbox {self.table!r} at {self._where} is read-only now "
                f"({'a standby in recovery' if row[0] else 'transaction_read_only is on'})"
            )

    async def _close(self) -> None:
        """Close the connections (a later use opens them again)."""
        self._closed = True
        pool, self._pool = self._pool, None
        announcer = self._announcer
        if announcer is not None and not announcer.done():
            # Its one NOTIFY (or the connection for it) ends within `timeout`: let it, rather than cut a connect
            # half-way (asyncpg would report the lost connection to a future nobody awaits).
            with anyio.move_on_after(self.timeout, shield=True):
                await asyncio.wait({announcer})
            announcer.cancel()
        notifier, listener, self._notifier, self._listener = self._notifier, self._listener, None, None
        for connection in (notifier, listener):
            await self._close_connection(connection)
        if pool is not None:
            await _close_pool(pool, self.timeout)

    @staticmethod
    async def _close_connection(connection: asyncpg.Connection[Any] | None) -> None:
        if connection is not None and not connection.is_closed():
            with anyio.move_on_after(5, shield=True) as scope, contextlib.suppress(Exception):
                await connection.close()  # one that fails to close is dropped all the same
            if scope.cancelled_caught:
                connection.terminate()

    # --- the worker ---------------------------------------------------------------------------------------------

    async def run(
        self,
        handler: InboxHandler | TransactionalHandler,
        *,
        concurrency: int = 1,
        max_attempts: int = 10,
        order_key: OrderKey | None = None,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        transactional: bool = False,
    ) -> None:
        """The worker, as `BaseInbox.run`, on asyncio only; idle, it wakes as soon as any process puts.

        `transactional=True`: the handler is `async def handler(message, connection)`, where `connection` is an
        `asyncpg.Connection` (from a pool of `concurrency` connections of its own) inside a transaction that also
        marks the entry done, committed after the handler returns and only while this worker's claim still holds
        (else everything is rolled back). What the handler writes on `connection` (`await
        connection.execute(sql, *args)`) is therefore committed exactly once, whatever is killed when; a handler
        that raises has its writes rolled back and is retried like any failure. Its effects outside the database
        (an HTTP call) are still at-least-once.
        """
        self._require_asyncio()
        if not isinstance(transactional, bool):
            raise InvalidArgumentError("transactional", f"expected True or False, got {transactional!r}")
        self._handler_pool_size = positive_int(concurrency, "concurrency")
        self._transactional = transactional
        try:
            await super().run(
                cast(InboxHandler, handler),
                concurrency=concurrency,
                max_attempts=max_attempts,
                order_key=order_key,
                tracer_provider=tracer_provider,
                meter_provider=meter_provider,
            )
        finally:
            self._transactional = False
            handler_pool, listener = self._handler_pool, self._listener
            self._handler_pool = self._listener = None
            await self._close_connection(listener)
            if handler_pool is not None:
                await _close_pool(handler_pool, self.timeout)

    async def _handle(self, handler: InboxHandler, message: CallbackMessage, claim: Claim) -> bool:
        if not self._transactional:
            return await super()._handle(handler, message, claim)
        pool = await self._handler_connections()
        async with pool.acquire(timeout=self.timeout) as connection, connection.transaction():
            await cast(TransactionalHandler, handler)(message, connection)
            finished = await connection.fetchval(
                self._sql.finish, claim.id, claim.token, self._clock(), self.retain_done == 0
            )
            if finished is None:
                raise InboxUnavailableError(
                    f"the claim on inbox entry {claim.id} lapsed and another worker took it over: this handling's "
                    "writes were rolled back"
                )
        return True

    async def _handler_connections(self) -> asyncpg.Pool[Any]:
        if self._handler_pool is None:
            if self._opening is None:
                self._opening = asyncio.Lock()
            async with self._opening:
                if self._handler_pool is None:
                    # No statement timeout: the handler's statements take as long as they take.
                    self._handler_pool = await self._connect_pool(self._handler_pool_size, command_timeout=None)
        return self._handler_pool

    async def _keep_listening(self) -> None:
        """LISTEN on a connection of its own while a worker runs here; one that broke is made again, at most
        once a second (meanwhile the worker polls)."""
        if self._listener is not None and not self._listener.is_closed():
            return
        now = time.monotonic()
        if now < self._listen_retry_at:
            return
        self._listen_retry_at = now + 1.0
        # Shielded (each step is bounded by `timeout`): a connect cut half-way by the worker's cancellation leaves
        # asyncpg a future nobody awaits, which the event loop then reports as an error.
        with anyio.CancelScope(shield=True):
            try:
                listener = await self._asyncpg.connect(self._dsn, timeout=self.timeout)
                await listener.add_listener(self.table, self._notified)
            except self._errors:
                return
            self._listener = listener

    def _notified(self, *_: object) -> None:
        wake = self._worker.wake
        if wake is not None:
            wake.set()
