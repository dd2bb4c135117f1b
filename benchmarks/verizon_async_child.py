"""Verizon's async SDK (`vz-apimatic-v-4-sdk`, `AsyncVerizonClient` on httpx2), driven slice by slice from
another process: the driver half of `benchmarks.verizon_async`.

Its import package is `verizon`, as is that of the sync `sdksio-verizon-apis-sdk` the parent process measures,
so it runs in a venv of its own (made by `benchmarks.verizon_async`), from the repository root:
`VENV/bin/python -m benchmarks.verizon_async_child --base-url URL --concurrency C`. It imports the standard
library, the SDK and `benchmarks._common` (standard library only), never `fota_callbacks`.

One JSON command per line on stdin, one JSON answer per line on stdout:
`{"op": "check"}`, `{"op": "warm", "driver": D, "calls": N}`, `{"op": "slice", "driver": D, "seconds": S}`
(answers `{"calls", "wall_s", "cpu_s"}`: this process's CPU, all threads, from getrusage around the slice),
`{"op": "quit"}`. Drivers: `shipped` (the client as it comes: its own `AsyncHttpx2Client`, httpx2's default pool
of 100 connections of which 20 kept alive for 5 s) and `tuned` (the same client on an `AsyncHttpx2Client` whose
httpx2 client keeps `C` connections alive for an hour, as every other driver of the benchmark does). The event
loop lives as long as the process, so pools stay warm between slices as in the parent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from ._common import ACCESS_TOKEN, ACCOUNT, CALLBACK_URL, M2M_TOKEN, Call, run_count, run_slice

KEEPALIVE_EXPIRY = 3600.0


def _client(base_url: str, http_client: Any) -> Any:
    """An `AsyncVerizonClient` pointed at `base_url`, with an OAuth token given (no token request) and the M2M
    session token; `http_client` None: the one it makes itself."""
    from verizon.async_client import AsyncVerizonClient
    from verizon.core import ClientCredentials, OAuthToken

    class GivenToken:
        """A token source that has the token already (the parent's drivers are given theirs too)."""

        async def fetch(self, credentials: ClientCredentials) -> OAuthToken:
            return OAuthToken(access_token=ACCESS_TOKEN, token_type="bearer")

    servers = {
        "software_management_v2": {"production": {"base_url": f"{base_url}/api/fota/v2"}},
        "o_auth_server": {"production": {"base_url": f"{base_url}/api/ts/v1"}},
    }
    return AsyncVerizonClient(
        server_config=servers,
        custom_async_http_client=http_client,
        thingspace_oauth={"client_id": "bench-id", "client_secret": "bench-secret"},
        thingspace_oauth_token_source=GivenToken(),
        vz_m2_m_token=M2M_TOKEN,
    )


def _tuned_http_client(concurrency: int) -> Any:
    """The SDK's own `AsyncHttpx2Client` with its httpx2 client's pool sized to `concurrency` and kept alive (the
    class takes no pool settings: its documented way out is a transport of one's own; this is the least one)."""
    import httpx2
    from verizon.core import AsyncHttpx2Client

    http_client = AsyncHttpx2Client()
    limits = httpx2.Limits(
        max_connections=concurrency, max_keepalive_connections=concurrency, keepalive_expiry=KEEPALIVE_EXPIRY
    )
    http_client._client = httpx2.AsyncClient(timeout=httpx2.Timeout(30.0), limits=limits)
    return http_client


def _calls(base_url: str, concurrency: int) -> tuple[dict[str, Call], list[Any]]:
    clients = {"shipped": _client(base_url, None), "tuned": _client(base_url, _tuned_http_client(concurrency))}

    def call_of(client: Any) -> Call:
        v2 = client.software_management_callbacks_v2

        async def call() -> object:
            return await v2.list_registered_callbacks4(ACCOUNT)

        return call

    return {name: call_of(client) for name, client in clients.items()}, list(clients.values())


async def _check(calls: dict[str, Call]) -> dict[str, Any]:
    for call in calls.values():
        summary = await call()
        if getattr(summary, "url", None) != CALLBACK_URL:
            return {"error": f"unexpected answer {summary!r}"}
    return {"ok": True}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    args = parser.parse_args(argv)
    loop = asyncio.new_event_loop()
    calls, clients = _calls(args.base_url, args.concurrency)
    try:
        for line in sys.stdin:
            command = json.loads(line)
            op = command["op"]
            if op == "quit":
                break
            if op == "check":
                answer = loop.run_until_complete(_check(calls))
            elif op == "warm":
                loop.run_until_complete(run_count(calls[command["driver"]], args.concurrency, command["calls"]))
                answer = {"ok": True}
            elif op == "slice":
                sample = loop.run_until_complete(
                    run_slice(calls[command["driver"]], args.concurrency, command["seconds"])
                )
                answer = {"calls": sample.calls, "wall_s": sample.wall_s, "cpu_s": sample.cpu_s}
            else:
                answer = {"error": f"unknown op {op!r}"}
            sys.stdout.write(json.dumps(answer) + "\n")
            sys.stdout.flush()
    finally:
        for client in clients:
            loop.run_until_complete(client.aclose())
        loop.close()


if __name__ == "__main__":
    main()
