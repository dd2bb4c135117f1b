"""Soak: many tasks share one client and call every operation through `HttpxTransport` against the fake served by
uvicorn on 127.0.0.1, while ~5% of requests fail: injected 503s, 429s with a short Retry-After, connections
dropped before processing, slow answers past the timeout, and responses lost after the request was processed.

Every call ends in a result or a documented error, and nothing is lost: each task owns its accounts, so the set of
states an account can be in is known after every call (one state after a success; after a failure, the state
before or the one the call would have made, since a failed call may have taken effect). Every list must read a
possible state, and at the end the fake holds one for every account. No connection, task or thread is left
behind, and memory is flat from batch to batch.

Bounded form: 1,000 calls from 50 tasks (on asyncio and on trio); FOTA_STRESS=1: 20,000 calls from 200 tasks.
"""

from __future__ import annotations

import collections
import gc
import os
import random
import threading
import time
from typing import Any, Literal

import anyio
import attrs
import pytest

import fota_callbacks as fota
from fota_callbacks.testing import FakeThingSpace, Fault, serve
from fota_callbacks.transport import SendNext
from tests.support import figures
from tests.support.chaos import LoseResponses
from tests.support.harness import no_wait
from tests.support.operations import request_model
from tests.support.scale import scaled
from tests.support.transports import pool_connections

pytestmark = [pytest.mark.anyio, pytest.mark.stress]

CALLS = scaled(1_000, 20_000)
TASKS = scaled(50, 200)
MAX_CONNECTIONS = scaled(20, 50)
BATCHES = 5
ACCOUNTS_PER_TASK = 2
TIMEOUT = scaled(1.5, 6.0)
"""Per attempt: far above the latency of a loaded 2-core machine, so that only the injected delays time out."""
FAULT_RATE = 0.035
"""Per call, a fault armed on the fake for its next request (whichever it is), when none is armed."""
LOST_RATE = 0.015
"""Per request, a response lost after processing."""
FAULT_KINDS: dict[str, float] = {"503": 0.35, "429": 0.25, "drop": 0.3, "slow": 0.1}

Version = Literal["v1", "v2", "v3"]
State = str | None
OPERATIONS: dict[Version, tuple[str, ...]] = {
    "v1": ("list", "register", "deregister"),
    "v2": ("list", "register", "update", "deregister"),
    "v3": ("list", "register", "update", "deregister"),
}
WEIGHTS = {"list": 3, "register": 3, "update": 2, "deregister": 2}
LISTENER = "https://listener.example.com/fota"


@attrs.define
class Tally:
    """What happened, for the assertions and the printed figures."""

    calls: int = 0
    ok: int = 0
    refused_as_documented: int = 0  # update/deregister with nothing registered: 400 CallbackNotFound
    failed: collections.Counter[str] = attrs.Factory(collections.Counter)  # documented errors after retries
    undocumented: list[str] = attrs.Factory(list)  # anything else: the test fails
    retries: int = 0
    faults: collections.Counter[str] = attrs.Factory(collections.Counter)
    lists_checked: int = 0
    lost_deregister_answers: int = 0  # deregister retried after a lost answer: 400 CallbackNotFound
    inconsistencies: list[str] = attrs.Factory(list)


@attrs.define
class Account:
    """One account and the states each version can be in, as far as the calls so far tell."""

    id: str
    possible: dict[Version, set[State]] = attrs.Factory(lambda: {"v1": {None}, "v2": {None}, "v3": {None}})


def observed_state(version: Version, result: Any) -> State:
    if version == "v1":
        urls = [entry.url for entry in result if entry.name == "Fota"]
        assert len(urls) <= 1, result
        return urls[0] if urls else None
    url: State = result.url
    return url


def callback_not_found(exc: BaseException) -> bool:
    return isinstance(exc, fota.FotaResultException) and exc.error_code == "CallbackNotFound"


class Soak:
    def __init__(self, client: fota.FotaCallbacksClient, fake: FakeThingSpace, tally: Tally) -> None:
        self.client = client
        self.fake = fake
        self.tally = tally

    def maybe_inject(self, rng: random.Random) -> None:
        # One armed fault at most: with many tasks, faults armed faster than requests take them would pile up
        # and strike every retry of a call (a storm, not a 5% fault rate).
        if rng.random() >= FAULT_RATE or self.fake.pending_faults():
            return
        kind = rng.choices(list(FAULT_KINDS), weights=list(FAULT_KINDS.values()))[0]
        if kind == "503":
            self.fake.inject(Fault.status(503))
        elif kind == "429":
            self.fake.inject(Fault.status(429, headers={"Retry-After": "0"}))
        elif kind == "drop":
            self.fake.inject(Fault.drop())
        else:  # past the timeout; only on a list, so that no write lands after its call gave up on it
            self.fake.inject(Fault.delay(TIMEOUT + 0.5), operation="list_registered_callbacks")
        self.tally.faults[kind] += 1

    async def call(self, account: Account, version: Version, operation: str, url: str) -> None:
        controller: Any = getattr(self.client, version).with_raw_response
        before = account.possible[version]
        where = f"{version} {operation} {account.id}"
        self.tally.calls += 1
        try:
            if operation == "list":
                response = await controller.list_registered_callbacks(account.id)
            elif operation == "register":
                response = await controller.register_callback(account.id, request_model(version, url))
            elif operation == "update":
                response = await controller.update_callback(account.id, request_model(version, url))
            else:
                response = await controller.deregister_callback(account.id)
        except fota.FotaError as exc:
            self.tally.retries += getattr(exc, "retries_taken", 0)
            if operation in ("update", "deregister") and callback_not_found(exc):
                self.tally.refused_as_documented += 1
                if None not in before and operation == "update":
                    self.tally.inconsistencies.append(f"{where}: CallbackNotFound, but {before} was registered")
                if None not in before and operation == "deregister":
                    self.tally.lost_deregister_answers += 1  # an earlier attempt of this call removed it
                account.possible[version] = {None}
                return
            # Documented failures after retries; OAuthError and SessionLoginError when the token or login request
            # (made for this call, or shared by the calls waiting for it) was the one that kept failing.
            if isinstance(
                exc,
                (
                    fota.ApiConnectionError,
                    fota.ServerError,
                    fota.RateLimitError,
                    fota.OAuthError,
                    fota.SessionLoginError,
                ),
            ):
                self.tally.failed[type(exc).__name__] += 1
                # It may have taken effect: either state is possible now.
                if operation == "register":
                    account.possible[version] = before | {url}
                elif operation == "update":
                    account.possible[version] = before | {url for state in before if state is not None}
                elif operation == "deregister":
                    account.possible[version] = before | {None}
                return
            self.tally.undocumented.append(f"{where}: {exc!r}")
            return
        except Exception as exc:
            self.tally.undocumented.append(f"{where}: not a FotaError: {exc!r}")
            return
        self.tally.ok += 1
        self.tally.retries += response.retries_taken
        if operation == "list":
            state = observed_state(version, response.data)
            self.tally.lists_checked += 1
            if state not in before:
                self.tally.inconsistencies.append(f"{where}: read {state!r}, possible {before}")
            account.possible[version] = {state}
        elif operation in ("register", "update"):
            if operation == "update" and before == {None}:
                self.tally.inconsistencies.append(f"{where}: updated, but nothing was registered")
            account.possible[version] = {url}
        else:
            # A retry after a maybe-processed failure answered 400 "nothing registered" is a success (API.md): the
            # SDK cannot tell whether the lost attempt removed the registration or there was none.
            if before == {None} and response.status_code != 400:
                self.tally.inconsistencies.append(f"{where}: deregistered, but nothing was registered")
            account.possible[version] = {None}

    async def work(
        self, task: int, accounts: list[Account], calls: int, rng: random.Random, sequence: list[int]
    ) -> None:
        for _ in range(calls):
            account = accounts[sequence[0] % len(accounts)]
            version: Version = rng.choice(["v1", "v2", "v3"])
            choices = OPERATIONS[version]
            operation = rng.choices(choices, weights=[WEIGHTS[name] for name in choices])[0]
            url = f"https://listener-{task}.example.com/fota/{sequence[0]}"
            sequence[0] += 1
            self.maybe_inject(rng)
            await self.call(account, version, operation, url)


def resident_mib() -> float:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:  # not Linux: RSS is not checked there
        return 0.0


async def test_soak_through_httpx_with_faults_loses_nothing(anyio_backend: Any) -> None:
    backend = anyio_backend[0] if isinstance(anyio_backend, tuple) else anyio_backend
    fake = FakeThingSpace(record_requests=False)
    lossy = LoseResponses(fake.asgi_app, rate=LOST_RATE, seed=3)
    attempts = 0

    async def count_attempts(request: fota.Request, call_next: SendNext) -> fota.Response:
        nonlocal attempts
        attempts += 1
        return await call_next(request)

    tally = Tally()
    accounts = [
        [Account(f"{1_000_000_000 + task:010d}-{index:05d}") for index in range(ACCOUNTS_PER_TASK)]
        for task in range(TASKS)
    ]
    rngs = [random.Random(task) for task in range(TASKS)]
    sequences = [[0] for _ in range(TASKS)]
    threads_before = {thread.name for thread in threading.enumerate()}
    tasks_before = len(anyio.get_running_tasks())
    objects: list[int] = []
    resident: list[float] = []
    max_pool = 0
    started = time.monotonic()

    with serve(lossy) as base_url:
        transport = fota.HttpxTransport(max_connections=MAX_CONNECTIONS)
        client = fota.FotaCallbacksClient(
            base_url=base_url,
            client_id="soak-client",
            client_secret="soak-secret",
            username="soak-user",
            password="soak-password",
            transport=transport,
            timeout=TIMEOUT,
            retry_policy=fota.RetryPolicy(max_retries=3, initial_delay=0.01, max_delay=0.05, max_retry_after=1.0),
            middleware=[count_attempts],
        )
        soak = Soak(client, fake, tally)
        async with client:
            per_batch = CALLS // TASKS // BATCHES
            for _ in range(BATCHES):
                async with anyio.create_task_group() as tasks:
                    for task in range(TASKS):
                        tasks.start_soon(soak.work, task, accounts[task], per_batch, rngs[task], sequences[task])
                pool_size, busy = pool_connections(transport)
                max_pool = max(max_pool, pool_size)
                assert busy == 0, f"{busy} connections still busy between batches"
                gc.collect()
                objects.append(len(gc.get_objects()))
                resident.append(resident_mib())

            # Nothing lost: what the fake holds is a possible state of every account, read through the API too.
            fake.clear_faults()
            final_mismatches = []
            for owned in accounts:
                for account in owned:
                    held = fake.callbacks(account.id)
                    v1 = held.v1.get("Fota")
                    for version, state in (("v1", v1.url if v1 else None), ("v2", held.v2), ("v3", held.v3)):
                        if state not in account.possible[version]:  # type: ignore[index]
                            final_mismatches.append(f"{account.id} {version}: {state!r} not in {account.possible}")
            pool_size, busy = pool_connections(transport)
        elapsed = time.monotonic() - started
        pending = sum(times for _, times in fake.pending_faults())

    for _ in range(20):
        await anyio.lowlevel.checkpoint()
    tasks_after = len(anyio.get_running_tasks())
    # trio keeps idle worker threads (its name resolution runs in them) for a while: a cache, not a leak.
    threads_after = {thread.name for thread in threading.enumerate() if not thread.name.startswith("Trio thread")}
    faults = sum(tally.faults.values())
    figures.report(
        f"soak ({backend})",
        calls=tally.calls,
        tasks=TASKS,
        seconds=round(elapsed, 1),
        calls_per_s=round(tally.calls / elapsed),
        attempts=attempts,
        faults_injected=faults,
        responses_lost_after_processing=lossy.lost,
        fault_rate=f"{(faults + lossy.lost) / max(attempts, 1):.1%} of requests",
        ok=tally.ok,
        refused_as_documented=tally.refused_as_documented,
        failed_after_retries=dict(tally.failed) or 0,
        retries=tally.retries,
        lists_checked=tally.lists_checked,
        accounts_checked=TASKS * ACCOUNTS_PER_TASK * 3,
        lost_or_phantom_writes=len(tally.inconsistencies) + len(final_mismatches),
        deregister_answers_lost=tally.lost_deregister_answers,
        pool_max=max_pool,
        objects_per_batch="/".join(str(count) for count in objects),
        rss_mib_per_batch="/".join(f"{mib:.0f}" for mib in resident),
    )

    assert tally.undocumented == [], tally.undocumented[:10]
    assert tally.inconsistencies == [], tally.inconsistencies[:10]
    assert final_mismatches == [], final_mismatches[:10]
    assert tally.calls == TASKS * per_batch * BATCHES
    assert tally.ok + tally.refused_as_documented + sum(tally.failed.values()) == tally.calls
    assert sum(tally.failed.values()) <= tally.calls // 100, tally.failed  # retries ride out nearly every fault
    assert faults - pending > 0  # the faults did strike
    assert lossy.lost > 0
    # No leak: connections within the pool's bound and idle; no task or thread left; memory flat across batches.
    assert max_pool <= MAX_CONNECTIONS
    assert busy == 0
    assert tasks_after == tasks_before, (tasks_before, tasks_after)
    assert threads_after <= threads_before, threads_after - threads_before
    assert objects[-1] - objects[1] < 5_000, objects
    if resident[0]:
        assert resident[-1] - resident[1] < 30, resident


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize("version", ["v1", "v2", "v3"])
async def test_a_deregister_whose_answer_was_lost_is_not_reported_as_failed(version: Version) -> None:
    fake = FakeThingSpace()
    account = "0000123456-00001"
    fake.seed(account, v1=[request_model("v1", "https://listener.example.com/v1")], v2=LISTENER, v3=LISTENER)
    lost: list[fota.Request] = []

    async def answer_lost_once(request: fota.Request) -> fota.Response:
        response = await fake.handle(request)  # processed ...
        if request.method == "DELETE" and not lost:
            lost.append(request)  # ... but the answer never arrives
            raise fota.ApiConnectionError("connection reset", request=request, request_sent=True)
        return response

    async with fake.client(transport=fota.InMemoryTransport(answer_lost_once), sleep=no_wait) as client:
        controller: Any = getattr(client, version)
        result = await controller.deregister_callback(account)
    held = fake.callbacks(account)
    assert {"v1": not held.v1, "v2": held.v2 is None, "v3": held.v3 is None}[version]
    assert result.success is True
