"""Receiving callbacks: server CPU per message of each SDK adapter vs a bare endpoint of its own framework doing the
same checks: `callback_router` vs Starlette, `callback_app` vs a raw ASGI callable, aiohttp's `callback_handler` vs
an aiohttp.web handler, Django's `callback_view` vs a Django async view.

Each app of `benchmarks.receiver_apps` runs in its own server process (uvicorn with httptools on the asyncio loop,
or aiohttp.web's own server), all pinned to one CPU; the load comes from this process, pinned to the other: a
raw `asyncio.Protocol` client holding `--concurrency` keep-alive connections, each posting the next
upgradeProgress message as soon as the previous answer arrived. Every body is distinct (a counter in
`upgradeId`), so no inbox deduplicates a retry.

Rounds: in each, every app gets one slice of load (order reversed every other round); its server CPU per
message comes from `/proc/<pid>/stat` (utime + stime) read around the slice. For the `*_worker` apps the
reading waits until the server has gone quiet, so the worker's draining of what the slice stored is counted.
Ratios are taken per round against each app's bare endpoint (`receiver_apps.REFERENCES`; `starlette` for the
others) and against `starlette`, and reported as the median with p25-p75: adjacent slices see the same machine
speed. Before the rounds every app must answer 200 to the right credentials and 401 to a wrong password: each
does the same checks.

`python -m benchmarks.receiver [--apps starlette router ...] [--rounds N] [--slice S] [--profile [APP ...]]
[--baseline DIR]`. `--profile [APP ...]` runs those apps (default: the reference and `router`) under cProfile and
prints where the server's time goes. `--baseline DIR` serves every app but the reference from that checkout too
(`git worktree add DIR main`, or `git archive main | tar -x -C DIR`), as `APP@baseline`, in the same rounds:
before and after a change, measured side by side. Each Redis app has a redis-server of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import importlib.util
import inspect
import json
import os
import pstats
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

from ._common import ACCOUNT, cpu_layout, cpu_seconds, median, pin_to_cpu, quartiles, render_table, stop_process
from .receiver_apps import APPS, CALLBACK_PASSWORD, CALLBACK_PATH, CALLBACK_USERNAME, REFERENCES

__all__ = [
    "ADAPTERS",
    "RECEIVER_TARGET",
    "ReceiverResult",
    "format_receiver",
    "main",
    "measure",
    "reference_of",
    "upgrade_progress_body",
]

RECEIVER_TARGET = 1.10
"""Each adapter's server CPU per message over its framework's bare endpoint (issue 25)."""
ADAPTERS = ("router", "callback_app", "aiohttp", "django")
TARGETS = {**dict.fromkeys(ADAPTERS, RECEIVER_TARGET), "sqlite_worker": 3.0, "postgres_worker": 3.0}
"""Server CPU per message over the bare endpoint's: the adapters (issue 25), and acknowledged and drained with the
worker in the same process, at most 3x for SQLite and Postgres (issue 27)."""
REFERENCE = "starlette"
BASELINE = "@baseline"
"""The suffix of an app served from the `--baseline` checkout."""
DEFAULT_APPS = ("starlette", "router", "callback_app", "aiohttp", "django")
PROFILED = ("starlette", "router", "asgi", "callback_app", "aiohttp_bare", "aiohttp", "django_bare", "django")
INBOX_APPS = ("sqlite", "redis", "postgres")
STORES = ("sqlite", "redis", "postgres")
# As RedisInbox's docstring asks for a body to be on disk before put returns (SqliteInbox fsyncs each commit).
_REDIS_DURABLE = ("--appendonly", "yes", "--appendfsync", "always", "--daemonize", "no", "--loglevel", "warning")
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def reference_of(app: str) -> str:
    """The bare endpoint `app` is compared with: its own framework's, or the bare Starlette endpoint."""
    return REFERENCES.get(app, REFERENCE)


def upgrade_progress_body(counter: int) -> bytes:
    """A realistic upgradeProgress message (V1 shape, credentials echoed), made distinct by `counter`."""
    return json.dumps(
        {
            "accountName": ACCOUNT,
            "participantName": "",
            "type": "upgradeProgress",
            "username": CALLBACK_USERNAME,
            "password": CALLBACK_PASSWORD,
            "firmwareList": [],
            "upgradeScheduled": {
                "firmwareName": "FOTA_Verizon_Model-A_02.00.00_To_02.01.00",
                "upgradeId": f"a9b4c3d2-1e0f-4a5b-8c7d-{counter:012d}",
                "startDate": "2026-11-26",
            },
            "deviceList": [
                {
                    "deviceId": "990013907835573",
                    "status": "InProgress",
                    "reason": "Device downloaded the firmware package",
                    "updatedTime": "2026-11-26T09:12:31Z",
                }
            ],
        },
        separators=(",", ":"),
    ).encode()


class _RequestFactory:
    """Prebuilt request bytes around a fixed-width counter: every body distinct, no JSON encoding per request."""

    def __init__(self, host_port: str) -> None:
        marker = 987654321098
        template = upgrade_progress_body(marker)
        at = template.index(b"%012d" % marker)
        self._body_head, self._body_tail = template[:at], template[at + 12 :]
        self._head = (
            f"POST {CALLBACK_PATH} HTTP/1.1\r\nHost: {host_port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(template)}\r\n\r\n"
        ).encode() + self._body_head
        self.counter = 0

    def next(self) -> bytes:
        self.counter += 1
        return self._head + b"%012d" % self.counter + self._body_tail


class _Connection(asyncio.Protocol):
    """One keep-alive connection that sends a request whenever its previous answer is complete."""

    def __init__(self, load: _Load) -> None:
        self._load = load
        self._buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.busy = False
        self.failure: Exception | None = None
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def send(self) -> None:
        assert self.transport is not None
        self.busy = True
        self.transport.write(self._load.requests.next())

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buffer[:end]).lower()
            try:
                length = _content_length(head)
                status = int(head[9:12])
            except (RuntimeError, ValueError) as exc:
                self.failure = exc
                assert self.transport is not None
                self.transport.close()
                return
            if len(buffer) < end + 4 + length:
                return
            del buffer[: end + 4 + length]
            self._load.answered(self, status)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)
        self._load.dropped(self)


def _content_length(head: bytes) -> int:
    at = head.find(b"\r\ncontent-length:")
    if at < 0:
        raise RuntimeError(f"an answer without Content-Length: {head[:200]!r}")
    stop = head.find(b"\r\n", at + 2)
    return int(head[at + 17 : stop if stop >= 0 else len(head)])


class _Load:
    """`concurrency` connections to one server; `run(seconds)` keeps all of them busy for that long."""

    def __init__(self, port: int, concurrency: int) -> None:
        self.port = port
        self.concurrency = concurrency
        self.requests = _RequestFactory(f"127.0.0.1:{port}")
        self.connections: list[_Connection] = []
        self.running = False
        self.completed = 0
        self.errors: dict[int, int] = {}
        self.lost = 0
        self._idle: asyncio.Event | None = None
        self._busy = 0

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(self.concurrency):
            _, protocol = await loop.create_connection(lambda: _Connection(self), "127.0.0.1", self.port)
            self.connections.append(protocol)

    def answered(self, connection: _Connection, status: int) -> None:
        self.completed += 1
        if status != 200:
            self.errors[status] = self.errors.get(status, 0) + 1
        if self.running:
            connection.send()
        else:
            connection.busy = False
            self._busy -= 1
            if self._busy == 0 and self._idle is not None:
                self._idle.set()

    def dropped(self, connection: _Connection) -> None:
        self.lost += 1
        if connection.busy:
            connection.busy = False
            self._busy -= 1
            if self._busy == 0 and self._idle is not None:
                self._idle.set()

    async def run(self, seconds: float) -> tuple[int, float]:
        """(answers, wall seconds) of keeping every connection busy for about `seconds`."""
        self.completed = 0
        self._idle = asyncio.Event()
        self.running = True
        started = time.perf_counter()
        for connection in self.connections:
            connection.send()
        self._busy = len(self.connections)
        await asyncio.sleep(seconds)
        self.running = False
        await asyncio.wait_for(self._idle.wait(), timeout=30)
        for connection in self.connections:
            if connection.failure is not None:
                raise RuntimeError(f"the load client could not read an answer: {connection.failure}")
        if self.lost:
            raise RuntimeError(f"{self.lost} connections were closed by the server")
        return self.completed, time.perf_counter() - started

    async def close(self) -> None:
        for connection in self.connections:
            if connection.transport is not None:
                connection.transport.close()
        await asyncio.gather(*(connection.lost for connection in self.connections))


def process_cpu_seconds(pid: int) -> float:
    """CPU seconds of process `pid` so far: all its threads, exited ones included, to the nanosecond.

    Linux lets any process read another's CPU-time clock: its clock id is derived from the pid
    (`MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED)`). Elsewhere, utime + stime from /proc/<pid>/stat (ticks).
    """
    try:
        return time.clock_gettime(((~pid) << 3) | 2)
    except (OSError, AttributeError):
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS


async def _status_of(port: int, body: bytes) -> int:
    """The status of one POST of `body` to the app on `port`, on a connection of its own."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        head = f"POST {CALLBACK_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {len(body)}\r\n"
        writer.write(head.encode() + b"Content-Type: application/json\r\nConnection: close\r\n\r\n" + body)
        return int((await asyncio.wait_for(reader.readline(), 10)).split()[1])
    finally:
        writer.close()


async def _check_answers(servers: dict[str, AppProcess]) -> list[str]:
    """Every app must answer the benchmark's message 200 and a wrong password 401 (they all do the same checks):
    one that does not is stopped and left out, with a note saying what it answered."""
    wrong = upgrade_progress_body(0).replace(CALLBACK_PASSWORD.encode(), b"wrong-password")
    notes = []
    for app, server in list(servers.items()):
        answers = (await _status_of(server.port, upgrade_progress_body(0)), await _status_of(server.port, wrong))
        if answers != (200, 401):
            notes.append(f"{app} skipped: it answered {answers} to the right and a wrong password, not (200, 401)")
            server.stop()
            del servers[app]
    return notes


async def _settled_cpu(pid: int, interval: float = 0.2, quiet: float = 0.002, limit: float = 60.0) -> float:
    """The process's CPU seconds once it has gone quiet: at most `quiet` CPU seconds (1%) in each of two
    `interval`s in a row. A worker that drains its backlog slowly, waiting on Redis's fsyncs, uses 5-20% of a core
    for seconds after the load stopped; a looser rule (10% in one 0.1 s) stopped counting it mid-drain."""
    deadline = time.perf_counter() + limit
    before, calm = process_cpu_seconds(pid), 0
    while True:
        await asyncio.sleep(interval)
        now = process_cpu_seconds(pid)
        calm = calm + 1 if now - before <= quiet else 0
        if calm == 2 or time.perf_counter() > deadline:
            return now
        before = now


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def redis_server(directory: str) -> Iterator[tuple[str, int]]:
    """A private redis-server on 127.0.0.1 (a free port, `directory` for its files, AOF with an fsync per
    write, as a durable deployment runs it); yields its URL and pid, and stops it by that pid."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (apt-get install -y redis-server)")
    port = _free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", directory, "--save", "", *_REDIS_DURABLE],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0", process.pid
    finally:
        stop_process(process)


def describe(app: str) -> str:
    name, baseline, _ = app.partition(BASELINE)
    return APPS[name] + (" (baseline checkout)" if baseline else "")


@contextmanager
def postgres_server(cpu: int | None) -> Iterator[tuple[str, int]]:
    """A private PostgreSQL (fsync on, as a deployment runs it) on a free 127.0.0.1 port, pinned to `cpu` with
    the servers; yields its DSN and the postmaster's pid, and stops it by that pid."""
    from tests.support.postgres import PostgresServer, postgres_bindir

    bindir = postgres_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL's server binaries are not installed (apt-get install -y postgresql)")
    server = PostgresServer(bindir, durable=True).start()
    try:
        assert server.process is not None
        pin_to_cpu_of(server.process.pid, cpu)  # the backends it forks from now on inherit it
        yield server.dsn, server.process.pid
    finally:
        server.remove()


def pin_to_cpu_of(pid: int, cpu: int | None) -> None:
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(pid, {cpu})


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of process `pid` and of its live children (PostgreSQL: the postmaster and its backends)."""
    total = process_cpu_seconds(pid)
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as children:
            kids = [int(child) for child in children.read().split()]
    except OSError:
        return total
    for child in kids:
        with contextlib.suppress(OSError):
            total += process_cpu_seconds(child)
    return total


class AppProcess:
    """One app of `receiver_apps` served by uvicorn in a child process; `pid` and `port` once started. With `cwd`
    (another checkout), that checkout's `benchmarks` and `fota_callbacks` serve it: `-m` puts `cwd` first."""

    def __init__(
        self,
        app: str,
        *,
        cpu: int | None,
        extra: Sequence[str] = (),
        profile: str | None = None,
        cwd: str | None = None,
    ) -> None:
        command = [sys.executable, "-m", "benchmarks.receiver_apps", app.partition(BASELINE)[0], *extra]
        if cpu is not None:
            command += ["--cpu", str(cpu)]
        if profile is not None:
            command += ["--profile", profile]
        self.app = app
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=cwd)
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"receiver app {app!r} did not start (said {line!r})")
        self.port = int(line.split()[1])
        self.pid = self._process.pid

    def stop(self) -> None:
        """SIGINT: uvicorn shuts down cleanly and re-raises it as KeyboardInterrupt, after which the child
        writes its profile (SIGTERM would be re-raised with its default action: no profile)."""
        self._process.send_signal(signal.SIGINT)
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()


@dataclass
class AppSamples:
    """Per round: server CPU µs per message and messages per second."""

    cpu_us: list[float] = field(default_factory=list)
    per_s: list[float] = field(default_factory=list)
    busy: list[float] = field(default_factory=list)
    client_us: list[float] = field(default_factory=list)
    side_us: list[float] = field(default_factory=list)
    """CPU µs per message of the server the app relies on (redis-server, PostgreSQL's processes), when there is one."""
    messages: int = 0
    errors: dict[int, int] = field(default_factory=dict)


@dataclass
class ReceiverResult:
    apps: list[str]
    rounds: int
    slice_s: float
    concurrency: int
    samples: dict[str, AppSamples]
    notes: list[str]
    profile: str | None = None

    def ratios(self, app: str, reference: str | None = None) -> list[float]:
        """Per round: `app`'s CPU per message over `reference`'s (default: its own framework's bare endpoint)."""
        base = self.samples[reference or reference_of(app)].cpu_us
        return [a / r for a, r in zip(self.samples[app].cpu_us, base, strict=True) if r > 0]

    def ratio(self, app: str, reference: str | None = None) -> float:
        return median(self.ratios(app, reference))

    def spread(self, app: str, reference: str | None = None) -> tuple[float, float]:
        return quartiles(self.ratios(app, reference))

    def summary(self) -> dict[str, Any]:
        return {
            "rounds": self.rounds,
            "slice_s": self.slice_s,
            "concurrency": self.concurrency,
            "reference": REFERENCE,
            "apps": {
                app: {
                    "cpu_us_per_message": median(s.cpu_us),
                    "messages_per_s": median(s.per_s),
                    "server_busy": median(s.busy),
                    "client_cpu_us_per_message": median(s.client_us),
                    "store_server_cpu_us_per_message": median(s.side_us) if s.side_us else None,
                    "reference": reference_of(app),
                    "ratio_to_reference": self.ratio(app) if reference_of(app) in self.samples else None,
                    "ratio_to_starlette": self.ratio(app, REFERENCE) if REFERENCE in self.samples else None,
                    "messages": s.messages,
                    "non_200": s.errors,
                }
                for app, s in self.samples.items()
            },
            "notes": self.notes,
        }


async def _measure_apps(
    servers: dict[str, AppProcess],
    *,
    rounds: int,
    slice_s: float,
    concurrency: int,
    warmup_s: float,
    side_cpu: dict[str, Callable[[], float]],
) -> dict[str, AppSamples]:
    loads = {app: _Load(server.port, concurrency) for app, server in servers.items()}
    samples = {app: AppSamples() for app in servers}
    try:
        for load in loads.values():
            await load.open()
        for load in loads.values():
            await load.run(warmup_s)
        order = list(servers)
        for round_index in range(rounds):
            for app in order if round_index % 2 == 0 else order[::-1]:
                pid, side = servers[app].pid, side_cpu.get(app)
                side0 = 0.0 if side is None else side()
                cpu0, client0 = process_cpu_seconds(pid), cpu_seconds()
                messages, wall = await loads[app].run(slice_s)
                client1, sliced = cpu_seconds(), process_cpu_seconds(pid)
                # A worker app goes on draining what the slice stored: count it until the server is quiet.
                cpu1 = await _settled_cpu(pid) if app.partition(BASELINE)[0].endswith("_worker") else sliced
                sample, count = samples[app], max(1, messages)
                sample.cpu_us.append((cpu1 - cpu0) / count * 1e6)
                sample.per_s.append(messages / wall)
                sample.busy.append((sliced - cpu0) / wall)
                sample.client_us.append((client1 - client0) / count * 1e6)
                if side is not None:
                    sample.side_us.append((side() - side0) / count * 1e6)
                samples[app].messages += messages
        for app, load in loads.items():
            samples[app].errors = dict(load.errors)
    finally:
        for load in loads.values():
            await load.close()
    return samples


def _profile_table(path: str, messages: int, top: int) -> tuple[list[list[str]], float]:
    stats: Any = pstats.Stats(path)
    by_package: dict[str, float] = {}
    lines = []
    for (file, line, name), (_, ncalls, tottime, cumtime, _) in stats.stats.items():
        package = _package(file)
        by_package[package] = by_package.get(package, 0.0) + tottime
        lines.append((name, f"{_short(file)}:{line}", ncalls / messages, tottime / messages, cumtime / messages))
    total = sum(by_package.values())
    rows = [
        [f"[{package}]", f"{seconds / messages * 1e6:.1f}", "", "", f"{seconds / total * 100:.0f}% of self time"]
        for package, seconds in sorted(by_package.items(), key=lambda item: -item[1])
    ]
    focus = [
        (label, sum(entry[3] for (file, _, name), entry in stats.stats.items() if part in file and name_part in name))
        for label, part, name_part in _FOCUS
    ]
    focus.append(("FastAPI's request handler (get_request_handler's app)", _fastapi_handler_seconds(stats.stats)))
    rows += [
        [f"{{{label}}}", "", f"{cum / messages * 1e6:.1f}", "", f"{cum / total * 100:.0f}% (cumulative)"]
        for label, cum in focus
        if cum
    ]
    lines.sort(key=lambda item: -item[3])
    rows += [
        [name[:40], f"{self_s * 1e6:.1f}", f"{cum_s * 1e6:.1f}", f"{calls:.3g}", where]
        for name, where, calls, self_s, cum_s in lines[:top]
    ]
    return rows, total / messages * 1e6


# What the brief asks to tell apart: the framework's route wrapper, the SDK's parsing, the credential check.
_FOCUS = (
    ("the endpoint function, whole (FastAPI's path)", "integrations/fastapi.py", "receive_callback"),
    ("callback_router's direct ASGI path, whole", "integrations/fastapi.py", "serve"),
    ("callback_app, whole", "integrations/asgi.py", "__call__"),
    ("aiohttp callback_handler, whole", "integrations/aiohttp.py", "receive_callback"),
    ("Django callback_view, whole", "integrations/django.py", "receive_callback"),
    ("the receiver's checks and answer (_answer)", "receiver/_receiver.py", "_answer"),
    ("request body read (ASGI receive)", "fota_callbacks/_asgi.py", "read_asgi_body"),
    ("request body read (receive_stream)", "receiver/_receiver.py", "receive_stream"),
    ("FastAPI dependency solving", "fastapi/dependencies", "solve_dependencies"),
    ("request body read", "starlette/requests.py", "body"),
    ("request body read (stream)", "integrations/fastapi.py", "_read_body"),
    ("parse_callback_message", "fota_callbacks", "parse_callback_message"),
    ("json.loads", "json/__init__.py", "loads"),
    ("credential check (hmac.compare_digest)", "~", "compare_digest"),
    ("JSON response rendering", "starlette/responses.py", "render"),
)


def _fastapi_handler_seconds(stats: dict[Any, Any]) -> float:
    """Cumulative time in the `app` closure `fastapi.routing.get_request_handler` returns (0 if not found)."""
    try:
        import fastapi.routing

        lines, start = inspect.getsourcelines(fastapi.routing.get_request_handler)
    except (ImportError, OSError, TypeError):
        return 0.0
    return float(
        sum(
            entry[3]
            for (file, line, name), entry in stats.items()
            if name == "app" and file.endswith("fastapi/routing.py") and start <= line < start + len(lines)
        )
    )


def _package(file: str) -> str:
    if file == "~":
        return "builtins (C)"
    packages = ("uvicorn", "httptools", "starlette", "fastapi", "pydantic", "anyio", "aiohttp", "multidict", "yarl")
    for package in (*packages, "django", "asgiref", "fota_callbacks"):
        if f"/{package}/" in file:
            return package
    if "/asyncio/" in file:
        return "asyncio"
    if "benchmarks/" in file:
        return "benchmark app"
    return "stdlib/other"


def _short(file: str) -> str:
    for marker in ("site-packages/", "/lib/python3."):
        at = file.find(marker)
        if at >= 0:
            tail = file[at + len(marker) :]
            return tail.split("/", 1)[1] if marker == "/lib/python3." and "/" in tail else tail
    return file.rsplit("/", 2)[-1] if "/" in file else file


async def _profile_one(
    app: str, cpu: int | None, path: str, seconds: float, concurrency: int, extra: Sequence[str]
) -> int:
    server = AppProcess(app, cpu=cpu, extra=extra, profile=path)
    try:
        load = _Load(server.port, concurrency)
        await load.open()
        messages, _ = await load.run(seconds)
        await load.close()
    finally:
        server.stop()
    return messages


async def profile_apps(
    apps: Sequence[str],
    *,
    cpu: int | None,
    seconds: float,
    concurrency: int,
    top: int,
    extras: dict[str, list[str]] | None = None,
) -> str:
    """cProfile each app's server under load (warm-up included): self time by package and the top functions.
    Its main thread only: work an app hands to threads (SqliteInbox's sqlite3 calls) shows as the waits."""
    parts = []
    with tempfile.TemporaryDirectory(prefix="fota-receiver-profile-") as directory:
        for app in apps:
            path = os.path.join(directory, f"{app}.prof")
            extra = (extras or {}).get(app, [])
            messages = await _profile_one(app, cpu, path, seconds, concurrency, extra)
            rows, total_us = _profile_table(path, messages, top)
            parts.append(
                render_table(
                    ["function / [package]", "self µs/msg", "cum µs/msg", "calls/msg", "where"],
                    rows,
                    f"cProfile of the {app!r} server ({describe(app)}), {messages} messages at C={concurrency}: "
                    f"{total_us:.0f} µs/msg profiled (the profiler inflates small functions; read proportions)",
                )
            )
    return "\n\n".join(parts)


def _stores(
    apps: set[str], stack: ExitStack, directory: str, notes: list[str], cpu: int | None
) -> tuple[dict[str, list[str]], dict[str, Callable[[], float]]]:
    """The store each inbox app uses (a SQLite file; a redis-server or a PostgreSQL of its own, started in `stack`):
    the app's extra arguments, and a reading of its store server's CPU seconds. An app whose server cannot start is
    noted and left out."""
    extras: dict[str, list[str]] = {}
    side_cpu: dict[str, Callable[[], float]] = {}
    for app in sorted(apps):
        try:
            if app.startswith("sqlite"):
                extras[app] = ["--sqlite", os.path.join(directory, f"{app}.db")]
            elif app.startswith("redis"):
                os.mkdir(home := os.path.join(directory, app))
                redis_url, pid = stack.enter_context(redis_server(home))
                extras[app], side_cpu[app] = ["--redis-url", redis_url], functools.partial(process_cpu_seconds, pid)
            elif app.startswith("postgres"):
                dsn, pid = stack.enter_context(postgres_server(cpu))
                extras[app], side_cpu[app] = ["--postgres-dsn", dsn], functools.partial(tree_cpu_seconds, pid)
        except RuntimeError as exc:  # noqa: PERF203 - once per app, at start-up
            notes.append(f"{app} skipped: {exc}")
    return extras, side_cpu


def _start(
    apps: Sequence[str],
    cpu: int | None,
    extras: dict[str, list[str]],
    stack: ExitStack,
    notes: list[str],
    baseline: str | None,
) -> dict[str, AppProcess]:
    """A server process per app (one named `APP@baseline` from the `baseline` checkout), each stopped when `stack`
    closes; an app that does not start gets a note."""
    servers: dict[str, AppProcess] = {}
    for app in apps:
        cwd = baseline if app.endswith(BASELINE) else None
        try:
            server = AppProcess(app, cpu=cpu, extra=extras.get(app, []), cwd=cwd)
        except RuntimeError as exc:
            notes.append(f"{app} skipped: {exc}")
            continue
        stack.callback(server.stop)
        servers[app] = server
    return servers


async def measure(
    apps: Sequence[str],
    *,
    rounds: int,
    slice_s: float,
    concurrency: int = 32,
    warmup_s: float = 1.0,
    server_cpu: int | None = None,
    profile: Sequence[str] = (),
    profile_seconds: float = 3.0,
    progress: Callable[[str], None] | None = None,
    baseline: str | None = None,
) -> ReceiverResult:
    """Serve each app (and, with `baseline`, each but the reference from that checkout too), warm up, then `rounds`
    interleaved slices of load; then cProfile the `profile` apps."""
    apps = list(dict.fromkeys([REFERENCE, *(reference_of(app) for app in apps), *apps]))
    if baseline is not None:
        apps += [f"{app}{BASELINE}" for app in apps if app != REFERENCE]
    notes: list[str] = []
    if importlib.util.find_spec("fota_callbacks.inbox") is None:
        skipped = [app for app in apps if app.startswith(STORES)]
        if skipped:
            notes.append(f"{', '.join(skipped)} skipped: this fota_callbacks has no inbox module")
        apps = [app for app in apps if app not in skipped]
    with ExitStack() as stack:
        directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="fota-receiver-"))
        extras, side_cpu = _stores({*apps, *profile}, stack, directory, notes, server_cpu)
        apps = [app for app in apps if not app.startswith(STORES[1:]) or app in extras]
        servers = _start(apps, server_cpu, extras, stack, notes, baseline)
        if progress is not None:
            progress(f"receiver: {len(servers)} apps, {rounds} rounds of {slice_s:g} s at C={concurrency}")
        notes += await _check_answers(servers)
        samples = await _measure_apps(
            servers,
            rounds=rounds,
            slice_s=slice_s,
            concurrency=concurrency,
            warmup_s=warmup_s,
            side_cpu={app: side_cpu[app] for app in servers if app in side_cpu},
        )
        for server in servers.values():
            server.stop()  # before profiling: the profiled server has the core to itself
        result = ReceiverResult(list(servers), rounds, slice_s, concurrency, samples, notes)
        profiled = [app for app in profile if app in extras or not app.startswith(STORES)]
        if profiled:
            if progress is not None:
                progress(f"receiver: profiling {', '.join(profiled)}")
            result.profile = await profile_apps(
                profiled, cpu=server_cpu, seconds=profile_seconds, concurrency=concurrency, top=22, extras=extras
            )
    return result


def format_receiver(result: ReceiverResult) -> str:
    rows = []
    for app in result.apps:
        s = result.samples[app]
        reference = reference_of(app)
        low, high = result.spread(app)
        starlette_low, starlette_high = result.spread(app, REFERENCE)
        rows.append(
            [
                f"{app}: {describe(app)}",
                f"{median(s.cpu_us):.0f}",
                f"{median(s.per_s):,.0f}",
                f"{median(s.busy) * 100:.0f}%",
                f"{median(s.client_us):.0f}",
                f"{median(s.side_us):.0f}" if s.side_us else "-",
                f"{result.ratio(app):.2f}x {reference}" if reference != app else "-",
                f"{low:.2f}-{high:.2f}" if reference != app else "-",
                f"{result.ratio(app, REFERENCE):.2f}x",
                f"{starlette_low:.2f}-{starlette_high:.2f}",
                ", ".join(f"{n}x{status}" for status, n in sorted(s.errors.items())) or "-",
            ]
        )
    title = (
        f"Receiving (one server core, C={result.concurrency}, upgradeProgress bodies; uvicorn + httptools, "
        f"aiohttp.web for aiohttp*): medians of {result.rounds} interleaved rounds of {result.slice_s:g} s; ratio = "
        f"server CPU/msg over the bare endpoint named (the app's own framework's) and over the bare Starlette "
        f"endpoint's, in the same round (target for {', '.join(ADAPTERS)}: <= {RECEIVER_TARGET:.2f}x its own)"
    )
    headers = ["app", "server CPU µs/msg", "msgs/s", "server busy", "client µs/msg", "store server µs/msg"]
    headers += ["vs its bare endpoint", "p25-p75", "vs starlette", "p25-p75"]
    parts = [render_table([*headers, "non-200"], rows, title)]
    parts += [f"note: {note}" for note in result.notes]
    if result.profile is not None:
        parts.append(result.profile)
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--apps", nargs="+", choices=sorted(APPS), default=list(DEFAULT_APPS))
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--slice", type=float, default=1.0, help="seconds of load per app per round")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--profile",
        nargs="*",
        choices=sorted(APPS),
        metavar="APP",
        help="also cProfile these apps' servers (none named: each adapter and its bare endpoint)",
    )
    parser.add_argument("--json", metavar="PATH", help="also write the numbers to this JSON file")
    parser.add_argument(
        "--baseline", metavar="DIR", help="another checkout (e.g. of main): its apps are measured in the same rounds"
    )
    args = parser.parse_args(argv)
    layout = cpu_layout()
    server_cpu, client_cpu = layout if layout is not None else (None, None)
    pin_to_cpu(client_cpu)

    def progress(message: str) -> None:
        print(f"  {message}", file=sys.stderr, flush=True)

    result = asyncio.run(
        measure(
            args.apps,
            rounds=args.rounds,
            slice_s=args.slice,
            concurrency=args.concurrency,
            server_cpu=server_cpu,
            profile=() if args.profile is None else (args.profile or PROFILED),
            progress=progress,
            baseline=args.baseline,
        )
    )
    print(format_receiver(result))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(result.summary(), out, indent=2)


if __name__ == "__main__":
    main()
