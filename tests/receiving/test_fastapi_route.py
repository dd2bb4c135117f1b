"""The callback route serves its POSTs from ASGI directly: what FastAPI users rely on still holds.

OpenAPI, prefixes, dependencies declared on `include_router` or the app (they run, and can refuse), 405 for
other methods, chunked bodies and the size limit without a Content-Length; under uvicorn on 127.0.0.1.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

pytest.importorskip("fastapi")

from fastapi import Depends, FastAPI, HTTPException, Request

from fota_callbacks.callbacks import CallbackMessage, UpgradeProgressMessage
from fota_callbacks.integrations.fastapi import callback_router
from fota_callbacks.testing import serve

pytestmark = pytest.mark.anyio

MESSAGE = {"accountName": "0000123456-00001", "type": "upgradeProgress", "username": "u", "password": "p"}


class Handler:
    def __init__(self) -> None:
        self.messages: list[CallbackMessage] = []

    async def __call__(self, message: CallbackMessage) -> None:
        self.messages.append(message)


class Gate:
    """A dependency that refuses requests without `X-Gate: open`, and counts the requests it saw."""

    def __init__(self) -> None:
        self.seen = 0

    async def __call__(self, request: Request) -> None:
        self.seen += 1
        if request.headers.get("x-gate") != "open":
            raise HTTPException(status_code=403, detail="gate closed")


class App:
    def __init__(self) -> None:
        self.include_gate, self.app_gate = Gate(), Gate()
        self.plain, self.gated, self.global_ = Handler(), Handler(), Handler()
        self.app = FastAPI()
        self.app.include_router(callback_router(self.plain, username="u", password="p", max_body_size=500))
        self.app.include_router(callback_router(self.gated), prefix="/hooks", dependencies=[Depends(self.include_gate)])
        self.gated_app = FastAPI(dependencies=[Depends(self.app_gate)])
        self.gated_app.include_router(callback_router(self.global_))


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[App, str, str]]:
    apps = App()
    with serve(apps.app) as base_url, serve(apps.gated_app) as gated_base_url:
        yield apps, base_url, gated_base_url


async def post(base_url: str, path: str, content: Any, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        return await http.post(path, content=content, headers={"content-type": "application/json", **headers})


def test_the_endpoint_is_in_the_openapi_schema_with_its_answers() -> None:
    app = FastAPI()
    app.include_router(callback_router(Handler()), prefix="/hooks")

    operation = app.openapi()["paths"]["/hooks/fota/callbacks"]["post"]

    assert operation["summary"] == "Receive a ThingSpace FOTA callback message"
    assert {"400", "401", "403", "413", "500"} <= set(operation["responses"])


async def test_a_message_is_received_through_the_direct_path(served: tuple[App, str, str]) -> None:
    apps, base_url, _ = served
    answer = await post(base_url, "/fota/callbacks", json.dumps(MESSAGE).encode())

    assert (answer.status_code, answer.json()) == (200, {"status": "ok"})
    assert answer.headers["content-type"] == "application/json"
    assert isinstance(apps.plain.messages[-1], UpgradeProgressMessage)


async def test_a_dependency_declared_on_include_router_runs_and_can_refuse(served: tuple[App, str, str]) -> None:
    apps, base_url, _ = served
    before = len(apps.gated.messages)

    refused = await post(base_url, "/hooks/fota/callbacks", json.dumps(MESSAGE).encode())
    allowed = await post(base_url, "/hooks/fota/callbacks", json.dumps(MESSAGE).encode(), **{"x-gate": "open"})

    assert (refused.status_code, refused.json()) == (403, {"detail": "gate closed"})
    assert (allowed.status_code, allowed.json()) == (200, {"status": "ok"})
    assert len(apps.gated.messages) == before + 1
    assert apps.include_gate.seen >= 2


async def test_a_dependency_declared_on_the_app_runs_and_can_refuse(served: tuple[App, str, str]) -> None:
    apps, _, gated_base_url = served
    before = len(apps.global_.messages)

    refused = await post(gated_base_url, "/fota/callbacks", json.dumps(MESSAGE).encode())
    allowed = await post(gated_base_url, "/fota/callbacks", json.dumps(MESSAGE).encode(), **{"x-gate": "open"})

    assert refused.status_code == 403
    assert allowed.status_code == 200
    assert len(apps.global_.messages) == before + 1


async def test_other_methods_get_405(served: tuple[App, str, str]) -> None:
    _, base_url, _ = served
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        answer = await http.get("/fota/callbacks")

    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST"


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_a_chunked_body_is_assembled(served: tuple[App, str, str]) -> None:
    apps, base_url, _ = served
    body = json.dumps(MESSAGE).encode()

    answer = await post(base_url, "/fota/callbacks", chunks(body[:10], body[10:30], body[30:]))

    assert answer.status_code == 200
    assert apps.plain.messages[-1].raw == MESSAGE


async def test_a_chunked_body_over_the_limit_gets_413_without_a_content_length(served: tuple[App, str, str]) -> None:
    apps, base_url, _ = served
    before = len(apps.plain.messages)
    padded = json.dumps({**MESSAGE, "padding": "x" * 600}).encode()

    answer = await post(base_url, "/fota/callbacks", chunks(padded[:300], padded[300:]))

    assert answer.status_code == 413
    assert answer.json()["error"] == "too_large"
    assert len(apps.plain.messages) == before
