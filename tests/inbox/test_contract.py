"""The inbox contract: one suite, run unchanged over every store (memory, SQLite, Redis, Postgres).

Memory and SQLite run on asyncio and trio; Redis and Postgres on asyncio (their drivers' asyncio clients). Every
time-based rule runs on an injected clock (`Clock`); waiting is real but short (`poll_interval`).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Coroutine
from datetime import datetime, timezone
from types import FrameType
from typing import Any

import anyio
import pytest

import fota_callbacks as fota
from fota_callbacks.inbox import Inbox, InboxNotFoundError, InboxStats, MemoryInbox, Readiness
from tests.support.inbox import (
    CASES,
    DURABLE,
    Clock,
    MakeInbox,
    Running,
    anyio_backend,
    case,
    make_inbox,
    postgres_server,
    redis_server,
    stats_reach,
    until,
)

if sys.version_info < (3, 11):  # pragma: no cover - depends on the Python
    from exceptiongroup import ExceptionGroup

pytestmark = pytest.mark.anyio

__all__ = ["anyio_backend", "case", "make_inbox", "postgres_server", "redis_server"]  # fixtures, used below

START = 1_800_000_000.0  # Clock()'s first reading


def message(n: int, type: str = "upgradeProgress", account: str = "0000123456-00001", **fields: Any) -> bytes:
    return json.dumps({"type": type, "accountName": account, "n": n, **fields}).encode()


class Recorder:
    """A handler that records the `n` of each message; fails on the ones in `failing`."""

    def __init__(self, failing: set[int] | None = None) -> None:
        self.handled: list[int] = []
        self.failing = failing or set()

    async def __call__(self, message: fota.CallbackMessage) -> None:
        n = message.raw["n"]
        self.handled.append(n)
        if n in self.failing:
            raise RuntimeError(f"cannot handle {n}\nCRITICAL root: forged")


def stats(pending: int = 0, dead: int = 0, done: int = 0, in_flight: int = 0, age: float = 0.0) -> InboxStats:
    return InboxStats(pending=pending, dead=dead, done=done, in_flight=in_flight, oldest_pending_age=age)


durable = pytest.mark.parametrize(
    "case", [case for case in CASES if case[0] in DURABLE], ids=lambda case: "-".join(case), indirect=True
)
"""For what only a store outside the process can show: a MemoryInbox has no storage outside the object."""


# --- storing and handling ---------------------------------------------------------------------------------------


async def test_every_stored_message_is_handled_oldest_first(make_inbox: MakeInbox) -> None:
    recorder, clock = Recorder(), Clock()
    async with make_inbox(clock=clock) as inbox:
        assert isinstance(inbox, Inbox)
        assert [await inbox.put(message(n)) for n in range(6)] == [True] * 6
        clock.advance(2.5)
        assert await inbox.stats() == stats(pending=6, age=2.5)
        async with Running(inbox, recorder):
            await stats_reach(inbox, done=6)
        assert recorder.handled == list(range(6))
        assert await inbox.stats() == stats(done=6)
        assert await inbox.dead_letters() == []


async def test_up_to_concurrency_messages_are_handled_at_once(make_inbox: MakeInbox) -> None:
    running, most = 0, 0

    async def handler(message: fota.CallbackMessage) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await anyio.sleep(0.05)
        running -= 1

    async with make_inbox() as inbox:
        for n in range(8):
            await inbox.put(message(n))
        async with Running(inbox, handler, concurrency=4):
            await stats_reach(inbox, done=8)
    assert most == 4


async def test_a_burst_larger_than_a_batch_is_all_handled_once(make_inbox: MakeInbox) -> None:
    recorder = Recorder()
    async with make_inbox() as inbox:
        for n in range(150):
            await inbox.put(message(n))
        async with Running(inbox, recorder, concurrency=3):
            await stats_reach(inbox, pending=0, done=150)
    assert sorted(recorder.handled) == list(range(150))


async def test_an_identical_body_is_stored_once_within_the_window_on_the_inbox_clock(make_inbox: MakeInbox) -> None:
    clock = Clock()
    async with make_inbox(clock=clock) as inbox:
        assert inbox.dedup_window == 1800  # longer than ThingSpace's three retries five minutes apart
        assert await inbox.put(message(1)) is True
        clock.advance(3 * 300 + 5)  # ThingSpace's last retry arrives a little after fifteen minutes
        assert await inbox.put(message(1)) is False
        assert await inbox.put(message(2)) is True
        assert (await inbox.stats()).pending == 2
        clock.advance(1800)
        assert await inbox.put(message(1)) is True  # the window has passed, on the inbox's clock
        assert (await inbox.stats()).pending == 3
    async with make_inbox("no-dedup", dedup_window=0) as inbox:
        assert [await inbox.put(message(1)) for _ in range(3)] == [True] * 3


async def test_a_failing_handler_is_retried_with_backoff_then_dead_lettered_and_can_be_retried(
    make_inbox: MakeInbox, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    recorder = Recorder(failing={1})
    async with make_inbox(clock=clock, retry_base=10, retry_max=15) as inbox:
        await inbox.put(message(1))
        await inbox.put(message(2))

        def failures_logged() -> int:
            return sum(record.name == "fota_callbacks.inbox" for record in caplog.records)

        async def recorded(pending: int) -> None:
            # Outcomes are recorded in batches: wait until the store has this one.
            await stats_reach(inbox, pending=pending, in_flight=0)

        with caplog.at_level(logging.WARNING, "fota_callbacks.inbox"):
            async with Running(inbox, recorder, max_attempts=3):
                await until(lambda: recorder.handled == [1, 2] and failures_logged() == 1)
                await recorded(pending=1)
                clock.advance(9.9)  # not due again before retry_base seconds
                await anyio.sleep(0.05)
                assert recorder.handled == [1, 2]
                clock.advance(0.1)
                await until(lambda: recorder.handled == [1, 2, 1] and failures_logged() == 2)
                await recorded(pending=1)
                clock.advance(14.9)  # doubled would be 20 s, but retry_max caps it at 15 s
                await anyio.sleep(0.05)
                assert recorder.handled == [1, 2, 1]
                clock.advance(0.1)
                await until(lambda: recorder.handled == [1, 2, 1, 1])
                await stats_reach(inbox, pending=0, dead=1, done=1)

        [dead] = await inbox.dead_letters()
        assert (dead.body, dead.attempts) == (message(1), 3)
        assert dead.last_error == "RuntimeError: cannot handle 1\\nCRITICAL root: forged"
        assert dead.received_at.timestamp() == START  # when put stored it, on the inbox's clock
        messages = [record.getMessage() for record in caplog.records if record.name == "fota_callbacks.inbox"]
        assert len(messages) == 3
        assert all("\n" not in text and "forged" in text for text in messages)

        recorder.failing.clear()
        assert await inbox.retry_dead(dead.id + 1000) == 0
        assert await inbox.retry_dead(dead.id) == 1
        assert await inbox.stats() == stats(pending=1, done=1, age=25.0)
        async with Running(inbox, recorder, max_attempts=3):
            await stats_reach(inbox, pending=0, dead=0, done=2)
        assert recorder.handled == [1, 2, 1, 1, 1]


async def test_retry_dead_without_an_id_requeues_every_dead_letter_with_fresh_attempts(make_inbox: MakeInbox) -> None:
    recorder = Recorder(failing={1, 2})
    async with make_inbox() as inbox:
        for n in (1, 2, 3):
            await inbox.put(message(n))
        async with Running(inbox, recorder, max_attempts=1):
            await stats_reach(inbox, dead=2, done=1)
        assert [entry.attempts for entry in await inbox.dead_letters()] == [1, 1]
        recorder.failing = {2}
        assert await inbox.retry_dead() == 2
        async with Running(inbox, recorder, max_attempts=1):
            await stats_reach(inbox, pending=0, dead=1, done=2)
        [dead] = await inbox.dead_letters()
        assert (dead.body, dead.attempts) == (message(2), 1)


async def test_a_stored_body_that_does_not_parse_becomes_a_dead_letter_and_work_goes_on(make_inbox: MakeInbox) -> None:
    recorder = Recorder()
    async with make_inbox() as inbox:
        await inbox.put(b"not json\n")
        await inbox.put(b"[1, 2]")
        await inbox.put(message(7))
        async with Running(inbox, recorder):
            await stats_reach(inbox, pending=0, dead=2, done=1)
        assert recorder.handled == [7]
        first, second = await inbox.dead_letters()
        assert (first.body, first.attempts) == (b"not json\n", 1)
        assert first.last_error is not None
        assert first.last_error.startswith("CallbackParseError: callback body is not JSON")
        assert second.last_error == "CallbackParseError: callback body is an array, not a JSON object"
        assert "body=<9 bytes>" in repr(first)


# --- nothing a handler does stops the worker --------------------------------------------------------------------


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


async def test_odd_handler_failures_are_failed_attempts_and_the_worker_goes_on(
    make_inbox: MakeInbox, case: tuple[str, str]
) -> None:
    # A handler that awaited a task someone else cancelled raises CancelledError while the worker is not being
    # cancelled (asyncio); an exception whose str() fails; an exception group. Each is one failed attempt.
    import asyncio

    async def cancelled_elsewhere() -> None:
        if case[1] == "asyncio":
            victim = asyncio.get_running_loop().create_future()
            victim.cancel()
            await victim  # raises CancelledError here
        raise RuntimeError("trio has no foreign cancellation")

    failures: dict[int, Callable[[], Any]] = {
        1: cancelled_elsewhere,
        2: lambda: (_ for _ in ()).throw(Unprintable()),
        3: lambda: (_ for _ in ()).throw(ExceptionGroup("several", [ValueError("a"), KeyError("b")])),
    }
    handled: list[int] = []

    async def handler(message: fota.CallbackMessage) -> None:
        n = message.raw["n"]
        handled.append(n)
        if n in failures:
            outcome = failures[n]()
            if hasattr(outcome, "__await__"):
                await outcome

    async with make_inbox() as inbox:
        for n in range(1, 8):
            await inbox.put(message(n))
        async with Running(inbox, handler, max_attempts=1):
            await stats_reach(inbox, pending=0, dead=3, done=4)
        errors = [entry.last_error for entry in await inbox.dead_letters()]
    assert sorted(handled) == list(range(1, 8))
    assert errors[1] == "Unprintable: <str() of the exception failed>"
    assert str(errors[2]).startswith("ExceptionGroup: several")
    if case[1] == "asyncio":
        assert str(errors[0]).startswith("CancelledError")


async def test_a_worker_that_fails_is_restarted_and_is_not_ready_meanwhile(
    make_inbox: MakeInbox, caplog: pytest.LogCaptureFixture
) -> None:
    # The clock is the user's code too: one that fails makes the worker loop itself fail.
    clock = Clock()
    broken = False

    def failing_clock() -> float:
        if broken:
            raise OSError("the clock broke")
        return clock()

    recorder = Recorder()
    async with make_inbox(clock=failing_clock) as inbox:
        assert await inbox.ready() == Readiness(ok=True, reason=None)
        with caplog.at_level(logging.ERROR, "fota_callbacks.inbox"):
            async with Running(inbox, recorder):
                await inbox.put(message(1))
                await stats_reach(inbox, done=1)
                assert await inbox.ready() == Readiness(ok=True, reason=None)
                broken = True
                await until(lambda: any("worker stopped" in record.getMessage() for record in caplog.records))
                readiness = await inbox.ready()
                assert not readiness.ok
                assert "the clock broke" in str(readiness.reason)
                broken = False
                await inbox.put(message(2))  # handled once the worker is back (restarted after 1 s)
                await stats_reach(inbox, done=2)
                assert (await inbox.ready()).ok
        assert recorder.handled == [1, 2]
        assert "OSError: the clock broke" in caplog.text


async def test_at_shutdown_what_was_being_handled_is_given_back_at_once(make_inbox: MakeInbox) -> None:
    started = anyio.Event()
    calls: list[int] = []

    async def handler(message: fota.CallbackMessage) -> None:
        calls.append(message.raw["n"])
        if len(calls) == 1:
            started.set()
            await anyio.sleep_forever()

    clock = Clock()
    async with make_inbox(clock=clock) as inbox:
        for n in (5, 6, 7):
            await inbox.put(message(n))
        async with Running(inbox, handler):
            await started.wait()
            assert (await inbox.stats()).in_flight >= 1
        assert await inbox.stats() == stats(pending=3)  # nothing left claimed: not after claim_idle, now
        async with Running(inbox, handler):
            await stats_reach(inbox, pending=0, done=3)
    assert calls == [5, 5, 6, 7]


# --- order keys ---------------------------------------------------------------------------------------------------


def device(message: fota.CallbackMessage) -> str | None:
    value = message.raw.get("device")
    return None if value is None else str(value)


async def test_messages_with_one_order_key_are_handled_one_at_a_time_in_the_order_received(
    make_inbox: MakeInbox,
) -> None:
    running: dict[str, int] = {}
    overlaps: list[str] = []
    order: dict[str, list[int]] = {}

    async def handler(message: fota.CallbackMessage) -> None:
        key = str(message.raw["device"])
        running[key] = running.get(key, 0) + 1
        if running[key] > 1:
            overlaps.append(key)
        order.setdefault(key, []).append(message.raw["n"])
        await anyio.sleep(0.01)
        running[key] -= 1

    async with make_inbox() as inbox:
        for n in range(24):
            await inbox.put(message(n, device=f"d{n % 3}"))
        async with Running(inbox, handler, concurrency=4, order_key=device):
            await stats_reach(inbox, pending=0, done=24)
    assert overlaps == []
    assert order == {f"d{k}": list(range(k, 24, 3)) for k in range(3)}


async def test_a_failing_message_holds_back_the_later_ones_of_its_key_until_it_is_done(make_inbox: MakeInbox) -> None:
    clock = Clock()
    recorder = Recorder(failing={1})
    async with make_inbox(clock=clock, retry_base=30) as inbox:
        await inbox.put(message(1, device="a"))  # upgradeProgress: fails once
        await inbox.put(message(2, device="a"))  # upgradeFinished of the same device: must wait
        await inbox.put(message(3, device="b"))  # another device: goes on
        await inbox.put(message(4))  # no key: goes on
        async with Running(inbox, recorder, concurrency=4, order_key=device):
            await until(lambda: sorted(recorder.handled) == [1, 3, 4])
            await stats_reach(inbox, pending=2, done=2, in_flight=0)
            await anyio.sleep(0.1)
            assert 2 not in recorder.handled  # held back by 1, which waits for its retry
            recorder.failing.clear()
            clock.advance(30)
            await stats_reach(inbox, pending=0, done=4)
    assert recorder.handled.index(2) > recorder.handled.index(1, 1)


async def test_held_back_order_survives_a_restart(make_inbox: MakeInbox) -> None:
    clock = Clock()
    recorder = Recorder(failing={1})
    async with make_inbox(clock=clock, retry_base=30) as inbox:
        await inbox.put(message(1, device="a"))
        await inbox.put(message(2, device="a"))
        async with Running(inbox, recorder, order_key=device):
            await stats_reach(inbox, pending=2, in_flight=0)
            await until(lambda: recorder.handled == [1])
        recorder.failing.clear()
        async with Running(inbox, recorder, order_key=device):  # a new worker: 1 is not due, 2 still waits
            await anyio.sleep(0.2)
            assert recorder.handled == [1]
            clock.advance(30)
            await stats_reach(inbox, pending=0, done=2)
    assert recorder.handled == [1, 1, 2]


async def test_a_dead_message_stops_holding_back_its_key(make_inbox: MakeInbox) -> None:
    recorder = Recorder(failing={1})
    async with make_inbox() as inbox:
        await inbox.put(message(1, device="a"))
        await inbox.put(message(2, device="a"))
        async with Running(inbox, recorder, order_key=device, max_attempts=1):
            await stats_reach(inbox, pending=0, dead=1, done=1)
    assert recorder.handled == [1, 2]


# --- retention and replay -----------------------------------------------------------------------------------------


async def test_handled_entries_are_kept_for_retain_done_then_purged(make_inbox: MakeInbox) -> None:
    clock = Clock()
    recorder = Recorder()
    async with make_inbox(clock=clock) as inbox:
        assert inbox.retain_done == 7 * 24 * 3600
        for n in range(3):
            await inbox.put(message(n))
        async with Running(inbox, recorder):
            await stats_reach(inbox, done=3)
            clock.advance(7 * 24 * 3600 - 1)
            await anyio.sleep(0.3)  # several purges (every 20 poll intervals)
            assert (await inbox.stats()).done == 3
            clock.advance(2)
            await stats_reach(inbox, done=0)
    async with make_inbox("drop", retain_done=0) as inbox:
        await inbox.put(message(9))
        async with Running(inbox, recorder):
            await until(lambda: 9 in recorder.handled)
            await stats_reach(inbox, pending=0, done=0)
        assert await inbox.replay(since=0) == 0


async def test_replay_puts_handled_entries_of_a_time_range_back_in_the_queue(make_inbox: MakeInbox) -> None:
    clock = Clock()
    recorder = Recorder(failing={4})
    async with make_inbox(clock=clock) as inbox:
        await inbox.put(message(1, type="upgradeProgress"))
        clock.advance(60)
        await inbox.put(message(2, type="upgradeFinished"))
        await inbox.put(message(3, type="upgradeFinished", account="0000999999-00001"))
        await inbox.put(message(4, type="upgradeFinished"))  # fails: a dead letter, never replayed
        clock.advance(60)
        await inbox.put(message(5, type="upgradeFinished"))
        async with Running(inbox, recorder, max_attempts=1):
            await stats_reach(inbox, pending=0, dead=1, done=4)
        recorder.handled.clear()

        minute = datetime.fromtimestamp(START + 60, timezone.utc)
        assert await inbox.replay(since=minute, until=START + 120, type="upgradeFinished") == 2
        assert await inbox.stats() == stats(pending=2, dead=1, done=2, age=60.0)
        assert await inbox.replay(since=START, account="0000999999-00001") == 0  # already queued again
        assert await inbox.replay(since=START + 1000) == 0
        async with Running(inbox, recorder, max_attempts=1):
            await stats_reach(inbox, pending=0, dead=1, done=4)
        assert recorder.handled == [2, 3]
        assert await inbox.replay(since=START, account="0000999999-00001") == 1


async def test_replay_refuses_unclear_times(make_inbox: MakeInbox) -> None:
    async with make_inbox() as inbox:
        for options, parameter in (
            ({"since": datetime(2026, 12, 1)}, "since"),  # naive: which timezone?
            ({"since": "2026-12-01"}, "since"),
            ({"since": 0, "until": float("nan")}, "until"),
            ({"since": 0, "type": 3}, "type"),
        ):
            with pytest.raises(fota.InvalidArgumentError) as caught:
                await inbox.replay(**options)
            assert caught.value.parameter == parameter


# --- what an operator sees ----------------------------------------------------------------------------------------


async def test_in_flight_and_stale_claims_are_shown(make_inbox: MakeInbox) -> None:
    clock = Clock()
    started = anyio.Event()

    async def slow(message: fota.CallbackMessage) -> None:
        started.set()
        await anyio.sleep_forever()

    async with make_inbox(clock=clock, claim_idle=60) as inbox:
        await inbox.put(message(1))
        await inbox.put(message(2))
        async with Running(inbox, slow, concurrency=1):
            await started.wait()
            clock.advance(10)
            shown = await inbox.stats()
            assert (shown.pending, shown.in_flight, shown.stale, shown.oldest_pending_age) == (2, 2, 0, 10.0)
            clock.advance(25)  # not renewed on this clock for 35 s, more than half of claim_idle
            shown = await inbox.stats()
            assert (shown.in_flight, shown.stale, shown.next_takeover) == (2, 2, 25.0)
            clock.advance(26)  # the claims lapsed: no longer in flight
            assert (await inbox.stats()).in_flight == 0


async def test_a_starting_worker_says_when_a_stopped_worker_holds_entries(
    make_inbox: MakeInbox, caplog: pytest.LogCaptureFixture
) -> None:
    # After a kill -9 the killed worker's entries wait for its claims to lapse: the next worker says so.
    clock = Clock()
    started = anyio.Event()

    async def stuck(message: fota.CallbackMessage) -> None:
        started.set()
        await anyio.sleep_forever()

    async with make_inbox(clock=clock, claim_idle=60) as inbox:
        await inbox.put(message(1))
        with caplog.at_level(logging.WARNING, "fota_callbacks.inbox"):
            async with Running(inbox, stuck):
                await started.wait()
                clock.advance(40)  # its claim not renewed on this clock for 40 s: that worker looks stopped
                async with Running(inbox, Recorder()):
                    await until(lambda: "held by a worker that stopped" in caplog.text)
    [line] = [record.getMessage() for record in caplog.records if "held by a worker" in record.getMessage()]
    assert line.startswith("1 FOTA inbox entries are held by a worker that stopped")
    assert line.endswith("handled again in 20 s, once those claims lapse")


async def test_readiness_is_ok_for_a_working_store(make_inbox: MakeInbox) -> None:
    async with make_inbox() as inbox:
        assert await inbox.ready() == Readiness(ok=True, reason=None)
        assert inbox.worker_down is None


async def test_bad_arguments_are_refused_with_the_parameter_named(make_inbox: MakeInbox) -> None:
    refused: list[tuple[dict[str, Any], str]] = [
        ({"dedup_window": -1}, "dedup_window"),
        ({"retry_base": 0}, "retry_base"),
        ({"retry_base": 5, "retry_max": 1}, "retry_max"),
        ({"poll_interval": float("nan")}, "poll_interval"),
        ({"retain_done": -1}, "retain_done"),
        ({"clock": 3}, "clock"),
        ({"create": "no"}, "create"),
    ]
    for options, parameter in refused:
        with pytest.raises(fota.InvalidArgumentError) as caught:
            make_inbox(**options)
        assert caught.value.parameter == parameter
    async with make_inbox() as inbox:
        with pytest.raises(fota.InvalidArgumentError, match="body"):
            await inbox.put("text")  # type: ignore[arg-type]
        for run_options, parameter in (
            ({"concurrency": 0}, "concurrency"),
            ({"max_attempts": True}, "max_attempts"),
            ({"order_key": "device"}, "order_key"),
        ):
            with pytest.raises(fota.InvalidArgumentError) as caught:
                await inbox.run(Recorder(), **run_options)
            assert caught.value.parameter == parameter
        with pytest.raises(fota.InvalidArgumentError) as caught:
            await inbox.retry_dead("3")  # type: ignore[arg-type]
        assert caught.value.parameter == "id"


# --- durable stores only --------------------------------------------------------------------------------------------


@durable
async def test_what_one_handle_stores_another_handle_on_the_same_storage_handles(make_inbox: MakeInbox) -> None:
    recorder = Recorder()
    async with make_inbox("shared") as receiver:
        for n in range(3):
            await receiver.put(message(n))
    async with make_inbox("shared") as worker:
        assert await worker.put(message(0)) is False  # dedup state is stored too
        async with Running(worker, recorder):
            await stats_reach(worker, pending=0, done=3)
    assert recorder.handled == [0, 1, 2]


@durable
async def test_a_worker_renews_its_claims_so_a_long_handling_is_not_taken_over(make_inbox: MakeInbox) -> None:
    calls: list[str] = []

    async def slow(message: fota.CallbackMessage) -> None:
        calls.append("slow")
        await anyio.sleep(1.0)  # two and a half times claim_idle

    async def other(message: fota.CallbackMessage) -> None:
        calls.append("other")

    async with make_inbox("shared", claim_idle=0.4) as first, make_inbox("shared", claim_idle=0.4) as second:
        await first.put(message(1))
        async with Running(first, slow):
            await until(lambda: calls == ["slow"])
            async with Running(second, other):
                await stats_reach(first, done=1)
    assert calls == ["slow"]


async def test_a_closed_inbox_opens_again_when_used_keeping_what_it_held(make_inbox: MakeInbox) -> None:
    """`fota_lifespan` closes the inbox at every shutdown: an app whose lifespan runs again (a second
    `TestClient(app)`) goes on with the same inbox object."""
    recorder = Recorder()
    inbox = make_inbox()
    try:
        assert await inbox.put(message(1)) is True
        await inbox.aclose()
        assert await inbox.put(message(2)) is True
        assert await inbox.put(message(1)) is False  # its dedup window survived the close
        assert (await inbox.ready()).ok
        async with Running(inbox, recorder):
            await stats_reach(inbox, done=2)
        await inbox.aclose()
        await inbox.aclose()  # twice is fine
        assert await inbox.stats() == stats(done=2)
    finally:
        await inbox.aclose()
    assert recorder.handled == [1, 2]


@durable
async def test_an_inbox_made_not_to_create_finds_none_and_changes_nothing(make_inbox: MakeInbox) -> None:
    inbox = make_inbox("absent", create=False)
    try:
        for call in (inbox.stats(), inbox.put(message(1)), inbox.dead_letters()):
            with pytest.raises(InboxNotFoundError):
                await call
        assert not (await inbox.ready()).ok
    finally:
        await inbox.aclose()
    async with make_inbox("absent") as created:
        await created.put(message(1))
    async with make_inbox("absent", create=False) as existing:
        assert (await existing.stats()).pending == 1


# --- cost -----------------------------------------------------------------------------------------------------------


def lines_run(coroutine: Coroutine[Any, Any, object]) -> int:
    """How many lines of Python `coroutine` runs to its end (it must not suspend): a count of work, not a timing."""
    count = 0

    def tracer(frame: FrameType, event: str, arg: object) -> Any:
        nonlocal count
        count += event == "line"
        return tracer

    sys.settrace(tracer)
    try:
        coroutine.send(None)
    except StopIteration:
        pass
    else:
        raise AssertionError("the coroutine suspended")
    finally:
        sys.settrace(None)
    return count


def test_a_memory_inbox_puts_in_constant_time_however_much_it_holds() -> None:
    # The dedup bookkeeping was rebuilt on every put: 40,000 stored made a put about 40 times slower. Counted in
    # lines run, a put with 40,000 entries held does the same work as with 100.
    inbox = MemoryInbox()
    for n in range(100):
        lines_run(inbox.put(message(n)))
    few = lines_run(inbox.put(message(100)))
    for n in range(101, 40_000):
        lines_run(inbox.put(message(n)))
    many = lines_run(inbox.put(message(40_000)))
    assert few == many
    assert lines_run(inbox.put(message(40_000))) <= many  # a duplicate: no more work either
