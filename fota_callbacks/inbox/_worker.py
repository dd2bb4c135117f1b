"""The worker every inbox runs: claim in batches, hand each message to the handler, record outcomes in batches.

One dispatcher task talks to the store: each `_exchange` records what became of the entries handled since the
last one and claims the next ones, in one step. Up to `concurrency` handler tasks take claimed entries in order.
Claims are renewed while held; at exit, whatever is held and not handled is released at once. `supervise`
restarts a worker that ended for any reason but cancellation (or `KeyboardInterrupt` / `SystemExit`).
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import anyio
import anyio.abc

from .._logsafe import printable
from ..callbacks import CallbackMessage, CallbackParseError, parse_callback_message
from ._records import Claim, InboxHandler, InboxStats, InboxUnavailableError, OrderKey, Outcome, OutcomeKind

if TYPE_CHECKING:
    from .._telemetry import InboxTelemetry

if sys.version_info < (3, 11):  # pragma: no cover - depends on the Python
    from exceptiongroup import BaseExceptionGroup

__all__ = ["MAX_ERROR_TEXT", "Store", "WorkerState", "error_text", "supervise"]

logger = logging.getLogger("fota_callbacks.inbox")

CLAIM_BATCH = 32
"""Most entries claimed ahead of the handlers, when handlers are fast (see `Worker.prefetch`)."""
PREFETCH_SECONDS = 0.5
"""Claim ahead about this much handling time: slow handlers leave entries for other workers to take."""
FLUSH_BATCH = 16
FLUSH_DELAY = 0.05
"""Outcomes are recorded when this many are waiting, or when the oldest has waited this long (seconds)."""
RELEASE_TIMEOUT = 5.0
"""Seconds a worker that stops may take to give back what it holds (a store that hangs must not hold a shutdown)."""
RESTART_DELAY = 1.0
RESTART_DELAY_MAX = 30.0


MAX_ERROR_TEXT = 1000


def error_text(exc: BaseException) -> str:
    """What `last_error` and the logs say about a failure: type and message, escaped, on one line.

    Never raises: an exception whose `str()` fails is named by its type alone.
    """
    name = printable(type(exc).__name__, 200)
    try:
        detail = str(exc)
    except Exception:
        return f"{name}: <str() of the exception failed>"
    return printable(f"{name}: {detail}", MAX_ERROR_TEXT)


class WorkerState:
    """Whether a worker runs on this inbox in this process; what stopped it when it is down."""

    def __init__(self) -> None:
        self.started = False
        self.running = 0
        self.failure: str | None = None
        self.wake: anyio.Event | None = None  # set by put: idle workers of this process look at once


class Store(Protocol):
    """What the worker needs of an inbox (a `BaseInbox` is one): its options, its storage steps, its state here."""

    claim_idle: float
    poll_interval: float
    _worker: WorkerState
    _telemetry: InboxTelemetry

    def _clock(self) -> float: ...

    def _backoff(self, attempts: int) -> float: ...

    async def _exchange(self, outcomes: Sequence[Outcome], now: float, limit: int) -> list[Claim]: ...

    async def _hold(self, keyed: Sequence[tuple[Claim, str]], now: float) -> set[int]: ...

    async def _renew(self, claims: Sequence[Claim], now: float) -> None: ...

    async def _purge(self, now: float) -> None: ...

    async def _handle(self, handler: InboxHandler, message: CallbackMessage, claim: Claim) -> bool: ...

    async def stats(self) -> InboxStats: ...


def _fatal(exc: BaseException) -> bool:
    """`KeyboardInterrupt` / `SystemExit`, alone or in a group: the process is ending; nothing restarts."""
    if isinstance(exc, BaseExceptionGroup):
        return any(_fatal(inner) for inner in exc.exceptions)
    return isinstance(exc, (KeyboardInterrupt, SystemExit))


def being_cancelled() -> bool:
    """Whether the running task is being cancelled, as opposed to seeing a `CancelledError` some awaited task or
    future raised (asyncio). On Python 3.10 only anyio cancel scopes are seen."""
    if anyio.current_effective_deadline() == -math.inf:
        return True
    if sys.version_info >= (3, 11) and sniff_asyncio():
        import asyncio

        task = asyncio.current_task()
        return task is not None and task.cancelling() > 0
    return False


def sniff_asyncio() -> bool:
    import sniffio

    return sniffio.current_async_library() == "asyncio"


def _stops_the_worker(exc: BaseException) -> bool:
    """Whether `exc` from a handler ends the worker (propagates) rather than failing one attempt."""
    return _fatal(exc) or (isinstance(exc, anyio.get_cancelled_exc_class()) and being_cancelled())


async def supervise(
    inbox: Store, handler: InboxHandler, *, concurrency: int, max_attempts: int, order_key: OrderKey | None
) -> None:
    """Run a worker until cancelled, restarting it (with a backoff, logged at ERROR) whenever it ends otherwise."""
    state = inbox._worker
    state.started = True
    delay = RESTART_DELAY
    while True:
        started = time.monotonic()
        state.running += 1
        state.failure = None
        try:
            await Worker(inbox, handler, concurrency, max_attempts, order_key).run()
            reason = "it returned"
        except BaseException as exc:
            if _fatal(exc) or (isinstance(exc, anyio.get_cancelled_exc_class()) and being_cancelled()):
                state.failure = "the worker was stopped"
                raise
            reason = error_text(exc)
        finally:
            state.running -= 1
        if time.monotonic() - started > 10 * RESTART_DELAY_MAX:
            delay = RESTART_DELAY  # it had been running well: a new fault starts the backoff over
        state.failure = f"the worker stopped ({reason}); restarting in {delay:.3g} s"
        logger.error("the FOTA inbox worker stopped: %s; restarting in %.3g s", reason, delay)
        await anyio.sleep(delay)
        delay = min(delay * 2, RESTART_DELAY_MAX)


class Worker:
    """One run of an inbox's worker (see the module docstring)."""

    def __init__(
        self,
        inbox: Store,
        handler: InboxHandler,
        concurrency: int,
        max_attempts: int,
        order_key: OrderKey | None,
    ) -> None:
        self.inbox, self.handler = inbox, handler
        self.concurrency, self.max_attempts, self.order_key = concurrency, max_attempts, order_key
        self.held: dict[int, Claim] = {}  # claimed and not settled: queued or being handled
        self.queue: deque[tuple[Claim, CallbackMessage]] = deque()
        self.outcomes: list[Outcome] = []
        self.oldest_outcome = 0.0  # monotonic time the oldest unrecorded outcome was made
        self.handle_time = 0.0  # moving average of a handling's seconds
        self.nudge = anyio.Event()
        self.ready = anyio.Semaphore(0)  # one per queued entry, for the handler tasks

    async def run(self) -> None:
        self.inbox._worker.wake = self.nudge
        await self._say_what_stopped_workers_hold()
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(self._keep_claimed)
                tasks.start_soon(self._housekeep)
                for _ in range(self.concurrency):
                    tasks.start_soon(self._handle_queued)
                await self._dispatch()
        finally:
            with anyio.move_on_after(RELEASE_TIMEOUT, shield=True):
                await self._release_everything()

    # --- the dispatcher: the one task that claims and records -----------------------------------------------------

    def prefetch(self) -> int:
        """How many entries to hold beyond one per handler: about `PREFETCH_SECONDS` of handling."""
        if self.handle_time <= 0:
            return CLAIM_BATCH
        return min(CLAIM_BATCH, int(self.concurrency * PREFETCH_SECONDS / self.handle_time))

    async def _dispatch(self) -> None:
        exhausted = False  # the last claim found fewer entries than asked: wait for news before asking again
        while True:
            room = self.concurrency + self.prefetch() - len(self.held)
            low = len(self.queue) < self.concurrency
            if self._flush_due() or (low and room > 0 and not exhausted):
                asked = room if low else 0
                got = await self._exchange(asked)
                exhausted = got < asked
                continue
            nudge = self.nudge
            with anyio.move_on_after(self._wait_time()):
                await nudge.wait()
            if nudge.is_set():
                self.nudge = self.inbox._worker.wake = anyio.Event()
            exhausted = False

    def _flush_due(self) -> bool:
        if not self.outcomes:
            return False
        age = time.monotonic() - self.oldest_outcome
        return len(self.outcomes) >= FLUSH_BATCH or age >= FLUSH_DELAY or not self.held

    def _wait_time(self) -> float:
        if self.outcomes:
            return max(0.0, FLUSH_DELAY - (time.monotonic() - self.oldest_outcome))
        return self.inbox.poll_interval

    async def _exchange(self, limit: int) -> int:
        """Record the waiting outcomes and claim up to `limit` entries; how many were claimed."""
        outcomes, self.outcomes = self.outcomes, []
        try:
            # Shielded: a claim taken and then lost to cancellation would wait out claim_idle.
            with anyio.CancelScope(shield=True):
                admitted = await self._admit(await self.inbox._exchange(outcomes, self.inbox._clock(), limit))
        except InboxUnavailableError as exc:
            logger.warning("the FOTA inbox cannot record or claim entries: %s", error_text(exc))
            self.outcomes = outcomes + self.outcomes
            await anyio.sleep(self.inbox.poll_interval)
            return 0
        except BaseException:
            self.outcomes = outcomes + self.outcomes  # still to record (or give back) when this worker exits
            raise
        for claim, message in admitted:
            self.held[claim.id] = claim
            self.queue.append((claim, message))
            self.ready.release()
        return len(admitted)

    async def _admit(self, claims: list[Claim]) -> list[tuple[Claim, CallbackMessage]]:
        """Parse each claimed body (a body that does not parse is a dead letter at once) and, with `order_key`,
        key the entries not keyed yet; those an earlier message of their key holds back are released."""
        admitted: list[tuple[Claim, CallbackMessage]] = []
        keyed: list[tuple[Claim, str]] = []
        for claim in claims:
            try:
                message = parse_callback_message(claim.body)
            except CallbackParseError as exc:
                logger.error("FOTA inbox entry %d does not parse, moved to the dead letters: %s", claim.id, exc)
                self._record(Outcome(claim, "dead", self.inbox._clock(), error=error_text(exc)))
                self._report_at_once(claim, None, "dead", exc)
                continue
            if self.order_key is not None and claim.order_key is None:
                try:
                    key = self.order_key(message) or ""
                except Exception as exc:
                    self._report_at_once(claim, message, self._fail(claim, message, exc), exc)
                    continue
                keyed.append((claim, str(key)))
            admitted.append((claim, message))
        if keyed:
            held_back = await self.inbox._hold(keyed, self.inbox._clock())
            admitted = [(claim, message) for claim, message in admitted if claim.id not in held_back]
        return admitted

    # --- the handler tasks ----------------------------------------------------------------------------------------

    async def _handle_queued(self) -> None:
        while True:
            await self.ready.acquire()
            claim, message = self.queue.popleft()
            await self._attempt(claim, message)

    async def _attempt(self, claim: Claim, message: CallbackMessage) -> None:
        started = time.monotonic()
        report = self.inbox._telemetry.handling(claim, message)  # telemetry: the handle span, when one records
        try:
            recorded = await self.inbox._handle(self.handler, message, claim)
        except BaseException as exc:
            if _stops_the_worker(exc):
                if report is not None:
                    report.end(None)
                if _fatal(exc):  # the process ends: give the entry back now, nobody will later
                    with anyio.move_on_after(RELEASE_TIMEOUT, shield=True):
                        await self._release([self.held.pop(claim.id)])
                raise
            kind = self._fail(claim, message, exc)
            if report is not None:
                report.end(kind, exc)
        else:
            if recorded:
                self.held.pop(claim.id, None)
            else:
                self._record(Outcome(claim, "done", self.inbox._clock()))
            if report is not None:
                report.end("done")
        elapsed = time.monotonic() - started
        self.handle_time = elapsed if self.handle_time == 0 else 0.8 * self.handle_time + 0.2 * elapsed

    def _report_at_once(self, claim: Claim, message: CallbackMessage | None, kind: str, exc: BaseException) -> None:
        """Telemetry for an attempt that failed before its handler ran (the body, or the order key)."""
        report = self.inbox._telemetry.handling(claim, message)
        if report is not None:
            report.end(kind, exc)

    def _fail(self, claim: Claim, message: CallbackMessage, exc: BaseException) -> OutcomeKind:
        """Record a failed attempt: `retry`, or `dead` after `max_attempts`; which one."""
        attempts = claim.attempts + 1
        text, now = error_text(exc), self.inbox._clock()
        what = (claim.id, printable(message.type), attempts, self.max_attempts)
        if attempts >= self.max_attempts:
            logger.error(
                "the FOTA callback handler failed on inbox entry %d (%s message), attempt %d of %d; "
                "moved to the dead letters: %s",
                *what,
                text,
            )
            self._record(Outcome(claim, "dead", now, error=text))
            return "dead"
        delay = self.inbox._backoff(attempts)
        logger.warning(
            "the FOTA callback handler failed on inbox entry %d (%s message), attempt %d of %d; retrying in %.3g s: %s",
            *what,
            delay,
            text,
        )
        self._record(Outcome(claim, "retry", now, error=text, due=now + delay))
        return "retry"

    def _record(self, outcome: Outcome) -> None:
        self.held.pop(outcome.claim.id, None)
        if not self.outcomes:
            self.oldest_outcome = time.monotonic()
        self.outcomes.append(outcome)
        self.nudge.set()

    # --- claims kept alive, given back, housekeeping ---------------------------------------------------------------

    async def _keep_claimed(self) -> None:
        while True:
            await anyio.sleep(self.inbox.claim_idle / 3)
            if not self.held:
                continue
            try:
                await self.inbox._renew(list(self.held.values()), self.inbox._clock())
            except InboxUnavailableError as exc:
                logger.warning("the FOTA inbox cannot renew its claims: %s", error_text(exc))

    async def _release(self, claims: list[Claim]) -> None:
        now = self.inbox._clock()
        releases = [Outcome(claim, "release", now) for claim in claims]
        try:
            await self.inbox._exchange(releases, now, 0)
        except InboxUnavailableError as exc:
            logger.warning(
                "the FOTA inbox cannot give back %d entries; they are handled again once their claims lapse: %s",
                len(releases),
                error_text(exc),
            )

    async def _release_everything(self) -> None:
        """At exit: record what was handled, give back what was claimed and not handled."""
        now = self.inbox._clock()
        outcomes = self.outcomes + [Outcome(claim, "release", now) for claim in self.held.values()]
        self.outcomes, self.held = [], {}
        if not outcomes:
            return
        try:
            await self.inbox._exchange(outcomes, now, 0)
        except InboxUnavailableError as exc:
            logger.warning(
                "the FOTA inbox cannot record %d outcomes at exit; those entries are handled again once their "
                "claims lapse: %s",
                len(outcomes),
                error_text(exc),
            )

    async def _housekeep(self) -> None:
        interval = min(60.0, self.inbox.poll_interval * 20)
        while True:
            try:
                await self.inbox._purge(self.inbox._clock())
                if self.inbox._telemetry.measuring():  # telemetry: the gauges report the last stats()
                    await self.inbox.stats()
            except InboxUnavailableError as exc:
                logger.warning("the FOTA inbox cannot purge or count its entries: %s", error_text(exc))
            await anyio.sleep(interval)

    async def _say_what_stopped_workers_hold(self) -> None:
        """Before this worker claims anything: entries a stopped worker (killed, cut off) still holds wait for its
        claims to lapse, which would otherwise look like a stall."""
        try:
            stats = await self.inbox.stats()
        except InboxUnavailableError:
            return  # the dispatcher says so as soon as it tries
        if stats.stale:
            logger.warning(
                "%d FOTA inbox entries are held by a worker that stopped (its claims are no longer renewed): they are "
                "handled again in %.0f s, once those claims lapse",
                stats.stale,
                max(0.0, stats.next_takeover or 0.0),
            )
