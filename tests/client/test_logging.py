"""Logging on the "fota_callbacks" logger: one DEBUG record per attempt with structured fields, INFO records
for retries, never a secret, never body content."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator

import pytest

import fota_callbacks as fota
from tests.support.harness import (
    ACCOUNT,
    LOGIN_PATH,
    LOGOUT_PATH,
    TOKEN_PATH,
    V2_PATH,
    LogCapture,
    RecordingSleep,
    Scripted,
    assert_no_secret,
    capture_logs,
)

pytestmark = pytest.mark.anyio

NO_JITTER = fota.RetryPolicy(jitter=0)
BASIC = base64.b64encode(b"my-client:SENTINEL-SECRET-123").decode()
LISTING = {"url": "https://example.com/callback"}


def token(value: str) -> dict[str, object]:
    return {"access_token": value, "token_type": "Bearer", "expires_in": 3600}


@pytest.fixture
def logs() -> Iterator[LogCapture]:
    yield from capture_logs()


def attempt_fields(logs: LogCapture) -> list[tuple[object, ...]]:
    return [
        (r.method, r.path, r.status_code, r.request_id, r.attempt)  # type: ignore[attr-defined]
        for r in logs.with_attribute("status_code", logging.DEBUG)
    ]


async def test_one_debug_record_per_attempt_with_structured_fields(scripted: Scripted, logs: LogCapture) -> None:
    scripted.script.respond(503, json={}, headers={"x-request-id": "req-1"})
    scripted.script.respond(502, json={})
    scripted.script.respond(json=LISTING, headers={"x-request-id": "req-3"})
    async with scripted.client(sleep=RecordingSleep(), retry_policy=NO_JITTER) as client:
        await client.v2.list_registered_callbacks(ACCOUNT)

    assert attempt_fields(logs) == [
        ("GET", V2_PATH, 503, "req-1", 1),
        ("GET", V2_PATH, 502, None, 2),
        ("GET", V2_PATH, 200, "req-3", 3),
    ]
    assert all(r.name == "fota_callbacks" for r in logs.records)


async def test_info_record_for_each_retry_with_delay_and_reason(scripted: Scripted, logs: LogCapture) -> None:
    scripted.script.respond(503, json={})
    scripted.script.respond(429, json={}, headers={"Retry-After": "3"})
    scripted.script.drop()
    scripted.script.respond(json=LISTING)
    async with scripted.client(sleep=RecordingSleep(), retry_policy=NO_JITTER, max_retries=3) as client:
        await client.v2.list_registered_callbacks(ACCOUNT)

    retries = logs.with_attribute("delay", logging.INFO)
    assert [(r.delay, r.attempt) for r in retries] == [(0.5, 1), (3.0, 2), (2.0, 3)]  # type: ignore[attr-defined]
    reasons: list[str] = [r.reason for r in retries]  # type: ignore[attr-defined]
    assert "503" in reasons[0]
    assert "429" in reasons[1]
    assert "ApiConnectionError" in reasons[2]
    assert all((r.method, r.path) == ("GET", V2_PATH) for r in retries)  # type: ignore[attr-defined]


async def test_attempts_without_a_response_are_logged_too(scripted: Scripted, logs: LogCapture) -> None:
    scripted.script.drop()
    scripted.script.respond(json=LISTING, delay=1.0)
    async with scripted.client(sleep=RecordingSleep(), max_retries=1, timeout=0.2) as client:
        with pytest.raises(fota.ApiTimeoutError):
            await client.v2.list_registered_callbacks(ACCOUNT)
    debug = logs.with_attribute("attempt", logging.DEBUG)
    assert [(r.attempt, r.status_code) for r in debug] == [(1, None), (2, None)]  # type: ignore[attr-defined]


async def test_token_and_login_requests_are_logged_without_secrets(scripted: Scripted, logs: LogCapture) -> None:
    script = scripted.script
    script.respond(json=token("SENTINEL-TOKEN-789"))
    script.respond(json={"sessionToken": "SENTINEL-SESSION-000"})
    script.respond(401, json={})
    script.respond(json=token("SENTINEL-TOKEN-789-b"))
    script.respond(json={"sessionToken": "SENTINEL-SESSION-000-b"})
    script.respond(500, json={})
    script.respond(json=LISTING)
    async with scripted.client(
        client_id="my-client",
        client_secret="SENTINEL-SECRET-123",
        username="my-user",
        password="SENTINEL-PW-456",
        sleep=RecordingSleep(),
        logout_on_close=True,
    ) as client:
        await client.v2.list_registered_callbacks(ACCOUNT)
        script.respond(json={})  # the logout

    assert scripted.header(2, "vz-m2m-token") == "SENTINEL-SESSION-000"  # the sentinels did travel
    paths = [fields[1] for fields in attempt_fields(logs)]
    assert paths == [TOKEN_PATH, LOGIN_PATH, V2_PATH, TOKEN_PATH, LOGIN_PATH, V2_PATH, V2_PATH, LOGOUT_PATH]
    assert_no_secret(
        logs.texts(),
        ["SENTINEL-SECRET-123", "SENTINEL-PW-456", "SENTINEL-TOKEN-789", "SENTINEL-SESSION-000", BASIC],
    )


async def test_no_body_content_in_log_records(scripted: Scripted, logs: LogCapture) -> None:
    scripted.script.respond(503, json={"errorCode": "BODY-SENTINEL-503", "errorMessage": "BODY-SENTINEL-503"})
    scripted.script.respond(json={"url": "https://example.com/BODY-SENTINEL-200"})
    scripted.script.respond(409, json={"errorCode": "BODY-SENTINEL-409", "errorMessage": "BODY-SENTINEL-409"})
    request = fota.FotaV2CallbackRegistrationRequest(url="https://example.com/REQUEST-BODY-SENTINEL")
    async with scripted.client(sleep=RecordingSleep()) as client:
        result = await client.v2.register_callback(ACCOUNT, request)
        assert result.url == "https://example.com/BODY-SENTINEL-200"
        with pytest.raises(fota.ConflictError):
            await client.v2.update_callback(ACCOUNT, request)

    assert len(logs.with_attribute("status_code", logging.DEBUG)) == 3
    assert_no_secret(logs.texts(), ["BODY-SENTINEL", "REQUEST-BODY-SENTINEL"])


async def test_nothing_is_logged_above_debug_for_a_plain_success(scripted: Scripted, logs: LogCapture) -> None:
    scripted.script.respond(json=LISTING)
    async with scripted.client() as client:
        await client.v2.list_registered_callbacks(ACCOUNT)
    assert [r.levelno for r in logs.records] == [logging.DEBUG]
