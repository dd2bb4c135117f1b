"""The client reports through OpenTelemetry: an INTERNAL span per operation, a CLIENT span and a
`http.client.request.duration` measurement per HTTP attempt (token and session requests included), on every
transport, read with the SDK's in-memory exporter and reader as a dashboard reads them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import NoOpTracerProvider, SpanKind, StatusCode

import fota_callbacks as fota
from fota_callbacks.inbox import MemoryInbox
from fota_callbacks.receiver import CallbackReceiver
from fota_callbacks.testing import FakeThingSpace, Fault
from fota_callbacks.transport import AiohttpTransport, Httpx2Transport
from tests.support.harness import Switchboard
from tests.support.telemetry import Otel, attrs

pytestmark = pytest.mark.anyio

ACCOUNT = "0000123456-00001"
TEMPLATE = "/api/fota/v2/callbacks/{account}"
REGISTRATION = fota.FotaV2CallbackRegistrationRequest(url="https://listener.example.com/fota")
DURATION = "http.client.request.duration"


async def no_wait(seconds: float) -> None:
    """Retries without really sleeping."""


@pytest.fixture
def otel() -> Iterator[Otel]:
    reported = Otel()
    yield reported
    reported.shutdown()


def children(otel: Otel, parent: ReadableSpan) -> list[ReadableSpan]:
    return [span for span in otel.spans() if span.parent is not None and span.parent.span_id == parent.context.span_id]


def seconds(span: ReadableSpan) -> float:
    assert span.start_time is not None
    assert span.end_time is not None
    return (span.end_time - span.start_time) / 1e9


async def test_a_v2_register_retried_once_is_one_operation_span_over_two_attempts(otel: Otel) -> None:
    fake = FakeThingSpace()
    fake.inject(Fault.status(503), version="v2")
    async with fake.client(sleep=no_wait, **otel.providers()) as client:
        result = await client.v2.register_callback(ACCOUNT, REGISTRATION)
    assert result.url == REGISTRATION.url

    [operation] = otel.spans("fota.v2.register_callback")
    assert operation.kind == SpanKind.INTERNAL
    assert attrs(operation) == {
        "fota.api_version": "v2",
        "fota.operation": "register_callback",
        "fota.account": ACCOUNT,
    }
    assert operation.parent is None
    assert operation.status.status_code == StatusCode.UNSET
    first, second = otel.spans(f"POST {TEMPLATE}")
    assert children(otel, operation)[-2:] == [first, second]
    for attempt in (first, second):
        assert attempt.kind == SpanKind.CLIENT
        assert attempt.context.trace_id == operation.context.trace_id
    assert attrs(first) == {
        "http.request.method": "POST",
        "server.address": "thingspace.fake.invalid",
        "server.port": 443,
        "url.template": TEMPLATE,
        "url.full": f"https://thingspace.fake.invalid/api/fota/v2/callbacks/{ACCOUNT}",
        "http.response.status_code": 503,
        "error.type": "503",
    }
    assert first.status.status_code == StatusCode.ERROR
    assert attrs(second)["http.request.resend_count"] == 1
    assert attrs(second)["http.response.status_code"] == 200
    assert "error.type" not in attrs(second)
    assert second.status.status_code == StatusCode.UNSET

    # The histogram: one measurement per attempt, the span's duration, the span's attributes less the URL.
    common = {
        "http.request.method": "POST",
        "server.address": "thingspace.fake.invalid",
        "server.port": 443,
        "url.template": TEMPLATE,
    }
    failed = otel.value(DURATION, **_keys({**common, "http.response.status_code": 503, "error.type": "503"}))
    succeeded = otel.value(DURATION, **_keys({**common, "http.response.status_code": 200}))
    assert (failed.count, succeeded.count) == (1, 1)
    assert failed.sum == pytest.approx(seconds(first))
    assert succeeded.sum == pytest.approx(seconds(second))
    assert otel.metrics()[DURATION].unit == "s"
    assert all(ACCOUNT not in attributes.get("url.template", "") for attributes, _ in otel.points(DURATION))


def _keys(attributes: dict[str, Any]) -> dict[str, Any]:
    """Attribute names as `Otel.value` takes them (dots as `__`)."""
    return {key.replace(".", "__"): value for key, value in attributes.items()}


async def test_token_and_session_requests_have_client_spans_of_their_own_and_count_in_the_histogram(
    otel: Otel,
) -> None:
    fake = FakeThingSpace()
    async with fake.client(**otel.providers()) as client:
        await client.v3.list_registered_callbacks(ACCOUNT)
        await client.v3.list_registered_callbacks(ACCOUNT)  # the tokens are cached: no new token request

    first, _ = otel.spans("fota.v3.list_registered_callbacks")
    names = [(span.name, span.kind) for span in children(otel, first)]
    assert names == [
        ("POST /api/ts/v1/oauth2/token", SpanKind.CLIENT),
        ("POST /api/m2m/v1/session/login", SpanKind.CLIENT),
        ("GET /api/fota/v3/callbacks/{account}", SpanKind.CLIENT),
    ]
    [token] = otel.spans("POST /api/ts/v1/oauth2/token")
    assert attrs(token)["url.template"] == "/api/ts/v1/oauth2/token"
    assert attrs(token)["http.response.status_code"] == 200
    for template in ("/api/ts/v1/oauth2/token", "/api/m2m/v1/session/login"):
        point = otel.value(
            DURATION,
            http__request__method="POST",
            server__address="thingspace.fake.invalid",
            server__port=443,
            url__template=template,
            http__response__status_code=200,
        )
        assert point.count == 1
    listed = otel.value(
        DURATION,
        http__request__method="GET",
        server__address="thingspace.fake.invalid",
        server__port=443,
        url__template="/api/fota/v3/callbacks/{account}",
        http__response__status_code=200,
    )
    assert listed.count == 2


async def test_an_attempt_without_a_response_has_an_error_type_and_no_status_code(otel: Otel) -> None:
    fake = FakeThingSpace()
    async with fake.client(sleep=no_wait, max_retries=1, **otel.providers()) as client:
        await client.v1.list_registered_callbacks(ACCOUNT)  # tokens first: the faults below hit the API only
        otel.clear()
        fake.inject(Fault.drop(), times=2, version="v1")
        with pytest.raises(fota.ApiConnectionError):
            await client.v1.list_registered_callbacks(ACCOUNT)

    [operation] = otel.spans("fota.v1.list_registered_callbacks")
    assert attrs(operation)["error.type"] == "fota_callbacks.ApiConnectionError"
    assert operation.status.status_code == StatusCode.ERROR
    attempts = otel.spans("GET /api/fota/v1/callbacks/{account}")
    assert len(attempts) == 2
    for attempt in attempts:
        assert attrs(attempt)["error.type"] == "fota_callbacks.ApiConnectionError"
        assert "http.response.status_code" not in attrs(attempt)
        assert attempt.status.status_code == StatusCode.ERROR
    assert [attrs(attempt).get("http.request.resend_count") for attempt in attempts] == [None, 1]
    # Cumulative: the first call's measurements are there too; the failed attempts are one series.
    [(attributes, point)] = [(found, point) for found, point in otel.points(DURATION) if "error.type" in found]
    assert "http.response.status_code" not in attributes
    assert (attributes["error.type"], point.count) == ("fota_callbacks.ApiConnectionError", 2)


async def test_a_refused_operation_and_a_timeout_are_errors_of_their_type(otel: Otel) -> None:
    fake = FakeThingSpace()
    async with fake.client(sleep=no_wait, max_retries=0, timeout=0.2, **otel.providers()) as client:
        with pytest.raises(fota.FotaV2ResultException):
            await client.v2.update_callback(ACCOUNT, REGISTRATION)  # nothing registered: ThingSpace's 400
        fake.inject(Fault.delay(5.0), version="v2")
        with pytest.raises(fota.ApiTimeoutError):
            await client.v2.list_registered_callbacks(ACCOUNT)

    [update] = otel.spans("fota.v2.update_callback")
    assert attrs(update)["error.type"] == "fota_callbacks.FotaV2ResultException"
    [refused] = otel.spans(f"PUT {TEMPLATE}")
    assert (attrs(refused)["http.response.status_code"], attrs(refused)["error.type"]) == (400, "400")
    [listing] = otel.spans("fota.v2.list_registered_callbacks")
    assert attrs(listing)["error.type"] == "fota_callbacks.ApiTimeoutError"
    [timed_out] = otel.spans(f"GET {TEMPLATE}")
    assert attrs(timed_out)["error.type"] == "fota_callbacks.ApiTimeoutError"
    assert "http.response.status_code" not in attrs(timed_out)
    # No span or event carries an error's message: ThingSpace's error text is part of a response body.
    assert all(not span.events and span.status.description is None for span in otel.spans())


async def test_a_cancelled_call_is_not_an_error(otel: Otel) -> None:
    fake = FakeThingSpace()
    async with fake.client(**otel.providers()) as client:
        await client.v2.list_registered_callbacks(ACCOUNT)
        otel.clear()
        fake.inject(Fault.delay(5.0), version="v2")
        with anyio.move_on_after(0.1):
            await client.v2.list_registered_callbacks(ACCOUNT)

    [operation] = otel.spans("fota.v2.list_registered_callbacks")
    [attempt] = otel.spans(f"GET {TEMPLATE}")
    for span in (operation, attempt):
        assert "error.type" not in attrs(span)
        assert span.status.status_code == StatusCode.UNSET
    # An attempt cut short by its caller measures nothing: the one GET measured is the first call's.
    listed = [point.count for found, point in otel.points(DURATION) if found["http.request.method"] == "GET"]
    assert listed == [1]


# --- every transport, the default one included --------------------------------------------------------------------


@pytest.fixture
def switchboard(_switchboard: tuple[Switchboard, str]) -> tuple[Switchboard, str]:
    """The session's HTTP server on 127.0.0.1 (tests/conftest.py), to serve a fake on."""
    return _switchboard


KINDS = ["default", "httpx2", "aiohttp", "memory"]


@asynccontextmanager
async def served_client(
    kind: str, fake: FakeThingSpace, switchboard: tuple[Switchboard, str], **options: Any
) -> AsyncIterator[fota.FotaCallbacksClient]:
    if kind == "memory":
        async with fake.client(**options) as client:
            yield client
        return
    board, base_url = switchboard
    board.app = fake.asgi_app
    transport: fota.Transport | None = None  # the default: HttpxTransport()
    if kind == "httpx2":
        pytest.importorskip("httpx2", reason="the httpx2 extra is not installed (it needs Python >= 3.11)")
        transport = Httpx2Transport()
    elif kind == "aiohttp":
        transport = AiohttpTransport()
    credentials: dict[str, Any] = {"client_id": "id", "client_secret": "secret", "username": "u", "password": "p"}
    async with fota.FotaCallbacksClient(base_url=base_url, transport=transport, **credentials, **options) as client:
        yield client


@pytest.mark.parametrize("kind", KINDS)
async def test_every_transport_reports_the_same_spans_and_measurements(
    kind: str, otel: Otel, switchboard: tuple[Switchboard, str]
) -> None:
    """AiohttpTransport on asyncio only (tests/conftest.py leaves out its trio run)."""
    fake = FakeThingSpace()
    fake.inject(Fault.status(500), version="v2")
    async with served_client(kind, fake, switchboard, sleep=no_wait, **otel.providers()) as client:
        await client.v2.register_callback(ACCOUNT, REGISTRATION)
        address, port = [*client.base_url.split("//")[1].split(":"), "443"][:2]

    [operation] = otel.spans("fota.v2.register_callback")
    attempts = otel.spans(f"POST {TEMPLATE}")
    assert [attrs(span).get("http.response.status_code") for span in attempts] == [500, 200]
    assert [attrs(span).get("http.request.resend_count") for span in attempts] == [None, 1]
    expected_server = {"server.address": address, "server.port": int(port)}
    for span in attempts:
        assert span.parent is not None
        assert span.parent.span_id == operation.context.span_id
        assert {key: attrs(span)[key] for key in expected_server} == expected_server
    templates = sorted(attributes["url.template"] for attributes, _ in otel.points(DURATION))
    assert templates == [TEMPLATE, TEMPLATE, "/api/m2m/v1/session/login", "/api/ts/v1/oauth2/token"]


# --- providers: given, global, none ---------------------------------------------------------------------------------


async def test_a_no_op_provider_reports_nothing_and_a_bad_one_is_refused_before_anything_is_made() -> None:
    fake = FakeThingSpace()
    async with fake.client(tracer_provider=NoOpTracerProvider()) as client:
        assert (await client.v2.list_registered_callbacks(ACCOUNT)).url is None

    for make in (
        lambda: fake.client(tracer_provider="not a provider"),
        lambda: CallbackReceiver(inbox=MemoryInbox(), tracer_provider=object()),  # type: ignore[arg-type]
        lambda: MemoryInbox(tracer_provider=42),  # type: ignore[arg-type]
    ):
        with pytest.raises(fota.InvalidArgumentError) as refused:
            make()
        assert refused.value.parameter == "tracer_provider"
    with pytest.raises(fota.InvalidArgumentError) as refused:
        fake.client(meter_provider=NoOpTracerProvider())  # a tracer provider where a meter provider belongs
    assert refused.value.parameter == "meter_provider"
