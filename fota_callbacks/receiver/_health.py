"""The answers of a receiver's health paths: `/healthz` (the process serves) and `/readyz` (it can take messages)."""

from __future__ import annotations

import json
from typing import Final

from ..inbox import Inbox

__all__ = ["health_answer", "readiness_answer"]

_ALIVE: Final = b'{"status":"ok"}'
_READY: Final = b'{"status":"ready"}'


def health_answer() -> tuple[int, bytes]:
    """`GET /healthz`: 200 `{"status":"ok"}` while the process serves requests (a liveness probe)."""
    return 200, _ALIVE


async def readiness_answer(inbox: Inbox | None) -> tuple[int, bytes]:
    """`GET /readyz`: 200 `{"status":"ready"}`, or 503 `{"status":"unavailable","reason":"..."}` while `inbox`
    cannot take messages (its store refuses writes, or the worker this process runs on it is down).
    Without an inbox (a receiver with an inline handler) it is always ready."""
    if inbox is None:
        return 200, _READY
    readiness = await inbox.ready()
    if readiness.ok:
        return 200, _READY
    body = {"status": "unavailable", "reason": readiness.reason or "the inbox is not ready"}
    return 503, json.dumps(body, separators=(",", ":")).encode()
