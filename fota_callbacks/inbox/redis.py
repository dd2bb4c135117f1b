"""`RedisInbox`: Redis Streams and a consumer group, so any number of receiver replicas share one queue.

Layout, all under the stream's name as prefix: the stream holds one small record per delivery (`entry` = the
entry's id); hashes `:body`, `:received`, `:attempts`, `:error` hold each entry's data; sorted sets `:retry`
(score: when due) and `:dead`; `:seq` numbers entries and `:done` counts them; `:dedup:<sha256>` keys expire
after `dedup_window`. Each change of state is one Lua script, so it is atomic and a worker that lost its claim
(`XAUTOCLAIM` by another after `claim_idle`) cannot record an outcome twice.

redis-py's asyncio client runs on asyncio only; on trio every method raises `RuntimeError`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import sniffio

from .._errors import InvalidArgumentError
from ._base import BaseInbox, Claim, InboxEntry, InboxHandler, InboxOptions, InboxStats, InboxUnavailableError, utc

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["RedisInbox"]

_T = TypeVar("_T")

# KEYS: dedup key, seq, body, received, attempts, stream. ARGV: body, dedup window (ms), now.
_PUT = """
if tonumber(ARGV[2]) > 0 and not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[2]) then return 0 end
local id = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[3], id, ARGV[1])
redis.call('HSET', KEYS[4], id, ARGV[3])
redis.call('HSET', KEYS[5], id, 0)
redis.call('XADD', KEYS[6], '*', 'entry', id)
return id
"""

# KEYS: stream, retry, body, attempts. ARGV: group, consumer, claim idle (ms), now.
# Due retries go back into the stream; then an entry a stopped worker held too long; else a new one.
_CLAIM = """
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[4], 'LIMIT', 0, 100)) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('XADD', KEYS[1], '*', 'entry', id)
end
local message = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], '0-0', 'COUNT', 1)[2][1]
if not message then
  local read = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', 1, 'STREAMS', KEYS[1], '>')
  if not read then return false end
  message = read[1][2][1]
end
local id = message[2][2]
return {message[1], id, redis.call('HGET', KEYS[3], id), redis.call('HGET', KEYS[4], id)}
"""

# KEYS: stream, retry, dead, body, received, attempts, error, done. ARGV: group, delivery, entry, outcome,
# attempts, error, due. Nothing happens unless this delivery was still pending (XACK answers 1).
_SETTLE = """
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('XDEL', KEYS[1], ARGV[2])
local id = ARGV[3]
if ARGV[4] == 'done' then
  for i = 4, 7 do redis.call('HDEL', KEYS[i], id) end
  redis.call('INCR', KEYS[8])
else
  redis.call('HSET', KEYS[6], id, ARGV[5])
  redis.call('HSET', KEYS[7], id, ARGV[6])
  if ARGV[4] == 'retry' then redis.call('ZADD', KEYS[2], ARGV[7], id) else redis.call('ZADD', KEYS[3], id, id) end
end
return 1
"""

# KEYS: stream. ARGV: group, consumer, delivery, idle (ms). Sets the delivery's idle time (0: renews the claim;
# past claim_idle: gives it back), only while this consumer still holds it: a lapsed claim is not taken back.
_TOUCH = """
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)[1]
if not pending or pending[2] ~= ARGV[2] then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'IDLE', ARGV[4], 'JUSTID')
return 1
"""

# KEYS: stream. ARGV: group, consumer. A closing consumer leaves the group unless it still holds entries.
_LEAVE = """
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) == 0 then
  redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
end
return 1
"""

# KEYS: dead, attempts, stream. ARGV: the entry id, or '' for all.
_REVIVE = """
local ids = ARGV[1] == '' and redis.call('ZRANGE', KEYS[1], 0, -1) or {ARGV[1]}
local revived = 0
for _, id in ipairs(ids) do
  if redis.call('ZREM', KEYS[1], id) == 1 then
    redis.call('HSET', KEYS[2], id, 0)
    redis.call('XADD', KEYS[3], '*', 'entry', id)
    revived = revived + 1
  end
end
return revived
"""


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class RedisInbox(BaseInbox):
    """An inbox in Redis at `url` (`redis://host:6379/0`) that many receiver processes share (extra `redis`).

    Entries are durable as your Redis is: run it with `appendonly yes` and `appendfsync always` for a body to be
    on disk before `put` returns (`everysec` may lose the last second on a power cut). `stream` names the stream
    and prefixes every other key; `group` is the consumer group all workers join; `consumer` names this process
    in it (default: host, pid and a random suffix). An entry whose worker stopped is taken over by another after
    `claim_idle` seconds; a live worker renews its claim while the handler runs. Retried entries join the end of
    the queue. asyncio only (redis-py's asyncio client). Other options: see `fota_callbacks.inbox`.
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
        for name, value in (("url", url), ("stream", stream), ("group", group)):
            if not isinstance(value, str) or not value:
                raise InvalidArgumentError(name, f"expected a non-empty string, got {value!r}")
        try:
            import redis.asyncio
            import redis.exceptions
        except ImportError as exc:
            raise ImportError("RedisInbox needs redis-py: pip install 'fota-callbacks[redis]'") from exc
        try:
            self._redis = redis.asyncio.Redis.from_url(
                url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout
            )
        except ValueError as exc:
            raise InvalidArgumentError("url", str(exc)) from None
        self._errors = (redis.exceptions.RedisError, OSError)
        self.stream, self.group = stream, group
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self._keys = {name: f"{stream}:{name}" for name in ("seq", "body", "received", "attempts", "error")}
        self._keys.update(retry=f"{stream}:retry", dead=f"{stream}:dead", done=f"{stream}:done")
        self._put_script = self._redis.register_script(_PUT)
        self._claim_script = self._redis.register_script(_CLAIM)
        self._settle_script = self._redis.register_script(_SETTLE)
        self._revive_script = self._redis.register_script(_REVIVE)
        self._touch_script = self._redis.register_script(_TOUCH)
        self._leave_script = self._redis.register_script(_LEAVE)
        self._group_ready = False
        self._closed = False

    def __repr__(self) -> str:
        return f"RedisInbox(stream={self.stream!r}, group={self.group!r}, consumer={self.consumer!r})"

    def _require_asyncio(self) -> None:
        library = sniffio.current_async_library()
        if library != "asyncio":
            raise RuntimeError(f"RedisInbox runs on asyncio only (redis-py's asyncio client), not on {library}")

    async def run(self, handler: InboxHandler, *, concurrency: int = 1, max_attempts: int = 10) -> None:
        """The worker, as `BaseInbox.run`; on asyncio only."""
        self._require_asyncio()
        await super().run(handler, concurrency=concurrency, max_attempts=max_attempts)

    async def _call(self, operation: Callable[[], Awaitable[_T]]) -> _T:
        self._require_asyncio()
        if self._closed:
            raise InboxUnavailableError(f"the Redis inbox {self.stream!r} is closed")
        try:
            if not self._group_ready:
                await self._create_group()
            return await operation()
        except self._errors as exc:
            raise InboxUnavailableError(f"the Redis inbox {self.stream!r} failed: {type(exc).__name__}: {exc}") from exc

    async def _create_group(self) -> None:
        try:
            # From the stream's start: entries put before any worker ever ran are delivered too.
            await self._redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except self._errors as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    def _entry_keys(self) -> list[str]:
        return [self._keys[name] for name in ("body", "received", "attempts", "error")]

    # --- storing and the worker's steps -------------------------------------------------------------------------------

    async def _store(self, body: bytes, key: bytes, now: float) -> bool:
        keys = [f"{self.stream}:dedup:{key.hex()}", self._keys["seq"], *self._entry_keys()[:3], self.stream]
        window_ms = round(self.dedup_window * 1000)
        stored = await self._call(lambda: self._put_script(keys=keys, args=[body, window_ms, repr(now)]))
        return bool(stored)

    async def _claim(self, now: float) -> Claim | None:
        keys = [self.stream, self._keys["retry"], self._keys["body"], self._keys["attempts"]]
        args: list[str | int] = [self.group, self.consumer, round(self.claim_idle * 1000), repr(now)]
        found = await self._call(lambda: self._claim_script(keys=keys, args=args))
        if not found:
            return None
        delivery, id, body, attempts = found
        return Claim(id=int(id), body=body or b"", attempts=int(attempts or 0), token=_text(delivery))

    async def _finish(self, claim: Claim, outcome: str, error: str = "", due: float = 0.0) -> None:
        keys = [self.stream, self._keys["retry"], self._keys["dead"], *self._entry_keys(), self._keys["done"]]
        args: list[str | int] = [self.group, claim.token, claim.id, outcome, claim.attempts + 1, error, repr(due)]
        await self._call(lambda: self._settle_script(keys=keys, args=args))

    async def _complete(self, claim: Claim) -> None:
        await self._finish(claim, "done")

    async def _reschedule(self, claim: Claim, error: str, due: float) -> None:
        await self._finish(claim, "retry", error, due)

    async def _bury(self, claim: Claim, error: str) -> None:
        await self._finish(claim, "dead", error)

    async def _touch(self, claim: Claim, idle_ms: int) -> None:
        args: list[str | int] = [self.group, self.consumer, claim.token, idle_ms]
        await self._call(lambda: self._touch_script(keys=[self.stream], args=args))

    async def _renew(self, claim: Claim, now: float) -> None:
        await self._touch(claim, 0)  # XAUTOCLAIM measures idle time: 0 starts the claim over

    async def _release(self, claim: Claim) -> None:
        await self._touch(claim, round(self.claim_idle * 1000) + 1)  # idle long enough: the next XAUTOCLAIM takes it

    # --- for operators ------------------------------------------------------------------------------------------------

    async def stats(self) -> InboxStats:
        """Counts of pending (in the stream or waiting for a retry), dead and handled entries."""

        async def count() -> InboxStats:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.xlen(self.stream)
                pipe.zcard(self._keys["retry"])
                pipe.zcard(self._keys["dead"])
                pipe.get(self._keys["done"])
                queued, retrying, dead, done = await pipe.execute()
            return InboxStats(pending=queued + retrying, dead=dead, done=int(done or 0))

        return await self._call(count)

    async def dead_letters(self) -> list[InboxEntry]:
        """The dead letters, oldest first."""

        async def read() -> list[InboxEntry]:
            ids = [int(_text(id)) for id in await self._redis.zrange(self._keys["dead"], 0, -1)]
            async with self._redis.pipeline(transaction=False) as pipe:
                for id in ids:
                    for key in self._entry_keys():
                        pipe.hget(key, str(id))
                values = await pipe.execute()
            rows = [values[i : i + 4] for i in range(0, len(values), 4)]
            return [
                InboxEntry(
                    id=id,
                    body=body or b"",
                    attempts=int(attempts or 0),
                    last_error=_text(error) if error is not None else None,
                    received_at=utc(float(received or 0)),
                )
                for id, (body, received, attempts, error) in zip(ids, rows, strict=True)
            ]

        return await self._call(read)

    async def retry_dead(self, id: int | None = None) -> int:
        """Put dead letter `id` (or every one) back in the queue with its attempts reset; how many were."""
        keys = [self._keys["dead"], self._keys["attempts"], self.stream]
        revived = int(await self._call(lambda: self._revive_script(keys=keys, args=["" if id is None else id])))
        if revived:
            self._wake()
        return revived

    async def aclose(self) -> None:
        """Leave the consumer group (unless this consumer still holds entries) and close the connections."""
        if self._closed:
            return
        self._closed = True
        if self._group_ready and sniffio.current_async_library() == "asyncio":
            with contextlib.suppress(*self._errors):  # best effort: an unreachable Redis must not fail a shutdown
                await self._leave_script(keys=[self.stream], args=[self.group, self.consumer])
        await self._redis.aclose()
