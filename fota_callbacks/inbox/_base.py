"""What every inbox shares: its options, its public surface, and the storage steps each store implements.

A store keeps entries and moves them between states (pending, claimed by a worker, done, dead); the worker
(`_worker.py`) decides what happens to them. Each storage step below is one small method, and the steps that
touch many entries take them in batches: a worker records what became of the entries it handled and claims the
next ones in one `_exchange`.
"""

from __future__ import annotations

import datetime
import hashlib
import math
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, TypedDict, TypeVar

from .._errors import InvalidArgumentError
from .._telemetry import InboxTelemetry, current_traceparent
from .._validation import positive_int
from ..callbacks import CallbackMessage, CallbackParseError, parse_callback_message
from ._records import (
    Claim,
    InboxEntry,
    InboxHandler,
    InboxStats,
    InboxUnavailableError,
    OrderKey,
    Outcome,
    Readiness,
    utc,  # noqa: F401 - the stores import it from here
)
from ._worker import WorkerState, error_text, supervise

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

__all__ = [
    "DEFAULT_DEDUP_WINDOW",
    "DEFAULT_RETAIN_DONE",
    "BaseInbox",
    "InboxOptions",
    "dedup_key",
    "stale_after",
]

_Self = TypeVar("_Self", bound="BaseInbox")

DEFAULT_DEDUP_WINDOW = 1800.0
"""Longer than ThingSpace's retry cadence (three retries, five minutes apart), so a retry is stored once."""
DEFAULT_RETAIN_DONE = 7 * 24 * 3600.0
REPLAY_PAGE = 500


class InboxOptions(TypedDict, total=False):
    """The options every inbox takes as keyword arguments; see `BaseInbox`."""

    dedup_window: float
    retry_base: float
    retry_max: float
    claim_idle: float
    poll_interval: float
    retain_done: float
    clock: Callable[[], float]
    create: bool
    tracer_provider: TracerProvider | None
    meter_provider: MeterProvider | None


def dedup_key(body: bytes) -> bytes:
    """Identical bodies have the same key; 32 bytes whatever the body's size."""
    return hashlib.sha256(body).digest()


def _seconds(name: str, value: object, *, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise InvalidArgumentError(name, f"expected a non-negative number of seconds, got {value!r}")
    if positive and value == 0:
        raise InvalidArgumentError(name, f"expected a positive number of seconds, got {value!r}")
    return float(value)


def _timestamp(name: str, value: object) -> float:
    """Epoch seconds from an aware datetime or a number."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            raise InvalidArgumentError(name, f"expected an aware datetime (with a timezone), got {value!r}")
        return value.timestamp()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidArgumentError(name, f"expected an aware datetime or epoch seconds, got {value!r}")
    return float(value)


class BaseInbox:
    """The options and behaviour every inbox shares; a store implements the storage steps.

    Options (keywords, every inbox):

    - `dedup_window` (1800 s): an identical body stored again within this many seconds is acknowledged but not
      stored twice (ThingSpace retries three times, five minutes apart, with an identical body); 0: off.
    - `retry_base` (1 s) / `retry_max` (300 s): the first retry after a handler failure waits `retry_base`
      seconds, each next one twice as long, up to `retry_max`.
    - `claim_idle` (60 s): an entry claimed by a worker that stopped (killed, cut off) goes back to the queue
      this long after its claim was last renewed; a live worker renews its claims while it holds them.
    - `poll_interval` (0.5 s): how often an idle worker looks for entries stored by other processes.
    - `retain_done` (7 days): handled entries are kept this long (for `replay`), then purged by the worker;
      0 drops them at once.
    - `clock` (`time.time`): wall-clock seconds; every time-based rule (dedup, backoff, retention, age) follows it.
    - `create` (True): create the storage on first use; False only uses an existing inbox and raises
      `InboxNotFoundError` (changing nothing) where there is none.
    - `tracer_provider` / `meter_provider` (None: the global ones): with OpenTelemetry's API installed, the worker
      reports a `fota.callback.handle` span per attempt, `fota.inbox.handled`, `fota.inbox.handle.duration`, and
      the `fota.inbox.*` gauges from the last `stats()` (see the README, Observability).
    """

    def __init__(
        self,
        *,
        dedup_window: float = DEFAULT_DEDUP_WINDOW,
        retry_base: float = 1.0,
        retry_max: float = 300.0,
        claim_idle: float = 60.0,
        poll_interval: float = 0.5,
        retain_done: float = DEFAULT_RETAIN_DONE,
        clock: Callable[[], float] = time.time,
        create: bool = True,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        self.dedup_window = _seconds("dedup_window", dedup_window, positive=False)
        self.retry_base = _seconds("retry_base", retry_base, positive=True)
        self.retry_max = _seconds("retry_max", retry_max, positive=True)
        if self.retry_max < self.retry_base:
            raise InvalidArgumentError("retry_max", f"must be at least retry_base ({retry_base}), got {retry_max}")
        self.claim_idle = _seconds("claim_idle", claim_idle, positive=True)
        self.poll_interval = _seconds("poll_interval", poll_interval, positive=True)
        self.retain_done = _seconds("retain_done", retain_done, positive=False)
        if not callable(clock):
            raise InvalidArgumentError("clock", f"expected a callable returning seconds, got {clock!r}")
        if not isinstance(create, bool):
            raise InvalidArgumentError("create", f"expected True or False, got {create!r}")
        self.create = create
        self._clock = clock
        self._worker = WorkerState()
        self._telemetry = InboxTelemetry(tracer_provider, meter_provider)

    # --- the storage steps a store implements ---------------------------------------------------------------------

    async def _store(self, body: bytes, key: bytes, now: float, trace: str | None) -> bool:
        """Store a new pending entry received at `now`, unless `key` was stored within `dedup_window`; durable
        when this returns. `trace`: the W3C traceparent of the request, kept with the entry."""
        raise NotImplementedError

    async def _exchange(self, outcomes: Sequence[Outcome], now: float, limit: int) -> list[Claim]:
        """Record `outcomes` (each only while its claim still holds), then claim up to `limit` entries (0: none)
        until `now + claim_idle`: pending, due by `now`, not claimed, and not held back by an older pending entry
        with the same stored order key; oldest (lowest id) first."""
        raise NotImplementedError

    async def _hold(self, keyed: Sequence[tuple[Claim, str]], now: float) -> set[int]:
        """Store each claim's order key ("" for none), and release (due now, no attempt counted) and return the ids
        of those that must wait: an older pending entry has the same key, or an older entry is claimed with its
        key not stored yet (another worker is keying it). Atomic."""
        raise NotImplementedError

    async def _renew(self, claims: Sequence[Claim], now: float) -> None:
        """Extend each claim that still holds until `now + claim_idle`."""
        raise NotImplementedError

    async def _purge(self, now: float) -> None:
        """Delete the done entries handled before `now - retain_done`, and the dedup keys expired by `now`."""
        raise NotImplementedError

    async def _counts(self, now: float) -> InboxStats:
        raise NotImplementedError

    async def _dead(self) -> list[InboxEntry]:
        raise NotImplementedError

    async def _revive(self, id: int | None, now: float) -> int:
        """Dead letter `id` (or every one) pending again, due now, attempts 0; how many."""
        raise NotImplementedError

    async def _handled(self, since: float, until: float | None, after: int, limit: int) -> list[tuple[int, bytes]]:
        """Up to `limit` done entries with `since <= received_at < until` and id > `after`, by id."""
        raise NotImplementedError

    async def _requeue(self, ids: Sequence[int], now: float) -> int:
        """The done entries among `ids` pending again, due now, attempts 0; how many."""
        raise NotImplementedError

    async def _probe(self) -> None:
        """Raise `InboxUnavailableError` unless the store takes writes now (cheap: a readiness probe)."""
        raise NotImplementedError

    async def _handle(self, handler: InboxHandler, message: CallbackMessage, claim: Claim) -> bool:
        """One handling attempt. True: the store already recorded the entry as done (a store that commits the
        handler's own writes with that record does so here); False: the worker records the outcome."""
        await handler(message)
        return False

    async def _close(self) -> None:
        """Release the store's connections and files."""
        raise NotImplementedError

    def _check_runs_here(self) -> None:
        """Raise now (before the worker starts, and is restarted on every failure) when the store cannot run on
        this event loop (a client for asyncio only on trio)."""

    # --- the public surface -------------------------------------------------------------------------------------

    async def put(self, body: bytes) -> bool:
        """Store `body`; it is durable when this returns. False: the same body was stored within `dedup_window`.

        Raises `InboxUnavailableError` when it cannot be stored (answer the sender 503: it will retry).
        """
        if not isinstance(body, (bytes, bytearray, memoryview)):
            raise InvalidArgumentError("body", f"expected bytes, got {type(body).__name__}")
        body = bytes(body)
        # The span current now (a receiver's `fota.callback.receive`) is kept with the entry: its handling links to it.
        stored = await self._store(body, dedup_key(body), self._clock(), current_traceparent())
        if stored and self._worker.wake is not None:
            self._worker.wake.set()
        return stored

    async def run(
        self,
        handler: InboxHandler,
        *,
        concurrency: int = 1,
        max_attempts: int = 10,
        order_key: OrderKey | None = None,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        """The worker: hands each stored message, oldest first, to `await handler(message)`, until cancelled.

        Success: the entry is done. Any exception (a `CancelledError` the handler raises while the worker is not
        being cancelled, and one whose `str()` fails, included) is a failed attempt: retried after `retry_base`
        seconds, each next time twice as long up to `retry_max`; after `max_attempts` failures the entry becomes a
        dead letter, as does a body that does not parse. Up to `concurrency` messages are handled at once.

        `order_key(message) -> str | None`: messages with the same key are handled one at a time, in the order
        received; a failing one holds back the later ones of its key until it is done or dead. None (or `""`):
        no order. Every worker of an inbox should use the same `order_key`.

        A handling cut short (cancellation, a crash, `kill -9`) is handled again: at-least-once. When the worker
        is cancelled, what it holds is released at once. `KeyboardInterrupt` and `SystemExit` from a handler
        release the entry and propagate. Store failures are logged and retried; anything else that would end the
        worker is logged at ERROR and the worker restarts after a backoff, during which `ready()` says so.

        `tracer_provider` / `meter_provider`, when given, replace the inbox's own for its telemetry (what
        `fota_lifespan` passes on).
        """
        if not callable(handler):
            raise InvalidArgumentError("handler", f"expected an async callable, got {handler!r}")
        positive_int(concurrency, "concurrency")
        positive_int(max_attempts, "max_attempts")
        if order_key is not None and not callable(order_key):
            raise InvalidArgumentError("order_key", f"expected a callable or None, got {order_key!r}")
        if tracer_provider is not None or meter_provider is not None:
            self._telemetry = self._telemetry.replaced(tracer_provider, meter_provider)
        self._check_runs_here()
        await supervise(self, handler, concurrency=concurrency, max_attempts=max_attempts, order_key=order_key)

    async def stats(self) -> InboxStats:
        """What the inbox holds now: see `InboxStats`. The `fota.inbox.*` gauges report the last one taken."""
        stats = await self._counts(self._clock())
        self._telemetry.observe(stats)
        return stats

    async def dead_letters(self) -> list[InboxEntry]:
        """The dead letters, oldest first."""
        return await self._dead()

    async def retry_dead(self, id: int | None = None) -> int:
        """Put dead letter `id` (or every one) back in the queue with its attempts reset; how many were."""
        if id is not None and (isinstance(id, bool) or not isinstance(id, int)):
            raise InvalidArgumentError("id", f"expected an entry id (int) or None, got {id!r}")
        revived = await self._revive(id, self._clock())
        self._wake_workers(revived)
        return revived

    async def replay(
        self,
        *,
        since: datetime.datetime | float,
        until: datetime.datetime | float | None = None,
        type: str | None = None,
        account: str | None = None,
    ) -> int:
        """Put the handled entries received in [`since`, `until`) back in the queue, to be handled again (after a
        handler bug is fixed); how many were. `since`/`until` are aware datetimes or epoch seconds; `type` and
        `account` narrow it to messages of that `type` and `accountName`. Dead letters are not replayed (see
        `retry_dead`); entries already purged (`retain_done`) cannot be.
        """
        start = _timestamp("since", since)
        end = None if until is None else _timestamp("until", until)
        for name, value in (("type", type), ("account", account)):
            if value is not None and not isinstance(value, str):
                raise InvalidArgumentError(name, f"expected a string or None, got {value!r}")
        requeued, after = 0, 0
        while page := await self._handled(start, end, after, REPLAY_PAGE):
            after = page[-1][0]
            chosen = [id for id, body in page if _matches(body, type, account)]
            if chosen:
                requeued += await self._requeue(chosen, self._clock())
        self._wake_workers(requeued)
        return requeued

    async def ready(self) -> Readiness:
        """Whether this inbox can take messages now: the store takes writes (a cheap probe) and, when a worker
        runs on this inbox in this process, it is alive."""
        down = self.worker_down
        if down is not None:
            return Readiness(False, down)
        try:
            await self._probe()
        except InboxUnavailableError as exc:
            return Readiness(False, error_text(exc).removeprefix(f"{InboxUnavailableError.__name__}: "))
        return Readiness(True)

    @property
    def worker_down(self) -> str | None:
        """Why the worker this process started on this inbox is not running (stopped, restarting); None while it
        runs, or when none was started here. Receivers answer 503 while it is not None."""
        state = self._worker
        if not state.started or state.running:
            return None
        return state.failure or "the inbox's worker is not running"

    def _wake_workers(self, count: int) -> None:
        if count and self._worker.wake is not None:
            self._worker.wake.set()

    def _backoff(self, attempts: int) -> float:
        """Seconds to wait after the `attempts`-th failure: `retry_base`, doubling, at most `retry_max`."""
        return min(self.retry_max, self.retry_base * 2.0 ** min(attempts - 1, 64))

    async def aclose(self) -> None:
        """Release connections and files; the `fota.inbox.*` gauges stop reporting this inbox until its next
        `stats()`. An inbox used again after `aclose` opens them again: `fota_lifespan` closes the inbox at every
        shutdown, and an app whose lifespan runs again (a second `TestClient(app)`) goes on with the same inbox."""
        self._telemetry.stats = None
        state = self._worker
        if not state.running:  # a worker that stopped is forgotten: one started on the inbox used again is new
            state.started, state.failure = False, None
        await self._close()

    async def __aenter__(self: _Self) -> _Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.aclose()


def _matches(body: bytes, type: str | None, account: str | None) -> bool:
    if type is None and account is None:
        return True
    try:
        message = parse_callback_message(body)
    except CallbackParseError:
        return False
    return (type is None or message.type == type) and (account is None or message.account_name == account)


def stale_after(claim_idle: float) -> float:
    """A claim not renewed for this long is stale: its worker renews every third of `claim_idle`."""
    return claim_idle / 2
