"""What the private APIs of other libraries would buy: each one the SDK used for speed, against the public API that
replaces it, measured interleaved in one run. None is used for speed now (`InMemoryTransport` detected asyncio
per call, once on asyncio's private `_get_running_loop`; it now looks at the event loop only once a handler
suspends, with public APIs).

- The event-loop check the httpx and httpx2 transports make per send (`running_loop()` and an identity test against
  their `LoopBinding`, public APIs only): its cost in ns per call, next to an empty function, to set beside the CPU
  per call of `benchmarks.loopback`.

aiohttp's `ClientSession._retry_connection` is not here: it is set for behaviour (aiohttp would otherwise resend a
request once on its own, past the client's `RetryPolicy`), not speed, and has no public switch; its test is
`tests/transports/test_conformance.py::test_aiohttp_does_not_resend_on_its_own`.

Standalone: `python -m benchmarks.private_apis [--rounds N]` (asyncio).
"""

from __future__ import annotations

import argparse
import asyncio
import time

from fota_callbacks.transport import _common

from ._common import cpu_layout, median, pin_to_cpu, quartiles, render_table

__all__ = ["main"]


def _loop_check_ns(rounds: int, iterations: int = 200_000) -> tuple[list[float], list[float]]:
    """ns per send of the transports' event-loop check (bound to the running loop, as after the first send), and of
    an empty function, interleaved."""
    binding = _common.LoopBinding("bench")
    binding.bind(_common.running_loop())
    running_loop = _common.running_loop

    def check() -> None:
        running = running_loop()
        if running is not binding.loop:
            binding.bind(running)

    def nothing() -> None:
        return None

    checks: list[float] = []
    empties: list[float] = []
    for _ in range(rounds):
        for which, function in ((checks, check), (empties, nothing)):
            started = time.process_time_ns()
            for _ in range(iterations):
                function()
            which.append((time.process_time_ns() - started) / iterations)
    return checks, empties


async def measure(rounds: int) -> str:
    """The table (inside a running event loop: the check reads it)."""
    checks, empties = _loop_check_ns(rounds)
    c_low, c_high = quartiles(checks)
    rows = [
        [
            "httpx/httpx2 transports: the event-loop check per send",
            f"{median(checks):.0f} ns ({c_low:.0f}-{c_high:.0f})",
            f"empty function call {median(empties):.0f} ns",
        ],
    ]
    return render_table(
        ["what", "median (p25-p75)", "beside"],
        rows,
        title=f"Private APIs of other libraries vs their public replacements ({rounds} interleaved rounds)",
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args(argv)
    layout = cpu_layout()
    pin_to_cpu(None if layout is None else layout[1])
    print(asyncio.run(measure(args.rounds)))


if __name__ == "__main__":
    main()
