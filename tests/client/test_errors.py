"""Non-2xx responses become the documented error classes; malformed 2xx bodies become ResponseValidationError.
Every case runs through the in-memory transport and through real HTTP."""

from __future__ import annotations

import json

import pytest

import fota_callbacks as fota
from fota_callbacks.transport import Headers
from tests.support.wire_cases import ACCOUNT, BEARER, M2M, OPERATIONS, TRANSPORTS, Op, Wire, op_by_id, wire_for

pytestmark = pytest.mark.anyio

RESULT_EXCEPTIONS: dict[str, type[fota.FotaResultException]] = {
    "v1": fota.FotaV1ResultException,
    "v2": fota.FotaV2ResultException,
    "v3": fota.FotaV3ResultException,
}
ONE_OP_PER_VERSION = [op_by_id("v1.register"), op_by_id("v2.list"), op_by_id("v3.deregister")]


@pytest.fixture(params=TRANSPORTS)
def wire(request: pytest.FixtureRequest) -> Wire:
    return wire_for(request)


def _ids(op: Op) -> str:
    return op.id


def assert_no_secrets(exc: BaseException) -> None:
    for text in (str(exc), repr(exc), *map(str, exc.args)):
        assert BEARER not in text
        assert M2M not in text


def assert_carries(exc: fota.ApiError, status: int, body: bytes, request_id: str | None = "req-err") -> None:
    assert exc.status_code == status
    assert exc.body == body
    assert exc.request_id == request_id
    assert isinstance(exc.headers, Headers)
    assert exc.headers.get("x-request-id") == request_id
    assert exc.headers["content-type"] in ("application/json", "text/html")
    assert f"HTTP {status}" in str(exc)
    assert_no_secrets(exc)


# --- 400: the per-version result exception --------------------------------------------------------------------


@pytest.mark.parametrize("op", OPERATIONS, ids=_ids)
async def test_400_with_the_documented_body(wire: Wire, op: Op) -> None:
    body = b'{"errorCode":"InvalidAccount","errorMessage":"Account 0000123456-00001 is not valid"}'
    wire.reply(wire.json(400, body, {"x-request-id": "req-err"}))
    async with wire.client() as client:
        with pytest.raises(RESULT_EXCEPTIONS[op.version]) as info:
            await op.run(client)

    exc = info.value
    assert type(exc) is RESULT_EXCEPTIONS[op.version]
    assert isinstance(exc, fota.FotaResultException)
    assert isinstance(exc, fota.BadRequestError)
    assert isinstance(exc, fota.ApiError)
    assert isinstance(exc, fota.FotaError)
    assert exc.error_code == "InvalidAccount"
    assert exc.error_message == "Account 0000123456-00001 is not valid"
    assert "InvalidAccount" in str(exc)
    assert_carries(exc, 400, body)
    assert exc.json() == {"errorCode": "InvalidAccount", "errorMessage": "Account 0000123456-00001 is not valid"}
    assert len(wire.sent) == 1  # a 400 is never retried


UNDOCUMENTED_400_BODIES = {
    "empty": (b"", "application/json"),
    "html": (b"<html><body>Bad Request</body></html>", "text/html"),
    "truncated-json": (b'{"errorCode":"X"', "application/json"),
    "other-shape": (b'{"error":"invalid_request","message":"nope"}', "application/json"),
    "array": (b'[{"errorCode":"X","errorMessage":"Y"}]', "application/json"),
    "string": (b'"errorCode"', "application/json"),
    "wrong-types": (b'{"errorCode":5,"errorMessage":null}', "application/json"),
    "deeply-nested": (b"[" * 20_000, "application/json"),
    "not-utf8": (b"\xff\xfe\x00{", "application/json"),
}


@pytest.mark.parametrize(
    ("op_id", "body", "content_type"),
    [  # each body on one of the three versions in turn
        (("v1.register", "v2.list", "v3.deregister")[i % 3], body, content_type)
        for i, (body, content_type) in enumerate(UNDOCUMENTED_400_BODIES.values())
    ],
    ids=list(UNDOCUMENTED_400_BODIES),
)
async def test_400_with_another_body_is_the_same_exception(
    wire: Wire, op_id: str, body: bytes, content_type: str
) -> None:
    op = op_by_id(op_id)
    wire.reply(fota.Response(400, {"content-type": content_type, "x-request-id": "req-err"}, body))
    async with wire.client() as client:
        with pytest.raises(RESULT_EXCEPTIONS[op.version]) as info:
            await op.run(client)
    exc = info.value
    assert exc.error_code is None
    assert exc.error_message is None
    assert_carries(exc, 400, body)


async def test_400_with_only_an_error_code(wire: Wire) -> None:
    wire.reply(wire.json(400, b'{"errorCode":"E1"}', {"x-request-id": "req-err"}))
    async with wire.client() as client:
        with pytest.raises(fota.FotaV2ResultException) as info:
            await client.v2.deregister_callback(ACCOUNT)
    assert (info.value.error_code, info.value.error_message) == ("E1", None)


# --- every other status -----------------------------------------------------------------------------------------

STATUSES: list[tuple[int, type[fota.ApiError]]] = [
    (401, fota.AuthenticationError),
    (403, fota.PermissionDeniedError),
    (404, fota.NotFoundError),
    (409, fota.ConflictError),
    (418, fota.ApiError),
    (422, fota.ApiError),
    (429, fota.RateLimitError),
    (500, fota.ServerError),
    (501, fota.ServerError),
    (503, fota.ServerError),
]


@pytest.mark.parametrize(("status", "error"), STATUSES, ids=[str(status) for status, _ in STATUSES])
@pytest.mark.parametrize("op", ONE_OP_PER_VERSION, ids=_ids)
async def test_status_maps_to_its_error_class(wire: Wire, op: Op, status: int, error: type[fota.ApiError]) -> None:
    body = b'{"errorCode":"E","errorMessage":"M"}'
    wire.reply(wire.json(status, body, {"x-request-id": "req-err"}))
    async with wire.client(max_retries=0) as client:
        with pytest.raises(fota.ApiError) as info:
            await op.run(client)

    exc = info.value
    assert type(exc) is error
    assert not isinstance(exc, fota.BadRequestError)  # a 400-only class never stands for another status
    assert isinstance(exc, fota.FotaError)
    assert_carries(exc, status, body)
    assert exc.json() == {"errorCode": "E", "errorMessage": "M"}
    assert exc.retries_taken == 0
    assert len(wire.sent) == 1


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, fota.AuthenticationError),
        (403, fota.PermissionDeniedError),
        (404, fota.NotFoundError),
        (409, fota.ConflictError),
        (418, fota.ApiError),
    ],
)
async def test_non_retryable_statuses_are_raised_after_one_request_with_default_retries(
    wire: Wire, status: int, error: type[fota.ApiError]
) -> None:
    """With static tokens a 401 is final, and other 4xx are never retried."""
    wire.reply(*(wire.json(status, b"{}") for _ in range(3)))
    async with wire.client() as client:
        assert client.max_retries == 2
        with pytest.raises(error) as info:
            await client.v1.list_registered_callbacks(ACCOUNT)
    assert info.value.status_code == status
    assert info.value.retries_taken == 0
    assert len(wire.sent) == 1


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [("7", 7.0), ("0", 0.0), ("1.5", 1.5), (None, None), ("soon", None)],
)
async def test_429_carries_retry_after(wire: Wire, retry_after: str | None, expected: float | None) -> None:
    headers = (
        {"x-request-id": "req-err"} if retry_after is None else {"x-request-id": "req-err", "Retry-After": retry_after}
    )
    wire.reply(wire.json(429, b'{"errorCode":"TooMany"}', headers))
    async with wire.client(max_retries=0) as client:
        with pytest.raises(fota.RateLimitError) as info:
            await client.v3.list_registered_callbacks(ACCOUNT)
    exc = info.value
    assert exc.retry_after == expected
    assert_carries(exc, 429, b'{"errorCode":"TooMany"}')
    assert len(wire.sent) == 1


async def test_429_with_an_http_date_retry_after(wire: Wire) -> None:
    wire.reply(wire.json(429, b"", {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}))
    async with wire.client(max_retries=0) as client:
        with pytest.raises(fota.RateLimitError) as info:
            await client.v2.list_registered_callbacks(ACCOUNT)
    assert info.value.retry_after == 0.0  # a date in the past: no wait
    assert info.value.request_id is None


async def test_error_without_request_id(wire: Wire) -> None:
    wire.reply(wire.json(404, b""))
    async with wire.client() as client:
        with pytest.raises(fota.NotFoundError) as info:
            await client.v2.list_registered_callbacks(ACCOUNT)
    assert info.value.request_id is None
    assert info.value.body == b""
    assert info.value.json() is None


async def test_error_messages_never_contain_the_tokens_even_when_the_server_echoes_them(wire: Wire) -> None:
    """The server's body is kept in `.body`; the message shows the status, method and path."""
    body = json.dumps({"errorCode": "Denied", "errorMessage": "denied"}).encode()
    wire.reply(wire.json(403, body, {"x-request-id": "req-err"}))
    async with wire.client() as client:
        with pytest.raises(fota.PermissionDeniedError) as info:
            await client.v1.deregister_callback(ACCOUNT)
    exc = info.value
    assert_no_secrets(exc)
    assert f"/api/fota/v1/callbacks/{ACCOUNT}/name/Fota" in str(exc)
    assert "DELETE" in str(exc)


# --- malformed 2xx bodies ---------------------------------------------------------------------------------------

MALFORMED: dict[str, tuple[str, bytes, str]] = {
    # id: (operation, body, a fragment of one of `.errors`: where it failed)
    "not-json": ("v2.list", b"Service Unavailable", "$"),
    "html": ("v3.register", b"<html><body>OK</body></html>", "$"),
    "truncated": ("v2.list", b'{"url":"https://a/cb"', "$"),
    "empty-body": ("v3.register", b"", "$"),  # only a list's empty body has a meaning (nothing registered)
    "not-utf8": ("v2.update", b'{"url":"\xff"}', "$"),
    "array-for-object": ("v2.list", b'[{"url":"https://a/cb"}]', "$"),
    "string-for-object": ("v1.register", b'"0000123456-00001"', "$"),
    "null-for-object": ("v3.deregister", b"null", "$"),
    "null-for-array": ("v1.list", b"null", "$"),
    "number-for-array": ("v1.list", b"5", "$"),
    "url-int": ("v2.list", b'{"url": 5}', "$.url"),
    "url-bool": ("v3.update", b'{"url": true}', "$.url"),
    "url-object": ("v2.register", b'{"url": {"href": "https://a/cb"}}', "$.url"),
    "success-str": ("v2.deregister", b'{"success": "true"}', "$.success"),
    "success-int": ("v3.deregister", b'{"success": 1}', "$.success"),
    "v1-success-str": ("v1.deregister", b'{"success": "true"}', "$.success"),
    "v2-success-missing": ("v2.deregister", b"{}", "$.success"),
    "v3-success-missing": ("v3.deregister", b'{"url":"x"}', "$.success"),
    "v3-success-null": ("v3.deregister", b'{"success": null}', "$.success"),
    "v1-item-url-int": ("v1.list", b'[{"url": "https://a/cb"}, {"url": 5}]', "$[1].url"),
    "v1-item-not-object": ("v1.list", b'[{"url": "https://a/cb"}, 7]', "$[1]"),
    "deeply-nested": ("v2.list", b"[" * 100_000, "$"),
    "deeply-nested-v1": ("v1.list", b"[" * 100_000, "$"),
    "deeply-nested-valid": ("v3.list", b"[" * 500 + b"]" * 500, "$"),
}


@pytest.mark.parametrize(("op_id", "body", "where"), MALFORMED.values(), ids=list(MALFORMED))
async def test_malformed_2xx_body_is_a_response_validation_error(
    wire: Wire, op_id: str, body: bytes, where: str
) -> None:
    wire.reply(wire.json(200, body))
    async with wire.client() as client:
        with pytest.raises(fota.ResponseValidationError) as info:
            await op_by_id(op_id).run(client)

    exc = info.value
    assert type(exc) is fota.ResponseValidationError
    assert isinstance(exc, fota.FotaError)
    assert exc.status_code == 200
    assert exc.body == body
    assert exc.errors
    assert all(isinstance(error, str) for error in exc.errors)
    assert any(error.endswith(f"@ {where}") for error in exc.errors), exc.errors
    assert "HTTP 200" in str(exc)
    assert len(str(exc)) < 2_000  # the body is not copied into the message
    assert_no_secrets(exc)


async def test_response_validation_error_from_the_raw_response_too(wire: Wire) -> None:
    wire.reply(wire.json(200, b'{"url": 5}'))
    async with wire.client() as client:
        with pytest.raises(fota.ResponseValidationError) as info:
            await client.v3.with_raw_response.list_registered_callbacks(ACCOUNT)
    assert any("$.url" in error for error in info.value.errors)


@pytest.mark.parametrize(
    "body",
    [b"{}", b'""', b'{"aname":"0000123456-00001","url":"https://a/cb"}', b'"ab"'],
    ids=["{}", '""', "object", "str"],
)
async def test_v1_list_rejects_a_body_that_is_not_an_array(body: bytes) -> None:
    async def handler(request: fota.Request) -> fota.Response:
        return fota.Response(200, {"content-type": "application/json"}, body)

    async with fota.FotaCallbacksClient(
        access_token=BEARER, m2m_token=M2M, transport=fota.InMemoryTransport(handler)
    ) as client:
        with pytest.raises(fota.ResponseValidationError) as info:
            await client.v1.list_registered_callbacks(ACCOUNT)
    assert any(error.endswith("@ $") for error in info.value.errors), info.value.errors


async def test_a_missing_required_field_is_named_as_missing() -> None:
    async def handler(request: fota.Request) -> fota.Response:
        return fota.Response(200, {"content-type": "application/json"}, b"{}")

    async with fota.FotaCallbacksClient(
        access_token=BEARER, m2m_token=M2M, transport=fota.InMemoryTransport(handler)
    ) as client:
        with pytest.raises(fota.ResponseValidationError) as info:
            await client.v2.deregister_callback(ACCOUNT)
    [error] = info.value.errors
    assert "missing" in error
    assert error.endswith("@ $.success")


async def test_validation_error_path_names_the_json_key() -> None:
    async def handler(request: fota.Request) -> fota.Response:
        return fota.Response(200, {"content-type": "application/json"}, b'{"accountName": 5, "serviceName": "Fota"}')

    async with fota.FotaCallbacksClient(
        access_token=BEARER, m2m_token=M2M, transport=fota.InMemoryTransport(handler)
    ) as client:
        with pytest.raises(fota.ResponseValidationError) as info:
            await op_by_id("v1.register").run(client)
    assert any(error.endswith("@ $.accountName") for error in info.value.errors), info.value.errors


# The edges of a 2xx body's parse: what `json.loads` takes is taken with the same value, what it refuses is refused.
JSON_EDGES = {
    "trailing-json-whitespace": (b'{"url": "https://a/cb"} \r\n\t', "https://a/cb"),
    "leading-whitespace": (b' \n{"url": "https://a/cb"}', "https://a/cb"),
    "utf8-bom": (b'\xef\xbb\xbf{"url": "https://a/cb"}', "https://a/cb"),
    "utf16": ('{"url": "https://a/cb"}'.encode("utf-16-le"), "https://a/cb"),
    "non-ascii": ('{"url": "https://a/é"}'.encode(), "https://a/é"),
    "escaped-surrogate": (b'{"url": "https://a/\\ud800"}', "https://a/\ud800"),
    "trailing-data": (b'{"url": "https://a/cb"} x', None),
    "second-document": (b'{"url": "https://a/cb"}{}', None),
    "trailing-form-feed": (b'{"url": "https://a/cb"}\x0c', None),  # not JSON whitespace
    "trailing-nbsp": ('{"url": "https://a/cb"}\u00a0'.encode(), None),  # nor this
    "truncated": (b'{"url": "https://a/cb"', None),
}


@pytest.mark.parametrize(("body", "url"), JSON_EDGES.values(), ids=list(JSON_EDGES))
async def test_a_2xx_body_is_parsed_as_json_loads_parses_it(body: bytes, url: str | None) -> None:
    async def handler(request: fota.Request) -> fota.Response:
        return fota.Response(200, {"content-type": "application/json"}, body)

    async with fota.FotaCallbacksClient(
        access_token=BEARER, m2m_token=M2M, transport=fota.InMemoryTransport(handler)
    ) as client:
        if url is None:
            with pytest.raises(fota.ResponseValidationError) as info:
                await client.v2.list_registered_callbacks(ACCOUNT)
            assert info.value.errors == ["body is not JSON (JSONDecodeError) @ $"]
            with pytest.raises(json.JSONDecodeError):
                json.loads(body)
        else:
            summary = await client.v2.list_registered_callbacks(ACCOUNT)
            assert summary.url == url == json.loads(body)["url"]
