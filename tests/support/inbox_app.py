"""A receiver app for the subprocess tests (tests/inbox/test_process.py), configured by FOTA_TEST_* variables.

FOTA_TEST_INBOX is `sqlite:PATH` or `redis:URL` (with FOTA_TEST_STREAM); the handler sleeps FOTA_TEST_DELAY
seconds, then appends the message's `n` to FOTA_TEST_RECORD, one line per handling (O_APPEND: lines from
several processes do not interleave, and a `kill -9` loses none that were written).
"""

from __future__ import annotations

import os

import anyio
from fastapi import FastAPI

import fota_callbacks as fota
from fota_callbacks.inbox import Inbox, RedisInbox, SqliteInbox
from fota_callbacks.integrations.fastapi import callback_router, fota_lifespan

_kind, _, _target = os.environ["FOTA_TEST_INBOX"].partition(":")
_claim_idle = float(os.environ.get("FOTA_TEST_CLAIM_IDLE", "1"))
inbox: Inbox = (
    SqliteInbox(_target, claim_idle=_claim_idle, poll_interval=0.05)
    if _kind == "sqlite"
    else RedisInbox(_target, stream=os.environ["FOTA_TEST_STREAM"], claim_idle=_claim_idle, poll_interval=0.05)
)
_delay = float(os.environ.get("FOTA_TEST_DELAY", "0"))
_record = os.open(os.environ["FOTA_TEST_RECORD"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


async def record(message: fota.CallbackMessage) -> None:
    await anyio.sleep(_delay)
    os.write(_record, f"{message.raw['n']}\n".encode())


def _client() -> fota.FotaCallbacksClient:
    return fota.FotaCallbacksClient(access_token="unused", m2m_token="unused")


app = FastAPI(
    lifespan=fota_lifespan(_client, inbox=inbox, handler=record, workers=int(os.environ.get("FOTA_TEST_WORKERS", "4")))
)
app.include_router(callback_router(inbox=inbox))


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}
