"""`callback_handler` and `health_routes` in a real aiohttp.web server (asyncio only, as aiohttp): the receiver's
limit rules the body, not aiohttp's `client_max_size`; `background=True` handles after the answer is sent; other
methods; the health paths. The answers to callback requests themselves are the table's (test_table.py)."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import httpx
import pytest

pytest.importorskip("aiohttp")

from aiohttp import web

import fota_callbacks as fota
from fota_callbacks.callbacks import CallbackMessage
from fota_callbacks.inbox import MemoryInbox
from fota_callbacks.integrations.aiohttp import callback_handler, health_routes
from fota_callbacks.receiver import CallbackReceiver
from tests.receiving.cases import message_of_size
from tests.support.receiving import Recorder, UnavailableInbox, answer_to_a_promise, serve_aiohttp

pytestmark = pytest.mark.anyio

MIB = 1024 * 1024
MESSAGE = json.dumps({"type": "upgradeProgress", "accountName": "0000123456-00001"}).encode()


@pytest.fixture
def anyio_backend() -> str:
    """aiohttp runs on asyncio only."""
    return "asyncio"


class Gate:
    """A handler that waits for the test to open it (from another thread), then records the message."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.messages: list[CallbackMessage] = []
        self.handled = threading.Event()

    async def __call__(self, message: CallbackMessage) -> None:
        await anyio.to_thread.run_sync(self.open.wait, 10)
        self.messages.append(message)
        self.handled.set()


class Served:
    def __init__(self) -> None:
        self.large, self.any_method, self.gate = Recorder(), Recorder(), Gate()
        self.app = web.Application()  # client_max_size: aiohttp's default, 1 MiB
        self.app.router.add_post("/large", callback_handler(CallbackReceiver(self.large, max_body_size=2 * MIB)))
        self.app.router.add_route("*", "/any-method", callback_handler(CallbackReceiver(self.any_method)))
        self.app.router.add_post("/background", callback_handler(CallbackReceiver(self.gate, background=True)))
        self.app.add_routes(health_routes(MemoryInbox()))
        sub = web.Application()
        sub.add_routes(health_routes(UnavailableInbox()))
        self.app.add_subapp("/unavailable", sub)
        self.base_url = ""


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    site = Served()
    with serve_aiohttp(site.app) as base_url:
        site.base_url = base_url
        yield site


async def pieces(body: bytes, size: int) -> AsyncIterator[bytes]:
    for at in range(0, len(body), size):
        yield body[at : at + size]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_the_receivers_2_mib_limit_rules_not_aiohttps_client_max_size(served: Served, chunked: bool) -> None:
    served.large.clear()
    within, at_limit, over = message_of_size(MIB + MIB // 2), message_of_size(2 * MIB), message_of_size(2 * MIB + 1)

    async def post(body: bytes) -> httpx.Response:
        content: Any = pieces(body, 256 * 1024) if chunked else body
        async with httpx.AsyncClient(base_url=served.base_url, timeout=30) as http:
            return await http.post("/large", content=content)

    answers = [await post(within), await post(at_limit), await post(over)]

    assert [answer.status_code for answer in answers] == [200, 200, 413]
    assert answers[2].json() == {"error": "too_large", "detail": f"callback bodies are limited to {2 * MIB} bytes"}
    assert [len(json.dumps(message.raw, separators=(",", ":"))) for message in served.large.messages] == [
        len(within),
        len(at_limit),
    ]


async def test_registered_for_every_method_other_methods_get_the_receivers_405(served: Served) -> None:
    served.any_method.clear()
    async with httpx.AsyncClient(base_url=served.base_url, timeout=10) as http:
        answers = [await http.get("/any-method"), await http.put("/any-method", content=MESSAGE)]
        received = await http.post("/any-method", content=MESSAGE)

    for answer in answers:
        assert (answer.status_code, answer.headers["allow"], answer.headers["content-type"]) == (
            405,
            "POST",
            "application/json",
        )
        assert answer.content == b'{"error":"method_not_allowed","detail":"use POST"}'
    assert received.status_code == 200
    assert len(served.any_method.messages) == 1


async def test_background_handling_runs_once_the_answer_is_sent(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.base_url, timeout=10) as http:
        answer = await http.post("/background", content=MESSAGE)  # arrives while the handler still waits
    assert (answer.status_code, answer.json()) == (202, {"status": "accepted"})
    assert served.gate.messages == []

    served.gate.open.set()
    assert await anyio.to_thread.run_sync(served.gate.handled.wait, 10)
    [message] = served.gate.messages
    assert message.raw == json.loads(MESSAGE)


async def test_the_health_routes_answer_liveness_and_the_inboxs_readiness(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.base_url, timeout=10) as http:
        alive, ready = await http.get("/healthz"), await http.get("/readyz")
        still_alive, not_ready = await http.get("/unavailable/healthz"), await http.get("/unavailable/readyz")

    assert [(a.status_code, a.content) for a in (alive, ready, still_alive)] == [
        (200, b'{"status":"ok"}'),
        (200, b'{"status":"ready"}'),
        (200, b'{"status":"ok"}'),
    ]
    assert (not_ready.status_code, not_ready.json()) == (503, {"status": "unavailable", "reason": "the disk is full"})
    assert not_ready.headers["content-type"] == "application/json"


def test_bad_arguments_are_refused_naming_the_parameter() -> None:
    with pytest.raises(fota.InvalidArgumentError) as caught:
        callback_handler(Recorder())  # type: ignore[arg-type]
    assert caught.value.parameter == "receiver"
    with pytest.raises(fota.InvalidArgumentError) as caught:
        health_routes(object())  # type: ignore[arg-type]
    assert caught.value.parameter == "inbox"


async def test_a_content_length_over_the_limit_is_answered_without_reading_the_body(served: Served) -> None:
    status, body = await anyio.to_thread.run_sync(answer_to_a_promise, served.base_url, "/large", 2 * MIB + 1)
    assert (status, json.loads(body)["error"]) == (413, "too_large")
