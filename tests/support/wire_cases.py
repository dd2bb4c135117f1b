"""Shared test data for the wire tests: every operation with the exact request it must send and the documented
example response it decodes, and `Wire`, which records what reaches the server through either transport.

`Wire` is a view of a `tests.support.harness.Scripted` (a `ScriptedTransport` script) of either kind:
- "memory": in-process, at the SDK's default root (https://thingspace.verizon.com);
- "http": the script served by uvicorn on 127.0.0.1, reached through an owned `HttpxTransport`; what the server
  received (raw path, headers as they arrived, body) is recorded.
A request that nothing was queued for fails the test (`UnscriptedRequestError`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import pytest

import fota_callbacks as fota
from tests.support.harness import Scripted, Sent, json_response

__all__ = [
    "ACCOUNT",
    "BEARER",
    "DEFAULT_ROOT",
    "M2M",
    "OPERATIONS",
    "OTHER_ACCOUNT",
    "TRANSPORTS",
    "WIRE_CASES",
    "Op",
    "Sent",
    "Wire",
    "op_by_id",
    "wire_for",
]

ACCOUNT = "0000123456-00001"
OTHER_ACCOUNT = "0242078689-00001"
BEARER = "bearer-TOKEN-SECRET-7f3a9c"
M2M = "m2m-SESSION-SECRET-91c2d4"
DEFAULT_ROOT = "https://thingspace.verizon.com"
TRANSPORTS = ("memory", "http")


class Wire:
    """Make clients for one transport kind, queue responses, and see what was sent."""

    def __init__(self, kind: str, served: Scripted | None = None) -> None:
        assert (kind == "http") == (served is not None)
        self.kind = kind
        self.scripted = served if served is not None else Scripted("memory")

    @property
    def root(self) -> str:
        return self.scripted.base_url

    def client(self, **options: Any) -> fota.FotaCallbacksClient:
        """A client with static tokens `BEARER`/`M2M` (unless given) on this wire."""
        options.setdefault("access_token", BEARER)
        options.setdefault("m2m_token", M2M)
        return self.scripted.client(**options)

    def reply(self, *responses: fota.Response) -> None:
        for response in responses:
            self.scripted.script.add(response)

    json = staticmethod(json_response)

    @property
    def sent(self) -> list[Sent]:
        return self.scripted.sent


def wire_for(request: pytest.FixtureRequest) -> Wire:
    """For a fixture parametrised over `TRANSPORTS`."""
    kind = request.param
    assert kind in TRANSPORTS
    return Wire(kind, request.getfixturevalue("served_script") if kind == "http" else None)


# --- the documented example responses (verbatim from ../shared/api-docs and wire.md) -----------------------------

V1_LIST_EXAMPLE = b"""[
  {
    "aname": "0252012345-00001",
    "name": "Fota",
    "url": "http://10.120.102.183:50559/CallbackListener/FirmwareServiceMessages.asmx"
  }
]"""
V1_REGISTER_EXAMPLE = b"""{
  "accountName": "0204563412-00001",
  "serviceName": "Fota"
}"""
SUCCESS_EXAMPLE = b"""{
  "success": true
}"""
LIST_URL = "http://10.120.102.183:50559/CallbackListener/FirmwareServiceMessages.asmx"
REGISTER_URL = "https://10.120.102.183:50559/CallbackListener/FirmwareServiceMessages.asmx"
UPDATE_URL = "https://255.255.11.135:50559/CallbackListener/FirmwareServiceMessages.asmx"


def _url_example(url: str) -> bytes:
    return b'{\n  "url": "' + url.encode() + b'"\n}'


@attrs.frozen
class Op:
    """One operation: how to call it, the exact request it must send, and a documented 2xx answer."""

    id: str
    version: str  # "v1" | "v2" | "v3": the client attribute
    call: Callable[[Any], Awaitable[Any]]  # given `client.vN` or `client.vN.with_raw_response`
    method: str
    path: str
    body: bytes | None  # the exact request body; None: the request has none
    response: bytes
    expected: object

    def run(self, client: fota.FotaCallbacksClient) -> Awaitable[Any]:
        return self.call(getattr(client, self.version))

    def run_raw(self, client: fota.FotaCallbacksClient) -> Awaitable[fota.ApiResponse[Any]]:
        return self.call(getattr(client, self.version).with_raw_response)

    def __str__(self) -> str:
        return self.id


def _v1_register(url: str) -> fota.FotaV1CallbackRegistrationRequest:
    return fota.FotaV1CallbackRegistrationRequest(name=fota.CallbackService.FOTA, url=url)


def _url_ops(version: str) -> list[Op]:
    """The four operations of V2 or V3 (same shape, their own models and base path)."""
    v2 = version == "v2"
    request = fota.FotaV2CallbackRegistrationRequest if v2 else fota.FotaV3CallbackRegistrationRequest
    summary = fota.CallbackSummary if v2 else fota.FotaV3CallbackSummary
    result = fota.FotaV2CallbackRegistrationResult if v2 else fota.FotaV3CallbackRegistrationResult
    success = fota.FotaV2SuccessResult if v2 else fota.FotaV3SuccessResult
    path = f"/api/fota/{version}/callbacks/{ACCOUNT}"
    return [
        Op(
            f"{version}.list",
            version,
            lambda api: api.list_registered_callbacks(ACCOUNT),
            "GET",
            path,
            None,
            _url_example(LIST_URL),
            summary(url=LIST_URL),
        ),
        Op(
            f"{version}.update",
            version,
            lambda api: api.update_callback(ACCOUNT, request(url=UPDATE_URL)),
            "PUT",
            path,
            b'{"url":"' + UPDATE_URL.encode() + b'"}',
            _url_example(UPDATE_URL),
            result(url=UPDATE_URL),
        ),
        Op(
            f"{version}.register",
            version,
            lambda api: api.register_callback(ACCOUNT, request(url=REGISTER_URL)),
            "POST",
            path,
            b'{"url":"' + REGISTER_URL.encode() + b'"}',
            _url_example(REGISTER_URL),
            result(url=REGISTER_URL),
        ),
        Op(
            f"{version}.deregister",
            version,
            lambda api: api.deregister_callback(ACCOUNT),
            "DELETE",
            path,
            None,
            SUCCESS_EXAMPLE,
            success(success=True),
        ),
    ]


OPERATIONS: list[Op] = [
    Op(
        "v1.list",
        "v1",
        lambda api: api.list_registered_callbacks(ACCOUNT),
        "GET",
        f"/api/fota/v1/callbacks/{ACCOUNT}",
        None,
        V1_LIST_EXAMPLE,
        [fota.RegisteredCallbacks(aname="0252012345-00001", name="Fota", url=LIST_URL)],
    ),
    Op(
        "v1.register",
        "v1",
        lambda api: api.register_callback(ACCOUNT, _v1_register(REGISTER_URL)),
        "POST",
        f"/api/fota/v1/callbacks/{ACCOUNT}",
        b'{"name":"Fota","url":"' + REGISTER_URL.encode() + b'"}',
        V1_REGISTER_EXAMPLE,
        fota.FotaV1CallbackRegistrationResult(account_name="0204563412-00001", service_name="Fota"),
    ),
    Op(
        "v1.deregister",
        "v1",
        lambda api: api.deregister_callback(ACCOUNT),
        "DELETE",
        f"/api/fota/v1/callbacks/{ACCOUNT}/name/Fota",
        None,
        SUCCESS_EXAMPLE,
        fota.FotaV1SuccessResult(success=True),
    ),
    *_url_ops("v2"),
    *_url_ops("v3"),
]
"""The 11 operations, one case each."""

VARIANTS: list[Op] = [
    Op(
        "v1.register.credentials-http",
        "v1",
        lambda api: api.register_callback(
            OTHER_ACCOUNT,
            fota.FotaV1CallbackRegistrationRequest(
                name=fota.CallbackService.FOTA, url=LIST_URL, username="listener", password="hunter2"
            ),
        ),
        "POST",
        f"/api/fota/v1/callbacks/{OTHER_ACCOUNT}",
        b'{"name":"Fota","url":"' + LIST_URL.encode() + b'","username":"listener","password":"hunter2"}',
        V1_REGISTER_EXAMPLE,
        fota.FotaV1CallbackRegistrationResult(account_name="0204563412-00001", service_name="Fota"),
    ),
    Op(
        "v1.register.username-only",
        "v1",
        lambda api: api.register_callback(
            ACCOUNT,
            fota.FotaV1CallbackRegistrationRequest(name=fota.CallbackService.FOTA, url=REGISTER_URL, username="u"),
        ),
        "POST",
        f"/api/fota/v1/callbacks/{ACCOUNT}",
        b'{"name":"Fota","url":"' + REGISTER_URL.encode() + b'","username":"u"}',
        b'{"accountName":"0000123456-00001"}',
        fota.FotaV1CallbackRegistrationResult(account_name="0000123456-00001"),
    ),
    Op(
        "v1.register.empty-password-kept",
        "v1",
        lambda api: api.register_callback(
            ACCOUNT,
            fota.FotaV1CallbackRegistrationRequest(
                name=fota.CallbackService.FOTA, url=REGISTER_URL, username="", password=""
            ),
        ),
        "POST",
        f"/api/fota/v1/callbacks/{ACCOUNT}",
        b'{"name":"Fota","url":"' + REGISTER_URL.encode() + b'","username":"","password":""}',
        V1_REGISTER_EXAMPLE,
        fota.FotaV1CallbackRegistrationResult(account_name="0204563412-00001", service_name="Fota"),
    ),
    Op(
        "v1.deregister.explicit-service",
        "v1",
        lambda api: api.deregister_callback(OTHER_ACCOUNT, fota.CallbackService.FOTA),
        "DELETE",
        f"/api/fota/v1/callbacks/{OTHER_ACCOUNT}/name/Fota",
        None,
        SUCCESS_EXAMPLE,
        fota.FotaV1SuccessResult(success=True),
    ),
    Op(
        "v1.deregister.service-as-str",
        "v1",
        lambda api: api.deregister_callback(ACCOUNT, "Fota"),
        "DELETE",
        f"/api/fota/v1/callbacks/{ACCOUNT}/name/Fota",
        None,
        SUCCESS_EXAMPLE,
        fota.FotaV1SuccessResult(success=True),
    ),
    Op(
        "v3.register.other-account",
        "v3",
        lambda api: api.register_callback(
            OTHER_ACCOUNT, fota.FotaV3CallbackRegistrationRequest(url="https://listener.example.com/fota")
        ),
        "POST",
        f"/api/fota/v3/callbacks/{OTHER_ACCOUNT}",
        b'{"url":"https://listener.example.com/fota"}',
        b'{"url":"https://listener.example.com/fota"}',
        fota.FotaV3CallbackRegistrationResult(url="https://listener.example.com/fota"),
    ),
]
"""More cases: optional fields, a second account, the V1 service given explicitly."""

WIRE_CASES: list[Op] = OPERATIONS + VARIANTS


def op_by_id(op_id: str) -> Op:
    [op] = [op for op in WIRE_CASES if op.id == op_id]
    return op
