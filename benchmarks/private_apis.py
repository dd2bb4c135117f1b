"""What the private APIs of other libraries would buy: each one the SDK used for speed, against the public API that
replaces it, measured interleaved in one run (the same alternating slices as `benchmarks.inmemory`).

- asyncio detection in `InMemoryTransport.send` (a V2 list on a canned `InMemoryTransport`, the timeout armed as by
  default): `asyncio._get_running_loop() is not None` (private, used until now) against the SDK's
  `asyncio.get_running_loop()` in a `try` (public). A ratio inside the A/A spread (the SDK against itself in the
  same slices) is no reason to keep the private one.
- The event-loop check the httpx and httpx2 transports make per send (`running_loop()` and an identity test against
  their `LoopBinding`, public APIs only): its cost in ns per call, next to an empty function, to set beside the CPU
  per call of `benchmarks.loopback`.

aiohttp's `ClientSession._retry_connection` is not here: it is set for behaviour (aiohttp would otherwise resend a
request once on its own, past the client's `RetryPolicy`), not speed, and has no public switch; its test is
`tests/transports/test_conformance.py::test_aiohttp_does_not_resend_on_its_own`.

Standalone: `python -m benchmarks.private_apis [--rounds N] [--seconds S]` (asyncio).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from fota_callbacks.transport import _common, memory

from ._common import ACCOUNT, V2_LIST_BODY, cpu_layout, median, pin_to_cpu, quartiles, render_table
from .inmemory import Call, _paired, make_client

__all__ = ["main"]


def _private_on_asyncio() -> bool:
    """`InMemoryTransport`'s asyncio detection as it was, on asyncio's private `_get_running_loop`."""
    import sniffio

    if sniffio.thread_local.name is not None or sniffio.current_async_library_cvar.get() is not None:
        return sniffio.current_async_library() == "asyncio"
    import asyncio  # as the transport does (a lookup once loaded): the two differ in the one call only

    return asyncio._get_running_loop() is not None


@contextmanager
def _detection(detect: Callable[[], bool]) -> Iterator[None]:
    public = memory._on_asyncio
    memory._on_asyncio = detect
    try:
        yield
    finally:
        memory._on_asyncio = public


def _with(detect: Callable[[], bool], call: Call) -> Call:
    async def patched() -> object:
        with _detection(detect):
            return await call()

    return patched


async def _detection_rounds(rounds: int, seconds: float) -> tuple[list[float], list[float], list[float]]:
    """Per round: private/public CPU per call, public/public (A/A), and the public variant's µs per call."""
    client = make_client(V2_LIST_BODY)
    v2 = client.v2

    async def v2_list() -> object:
        return await v2.list_registered_callbacks(ACCOUNT)

    private, public = _with(_private_on_asyncio, v2_list), _with(memory._on_asyncio, v2_list)
    for _ in range(2000):  # warm-up: caches, the token snapshot, the decoder
        await public()
        await private()
    ratios: list[float] = []
    control: list[float] = []
    public_us: list[float] = []
    for _ in range(rounds):
        private_cpu, _, public_cpu = await _paired(private, public, seconds)
        again_cpu, _, public_again = await _paired(public, public, seconds)
        ratios.append(private_cpu / public_cpu)
        control.append(again_cpu / public_again)
        public_us.append(public_cpu)
    await client.aclose()
    return ratios, control, public_us


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


async def measure(rounds: int, seconds: float) -> str:
    ratios, control, public_us = await _detection_rounds(rounds, seconds)
    checks, empties = _loop_check_ns(rounds)
    low, high = quartiles(ratios)
    a_low, a_high = quartiles(control)
    c_low, c_high = quartiles(checks)
    rows = [
        [
            "InMemoryTransport asyncio detection: private _get_running_loop / public get_running_loop",
            f"{median(ratios):.3f}x ({low:.3f}-{high:.3f})",
            f"{median(control):.3f}x ({a_low:.3f}-{a_high:.3f})",
            f"V2 list {median(public_us):.1f} µs/call (public)",
        ],
        [
            "httpx/httpx2 transports: the event-loop check per send",
            f"{median(checks):.0f} ns ({c_low:.0f}-{c_high:.0f})",
            "",
            f"empty function call {median(empties):.0f} ns",
        ],
    ]
    return render_table(
        ["what", "median (p25-p75)", "A/A (same code twice)", "beside"],
        rows,
        title=f"Private APIs of other libraries vs their public replacements ({rounds} interleaved rounds)",
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--seconds", type=float, default=0.5, help="seconds per paired slice set")
    args = parser.parse_args(argv)
    layout = cpu_layout()
    pin_to_cpu(None if layout is None else layout[1])
    print(asyncio.run(measure(args.rounds, args.seconds)))


if __name__ == "__main__":
    main()
