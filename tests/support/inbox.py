"""Real services for the inbox tests: `redis-server`, PostgreSQL and uvicorn processes on 127.0.0.1, each stopped by
its pid."""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from fota_callbacks.inbox import BaseInbox, Inbox, InboxStats, MemoryInbox, PostgresInbox, RedisInbox, SqliteInbox
from tests.support import ROOT
from tests.support.harness import free_port
from tests.support.postgres import PostgresServer, postgres_bindir
from tests.support.processes import stop, wait_for_port


def redis_server_binary() -> str:
    """The `redis-server` to run; under CI (`CI=true`) a missing one fails the test instead of skipping it."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("redis-server is not installed: .ci/run installs the Debian package redis-server")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    return binary


class RedisServer:
    """A `redis-server` on 127.0.0.1 with its data in `directory`; every write fsynced before the answer."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory, self.port = directory, port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *options: str) -> RedisServer:
        """Start it (again: same port, same directory); `options` are more `redis-server` arguments."""
        command = [
            redis_server_binary(),
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "yes",
            "--appendfsync", "always",
            *options,
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, self.process)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None:
            stop(self.process, sig)
            self.process = None


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the session; tests keep apart by using their own stream names."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


class AppServer:
    """`tests/support/inbox_app.py` under uvicorn in its own process, configured through the environment."""

    def __init__(self, **settings: str) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, **{f"FOTA_TEST_{name.upper()}": value for name, value in settings.items()}}
        command = [sys.executable, "-m", "uvicorn", "tests.support.inbox_app:app", "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--log-level", "warning", "--no-access-log"]
        self.process = subprocess.Popen(command, cwd=ROOT, env=env)

    def ready(self) -> AppServer:
        """Wait until it answers (start several first, then wait for each: they start in parallel)."""
        wait_for_port(self.port, self.process)
        httpx.get(f"{self.base_url}/health", timeout=10).raise_for_status()
        return self

    def kill(self) -> None:
        """`kill -9`: no shutdown, nothing flushed or released."""
        stop(self.process, signal.SIGKILL)

    def stop(self) -> None:
        stop(self.process)


@pytest.fixture
def app_servers() -> Iterator[Callable[..., AppServer]]:
    """Starts `AppServer`s; whatever still runs at the end of the test is stopped."""
    started: list[AppServer] = []

    def start(**settings: str) -> AppServer:
        started.append(AppServer(**settings))
        return started[-1]

    yield start
    for server in started:
        server.stop()


# --- one fixture for every kind of inbox ---------------------------------------------------------------------------

CASES = [
    ("memory", "asyncio"),
    ("memory", "trio"),
    ("sqlite", "asyncio"),
    ("sqlite", "trio"),
    ("redis", "asyncio"),
    ("postgres", "asyncio"),
]
DURABLE = ("sqlite", "redis", "postgres")


class Clock:
    """Wall-clock seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(params=CASES, ids=[f"{kind}-{backend}" for kind, backend in CASES])
def case(request: pytest.FixtureRequest) -> tuple[str, str]:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def anyio_backend(case: tuple[str, str]) -> str:
    return case[1]


MakeInbox = Callable[..., BaseInbox]


@pytest.fixture
def make_inbox(case: tuple[str, str], tmp_path: Path, request: pytest.FixtureRequest) -> MakeInbox:
    """Makes an inbox of the case's kind; the same `name` makes another handle on the same storage."""
    kind = case[0]

    def make(name: str = "inbox", **options: Any) -> BaseInbox:
        options.setdefault("poll_interval", 0.01)
        if kind == "memory":
            return MemoryInbox(**options)
        if kind == "sqlite":
            return SqliteInbox(tmp_path / f"{name}.db", **options)
        if kind == "postgres":
            database: PostgresServer = request.getfixturevalue("postgres_server")
            return PostgresInbox(database.dsn, table=f"{prefix}_{name}".replace("-", "_"), **options)
        server: RedisServer = request.getfixturevalue("redis_server")
        return RedisInbox(server.url, stream=f"test:{tmp_path.name}:{name}", **options)

    prefix = f"t{next(_tables)}"  # each test its own tables in the session's one database
    return make


_tables = itertools.count()


def postgres_binaries() -> Path:
    """Where PostgreSQL's server binaries are; under CI (`CI=true`) missing ones fail the test, else skip it."""
    bindir = postgres_bindir()
    if bindir is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("PostgreSQL's server binaries are missing: .ci/run installs the Debian package postgresql")
        pytest.skip("PostgreSQL's server binaries are not installed (apt-get install postgresql)")
    return bindir


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session (as an unprivileged user when the tests run as root); tests keep apart
    by using tables of their own."""
    server = PostgresServer(postgres_binaries()).start()
    yield server
    server.remove()


async def until(condition: Callable[[], bool], within: float = 10.0) -> None:
    """Wait until `condition()` holds (state another task changes without notifying)."""
    with anyio.fail_after(within):
        while not condition():  # noqa: ASYNC110
            await anyio.sleep(0.005)


class Running:
    """`inbox.run(handler, **options)` in the background, for the duration of an `async with`."""

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


async def stats_reach(inbox: Inbox, **expected: float) -> InboxStats:
    """Wait until `inbox.stats()` shows the expected counts (the worker runs in another task or process)."""
    with anyio.fail_after(30):  # generous: CI machines are shared and slow at times
        while True:
            stats = await inbox.stats()
            if all(getattr(stats, name) == value for name, value in expected.items()):
                return stats
            await anyio.sleep(0.005)
