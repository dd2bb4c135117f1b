"""Client CPU per call against Verizon's own generated SDK (`sdksio-verizon-apis-sdk`, import `verizon`).

`python -m benchmarks.verizon [--rounds 9] [--concurrency 1 32]`

Verizon's SDK is synchronous (requests): at concurrency C it runs in C threads, each with its own
`VerizonClient` (one requests session each), calling `software_management_callbacks_v2.list_registered_callbacks`
as fast as answers come. Beside it, in the same rounds: this SDK on its default `HttpxTransport`, on
`AiohttpTransport` (when installed) and raw `httpx.AsyncClient`, all on asyncio, all against the server of
`benchmarks.server` (another process, pinned to the other core). Every driver has at most C connections,
kept alive. Each round runs one time slice of every driver, order reversed every other round; client CPU is
this process's (all threads) from getrusage around the slice. Reported per C: the medians, and each driver's
per-round CPU ratio to Verizon's SDK (median, p25-p75). Verizon's SDK gets its OAuth token and M2M session
token as given credentials, so it sends no token request, as the others do not.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fota_callbacks as fota

from ._common import (
    ACCESS_TOKEN,
    ACCOUNT,
    CALLBACK_URL,
    M2M_TOKEN,
    Sample,
    _quantile,
    cpu_layout,
    cpu_seconds,
    median,
    pin_to_cpu,
    render_table,
    run_count,
    run_slice,
)
from .loopback import (
    KEEPALIVE_EXPIRY,
    AiohttpSdkDriver,
    Driver,
    RawDriver,
    SdkDriver,
    make_aiohttp_session,
    make_http_client,
)
from .server import ServerProcess
from .verizon_async import AsyncVerizonChild, child_python

__all__ = ["VerizonResult", "format_verizon", "main", "measure", "verizon_client"]


def verizon_client(base_url: str) -> Any:
    """A `VerizonClient` whose servers are `base_url`, holding an OAuth token and an M2M session token."""
    from verizon.configuration import Configuration, Environment, Server
    from verizon.http.auth.thingspace_oauth import ThingspaceOauthCredentials
    from verizon.http.auth.vz_m2m_token import VZM2mTokenCredentials
    from verizon.models.oauth_token import OauthToken
    from verizon.verizon_client import VerizonClient

    servers = {
        Server.THINGSPACE: f"{base_url}/api",
        Server.OAUTH_SERVER: f"{base_url}/api/ts/v1",
        Server.M2M: f"{base_url}/api/m2m",
        Server.SOFTWARE_MANAGEMENT_V1: f"{base_url}/api/fota/v1",
        Server.SOFTWARE_MANAGEMENT_V2: f"{base_url}/api/fota/v2",
        Server.SOFTWARE_MANAGEMENT_V3: f"{base_url}/api/fota/v3",
    }
    Configuration.environments = dict.fromkeys(Environment, servers)  # how the SDK is pointed elsewhere
    token = OauthToken(access_token=ACCESS_TOKEN, token_type="bearer", expiry=int(time.time()) + 86_400)
    return VerizonClient(
        thingspace_oauth_credentials=ThingspaceOauthCredentials("bench-id", "bench-secret", oauth_token=token),
        vz_m2m_token_credentials=VZM2mTokenCredentials(M2M_TOKEN),
    )


class VerizonDriver:
    """Verizon's SDK in `concurrency` threads, one client each; slices block the event loop while they run."""

    name = "verizon"

    def __init__(self, base_url: str, concurrency: int) -> None:
        self._calls = [self._call_of(verizon_client(base_url)) for _ in range(concurrency)]
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="verizon-sdk")

    @staticmethod
    def _call_of(client: Any) -> Callable[[], object]:
        v2 = client.software_management_callbacks_v2

        def call() -> object:
            return v2.list_registered_callbacks(ACCOUNT).body

        return call

    def check(self) -> None:
        body = self._calls[0]()
        assert getattr(body, "url", None) == CALLBACK_URL, body

    def count(self, calls: int) -> None:
        per_thread = -(-calls // len(self._calls))
        list(self._pool.map(lambda call: [call() for _ in range(per_thread)], self._calls))

    def slice(self, duration: float) -> Sample:
        gc.collect()
        self.count(len(self._calls))
        stop_at = time.perf_counter() + duration
        done = [0]
        lock = threading.Lock()

        def worker(call: Callable[[], object]) -> None:
            calls = 0
            while time.perf_counter() < stop_at:
                call()
                calls += 1
            with lock:
                done[0] += calls

        cpu0, t0 = cpu_seconds(), time.perf_counter()
        list(self._pool.map(worker, self._calls))
        return Sample(done[0], time.perf_counter() - t0, cpu_seconds() - cpu0)

    def close(self) -> None:
        self._pool.shutdown()


SYNC = "verizon (sync)"
ASYNC_SHIPPED = "verizon async, pool as shipped"
ASYNC_TUNED = "verizon async, pool tuned"
SDK_SHIPPED = "sdk (httpx), as shipped"
SDK_TUNED = "sdk (httpx), tuned"
REFERENCES = (SYNC, ASYNC_SHIPPED, ASYNC_TUNED)
ASYNC_TARGET = 0.5
"""Issue 25: the default transport at most 0.5x Verizon's async SDK, each as shipped and each tuned."""
TARGET_PAIRS = ((SDK_SHIPPED, ASYNC_SHIPPED), (SDK_TUNED, ASYNC_TUNED))
_CHILD_DRIVERS = {ASYNC_SHIPPED: "shipped", ASYNC_TUNED: "tuned"}


def _local_drivers(base_url: str, concurrency: int) -> dict[str, Driver]:
    """This SDK as a user gets it (`HttpxTransport()`: 100 connections, 5 s keep-alive) and tuned like every other
    driver (C connections, kept an hour), on aiohttp where installed, and raw httpx."""
    shipped = fota.HttpxTransport()
    tuned = fota.HttpxTransport(max_connections=concurrency, keepalive_expiry=KEEPALIVE_EXPIRY)
    drivers: dict[str, Driver] = {
        SDK_SHIPPED: SdkDriver(base_url, shipped.client, shipped),
        SDK_TUNED: SdkDriver(base_url, tuned.client, tuned),
        "raw httpx": RawDriver(base_url, make_http_client(concurrency)),
    }
    if importlib.util.find_spec("aiohttp") is not None:
        drivers["sdk (aiohttp)"] = AiohttpSdkDriver(base_url, make_aiohttp_session(concurrency))
    return drivers


async def _cell(
    base_url: str, concurrency: int, rounds: int, slice_s: float, child_python: Path | None
) -> dict[str, list[Sample]]:
    drivers = _local_drivers(base_url, concurrency)
    verizon = VerizonDriver(base_url, concurrency)
    child = None if child_python is None else AsyncVerizonChild(child_python, base_url, concurrency)
    remote = [] if child is None else list(_CHILD_DRIVERS)
    samples: dict[str, list[Sample]] = {name: [] for name in [SYNC, *remote, *drivers]}
    warmup = max(300, 32 * concurrency)
    try:
        verizon.check()
        verizon.count(warmup)
        if child is not None:
            child.check()
            for name in remote:
                child.warm(_CHILD_DRIVERS[name], warmup)
        for driver in drivers.values():
            await driver.check()
            await driver.fill(base_url + "/api/fota/v2/callbacks/" + ACCOUNT, concurrency)
            await run_count(driver.calls["v2_list"], concurrency, warmup)
        names = list(samples)
        for index in range(rounds):
            for name in names if index % 2 == 0 else names[::-1]:
                if name == SYNC:
                    samples[name].append(verizon.slice(slice_s))
                elif name in _CHILD_DRIVERS:
                    assert child is not None
                    samples[name].append(child.slice(_CHILD_DRIVERS[name], slice_s))
                else:
                    samples[name].append(await run_slice(drivers[name].calls["v2_list"], concurrency, slice_s))
            print(f"verizon: C={concurrency} round {index + 1}/{rounds} done", file=sys.stderr, flush=True)
    finally:
        verizon.close()
        if child is not None:
            child.close()
        for driver in drivers.values():
            await driver.aclose()
    return samples


@dataclass
class VerizonResult:
    """Per concurrency, each driver's samples; the references are Verizon's SDKs (the async one when its child
    process could run: `note` says how it ran, or why not)."""

    cells: dict[int, dict[str, list[Sample]]]
    note: str = ""

    def ratios(self, concurrency: int, name: str, reference: str = SYNC) -> list[float]:
        """`name`'s CPU per call over `reference`'s, per round, sorted."""
        cell = self.cells[concurrency]
        pairs = zip(cell[name], cell[reference], strict=True)
        return sorted(run.cpu_us_per_call / ref.cpu_us_per_call for run, ref in pairs)

    def references(self, concurrency: int) -> list[str]:
        return [name for name in REFERENCES if name in self.cells[concurrency]]

    def summary(self) -> dict[str, Any]:
        def against(concurrency: int, name: str, reference: str) -> dict[str, float]:
            ratios = self.ratios(concurrency, name, reference)
            return {"median": median(ratios), "p25": _quantile(ratios, 0.25), "p75": _quantile(ratios, 0.75)}

        return {
            "note": self.note,
            **{
                str(concurrency): {
                    name: {
                        "cpu_us_per_call": median([run.cpu_us_per_call for run in runs]),
                        "calls_per_s": median([run.calls_per_s for run in runs]),
                        **{f"vs {ref}": against(concurrency, name, ref) for ref in self.references(concurrency)},
                    }
                    for name, runs in cell.items()
                }
                for concurrency, cell in self.cells.items()
            },
        }


def measure(base_url: str, concurrencies: list[int], rounds: int, slice_s: float) -> VerizonResult:
    """Every concurrency's cell, one after another (each on a fresh event loop, with a fresh child process)."""
    python, note = child_python()
    cells = {c: asyncio.run(_cell(base_url, c, rounds, slice_s, python)) for c in concurrencies}
    return VerizonResult(cells, note=note)


def _ratio_text(result: VerizonResult, concurrency: int, name: str, reference: str) -> str:
    if reference not in result.cells[concurrency]:
        return ""
    ratios = result.ratios(concurrency, name, reference)
    return f"{median(ratios):.3f}x ({_quantile(ratios, 0.25):.2f}-{_quantile(ratios, 0.75):.2f})"


def format_verizon(result: VerizonResult) -> str:
    rows = []
    verdicts = []
    for concurrency, cell in result.cells.items():
        for name, runs in cell.items():
            rows.append(
                [
                    name,
                    str(concurrency),
                    f"{median([run.calls_per_s for run in runs]):,.0f}",
                    f"{median([run.cpu_us_per_call for run in runs]):.1f}",
                    *(_ratio_text(result, concurrency, name, reference) for reference in REFERENCES),
                ]
            )
        for sdk, reference in TARGET_PAIRS:
            if reference in cell:
                ratio = median(result.ratios(concurrency, sdk, reference))
                verdict = "ok" if ratio <= ASYNC_TARGET else "MISS"
                verdicts.append(f"C={concurrency}: {sdk} / {reference} = {ratio:.3f}x (<= {ASYNC_TARGET}x: {verdict})")
    rounds = len(next(iter(next(iter(result.cells.values())).values())))
    title = (
        f"Against Verizon's SDKs, V2 list over loopback: client CPU per call (all threads; the async SDK's read in "
        f"its own process), medians of {rounds} interleaved rounds; ratios = median of per-round CPU ratios "
        f"(p25-p75). Verizon's sync SDK: C threads with a client each. Verizon's async SDK: {result.note}"
    )
    headers = ["driver", "C", "calls/s", "CPU µs/call", "vs sync SDK", "vs async, shipped", "vs async, tuned"]
    table = render_table(headers, rows, title)
    return "\n".join([table, *(f"target: {line}" for line in verdicts)])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--slice", type=float, default=0.5, dest="slice_s", help="seconds per slice")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    args = parser.parse_args(argv)
    layout = cpu_layout()
    with ServerProcess(cpu=layout[0] if layout else None) as server:
        pin_to_cpu(layout[1] if layout else None)
        result = measure(server.base_url, args.concurrency, args.rounds, args.slice_s)
    print(format_verizon(result))


if __name__ == "__main__":
    main()
