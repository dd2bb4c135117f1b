"""Instructions per call under callgrind: the SDK on a transport against that transport's raw client, V2 list over
loopback HTTP, counted rather than timed (the CPU speed of these machines drifts ±20% within seconds, and
instruction counts do not).

`python -m benchmarks.instructions [--transport aiohttp httpx] [--concurrency 1 32] [--calls 600 1800]`

For each driver (`sdk` and `raw` of each transport, as in `benchmarks.loopback`) and concurrency, a child process
runs under `valgrind --tool=callgrind` twice, making the same warm-up and then the smaller or the larger number of
calls against `benchmarks.server` (another process, not under valgrind); the difference of the two totals over the
difference of the call counts is the instructions per call, startup, imports and warm-up cancelled out. Slow (each
child runs some 50x slower under valgrind): about a minute per driver and concurrency.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from ._common import ACCOUNT, render_table, run_count

__all__ = ["main"]

_TOTAL = re.compile(r"^(?:summary|totals):\s*(\d+)", re.MULTILINE)


async def _child(base_url: str, transport: str, driver: str, concurrency: int, calls: int) -> None:
    from .loopback import make_pair

    sdk, raw = make_pair(transport, base_url, concurrency)
    chosen = sdk if driver == "sdk" else raw
    other = raw if chosen is sdk else sdk
    try:
        await chosen.check()
        await chosen.fill(f"{base_url}/api/fota/v2/callbacks/{ACCOUNT}", concurrency)
        await run_count(chosen.calls["v2_list"], concurrency, max(300, 32 * concurrency))
        await run_count(chosen.calls["v2_list"], concurrency, calls)
    finally:
        await chosen.aclose()
        await other.aclose()


def _instructions(base_url: str, transport: str, driver: str, concurrency: int, calls: int) -> int:
    with tempfile.TemporaryDirectory() as out:
        path = Path(out) / "callgrind.out"
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={path}",
            sys.executable,
            "-m",
            "benchmarks.instructions",
            "--child",
            base_url,
            transport,
            driver,
            str(concurrency),
            str(calls),
        ]
        subprocess.run(command, check=True, capture_output=True, env={**os.environ, "PYTHONHASHSEED": "0"})
        found = _TOTAL.search(path.read_text(errors="replace"))
        if found is None:
            raise RuntimeError(f"no instruction total in {path}")
        return int(found.group(1))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transport", nargs="+", default=["aiohttp"], choices=["aiohttp", "httpx", "httpx2"])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--calls", type=int, nargs=2, default=[600, 1800], metavar=("FEWER", "MORE"))
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        base_url, transport, driver, concurrency, calls = args.child
        asyncio.run(_child(base_url, transport, driver, int(concurrency), int(calls)))
        return
    from .server import ServerProcess

    fewer, more = args.calls
    rows = []
    with ServerProcess(cpu=None) as server:
        for transport in args.transport:
            for concurrency in args.concurrency:
                per_call = {}
                for driver in ("raw", "sdk"):
                    low = _instructions(server.base_url, transport, driver, concurrency, fewer)
                    high = _instructions(server.base_url, transport, driver, concurrency, more)
                    per_call[driver] = (high - low) / (more - fewer)
                    print(f"{transport} C={concurrency} {driver}: {per_call[driver]:,.0f} per call", flush=True)
                rows.append(
                    [
                        transport,
                        str(concurrency),
                        f"{per_call['raw']:,.0f}",
                        f"{per_call['sdk']:,.0f}",
                        f"{per_call['sdk'] / per_call['raw']:.3f}x",
                    ]
                )
    title = f"Instructions per V2 list call under callgrind ({more} - {fewer} calls after the same warm-up)"
    print(render_table(["transport", "C", "raw", "sdk", "sdk/raw"], rows, title))


if __name__ == "__main__":
    main()
