"""The inbox contract, the same tests over MemoryInbox, SqliteInbox and RedisInbox (a real redis-server).

Memory and SQLite run on asyncio and trio; Redis on asyncio (redis-py's asyncio client), and it refuses trio
with a clear error. Retry timing runs on an injected clock; waiting is real but short (`poll_interval`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import anyio
import pytest

import fota_callbacks as fota
from fota_callbacks.inbox import Inbox, InboxStats, MemoryInbox, RedisInbox, SqliteInbox
from tests.support.inbox import (
    Clock,
    MakeInbox,
    anyio_backend,
    case,
    make_inbox,
    postgres_server,
    redis_server,
    stats_reach,
)

pytestmark = pytest.mark.anyio

__all__ = ["anyio_backend", "case", "make_inbox", "postgres_server", "redis_server"]  # fixtures, used below


def message(n: int, **fields: Any) -> bytes:
    return json.dumps({"type": "upgradeProgress", "accountName": "0000123456-00001", "n": n, **fields}).encode()


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


async def until(condition: Callable[[], bool]) -> None:
    with anyio.fail_after(10):
        while not condition():  # noqa: ASYNC110 - state another task changes without notifying
            await anyio.sleep(0.005)


class Running:
    """`inbox.run(...)` in the background, for the duration of an `async with`."""

    def __init__(self, inbox: Inbox, handler: Any, **options: Any) -> None:
        self.inbox, self.handler, self.options = inbox, handler, options

    async def __aenter__(self) -> Running:
        self._tasks = anyio.create_task_group()
        await self._tasks.__aenter__()
        self._tasks.start_soon(lambda: self.inbox.run(self.handler, **self.options))
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        self._tasks.cancel_scope.cancel()
        await self._tasks.__aexit__(*exc_info)


def test_each_inbox_exposes_exactly_the_inbox_methods() -> None:
    # What the reference shows as public is what the protocol promises; helpers stay private.
    documented = {name for name in dir(Inbox) if not name.startswith("_")}
    assert documented == {"put", "run", "stats", "dead_letters", "retry_dead", "aclose"}
    for kind in (MemoryInbox, SqliteInbox, RedisInbox):
        assert {name for name in dir(kind) if not name.startswith("_")} == documented, kind.__name__


async def test_every_stored_message_is_handled_oldest_first(make_inbox: MakeInbox) -> None:
    recorder = Recorder()
    async with make_inbox() as inbox:
        assert isinstance(inbox, Inbox)
        assert [await inbox.put(message(n)) for n in range(6)] == [True] * 6
        assert await inbox.stats() == InboxStats(pending=6, dead=0, done=0)
        async with Running(inbox, recorder):
            await stats_reach(inbox, done=6)
        assert recorder.handled == list(range(6))
        assert await inbox.stats() == InboxStats(pending=0, dead=0, done=6)
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


async def test_an_identical_body_within_the_window_is_stored_once(make_inbox: MakeInbox) -> None:
    async with make_inbox(dedup_window=0.3) as inbox:
        assert await inbox.put(message(1)) is True
        assert await inbox.put(message(1)) is False  # the sender's retry
        assert await inbox.put(message(2)) is True
        assert (await inbox.stats()).pending == 2
        await anyio.sleep(0.35)
        assert await inbox.put(message(1)) is True  # the window has passed
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
            # Logged in the same step that schedules the retry: once it shows, the due time is set.
            return sum(record.name == "fota_callbacks.inbox" for record in caplog.records)

        with caplog.at_level(logging.WARNING, "fota_callbacks.inbox"):
            async with Running(inbox, recorder, max_attempts=3):
                await until(lambda: recorder.handled == [1, 2] and failures_logged() == 1)
                clock.advance(9.9)  # not due again before retry_base seconds
                await anyio.sleep(0.05)
                assert recorder.handled == [1, 2]
                clock.advance(0.1)
                await until(lambda: recorder.handled == [1, 2, 1] and failures_logged() == 2)
                clock.advance(14.9)  # doubled would be 20 s, but retry_max caps it at 15 s
                await anyio.sleep(0.05)
                assert recorder.handled == [1, 2, 1]
                clock.advance(0.1)
                await until(lambda: recorder.handled == [1, 2, 1, 1])
                await stats_reach(inbox, pending=0, dead=1, done=1)

        [dead] = await inbox.dead_letters()
        assert (dead.body, dead.attempts) == (message(1), 3)
        assert dead.last_error == "RuntimeError: cannot handle 1\\nCRITICAL root: forged"
        assert dead.received_at.timestamp() == 1_800_000_000.0  # when put stored it, on the inbox's clock
        # Every log line the worker wrote is one line: the handler's error text is escaped.
        messages = [record.getMessage() for record in caplog.records if record.name == "fota_callbacks.inbox"]
        assert len(messages) == 3
        assert all("\n" not in text and "forged" in text for text in messages)

        recorder.failing.clear()
        assert await inbox.retry_dead(dead.id + 1000) == 0
        assert await inbox.retry_dead(dead.id) == 1
        assert await inbox.stats() == InboxStats(pending=1, dead=0, done=1)
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


async def test_a_handling_cut_short_by_cancellation_is_handled_again(make_inbox: MakeInbox) -> None:
    started = anyio.Event()
    calls: list[int] = []

    async def handler(message: fota.CallbackMessage) -> None:
        calls.append(message.raw["n"])
        if len(calls) == 1:
            started.set()
            await anyio.sleep_forever()

    async with make_inbox() as inbox:
        await inbox.put(message(5))
        async with Running(inbox, handler):
            await started.wait()
        assert await inbox.stats() == InboxStats(pending=1, dead=0, done=0)
        async with Running(inbox, handler):
            await stats_reach(inbox, pending=0, done=1)
    assert calls == [5, 5]


async def test_what_one_handle_stores_another_handle_on_the_same_storage_handles(
    make_inbox: MakeInbox, case: tuple[str, str]
) -> None:
    if case[0] == "memory":
        return  # nothing outlives a MemoryInbox: the point of the others
    recorder = Recorder()
    async with make_inbox("shared") as receiver:
        for n in range(3):
            await receiver.put(message(n))
    async with make_inbox("shared") as worker:
        assert await worker.put(message(0)) is False  # dedup state is stored too
        async with Running(worker, recorder):
            await stats_reach(worker, pending=0, done=3)
    assert recorder.handled == [0, 1, 2]


async def test_a_worker_renews_its_claim_so_a_long_handling_is_not_taken_over(
    make_inbox: MakeInbox, case: tuple[str, str]
) -> None:
    if case[0] == "memory":
        return  # one process: a claim lasts until its worker lets go
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


async def test_bad_arguments_are_refused_with_the_parameter_named(make_inbox: MakeInbox) -> None:
    refused: list[tuple[dict[str, Any], str]] = [
        ({"dedup_window": -1}, "dedup_window"),
        ({"retry_base": 0}, "retry_base"),
        ({"retry_base": 5, "retry_max": 1}, "retry_max"),
        ({"poll_interval": float("nan")}, "poll_interval"),
        ({"clock": 3}, "clock"),
    ]
    for options, parameter in refused:
        with pytest.raises(fota.InvalidArgumentError) as caught:
            make_inbox(**options)
        assert caught.value.parameter == parameter
    async with make_inbox() as inbox:
        with pytest.raises(fota.InvalidArgumentError, match="body"):
            await inbox.put("text")  # type: ignore[arg-type]
        with pytest.raises(fota.InvalidArgumentError) as caught:
            await inbox.run(Recorder(), concurrency=0)
        assert caught.value.parameter == "concurrency"
        with pytest.raises(fota.InvalidArgumentError) as caught:
            await inbox.run(Recorder(), max_attempts=True)
        assert caught.value.parameter == "max_attempts"
