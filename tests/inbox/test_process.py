"""Against the real thing: receivers under uvicorn in their own processes, killed with `kill -9` mid-work.

Every message answered 2xx must be handled at least once after a restart (or by the surviving replica), and
handled twice at most when it was in flight at the kill: being handled, or handled with its outcome not recorded
yet (a worker records outcomes in batches). The handler (tests/support/inbox_app.py) appends one line per
handling to a file, so what was handled survives the kill too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import anyio.to_thread
import httpx
import pytest
import redis.asyncio

from fota_callbacks.inbox import Inbox, InboxStats, RedisInbox, SqliteInbox
from fota_callbacks.inbox._worker import FLUSH_BATCH
from tests.support.inbox import AppServer, RedisServer, app_servers, redis_server
from tests.support.processes import stop

pytestmark = pytest.mark.anyio

__all__ = ["app_servers", "redis_server"]  # fixtures, used below

MESSAGES = 200
WORKERS = 4
IN_FLIGHT = WORKERS + FLUSH_BATCH
"""At most this many handled when the kill came and not recorded done: being handled, or handled and waiting for the
worker's next batch of outcomes."""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the servers are processes; the test only sends requests and RedisInbox is asyncio-only


def handled(record: Path) -> Counter[int]:
    return Counter(int(line) for line in record.read_text().split())


async def wait_until(condition: Callable[[], bool]) -> None:
    with anyio.fail_after(30):
        while not condition():  # noqa: ASYNC110 - the condition is a file other processes write
            await anyio.sleep(0.02)


class Sender:
    """Plays ThingSpace: posts distinct messages and notes which ones were answered 2xx."""

    def __init__(self) -> None:
        self.acknowledged: set[int] = set()

    async def send(self, numbers: Iterator[int], base_urls: list[str]) -> None:
        async with httpx.AsyncClient(timeout=5) as http:
            for n in numbers:
                body = json.dumps({"type": "upgradeProgress", "accountName": "0000123456-00001", "n": n})
                try:
                    answer = await http.post(f"{base_urls[n % len(base_urls)]}/fota/callbacks", content=body)
                except httpx.TransportError:
                    continue  # the server was killed: not acknowledged, the sender will retry
                if answer.is_success:
                    self.acknowledged.add(n)

    async def send_all(self, numbers: list[int], base_urls: list[str], concurrency: int = 8) -> None:
        queue = iter(numbers)
        async with anyio.create_task_group() as senders:
            for _ in range(concurrency):
                senders.start_soon(self.send, queue, base_urls)


async def kill_mid_work(server: AppServer, record: Path, sender: Sender, base_urls: list[str]) -> None:
    """Send every message while `server` handles them; `kill -9` it once a sixth were handled."""
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(sender.send_all, list(range(MESSAGES)), base_urls)
        await wait_until(lambda: sum(handled(record).values()) >= MESSAGES // 6)
        server.kill()
    assert len(sender.acknowledged) >= MESSAGES // 6


async def resend_and_check(
    server: AppServer, record: Path, sender: Sender, open_inbox: Callable[[], Inbox]
) -> InboxStats:
    """The sender retries what was not acknowledged, through `server`; every acknowledged message is handled,
    and no more were handled twice than were in flight at the kill. Returns the drained inbox's stats."""
    await sender.send_all(sorted(set(range(MESSAGES)) - sender.acknowledged), [server.base_url])
    assert sender.acknowledged == set(range(MESSAGES))
    await wait_until(lambda: set(handled(record)) >= sender.acknowledged)
    # A handler's record line is written before its entry is marked done: stopping the server in between would
    # (rightly) leave that entry pending, to be handled again. Wait for the queue to drain, then stop.
    async with open_inbox() as inbox:
        with anyio.fail_after(30):
            while (stats := await inbox.stats()).pending:  # noqa: ASYNC110 - other processes drain it
                await anyio.sleep(0.05)
    server.stop()
    counts = handled(record)
    duplicates = sum(counts.values()) - len(counts)
    assert duplicates <= IN_FLIGHT, f"{duplicates} handled twice, but at most {IN_FLIGHT} were in flight"
    return stats


async def test_sqlite_inbox_loses_nothing_acknowledged_when_the_receiver_is_killed(
    app_servers: Callable[..., AppServer], tmp_path: Path
) -> None:
    database, record = tmp_path / "inbox.db", tmp_path / "handled.txt"
    settings = {"inbox": f"sqlite:{database}", "record": str(record), "delay": "0.01", "workers": str(WORKERS)}
    sender = Sender()
    first = app_servers(**settings).ready()
    await kill_mid_work(first, record, sender, [first.base_url])
    handled_before_restart = handled(record)

    # Restarted on the same file: what was in flight at the kill is handled again once its claim lapsed.
    stats = await resend_and_check(app_servers(**settings).ready(), record, sender, lambda: SqliteInbox(database))
    assert sum(handled_before_restart.values()) < MESSAGES  # the kill really came mid-work
    assert (stats.pending, stats.dead) == (0, 0)
    assert stats.done >= MESSAGES


async def test_redis_inbox_shared_by_two_receivers_loses_nothing_when_one_is_killed(
    redis_server: RedisServer, app_servers: Callable[..., AppServer], tmp_path: Path
) -> None:
    record = tmp_path / "handled.txt"
    settings = {
        "inbox": f"redis:{redis_server.url}",
        "stream": f"process-test:{tmp_path.name}",
        "record": str(record),
        "delay": "0.01",
        "workers": str(WORKERS),
    }
    doomed, survivor = app_servers(**settings), app_servers(**settings)
    doomed.ready(), survivor.ready()
    sender = Sender()
    observer = redis.asyncio.Redis.from_url(redis_server.url)
    try:
        await kill_mid_work(doomed, record, sender, [doomed.base_url, survivor.base_url])
        assert len(await observer.xinfo_consumers(settings["stream"], "fota-callbacks")) == 2
        # What the killed replica had claimed is taken over by the survivor after claim_idle (1 s here), and its
        # consumer, empty then, is deleted by the survivor's housekeeping: the group shows the live replica only.
        with anyio.fail_after(30):
            while len(await observer.xinfo_consumers(settings["stream"], "fota-callbacks")) != 1:  # noqa: ASYNC110
                await anyio.sleep(0.05)
        stats = await resend_and_check(
            survivor, record, sender, lambda: RedisInbox(redis_server.url, stream=settings["stream"])
        )
        assert await observer.xinfo_consumers(settings["stream"], "fota-callbacks") == []  # the survivor left
    finally:
        await observer.aclose()
    assert (stats.pending, stats.dead) == (0, 0)
    assert stats.done >= MESSAGES


# --- a worker process of its own (`fota-callbacks inbox work`), stopped by its handler or killed ---------------------

HANDLER = """
import os
import anyio

async def on_message(message):
    with open(os.environ["FOTA_TEST_RECORD"], "a") as record:
        record.write(f"{message.raw['n']}\\n")
    if message.raw["n"] == int(os.environ.get("FOTA_TEST_INTERRUPT_ON", "-1")):
        raise KeyboardInterrupt
    await anyio.sleep(float(os.environ.get("FOTA_TEST_DELAY", "0")))
"""


class WorkerProcesses:
    """`fota-callbacks inbox work` processes on one inbox, with the handler above (importable from their working
    directory), each configured through the environment; stopped by pid at the end of the test."""

    def __init__(self, directory: Path, store: list[str], open_inbox: Callable[[], Inbox]) -> None:
        self.directory, self.store, self.open_inbox = directory, store, open_inbox
        self.record = directory / "handled.txt"
        (directory / "hooks.py").write_text(HANDLER)
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, *options: str, **settings: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, "FOTA_TEST_RECORD": str(self.record)}
        env.update({f"FOTA_TEST_{name.upper()}": value for name, value in settings.items()})
        command = [
            sys.executable,
            "-m",
            "fota_callbacks",
            "inbox",
            "work",
            *self.store,
            "--handler",
            "hooks:on_message",
        ]
        process = subprocess.Popen([*command, *options], cwd=self.directory, env=env)
        self.started.append(process)
        return process

    def handled(self) -> list[int]:
        return [int(line) for line in self.record.read_text().split()] if self.record.exists() else []

    async def put(self, *numbers: int) -> None:
        async with self.open_inbox() as inbox:
            for n in numbers:
                body = {"type": "upgradeProgress", "accountName": "0000123456-00001", "n": n}
                assert await inbox.put(json.dumps(body).encode())

    async def stats(self) -> InboxStats:
        async with self.open_inbox() as inbox:
            return await inbox.stats()

    async def stats_reach(self, **expected: float) -> InboxStats:
        """Wait until the stats show `expected`: a worker records what its handler did with its next step, a moment
        after the handler returned."""
        with anyio.fail_after(30):
            while True:
                stats = await self.stats()
                if all(getattr(stats, name) == value for name, value in expected.items()):
                    return stats
                await anyio.sleep(0.05)


@pytest.fixture(params=["sqlite", "redis"])
def workers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[WorkerProcesses]:
    if request.param == "sqlite":
        path = tmp_path / "inbox.db"
        started = WorkerProcesses(tmp_path, ["--sqlite", str(path)], lambda: SqliteInbox(path))
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        stream = f"worker-test:{tmp_path.name}"
        started = WorkerProcesses(
            tmp_path, ["--redis", server.url, "--stream", stream], lambda: RedisInbox(server.url, stream=stream)
        )
    yield started
    for process in started.started:
        stop(process)


async def test_a_handler_raising_keyboard_interrupt_ends_its_worker_process_and_its_entry_is_given_back_at_once(
    workers: WorkerProcesses,
) -> None:
    await workers.put(1, 2)
    interrupted = workers.start(interrupt_on="1")
    assert await anyio.to_thread.run_sync(lambda: interrupted.wait(timeout=30)) == 130  # the process ended
    after = await workers.stats()
    assert (after.pending, after.in_flight) == (2, 0)  # given back, not held until claim_idle (60 s) lapses
    workers.start()  # the next worker handles it at once
    await wait_until(lambda: workers.handled() == [1, 1, 2])
    await workers.stats_reach(pending=0, done=2)


async def test_a_worker_killed_mid_handler_shows_its_entry_in_flight_and_stale_until_it_is_taken_over(
    workers: WorkerProcesses,
) -> None:
    await workers.put(7)
    doomed = workers.start("--claim-idle", "6", delay="600")
    await wait_until(lambda: workers.handled() == [7])
    doomed.kill()  # kill -9 in the middle of the handler: nothing released
    doomed.wait()
    shown = await workers.stats()
    assert (shown.pending, shown.in_flight) == (1, 1)
    with anyio.fail_after(30):
        while (shown := await workers.stats()).stale == 0:  # noqa: ASYNC110 - the clock is what is awaited
            await anyio.sleep(0.05)
    assert (shown.pending, shown.in_flight, shown.stale) == (1, 1, 1)  # not renewed for half of claim_idle
    assert shown.next_takeover is not None
    assert 0 < shown.next_takeover <= 3
    await anyio.sleep(shown.next_takeover / 4)
    later = await workers.stats()
    assert (later.in_flight, later.stale) == (1, 1)
    assert later.next_takeover is not None
    assert later.next_takeover < shown.next_takeover  # counting down to the takeover
    workers.start("--claim-idle", "6")  # another worker takes it over once the claim lapses
    await wait_until(lambda: workers.handled() == [7, 7])
    await workers.stats_reach(pending=0, done=1)
