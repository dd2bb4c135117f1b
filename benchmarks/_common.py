"""What the benchmark modules share: canned payloads, CPU pinning and clocks, statistics, table rendering."""

from __future__ import annotations

import asyncio
import cProfile
import gc
import json
import os
import resource
import statistics
import subprocess
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Call",
    "Sample",
    "run_count",
    "run_slice",
    "ACCOUNT",
    "ACCESS_TOKEN",
    "CALLBACK_URL",
    "M2M_TOKEN",
    "ProfileLine",
    "V1_LIST_BODY",
    "V2_LIST_BODY",
    "cpu_layout",
    "cpu_seconds",
    "median",
    "pin_to_cpu",
    "profile_lines",
    "quartiles",
    "render_table",
    "rss_bytes",
    "stop_process",
]

ACCOUNT = "0000123456-00001"
ACCESS_TOKEN = "bench-access-token-0123456789abcdef"
M2M_TOKEN = "bench-m2m-session-token-0123456789abcdef"
CALLBACK_URL = "https://example.com/cb"

V2_LIST_BODY = json.dumps({"url": CALLBACK_URL}, separators=(",", ":")).encode()
V1_LIST_BODY = json.dumps(
    [
        {
            "aname": ACCOUNT,
            "name": "Fota",
            "url": f"https://callbacks{i}.example.com/CallbackListener/FirmwareServiceMessages.asmx",
            "username": f"listener{i}",
        }
        for i in range(3)
    ],
    separators=(",", ":"),
).encode()


Call = Callable[[], Awaitable[object]]


@dataclass
class Sample:
    """One time slice of one driver: calls made, wall seconds, CPU seconds."""

    calls: int
    wall_s: float
    cpu_s: float

    @property
    def calls_per_s(self) -> float:
        return self.calls / self.wall_s

    @property
    def cpu_us_per_call(self) -> float:
        return self.cpu_s / self.calls * 1e6


async def run_count(call: Call, concurrency: int, count: int) -> None:
    """Make `count` calls with `concurrency` workers (warm-up; not measured)."""
    remaining = count

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await call()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def run_slice(call: Call, concurrency: int, duration: float) -> Sample:
    """Call for `duration` seconds with `concurrency` workers; wall and process CPU time around it."""
    gc.collect()
    await run_count(call, concurrency, concurrency)  # back in the caches after the other driver's slice
    cpu0 = cpu_seconds()
    t0 = time.perf_counter()
    stop_at = t0 + duration
    clock = time.perf_counter

    async def worker() -> int:
        done = 0
        while clock() < stop_at:
            await call()
            done += 1
        return done

    if concurrency == 1:
        calls = await worker()
    else:
        calls = sum(await asyncio.gather(*(worker() for _ in range(concurrency))))
    wall = time.perf_counter() - t0
    cpu = cpu_seconds() - cpu0
    return Sample(calls, wall, cpu)


def _quantile(ordered: Sequence[float], q: float) -> float:
    if not ordered:
        return float("nan")
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def cpu_layout() -> tuple[int, int] | None:
    """(server CPU, client CPU) when this process may run on at least two CPUs, else None (no pinning)."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    return cpus[0], cpus[1]


def pin_to_cpu(cpu: int | None) -> None:
    """Pin the calling process to one CPU (no-op for None or where the OS has no affinity call)."""
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})


def cpu_seconds() -> float:
    """User + system CPU time of this process (all its threads) so far, from getrusage(RUSAGE_SELF)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_bytes() -> int:
    """The current resident set size of this process (Linux /proc; the peak from getrusage elsewhere)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            resident_pages = int(statm.read().split()[1])
        return resident_pages * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def stop_process(process: subprocess.Popen[Any], timeout: float = 5) -> None:
    """Ask a child process to end (the signal `Popen.terminate` sends), wait, kill it if it lingers."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def quartiles(values: Sequence[float]) -> tuple[float, float]:
    """(p25, p75) of `values`: how much per-round ratios spread."""
    if len(values) < 2:
        return (values[0], values[0]) if values else (float("nan"), float("nan"))
    cuts = statistics.quantiles(values, n=4, method="inclusive")
    return cuts[0], cuts[2]


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]], title: str | None = None) -> str:
    """A plain-text table; the first column is left-aligned, the others right-aligned."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells: Sequence[str]) -> str:
        parts = [cells[0].ljust(widths[0])] + [cell.rjust(widths[i]) for i, cell in enumerate(cells) if i]
        return "  ".join(parts).rstrip()

    out = [] if title is None else [title]
    out.append(line(headers))
    out.append("  ".join("-" * w for w in widths))
    out.extend(line(row) for row in rows)
    return "\n".join(out)


@dataclass
class ProfileLine:
    """One function of a cProfile run, per benchmark call."""

    function: str
    where: str
    calls_per_call: float
    self_us: float
    cum_us: float


def short_path(path: str) -> str:
    if path.startswith("<cattrs generated"):
        return "<cattrs generated " + path.rsplit(".", 1)[-1]
    for marker in ("site-packages/", "/work/main/", "/lib/python3."):
        at = path.find(marker)
        if at >= 0:
            tail = path[at + len(marker) :]
            return tail.split("/", 1)[1] if marker == "/lib/python3." and "/" in tail else tail
    return path


def profile_lines(profiler: cProfile.Profile, calls: int) -> list[ProfileLine]:
    """Every function the profiler saw (the benchmark's own code left out), µs per benchmark call."""
    profiler.create_stats()
    lines = []
    for (file, line, name), (_, ncalls, tottime, cumtime, _) in profiler.stats.items():
        if "benchmarks/" in file:
            continue
        lines.append(
            ProfileLine(
                function=name,
                where="(builtin)" if file == "~" else f"{short_path(file)}:{line}",
                calls_per_call=ncalls / calls,
                self_us=float(tottime) / calls * 1e6,
                cum_us=float(cumtime) / calls * 1e6,
            )
        )
    return lines
