"""The FastAPI integration, served by uvicorn on 127.0.0.1: the shared client and the callback router."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import httpx
import pytest

pytest.importorskip("fastapi")

from fastapi import FastAPI

import fota_callbacks as fota
from fota_callbacks.callbacks import FirmwareListMessage, UpgradeProgressMessage
from fota_callbacks.integrations.fastapi import (
    FotaClient,
    callback_router,
    fota_lifespan,
    get_app_client,
)
from fota_callbacks.testing import serve
from tests.support.receiving import FastApiListener as Listener
from tests.support.receiving import Recorder

pytestmark = pytest.mark.anyio

ACCOUNT = "0000123456-00001"
LISTENER_URL = "https://listener.example.com/fota"


class V2ListService:
    """An in-memory ThingSpace that answers V2 "list registered callbacks", and counts the calls."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, request: fota.Request) -> fota.Response:
        assert request.method == "GET"
        assert request.url.endswith(f"/api/fota/v2/callbacks/{ACCOUNT}")
        self.calls += 1
        await anyio.sleep(0.001)  # let the other requests interleave
        return fota.Response(200, {"content-type": "application/json"}, json.dumps({"url": LISTENER_URL}).encode())


# --- the shared client ------------------------------------------------------------------------------------------


async def test_one_client_serves_concurrent_requests_and_is_closed_at_shutdown() -> None:
    service = V2ListService()
    clients: list[fota.FotaCallbacksClient] = []
    events: list[str] = []

    def make_client() -> fota.FotaCallbacksClient:
        client = fota.FotaCallbacksClient(access_token="t", m2m_token="m", transport=fota.InMemoryTransport(service))
        clients.append(client)
        return client

    @contextlib.asynccontextmanager
    async def own_lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The app's own startup and shutdown run with the client open.
        events.append(f"startup: {(await get_app_client(app).v2.list_registered_callbacks(ACCOUNT)).url}")
        yield
        events.append(f"shutdown: {(await get_app_client(app).v2.list_registered_callbacks(ACCOUNT)).url}")

    app = FastAPI(lifespan=fota_lifespan(make_client, lifespan=own_lifespan))

    @app.get("/registered")
    async def registered(client: FotaClient) -> dict[str, str | None]:
        return {"url": (await client.v2.list_registered_callbacks(ACCOUNT)).url}

    answers: list[httpx.Response] = []
    # 200 requests at once over 20 connections: the server runs up to 20 calls on the one client concurrently
    # (more connections only make the test slower: both HTTP stacks are pure Python).
    limits = httpx.Limits(max_connections=20)
    with serve(app) as base_url:
        async with httpx.AsyncClient(base_url=base_url, timeout=10, limits=limits) as http:

            async def get() -> None:
                answers.append(await http.get("/registered"))

            async with anyio.create_task_group() as tasks:
                for _ in range(200):
                    tasks.start_soon(get)

    assert len(answers) == 200
    assert all(answer.status_code == 200 for answer in answers)
    assert all(answer.json() == {"url": LISTENER_URL} for answer in answers)
    assert len(clients) == 1
    assert service.calls == 200 + 2
    assert events == [f"startup: {LISTENER_URL}", f"shutdown: {LISTENER_URL}"]
    with pytest.raises(fota.ClientClosedError):
        await clients[0].v2.list_registered_callbacks(ACCOUNT)


async def test_client_is_closed_when_the_app_startup_fails() -> None:
    clients: list[fota.FotaCallbacksClient] = []

    def make_client() -> fota.FotaCallbacksClient:
        clients.append(
            fota.FotaCallbacksClient(access_token="t", m2m_token="m", transport=fota.InMemoryTransport(V2ListService()))
        )
        return clients[-1]

    @contextlib.asynccontextmanager
    async def failing_startup(app: FastAPI) -> AsyncIterator[None]:
        raise RuntimeError("database unreachable")
        yield

    app = FastAPI()
    with pytest.raises(RuntimeError, match="database unreachable"):
        async with fota_lifespan(make_client, lifespan=failing_startup)(app):
            pass
    with pytest.raises(fota.ClientClosedError):
        await clients[0].v2.list_registered_callbacks(ACCOUNT)
    with pytest.raises(RuntimeError, match="fota_lifespan"):
        get_app_client(app)


def test_without_the_lifespan_the_client_is_missing_with_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match=r"FastAPI\(lifespan=fota_lifespan"):
        get_app_client(FastAPI())


# --- the callback router ----------------------------------------------------------------------------------------


def firmware_list_message(**fields: Any) -> dict[str, Any]:
    return {
        "accountName": ACCOUNT,
        "participantName": "Verizon",
        "type": "firmwareList",
        "username": "listener",
        "password": "s3cret-echo",
        "firmwareList": [
            {"firmwareName": "fw-2", "make": "Verizon", "model": "A", "fromVersion": "1", "toVersion": "2"}
        ],
        "upgradeScheduled": {},
        **fields,
    }


@pytest.fixture(scope="module")
def _listener() -> Iterator[Listener]:
    listener = Listener()
    listener.route("/fota/callbacks")  # the defaults: no checks
    listener.route("/strict", username="listener", password="s3cret-echo")
    listener.route("/password-only", password="s3cret-echo")
    listener.route("/small", max_body_size=1000)
    listener.route("/verizon-only", allowed_ips="verizon")
    listener.route("/one-verizon-address", allowed_ips=["3.87.163.45"])
    listener.route("/loopback", allowed_ips=["127.0.0.0/8"])
    listener.route("/failing", Recorder(fail=True), username="listener", password="s3cret-echo")
    listener.route("/background", Recorder(fail=True), background=True)
    with listener.serve():
        yield listener


@pytest.fixture
def listener(_listener: Listener) -> Listener:
    _listener.clear()
    return _listener


async def test_a_posted_message_reaches_the_handler_typed(listener: Listener) -> None:
    answer = await listener.post("/strict", firmware_list_message())
    # ThingSpace's content type is not insisted on.
    progress = await listener.post(
        "/strict",
        {"type": "upgradeProgress", "username": "listener", "password": "s3cret-echo"},
        **{"content-type": "text/plain"},
    )

    assert (answer.status_code, answer.json()) == (200, {"status": "ok"})
    assert progress.status_code == 200
    first, second = listener.recorders["/strict"].messages
    assert isinstance(first, FirmwareListMessage)
    assert first.account_name == ACCOUNT
    assert first.firmware_list is not None
    assert [(f.firmware_name, f.from_version, f.to_version) for f in first.firmware_list] == [("fw-2", "1", "2")]
    assert isinstance(second, UpgradeProgressMessage)


@pytest.mark.parametrize(
    "credentials",
    [
        {"password": "wrong"},
        {"username": "someone-else"},
        {"password": None},
        {"username": 7},
        {"password": "s3cret-echo" + "\ud800"},
    ],
)
async def test_wrong_credentials_give_401_without_calling_the_handler(
    listener: Listener, credentials: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        answer = await listener.post("/strict", firmware_list_message(**credentials))

    assert answer.status_code == 401
    assert answer.json()["error"] == "unauthorized"
    assert listener.recorders["/strict"].messages == []
    assert "s3cret-echo" not in caplog.text
    assert "wrong username or password" in caplog.text


async def test_only_the_configured_credential_is_checked(listener: Listener) -> None:
    answer = await listener.post("/password-only", firmware_list_message(username="anyone"))
    assert answer.status_code == 200
    assert len(listener.recorders["/password-only"].messages) == 1


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"[1, 2]", b"\xff\xfe", b"[" * 5000 + b"]" * 5000, b'{"type": "firmwareList", "a": NaN}'],
)
async def test_malformed_bodies_give_400_without_calling_the_handler(listener: Listener, body: bytes) -> None:
    answer = await listener.post("/strict", body)

    assert answer.status_code == 400
    assert answer.json()["error"] == "malformed_callback"
    assert answer.json()["detail"].startswith("callback body ")
    assert listener.recorders["/strict"].messages == []


async def test_oversized_bodies_give_413(listener: Listener) -> None:
    answer = await listener.post("/small", firmware_list_message(padding="x" * 1000))
    assert answer.status_code == 413
    assert listener.recorders["/small"].messages == []


@pytest.mark.parametrize(
    ("path", "status"), [("/verizon-only", 403), ("/one-verizon-address", 403), ("/loopback", 200)]
)
async def test_source_addresses_are_checked(listener: Listener, path: str, status: int) -> None:
    answer = await listener.post(path, firmware_list_message())

    assert answer.status_code == status
    assert len(listener.recorders[path].messages) == (1 if status == 200 else 0)
    if status == 403:
        assert answer.json()["error"] == "forbidden"


@pytest.mark.parametrize(
    ("options", "parameter"),
    [
        ({"allowed_ips": "127.0.0.1"}, "allowed_ips"),
        ({"allowed_ips": ["not-an-address"]}, "allowed_ips"),
        ({"password": ""}, "password"),
        ({"username": ""}, "username"),
        ({"max_body_size": 0}, "max_body_size"),
        ({"max_body_size": True}, "max_body_size"),
    ],
)
def test_bad_router_options_are_refused_early(options: dict[str, Any], parameter: str) -> None:
    with pytest.raises(fota.InvalidArgumentError) as caught:
        callback_router(Recorder(), **options)
    assert caught.value.parameter == parameter
    assert isinstance(caught.value, ValueError)


async def test_a_failing_handler_gives_500_without_details(
    listener: Listener, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        answer = await listener.post("/failing", firmware_list_message())

    assert answer.status_code == 500
    assert answer.json() == {"error": "internal_error", "detail": "the callback could not be processed"}
    assert "row 42" not in answer.text
    assert "row 42" in caplog.text  # ... but the operator sees it
    assert "s3cret-echo" not in caplog.text


@pytest.mark.parametrize("forged", ["upgradeProgress\nCRITICAL root: forged", "x\r\x1b[2Kforged\u2028"])
async def test_sender_controlled_text_cannot_forge_log_lines(
    listener: Listener, caplog: pytest.LogCaptureFixture, forged: str
) -> None:
    # The type is the sender's; the failing handler makes the router log it.
    with caplog.at_level(logging.DEBUG):
        answer = await listener.post("/failing", firmware_list_message(type=forged))

    assert answer.status_code == 500
    [record] = [record for record in caplog.records if record.name == "fota_callbacks.receiver"]
    text = record.getMessage()
    assert "forged" in text
    assert text.isascii()
    assert text.isprintable()  # no line break, carriage return or escape sequence


class ErrorLogged(logging.Handler):
    """Keeps the error records logged (from any thread) and sets `logged` once it has one. The test reads
    them here: caplog's handler, on the root logger, gets a record only after this one has set the event."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.logged = threading.Event()
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(self.format(record))
        self.logged.set()


async def test_background_handling_answers_202_then_runs_the_handler(
    listener: Listener, caplog: pytest.LogCaptureFixture
) -> None:
    failure = ErrorLogged()
    logger = logging.getLogger("fota_callbacks.receiver")
    logger.addHandler(failure)
    try:
        with caplog.at_level(logging.DEBUG):
            answer = await listener.post("/background", firmware_list_message())
            assert (answer.status_code, answer.json()) == (202, {"status": "accepted"})
            assert await anyio.to_thread.run_sync(failure.logged.wait, 5)
    finally:
        logger.removeHandler(failure)

    # The handler ran after the answer, and its failure was logged, not lost.
    [message] = listener.recorders["/background"].messages
    assert isinstance(message, FirmwareListMessage)
    assert any("row 42" in text for text in failure.texts)
