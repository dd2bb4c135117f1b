"""`fota-callbacks inbox stats|dead|retry|replay|work` as a real process, on a SqliteInbox file and on a real
redis-server (RedisInbox: these pass with the RedisInbox built on the batch inbox core)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import textwrap
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import anyio
import pytest

from fota_callbacks.callbacks import CallbackMessage
from fota_callbacks.inbox import Inbox, InboxStats, RedisInbox, SqliteInbox
from tests.support.cli_process import ACCOUNT, clean_env, cli, running
from tests.support.harness import free_port
from tests.support.inbox import RedisServer

PASSWORD = "inbox-echoed-password"


def _body(n: int, kind: str = "upgradeProgress") -> bytes:
    message = {"type": kind, "accountName": ACCOUNT, "username": "cb", "password": PASSWORD, "n": n}
    return json.dumps(message).encode()


async def _two_dead_one_done(inbox: Inbox) -> None:
    """Store three messages: one handled, one its handler fails on, one unreadable; the last two are dead."""
    for body in (_body(0), _body(1, "firmwareList"), b'not json, "password": "' + PASSWORD.encode() + b'"'):
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


def _in(inbox: SqliteInbox | RedisInbox, *steps: bytes) -> InboxStats:
    """Put `steps` (bodies) into the inbox, in this process; its stats after."""

    async def main() -> InboxStats:
        async with inbox:
            for body in steps:
                await inbox.put(body)
            return await inbox.stats()

    return anyio.run(main)  # asyncio: RedisInbox runs on asyncio only


def _prepare(inbox: SqliteInbox | RedisInbox) -> None:
    async def main() -> None:
        async with inbox:
            await _two_dead_one_done(inbox)

    anyio.run(main)


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


def _opened(store: list[str]) -> SqliteInbox | RedisInbox:
    """Another handle on the inbox `store` names, for a test to look at from this process."""
    return SqliteInbox(store[1], create=False) if store[0] == "--sqlite" else RedisInbox(store[1], create=False)


def test_stats_dead_and_retry(store: list[str]) -> None:
    stats = cli("inbox", "stats", *store)
    assert stats.returncode == 0, stats.stderr
    assert stats.stdout == (
        "pending             0\nin_flight           0\ndead                2\ndone                1\n"
        "oldest_pending_age  0.0 s\n"
    )
    every_field = json.loads(cli("inbox", "stats", *store, "--json").stdout)
    assert every_field == {
        "pending": 0,
        "dead": 2,
        "done": 1,
        "in_flight": 0,
        "oldest_pending_age": 0.0,
        "stale": 0,
        "next_takeover": None,
    }

    dead = cli("inbox", "dead", *store, "--json")
    assert dead.returncode == 0, dead.stderr
    readable, unreadable = sorted(json.loads(dead.stdout), key=lambda entry: "unreadable" in entry)
    assert set(readable) == {"id", "type", "account", "attempts", "last_error", "received_at", "size"}  # no body
    assert (readable["type"], readable["account"], readable["attempts"]) == ("firmwareList", ACCOUNT, 1)
    assert readable["last_error"] == "KeyError: 'no such device'"
    assert readable["size"] == len(_body(1, "firmwareList"))
    assert unreadable["unreadable"].startswith("callback body is not JSON")
    listed = cli("inbox", "dead", *store)
    assert f"firmwareList for {ACCOUNT}, {readable['size']} bytes" in listed.stdout
    assert "1 failed attempt; last error: KeyError: 'no such device'" in listed.stdout
    assert "  body: " not in listed.stdout
    assert all("body" not in entry for entry in json.loads(dead.stdout))

    with_bodies = cli("inbox", "dead", *store, "--body", "--json")
    readable_body, unreadable_body = sorted(json.loads(with_bodies.stdout), key=lambda entry: "unreadable" in entry)
    assert readable_body["body"] == {**json.loads(_body(1, "firmwareList")), "password": "***"}
    assert unreadable_body["body"] == 'not json, "password": "***"'
    assert '"password": "***"' in cli("inbox", "dead", *store, "--body").stdout
    for output in (dead.stdout, listed.stdout, with_bodies.stdout, cli("inbox", "dead", *store, "--body").stdout):
        assert PASSWORD not in output

    one = cli("inbox", "retry", *store, "--id", str(readable["id"]))
    assert (one.returncode, one.stdout) == (0, "re-queued 1 dead letter(s)\n")
    assert json.loads(cli("inbox", "stats", *store, "--json").stdout)["pending"] == 1
    gone = cli("inbox", "retry", *store, "--id", str(readable["id"]))
    assert gone.returncode == 1
    assert f"no dead letter with id {readable['id']}" in gone.stderr
    rest = cli("inbox", "retry", *store, "--json")
    assert (rest.returncode, json.loads(rest.stdout)) == (0, {"requeued": 1})
    assert cli("inbox", "dead", *store).stdout == "(no dead letters)\n"


def test_replay_puts_handled_entries_of_a_time_range_back(store: list[str]) -> None:
    hour_ago = (datetime.now(timezone.utc) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%MZ")
    later = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat(timespec="minutes")
    assert cli("inbox", "replay", *store, "--since", hour_ago, "--type", "firmwareList").stdout.startswith(
        "re-queued 0 handled entries"  # the firmwareList message is a dead letter: not replayed
    )
    assert cli("inbox", "replay", *store, "--since", later, "--json").stdout == '{"requeued": 0}\n'
    replayed = cli("inbox", "replay", *store, "--since", hour_ago, "--until", later, "--account", ACCOUNT)
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout.startswith(f"re-queued 1 handled entry received since {hour_ago[:-1]}")
    shown = json.loads(cli("inbox", "stats", *store, "--json").stdout)
    assert (shown["pending"], shown["done"], shown["dead"]) == (1, 0, 2)

    naive = cli("inbox", "replay", *store, "--since", "2026-12-01T00:00")
    assert naive.returncode == 2
    assert naive.stderr.startswith("fota-callbacks: error: argument --since: '2026-12-01T00:00' has no timezone")
    assert naive.stderr.count("\n") == 1
    missing = cli("inbox", "replay", *store)
    assert (missing.returncode, missing.stderr.count("\n")) == (2, 1)
    assert "--since" in missing.stderr


# --- what is not an inbox: refused, left exactly as it was ---------------------------------------------------------


def _foreign_database(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, total REAL)")
    db.execute("INSERT INTO orders (total) VALUES (9.5)")
    db.commit()
    db.close()


NOT_INBOXES: dict[str, tuple[Callable[[Path], object], str]] = {
    "missing": (lambda path: None, "the file does not exist"),
    "empty": (lambda path: path.write_bytes(b""), "the file is empty"),
    "foreign": (_foreign_database, "the file is another program's database"),
    "text": (lambda path: path.write_text("pending 0\ndead 0\n"), "the file is not an SQLite database"),
}


@pytest.mark.parametrize("kind", NOT_INBOXES)
def test_a_file_that_is_not_an_inbox_is_refused_and_left_unchanged(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "app.db"
    make, problem = NOT_INBOXES[kind]
    make(path)
    before = hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None
    handler = tmp_path / "hooks.py"
    handler.write_text("async def on_message(message):\n    pass\n")
    commands = [
        ["stats"],
        ["stats", "--json"],
        ["dead"],
        ["retry"],
        ["replay", "--since", "2026-01-01T00:00Z"],
        ["work", "--handler", "hooks:on_message"],
    ]
    for command in commands:
        refused = cli("inbox", *command, "--sqlite", str(path), cwd=tmp_path)
        assert refused.returncode == 2, (command, refused.stderr)  # not 4, "no response": it is a local file
        if "--json" in command:
            assert json.loads(refused.stderr)["error"] == f"--sqlite: no inbox at {path}: {problem}"
        else:
            assert refused.stderr == f"fota-callbacks: error: --sqlite: no inbox at {path}: {problem}\n"
        assert refused.stdout == ""
    assert (hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None) == before
    left = sorted(name for name in os.listdir(tmp_path) if name != "__pycache__")  # hooks.py compiled: not the inbox
    assert left == sorted(["hooks.py", *(["app.db"] if before is not None else [])])  # no -wal, no -shm


def test_a_typoed_redis_stream_is_refused_and_not_created(tmp_path: Path) -> None:
    import redis

    server = RedisServer(tmp_path).start()
    try:
        _in(RedisInbox(server.url, stream="fota:callbacks"), _body(1))
        typo = cli("inbox", "stats", "--redis", server.url, "--stream", "fota:callbaks")
        assert typo.returncode == 2, typo.stderr
        assert typo.stderr.startswith("fota-callbacks: error: --redis: ")
        assert typo.stderr.count("\n") == 1
        observer = redis.Redis.from_url(server.url)
        try:
            assert observer.exists("fota:callbaks") == 0  # neither the stream nor anything under its name
            assert list(observer.scan_iter("fota:callbaks*")) == []
        finally:
            observer.close()
        assert json.loads(cli("inbox", "stats", "--redis", server.url, "--json").stdout)["pending"] == 1
    finally:
        server.stop()


def test_usage_and_connection_errors_are_one_line(tmp_path: Path) -> None:
    host = f"127.0.0.1:{free_port()}"
    unreachable = cli("inbox", "stats", "--redis", f"redis://:secret-redis-password@{host}/0", "--json")
    assert unreachable.returncode == 4
    error = json.loads(unreachable.stderr)
    assert error["host"] == host
    assert "secret-redis-password" not in unreachable.stderr

    both = cli("inbox", "stats", "--sqlite", "a.db", "--redis", "redis://127.0.0.1:1")
    assert both.returncode == 2
    assert "not allowed with argument" in both.stderr
    for argv, message in (
        (["dead", "--id", "3"], "--id: only `retry` takes it"),
        (["stats", "--body"], "--body: only `dead` takes it"),
        (["stats", "--since", "2026-12-01T00:00Z"], "--since: only `replay` takes it"),
        (["dead", "--handler", "a:b"], "--handler: only `work` takes it"),
        (["work"], "--handler: work needs the handler to run, e.g. --handler myapp.callbacks:on_message"),
    ):
        refused = cli("inbox", *argv, "--sqlite", str(tmp_path / "a.db"))
        assert (refused.returncode, refused.stderr) == (2, f"fota-callbacks: error: {message}\n")
    assert not (tmp_path / "a.db").exists()


# --- inbox stats says who holds what is in flight ------------------------------------------------------------------

SLOW_HANDLER = """
import os
import anyio

async def on_message(message):
    with open(os.environ["FOTA_TEST_RECORD"], "a") as record:
        record.write(f"{message.raw['n']}\\n")
    await anyio.sleep(float(os.environ.get("FOTA_TEST_DELAY", "0")))
"""


def _handler_module(directory: Path) -> None:
    (directory / "hooks.py").write_text(textwrap.dedent(SLOW_HANDLER))


def _wait_for(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_stats_says_whether_a_live_worker_or_a_stopped_one_holds_the_entries_in_flight(tmp_path: Path) -> None:
    path, record = tmp_path / "inbox.db", tmp_path / "handled.txt"
    _in(SqliteInbox(path), _body(1), _body(2))
    _handler_module(tmp_path)
    env = clean_env({"FOTA_TEST_RECORD": str(record), "FOTA_TEST_DELAY": "600"})
    # Stale 5 s after the last renewal, back in the queue at 10 s: time for a few commands in between.
    worker_argv = ["inbox", "work", "--sqlite", str(path), "--handler", "hooks:on_message", "--claim-idle", "10"]
    with running(*worker_argv, env=env, cwd=tmp_path) as worker:
        _wait_for(lambda: record.exists() and record.read_text() == "1\n")
        live = cli("inbox", "stats", "--sqlite", str(path), "--claim-idle", "10")
        assert "in flight: 2 held by a live worker" in live.stdout.splitlines()
        os.kill(worker.process.pid, signal.SIGKILL)
        _wait_for(lambda: json.loads(cli("inbox", "stats", "--sqlite", str(path), "--json").stdout)["stale"] == 2)
        stopped = cli("inbox", "stats", "--sqlite", str(path), "--claim-idle", "10").stdout.splitlines()
    assert stopped[1] == "in_flight           2"
    [words] = [line for line in stopped if line.startswith("in flight:")]
    assert words.startswith("in flight: 2 held by a worker that stopped (its claims are no longer renewed): ")
    assert words.removeprefix("in flight: 2 held by a worker that stopped (its claims are no longer renewed): ") in (
        f"back in the queue in {seconds} s" for seconds in range(11)
    )


# --- inbox work: the worker as a process of its own ------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_work_handles_what_is_stored_and_gives_back_what_it_holds_on_sigterm(tmp_path: Path, kind: str) -> None:
    server = RedisServer(tmp_path).start() if kind == "redis" else None
    try:
        options = ["--sqlite", str(tmp_path / "inbox.db")] if server is None else ["--redis", server.url]
        created = SqliteInbox(tmp_path / "inbox.db") if server is None else RedisInbox(server.url)  # as a receiver
        _in(created, _body(1), _body(2), _body(3))
        record = tmp_path / "handled.txt"
        _handler_module(tmp_path)
        env = clean_env({"FOTA_TEST_RECORD": str(record), "FOTA_TEST_DELAY": "0"})
        argv = ["inbox", "work", *options, "--handler", "hooks:on_message", "--workers", "2", "-v"]
        with running(*argv, env=env, cwd=tmp_path) as worker:
            worker.wait_for("stderr", lambda line: "working off" in line)
            _wait_for(lambda: record.exists() and sorted(record.read_text().split()) == ["1", "2", "3"])
            worker.wait_for("stderr", lambda line: line.endswith(f"handled upgradeProgress for {ACCOUNT}"))
            assert worker.stop() == 0
        assert _in(_opened(options)).done == 3

        slow = clean_env({"FOTA_TEST_RECORD": str(record), "FOTA_TEST_DELAY": "600"})
        _in(_opened(options), _body(4))
        with running("inbox", "work", *options, "--handler", "hooks:on_message", env=slow, cwd=tmp_path) as worker:
            _wait_for(lambda: record.read_text().split()[-1:] == ["4"])  # the handler is in the middle of it
            assert worker.stop() == 0  # SIGTERM
            assert "SIGTERM: giving back what is held, then stopping" in worker.stderr
        after = _in(_opened(options))
        assert (after.pending, after.in_flight) == (1, 0)  # given back at once, not after claim_idle
    finally:
        if server is not None:
            server.stop()


def test_work_refuses_a_handler_it_cannot_use_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "inbox.db"
    _in(SqliteInbox(path), _body(1))
    (tmp_path / "hooks.py").write_text("def sync_handler(message):\n    pass\n\nnot_a_function = 3\n")
    (tmp_path / "broken.py").write_text("raise RuntimeError('no\\nconfig')\n")
    for spec, message in (
        ("hooks:sync_handler", "hooks:sync_handler is not an async function"),
        ("hooks:not_a_function", "hooks:not_a_function is not callable (it is a int)"),
        ("hooks:missing", "hooks has no missing"),
        ("no_such_module:handle", "cannot import no_such_module: ModuleNotFoundError: No module named"),
        ("broken:handle", "cannot import broken: RuntimeError: no\\nconfig"),
        ("hooks", "expected package.module:function, got 'hooks'"),
    ):
        refused = cli("inbox", "work", "--sqlite", str(path), "--handler", spec, cwd=tmp_path)
        assert refused.returncode == 2, (spec, refused.stderr)
        assert refused.stderr.startswith(f"fota-callbacks: error: --handler: {message}"), refused.stderr
        assert refused.stderr.count("\n") == 1
    assert _in(SqliteInbox(path)).pending == 1
