"""Where the SDK's extra CPU goes over loopback: cProfile both drivers on the same calls, diff per function.

`python -m benchmarks.hotspots [--operation v2_list] [--concurrency 32] [--calls 3000] [--top 20]`

Starts `benchmarks.server` (pinned as in the loopback benchmark), warms both drivers up, then alternates
chunks of profiled calls between the SDK and raw httpx (the same totals each), and prints:
- the garbage collector's work per call for each driver, measured without the profiler (gc.callbacks);
- the functions whose self time per call the SDK adds over raw httpx (SDK minus raw, biggest first);
- the SDK package's own functions by self time.
The profiler inflates every small function (read the µs as proportions); the loopback table has the
real ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import time
from dataclasses import dataclass
from typing import Any

from ._common import Call, ProfileLine, cpu_layout, cpu_seconds, pin_to_cpu, profile_lines, render_table, run_count
from .loopback import OPERATIONS, Driver, RawDriver, SdkDriver, make_http_client
from .server import ServerProcess

__all__ = ["GcWork", "main"]


@dataclass
class GcWork:
    """Collections and time in the collector, per call."""

    calls: int
    cpu_us_per_call: float
    collections: list[int]
    gc_us_per_call: float


async def _gc_work(call: Call, concurrency: int, calls: int) -> GcWork:
    spent = 0.0
    started = 0.0
    counts = [0, 0, 0]

    def callback(phase: str, info: dict[str, Any]) -> None:
        nonlocal spent, started
        if phase == "start":
            started = time.perf_counter()
        else:
            spent += time.perf_counter() - started
            counts[int(info["generation"])] += 1

    gc.collect()
    gc.callbacks.append(callback)
    cpu0 = cpu_seconds()
    try:
        await run_count(call, concurrency, calls)
    finally:
        gc.callbacks.remove(callback)
    cpu = cpu_seconds() - cpu0
    return GcWork(calls, cpu / calls * 1e6, counts, spent / calls * 1e6)


def _key(line: ProfileLine) -> str:
    return f"{line.function} {line.where}"


async def run(base_url: str, operation: str, concurrency: int, calls: int, top: int) -> str:
    drivers: dict[str, Driver] = {
        "sdk": SdkDriver(base_url, make_http_client(concurrency)),
        "raw": RawDriver(base_url, make_http_client(concurrency)),
    }
    try:
        for driver in drivers.values():
            await driver.check()
            await run_count(driver.calls[operation], concurrency, max(300, 32 * concurrency) * 2)
        gc_work = {name: await _gc_work(d.calls[operation], concurrency, calls) for name, d in drivers.items()}
        profilers = {name: cProfile.Profile() for name in drivers}
        chunks = 6
        for _ in range(chunks):
            for name, driver in drivers.items():
                gc.collect()
                profiler = profilers[name]
                profiler.enable()
                await run_count(driver.calls[operation], concurrency, calls // chunks)
                profiler.disable()
    finally:
        for driver in drivers.values():
            await driver.aclose()
    profiled = (calls // chunks) * chunks
    lines = {name: {_key(line): line for line in profile_lines(p, profiled)} for name, p in profilers.items()}
    totals = {name: sum(line.self_us for line in by_key.values()) for name, by_key in lines.items()}

    parts = [
        render_table(
            ["driver", "CPU µs/call", "gen0/1/2 collections", "GC µs/call"],
            [
                [
                    name,
                    f"{work.cpu_us_per_call:.1f}",
                    "/".join(str(c) for c in work.collections),
                    f"{work.gc_us_per_call:.1f}",
                ]
                for name, work in gc_work.items()
            ],
            f"{OPERATIONS[operation]}, C={concurrency}: {calls} calls per driver, no profiler, GC via gc.callbacks",
        )
    ]
    diff_rows = []
    for key in set(lines["sdk"]) | set(lines["raw"]):
        sdk, raw = lines["sdk"].get(key), lines["raw"].get(key)
        sdk_us, raw_us = (sdk.self_us if sdk else 0.0), (raw.self_us if raw else 0.0)
        diff_rows.append((sdk_us - raw_us, sdk_us, raw_us, sdk or raw))
    diff_rows.sort(key=lambda row: row[0], reverse=True)
    parts.append(
        render_table(
            ["function", "sdk-raw self µs", "sdk self", "raw self", "sdk calls/call", "where"],
            [
                [
                    line.function[:44],
                    f"{delta:+.2f}",
                    f"{sdk_us:.2f}",
                    f"{raw_us:.2f}",
                    f"{lines['sdk'][_key(line)].calls_per_call:g}" if _key(line) in lines["sdk"] else "0",
                    line.where,
                ]
                for delta, sdk_us, raw_us, line in diff_rows[:top]
                if line is not None
            ],
            f"cProfile, {profiled} calls each: functions by extra self time per call in the SDK run "
            f"(profiled totals: sdk {totals['sdk']:.0f} µs/call, raw {totals['raw']:.0f} µs/call, "
            f"difference {totals['sdk'] - totals['raw']:+.0f})",
        )
    )
    ours = sorted(
        (line for line in lines["sdk"].values() if line.where.startswith("fota_callbacks/")),
        key=lambda line: line.self_us,
        reverse=True,
    )
    parts.append(
        render_table(
            ["function", "self µs/call", "cum µs/call", "calls/call", "where"],
            [
                [line.function, f"{line.self_us:.2f}", f"{line.cum_us:.2f}", f"{line.calls_per_call:g}", line.where]
                for line in ours[:top]
            ],
            "The SDK's own functions (fota_callbacks/*) in that run, by self time:",
        )
    )
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--operation", choices=list(OPERATIONS), default="v2_list")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args(argv)
    layout = cpu_layout()
    server_cpu, client_cpu = layout if layout is not None else (None, None)
    pin_to_cpu(client_cpu)
    with ServerProcess(cpu=server_cpu) as server:
        print(asyncio.run(run(server.base_url, args.operation, args.concurrency, args.calls, args.top)))


if __name__ == "__main__":
    main()
