"""What every inbox shares: the protocol, the records it hands out, and the worker loop.

An implementation stores entries and moves them between states (pending, claimed by a worker, done, dead); the
loop here decides what happens to them: parse, hand to the handler, keep the claim alive, retry with backoff,
bury after too many failures, give the entry back when cancelled. Each storage primitive is one small method.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, TypedDict, TypeVar, runtime_checkable

import anyio
import attrs

from .._errors import FotaError, InvalidArgumentError
from .._logsafe import printable
from .._validation import positive_int
from ..callbacks import CallbackMessage, CallbackParseError, parse_callback_message

if TYPE_CHECKING:
    pass

logger = logging.getLogger("fota_callbacks.inbox")

InboxHandler = Callable[[CallbackMessage], Awaitable[object]]
"""`async def handler(message: CallbackMessage) -> None`; what it returns is ignored."""

_Self = TypeVar("_Self", bound="BaseInbox")
_InboxT = TypeVar("_InboxT", bound="Inbox")

MAX_ERROR_TEXT = 1000


class InboxUnavailableError(FotaError):
    """The inbox could not store or read entries (a read-only file, a full disk, an unreachable Redis).

    The callback router answers 503 to the sender when `put` raises it, so the sender retries.
    """


class InboxOptions(TypedDict, total=False):
    """The options every inbox takes as keyword arguments; see `BaseInbox`."""

    dedup_window: float
    retry_base: float
    retry_max: float
    claim_idle: float
    poll_interval: float
    clock: Callable[[], float]


@attrs.frozen
class InboxStats:
    """How many entries wait to be handled (`pending`, retries included), are dead letters, or were handled."""

    pending: int
    dead: int
    done: int


@attrs.frozen
class InboxEntry:
    """A stored callback body: a dead letter, as `dead_letters()` lists them.

    `attempts` counts the failed handlings; `last_error` is the last failure as printable ASCII
    (`"KeyError: 'x'"`); `received_at` is when `put` stored it (UTC).
    """

    id: int
    body: bytes = attrs.field(repr=lambda body: f"<{len(body)} bytes>")  # may echo a V1 password
    attempts: int
    last_error: str | None
    received_at: datetime.datetime


@attrs.frozen
class Claim:
    """An entry a worker took to handle. `token` lets the store tell this claim from a later one."""

    id: int
    body: bytes
    attempts: int
    token: str = ""


@runtime_checkable
class Inbox(Protocol):
    """Stores callback bodies durably and hands them to a handler: `MemoryInbox`, `SqliteInbox`, `RedisInbox`."""

    async def put(self, body: bytes) -> bool:
        """Store `body` durably; False when the same body was stored within the dedup window."""
        ...

    async def run(self, handler: InboxHandler, *, concurrency: int = 1, max_attempts: int = 10) -> None:
        """Hand stored messages to `handler` until cancelled; retry failures, bury after `max_attempts`."""
        ...

    async def stats(self) -> InboxStats:
        """Counts of pending, dead and handled entries."""
        ...

    async def dead_letters(self) -> list[InboxEntry]:
        """The entries that failed `max_attempts` times (or could not be parsed), oldest first."""
        ...

    async def retry_dead(self, id: int | None = None) -> int:
        """Put one dead letter (or all) back in the queue; how many were."""
        ...

    async def aclose(self) -> None:
        """Release connections and files."""
        ...

    async def __aenter__(self: _InboxT) -> _InboxT: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None: ...


def error_text(exc: BaseException) -> str:
    """What `last_error` and the logs say about a failure: type and message, escaped, on one line."""
    return printable(f"{type(exc).__name__}: {exc}", MAX_ERROR_TEXT)


def dedup_key(body: bytes) -> bytes:
    """Identical bodies have the same key; 32 bytes whatever the body's size."""
    return hashlib.sha256(body).digest()


def utc(timestamp: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc)


def _non_negative(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise InvalidArgumentError(name, f"expected a non-negative number of seconds, got {value!r}")
    return float(value)


def _positive(name: str, value: float) -> float:
    if _non_negative(name, value) == 0:
        raise InvalidArgumentError(name, f"expected a positive number of seconds, got {value!r}")
    return float(value)


class BaseInbox:
    """The options and the worker loop every inbox shares; subclasses implement the storage primitives.

    `dedup_window`: seconds during which an identical body is not stored again (0: never deduplicated).
    `retry_base` / `retry_max`: the first retry waits `retry_base` seconds, each next one twice as long, up to
    `retry_max`. `claim_idle`: an entry claimed by a worker that stopped (killed, cut off) goes back to the queue
    after this many seconds; a live worker renews its claim while its handler runs. `poll_interval`: how often an
    idle worker looks for new or due entries that were not put through this object. `clock`: wall-clock seconds
    (`time.time`), replaceable in tests.
    """

    def __init__(
        self,
        *,
        dedup_window: float = 300.0,
        retry_base: float = 1.0,
        retry_max: float = 300.0,
        claim_idle: float = 60.0,
        poll_interval: float = 0.5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.dedup_window = _non_negative("dedup_window", dedup_window)
        self.retry_base = _positive("retry_base", retry_base)
        self.retry_max = _positive("retry_max", retry_max)
        if self.retry_max < self.retry_base:
            raise InvalidArgumentError("retry_max", f"must be at least retry_base ({retry_base}), got {retry_max}")
        self.claim_idle = _positive("claim_idle", claim_idle)
        self.poll_interval = _positive("poll_interval", poll_interval)
        if not callable(clock):
            raise InvalidArgumentError("clock", f"expected a callable returning seconds, got {clock!r}")
        self._clock = clock
        self._stored: anyio.Event | None = None  # set by put so idle workers in this process wake at once

    # --- what an implementation provides -----------------------------------------------------------------------

    async def _store(self, body: bytes, key: bytes, now: float) -> bool:
        raise NotImplementedError

    async def _claim(self, now: float) -> Claim | None:
        """The oldest due entry, now claimed until `now + claim_idle`; None when nothing is due."""
        raise NotImplementedError

    async def _renew(self, claim: Claim, now: float) -> None:
        raise NotImplementedError

    async def _complete(self, claim: Claim) -> None:
        raise NotImplementedError

    async def _reschedule(self, claim: Claim, error: str, due: float) -> None:
        """One more failed attempt: due again at `due`."""
        raise NotImplementedError

    async def _bury(self, claim: Claim, error: str) -> None:
        """One more failed attempt, and the last: to the dead letters."""
        raise NotImplementedError

    async def _release(self, claim: Claim) -> None:
        """Handling was cut short (not failed): due again now, no attempt counted."""
        raise NotImplementedError

    async def aclose(self) -> None:
        raise NotImplementedError

    # --- the public surface ---------------------------------------------------------------------------------------

    async def put(self, body: bytes) -> bool:
        """Store `body`; it is durable when this returns. False: the same body was stored within `dedup_window`.

        Raises `InboxUnavailableError` when it cannot be stored (answer the sender 503: it will retry).
        """
        if not isinstance(body, (bytes, bytearray, memoryview)):
            raise InvalidArgumentError("body", f"expected bytes, got {type(body).__name__}")
        body = bytes(body)
        stored = await self._store(body, dedup_key(body), self._clock())
        if stored:
            self._wake()
        return stored

    def _wake(self) -> None:
        """New work: idle workers of this process look at once instead of at their next poll."""
        if self._stored is not None:
            self._stored.set()

    def _backoff(self, attempts: int) -> float:
        """Seconds to wait after the `attempts`-th failure: `retry_base`, doubling, at most `retry_max`."""
        return min(self.retry_max, self.retry_base * 2.0 ** min(attempts - 1, 64))

    async def run(self, handler: InboxHandler, *, concurrency: int = 1, max_attempts: int = 10) -> None:
        """The worker: hands each stored message, oldest first, to `await handler(message)`, until cancelled.

        Success: the entry is done. An exception: retried after `retry_base` seconds, each next time twice as long
        up to `retry_max`; after `max_attempts` failures it becomes a dead letter, as does a body that does not
        parse. Up to `concurrency` messages are handled at once. A handling cut short (cancellation, a crash,
        `kill -9`) is handled again: at-least-once. Storage failures (`InboxUnavailableError`) are logged and
        retried; they do not stop the worker.
        """
        if not callable(handler):
            raise InvalidArgumentError("handler", f"expected an async callable, got {handler!r}")
        positive_int(concurrency, "concurrency")
        positive_int(max_attempts, "max_attempts")
        self._stored = anyio.Event()
        async with anyio.create_task_group() as workers:
            for _ in range(concurrency):
                workers.start_soon(self._work, handler, max_attempts)

    async def __aenter__(self: _Self) -> _Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.aclose()

    # --- the loop -----------------------------------------------------------------------------------------------------

    async def _work(self, handler: InboxHandler, max_attempts: int) -> None:
        while True:
            stored = self._stored
            try:
                # Shielded: a claim taken and then lost to cancellation would wait out `claim_idle`.
                with anyio.CancelScope(shield=True):
                    claim = await self._claim(self._clock())
            except InboxUnavailableError as exc:
                logger.warning("the FOTA inbox cannot read entries: %s", error_text(exc))
                claim = None
            if claim is None:
                with anyio.move_on_after(self.poll_interval):
                    if stored is not None:
                        await stored.wait()
                if stored is not None and stored.is_set() and stored is self._stored:
                    self._stored = anyio.Event()
                continue
            await self._handle(claim, handler, max_attempts)

    async def _handle(self, claim: Claim, handler: InboxHandler, max_attempts: int) -> None:
        try:
            message = parse_callback_message(claim.body)
        except CallbackParseError as exc:
            logger.error("FOTA inbox entry %d does not parse, moved to the dead letters: %s", claim.id, error_text(exc))
            await self._settle(functools.partial(self._bury, claim, error_text(exc)))
            return
        failure: Exception | None = None
        try:
            async with anyio.create_task_group() as renewal:
                renewal.start_soon(self._keep_claimed, claim)
                try:
                    await handler(message)
                except Exception as exc:
                    failure = exc
                renewal.cancel_scope.cancel()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._settle(functools.partial(self._release, claim))
            raise
        if failure is None:
            await self._settle(functools.partial(self._complete, claim))
            return
        attempts = claim.attempts + 1
        text = error_text(failure)
        if attempts >= max_attempts:
            logger.error(
                "the FOTA callback handler failed on inbox entry %d (%s message), attempt %d of %d; "
                "moved to the dead letters: %s",
                claim.id,
                printable(message.type),
                attempts,
                max_attempts,
                text,
            )
            await self._settle(functools.partial(self._bury, claim, text))
        else:
            delay = self._backoff(attempts)
            logger.warning(
                "the FOTA callback handler failed on inbox entry %d (%s message), attempt %d of %d; "
                "retrying in %.3g s: %s",
                claim.id,
                printable(message.type),
                attempts,
                max_attempts,
                delay,
                text,
            )
            await self._settle(functools.partial(self._reschedule, claim, text, self._clock() + delay))

    async def _keep_claimed(self, claim: Claim) -> None:
        while True:
            await anyio.sleep(self.claim_idle / 3)
            try:
                await self._renew(claim, self._clock())
            except InboxUnavailableError as exc:
                logger.warning("the FOTA inbox cannot renew its claim on entry %d: %s", claim.id, error_text(exc))

    async def _settle(self, step: Callable[[], Awaitable[None]]) -> None:
        # If the store cannot record the outcome, the claim lapses and the entry is handled again: at-least-once.
        try:
            await step()
        except InboxUnavailableError as exc:
            logger.warning(
                "the FOTA inbox cannot record an outcome (the entry will be handled again): %s", error_text(exc)
            )
