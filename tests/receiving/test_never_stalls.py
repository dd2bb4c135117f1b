"""A receiver never stays up answering 200 for messages nobody will handle (issue: "Receiving never stalls silently").

Under uvicorn in its own process with a SqliteInbox (tests/support/inbox_app.py): a handler that raises a foreign
`CancelledError`, a handler that raises `KeyboardInterrupt`, a file made read-only and writable again, the files
deleted; `/readyz` says what an operator's probe sees. In-process: a worker that dies is restarted, and meanwhile
the router answers 503 and `/readyz` says why.
"""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

import fota_callbacks as fota
from fota_callbacks.inbox import MemoryInbox
from fota_callbacks.integrations.fastapi import callback_router, fota_lifespan, health_router
from tests.support.inbox import AppServer, app_servers, until

__all__ = ["app_servers"]  # a fixture, used below


def body(n: int) -> bytes:
    return json.dumps({"type": "upgradeProgress", "accountName": "0000123456-00001", "n": n}).encode()


def handled(record: Path) -> Counter[int]:
    return Counter(int(line) for line in record.read_text().split()) if record.exists() else Counter()


def eventually(condition: Callable[[], bool], within: float = 30.0) -> None:
    """Wait until `condition()` holds: state other processes change."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"not within {within} s"
        time.sleep(0.05)


def post(server: AppServer, n: int) -> httpx.Response:
    return httpx.post(f"{server.base_url}/fota/callbacks", content=body(n), timeout=10)


def readiness(server: AppServer) -> tuple[int, Any]:
    answer = httpx.get(f"{server.base_url}/readyz", timeout=10)
    return answer.status_code, answer.json()


def test_a_handler_raising_a_foreign_cancelled_error_does_not_stop_the_worker(app_servers: Any, tmp_path: Path) -> None:
    # Before: the worker stopped on it, and the app went on acknowledging 20 of 20 later messages, handling none.
    record = tmp_path / "handled"
    server = app_servers(
        inbox=f"sqlite:{tmp_path / 'inbox.db'}", record=str(record), fault="cancelled:3", workers="1"
    ).ready()
    answers = [post(server, n).status_code for n in range(25)]
    assert answers == [200] * 25
    eventually(lambda: set(handled(record)) == set(range(25)))
    assert handled(record)[3] == 1  # its first attempt failed (retried after retry_base), then it was handled
    assert readiness(server) == (200, {"status": "ready"})


def test_a_handler_raising_keyboard_interrupt_ends_the_process_and_gives_the_entry_back(
    app_servers: Any, tmp_path: Path
) -> None:
    # Before: the worker was gone and the live process answered 503 for ever; no supervisor restarts a live
    # process. Now the process ends, and what it was handling is handled at the next start: at once, not after
    # claim_idle (an hour here).
    inbox, record = f"sqlite:{tmp_path / 'inbox.db'}", tmp_path / "handled"
    doomed = app_servers(inbox=inbox, record=str(record), fault="interrupt:1", claim_idle="3600").ready()
    assert post(doomed, 1).status_code == 200
    eventually(lambda: doomed.process.poll() is not None)
    assert handled(record) == Counter()
    restarted = app_servers(inbox=inbox, record=str(record), claim_idle="3600").ready()
    eventually(lambda: handled(record) == Counter({1: 1}), within=10)
    assert readiness(restarted) == (200, {"status": "ready"})


def test_readiness_and_answers_follow_a_file_made_read_only_and_writable_again(
    app_servers: Any, tmp_path: Path
) -> None:
    path, record = tmp_path / "inbox.db", tmp_path / "handled"
    server = app_servers(inbox=f"sqlite:{path}", record=str(record)).ready()
    assert post(server, 1).status_code == 200
    assert readiness(server) == (200, {"status": "ready"})
    mode = path.stat().st_mode
    path.chmod(stat.S_IRUSR | stat.S_IRGRP)
    try:
        status, answer = readiness(server)
        assert status == 503
        assert answer["status"] == "unavailable"
        assert "read-only" in answer["reason"]
        assert post(server, 2).status_code == 503  # the sender retries later
    finally:
        path.chmod(mode)
    assert readiness(server) == (200, {"status": "ready"})  # no restart
    assert post(server, 3).status_code == 200
    eventually(lambda: set(handled(record)) == {1, 3})


def test_files_deleted_under_a_running_receiver_lose_nothing_acknowledged_after(
    app_servers: Any, tmp_path: Path
) -> None:
    path, record = tmp_path / "inbox.db", tmp_path / "handled"
    server = app_servers(inbox=f"sqlite:{path}", record=str(record)).ready()
    assert post(server, 1).status_code == 200
    eventually(lambda: set(handled(record)) == {1})
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    assert [post(server, n).status_code for n in (2, 3)] == [200, 200]
    assert path.exists()  # written at the path, not into the unlinked file
    eventually(lambda: set(handled(record)) == {1, 2, 3})
    server.stop()
    listing = subprocess.run(
        [sys.executable, "-m", "fota_callbacks", "inbox", "stats", "--sqlite", str(path), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(listing.stdout)["done"] == 2  # what was acknowledged after the deletion is in the file


# --- in-process: the worker dies, the receiver refuses meanwhile ----------------------------------------------------


def offline_client() -> fota.FotaCallbacksClient:
    return fota.FotaCallbacksClient(access_token="unused", m2m_token="unused")


class FailingClock:
    """Wall-clock seconds that fail while `broken`: the inbox's clock is the user's code too."""

    def __init__(self) -> None:
        self.broken = False
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        if self.broken:
            raise OSError("the clock broke")
        return self.now


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_while_the_worker_is_down_the_router_answers_503_and_readyz_says_why(anyio_backend: str) -> None:
    clock = FailingClock()
    handled_ns: list[int] = []

    async def handler(message: fota.CallbackMessage) -> None:
        handled_ns.append(message.raw["n"])

    inbox = MemoryInbox(clock=clock, poll_interval=0.01)
    app = FastAPI(
        lifespan=fota_lifespan(
            lambda: fota.FotaCallbacksClient(access_token="a", m2m_token="m"), inbox=inbox, handler=handler
        )
    )
    app.include_router(callback_router(inbox=inbox))
    app.include_router(health_router(inbox))
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://receiver")
    async with app.router.lifespan_context(app), http:
        assert (await http.post("/fota/callbacks", content=body(1))).status_code == 200
        await until(lambda: handled_ns == [1], within=10)
        clock.broken = True  # the worker's next step fails: it stops, is logged, and restarts after a backoff
        await until(lambda: inbox.worker_down is not None, within=10)
        clock.broken = False
        refused = await http.post("/fota/callbacks", content=body(2))
        ready = await http.get("/readyz")
        assert (refused.status_code, refused.json()["error"]) == (503, "unavailable")
        assert ready.status_code == 503
        assert "the clock broke" in ready.json()["reason"]
        assert (await http.get("/healthz")).json() == {"status": "ok"}  # alive: a liveness probe must not kill it
        await until(lambda: inbox.worker_down is None, within=10)  # restarted after 1 s
        assert (await http.get("/readyz")).json() == {"status": "ready"}
        assert (await http.post("/fota/callbacks", content=body(3))).status_code == 200
        await until(lambda: handled_ns == [1, 3], within=10)
