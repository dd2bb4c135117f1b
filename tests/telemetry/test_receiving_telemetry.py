"""A receiver reports through OpenTelemetry: a `fota.callback.receive` span per request and the
`fota.callbacks.received` counter, refused requests included, through the FastAPI router."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.trace import SpanKind, StatusCode

import fota_callbacks as fota
from fota_callbacks.inbox import MemoryInbox
from fota_callbacks.integrations.fastapi import callback_router
from tests.support.telemetry import Otel, attrs, body, receiving

pytestmark = pytest.mark.anyio

RECEIVED = "fota.callbacks.received"
HANDLED = "fota.inbox.handled"


async def test_refused_duplicate_and_unknown_callbacks_are_counted(otel: Otel) -> None:
    inbox = MemoryInbox()
    async with receiving(inbox, otel, password="s3cret", max_body_size=200) as http:
        answers = [
            await http.post("/fota/callbacks", content=body(1, password="s3cret")),
            await http.post("/fota/callbacks", content=body(1, password="s3cret")),  # the sender's retry
            await http.post("/fota/callbacks", content=body(2, type="somethingNew", password="s3cret")),
            await http.post("/fota/callbacks", content=body(3, password="wrong")),
            await http.post("/fota/callbacks", content=b"[1]"),
            await http.post("/fota/callbacks", content=b"{}" + b" " * 300),
        ]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 401, 400, 413]

    points = sorted((sorted(found.items()), value) for found, value in otel.points(RECEIVED))
    assert points == [
        ([("fota.callback.outcome", "duplicate"), ("fota.callback.type", "upgradeProgress")], 1),
        ([("fota.callback.outcome", "refused")], 3),  # the receiver's refusals carry no message: no type
        ([("fota.callback.outcome", "stored"), ("fota.callback.type", "unknown")], 1),  # no sender-made series
        ([("fota.callback.outcome", "stored"), ("fota.callback.type", "upgradeProgress")], 1),
    ]
    statuses = [attrs(span)["http.response.status_code"] for span in otel.spans("fota.callback.receive")]
    assert statuses == [200, 200, 200, 401, 400, 413]
    assert all(span.status.status_code == StatusCode.UNSET for span in otel.spans())  # 4xx: the sender's error


async def test_a_handler_receiver_reports_handled_and_background_answers_as_handled(otel: Otel) -> None:
    async def handler(message: fota.CallbackMessage) -> None:
        if message.raw["n"] == 2:
            raise RuntimeError("the handler failed")

    for background in (False, True):
        app = FastAPI()
        app.include_router(callback_router(handler, background=background, **otel.providers()))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://receiver") as http:
            assert (await http.post("/fota/callbacks", content=body(1))).status_code == (202 if background else 200)
            if not background:
                assert (await http.post("/fota/callbacks", content=body(2))).status_code == 500

    assert otel.value(RECEIVED, fota__callback__type="upgradeProgress", fota__callback__outcome="handled") == 2
    assert otel.value(RECEIVED, fota__callback__type="upgradeProgress", fota__callback__outcome="refused") == 1
    failed = otel.spans("fota.callback.receive", http__response__status_code=500)
    assert [span.status.status_code for span in failed] == [StatusCode.ERROR]


async def test_under_a_framework_s_server_span_the_receive_span_is_internal(otel: Otel) -> None:
    app = FastAPI()
    app.include_router(callback_router(inbox=MemoryInbox(), **otel.providers()))
    tracer = otel.tracer_provider.get_tracer("asgi-instrumentation")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://receiver") as http:
        with tracer.start_as_current_span("POST /fota/callbacks", kind=SpanKind.SERVER) as server:
            await http.post("/fota/callbacks", content=body(1))
    [received] = otel.spans("fota.callback.receive")
    assert received.kind == SpanKind.INTERNAL
    assert received.parent is not None
    assert received.parent.span_id == server.get_span_context().span_id
