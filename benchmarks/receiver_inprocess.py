"""Receiving callbacks in process: each app's whole server path without a socket, for stable A/B figures.

`python -m benchmarks.receiver` measures the servers as they run, kernel and scheduler included, on a machine whose
speed drifts: a few µs per message are hard to see there. This module serves the same apps
(`benchmarks.receiver_apps`) through the same server code, uvicorn's httptools protocol or aiohttp.web's request
handler, over a transport that has no socket: the load is `--concurrency` connections, each fed its next
upgradeProgress request (every body distinct) as soon as its previous answer was written, on one asyncio loop.
What is left is the Python and C work of a message, from the request's bytes to the answer's: no syscalls, no epoll.

- `python -m benchmarks.receiver_inprocess [--apps ...] [--rounds N] [--messages M]`: each app in a process of its
  own; per round every app answers M messages (order reversed every other round), its CPU time read around them
  (`time.process_time`); the ratio over its bare endpoint per round, median and p25-p75.
- `--callgrind`: each app under `valgrind --tool=callgrind`, twice (after the same warm-up, M and 2*M messages):
  the instructions one message costs are the difference over M. Instruction counts do not drift with the machine:
  a change of 1% shows, run after run.
- `--profile APP`: cProfile of M messages through APP, by function.

No figure here is a server's CPU per message: the kernel's share (socket reads and writes, epoll) is missing, about
a third of it, the same for every app; ratios here are therefore larger than `benchmarks.receiver`'s.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

from ._common import median, quartiles, render_table
from .receiver import _content_length, _RequestFactory, reference_of
from .receiver_apps import AIOHTTP_APPS, STORELESS_APPS, build_app

__all__ = ["IN_PROCESS_APPS", "main", "serve_in_process"]

IN_PROCESS_APPS = STORELESS_APPS
DEFAULT_APPS = IN_PROCESS_APPS
_PEER = ("127.0.0.1", 40000)
_SOCKNAME = ("127.0.0.1", 8000)
_WARMUP = 2000
_Feed = Callable[[int], "asyncio.Future[None]"]


class _Wire(asyncio.Transport):
    """One connection without a socket: an answer written completes the request, and the next is received on the
    loop's next turn, as a socket's data would be."""

    def __init__(self, connections: _Connections, protocol: asyncio.Protocol) -> None:
        super().__init__()
        self._connections, self._protocol = connections, protocol
        self._buffer = bytearray()
        self._closing = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": _PEER, "sockname": _SOCKNAME}.get(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        buffer = self._buffer
        buffer += data
        while (end := buffer.find(b"\r\n\r\n")) >= 0:
            head = bytes(buffer[:end]).lower()
            length = _content_length(head)
            if len(buffer) < end + 4 + length:
                return
            del buffer[: end + 4 + length]
            self._connections.answered(self, int(head[9:12]))

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def send(self, request: bytes) -> None:
        asyncio.get_running_loop().call_soon(self._protocol.data_received, request)

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if not self._closing:
            self._closing = True
            self._protocol.connection_lost(None)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def is_reading(self) -> bool:
        return True

    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        raise RuntimeError("the in-process wire does not upgrade protocols")


class _Connections:
    """`concurrency` wires to one server; `run(count)` answers `count` messages, the next request sent on each wire
    as soon as its answer is complete."""

    def __init__(
        self, make_protocol: Callable[[], asyncio.Protocol], concurrency: int, busy: Callable[[], bool]
    ) -> None:
        self._busy = busy
        self.requests = _RequestFactory(f"{_SOCKNAME[0]}:{_SOCKNAME[1]}")
        self.wires = []
        for _ in range(concurrency):
            protocol = make_protocol()
            wire = _Wire(self, protocol)
            protocol.connection_made(wire)
            self.wires.append(wire)
        self.non_200: dict[int, int] = {}
        self._left = 0
        self._in_flight = 0
        self._done: asyncio.Future[None] | None = None

    def answered(self, wire: _Wire, status: int) -> None:
        if status != 200:
            self.non_200[status] = self.non_200.get(status, 0) + 1
        self._in_flight -= 1
        if self._left > 0:
            self._left -= 1
            self._in_flight += 1
            wire.send(self.requests.next())
        elif self._in_flight == 0 and self._done is not None and not self._done.done():
            self._done.set_result(None)

    async def run(self, count: int) -> None:
        self._done = asyncio.get_running_loop().create_future()
        starting = min(count, len(self.wires))
        self._left, self._in_flight = count - starting, starting
        for wire in self.wires[:starting]:
            wire.send(self.requests.next())
        await self._done
        if self.non_200:
            raise RuntimeError(f"answers other than 200: {self.non_200}")

    async def close(self) -> None:
        """Once the server has finished what it does after its answers (Django closes a response in a thread)."""
        while self._busy():  # noqa: ASYNC110 - the servers' own state, which sets no event to wait on
            await asyncio.sleep(0.01)
        for wire in self.wires:
            wire.close()


_Protocols = tuple[Callable[[], asyncio.Protocol], Callable[[], bool]]


async def _uvicorn_protocols(app: Any) -> _Protocols:
    import uvicorn
    from uvicorn.server import ServerState

    config = uvicorn.Config(app, http="httptools", lifespan="off", access_log=False, log_level="warning")
    config.timeout_keep_alive = 3600
    config.load()
    state = ServerState()

    def protocol() -> asyncio.Protocol:
        return config.http_protocol_class(config=config, server_state=state, app_state={})  # type: ignore[call-arg]

    return protocol, lambda: bool(state.tasks)


async def _aiohttp_protocols(app: Any) -> _Protocols:
    from aiohttp import web

    runner = web.AppRunner(app, access_log=None, keepalive_timeout=3600)
    await runner.setup()
    server = runner.server
    assert server is not None
    return server, lambda: False


async def serve_in_process(app_name: str, concurrency: int) -> _Connections:
    """`app_name`'s server (as `benchmarks.receiver_apps` serves it) on `concurrency` in-process wires."""
    app = build_app(app_name)
    protocols, busy = await (_aiohttp_protocols(app) if app_name in AIOHTTP_APPS else _uvicorn_protocols(app))
    return _Connections(protocols, concurrency, busy)


async def _child(app_name: str, concurrency: int, once: int | None, profile: str | None) -> None:
    """Serve `app_name` in process. With `once`: warm up, answer `once` messages, exit (for callgrind). Else read a
    count per line from stdin and print the CPU seconds its messages took, until EOF."""
    connections = await serve_in_process(app_name, concurrency)
    await connections.run(_WARMUP)
    if once is not None:
        profiler = cProfile.Profile() if profile else None
        if profiler is not None:
            profiler.enable()
        await connections.run(once)
        if profiler is not None and profile is not None:
            profiler.disable()
            profiler.dump_stats(profile)
        await connections.close()
        return
    print("READY", flush=True)
    for line in sys.stdin:
        count = int(line)
        started = time.process_time()
        await connections.run(count)
        print(f"{time.process_time() - started!r}", flush=True)
    await connections.close()


def _child_command(app: str, concurrency: int, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "benchmarks.receiver_inprocess",
        "--child",
        app,
        "--concurrency",
        str(concurrency),
        *extra,
    ]


class _ChildProcess:
    def __init__(self, app: str, concurrency: int) -> None:
        self.app = app
        self._process = subprocess.Popen(
            _child_command(app, concurrency), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if line.strip() != "READY":
            self.stop()
            raise RuntimeError(f"{app} did not start (said {line!r})")

    def run(self, count: int) -> float:
        """CPU µs per message over `count` messages."""
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        self._process.stdin.write(f"{count}\n")
        self._process.stdin.flush()
        return float(self._process.stdout.readline()) / count * 1e6

    def stop(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


def _with_references(apps: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(app for name in apps for app in (reference_of(name), name)))


def measure_cpu(apps: Sequence[str], *, rounds: int, messages: int, concurrency: int) -> dict[str, list[float]]:
    """CPU µs per message of each app, per round, the apps interleaved."""
    children: list[_ChildProcess] = []
    try:
        for app in apps:
            children.append(_ChildProcess(app, concurrency))  # noqa: PERF401 - each kept as it starts, for `finally`
        samples: dict[str, list[float]] = {app: [] for app in apps}
        for round_index in range(rounds):
            for child in children if round_index % 2 == 0 else children[::-1]:
                samples[child.app].append(child.run(messages))
        return samples
    finally:
        for child in children:
            child.stop()


_TOTALS = re.compile(rb"^(?:summary|totals):\s*(\d+)", re.MULTILINE)


def _instructions(app: str, messages: int, concurrency: int, directory: str) -> int:
    out = os.path.join(directory, f"{app}-{messages}.callgrind")
    command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
    command += _child_command(app, concurrency, "--once", str(messages))
    # One hash seed: set and dict layouts, and so the instructions they cost, are the same in every run.
    environment = {**os.environ, "PYTHONHASHSEED": "0"}
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment)
    with open(out, "rb") as counts:
        found = _TOTALS.search(counts.read())
    if found is None:
        raise RuntimeError(f"no instruction total in {out}")
    return int(found.group(1))


def measure_instructions(apps: Sequence[str], *, messages: int, concurrency: int) -> dict[str, float]:
    """Instructions per message of each app: (I(2*messages) - I(messages)) / messages, each a process under
    callgrind with the same warm-up."""
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install -y valgrind)")
    counts: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="fota-callgrind-") as directory:
        for app in apps:
            once = _instructions(app, messages, concurrency, directory)
            twice = _instructions(app, 2 * messages, concurrency, directory)
            counts[app] = (twice - once) / messages
    return counts


def _cpu_table(samples: dict[str, list[float]], rounds: int, messages: int, concurrency: int) -> str:
    rows = []
    for app, per_round in samples.items():
        reference = reference_of(app)
        ratios = [a / r for a, r in zip(per_round, samples[reference], strict=True)] if reference != app else []
        low, high = quartiles(ratios) if ratios else (0.0, 0.0)
        rows.append(
            [
                app,
                f"{median(per_round):.1f}",
                f"{median(ratios):.3f}x {reference}" if ratios else "-",
                f"{low:.3f}-{high:.3f}" if ratios else "-",
            ]
        )
    title = (
        f"In process (no socket, C={concurrency}): CPU µs per message, median of {rounds} interleaved rounds of "
        f"{messages} messages; ratio per round over the app's bare endpoint"
    )
    return render_table(["app", "CPU µs/msg", "vs its bare endpoint", "p25-p75"], rows, title)


def _instruction_table(counts: dict[str, float], messages: int, concurrency: int) -> str:
    rows = []
    for app, count in counts.items():
        reference = reference_of(app)
        ratio = f"{count / counts[reference]:.3f}x {reference}" if reference != app and reference in counts else "-"
        extra = f"{count - counts[reference]:+,.0f}" if reference != app and reference in counts else "-"
        rows.append([app, f"{count:,.0f}", ratio, extra])
    title = (
        f"In process under callgrind (C={concurrency}): instructions per message, (I(2M) - I(M)) / M with M={messages}"
    )
    return render_table(["app", "instructions/msg", "vs its bare endpoint", "added"], rows, title)


def _profile(app: str, messages: int, concurrency: int, top: int) -> str:
    with tempfile.TemporaryDirectory(prefix="fota-profile-") as directory:
        path = os.path.join(directory, "profile")
        command = _child_command(app, concurrency, "--once", str(messages), "--profile-to", path)
        subprocess.run(command, check=True)
        stats: Any = pstats.Stats(path)
    rows = [
        [
            name[:48],
            f"{tottime / messages * 1e6:.2f}",
            f"{cumtime / messages * 1e6:.2f}",
            f"{calls / messages:.3g}",
            f"{os.path.basename(file)}:{line}",
        ]
        for (file, line, name), (_, calls, tottime, cumtime, _) in stats.stats.items()
    ]
    rows.sort(key=lambda row: -float(row[1]))
    title = f"cProfile of {app} in process, {messages} messages (the profiler inflates small functions)"
    return render_table(["function", "self µs/msg", "cum µs/msg", "calls/msg", "where"], rows[:top], title)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--apps", nargs="+", choices=IN_PROCESS_APPS, default=list(DEFAULT_APPS))
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--messages", type=int, default=None, help="per round (default 5000; 1000 under callgrind)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--callgrind", action="store_true", help="count instructions under valgrind instead")
    parser.add_argument("--profile", choices=IN_PROCESS_APPS, metavar="APP", help="cProfile APP instead")
    parser.add_argument("--top", type=int, default=30, help="functions shown by --profile")
    parser.add_argument("--child", choices=IN_PROCESS_APPS, help=argparse.SUPPRESS)
    parser.add_argument("--once", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--profile-to", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        asyncio.run(_child(args.child, args.concurrency, args.once, args.profile_to))
        return
    apps = _with_references(args.apps)
    if args.profile is not None:
        print(_profile(args.profile, args.messages or 5000, args.concurrency, args.top))
    elif args.callgrind:
        messages = args.messages or 1000
        print(
            _instruction_table(
                measure_instructions(apps, messages=messages, concurrency=args.concurrency), messages, args.concurrency
            )
        )
    else:
        messages = args.messages or 5000
        samples = measure_cpu(apps, rounds=args.rounds, messages=messages, concurrency=args.concurrency)
        print(_cpu_table(samples, args.rounds, messages, args.concurrency))


if __name__ == "__main__":
    main()
