"""`callback_view` and `health_urls` in a real Django project (configured here, CSRF middleware on), served by
uvicorn through Django's ASGI handler, on asyncio: CSRF-exempt, the receiver's limit rules the body (not
DATA_UPLOAD_MAX_MEMORY_SIZE), no background handling, the health paths. The answers to callback requests
themselves are the table's (test_table.py)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

pytest.importorskip("django")

import fota_callbacks as fota
from fota_callbacks.inbox import MemoryInbox
from fota_callbacks.integrations.django import callback_view, health_urls
from fota_callbacks.receiver import CallbackReceiver
from tests.receiving.cases import message_of_size
from tests.support.receiving import Recorder, UnavailableInbox, django_urlpatterns, serve_django

pytestmark = pytest.mark.anyio

MIB = 1024 * 1024
MESSAGE = json.dumps({"type": "upgradeProgress", "accountName": "0000123456-00001"}).encode()


@pytest.fixture
def anyio_backend() -> str:
    """The server is uvicorn on asyncio; the test client too."""
    return "asyncio"


class Project:
    def __init__(self) -> None:
        from django.http import HttpRequest, HttpResponse
        from django.urls import include, path

        self.recorder, self.large = Recorder(), Recorder()

        async def not_exempt(request: HttpRequest) -> HttpResponse:
            return HttpResponse(b"{}", content_type="application/json")

        django_urlpatterns().extend(
            [
                path("django/fota/callbacks", callback_view(CallbackReceiver(self.recorder))),
                path("django/large", callback_view(CallbackReceiver(self.large, max_body_size=3 * MIB))),
                path("django/not-exempt", not_exempt),  # an async view of the user's: CSRF applies
                path("django/", include(health_urls(MemoryInbox()))),
                path("django/unavailable/", include(health_urls(UnavailableInbox()))),
            ]
        )
        self.base_url = ""


@pytest.fixture(scope="module")
def project() -> Iterator[Project]:
    made = Project()
    with serve_django() as base_url:
        made.base_url = base_url
        yield made


async def post(project: Project, path: str, body: bytes) -> httpx.Response:
    async with httpx.AsyncClient(base_url=project.base_url, timeout=30) as http:
        return await http.post(path, content=body, headers={"content-type": "application/json"})


async def test_the_view_is_csrf_exempt_where_the_middleware_refuses_other_posts(project: Project) -> None:
    project.recorder.clear()
    received = await post(project, "/django/fota/callbacks", MESSAGE)
    refused = await post(project, "/django/not-exempt", MESSAGE)

    assert (received.status_code, received.json()) == (200, {"status": "ok"})
    assert refused.status_code == 403  # CsrfViewMiddleware is on: only the exemption lets ThingSpace through
    assert [message.raw for message in project.recorder.messages] == [json.loads(MESSAGE)]


async def test_the_receivers_limit_rules_the_body_not_data_upload_max_memory_size(project: Project) -> None:
    # Django's DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) would answer request.body over it with its own 400 page.
    project.large.clear()
    within, over = message_of_size(3 * MIB), message_of_size(3 * MIB + 1)

    accepted, refused = await post(project, "/django/large", within), await post(project, "/django/large", over)

    assert accepted.status_code == 200
    assert (refused.status_code, refused.json()) == (
        413,
        {"error": "too_large", "detail": f"callback bodies are limited to {3 * MIB} bytes"},
    )
    assert [len(json.dumps(m.raw, separators=(",", ":"))) for m in project.large.messages] == [len(within)]


async def test_the_health_urls_answer_liveness_and_the_inboxs_readiness(project: Project) -> None:
    async with httpx.AsyncClient(base_url=project.base_url, timeout=10) as http:
        alive, ready = await http.get("/django/healthz"), await http.get("/django/readyz")
        not_ready = await http.get("/django/unavailable/readyz")
        posted = await http.post("/django/healthz")

    assert (alive.status_code, alive.content) == (200, b'{"status":"ok"}')
    assert (ready.status_code, ready.content) == (200, b'{"status":"ready"}')
    assert (not_ready.status_code, not_ready.json()) == (503, {"status": "unavailable", "reason": "the disk is full"})
    assert (posted.status_code, posted.headers["allow"]) == (405, "GET")
    assert posted.json() == {"error": "method_not_allowed", "detail": "use GET"}


def test_a_background_receiver_is_refused_naming_the_receiver() -> None:
    with pytest.raises(fota.InvalidArgumentError, match="background") as caught:
        callback_view(CallbackReceiver(Recorder(), background=True))
    assert caught.value.parameter == "receiver"


def test_bad_arguments_are_refused_naming_the_parameter() -> None:
    with pytest.raises(fota.InvalidArgumentError) as caught:
        callback_view(Recorder())  # type: ignore[arg-type]
    assert caught.value.parameter == "receiver"
    with pytest.raises(fota.InvalidArgumentError) as caught:
        health_urls(object())  # type: ignore[arg-type]
    assert caught.value.parameter == "inbox"


class Unread(io.RawIOBase):
    """A request body that fails the test if anything reads it."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        raise AssertionError("the body was read")


async def test_a_content_length_over_the_limit_is_answered_before_the_view_reads_the_body(project: Project) -> None:
    # Under ASGI, Django's handler has received the body before the view runs: here the request is made as that
    # handler makes it, with a body that must stay unread.
    from django.core.handlers.asgi import ASGIRequest

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/django/fota/callbacks",
        "headers": [(b"content-length", b"%d" % (MIB + 1)), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 50000),
    }
    view = callback_view(CallbackReceiver(Recorder()))

    answer = await view(ASGIRequest(scope, Unread()))

    assert answer.status_code == 413
    assert json.loads(answer.content) == {"error": "too_large", "detail": f"callback bodies are limited to {MIB} bytes"}
