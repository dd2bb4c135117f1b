"""The SDK against each HTTP stack's raw floor over loopback HTTP, interleaved in short slices, in one run.

For each transport (httpx, and where installed httpx2 and aiohttp) two drivers make the same requests (same
URL, the same four headers, the same body) to the server in `benchmarks.server` (another process, pinned to
the other core): the SDK on that transport, and the transport's raw client (`httpx.AsyncClient`,
`httpx2.AsyncClient`, `aiohttp.ClientSession`) with `raise_for_status()` + `json.loads`. Each driver has its
own, identically configured client: at most C connections, kept alive longer than the run, and filled to C
connections before the warm-up. For every (operation, concurrency) cell, each round runs one time slice of
every driver back to back (order reversed every other round, SDK and raw of a transport always adjacent),
measuring wall time and this process's CPU time (getrusage) around the slice. Reported: medians over
rounds, the median of the per-round SDK/raw CPU ratios per transport (adjacent slices share the machine's
current speed), and each raw floor relative to raw httpx.

Standalone: `python -m benchmarks.loopback [--rounds N] [--slice S] [--transport ...]`.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import httpx

import fota_callbacks as fota

from ._common import (
    ACCESS_TOKEN,
    ACCOUNT,
    CALLBACK_URL,
    M2M_TOKEN,
    V1_LIST_BODY,
    V2_LIST_BODY,
    Call,
    Sample,
    _quantile,
    cpu_layout,
    median,
    pin_to_cpu,
    render_table,
    run_count,
    run_slice,
)
from .server import ServerProcess

__all__ = [
    "FAST_OPERATIONS",
    "OPERATIONS",
    "TARGETS",
    "TRANSPORTS",
    "CellResult",
    "LoopbackResult",
    "format_loopback",
    "main",
    "measure",
]

OPERATIONS: dict[str, str] = {
    "v2_list": "V2 list (GET, object)",
    "v1_list": "V1 list (GET, array of 3)",
    "v2_register": "V2 register (POST, enc+dec)",
}
# The httpx pair runs every operation; the other transports, by default, these (to keep the run short).
FAST_OPERATIONS: tuple[str, ...] = ("v2_list", "v1_list")
TRANSPORTS: tuple[str, ...] = ("httpx", "httpx2", "aiohttp")
# SDK/raw CPU per call on the same transport.
# httpx: issue 17, the default transport cheaper than raw httpx (it owns its pool and skips the client layer).
# aiohttp: issue 25, at most 5% over raw aiohttp, whose floor is so low (~0.03-0.3x raw httpx) that the SDK's fixed
# per-call work weighs the most against it.
TARGETS: dict[str, float] = {"httpx": 0.85, "httpx2": 1.10, "aiohttp": 1.05}
LOOPBACK_TARGET = TARGETS["httpx"]
KEEPALIVE_EXPIRY = 3600.0  # httpx's 5 s default would close idle connections between slices


def sdk_name(transport: str) -> str:
    """The driver name of the SDK on `transport` ("sdk" for httpx, as before the other transports came)."""
    return "sdk" if transport == "httpx" else f"sdk_{transport}"


def raw_name(transport: str) -> str:
    """The driver name of `transport`'s raw client ("raw" for httpx)."""
    return "raw" if transport == "httpx" else f"raw_{transport}"


def available_transports(wanted: Sequence[str]) -> tuple[list[str], list[str]]:
    """The wanted transports whose package is installed, and a note for each one skipped."""
    found, notes = [], []
    for transport in wanted:
        if transport == "httpx" or importlib.util.find_spec(transport) is not None:
            found.append(transport)
        else:
            notes.append(f"{transport}: skipped, package not installed (pip install 'fota-callbacks[{transport}]')")
    return found, notes


def make_http_client(concurrency: int, module: ModuleType = httpx) -> Any:
    """One client configuration for every httpx-family driver: at most `concurrency` connections, kept alive.

    `module` is `httpx` or `httpx2` (same API). httpcore's pool scans its connections several times per
    request (O(connections²) work at C=32), and how many connections a pool opens under load depends on
    timing: identical warm-ups leave 13 to 32. Capping the pool at C and filling it (`fill_pool`) gives every
    driver the same pool to work with.
    """
    return module.AsyncClient(
        limits=module.Limits(
            max_connections=concurrency,
            max_keepalive_connections=concurrency,
            keepalive_expiry=KEEPALIVE_EXPIRY,
        ),
        timeout=30.0,
        follow_redirects=False,
        trust_env=False,
    )


def make_aiohttp_session(concurrency: int) -> Any:
    """The aiohttp equivalent (inside the running loop): a connector of at most C connections, kept alive,
    no cookies, the whole-exchange timeout `AiohttpTransport` itself sets."""
    import aiohttp

    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=concurrency, keepalive_timeout=KEEPALIVE_EXPIRY),
        timeout=aiohttp.ClientTimeout(total=30.0),
        cookie_jar=aiohttp.DummyCookieJar(),
        trust_env=False,
    )


async def fill_pool(http: Any, url: str, connections: int) -> None:
    """Open exactly `connections` keep-alive connections: that many responses held open at once, then closed."""
    responses = await asyncio.gather(
        *(http.send(http.build_request("GET", url), stream=True) for _ in range(connections))
    )
    for response in responses:
        await response.aread()
        await response.aclose()


def pool_size(http: Any) -> int | None:
    """How many connections an httpx-family client's pool holds (internals; None if they changed). The client of
    an `HttpxTransport` that owns its pool sends on several (`pools`): their connections are added up."""
    transport = getattr(http, "_transport", None)
    total = 0
    for each in getattr(transport, "pools", [transport]):
        connections = getattr(getattr(each, "_pool", None), "connections", None)
        if not isinstance(connections, list):
            return None
        total += len(connections)
    return total


def _headers() -> dict[str, str]:
    return {
        "Accept": "application/json",
        "User-Agent": f"fota-callbacks-python/{fota.__version__}",
        "Authorization": f"Bearer {ACCESS_TOKEN}",
        "VZ-M2M-Token": M2M_TOKEN,
    }


class Driver:
    """A way of making the benchmark's calls: `calls[operation]()` makes one call and returns its result."""

    name: str
    calls: dict[str, Call]
    http: Any  # the driver's own client or session

    async def aclose(self) -> None:
        raise NotImplementedError

    async def check(self) -> None:
        raise NotImplementedError

    async def fill(self, url: str, connections: int) -> None:
        await fill_pool(self.http, url, connections)

    def pool_size(self) -> int | None:
        return pool_size(self.http)


class SdkDriver(Driver):
    """`FotaCallbacksClient` on a given transport (by default an `HttpxTransport` around `http`)."""

    name = "sdk"

    def __init__(self, base_url: str, http: Any, transport: fota.Transport | None = None) -> None:
        self.http = http
        self.client = fota.FotaCallbacksClient(
            access_token=ACCESS_TOKEN,
            m2m_token=M2M_TOKEN,
            base_url=base_url,
            transport=transport if transport is not None else fota.HttpxTransport(http),
        )
        v1, v2 = self.client.v1, self.client.v2
        register_request = fota.FotaV2CallbackRegistrationRequest

        async def v2_list() -> object:
            return await v2.list_registered_callbacks(ACCOUNT)

        async def v1_list() -> object:
            return await v1.list_registered_callbacks(ACCOUNT)

        async def v2_register() -> object:
            return await v2.register_callback(ACCOUNT, register_request(url=CALLBACK_URL))

        self.calls = {"v2_list": v2_list, "v1_list": v1_list, "v2_register": v2_register}

    async def check(self) -> None:
        summary = await self.calls["v2_list"]()
        assert summary == fota.CallbackSummary(url=CALLBACK_URL), summary
        callbacks = await self.calls["v1_list"]()
        assert isinstance(callbacks, list)
        assert len(callbacks) == 3, callbacks
        assert all(isinstance(item, fota.RegisteredCallbacks) for item in callbacks)
        result = await self.calls["v2_register"]()
        assert result == fota.FotaV2CallbackRegistrationResult(url=CALLBACK_URL), result

    async def aclose(self) -> None:
        await self.client.aclose()
        await self.http.aclose()


class AiohttpSdkDriver(SdkDriver):
    """`FotaCallbacksClient` on an `AiohttpTransport` around a given `aiohttp.ClientSession`."""

    def __init__(self, base_url: str, session: Any) -> None:
        super().__init__(base_url, session, fota.AiohttpTransport(session))

    async def aclose(self) -> None:
        await self.client.aclose()
        await self.http.close()

    async def fill(self, url: str, connections: int) -> None:
        await fill_session(self.http, url, connections)

    def pool_size(self) -> int | None:
        return session_pool_size(self.http)


class RawDriver(Driver):
    """Plain `httpx.AsyncClient` (or `httpx2.AsyncClient`): the same request, `raise_for_status()`,
    `json.loads` of the body."""

    name = "raw"

    def __init__(self, base_url: str, http: Any) -> None:
        self.http = http
        headers = _headers()
        v2_url = f"{base_url}/api/fota/v2/callbacks/{ACCOUNT}"
        v1_url = f"{base_url}/api/fota/v1/callbacks/{ACCOUNT}"
        loads = json.loads

        async def v2_list() -> object:
            response = await http.get(v2_url, headers=headers)
            response.raise_for_status()
            return loads(response.content)

        async def v1_list() -> object:
            response = await http.get(v1_url, headers=headers)
            response.raise_for_status()
            return loads(response.content)

        async def v2_register() -> object:
            response = await http.post(v2_url, json={"url": CALLBACK_URL}, headers=headers)
            response.raise_for_status()
            return loads(response.content)

        self.calls = {"v2_list": v2_list, "v1_list": v1_list, "v2_register": v2_register}

    async def check(self) -> None:
        assert await self.calls["v2_list"]() == json.loads(V2_LIST_BODY)
        assert await self.calls["v1_list"]() == json.loads(V1_LIST_BODY)
        assert await self.calls["v2_register"]() == {"url": CALLBACK_URL}

    async def aclose(self) -> None:
        await self.http.aclose()


class AiohttpRawDriver(RawDriver):
    """Plain `aiohttp.ClientSession`: the same request, `raise_for_status()`, `json.loads` of `read()`."""

    def __init__(self, base_url: str, session: Any) -> None:
        self.http = session
        headers = _headers()
        v2_url = f"{base_url}/api/fota/v2/callbacks/{ACCOUNT}"
        v1_url = f"{base_url}/api/fota/v1/callbacks/{ACCOUNT}"
        loads = json.loads

        async def v2_list() -> object:
            async with session.get(v2_url, headers=headers) as response:
                response.raise_for_status()
                return loads(await response.read())

        async def v1_list() -> object:
            async with session.get(v1_url, headers=headers) as response:
                response.raise_for_status()
                return loads(await response.read())

        async def v2_register() -> object:
            async with session.post(v2_url, json={"url": CALLBACK_URL}, headers=headers) as response:
                response.raise_for_status()
                return loads(await response.read())

        self.calls = {"v2_list": v2_list, "v1_list": v1_list, "v2_register": v2_register}

    async def aclose(self) -> None:
        await self.http.close()

    async def fill(self, url: str, connections: int) -> None:
        await fill_session(self.http, url, connections)

    def pool_size(self) -> int | None:
        return session_pool_size(self.http)


async def fill_session(session: Any, url: str, connections: int) -> None:
    """`fill_pool` for an aiohttp session: `connections` responses held at once, then read and released."""
    responses = await asyncio.gather(*(session.get(url) for _ in range(connections)))
    for response in responses:
        await response.read()
        response.release()


def session_pool_size(session: Any) -> int | None:
    """Idle plus busy connections of an aiohttp session's connector (internals; None if they changed)."""
    connector = getattr(session, "connector", None)
    idle, busy = getattr(connector, "_conns", None), getattr(connector, "_acquired", None)
    if not isinstance(idle, dict) or not isinstance(busy, set):
        return None
    return sum(len(conns) for conns in idle.values()) + len(busy)


def make_pair(transport: str, base_url: str, concurrency: int) -> tuple[Driver, Driver]:
    """(SDK driver, raw driver) on `transport`, each with its own identically configured client. The SDK's
    httpx-family transports own their pool, as by default (they then skip the client layer); `client` is the
    client on that pool, used to fill it."""
    if transport in ("httpx", "httpx2"):
        module: ModuleType = httpx
        sdk_transport: Any = fota.HttpxTransport
        if transport == "httpx2":
            import httpx2

            module, sdk_transport = httpx2, fota.Httpx2Transport
        owned = sdk_transport(max_connections=concurrency, keepalive_expiry=KEEPALIVE_EXPIRY)
        return SdkDriver(base_url, owned.client, owned), RawDriver(base_url, make_http_client(concurrency, module))
    if transport == "aiohttp":
        return (
            AiohttpSdkDriver(base_url, make_aiohttp_session(concurrency)),
            AiohttpRawDriver(base_url, make_aiohttp_session(concurrency)),
        )
    raise ValueError(f"unknown transport {transport!r}")


@dataclass
class CellResult:
    operation: str
    concurrency: int
    samples: dict[str, list[Sample]] = field(default_factory=lambda: {"sdk": [], "raw": []})

    def transports(self) -> list[str]:
        """The transports measured in this cell (both of their drivers have samples)."""
        return [t for t in TRANSPORTS if sdk_name(t) in self.samples and raw_name(t) in self.samples]

    def calls_per_s(self, driver: str) -> float:
        return median([s.calls_per_s for s in self.samples[driver]])

    def cpu_us_per_call(self, driver: str) -> float:
        return median([s.cpu_us_per_call for s in self.samples[driver]])

    def cpu_ratios(self, driver: str = "sdk", base: str = "raw") -> list[float]:
        """`driver`/`base` CPU per call, round by round (slices of the same round and cell)."""
        return [
            sample.cpu_us_per_call / other.cpu_us_per_call
            for sample, other in zip(self.samples[driver], self.samples[base], strict=True)
        ]

    def cpu_ratio(self, driver: str = "sdk", base: str = "raw") -> float:
        return median(self.cpu_ratios(driver, base))

    def transport_ratio(self, transport: str) -> float:
        """SDK on `transport` / raw `transport`, median of the per-round ratios."""
        return self.cpu_ratio(sdk_name(transport), raw_name(transport))

    def pooled_cpu_ratio(self, driver: str = "sdk", base: str = "raw") -> float:
        """Total `driver` CPU per call over total `base` CPU per call, all rounds pooled."""
        a, b = self.samples[driver], self.samples[base]
        return (sum(s.cpu_s for s in a) / sum(s.calls for s in a)) / (sum(s.cpu_s for s in b) / sum(s.calls for s in b))

    def pair_summary(self, transport: str) -> dict[str, Any]:
        sdk, raw = sdk_name(transport), raw_name(transport)
        ratios = sorted(self.cpu_ratios(sdk, raw))
        floor = sorted(self.cpu_ratios(raw, "raw"))
        return {
            "raw_calls_per_s": self.calls_per_s(raw),
            "sdk_calls_per_s": self.calls_per_s(sdk),
            "raw_cpu_us_per_call": self.cpu_us_per_call(raw),
            "sdk_cpu_us_per_call": self.cpu_us_per_call(sdk),
            "cpu_ratio_median": median(ratios),
            "cpu_ratio_p25": _quantile(ratios, 0.25),
            "cpu_ratio_p75": _quantile(ratios, 0.75),
            "cpu_ratio_pooled": self.pooled_cpu_ratio(sdk, raw),
            "target": TARGETS[transport],
            "raw_floor_vs_raw_httpx_median": median(floor),
            "raw_floor_vs_raw_httpx_p25": _quantile(floor, 0.25),
            "raw_floor_vs_raw_httpx_p75": _quantile(floor, 0.75),
        }

    def summary(self) -> dict[str, Any]:
        control = {}
        if "raw2" in self.samples:
            control_ratios = sorted(self.cpu_ratios("raw2"))
            control = {
                "control_ratio_median": median(control_ratios),
                "control_ratio_p25": _quantile(control_ratios, 0.25),
                "control_ratio_p75": _quantile(control_ratios, 0.75),
            }
        pairs = {transport: self.pair_summary(transport) for transport in self.transports()}
        httpx_pair = {k: v for k, v in pairs["httpx"].items() if not k.startswith(("raw_floor", "target"))}
        return {
            "operation": self.operation,
            "concurrency": self.concurrency,
            "rounds": len(self.samples["raw"]),
            **httpx_pair,  # the SDK on httpx vs raw httpx, under the keys used before the other transports
            **control,
            "transports": pairs,
        }


@dataclass
class LoopbackResult:
    cells: list[CellResult]
    rounds: int
    slice_s: float
    concurrent_slice_s: float
    warmup_calls: dict[int, int]
    server_cpu_us_per_request: float
    pool_sizes: dict[str, int | None]
    pinned: str
    elapsed_s: float
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "rounds": self.rounds,
            "slice_s": self.slice_s,
            "concurrent_slice_s": self.concurrent_slice_s,
            "warmup_calls": self.warmup_calls,
            "server_cpu_us_per_request": self.server_cpu_us_per_request,
            "pool_sizes_at_end": self.pool_sizes,
            "pinned": self.pinned,
            "elapsed_s": self.elapsed_s,
            "notes": self.notes,
            "cells": [cell.summary() for cell in self.cells],
        }


async def _server_stats(http: httpx.AsyncClient, base_url: str) -> tuple[int, float]:
    data = (await http.get(f"{base_url}/__stats")).json()
    return int(data["requests"]), float(data["cpu_s"])


async def measure(
    base_url: str,
    *,
    rounds: int,
    slice_s: float,
    concurrent_slice_s: float,
    concurrencies: Sequence[int] = (1, 32),
    operations: Sequence[str] = tuple(OPERATIONS),
    transports: Sequence[str] = TRANSPORTS,
    fast_operations: Sequence[str] = FAST_OPERATIONS,
    warmup_scale: float = 1.0,
    control: bool = False,
    pinned: str = "",
    progress: Callable[[str], None] | None = None,
) -> LoopbackResult:
    """Warm up every driver, then run `rounds` interleaved rounds of every (operation, concurrency) cell.

    The httpx pair (always measured: it is the reference) runs every one of `operations`; the other
    `transports` (those installed) the ones also in `fast_operations`. Slices last `slice_s` at concurrency 1
    and `concurrent_slice_s` above (enough calls per worker). `warmup_scale` < 1 shortens the warm-up below
    performance.md's max(300, 32*C) (quick smoke runs only). `control` adds a second raw httpx driver
    ("raw2"): its ratio to raw is the harness's own noise (A/A test).
    """
    found, notes = available_transports(["httpx", *(t for t in transports if t != "httpx")])

    def names_for(operation: str) -> list[str]:
        names = []
        for transport in found:
            if transport == "httpx" or operation in fast_operations:
                names += [sdk_name(transport), raw_name(transport)]
                if transport == "httpx" and control:
                    names.append("raw2")
        return names

    started = time.perf_counter()
    drivers: dict[tuple[str, int], Driver] = {}
    warmup_calls: dict[int, int] = {}
    v2_url = f"{base_url}/api/fota/v2/callbacks/{ACCOUNT}"
    try:
        for concurrency in concurrencies:
            for transport in found:
                sdk, raw = make_pair(transport, base_url, concurrency)
                drivers[sdk_name(transport), concurrency] = sdk
                drivers[raw_name(transport), concurrency] = raw
                if transport == "httpx" and control:
                    drivers["raw2", concurrency] = RawDriver(base_url, make_http_client(concurrency))
        for (_, concurrency), driver in drivers.items():
            await driver.check()
            await driver.fill(v2_url, concurrency)
        # performance.md: at least max(300, 32*C) calls; fresh httpx pools are 2-3x dearer for ~1000 calls.
        for concurrency in concurrencies:
            # per driver, spread over its operations; every driver's pool is its own and starts fresh
            per_driver = int(max(300, 32 * concurrency) * warmup_scale)
            warmup_calls[concurrency] = per_driver
            for (name, c), driver in drivers.items():
                if c != concurrency:
                    continue
                mine = [op for op in operations if name in names_for(op)]
                for operation in mine:
                    await run_count(driver.calls[operation], concurrency, -(-per_driver // len(mine)))
        if progress is not None:
            progress(f"loopback: warmed up in {time.perf_counter() - started:.1f} s ({', '.join(found)})")

        cells = [CellResult(op, c, {name: [] for name in names_for(op)}) for c in concurrencies for op in operations]
        stats_http = make_http_client(1)
        try:
            requests0, server_cpu0 = await _server_stats(stats_http, base_url)
            for round_no in range(rounds):
                for cell in cells:
                    names = list(cell.samples)
                    # reversed every other round; a transport's SDK and raw drivers stay adjacent either way
                    order = names if round_no % 2 == 0 else names[::-1]
                    for name in order:
                        call = drivers[name, cell.concurrency].calls[cell.operation]
                        duration = slice_s if cell.concurrency == 1 else concurrent_slice_s
                        cell.samples[name].append(await run_slice(call, cell.concurrency, duration))
                if progress is not None:
                    progress(f"loopback: round {round_no + 1}/{rounds} done")
            requests1, server_cpu1 = await _server_stats(stats_http, base_url)
        finally:
            await stats_http.aclose()
        pools = {f"{name} C={c}": driver.pool_size() for (name, c), driver in drivers.items()}
    finally:
        for driver in drivers.values():
            await driver.aclose()
    server_us = (server_cpu1 - server_cpu0) / max(1, requests1 - requests0) * 1e6
    return LoopbackResult(
        cells,
        rounds,
        slice_s,
        concurrent_slice_s,
        warmup_calls,
        server_us,
        pools,
        pinned,
        elapsed_s=time.perf_counter() - started,
        notes=notes,
    )


def format_loopback(result: LoopbackResult) -> str:
    control = any("raw2" in cell.samples for cell in result.cells)
    headers = [
        "operation",
        "C",
        "transport",
        "raw calls/s",
        "sdk calls/s",
        "raw CPU µs/call",
        "sdk CPU µs/call",
        "CPU sdk/raw",
        "p25-p75",
        "pooled",
        "target",
        "verdict",
        "raw floor / raw httpx",
    ]
    if control:
        headers += ["A/A raw2/raw", "A/A p25-p75"]
    rows = []
    for cell in result.cells:
        s = cell.summary()
        for transport, pair in s["transports"].items():
            ratio, target = pair["cpu_ratio_median"], pair["target"]
            row = [
                OPERATIONS[cell.operation],
                str(cell.concurrency),
                transport,
                f"{pair['raw_calls_per_s']:,.0f}",
                f"{pair['sdk_calls_per_s']:,.0f}",
                f"{pair['raw_cpu_us_per_call']:.1f}",
                f"{pair['sdk_cpu_us_per_call']:.1f}",
                f"{ratio:.3f}x",
                f"{pair['cpu_ratio_p25']:.2f}-{pair['cpu_ratio_p75']:.2f}",
                f"{pair['cpu_ratio_pooled']:.3f}x",
                f"<= {target:.2f}x",
                "ok" if ratio <= target else "MISS",
                "1 (reference)"
                if transport == "httpx"
                else f"{pair['raw_floor_vs_raw_httpx_median']:.2f}x "
                f"({pair['raw_floor_vs_raw_httpx_p25']:.2f}-{pair['raw_floor_vs_raw_httpx_p75']:.2f})",
            ]
            if control:
                row += (
                    [f"{s['control_ratio_median']:.3f}x", f"{s['control_ratio_p25']:.2f}-{s['control_ratio_p75']:.2f}"]
                    if transport == "httpx"
                    else ["", ""]
                )
            rows.append(row)
    title = (
        f"Loopback HTTP, the SDK on each transport vs that transport's raw client: medians over {result.rounds} "
        f"interleaved rounds, one slice per driver and cell per round ({result.slice_s:g} s at C=1, "
        f"{result.concurrent_slice_s:g} s above); CPU = client process getrusage; ratio = median of per-round "
        f"ratios (pooled = total over total); raw floor / raw httpx = that transport's raw CPU per call over raw "
        f"httpx's, per round; warm-up calls per driver by C: {result.warmup_calls}; pools filled to C connections "
        f"(at the end: {', '.join(f'{k}: {v}' for k, v in result.pool_sizes.items())}); {result.pinned}; server "
        f"CPU {result.server_cpu_us_per_request:.1f} µs/request"
    )
    table = render_table(headers, rows, title)
    return "\n".join([table, *(f"note: {note}" for note in result.notes)])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--slice", type=float, default=0.25, dest="slice_s", help="seconds per slice at C=1")
    parser.add_argument("--concurrent-slice", type=float, default=0.6, help="seconds per slice at C>1")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--operation", choices=list(OPERATIONS), nargs="+", default=list(OPERATIONS))
    parser.add_argument(
        "--transport", choices=TRANSPORTS, nargs="+", default=list(TRANSPORTS), help="httpx is always measured"
    )
    parser.add_argument(
        "--fast-operation",
        choices=list(OPERATIONS),
        nargs="+",
        default=list(FAST_OPERATIONS),
        help="operations measured on the transports other than httpx",
    )
    parser.add_argument("--control", action="store_true", help="add a second raw driver: an A/A noise check")
    args = parser.parse_args(argv)
    layout = cpu_layout()
    server_cpu, client_cpu = layout if layout is not None else (None, None)
    pinned = (
        "not pinned (fewer than 2 CPUs)" if layout is None else f"server on CPU {server_cpu}, client on {client_cpu}"
    )
    pin_to_cpu(client_cpu)
    with ServerProcess(cpu=server_cpu) as server:
        result = asyncio.run(
            measure(
                server.base_url,
                rounds=args.rounds,
                slice_s=args.slice_s,
                concurrent_slice_s=args.concurrent_slice,
                concurrencies=args.concurrency,
                operations=args.operation,
                transports=args.transport,
                fast_operations=args.fast_operation,
                control=args.control,
                pinned=pinned,
                progress=print,
            )
        )
    print(format_loopback(result))


if __name__ == "__main__":
    main()
