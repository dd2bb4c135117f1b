"""`RedisInbox`: Redis Streams and one consumer group, so any number of receiver replicas share one queue.

Layout, every key named after the stream (`S` below, `fota:callbacks` by default):

- `S`: the stream; one record per entry, with the id `0-<entry id>`, fields `body`, `received` (the inbox clock's
  seconds) and `trace` (when traced). A record stays while its entry is pending, dead, or done and kept.
- The consumer group (`fota-callbacks`): `XREADGROUP COUNT n` hands new records out in batches; its pending list
  holds exactly the claimed entries, each with the consumer that holds it (`XPENDING`, `XINFO CONSUMERS`).
- `S:seq` numbers the entries; `S:delivered` is the last record ever handed out (a group made again after Redis
  lost it starts there).
- Sorted sets of entry ids: `S:pending` (every entry not done or dead; score: when received), `S:ready` (handed out
  before and due now: released, or a retry whose time came; score: id), `S:retry` (score: when due), `S:held`
  (parked behind an older pending entry of the same order key until it is done or dead), `S:claims` (score: until
  when the claim holds), `S:dead` (score: id), `S:done` (kept for `retain_done`; score: when handled),
  `S:dedup` (sha256 of a body -> until when an identical body is a duplicate), `S:keyed` (the pending entries
  whose order key is known, sorted by key then id).
- Hashes by entry id: `S:attempts`, `S:errors`, `S:order` (its order key, once a worker computed it), `S:tokens`
  and `S:renewed` (the claim holding it: its token, when it was last renewed).

Each storage step is one Lua script (`_redis_scripts.py`): atomic, and one round trip for a batch. Every time
(dedup, backoff, claims, retention, age) is the inbox's `clock`, never Redis's: a claim lapses when `S:claims`
says so on that clock, and a live worker takes the entry over with `XCLAIM` (what `XAUTOCLAIM` does, but on the
server's idle times). A store that lost its stream or group (FLUSHALL, a restart without persistence) gets both
made again by the next put or worker step. redis-py's asyncio client runs on asyncio only; on trio every method
raises `RuntimeError`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import re
import secrets
import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sniffio

from .._errors import InvalidArgumentError
from . import _redis_scripts as lua
from ._base import BaseInbox, InboxOptions, stale_after
from ._records import (
    Claim,
    InboxEntry,
    InboxNotFoundError,
    InboxStats,
    InboxUnavailableError,
    Outcome,
    utc,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["RedisInbox"]

logger = logging.getLogger("fota_callbacks.inbox")

PURGE_BATCH = 500
"""Done entries deleted per script call: a long backlog does not block Redis in one call."""
REPLAY_SCAN = 1000
"""Stream records read per script call when looking for handled entries to replay."""
_SCRIPT_SUFFIX = re.compile(r"\s*script: \w+, on @user_script:\d+\.?\s*$")


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("utf-8", "surrogatepass")


class RedisInbox(BaseInbox):
    """An inbox in Redis at `url` (`redis://host:6379/0`) that many receiver processes share (extra `redis`).

    Entries are as durable as your Redis: run it with `appendonly yes` and `appendfsync always` for a body to be on
    disk before `put` returns (`everysec` may lose the last second on a power cut). `stream` names the stream and
    prefixes every other key; `group` is the consumer group every worker joins; `consumer` names this process in
    it (default: host, pid and a random suffix). Workers claim entries in batches, oldest first (a retried entry
    keeps its place); an entry whose worker stopped is taken over by another `claim_idle` seconds after its claim
    was last renewed. `socket_timeout` (10 s) bounds each call to Redis. asyncio only (redis-py's asyncio client).
    Other options: see `BaseInbox`.
    """

    def __init__(
        self,
        url: str,
        *,
        stream: str = "fota:callbacks",
        group: str = "fota-callbacks",
        consumer: str | None = None,
        socket_timeout: float = 10.0,
        **options: Unpack[InboxOptions],
    ) -> None:
        super().__init__(**options)
        for name, value in (("url", url), ("stream", stream), ("group", group), ("consumer", consumer or "-")):
            if not isinstance(value, str) or not value:
                raise InvalidArgumentError(name, f"expected a non-empty string, got {value!r}")
        if isinstance(socket_timeout, bool) or not isinstance(socket_timeout, (int, float)):
            raise InvalidArgumentError("socket_timeout", f"expected seconds, got {socket_timeout!r}")
        if not math.isfinite(socket_timeout) or socket_timeout <= 0:
            raise InvalidArgumentError("socket_timeout", f"expected a positive number of seconds, got {socket_timeout}")
        self._redis = _connect(url, float(socket_timeout))
        import redis.exceptions

        self._errors = (redis.exceptions.RedisError, OSError)
        self._response_error = redis.exceptions.ResponseError
        self.stream, self.group = stream, group
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self._where = _address(self._redis)
        self._keys = [stream, *(f"{stream}:{name}" for name in lua.KEY_NAMES)]
        self._put_keys = [stream, *(f"{stream}:{name}" for name in ("seq", "pending", "dedup", "delivered", "ready"))]
        register = self._redis.register_script
        self._scripts = {
            name: register(getattr(lua, name))
            for name in ("PUT", "EXCHANGE", "HOLD", "RENEW", "PURGE", "COUNTS", "DEAD", "REVIVE", "REQUEUE")
        }
        self._scripts.update(HANDLED=register(lua.HANDLED), PROBE=register(lua.PROBE), LEAVE=register(lua.LEAVE))
        self._salt = secrets.token_hex(8)  # claim tokens stay unique across processes and a Redis that was emptied
        self._minted = 0
        self._closed = False

    def __repr__(self) -> str:
        return f"RedisInbox(stream={self.stream!r}, group={self.group!r}, consumer={self.consumer!r})"

    def _check_runs_here(self) -> None:
        """The worker runs on asyncio only (redis-py's asyncio client)."""
        _require_asyncio()

    # --- calling Redis --------------------------------------------------------------------------------------------

    @property
    def _head(self) -> list[str | bytes | int]:
        """The ARGV every script but PUT starts with."""
        return [self.group, "1" if self.create else "0", self.consumer]

    async def _run(self, script: str, args: Sequence[str | bytes | int], keys: list[str] | None = None) -> Any:
        _require_asyncio()
        self._closed = False  # a closed inbox used again: redis-py connects again, and the next close leaves again
        task = asyncio.current_task()
        cancelling = _cancelling(task)
        try:
            reply = await self._scripts[script](keys=self._keys if keys is None else keys, args=args)
        except self._response_error as exc:
            reason = _SCRIPT_SUFFIX.sub("", str(exc))
            if reason.startswith(lua.NO_INBOX + " "):
                where = f"there is no Redis inbox {self.stream!r} at {self._where}"
                raise InboxNotFoundError(f"{where}: {reason.removeprefix(lua.NO_INBOX + ' ')}") from None
            raise InboxUnavailableError(
                f"the Redis inbox {self.stream!r} failed: {type(exc).__name__}: {reason}"
            ) from exc
        except self._errors as exc:
            raise InboxUnavailableError(f"the Redis inbox {self.stream!r} failed: {type(exc).__name__}: {exc}") from exc
        if _cancelling(task) > cancelling:
            # redis-py (8.2) can return normally from a call the task was cancelled in (task.cancel()): asyncio
            # raises a cancellation once, so a worker that was told to stop would run on for ever.
            raise asyncio.CancelledError
        return reply

    def _mint(self) -> str:
        """A prefix for the tokens of one exchange's claims, never made twice."""
        self._minted += 1
        return f"{self._salt}.{self._minted}"

    # --- storing and the worker's steps ---------------------------------------------------------------------------

    async def _store(self, body: bytes, key: bytes, now: float, trace: str | None) -> bool:
        until = repr(now + self.dedup_window) if self.dedup_window else ""
        args = ["1" if self.create else "0", self.group, body, repr(now), key, until, trace or ""]
        return bool(await self._run("PUT", args, self._put_keys))

    async def _exchange(self, outcomes: Sequence[Outcome], now: float, limit: int) -> list[Claim]:
        retain = "1" if self.retain_done else "0"
        args = [*self._head, repr(now), limit, repr(now + self.claim_idle), retain, self._mint()]
        for outcome in outcomes:
            claim, at, due = outcome.claim, repr(outcome.at), repr(outcome.due)
            args += [outcome.kind, claim.id, claim.token, at, outcome.error or "", due, claim.attempts + 1]
        reply = await self._run("EXCHANGE", args)
        lost = int(reply[0])
        if lost:
            ids = ", ".join(id.decode() for id in reply[1 : 1 + lost])
            logger.error("FOTA inbox entries %s vanished from the Redis stream %r and were dropped", ids, self.stream)
        rows = reply[1 + lost :]
        return [
            Claim(
                id=int(rows[at]),
                body=rows[at + 1],
                attempts=int(rows[at + 2]),
                token=rows[at + 3].decode(),
                received_at=float(rows[at + 4]),
                order_key=_text(rows[at + 5]),
                trace=_text(rows[at + 6]),
            )
            for at in range(0, len(rows), 7)
        ]

    async def _hold(self, keyed: Sequence[tuple[Claim, str]], now: float) -> set[int]:
        args = [*self._head, repr(now)]
        for claim, key in keyed:
            args += [claim.id, claim.token, key.encode("utf-8", "surrogatepass")]
        return {int(id) for id in await self._run("HOLD", args)}

    async def _renew(self, claims: Sequence[Claim], now: float) -> None:
        args = [*self._head, repr(now), repr(now + self.claim_idle)]
        for claim in claims:
            args += [claim.id, claim.token]
        await self._run("RENEW", args)

    async def _purge(self, now: float) -> None:
        args = [*self._head, repr(now), repr(now - self.retain_done), round(self.claim_idle * 1000), PURGE_BATCH]
        while await self._run("PURGE", args) == PURGE_BATCH:
            pass

    # --- for operators ----------------------------------------------------------------------------------------------

    async def _counts(self, now: float) -> InboxStats:
        reply = await self._run("COUNTS", [*self._head, repr(now)])
        oldest = reply[3]
        in_flight, stale, takeover = 0, 0, None
        for at in range(4, len(reply), 3):
            until, renewed = float(reply[at + 1]), float(reply[at + 2])
            in_flight += 1
            if now - renewed > stale_after(until - renewed):  # the claim_idle of the worker holding it
                stale += 1
                takeover = until - now if takeover is None else min(takeover, until - now)
        return InboxStats(
            pending=int(reply[0]),
            dead=int(reply[1]),
            done=int(reply[2]),
            in_flight=in_flight,
            oldest_pending_age=0.0 if oldest is None else max(0.0, now - float(oldest)),
            stale=stale,
            next_takeover=takeover,
        )

    async def _dead(self) -> list[InboxEntry]:
        reply = await self._run("DEAD", self._head)
        return [
            InboxEntry(
                id=int(reply[at]),
                body=reply[at + 1],
                attempts=int(reply[at + 3]),
                last_error=_text(reply[at + 4]),
                received_at=utc(float(reply[at + 2])),
            )
            for at in range(0, len(reply), 5)
        ]

    async def _revive(self, id: int | None, now: float) -> int:
        return int(await self._run("REVIVE", [*self._head, "" if id is None else str(id)]))

    async def _handled(self, since: float, until: float | None, after: int, limit: int) -> list[tuple[int, bytes]]:
        found: list[tuple[int, bytes]] = []
        end = "" if until is None else repr(until)
        while len(found) < limit:
            reply = await self._run("HANDLED", [*self._head, repr(since), end, after, REPLAY_SCAN])
            found += [(int(reply[at]), reply[at + 1]) for at in range(1, len(reply), 2)]
            if reply[0] is None:
                break
            after = int(reply[0])
        return found[:limit]

    async def _requeue(self, ids: Sequence[int], now: float) -> int:
        return int(await self._run("REQUEUE", [*self._head, *ids]))

    async def _probe(self) -> None:
        """A write that changes nothing, after making sure the stream and its group are there: refused by a read-only
        replica (READONLY), a full Redis (OOM), a Redis that cannot write its files (MISCONF), an unreachable one."""
        await self._run("PROBE", self._head)

    async def _close(self) -> None:
        """Leave the consumer group (unless this consumer still holds entries) and close the connections."""
        if self._closed:
            return
        self._closed = True
        if sniffio.current_async_library() == "asyncio":
            try:  # best effort: an unreachable Redis must not fail a shutdown
                await self._scripts["LEAVE"](keys=[self.stream], args=[self.group, self.consumer])
            except self._errors as exc:
                logger.debug("the FOTA inbox consumer %r could not leave its group: %s", self.consumer, exc)
        await self._redis.aclose()


def _cancelling(task: asyncio.Task[Any] | None) -> int:
    """How many cancellations of `task` are pending (0 before Python 3.11, which does not count them)."""
    count = getattr(task, "cancelling", None)
    return 0 if count is None else int(count())


def _require_asyncio() -> None:
    library = sniffio.current_async_library()
    if library != "asyncio":
        raise RuntimeError(f"RedisInbox runs on asyncio only (redis-py's asyncio client), not on {library}")


def _connect(url: str, socket_timeout: float) -> Any:
    try:
        import redis.asyncio
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
    except ImportError as exc:
        raise ImportError("RedisInbox needs redis-py: pip install 'fota-callbacks[redis]'") from exc
    try:
        # One retry: a pooled connection Redis closed (a restart) is replaced at once. More would hold a put, and
        # the 503 the sender needs, for seconds while Redis is down.
        return redis.asyncio.Redis.from_url(
            url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout, retry=Retry(NoBackoff(), 1)
        )
    except ValueError as exc:
        raise InvalidArgumentError("url", str(exc)) from None


def _address(client: Any) -> str:
    """Where the inbox is, for messages: host, port and database, never the password in the URL."""
    settings = client.connection_pool.connection_kwargs
    if "path" in settings:
        return f"unix://{settings['path']}"
    return f"redis://{settings.get('host', 'localhost')}:{settings.get('port', 6379)}/{settings.get('db', 0)}"
