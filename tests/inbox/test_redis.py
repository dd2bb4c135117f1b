"""What only `RedisInbox` does, against real redis-server processes: every Redis fault of issue 22 survived (emptied,
restarted without its files, unreachable, a read-only replica), `create=False` changing nothing, batches on the
wire, and order keys that wait off the queue.

Each test that breaks its Redis starts its own (`RedisServer` on a free port, stopped by pid); the others share the
session's and keep apart by stream name.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import redis.asyncio

import fota_callbacks as fota
from fota_callbacks.inbox import InboxNotFoundError, InboxStats, InboxUnavailableError, Readiness, RedisInbox
from tests.support.harness import free_port
from tests.support.inbox import Clock, RedisServer, Running, redis_server, stats_reach, until

pytestmark = pytest.mark.anyio

__all__ = ["redis_server"]  # a fixture, used below


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # RedisInbox refuses trio (tests/inbox/test_stores.py)


def message(n: int, **fields: Any) -> bytes:
    return json.dumps({"type": "upgradeProgress", "accountName": "0000123456-00001", "n": n, **fields}).encode()


class Recorder:
    """A handler recording each message's `n`; it waits while `gate` is closed."""

    def __init__(self) -> None:
        self.handled: list[int] = []
        self.gate = anyio.Event()
        self.gate.set()
        self.failing: set[int] = set()

    async def __call__(self, message: fota.CallbackMessage) -> None:
        await self.gate.wait()
        self.handled.append(message.raw["n"])
        if message.raw["n"] in self.failing:
            raise RuntimeError(f"cannot handle {message.raw['n']}")


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, for the tests that empty, stop or restart it."""
    directory = tmp_path / "redis"
    directory.mkdir()
    server = RedisServer(directory).start()
    yield server
    server.stop()


@pytest.fixture
async def observer(request: pytest.FixtureRequest) -> AsyncIterator[redis.asyncio.Redis]:
    """A plain redis-py client on the test's Redis (its own when it has one), to look and to break things."""
    server: RedisServer = (
        request.getfixturevalue("own_redis")
        if "own_redis" in request.fixturenames
        else request.getfixturevalue("redis_server")
    )
    client = redis.asyncio.Redis.from_url(server.url)
    yield client
    await client.aclose()


async def keys_of(observer: redis.asyncio.Redis, stream: str) -> dict[bytes | str, bytes | str]:
    """Every key under the stream's name, with its type."""
    found = await observer.keys(f"{stream}*")
    return {key: await observer.type(key) for key in sorted(found)}


async def command_calls(observer: redis.asyncio.Redis, command: str) -> int:
    """How many times Redis ran `command` since its statistics were last reset (scripts' commands included)."""
    stats = await observer.info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


# --- Redis replaced by an empty one ------------------------------------------------------------------------------


async def test_a_redis_emptied_under_a_running_worker_gets_its_group_back_and_handles_what_came_after(
    own_redis: RedisServer, observer: redis.asyncio.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    # FLUSHALL (or a failover to an empty replica): before, the router answered 200, XADD made a new stream, and the
    # worker logged NOGROUP for ever.
    recorder = Recorder()
    async with RedisInbox(own_redis.url, stream="emptied", poll_interval=0.01) as inbox:
        async with Running(inbox, recorder, concurrency=2):
            for n in range(3):
                assert await inbox.put(message(n)) is True
            await stats_reach(inbox, done=3)
            await observer.flushall()
            assert await keys_of(observer, "emptied") == {}
            for n in range(3, 8):
                assert await inbox.put(message(n)) is True
            await stats_reach(inbox, pending=0, done=5)
            assert (await inbox.ready()).ok
        [group] = await observer.xinfo_groups("emptied")
        assert group["name"] == b"fota-callbacks"
    assert sorted(recorder.handled) == list(range(8))
    assert "NOGROUP" not in caplog.text


async def test_a_redis_restarted_without_its_files_is_used_again_and_what_is_put_after_is_handled(
    own_redis: RedisServer, observer: redis.asyncio.Redis
) -> None:
    recorder = Recorder()
    inbox = RedisInbox(own_redis.url, stream="amnesia", poll_interval=0.01, socket_timeout=2)
    async with inbox, Running(inbox, recorder):
        await inbox.put(message(1))
        await stats_reach(inbox, done=1)
        own_redis.stop()
        shutil.rmtree(own_redis.directory)  # no AOF, no RDB: the restart starts empty
        own_redis.directory.mkdir()
        with pytest.raises(InboxUnavailableError, match="the Redis inbox 'amnesia' failed: ConnectionError"):
            await inbox.put(message(2))
        assert not (await inbox.ready()).ok
        own_redis.start()
        assert await keys_of(observer, "amnesia") == {}
        for n in (2, 3, 4):
            assert await inbox.put(message(n)) is True  # the sender's retry of 2 is stored now
        await stats_reach(inbox, pending=0, done=3)
        assert await inbox.ready() == Readiness(ok=True)
    assert sorted(recorder.handled) == [1, 2, 3, 4]


# --- Redis unreachable for a while ---------------------------------------------------------------------------------


async def test_while_redis_is_unreachable_puts_are_refused_the_worker_retries_and_everything_acknowledged_is_handled(
    own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    recorder.gate = anyio.Event()  # the handlers wait: the entries are claimed, not done, when Redis goes away
    async with RedisInbox(own_redis.url, stream="outage", poll_interval=0.01, socket_timeout=2) as inbox:
        with caplog.at_level(logging.WARNING, "fota_callbacks.inbox"):
            async with Running(inbox, recorder, concurrency=5):
                for n in range(5):
                    assert await inbox.put(message(n)) is True
                await stats_reach(inbox, in_flight=5)  # one handler each, waiting at the gate
                own_redis.stop()  # acknowledged entries are on disk (appendfsync always)
                with pytest.raises(InboxUnavailableError, match="ConnectionError"):
                    await inbox.put(message(5))
                readiness = await inbox.ready()
                assert not readiness.ok
                assert "ConnectionError" in str(readiness.reason)
                recorder.gate.set()  # handled while Redis is away: the outcomes wait in the worker
                await until(lambda: sorted(recorder.handled) == list(range(5)))
                await until(lambda: "cannot record or claim entries" in caplog.text)
                own_redis.start()
                assert await inbox.put(message(5)) is True  # the sender's retry
                await stats_reach(inbox, pending=0, done=6)
    assert sorted(recorder.handled) == list(range(6))  # each once: the outcomes held through the outage were recorded


async def test_a_redis_out_of_memory_refuses_what_it_cannot_store_and_loses_nothing(
    own_redis: RedisServer, observer: redis.asyncio.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    # Out of memory, Redis refuses some writes and not others (XREADGROUP, ZREM): a step that half ran would hand
    # out entries nobody claimed, or take a dead letter out of the dead letters without queueing it.
    recorder = Recorder()
    async with RedisInbox(own_redis.url, stream="full", poll_interval=0.01) as earlier:
        await earlier.put(b"not json")
        async with Running(earlier, recorder):
            await stats_reach(earlier, dead=1)
    async with RedisInbox(own_redis.url, stream="full", clock=Clock(), poll_interval=0.01) as inbox:
        for n in range(3):
            await inbox.put(message(n))
        await observer.config_set("maxmemory", 1)  # noeviction: every write that may grow memory is refused
        try:
            refused = "failed: OutOfMemoryError: command not allowed when used memory"
            with pytest.raises(InboxUnavailableError, match=refused):
                await inbox.put(message(3))
            with pytest.raises(InboxUnavailableError, match=refused):
                await inbox.retry_dead()
            readiness = await inbox.ready()
            assert not readiness.ok
            assert "maxmemory" in str(readiness.reason)
            with caplog.at_level(logging.WARNING, "fota_callbacks.inbox"):
                async with Running(inbox, recorder):
                    await until(lambda: "cannot record or claim entries" in caplog.text)
            assert recorder.handled == []
        finally:
            await observer.config_set("maxmemory", 0)
        assert await inbox.stats() == InboxStats(pending=3, dead=1, done=0, in_flight=0, oldest_pending_age=0.0)
        async with Running(inbox, recorder):
            await stats_reach(inbox, pending=0, done=3)
        assert len(await inbox.dead_letters()) == 1
    assert sorted(recorder.handled) == [0, 1, 2]


# --- create=False changes nothing -------------------------------------------------------------------------------


async def every_step_finds_no_inbox(inbox: RedisInbox, reason: str, caplog: pytest.LogCaptureFixture) -> None:
    """Every public step raises InboxNotFoundError naming `reason`; a worker on it logs that and creates nothing."""
    steps: dict[str, Callable[[], Awaitable[object]]] = {
        "put": lambda: inbox.put(message(1)),
        "stats": inbox.stats,
        "dead_letters": inbox.dead_letters,
        "retry_dead": inbox.retry_dead,
        "replay": lambda: inbox.replay(since=0),
    }
    for name, step in steps.items():
        with pytest.raises(InboxNotFoundError, match=reason) as caught:
            await step()
        assert f"there is no Redis inbox {inbox.stream!r} at redis://127.0.0.1:" in str(caught.value), name
    readiness = await inbox.ready()
    assert not readiness.ok
    assert reason in str(readiness.reason)
    with caplog.at_level(logging.WARNING, "fota_callbacks.inbox"):
        async with Running(inbox, Recorder()):
            await until(lambda: reason in caplog.text)


async def test_an_inbox_not_to_create_on_a_missing_stream_creates_nothing(
    redis_server: RedisServer, observer: redis.asyncio.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    async with RedisInbox(redis_server.url, stream="typo", create=False, poll_interval=0.01) as inbox:
        await every_step_finds_no_inbox(inbox, "no stream typo", caplog)
    assert await keys_of(observer, "typo") == {}


async def test_an_inbox_not_to_create_on_a_stream_without_its_group_changes_nothing(
    redis_server: RedisServer, observer: redis.asyncio.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    await observer.xadd("other-app", {"event": "theirs"})
    before = await keys_of(observer, "other-app")
    async with RedisInbox(redis_server.url, stream="other-app", create=False, poll_interval=0.01) as inbox:
        await every_step_finds_no_inbox(inbox, "the stream other-app has no consumer group fota-callbacks", caplog)
    assert await keys_of(observer, "other-app") == before
    assert await observer.xinfo_groups("other-app") == []
    assert await observer.xlen("other-app") == 1


async def test_an_inbox_on_a_key_of_another_type_changes_nothing_created_or_not(
    redis_server: RedisServer, observer: redis.asyncio.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    await observer.set("a-string", "someone else's")
    async with RedisInbox(redis_server.url, stream="a-string", create=False, poll_interval=0.01) as inbox:
        await every_step_finds_no_inbox(inbox, "the key a-string holds a string, not a stream", caplog)
    async with RedisInbox(redis_server.url, stream="a-string") as creating:  # never takes the key over either
        with pytest.raises(InboxUnavailableError, match="the key a-string holds a string, not a stream"):
            await creating.put(message(1))
        assert not (await creating.ready()).ok
    assert await keys_of(observer, "a-string") == {b"a-string": b"string"}
    assert await observer.get("a-string") == b"someone else's"


# --- readiness --------------------------------------------------------------------------------------------------


async def test_a_read_only_replica_is_not_ready_and_refuses_puts(own_redis: RedisServer, tmp_path: Path) -> None:
    replica = RedisServer(tmp_path).start("--replicaof", "127.0.0.1", str(own_redis.port))
    try:
        async with RedisInbox(own_redis.url, stream="replicated") as primary:
            await primary.put(message(1))
            assert (await primary.ready()).ok
        async with RedisInbox(replica.url, stream="replicated", socket_timeout=2) as inbox:
            readiness = await inbox.ready()
            assert not readiness.ok
            assert "ReadOnlyError" in str(readiness.reason)
            with pytest.raises(InboxUnavailableError, match="read only replica"):
                await inbox.put(message(2))
    finally:
        replica.stop()


async def test_an_unreachable_redis_is_not_ready_and_the_reason_keeps_the_password_out() -> None:
    url = f"redis://:secret-redis-password@127.0.0.1:{free_port()}/0"
    async with RedisInbox(url, stream="nowhere", socket_timeout=2) as inbox:
        readiness = await inbox.ready()
        with pytest.raises(InboxUnavailableError) as caught:
            await inbox.put(message(1))
    assert not readiness.ok
    assert "ConnectionError" in str(readiness.reason)
    for text in (str(readiness.reason), str(caught.value), repr(inbox)):
        assert "secret-redis-password" not in text


async def test_a_stream_without_its_group_is_made_whole_by_ready_when_the_inbox_may_create(
    redis_server: RedisServer, observer: redis.asyncio.Redis
) -> None:
    async with RedisInbox(redis_server.url, stream="regrouped") as inbox:
        await inbox.put(message(1))
        await observer.xgroup_destroy("regrouped", "fota-callbacks")  # an operator's mistake
        assert await inbox.ready() == Readiness(ok=True)
        [group] = await observer.xinfo_groups("regrouped")
        assert group["name"] == b"fota-callbacks"
        recorder = Recorder()
        async with Running(inbox, recorder):
            await stats_reach(inbox, pending=0, done=1)
    assert recorder.handled == [1]


# --- on the wire: batches, and order keys that wait off the queue ---------------------------------------------------


async def test_a_worker_claims_and_records_in_batches(own_redis: RedisServer, observer: redis.asyncio.Redis) -> None:
    # Issue 27: each entry was claimed and completed one at a time, two scripts (round trips) per message at least.
    recorder = Recorder()
    async with RedisInbox(own_redis.url, stream="batches", poll_interval=0.01) as inbox:
        for n in range(200):
            await inbox.put(message(n))
        await observer.config_resetstat()
        async with Running(inbox, recorder, concurrency=4):
            await until(lambda: len(recorder.handled) == 200)
        scripts = await command_calls(observer, "evalsha")
        reads = await command_calls(observer, "xreadgroup")
        assert await inbox.stats() == InboxStats(pending=0, dead=0, done=200, in_flight=0, oldest_pending_age=0.0)
    assert sorted(recorder.handled) == list(range(200))
    assert scripts < 100, f"{scripts} scripts for 200 messages: not batched"
    assert reads < 50, f"{reads} XREADGROUP for 200 messages: not batched"


async def test_an_entry_held_back_by_its_order_key_waits_off_the_queue_until_its_predecessor_is_done(
    own_redis: RedisServer, observer: redis.asyncio.Redis
) -> None:
    clock = Clock()
    recorder = Recorder()
    recorder.failing = {1}

    def device(message: fota.CallbackMessage) -> str:
        return str(message.raw["device"])

    async with RedisInbox(own_redis.url, stream="ordered", clock=clock, retry_base=30, poll_interval=0.01) as inbox:
        await inbox.put(message(1, device="a"))
        await inbox.put(message(2, device="a"))
        async with Running(inbox, recorder, order_key=device):
            await until(lambda: recorder.handled == [1])
            await stats_reach(inbox, pending=2, in_flight=0)
            await observer.config_resetstat()
            await anyio.sleep(0.3)  # thirty polls: 2 is not claimed, released and claimed again each time
            assert await command_calls(observer, "evalsha") > 10  # the worker did look
            assert await command_calls(observer, "xclaim") == 0
            assert await command_calls(observer, "xack") == 0
            assert await observer.xpending("ordered", "fota-callbacks") == {
                "pending": 0,
                "min": None,
                "max": None,
                "consumers": [],
            }
            recorder.failing.clear()
            clock.advance(30)
            await stats_reach(inbox, pending=0, done=2)
    assert recorder.handled == [1, 1, 2]


# --- what is left in Redis --------------------------------------------------------------------------------------


async def test_dedup_keys_live_on_the_inbox_clock_and_nothing_relies_on_redis_expiry(
    redis_server: RedisServer, observer: redis.asyncio.Redis
) -> None:
    clock = Clock()
    async with RedisInbox(redis_server.url, stream="no-ttl", clock=clock, retain_done=60, poll_interval=0.01) as inbox:
        for n in range(3):
            await inbox.put(message(n))
        async with Running(inbox, Recorder()):
            await stats_reach(inbox, done=3)
        assert all([await observer.ttl(key) == -1 for key in await keys_of(observer, "no-ttl")])
        assert await observer.zcard("no-ttl:dedup") == 3
        clock.advance(inbox.dedup_window)  # the worker's housekeeping purges what expired on the inbox clock
        async with Running(inbox, Recorder()):
            await stats_reach(inbox, done=0)
            with anyio.fail_after(10):
                while await observer.zcard("no-ttl:dedup"):  # noqa: ASYNC110 - the worker purges
                    await anyio.sleep(0.01)
        assert await observer.xlen("no-ttl") == 0  # done records purged after retain_done


async def test_entries_whose_stream_records_vanished_are_dropped_with_an_error_and_work_goes_on(
    redis_server: RedisServer, observer: redis.asyncio.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    recorder = Recorder()
    recorder.failing = {1}
    async with RedisInbox(redis_server.url, stream="vanished", clock=clock, retry_base=30, poll_interval=0.01) as inbox:
        await inbox.put(message(1))
        async with Running(inbox, recorder):
            await until(lambda: recorder.handled == [1])  # its one attempt failed (before: pending 1 too)
            await stats_reach(inbox, pending=1, in_flight=0)  # 1 waits for its retry
            await observer.delete("vanished")  # the stream alone, and its group with it
            assert await inbox.put(message(2)) is True
            await stats_reach(inbox, pending=1, done=1)
            clock.advance(30)
            await stats_reach(inbox, pending=0, done=1)
    assert recorder.handled == [1, 2]
    assert "FOTA inbox entries 1 vanished from the Redis stream 'vanished' and were dropped" in caplog.text


@pytest.mark.parametrize("made_again_by", ["put", "worker"])
async def test_entries_no_worker_read_before_their_stream_vanished_are_dropped_with_an_error(
    redis_server: RedisServer, observer: redis.asyncio.Redis, caplog: pytest.LogCaptureFixture, made_again_by: str
) -> None:
    """Only the stream key lost (a DEL, or eviction under an allkeys policy): an entry no worker had read went with
    it, and is dropped with an error, not counted pending for ever."""
    recorder = Recorder()
    stream = f"unread-{made_again_by}"
    async with RedisInbox(redis_server.url, stream=stream, poll_interval=0.01) as inbox:
        assert await inbox.put(message(1)) is True
        await observer.delete(stream)
        if made_again_by == "put":
            assert await inbox.put(message(2)) is True
        async with Running(inbox, recorder):
            await stats_reach(inbox, pending=0, done=1 if made_again_by == "put" else 0)
    assert recorder.handled == ([2] if made_again_by == "put" else [])
    assert f"FOTA inbox entries 1 vanished from the Redis stream '{stream}' and were dropped" in caplog.text
