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
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import fota_callbacks as fota

from ._common import (
    ACCESS_TOKEN,
    ACCOUNT,
    CALLBACK_URL,
    M2M_TOKEN,
    cpu_layout,
    cpu_seconds,
    median,
    pin_to_cpu,
    render_table,
)
from .loopback import (
    KEEPALIVE_EXPIRY,
    AiohttpSdkDriver,
    Driver,
    RawDriver,
    Sample,
    SdkDriver,
    _quantile,
    make_aiohttp_session,
    make_http_client,
    run_count,
    run_slice,
)
from .server import ServerProcess

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


async def _cell(base_url: str, concurrency: int, rounds: int, slice_s: float) -> dict[str, list[Sample]]:
    owned = fota.HttpxTransport(max_connections=concurrency, keepalive_expiry=KEEPALIVE_EXPIRY)
    drivers: dict[str, Driver] = {
        "sdk (httpx)": SdkDriver(base_url, owned.client, owned),
        "raw httpx": RawDriver(base_url, make_http_client(concurrency)),
    }
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        pass
    else:
        drivers["sdk (aiohttp)"] = AiohttpSdkDriver(base_url, make_aiohttp_session(concurrency))
    verizon = VerizonDriver(base_url, concurrency)
    samples: dict[str, list[Sample]] = {name: [] for name in ["verizon", *drivers]}
    try:
        verizon.check()
        for driver in drivers.values():
            await driver.check()
            await driver.fill(base_url + "/api/fota/v2/callbacks/" + ACCOUNT, concurrency)
            await run_count(driver.calls["v2_list"], concurrency, max(300, 32 * concurrency))
        verizon.count(max(300, 32 * concurrency))
        names = list(samples)
        for index in range(rounds):
            for name in names if index % 2 == 0 else names[::-1]:
                if name == "verizon":
                    samples[name].append(verizon.slice(slice_s))
                else:
                    samples[name].append(await run_slice(drivers[name].calls["v2_list"], concurrency, slice_s))
            print(f"verizon: C={concurrency} round {index + 1}/{rounds} done", file=sys.stderr, flush=True)
    finally:
        verizon.close()
        for driver in drivers.values():
            await driver.aclose()
    return samples


@dataclass
class VerizonResult:
    """Per concurrency, each driver's samples (the first driver, "verizon", is the reference)."""

    cells: dict[int, dict[str, list[Sample]]]

    def ratios(self, concurrency: int, name: str) -> list[float]:
        """`name`'s CPU per call over Verizon's SDK's, per round, sorted."""
        cell = self.cells[concurrency]
        pairs = zip(cell[name], cell["verizon"], strict=True)
        return sorted(run.cpu_us_per_call / ref.cpu_us_per_call for run, ref in pairs)

    def summary(self) -> dict[str, Any]:
        return {
            str(concurrency): {
                name: {
                    "cpu_us_per_call": median([run.cpu_us_per_call for run in runs]),
                    "vs_verizon": median(self.ratios(concurrency, name)),
                    "vs_verizon_p25": _quantile(self.ratios(concurrency, name), 0.25),
                    "vs_verizon_p75": _quantile(self.ratios(concurrency, name), 0.75),
                }
                for name, runs in cell.items()
            }
            for concurrency, cell in self.cells.items()
        }


def measure(base_url: str, concurrencies: list[int], rounds: int, slice_s: float) -> VerizonResult:
    """Every concurrency's cell, one after another (each on a fresh event loop)."""
    return VerizonResult({c: asyncio.run(_cell(base_url, c, rounds, slice_s)) for c in concurrencies})


def format_verizon(result: VerizonResult) -> str:
    rows = []
    for concurrency, cell in result.cells.items():
        for name, runs in cell.items():
            ratios = result.ratios(concurrency, name)
            rows.append(
                [
                    name,
                    str(concurrency),
                    f"{median([run.calls_per_s for run in runs]):,.0f}",
                    f"{median([run.cpu_us_per_call for run in runs]):.1f}",
                    f"{median(ratios):.3f}x",
                    f"{_quantile(ratios, 0.25):.2f}-{_quantile(ratios, 0.75):.2f}",
                ]
            )
    rounds = len(next(iter(next(iter(result.cells.values())).values())))
    title = (
        f"Against Verizon's generated SDK (sync, requests; C threads with a client each), V2 list over loopback: "
        f"client CPU per call (all threads), medians of {rounds} interleaved rounds; ratio = per-round CPU over "
        f"Verizon's SDK's"
    )
    return render_table(["driver", "C", "calls/s", "CPU µs/call", "vs Verizon's SDK", "p25-p75"], rows, title)


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
