"""A receiver app for the subprocess tests (tests/inbox/test_process*.py), configured by FOTA_TEST_* variables.

FOTA_TEST_INBOX is `sqlite:PATH`, `redis:URL` (with FOTA_TEST_STREAM) or `postgres:DSN` (with FOTA_TEST_TABLE);
the handler sleeps FOTA_TEST_DELAY seconds, then appends the message's `n` to FOTA_TEST_RECORD, one line per
handling (O_APPEND: lines from several processes do not interleave, and a `kill -9` loses none that were written).
With FOTA_TEST_TRANSACTIONAL=1 (Postgres) the handler first inserts `n` into the table `<FOTA_TEST_TABLE>_effects`
on the connection `run(..., transactional=True)` gives it, so that row commits with the entry's completion.
FOTA_TEST_FAULT=cancelled:N makes the first handling of message N raise the `CancelledError` of a task someone
else cancelled (the handler is not being cancelled); FOTA_TEST_FAULT=interrupt:N makes every handling of message N
raise `KeyboardInterrupt`. `/healthz` and `/readyz` are `health_router(inbox)`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
from collections.abc import AsyncIterator
from typing import Any

import anyio
from fastapi import FastAPI

import fota_callbacks as fota
from fota_callbacks.inbox import Inbox, PostgresInbox, RedisInbox, SqliteInbox
from fota_callbacks.integrations.fastapi import callback_router, fota_lifespan, health_router

_kind, _, _target = os.environ["FOTA_TEST_INBOX"].partition(":")
_claim_idle = float(os.environ.get("FOTA_TEST_CLAIM_IDLE", "1"))
_table = os.environ.get("FOTA_TEST_TABLE", "fota_inbox")
inbox: Inbox
if _kind == "sqlite":
    inbox = SqliteInbox(_target, claim_idle=_claim_idle, poll_interval=0.05)
elif _kind == "postgres":
    inbox = PostgresInbox(_target, table=_table, claim_idle=_claim_idle, poll_interval=0.05, timeout=2)
else:
    inbox = RedisInbox(_target, stream=os.environ["FOTA_TEST_STREAM"], claim_idle=_claim_idle, poll_interval=0.05)
_delay = float(os.environ.get("FOTA_TEST_DELAY", "0"))
_record = os.open(os.environ["FOTA_TEST_RECORD"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
_workers = int(os.environ.get("FOTA_TEST_WORKERS", "4"))
_fault, _, _faulty = os.environ.get("FOTA_TEST_FAULT", "").partition(":")
_faulted: set[int] = set()


async def _misbehave(n: int) -> None:
    if str(n) != _faulty:
        return
    if _fault == "interrupt":
        raise KeyboardInterrupt
    if _fault == "cancelled" and n not in _faulted:
        _faulted.add(n)
        victim = asyncio.get_running_loop().create_future()
        victim.cancel()
        await victim  # the CancelledError of a future someone else cancelled


async def record(message: fota.CallbackMessage) -> None:
    await _misbehave(message.raw["n"])
    await anyio.sleep(_delay)
    os.write(_record, f"{message.raw['n']}\n".encode())


async def record_in_transaction(message: fota.CallbackMessage, connection: Any) -> None:
    await connection.execute(f'INSERT INTO "{_table}_effects" (n) VALUES ($1)', message.raw["n"])
    os.write(_record, f"{message.raw['n']}\n".encode())  # the handling shows, its insert not yet committed
    await anyio.sleep(_delay)  # a kill -9 from here to the commit rolls the insert back


@contextlib.asynccontextmanager
async def _transactional(app: FastAPI) -> AsyncIterator[None]:
    assert isinstance(inbox, PostgresInbox)
    async with inbox, anyio.create_task_group() as tasks:
        tasks.start_soon(functools.partial(inbox.run, record_in_transaction, concurrency=_workers, transactional=True))
        yield
        tasks.cancel_scope.cancel()


def _client() -> fota.FotaCallbacksClient:
    return fota.FotaCallbacksClient(access_token="unused", m2m_token="unused")


app = FastAPI(
    lifespan=_transactional
    if os.environ.get("FOTA_TEST_TRANSACTIONAL") == "1"
    else fota_lifespan(_client, inbox=inbox, handler=record, workers=_workers)
)
app.include_router(callback_router(inbox=inbox))
app.include_router(health_router(inbox))


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}
