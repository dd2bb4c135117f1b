"""PostgresInbox: its driver chosen by measurement (asyncpg vs psycopg 3 + psycopg-pool), and its wake-up latency.

`python -m benchmarks.postgres [--rounds N] [--slice S] [--latency N]` starts a private PostgreSQL (fsync on, as
a deployment runs it) on a free 127.0.0.1 port, pinned with this process to separate CPUs where there are two.

Drivers, each running the inbox's own statements (`fota_callbacks.inbox.postgres`; psycopg gets them with `%s`
placeholders), interleaved: in every round each driver gets one slice of each workload, back to back, the order
reversed every other round; client CPU from getrusage around the slice. Ratios are per round against asyncpg.

- `put C=1` / `put C=16`: `put`'s statement (the entry and its dedup key in one INSERT ... ON CONFLICT, committed)
  from 1 or 16 tasks on a pool of as many connections: puts per second (group commit shares the fsyncs of
  concurrent commits) and client CPU per put.
- `drain`: 3,000 pending entries drained by one worker the way `_exchange` does: one transaction records the
  previous batch of 32 as done and claims the next 32 (`FOR UPDATE SKIP LOCKED`): client CPU per message and
  wall time per batch. psycopg runs it twice: in a transaction, and in pipeline mode (one round trip per batch).

Then the inbox itself (asyncpg): from `put` to the handler's start, with the worker on another inbox object (as in
another process: only `LISTEN/NOTIFY` or polling can wake it), with `poll_interval=5` so a wake-up by poll would
show; p50/p99 over `--latency` puts spaced 20 ms apart.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._common import cpu_layout, cpu_seconds, median, pin_to_cpu, quartiles, render_table

__all__ = ["main", "measure"]

DRAIN_ENTRIES = 3000
BATCH = 32
BODY = json.dumps({"type": "upgradeProgress", "accountName": "0000123456-00001", "pad": "x" * 400}).encode()


def _psycopg_sql(sql: str) -> tuple[str, list[int]]:
    """`$n` placeholders as psycopg's `%s`, and which argument each takes (a `$n` may occur twice)."""
    order: list[int] = []

    def placeholder(match: re.Match[str]) -> str:
        order.append(int(match[1]) - 1)
        return "%s"

    return re.sub(r"\$(\d+)", placeholder, sql), order


class Driver:
    """One driver's pool and the inbox statements on it: `put`, `fill`, `exchange`."""

    name = ""

    def __init__(self, dsn: str, table: str) -> None:
        from fota_callbacks.inbox.postgres import _Statements

        self.dsn, self.table, self.sql = dsn, table, _Statements(table)
        self.counter = 0

    async def open(self, size: int) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def execute(self, sql: str, *args: Any) -> None:
        raise NotImplementedError

    async def put(self) -> None:
        raise NotImplementedError

    async def exchange(self, done: list[tuple[int, str]], now: float) -> list[tuple[int, str]]:
        raise NotImplementedError

    def put_args(self) -> tuple[Any, ...]:
        """One put, as `PostgresInbox` sends a batch of one (a put alone in its batch)."""
        self.counter += 1
        key = self.counter.to_bytes(8, "big") + self.name.encode()
        return [BODY + b"%d" % self.counter], [time.time()], [None], [key], 1800.0

    def settle_args(self, done: list[tuple[int, str]], now: float) -> list[Any]:
        n = len(done)
        ids, tokens = [id for id, _ in done], [token for _, token in done]
        return [ids, tokens, ["done"] * n, [None] * n, [0.0] * n, [now] * n, [0] * n, False]

    async def fill(self, entries: int) -> None:
        await self.execute(
            f'INSERT INTO "{self.table}" (body, received_at, due) '
            "SELECT $1::bytea, 0, 0 FROM generate_series(1, $2::int)",
            BODY,
            entries,
        )


class Asyncpg(Driver):
    name = "asyncpg"

    async def open(self, size: int) -> None:
        import asyncpg

        self.pool = await asyncpg.create_pool(self.dsn, min_size=size, max_size=size)

    async def close(self) -> None:
        await self.pool.close()

    async def execute(self, sql: str, *args: Any) -> None:
        await self.pool.execute(sql, *args)

    async def put(self) -> None:
        async with self.pool.acquire() as connection:
            await connection.fetch(self.sql.put_once, *self.put_args())

    async def exchange(self, done: list[tuple[int, str]], now: float) -> list[tuple[int, str]]:
        token = f"{time.monotonic_ns():x}"
        async with self.pool.acquire() as connection, connection.transaction():
            if done:
                await connection.execute(self.sql.settle, *self.settle_args(done, now))
            rows = await connection.fetch(self.sql.claim, now, BATCH, token, 60.0)
        return [(row[0], token) for row in rows]


class Psycopg(Driver):
    name = "psycopg"
    pipeline = False

    async def open(self, size: int) -> None:
        from psycopg_pool import AsyncConnectionPool

        self.pool: Any = AsyncConnectionPool(
            self.dsn, min_size=size, max_size=size, open=False, kwargs={"autocommit": True}
        )
        await self.pool.open(wait=True)
        self.statements = {name: _psycopg_sql(getattr(self.sql, name)) for name in ("put_once", "settle", "claim")}

    async def close(self) -> None:
        await self.pool.close()

    def _bound(self, name: str, args: tuple[Any, ...] | list[Any]) -> tuple[str, list[Any]]:
        sql, order = self.statements[name]
        return sql, [args[i] for i in order]

    async def execute(self, sql: str, *args: Any) -> None:
        text, order = _psycopg_sql(sql)
        async with self.pool.connection() as connection:
            await connection.execute(text, [args[i] for i in order])

    async def put(self) -> None:
        async with self.pool.connection() as connection:
            cursor = await connection.execute(*self._bound("put_once", self.put_args()))
            await cursor.fetchall()

    async def exchange(self, done: list[tuple[int, str]], now: float) -> list[tuple[int, str]]:
        token = f"{time.monotonic_ns():x}"
        async with self.pool.connection() as connection:
            if self.pipeline:
                async with connection.pipeline(), connection.transaction():
                    return await self._exchange_on(connection, done, now, token)
            async with connection.transaction():
                return await self._exchange_on(connection, done, now, token)

    async def _exchange_on(
        self, connection: Any, done: list[tuple[int, str]], now: float, token: str
    ) -> list[tuple[int, str]]:
        if done:
            await connection.execute(*self._bound("settle", self.settle_args(done, now)))
        cursor = await connection.execute(*self._bound("claim", (now, BATCH, token, 60.0)))
        return [(row[0], token) for row in await cursor.fetchall()]


class PsycopgPipeline(Psycopg):
    name = "psycopg-pipeline"
    pipeline = True


@dataclass
class Samples:
    cpu_us: list[float] = field(default_factory=list)
    per_s: list[float] = field(default_factory=list)
    batch_ms: list[float] = field(default_factory=list)


async def _put_slice(driver: Driver, concurrency: int, seconds: float) -> tuple[float, float]:
    count, stop = 0, time.perf_counter() + seconds

    async def loop() -> None:
        nonlocal count
        while time.perf_counter() < stop:
            await driver.put()
            count += 1

    cpu0, wall0 = cpu_seconds(), time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(concurrency)))
    cpu, wall = cpu_seconds() - cpu0, time.perf_counter() - wall0
    return cpu / count * 1e6, count / wall


async def _drain_slice(driver: Driver) -> tuple[float, float, float]:
    await driver.fill(DRAIN_ENTRIES)
    handled, batches = 0, 0
    done: list[tuple[int, str]] = []
    cpu0, wall0 = cpu_seconds(), time.perf_counter()
    while True:
        done = await driver.exchange(done, time.time())
        if not done:
            break
        handled, batches = handled + len(done), batches + 1
    cpu, wall = cpu_seconds() - cpu0, time.perf_counter() - wall0
    return cpu / handled * 1e6, handled / wall, wall / batches * 1e3


WORKLOADS = ("put C=1", "put C=16", "drain")


async def _drivers(dsn: str, names: tuple[str, ...]) -> list[Driver]:
    import asyncpg

    from fota_callbacks.inbox.postgres import schema

    classes: dict[str, type[Driver]] = {"asyncpg": Asyncpg, "psycopg": Psycopg, "psycopg-pipeline": PsycopgPipeline}
    drivers = []
    for name in names:
        table = "bench_" + name.replace("-", "_")
        connection = await asyncpg.connect(dsn)
        await connection.execute(schema(table))
        await connection.close()
        driver = classes[name](dsn, table)
        await driver.open(16)
        drivers.append(driver)
    return drivers


async def _one(driver: Driver, workload: str, slice_s: float) -> Samples:
    sample = Samples()
    if workload == "drain":
        cpu, rate, batch = await _drain_slice(driver)
        sample.batch_ms.append(batch)
    else:
        cpu, rate = await _put_slice(driver, 1 if workload == "put C=1" else 16, slice_s)
    sample.cpu_us.append(cpu)
    sample.per_s.append(rate)
    return sample


async def compare_drivers(dsn: str, rounds: int, slice_s: float) -> dict[tuple[str, str], Samples]:
    drivers = await _drivers(dsn, ("asyncpg", "psycopg", "psycopg-pipeline"))
    results: dict[tuple[str, str], Samples] = {}
    try:
        for driver in drivers:  # warm-up: pools filled, statements prepared
            for workload in WORKLOADS:
                await _one(driver, workload, slice_s / 4)
        for round_index in range(rounds):
            order = drivers if round_index % 2 == 0 else drivers[::-1]
            for workload in WORKLOADS:
                for driver in order:
                    if workload != "drain" and driver.name == "psycopg-pipeline":
                        continue  # puts are single statements: pipeline mode changes nothing there
                    got = await _one(driver, workload, slice_s)
                    into = results.setdefault((workload, driver.name), Samples())
                    into.cpu_us += got.cpu_us
                    into.per_s += got.per_s
                    into.batch_ms += got.batch_ms
    finally:
        for driver in drivers:
            await driver.close()
    return results


async def wake_latency(dsn: str, puts: int) -> dict[str, list[float]]:
    """Seconds from `put` to the handler's start: the worker on another inbox object (NOTIFY), and on the same
    object (the in-process wake-up) for reference."""
    return {
        "another process (LISTEN/NOTIFY)": await _latency(dsn, puts, same=False),
        "same inbox object": await _latency(dsn, puts, same=True),
    }


async def _latency(dsn: str, puts: int, *, same: bool) -> list[float]:
    from fota_callbacks.inbox import PostgresInbox

    table = "latency_same" if same else "latency_notify"
    sent: dict[int, float] = {}
    delays: list[float] = []

    async def handler(message: Any) -> None:
        delays.append(time.perf_counter() - sent[message.raw["n"]])

    async with PostgresInbox(dsn, table=table, poll_interval=5) as worker:
        receiver = worker if same else PostgresInbox(dsn, table=table, poll_interval=5)
        sent[-1] = time.perf_counter()
        await receiver.put(b'{"type": "upgradeProgress", "n": -1}')
        task = asyncio.get_running_loop().create_task(worker.run(handler))
        await _until(lambda: len(delays) == 1)
        for n in range(puts):
            sent[n] = time.perf_counter()
            await receiver.put(json.dumps({"type": "upgradeProgress", "n": n}).encode())
            await asyncio.sleep(0.02)
        await _until(lambda: len(delays) == puts + 1)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if receiver is not worker:
            await receiver.aclose()
    return delays[1:]


async def _until(condition: Callable[[], bool], within: float = 60) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError("the worker did not handle every message in time")
        await asyncio.sleep(0.005)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def format_results(results: dict[tuple[str, str], Samples], latency: dict[str, list[float]], rounds: int) -> str:
    rows = []
    for (workload, name), sample in results.items():
        reference = results[(workload, "asyncpg")].cpu_us
        ratios = [a / b for a, b in zip(sample.cpu_us, reference, strict=True)]
        low, high = quartiles(ratios)
        rows.append(
            [
                f"{workload}: {name}",
                f"{median(sample.cpu_us):.0f}",
                f"{median(sample.per_s):,.0f}",
                f"{median(sample.batch_ms):.2f}" if sample.batch_ms else "-",
                f"{median(ratios):.2f}x",
                f"{low:.2f}-{high:.2f}",
            ]
        )
    title = f"PostgreSQL drivers on the inbox's statements: medians of {rounds} interleaved rounds"
    headers = ["workload: driver", "client CPU µs/msg", "msgs/s", "ms/batch of 32", "CPU vs asyncpg", "p25-p75"]
    parts = [render_table(headers, rows, title)]
    latency_rows = [
        [case, f"{statistics.median(values) * 1e3:.1f}", f"{_percentile(values, 0.99) * 1e3:.1f}", str(len(values))]
        for case, values in latency.items()
    ]
    parts.append(
        render_table(
            ["worker on", "p50 ms", "p99 ms", "puts"],
            latency_rows,
            "PostgresInbox: from put to the handler's start, poll_interval=5 s (a poll would show as seconds)",
        )
    )
    return "\n\n".join(parts)


async def measure(rounds: int, slice_s: float, latency_puts: int, server_cpu: int | None = None) -> str:
    from tests.support.postgres import PostgresServer, postgres_bindir

    bindir = postgres_bindir()
    if bindir is None:
        return "note: postgres skipped: PostgreSQL's server binaries are not installed (apt-get install postgresql)"
    server = PostgresServer(bindir, durable=True).start()
    if server_cpu is not None and server.process is not None:
        os.sched_setaffinity(server.process.pid, {server_cpu})  # the backends it forks from now on inherit it
    try:
        results = await compare_drivers(server.dsn, rounds, slice_s)
        latency = await wake_latency(server.dsn, latency_puts)
    finally:
        server.remove()
    return format_results(results, latency, rounds)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--slice", type=float, default=1.0, help="seconds of each put workload per round")
    parser.add_argument("--latency", type=int, default=300, help="puts timed from put to handler start")
    args = parser.parse_args(argv)
    layout = cpu_layout()
    pin_to_cpu(None if layout is None else layout[1])
    print(asyncio.run(measure(args.rounds, args.slice, args.latency, None if layout is None else layout[0])))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
