"""The exact requests on the wire for every operation, and the decoding of every documented response,
through the in-memory transport and through real HTTP (HttpxTransport -> uvicorn)."""

from __future__ import annotations

import inspect
import json
from typing import Any

import pytest

import fota_callbacks as fota
from fota_callbacks.v1 import SoftwareManagementCallbacksV1Controller
from fota_callbacks.v2 import SoftwareManagementCallbacksV2Controller
from fota_callbacks.v3 import SoftwareManagementCallbacksV3Controller
from tests.support.harness import Scripted
from tests.support.wire_cases import (
    ACCOUNT,
    BEARER,
    DEFAULT_ROOT,
    M2M,
    OPERATIONS,
    TRANSPORTS,
    WIRE_CASES,
    Op,
    Wire,
    op_by_id,
    wire_for,
)

pytestmark = pytest.mark.anyio

OUR_HEADERS = ("accept", "authorization", "vz-m2m-token", "user-agent", "content-type")


@pytest.fixture(params=TRANSPORTS)
def wire(request: pytest.FixtureRequest) -> Wire:
    return wire_for(request)


def _ids(op: Op) -> str:
    return op.id


# --- requests -------------------------------------------------------------------------------------------------


def test_the_table_covers_every_public_operation() -> None:
    """The 11 cases are the 11 operations of the three controllers, no more, no less (`ensure_callback` is
    made of them: tests/client/test_ensure.py checks the requests it sends)."""
    assert len(OPERATIONS) == 11
    assert len({op.id for op in WIRE_CASES}) == len(WIRE_CASES)
    controllers = {
        "v1": SoftwareManagementCallbacksV1Controller,
        "v2": SoftwareManagementCallbacksV2Controller,
        "v3": SoftwareManagementCallbacksV3Controller,
    }
    public = {
        (version, name)
        for version, cls in controllers.items()
        for name, member in inspect.getmembers(cls)
        if not name.startswith("_") and name != "ensure_callback" and inspect.iscoroutinefunction(member)
    }
    method_names = {
        "list": "list_registered_callbacks",
        "register": "register_callback",
        "update": "update_callback",
        "deregister": "deregister_callback",
    }
    assert public == {(op.version, method_names[op.id.split(".")[1]]) for op in OPERATIONS}


@pytest.mark.parametrize("op", WIRE_CASES, ids=_ids)
async def test_request_on_the_wire(wire: Wire, op: Op) -> None:
    wire.reply(wire.json(200, op.response))
    async with wire.client() as client:
        result = await op.run(client)

    assert result == op.expected
    [sent] = wire.sent
    assert sent.method == op.method
    assert sent.path == op.path
    assert "%" not in sent.path  # a valid account needs no escaping: the segment is the account itself
    assert sent.url == wire.root + op.path
    assert sent.query == ""
    assert sent.body == (op.body if op.body is not None else b"")

    assert sent.header("Accept") == "application/json"
    assert sent.header("Authorization") == f"Bearer {BEARER}"
    assert sent.header("VZ-M2M-Token") == M2M
    assert sent.header("User-Agent") == f"fota-callbacks-python/{fota.__version__}"
    if op.body is None:
        assert sent.header("Content-Type") is None
    else:
        assert sent.header("Content-Type") == "application/json"
        assert sent.header("Content-Length") in (None, str(len(op.body)))
    for name in OUR_HEADERS:
        assert sent.header_names.count(name) <= 1, f"{name} sent twice"
    if wire.kind == "memory":  # exactly these headers leave the SDK; httpx adds host, connection, ... after
        expected = {"accept", "authorization", "vz-m2m-token", "user-agent"}
        if op.body is not None:
            expected.add("content-type")
        assert sorted(sent.header_names) == sorted(expected)


@pytest.mark.parametrize("op", [op for op in WIRE_CASES if op.body is not None], ids=_ids)
def test_request_bodies_are_compact_json_without_nulls(op: Op) -> None:
    assert op.body is not None
    decoded = json.loads(op.body)
    assert isinstance(decoded, dict)
    assert None not in decoded.values()
    assert json.dumps(decoded, separators=(",", ":"), ensure_ascii=False).encode() == op.body


async def test_base_url_with_a_trailing_slash_keeps_the_paths(served_script: Scripted) -> None:
    served_script.script.respond(json={"url": "https://e.com/cb"})
    async with fota.FotaCallbacksClient(
        access_token=BEARER, m2m_token=M2M, base_url=served_script.base_url + "/"
    ) as client:
        assert client.base_url == served_script.base_url
        await client.v2.list_registered_callbacks(ACCOUNT)
    [received] = served_script.sent
    assert received.path == f"/api/fota/v2/callbacks/{ACCOUNT}"


async def test_base_url_with_a_path_prefix_keeps_every_path_under_it(served_script: Scripted) -> None:
    served_script.script.respond(json={"success": True})
    async with fota.FotaCallbacksClient(
        access_token=BEARER, m2m_token=M2M, base_url=served_script.base_url + "/gateway"
    ) as client:
        await client.v1.deregister_callback(ACCOUNT)
    [received] = served_script.sent
    assert received.path == f"/gateway/api/fota/v1/callbacks/{ACCOUNT}/name/Fota"


@pytest.mark.parametrize(
    ("environment", "roots"),
    [
        (None, {DEFAULT_ROOT}),
        ("production", {DEFAULT_ROOT}),
        (fota.Environment.PRODUCTION, {DEFAULT_ROOT}),
        ("staging", {"https://staging.thingspace.verizon.com"}),
        (fota.Environment.STAGING, {"https://staging.thingspace.verizon.com"}),
        ("mock", {"https://mock.thingspace.verizon.com", "https://mock-staging.thingspace.verizon.com"}),
    ],
)
async def test_environment_chooses_the_root(environment: str | None, roots: set[str]) -> None:
    urls: list[str] = []

    async def handler(request: fota.Request) -> fota.Response:
        urls.append(request.url)
        return fota.Response(200, {}, b'{"url":"https://e.com/cb"}')

    options: dict[str, Any] = {} if environment is None else {"environment": environment}
    async with fota.FotaCallbacksClient(
        access_token=BEARER, m2m_token=M2M, transport=fota.InMemoryTransport(handler), **options
    ) as client:
        await client.v3.list_registered_callbacks(ACCOUNT)
    [url] = urls
    assert url in {root + f"/api/fota/v3/callbacks/{ACCOUNT}" for root in roots}


# --- responses ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("op", OPERATIONS, ids=_ids)
async def test_with_raw_response(wire: Wire, op: Op) -> None:
    wire.reply(wire.json(200, op.response, {"x-request-id": f"req-{op.id}"}))
    async with wire.client() as client:
        raw = await op.run_raw(client)

    assert isinstance(raw, fota.ApiResponse)
    assert raw.status_code == 200
    assert raw.data == op.expected
    assert raw.request_id == f"req-{op.id}"
    assert raw.retries_taken == 0
    assert raw.headers["content-type"] == "application/json"
    assert raw.headers["X-Request-ID"] == f"req-{op.id}"  # case-insensitive
    assert len(wire.sent) == 1


async def test_request_id_is_none_without_the_header(wire: Wire) -> None:
    wire.reply(wire.json(200, b'{"success":true}'))
    async with wire.client() as client:
        raw = await client.v2.with_raw_response.deregister_callback(ACCOUNT)
    assert raw.request_id is None
    assert raw.data == fota.FotaV2SuccessResult(success=True)


@pytest.mark.parametrize("body", [b"", b" \r\n\t", b"[]"], ids=["empty", "whitespace", "empty-array"])
async def test_v1_list_with_no_callbacks_is_an_empty_list(wire: Wire, body: bytes) -> None:
    wire.reply(wire.json(200, body))
    async with wire.client() as client:
        assert await client.v1.list_registered_callbacks(ACCOUNT) == []


async def test_v1_list_with_several_callbacks(wire: Wire) -> None:
    body = (
        b'[{"aname":"0000123456-00001","name":"Fota","url":"https://a.example/cb","username":"u","password":"p"},'
        b'{"name":"Fota","url":"http://b.example/cb"}]'
    )
    wire.reply(wire.json(200, body))
    async with wire.client() as client:
        result = await client.v1.list_registered_callbacks(ACCOUNT)
    assert result == [
        fota.RegisteredCallbacks(
            aname="0000123456-00001", name="Fota", url="https://a.example/cb", username="u", password="p"
        ),
        fota.RegisteredCallbacks(name="Fota", url="http://b.example/cb"),
    ]
    assert result[1].aname is None
    assert result[1].password is None


UNKNOWN_KEYS = {
    "v1.list": (
        b'[{"aname":"0000123456-00001","name":"Fota","url":"https://a/cb","status":"active","extra":{"x":[1,null]}}]',
        [fota.RegisteredCallbacks(aname="0000123456-00001", name="Fota", url="https://a/cb")],
    ),
    "v1.register": (
        b'{"accountName":"0000123456-00001","serviceName":"Fota","createdAt":"2024-01-01","nested":{"a":1}}',
        fota.FotaV1CallbackRegistrationResult(account_name="0000123456-00001", service_name="Fota"),
    ),
    "v1.deregister": (b'{"success":true,"message":"ok","code":0}', fota.FotaV1SuccessResult(success=True)),
    "v2.list": (b'{"url":"https://a/cb","accountName":"x","items":[]}', fota.CallbackSummary(url="https://a/cb")),
    "v2.update": (
        b'{"url":"https://a/cb","updated":true}',
        fota.FotaV2CallbackRegistrationResult(url="https://a/cb"),
    ),
    "v2.register": (b'{"id":7,"url":"https://a/cb"}', fota.FotaV2CallbackRegistrationResult(url="https://a/cb")),
    "v2.deregister": (b'{"success":true,"url":null}', fota.FotaV2SuccessResult(success=True)),
    "v3.list": (b'{"url":"https://a/cb","Url":"other"}', fota.FotaV3CallbackSummary(url="https://a/cb")),
    "v3.update": (b'{"url":"https://a/cb","x":{}}', fota.FotaV3CallbackRegistrationResult(url="https://a/cb")),
    "v3.register": (b'{"url":"https://a/cb","x":[]}', fota.FotaV3CallbackRegistrationResult(url="https://a/cb")),
    "v3.deregister": (b'{"success":true,"extra":"x"}', fota.FotaV3SuccessResult(success=True)),
}


@pytest.mark.parametrize(("op_id", "case"), UNKNOWN_KEYS.items(), ids=list(UNKNOWN_KEYS))
async def test_unknown_keys_are_ignored(wire: Wire, op_id: str, case: tuple[bytes, object]) -> None:
    body, expected = case
    wire.reply(wire.json(200, body))
    async with wire.client() as client:
        assert await op_by_id(op_id).run(client) == expected


FALSY = {
    "v1.list": (
        b'[{"aname":"","name":"","url":"","username":"","password":""}]',
        [fota.RegisteredCallbacks(aname="", name="", url="", username="", password="")],
    ),
    "v1.register": (
        b'{"accountName":"","serviceName":""}',
        fota.FotaV1CallbackRegistrationResult(account_name="", service_name=""),
    ),
    "v1.deregister": (b'{"success":false}', fota.FotaV1SuccessResult(success=False)),
    "v2.list": (b'{"url":""}', fota.CallbackSummary(url="")),
    "v2.update": (b'{"url":""}', fota.FotaV2CallbackRegistrationResult(url="")),
    "v2.register": (b'{"url":""}', fota.FotaV2CallbackRegistrationResult(url="")),
    "v2.deregister": (b'{"success":false}', fota.FotaV2SuccessResult(success=False)),
    "v3.list": (b'{"url":""}', fota.FotaV3CallbackSummary(url="")),
    "v3.update": (b'{"url":""}', fota.FotaV3CallbackRegistrationResult(url="")),
    "v3.register": (b'{"url":""}', fota.FotaV3CallbackRegistrationResult(url="")),
    "v3.deregister": (b'{"success":false}', fota.FotaV3SuccessResult(success=False)),
}


@pytest.mark.parametrize(("op_id", "case"), FALSY.items(), ids=list(FALSY))
async def test_false_and_empty_strings_are_kept(wire: Wire, op_id: str, case: tuple[bytes, object]) -> None:
    """The generated SDKs read `""` and `false` as absent; here they stay what the server sent."""
    body, expected = case
    wire.reply(wire.json(200, body))
    async with wire.client() as client:
        result = await op_by_id(op_id).run(client)
    assert result == expected
    if op_id.endswith(".deregister"):
        assert result.success is False
    elif op_id == "v1.list":
        assert result[0].url == ""
    elif op_id == "v1.register":
        assert result.account_name == ""
    else:
        assert result.url == ""


@pytest.mark.parametrize(
    ("op_id", "body", "expected"),
    [
        ("v1.list", b'[{"aname":null,"name":null,"url":null}]', [fota.RegisteredCallbacks()]),
        ("v1.register", b"{}", fota.FotaV1CallbackRegistrationResult()),
        ("v1.deregister", b"{}", fota.FotaV1SuccessResult()),
        ("v1.deregister", b'{"success":null}', fota.FotaV1SuccessResult(success=None)),
        ("v2.list", b"{}", fota.CallbackSummary()),
        ("v2.register", b'{"url":null}', fota.FotaV2CallbackRegistrationResult(url=None)),
        ("v3.list", b"{}", fota.FotaV3CallbackSummary(url=None)),
        ("v3.update", b'{"url":null}', fota.FotaV3CallbackRegistrationResult()),
    ],
)
async def test_absent_or_null_optional_fields_are_none(wire: Wire, op_id: str, body: bytes, expected: object) -> None:
    wire.reply(wire.json(200, body))
    async with wire.client() as client:
        assert await op_by_id(op_id).run(client) == expected


async def test_a_2xx_other_than_200_is_a_success(wire: Wire) -> None:
    wire.reply(wire.json(201, b'{"url":"https://a/cb"}'))
    async with wire.client() as client:
        raw = await client.v2.with_raw_response.register_callback(
            ACCOUNT, fota.FotaV2CallbackRegistrationRequest(url="https://a/cb")
        )
    assert raw.status_code == 201
    assert raw.data == fota.FotaV2CallbackRegistrationResult(url="https://a/cb")


async def test_one_client_serves_many_calls_in_turn(wire: Wire) -> None:
    wire.reply(*(wire.json(200, op.response) for op in OPERATIONS))
    async with wire.client() as client:
        results = [await op.run(client) for op in OPERATIONS]
    assert results == [op.expected for op in OPERATIONS]
    assert [(s.method, s.path) for s in wire.sent] == [(op.method, op.path) for op in OPERATIONS]
