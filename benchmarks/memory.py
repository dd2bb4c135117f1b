"""Memory: RSS with N calls in flight at once through `InMemoryTransport`, batch after batch.

The handler awaits an `anyio.Event`, so every call of a batch is parked inside the transport (its request
built, its auth headers attached, its timeout scope open) when RSS is read; the event is then set and the
batch completes. RSS is read after each batch too (after `gc.collect()`): it should stay flat from batch to
batch. Run it in a fresh process (`benchmarks.run` does), so that other benchmarks' allocations do not hide
or inflate anything.

Standalone: `python -m benchmarks.memory [--calls N] [--batches B] [--json]`.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
from dataclasses import dataclass, field
from typing import Any

import anyio

import fota_callbacks as fota

from ._common import (
    ACCESS_TOKEN,
    ACCOUNT,
    CALLBACK_URL,
    M2M_TOKEN,
    V2_LIST_BODY,
    render_table,
    rss_bytes,
)

__all__ = ["MemoryResult", "format_memory", "main", "measure"]

MIB = 1024 * 1024


@dataclass
class MemoryResult:
    calls: int
    baseline_rss: int
    in_flight_rss: list[int] = field(default_factory=list)
    after_rss: list[int] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "baseline_rss_mib": self.baseline_rss / MIB,
            "in_flight_rss_mib": [v / MIB for v in self.in_flight_rss],
            "after_batch_rss_mib": [v / MIB for v in self.after_rss],
            "kib_per_in_flight_call": self.per_call_kib(),
            "growth_after_second_batch_mib": self.growth() / MIB,
        }

    def per_call_kib(self) -> float:
        return (self.in_flight_rss[0] - self.baseline_rss) / self.calls / 1024

    def growth(self) -> int:
        """RSS after the last batch minus after the second: the first two batches size the allocator's pools."""
        return self.after_rss[-1] - self.after_rss[min(1, len(self.after_rss) - 1)]

    @classmethod
    def from_summary(cls, data: dict[str, Any]) -> MemoryResult:
        return cls(
            calls=int(data["calls"]),
            baseline_rss=int(data["baseline_rss_mib"] * MIB),
            in_flight_rss=[int(v * MIB) for v in data["in_flight_rss_mib"]],
            after_rss=[int(v * MIB) for v in data["after_batch_rss_mib"]],
        )


async def measure(calls: int, batches: int) -> MemoryResult:
    release = anyio.Event()
    parked = 0
    all_parked = asyncio.Event()
    response = fota.Response(200, (("Content-Type", "application/json"),), V2_LIST_BODY)

    async def handler(request: fota.Request) -> fota.Response:
        nonlocal parked
        parked += 1
        if parked == calls:
            all_parked.set()
        await release.wait()
        return response

    client = fota.FotaCallbacksClient(
        access_token=ACCESS_TOKEN,
        m2m_token=M2M_TOKEN,
        base_url="http://bench.invalid",
        transport=fota.InMemoryTransport(handler),
    )
    v2 = client.v2
    expected = fota.CallbackSummary(url=CALLBACK_URL)
    # one call first: lazily built converters and caches are not what is measured
    release.set()
    await v2.list_registered_callbacks(ACCOUNT)
    gc.collect()
    result = MemoryResult(calls, rss_bytes())
    for _ in range(batches):
        release, parked = anyio.Event(), 0
        all_parked.clear()
        tasks = [asyncio.ensure_future(v2.list_registered_callbacks(ACCOUNT)) for _ in range(calls)]
        await all_parked.wait()
        result.in_flight_rss.append(rss_bytes())
        release.set()
        results = await asyncio.gather(*tasks)
        assert all(r == expected for r in results)
        del tasks, results
        gc.collect()
        result.after_rss.append(rss_bytes())
    await client.aclose()
    return result


def format_memory(result: MemoryResult) -> str:
    rows = [
        [str(i + 1), f"{inflight / MIB:.1f}", f"{after / MIB:.1f}"]
        for i, (inflight, after) in enumerate(zip(result.in_flight_rss, result.after_rss, strict=True))
    ]
    table = render_table(
        ["batch", "RSS in flight MiB", "RSS after MiB"],
        rows,
        f"Memory: {result.calls:,} concurrent in-flight V2 list calls per batch (InMemoryTransport, handler "
        f"awaiting an anyio.Event); RSS before: {result.baseline_rss / MIB:.1f} MiB",
    )
    return (
        f"{table}\n~{result.per_call_kib():.1f} KiB per in-flight call; RSS after the last batch minus after batch "
        f"{min(2, len(result.after_rss))}: {result.growth() / MIB:+.1f} MiB"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    result = asyncio.run(measure(args.calls, args.batches))
    print(json.dumps(result.summary()) if args.json else format_memory(result))


if __name__ == "__main__":
    main()
