"""Run every benchmark and print the tables: `python -m benchmarks.run [--quick] [--only ...] [--json PATH]`.

Sections, in order: cold start (fresh subprocesses), memory (a fresh subprocess), in-memory (this process),
FakeThingSpace (this process), receiver (uvicorn apps in other processes, loaded from this one), loopback
HTTP against `benchmarks.server` (another process), and the same server against Verizon's own SDK (when
installed). With two or more CPUs the servers are pinned to the first and this process (and the subprocesses
it starts) to the second. The default run takes about 7 minutes on a 2-core machine; `--quick` (a smoke
check, numbers indicative only) about 1.5 minutes.
Nothing here asserts on timings: the verdict column only compares a number with its target.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import functools
import importlib.metadata
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import anyio

from . import coldstart, fake, inmemory, loopback, memory, receiver, receiver_apps, verizon
from ._common import cpu_layout, median, pin_to_cpu, render_table
from .server import ServerProcess

__all__ = ["Settings", "main"]

SECTIONS = ("coldstart", "memory", "inmemory", "fake", "receiver", "loopback", "verizon")
# fastapi_route (a Starlette route in a FastAPI app) is for benchmarks.receiver_inprocess: what FastAPI costs alone.
RECEIVER_APPS = tuple(app for app in receiver_apps.APPS if app != "fastapi_route")


@dataclass(frozen=True)
class Settings:
    coldstart_samples: int
    memory_calls: int
    memory_batches: int
    inmemory_rounds: int
    inmemory_seconds: float
    stage_iterations: int
    profile_calls: int
    loopback_rounds: int
    slice_s: float
    concurrent_slice_s: float
    warmup_scale: float
    fake_rounds: int
    fake_seconds: float
    receiver_rounds: int
    receiver_slice_s: float
    receiver_profile: bool
    verizon_rounds: int


FULL = Settings(
    coldstart_samples=10,
    memory_calls=10_000,
    memory_batches=5,
    inmemory_rounds=7,
    inmemory_seconds=0.5,
    stage_iterations=20_000,
    profile_calls=20_000,
    loopback_rounds=11,
    slice_s=0.25,
    concurrent_slice_s=0.6,
    warmup_scale=1.0,
    fake_rounds=7,
    fake_seconds=0.4,
    receiver_rounds=9,
    receiver_slice_s=1.0,
    receiver_profile=True,
    verizon_rounds=7,
)
QUICK = Settings(
    coldstart_samples=3,
    memory_calls=10_000,
    memory_batches=2,
    inmemory_rounds=2,
    inmemory_seconds=0.2,
    stage_iterations=3_000,
    profile_calls=3_000,
    loopback_rounds=2,
    slice_s=0.1,
    concurrent_slice_s=0.25,
    warmup_scale=0.25,
    fake_rounds=2,
    fake_seconds=0.2,
    receiver_rounds=3,
    receiver_slice_s=0.4,
    receiver_profile=False,
    verizon_rounds=2,
)


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def environment() -> dict[str, Any]:
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "nproc": len(affinity) or os.cpu_count(),
        "cpu_count": os.cpu_count(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "event_loop": "asyncio (default loop)",
        "versions": {
            name: _version(name)
            for name in (
                "fota-callbacks",
                "httpx",
                "httpcore",
                "h11",
                "anyio",
                "sniffio",
                "attrs",
                "cattrs",
                "httpx2",
                "httpcore2",
                "aiohttp",
                "fastapi",
                "starlette",
                "uvicorn",
                "httptools",
                "redis",
                "asyncpg",
            )
        },
        "load_average_at_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def _header(env: dict[str, Any]) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items())
    load = env["load_average_at_start"]
    lines = [
        f"fota_callbacks benchmarks, {env['date']}; nproc {env['nproc']} (cpu_count {env['cpu_count']}); "
        f"{env['python']} on {env['platform']}; {env['event_loop']}",
        f"versions: {versions}",
    ]
    if load is not None:
        lines.append(
            f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (other processes share the CPUs)"
        )
    if env["versions"]["sniffio"] == "not installed":
        lines.append("WARNING: sniffio is not installed: httpcore is 30-50% slower per request without it")
    return "\n".join(lines)


def _run_memory(settings: Settings) -> memory.MemoryResult:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.memory",
            "--json",
            "--calls",
            str(settings.memory_calls),
            "--batches",
            str(settings.memory_batches),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return memory.MemoryResult.from_summary(json.loads(out.strip().splitlines()[-1]))


def _targets(results: dict[str, Any]) -> str:
    rows: list[list[str]] = []
    lb: loopback.LoopbackResult | None = results.get("loopback")
    if lb is not None:
        for cell in lb.cells:
            for transport in cell.transports():
                ratio, target = cell.transport_ratio(transport), loopback.TARGETS[transport]
                rows.append(
                    [
                        f"loopback CPU/call, SDK on {transport}, {loopback.OPERATIONS[cell.operation]}, "
                        f"C={cell.concurrency}",
                        f"{ratio:.3f}x raw {transport}",
                        f"<= {target:.2f}x",
                        "ok" if ratio <= target else "MISS",
                    ]
                )
    im: inmemory.InMemoryResult | None = results.get("inmemory")
    if im is not None:
        us = im.sdk_us["v2_list"]
        target = inmemory.IN_MEMORY_TARGET_US
        rows.append(
            [
                "in-memory V2 list, SDK CPU per call",
                f"{us:.1f} µs",
                f"<= {target:g} µs",
                "ok" if us <= target else "MISS",
            ]
        )
    for key in ("inmemory", "inmemory_trio"):
        leg: inmemory.InMemoryResult | None = results.get(key)
        if leg is None:
            continue
        for op in ("v2_list", "v1_list", "v2_register", "v2_list_raw"):
            ratio = leg.ratio(op)
            rows.append(
                [
                    f"in-memory {op} on {leg.backend}, SDK CPU per call over a minimal hand-written client",
                    f"{ratio:.2f}x",
                    f"<= {leg.target:g}x",
                    "ok" if ratio <= leg.target else "MISS",
                ]
            )
    if im is not None and im.telemetry is not None and im.telemetry.note is None:
        api = median(im.telemetry.ratios["api_no_sdk"])
        rows.append(
            [
                "in-memory V2 list, OpenTelemetry API imported, no provider set, over not imported",
                f"{api:.3f}x",
                f"<= {inmemory.OTEL_API_TARGET:.2f}x",
                "ok" if api <= inmemory.OTEL_API_TARGET else "MISS",
            ]
        )
        rows.append(
            [
                "in-memory V2 list, OpenTelemetry SDK with a batch exporter, over not imported",
                f"{median(im.telemetry.ratios['sdk_batch']):.2f}x",
                "(reported)",
                "",
            ]
        )
    rc: receiver.ReceiverResult | None = results.get("receiver")
    if rc is not None:
        for app in rc.apps:
            if app in (*receiver.ADAPTERS, *receiver.INBOX_APPS, *(f"{store}_worker" for store in receiver.STORES)):
                ratio, app_target = rc.ratio(app), receiver.TARGETS.get(app)
                verdict = "" if app_target is None else "ok" if ratio <= app_target else "MISS"
                rows.append(
                    [
                        f"receiver {app}: server CPU per message over a bare {receiver.reference_of(app)} endpoint",
                        f"{ratio:.2f}x",
                        "(reported)" if app_target is None else f"<= {app_target:.2f}x",
                        verdict,
                    ]
                )
    fk: fake.FakeResult | None = results.get("fake")
    if fk is not None:
        rows.append(
            [
                "FakeThingSpace V2 list through fake.transport()",
                f"{1e6 / fk.us_per_call['fake_list']:,.0f} calls per CPU-second",
                "(reported)",
                "",
            ]
        )
    vz: verizon.VerizonResult | None = results.get("verizon")
    if vz is not None:
        for concurrency, drivers in vz.cells.items():
            for sdk, reference in verizon.TARGET_PAIRS:
                if reference in drivers:
                    ratio = median(vz.ratios(concurrency, sdk, reference))
                    rows.append(
                        [
                            f"loopback CPU/call, {sdk} over {reference}, V2 list, C={concurrency}",
                            f"{ratio:.3f}x",
                            f"<= {verizon.ASYNC_TARGET:g}x",
                            "ok" if ratio <= verizon.ASYNC_TARGET else "MISS",
                        ]
                    )
    cs: coldstart.ColdStartResult | None = results.get("coldstart")
    if cs is not None:
        ratio = cs.ratio("cpu")
        rows.append(
            [
                "cold start, import + construction (CPU)",
                f"{ratio:.2f}x httpx",
                f"<= {coldstart.COLD_START_TARGET:.2f}x",
                "ok" if ratio <= coldstart.COLD_START_TARGET else "MISS",
            ]
        )
    mem: memory.MemoryResult | None = results.get("memory")
    if mem is not None:
        rows.append(
            [
                f"memory, RSS growth over batches 2..{len(mem.after_rss)}",
                f"{mem.growth() / memory.MIB:+.1f} MiB",
                "no growth",
                "",
            ]
        )
    return render_table(["target", "measured", "target", "verdict"], rows, "Targets (ratios measured in this run):")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run in about 1.5 minutes (indicative numbers)")
    parser.add_argument("--only", choices=SECTIONS, nargs="+", default=list(SECTIONS), help="sections to run")
    parser.add_argument("--json", metavar="PATH", help="also write every number to this JSON file")
    parser.add_argument("--rounds", type=int, help="loopback rounds (overrides the mode's)")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    if args.rounds is not None:
        settings = Settings(**{**settings.__dict__, "loopback_rounds": args.rounds})

    started = time.perf_counter()
    env = environment()
    layout = cpu_layout()
    server_cpu, client_cpu = layout if layout is not None else (None, None)
    pinned = (
        "not pinned (fewer than 2 CPUs)" if layout is None else f"server on CPU {server_cpu}, client on {client_cpu}"
    )
    pin_to_cpu(client_cpu)
    print(_header(env) + f"\nmode: {'quick' if args.quick else 'full'}; {pinned}\n", flush=True)

    def progress(message: str) -> None:
        print(f"  [{time.perf_counter() - started:6.1f} s] {message}", file=sys.stderr, flush=True)

    results: dict[str, Any] = {}
    if "coldstart" in args.only:
        progress("cold start ...")
        results["coldstart"] = coldstart.measure(settings.coldstart_samples)
        print(coldstart.format_coldstart(results["coldstart"]) + "\n", flush=True)
    if "memory" in args.only:
        progress("memory ...")
        results["memory"] = _run_memory(settings)
        print(memory.format_memory(results["memory"]) + "\n", flush=True)
    if "inmemory" in args.only:
        progress("in-memory ...")
        results["inmemory"] = asyncio.run(
            inmemory.measure(
                rounds=settings.inmemory_rounds,
                seconds=settings.inmemory_seconds,
                stage_iterations=settings.stage_iterations,
                profile_calls=settings.profile_calls,
            )
        )
        print(inmemory.format_inmemory(results["inmemory"]) + "\n", flush=True)
        if importlib.util.find_spec("trio") is not None:
            progress("in-memory on trio ...")
            trio_leg = functools.partial(
                inmemory.measure,
                rounds=settings.inmemory_rounds,
                seconds=settings.inmemory_seconds,
                stage_iterations=0,
                profile_calls=0,
                telemetry=False,
            )
            results["inmemory_trio"] = anyio.run(trio_leg, backend="trio")
            print(inmemory.format_inmemory(results["inmemory_trio"]) + "\n", flush=True)
    if "fake" in args.only:
        progress("FakeThingSpace ...")
        results["fake"] = asyncio.run(fake.measure(rounds=settings.fake_rounds, seconds=settings.fake_seconds))
        print(fake.format_fake(results["fake"]) + "\n", flush=True)
    if "receiver" in args.only:
        progress("receiver ...")
        results["receiver"] = asyncio.run(
            receiver.measure(
                RECEIVER_APPS,
                rounds=settings.receiver_rounds,
                slice_s=settings.receiver_slice_s,
                warmup_s=1.0,
                server_cpu=server_cpu,
                profile=receiver.PROFILED if settings.receiver_profile else (),
                progress=progress,
            )
        )
        print(receiver.format_receiver(results["receiver"]) + "\n", flush=True)
    if "loopback" in args.only:
        progress("loopback ...")
        with ServerProcess(cpu=server_cpu) as server:
            results["loopback"] = asyncio.run(
                loopback.measure(
                    server.base_url,
                    rounds=settings.loopback_rounds,
                    slice_s=settings.slice_s,
                    concurrent_slice_s=settings.concurrent_slice_s,
                    warmup_scale=settings.warmup_scale,
                    pinned=pinned,
                    progress=progress,
                )
            )
        print(loopback.format_loopback(results["loopback"]) + "\n", flush=True)
    if "verizon" in args.only:
        if importlib.util.find_spec("verizon") is None:
            print("verizon: skipped, Verizon's SDK is not installed (pip install sdksio-verizon-apis-sdk==2.0.0)\n")
        else:
            progress("against Verizon's SDK ...")
            with ServerProcess(cpu=server_cpu) as server:
                results["verizon"] = verizon.measure(
                    server.base_url, [1, 32], rounds=settings.verizon_rounds, slice_s=settings.slice_s * 2
                )
            print(verizon.format_verizon(results["verizon"]) + "\n", flush=True)

    print(_targets(results))
    elapsed = time.perf_counter() - started
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"\nTotal {elapsed:.0f} s" + (f"; load average at end: {load[0]:.2f}" if load is not None else ""))
    if args.json:
        payload = {
            "environment": env,
            "mode": "quick" if args.quick else "full",
            "elapsed_s": elapsed,
            **{name: result.summary() for name, result in results.items()},
        }
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(payload, out, indent=2)


if __name__ == "__main__":
    main()
