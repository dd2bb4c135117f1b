"""Nothing registered: Verizon documents a 200 with an EMPTY body for V1 and V3 list ("The response body will be
empty if there are no callback services registered with the account"); V2 is taken to behave the same.

Every transport reads it as nothing registered (V1 `[]`, V2/V3 a summary with `url=None`), in the models and in
`with_raw_response`, and `ensure_callback` then registers. FakeThingSpace answers it byte for byte, in-process
and over HTTP.
"""

from __future__ import annotations

from typing import Any, Literal

import httpx
import pytest

import fota_callbacks as fota
from fota_callbacks.testing import FakeThingSpace, serve
from tests.support.harness import Scripted, json_response
from tests.support.wire_cases import ACCOUNT

pytestmark = pytest.mark.anyio

URL = "https://listener.example.com/fota"
NOTHING: dict[str, Any] = {"v1": [], "v2": fota.CallbackSummary(url=None), "v3": fota.FotaV3CallbackSummary(url=None)}
REQUESTS: dict[str, Any] = {"v2": fota.FotaV2CallbackRegistrationRequest, "v3": fota.FotaV3CallbackRegistrationRequest}
EMPTY_BODIES = {
    "empty": fota.Response(200, {}, b""),
    "empty-json": fota.Response(200, {"content-type": "application/json"}, b""),
    "whitespace": fota.Response(200, {"content-type": "application/json"}, b" \r\n\t "),
}


def path_of(version: str) -> str:
    return f"/api/fota/{version}/callbacks/{ACCOUNT}"


@pytest.mark.parametrize("version", ["v1", "v2", "v3"])
@pytest.mark.parametrize("answer", EMPTY_BODIES.values(), ids=list(EMPTY_BODIES))
async def test_an_empty_list_body_is_nothing_registered(
    kind: str, version: str, answer: fota.Response, served_script: Scripted
) -> None:
    served_script.script.add(answer, times=2)
    async with served_script.client(kind) as client:
        controller = getattr(client, version)
        listed = await controller.list_registered_callbacks(ACCOUNT)
        raw = await controller.with_raw_response.list_registered_callbacks(ACCOUNT)
    assert listed == NOTHING[version]
    assert (raw.status_code, raw.data, raw.retries_taken) == (200, NOTHING[version], 0)
    assert [(sent.method, sent.path, sent.body) for sent in served_script.sent] == [("GET", path_of(version), b"")] * 2


@pytest.mark.parametrize("version", ["v2", "v3"])
async def test_an_empty_object_still_means_nothing_registered(kind: str, version: str, served_script: Scripted) -> None:
    served_script.script.add(json_response(200, b"{}"))
    async with served_script.client(kind) as client:
        assert await getattr(client, version).list_registered_callbacks(ACCOUNT) == NOTHING[version]


@pytest.mark.parametrize("version", ["v2", "v3"])
async def test_ensure_registers_after_an_empty_list_body(kind: str, version: str, served_script: Scripted) -> None:
    served_script.script.add(fota.Response(200, {}, b""))
    served_script.script.add(json_response(200, {"url": URL}))
    async with served_script.client(kind) as client:
        result = await getattr(client, version).ensure_callback(ACCOUNT, REQUESTS[version](url=URL))
    assert result == fota.EnsureResult("registered", URL)
    sent = [(request.method, request.path, request.body) for request in served_script.sent]
    assert sent == [("GET", path_of(version), b""), ("POST", path_of(version), b'{"url":"' + URL.encode() + b'"}')]


async def test_v1_ensure_registers_after_an_empty_list_body(kind: str, served_script: Scripted) -> None:
    served_script.script.add(fota.Response(200, {}, b""))
    served_script.script.add(json_response(200, {"accountName": ACCOUNT, "serviceName": "Fota"}))
    body = fota.FotaV1CallbackRegistrationRequest(name=fota.CallbackService.FOTA, url=URL)
    async with served_script.client(kind) as client:
        assert await client.v1.ensure_callback(ACCOUNT, body) == fota.EnsureResult("registered", URL)
    assert [(request.method, request.path) for request in served_script.sent] == [
        ("GET", path_of("v1")),
        ("POST", path_of("v1")),
    ]


# --- the fake answers as ThingSpace documents -----------------------------------------------------------------


@pytest.mark.parametrize("version", ["v1", "v2", "v3"])
async def test_the_fake_answers_an_empty_body_when_nothing_is_registered(version: str) -> None:
    fake = FakeThingSpace()
    token, session = fake.issue_tokens()
    headers = {"Authorization": f"Bearer {token}", "VZ-M2M-Token": session, "Accept": "application/json"}
    with serve(fake) as base_url:
        async with httpx.AsyncClient(base_url=base_url) as http:
            answer = await http.get(path_of(version), headers=headers)
    assert (answer.status_code, answer.content) == (200, b"")


@pytest.mark.parametrize("version", ["v2", "v3"])
async def test_a_lifecycle_over_http_reads_the_fakes_empty_body(version: Literal["v2", "v3"]) -> None:
    fake = FakeThingSpace()
    with serve(fake) as base_url:
        async with fota.FotaCallbacksClient(
            base_url=base_url, client_id="id", client_secret="secret", username="user", password="password"
        ) as client:
            controller = getattr(client, version)
            raw = await controller.with_raw_response.list_registered_callbacks(ACCOUNT)
            registered = await controller.ensure_callback(ACCOUNT, REQUESTS[version](url=URL))
            listed = await controller.list_registered_callbacks(ACCOUNT)
            await controller.deregister_callback(ACCOUNT)
            after = await controller.list_registered_callbacks(ACCOUNT)
    assert (raw.status_code, raw.data) == (200, NOTHING[version])
    assert registered == fota.EnsureResult("registered", URL)
    assert (listed.url, after) == (URL, NOTHING[version])
    assert getattr(fake.callbacks(ACCOUNT), version) is None
    operations = [record.operation for record in fake.requests_for(version)]
    assert operations == [
        "list_registered_callbacks",
        "list_registered_callbacks",
        "register_callback",
        "list_registered_callbacks",
        "deregister_callback",
        "list_registered_callbacks",
    ]
