"""FakeThingSpace throughput: SDK calls per second against the fake in-process (`fake.transport()`).

Users' test suites run thousands of calls on the fake; this is what one costs. The client is `fake.client()`
(an `InMemoryTransport` on `fake.handle`, OAuth credentials the fake accepts, so the fake checks a bearer
token and an M2M session on every call, as ThingSpace does), one task, one core. Operations: V2 list of a
registered account, and a V2 register + list + deregister cycle (three calls, counted as three). Each with
the fake recording requests (its default) and with `record_requests=False`; next to them the same V2 list on
a canned-response `InMemoryTransport` (the SDK alone), so the fake's own share is the difference. Drivers
interleave in rounds; medians.

Standalone: `python -m benchmarks.fake [--rounds N] [--seconds S]`.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import fota_callbacks as fota
from fota_callbacks.testing import FakeThingSpace

from ._common import ACCOUNT, CALLBACK_URL, V2_LIST_BODY, cpu_layout, cpu_seconds, median, pin_to_cpu, render_table
from .inmemory import make_client

__all__ = ["FakeResult", "format_fake", "main", "measure"]

Call = Callable[[], Awaitable[int]]
"""One step of a driver; returns how many SDK calls it made."""


@dataclass
class FakeResult:
    rounds: int
    seconds: float
    us_per_call: dict[str, float]
    calls_per_s: dict[str, float]

    def summary(self) -> dict[str, Any]:
        return {
            "rounds": self.rounds,
            "seconds": self.seconds,
            "cpu_us_per_call": self.us_per_call,
            "calls_per_s": self.calls_per_s,
        }


_LABELS = {
    "fake_list": "V2 list on FakeThingSpace (recording requests)",
    "fake_cycle": "V2 register + list + deregister on FakeThingSpace (recording)",
    "fake_list_norecord": "V2 list on FakeThingSpace(record_requests=False)",
    "canned_list": "V2 list on a canned InMemoryTransport (the SDK alone)",
}


async def _drivers() -> tuple[dict[str, Call], list[fota.FotaCallbacksClient], list[FakeThingSpace]]:
    recording, quiet = FakeThingSpace(), FakeThingSpace(record_requests=False)
    clients = [recording.client(), quiet.client(), make_client(V2_LIST_BODY)]
    fake_client, quiet_client, canned_client = clients
    body = fota.FotaV2CallbackRegistrationRequest(url=CALLBACK_URL)
    other = ACCOUNT[:-1] + "2"
    for client in (fake_client, quiet_client):
        await client.v2.register_callback(ACCOUNT, body)

    async def fake_list() -> int:
        await fake_client.v2.list_registered_callbacks(ACCOUNT)
        return 1

    async def fake_cycle() -> int:
        await fake_client.v2.register_callback(other, body)
        await fake_client.v2.list_registered_callbacks(other)
        await fake_client.v2.deregister_callback(other)
        return 3

    async def fake_list_norecord() -> int:
        await quiet_client.v2.list_registered_callbacks(ACCOUNT)
        return 1

    async def canned_list() -> int:
        await canned_client.v2.list_registered_callbacks(ACCOUNT)
        return 1

    calls: dict[str, Call] = {
        "fake_list": fake_list,
        "fake_cycle": fake_cycle,
        "fake_list_norecord": fake_list_norecord,
        "canned_list": canned_list,
    }
    return calls, clients, [recording, quiet]


async def _slice(step: Call, seconds: float) -> tuple[float, float]:
    """(CPU µs per SDK call, SDK calls per second) of running `step` back to back for about `seconds`."""
    gc.collect()
    calls = 0
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    stop_at = t0 + seconds
    while time.perf_counter() < stop_at:
        for _ in range(50):
            calls += await step()
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    return cpu / calls * 1e6, calls / wall


async def measure(*, rounds: int, seconds: float) -> FakeResult:
    calls, clients, _fakes = await _drivers()
    try:
        for step in calls.values():
            for _ in range(300):
                await step()
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in calls}
        order = list(calls)
        for round_index in range(rounds):
            for name in order if round_index % 2 == 0 else order[::-1]:
                samples[name].append(await _slice(calls[name], seconds))
    finally:
        for client in clients:
            await client.aclose()
    return FakeResult(
        rounds=rounds,
        seconds=seconds,
        us_per_call={name: median([s[0] for s in values]) for name, values in samples.items()},
        calls_per_s={name: median([s[1] for s in values]) for name, values in samples.items()},
    )


def format_fake(result: FakeResult) -> str:
    canned = result.us_per_call["canned_list"]
    rows = [
        [
            label,
            f"{1e6 / result.us_per_call[name]:,.0f}",
            f"{result.us_per_call[name]:.1f}",
            f"{result.calls_per_s[name]:,.0f}",
            f"{result.us_per_call[name] / canned:.2f}x",
        ]
        for name, label in _LABELS.items()
    ]
    return render_table(
        ["driver", "calls per CPU-second", "CPU µs/call", "calls/s (wall)", "vs canned"],
        rows,
        f"FakeThingSpace through fake.transport() (fake.client(): OAuth + M2M session checked per call), 1 task, "
        f"1 core: medians of {result.rounds} interleaved rounds of {result.seconds:g} s (wall calls/s depend on "
        "what else shares the core; CPU time does not)",
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=0.4, help="seconds per driver per round")
    args = parser.parse_args(argv)
    layout = cpu_layout()
    pin_to_cpu(None if layout is None else layout[1])
    print(format_fake(asyncio.run(measure(rounds=args.rounds, seconds=args.seconds))))


if __name__ == "__main__":
    main()
