"""Against the real thing: receivers under uvicorn in their own processes, killed with `kill -9` mid-work.

Every message answered 2xx must be handled at least once after a restart (or by the surviving replica), and
handled twice at most when it was in flight at the kill. The handler (tests/support/inbox_app.py) appends one line per
handling to a file, so what was handled survives the kill too.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import httpx
import pytest
import redis.asyncio

from fota_callbacks.inbox import Inbox, InboxStats, RedisInbox, SqliteInbox
from tests.support.inbox import AppServer, RedisServer, app_servers, redis_server

pytestmark = pytest.mark.anyio

__all__ = ["app_servers", "redis_server"]  # fixtures, used below

MESSAGES = 200
WORKERS = 4


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
    assert duplicates <= WORKERS, f"{duplicates} handled twice, but only {WORKERS} were in flight"
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
