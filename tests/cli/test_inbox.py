"""`fota-callbacks inbox stats|dead|retry` as a real process, on a SqliteInbox file and on a real redis-server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from fota_callbacks.callbacks import CallbackMessage
from fota_callbacks.inbox import Inbox, RedisInbox, SqliteInbox
from tests.support.cli_process import ACCOUNT, cli
from tests.support.harness import free_port
from tests.support.inbox import RedisServer

PASSWORD = "inbox-echoed-password"


def _body(n: int, kind: str = "upgradeProgress") -> bytes:
    message = {"type": kind, "accountName": ACCOUNT, "username": "cb", "password": PASSWORD, "n": n}
    return json.dumps(message).encode()


async def _two_dead_one_done(inbox: Inbox) -> None:
    """Store three messages: one handled, one its handler fails on, one unreadable; the last two are dead."""
    for body in (_body(0), _body(1, "firmwareList"), b"not json at all"):
        assert await inbox.put(body)

    async def handler(message: CallbackMessage) -> None:
        if message.extra.get("n") == 1:
            raise KeyError("no such device")

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(lambda: inbox.run(handler, max_attempts=1))
        with anyio.fail_after(20):
            while (await inbox.stats()).dead < 2:  # noqa: ASYNC110  (the store's state is what is awaited)
                await anyio.sleep(0.05)
        tasks.cancel_scope.cancel()


def _prepare(inbox: SqliteInbox | RedisInbox) -> None:
    async def main() -> None:
        async with inbox:
            await _two_dead_one_done(inbox)

    anyio.run(main)  # asyncio: RedisInbox runs on asyncio only


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[str]]:
    """The CLI options naming an inbox with two dead letters (one unreadable) and one handled message."""
    if request.param == "sqlite":
        path = str(tmp_path / "inbox.db")
        _prepare(SqliteInbox(path))
        yield ["--sqlite", path]
        return
    server = RedisServer(tmp_path).start()
    try:
        _prepare(RedisInbox(server.url))
        yield ["--redis", server.url]
    finally:
        server.stop()


def test_stats_dead_and_retry(store: list[str]) -> None:
    stats = cli("inbox", "stats", *store)
    assert (stats.returncode, stats.stdout) == (0, "pending  0\ndead     2\ndone     1\n"), stats.stderr

    dead = cli("inbox", "dead", *store, "--json")
    assert dead.returncode == 0, dead.stderr
    readable, unreadable = sorted(json.loads(dead.stdout), key=lambda entry: "unreadable" in entry)
    assert (readable["type"], readable["account"], readable["attempts"]) == ("firmwareList", ACCOUNT, 1)
    assert readable["last_error"] == "KeyError: 'no such device'"
    assert readable["message"]["password"] == "***"
    assert unreadable["unreadable"].startswith("callback body is not JSON")
    listed = cli("inbox", "dead", *store)
    assert f"firmwareList for {ACCOUNT}" in listed.stdout
    assert "1 failed attempt; last error: KeyError: 'no such device'" in listed.stdout
    assert PASSWORD not in dead.stdout + listed.stdout

    one = cli("inbox", "retry", *store, "--id", str(readable["id"]))
    assert (one.returncode, one.stdout) == (0, "re-queued 1 dead letter(s)\n")
    assert cli("inbox", "stats", *store, "--json").stdout == '{"pending": 1, "dead": 1, "done": 1}\n'
    gone = cli("inbox", "retry", *store, "--id", str(readable["id"]))
    assert gone.returncode == 1
    assert f"no dead letter with id {readable['id']}" in gone.stderr
    rest = cli("inbox", "retry", *store, "--json")
    assert (rest.returncode, json.loads(rest.stdout)) == (0, {"requeued": 1})
    assert cli("inbox", "dead", *store).stdout == "(no dead letters)\n"


def test_a_wrong_store_is_one_line(tmp_path: Path) -> None:
    missing = cli("inbox", "stats", "--sqlite", str(tmp_path / "typo.db"))
    assert missing.returncode == 2
    assert missing.stderr == f"fota-callbacks: error: --sqlite: no inbox file at {str(tmp_path / 'typo.db')!r}\n"
    assert not (tmp_path / "typo.db").exists()

    host = f"127.0.0.1:{free_port()}"
    unreachable = cli("inbox", "stats", "--redis", f"redis://:secret-redis-password@{host}/0", "--json")
    assert unreachable.returncode == 4
    error = json.loads(unreachable.stderr)
    assert error["host"] == host
    assert "secret-redis-password" not in unreachable.stderr

    both = cli("inbox", "stats", "--sqlite", "a.db", "--redis", "redis://127.0.0.1:1")
    assert both.returncode == 2
    assert "not allowed with argument" in both.stderr
    stray_id = cli("inbox", "dead", "--sqlite", "a.db", "--id", "3")
    assert (stray_id.returncode, stray_id.stderr) == (2, "fota-callbacks: error: --id: only `retry` takes an id\n")
