"""`callback_app`: the plain ASGI adapter. Its routing (root_path, health paths, 404/405), the lifespan protocol,
websockets and clients that leave; in-process on asyncio and trio, and under uvicorn mounted in Starlette.
The answers to callback requests themselves are the table's (test_table.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator, MutableMapping
from typing import Any

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

import fota_callbacks as fota
from fota_callbacks.inbox import MemoryInbox
from fota_callbacks.integrations.asgi import CallbackApp, callback_app
from fota_callbacks.receiver import CallbackReceiver
from fota_callbacks.testing import serve
from tests.support.receiving import Recorder, UnavailableInbox, answer_to_a_promise

pytestmark = pytest.mark.anyio

MESSAGE = json.dumps({"type": "upgradeProgress", "accountName": "0000123456-00001"}).encode()
NOT_FOUND = {"error": "not_found", "detail": "callbacks are received on /fota/callbacks"}
MOUNTED = "/hooks/fota/callbacks"


def client(app: Any, *, root_path: str = "") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app, root_path=root_path, client=("127.0.0.1", 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://receiver", timeout=10)


async def test_it_answers_callbacks_health_and_everything_else_in_json() -> None:
    recorder = Recorder()
    async with client(callback_app(CallbackReceiver(recorder))) as http:
        received = await http.post("/fota/callbacks", content=MESSAGE)
        alive, ready = await http.get("/healthz"), await http.get("/readyz")
        elsewhere = [await http.post("/other", content=MESSAGE), await http.get("/fota/callbacks/")]
        wrong_method = await http.delete("/fota/callbacks")
        posted_to_health = await http.post("/readyz")

    assert (received.status_code, received.json()) == (200, {"status": "ok"})
    assert [message.raw for message in recorder.messages] == [json.loads(MESSAGE)]
    assert (alive.status_code, alive.content) == (200, b'{"status":"ok"}')
    assert (ready.status_code, ready.content) == (200, b'{"status":"ready"}')
    assert [(answer.status_code, answer.json()) for answer in elsewhere] == [(404, NOT_FOUND)] * 2
    assert (wrong_method.status_code, wrong_method.headers["allow"]) == (405, "POST")
    assert wrong_method.json() == {"error": "method_not_allowed", "detail": "use POST"}
    assert (posted_to_health.status_code, posted_to_health.headers["allow"]) == (405, "GET")
    assert posted_to_health.json() == {"error": "method_not_allowed", "detail": "use GET"}
    assert all(a.headers["content-type"] == "application/json" for a in [received, alive, *elsewhere, wrong_method])


async def test_readiness_is_the_receivers_inbox() -> None:
    unavailable = UnavailableInbox()
    async with client(callback_app(CallbackReceiver(inbox=unavailable))) as http:
        not_ready = await http.get("/readyz")
        alive = await http.get("/healthz")
        refused = await http.post("/fota/callbacks", content=MESSAGE)
    async with client(callback_app(CallbackReceiver(inbox=MemoryInbox()))) as http:
        ready = await http.get("/readyz")

    assert (not_ready.status_code, not_ready.json()) == (503, {"status": "unavailable", "reason": "the disk is full"})
    assert alive.status_code == 200  # alive all the same: a liveness probe must not restart it for a full disk
    assert refused.status_code == 503
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})


async def test_without_health_the_health_paths_are_not_found() -> None:
    async with client(callback_app(CallbackReceiver(Recorder()), health=False)) as http:
        answers = [await http.get("/healthz"), await http.get("/readyz")]
    assert [(answer.status_code, answer.json()) for answer in answers] == [(404, NOT_FOUND)] * 2


async def test_another_path_is_served_and_named_in_the_404() -> None:
    recorder = Recorder()
    async with client(callback_app(CallbackReceiver(recorder), path="/thingspace")) as http:
        received = await http.post("/thingspace", content=MESSAGE)
        default = await http.post("/fota/callbacks", content=MESSAGE)

    assert received.status_code == 200
    assert (default.status_code, default.json()["detail"]) == (404, "callbacks are received on /thingspace")
    assert len(recorder.messages) == 1


@pytest.mark.parametrize("path_has_the_prefix", [True, False], ids=["path-with-root-path", "path-without"])
async def test_the_asgi_root_path_is_honoured(path_has_the_prefix: bool) -> None:
    # ASGI servers (uvicorn --root-path) and Starlette's Mount put the whole path in `path` and the prefix in
    # `root_path`; a server that strips the prefix itself passes the path without it. Both reach the receiver.
    recorder = Recorder()
    async with client(callback_app(CallbackReceiver(recorder)), root_path="/hooks") as http:
        prefix = "/hooks" if path_has_the_prefix else ""
        received = await http.post(f"{prefix}/fota/callbacks", content=MESSAGE)
        alive = await http.get(f"{prefix}/healthz")
        elsewhere = await http.post(f"{prefix}/other", content=MESSAGE)

    assert received.status_code == 200
    assert alive.status_code == 200
    assert (elsewhere.status_code, elsewhere.json()["detail"]) == (404, f"callbacks are received on {MOUNTED}")
    assert len(recorder.messages) == 1


@pytest.fixture(scope="module")
def mounted() -> Iterator[tuple[str, Recorder]]:
    recorder = Recorder()
    app = Starlette(routes=[Mount("/hooks", app=callback_app(CallbackReceiver(recorder, username="u", password="p")))])
    with serve(app) as base_url:
        yield base_url, recorder


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_mounted_in_starlette_under_uvicorn_it_serves_below_the_mount(mounted: tuple[str, Recorder]) -> None:
    base_url, recorder = mounted
    recorder.clear()
    message = json.dumps({"type": "upgradeFinished", "username": "u", "password": "p"}).encode()
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        received = await http.post("/hooks/fota/callbacks", content=message)
        refused = await http.post("/hooks/fota/callbacks", content=MESSAGE)
        probes = [await http.get("/hooks/healthz"), await http.get("/hooks/readyz")]
        outside = await http.post("/fota/callbacks", content=message)  # Starlette's routing: not the mount
        inside = await http.get("/hooks/nothing")

    assert (received.status_code, received.json()) == (200, {"status": "ok"})
    assert refused.status_code == 401
    assert [probe.status_code for probe in probes] == [200, 200]
    assert outside.status_code == 404
    assert outside.headers["content-type"].startswith("text/plain")  # Starlette's own page: not our app's
    assert (inside.status_code, inside.json()["detail"]) == (404, f"callbacks are received on {MOUNTED}")
    assert [message.raw["type"] for message in recorder.messages] == ["upgradeFinished"]


async def test_served_alone_it_completes_the_lifespan_protocol() -> None:
    app = callback_app(CallbackReceiver(Recorder()))
    to_app = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return to_app.pop(0)

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    with anyio.fail_after(5):
        await app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)  # returns after the shutdown

    assert sent == [{"type": "lifespan.startup.complete"}, {"type": "lifespan.shutdown.complete"}]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_uvicorn_with_lifespan_on_starts_and_serves_it() -> None:
    # lifespan="on" makes uvicorn refuse to start an app that does not complete the startup.
    with serve(callback_app(CallbackReceiver(Recorder())), lifespan="on") as base_url:
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
            assert (await http.post("/fota/callbacks", content=MESSAGE)).status_code == 200


async def test_a_websocket_is_closed_before_it_is_accepted() -> None:
    app = callback_app(CallbackReceiver(Recorder()))
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await app({"type": "websocket", "path": "/fota/callbacks", "headers": []}, receive, send)
    assert sent == [{"type": "websocket.close", "code": 1000}]


async def test_a_client_that_leaves_mid_body_gets_nothing_and_nothing_is_handled() -> None:
    recorder = Recorder()
    app = callback_app(CallbackReceiver(recorder))
    events: list[dict[str, Any]] = [
        {"type": "http.request", "body": MESSAGE[:10], "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return events.pop(0)

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/fota/callbacks", "headers": [], "client": ("127.0.0.1", 1)}
    await app(scope, receive, send)
    assert sent == []
    assert recorder.messages == []


@pytest.mark.parametrize(
    ("arguments", "options", "parameter"),
    [
        ((Recorder(),), {}, "receiver"),  # a handler, not a receiver
        ((None,), {}, "receiver"),
        ((CallbackReceiver(Recorder()),), {"path": "fota/callbacks"}, "path"),
        ((CallbackReceiver(Recorder()),), {"health": "yes"}, "health"),
    ],
)
def test_bad_arguments_are_refused_naming_the_parameter(
    arguments: tuple[Any, ...], options: dict[str, Any], parameter: str
) -> None:
    with pytest.raises(fota.InvalidArgumentError) as caught:
        callback_app(*arguments, **options)
    assert caught.value.parameter == parameter


def test_its_repr_shows_the_configuration_without_the_password() -> None:
    app = callback_app(CallbackReceiver(Recorder(), username="listener", password="hunter2-secret"), path="/cb")
    assert isinstance(app, CallbackApp)
    assert "hunter2" not in repr(app)
    assert "path='/cb'" in repr(app)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_content_length_over_the_limit_is_answered_without_reading_the_body() -> None:
    small = callback_app(CallbackReceiver(Recorder(), max_body_size=100))
    with serve(small) as base_url:
        status, body = await anyio.to_thread.run_sync(answer_to_a_promise, base_url, "/fota/callbacks", 101)
    assert status == 413
    assert json.loads(body) == {"error": "too_large", "detail": "callback bodies are limited to 100 bytes"}
