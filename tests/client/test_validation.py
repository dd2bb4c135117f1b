"""Input is checked before anything is sent: bad accounts, callback URLs, bodies, services and credentials raise
`InvalidArgumentError` (a `ValueError`) naming the parameter, and the server sees no request."""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import fota_callbacks as fota
from tests.support.harness import Recorder, Scripted
from tests.support.wire_cases import ACCOUNT, BEARER, M2M, TRANSPORTS, Wire, wire_for

pytestmark = pytest.mark.anyio

Call = Callable[[fota.FotaCallbacksClient, Any], Awaitable[object]]

V1_BODY = fota.FotaV1CallbackRegistrationRequest(name=fota.CallbackService.FOTA, url="https://example.com/cb")
V2_BODY = fota.FotaV2CallbackRegistrationRequest(url="https://example.com/cb")
V3_BODY = fota.FotaV3CallbackRegistrationRequest(url="https://example.com/cb")

ACCOUNT_CALLS: dict[str, Call] = {
    "v1.list": lambda c, a: c.v1.list_registered_callbacks(a),
    "v1.register": lambda c, a: c.v1.register_callback(a, V1_BODY),
    "v1.deregister": lambda c, a: c.v1.deregister_callback(a),
    "v1.deregister.service": lambda c, a: c.v1.deregister_callback(a, fota.CallbackService.FOTA),
    "v2.list": lambda c, a: c.v2.list_registered_callbacks(a),
    "v2.update": lambda c, a: c.v2.update_callback(a, V2_BODY),
    "v2.register": lambda c, a: c.v2.register_callback(a, V2_BODY),
    "v2.deregister": lambda c, a: c.v2.deregister_callback(a),
    "v3.list": lambda c, a: c.v3.list_registered_callbacks(a),
    "v3.update": lambda c, a: c.v3.update_callback(a, V3_BODY),
    "v3.register": lambda c, a: c.v3.register_callback(a, V3_BODY),
    "v3.deregister": lambda c, a: c.v3.deregister_callback(a),
    "v1.list.raw": lambda c, a: c.v1.with_raw_response.list_registered_callbacks(a),
    "v1.register.raw": lambda c, a: c.v1.with_raw_response.register_callback(a, V1_BODY),
    "v1.deregister.raw": lambda c, a: c.v1.with_raw_response.deregister_callback(a),
    "v2.update.raw": lambda c, a: c.v2.with_raw_response.update_callback(a, V2_BODY),
    "v2.deregister.raw": lambda c, a: c.v2.with_raw_response.deregister_callback(a),
    "v3.list.raw": lambda c, a: c.v3.with_raw_response.list_registered_callbacks(a),
    "v3.register.raw": lambda c, a: c.v3.with_raw_response.register_callback(a, V3_BODY),
}

BODY_CALLS: dict[str, Call] = {
    "v2.register": lambda c, body: c.v2.register_callback(ACCOUNT, body),
    "v2.update": lambda c, body: c.v2.update_callback(ACCOUNT, body),
    "v3.register": lambda c, body: c.v3.register_callback(ACCOUNT, body),
    "v3.update": lambda c, body: c.v3.update_callback(ACCOUNT, body),
    "v2.register.raw": lambda c, body: c.v2.with_raw_response.register_callback(ACCOUNT, body),
    "v3.update.raw": lambda c, body: c.v3.with_raw_response.update_callback(ACCOUNT, body),
}


@pytest.fixture(params=TRANSPORTS)
def wire(request: pytest.FixtureRequest) -> Wire:
    return wire_for(request)


@pytest.fixture
def memory() -> Wire:
    return Wire("memory", None)


async def expect_invalid(
    wire: Wire, call: Call, argument: Any, parameter: str, *, secret: str | None = None
) -> fota.InvalidArgumentError:
    """`call(client, argument)` raises InvalidArgumentError naming `parameter`, and nothing is sent."""
    async with wire.client() as client:
        return await expect_invalid_with(client, wire, call, argument, parameter, secret=secret)


async def expect_invalid_with(
    client: fota.FotaCallbacksClient,
    wire: Wire,
    call: Call,
    argument: Any,
    parameter: str,
    *,
    secret: str | None = None,
) -> fota.InvalidArgumentError:
    with pytest.raises(fota.InvalidArgumentError) as info:
        await call(client, argument)
    exc = info.value
    assert isinstance(exc, ValueError)
    assert isinstance(exc, fota.FotaError)
    assert not isinstance(exc, fota.MissingCredentialsError)
    assert exc.parameter == parameter, str(exc)
    assert parameter in str(exc)
    for text in (str(exc), repr(exc)):
        assert BEARER not in text
        assert M2M not in text
        if secret is not None:
            assert secret not in text
    assert wire.sent == []
    return exc


# --- account --------------------------------------------------------------------------------------------------


def _in_digits(zero: int) -> str:
    """ACCOUNT written in another script's digits (`zero`: the code point of its 0): digits to Python, not [0-9]."""
    return "".join(chr(zero + int(ch)) if ch.isdigit() else ch for ch in ACCOUNT)


BAD_ACCOUNTS: dict[str, object] = {
    "dot-dot": "../x",
    "dot-dot-only": "..",
    "path-injection": "0000123456-00001/name/Fota",
    "encoded-slash": "0000123456-00001%2F..",
    "space": "a b",
    "crlf-header-injection": "0000123456-00001\r\nX-Injected: 1",
    "trailing-lf": "0000123456-00001\n",
    "leading-space": " 0000123456-00001",
    "trailing-space": "0000123456-00001 ",
    "query": "0000123456-00001?x=1",
    "fragment": "0000123456-00001#x",
    "host": "@evil.example.com",
    "absolute-url": "https://evil.example.com/",
    "empty": "",
    "digits-only": "123",
    "short-suffix": "0000123456-0001",
    "long-prefix": "00001234567-00001",
    "underscore": "0000123456_00001",
    "letters": "000012345a-00001",
    "fullwidth-digits": _in_digits(0xFF10),
    "arabic-indic-digits": _in_digits(0x0660),
    "devanagari-digits": _in_digits(0x0966),
    "mathematical-bold-digits": _in_digits(0x1D7CE),
    "none": None,
    "int": 123,
    "float": 1234567890.00001,
    "bytes": b"0000123456-00001",
    "list": ["0000123456-00001"],
}


@pytest.mark.parametrize("account", BAD_ACCOUNTS.values(), ids=list(BAD_ACCOUNTS))
async def test_bad_account_is_refused_by_every_operation(wire: Wire, account: object) -> None:
    async with wire.client() as client:
        for name, call in ACCOUNT_CALLS.items():
            exc = await expect_invalid_with(client, wire, call, account, "account")
            assert exc.parameter == "account", name


def test_the_unicode_digit_cases_are_what_they_claim() -> None:
    for key in ("fullwidth-digits", "arabic-indic-digits", "devanagari-digits", "mathematical-bold-digits"):
        value = BAD_ACCOUNTS[key]
        assert isinstance(value, str)
        assert len(value) == 16
        assert value[10] == "-"
        assert all(ch.isdigit() and not ch.isascii() for ch in value[:10] + value[11:])
        assert int(value[:10]) == int(ACCOUNT[:10])  # what a careless `int()` or `\d` check would accept


# --- V2/V3 callback URL -------------------------------------------------------------------------------------------

BAD_HTTPS_URLS: dict[str, object] = {
    "space": "https://example.com/a b",
    "javascript": "javascript:alert(1)",
    "http": "http://example.com/cb",
    "HTTP-upper": "HTTP://example.com/cb",
    "ftp": "ftp://example.com/cb",
    "file": "file:///etc/passwd",
    "data": "data:text/html,<script>alert(1)</script>",
    "relative": "/cb",
    "bare-word": "cb",
    "scheme-relative": "//example.com/cb",
    "no-scheme": "example.com/cb",
    "https-no-host": "https://",
    "https-empty-host-with-path": "https:///cb",
    "nul": "https://exa\x00mple.com/cb",
    "crlf": "https://example.com/cb\r\nX-Injected: 1",
    "trailing-lf": "https://example.com/cb\n",
    "leading-space": " https://example.com/cb",
    "tab": "https://example.com/\tcb",
    "del": "https://example.com/\x7fcb",
    "c1-control": "https://example.com/\x85cb",
    "nbsp": "https://example.com/\u00a0cb",
    "line-separator": "https://example.com/\u2028cb",
    "bad-port": "https://example.com:abc/cb",
    "port-out-of-range": "https://example.com:99999/cb",
    "broken-ipv6": "https://[::1/cb",
    "empty": "",
    "none": None,
    "int": 5,
    "bytes": b"https://example.com/cb",
}


@pytest.mark.parametrize("url", BAD_HTTPS_URLS.values(), ids=list(BAD_HTTPS_URLS))
async def test_bad_v2_v3_callback_url_is_refused(wire: Wire, url: object) -> None:
    async with wire.client() as client:
        for name, call in BODY_CALLS.items():
            request = (
                fota.FotaV2CallbackRegistrationRequest
                if name.startswith("v2")
                else fota.FotaV3CallbackRegistrationRequest
            )
            exc = await expect_invalid_with(client, wire, call, request(url=url), "body.url")  # type: ignore[arg-type]
            assert exc.parameter == "body.url", name


GOOD_HTTPS_URLS = [
    "https://example.com",
    "https://example.com/cb",
    "HTTPS://Example.COM/cb",
    "https://10.120.102.183:50559/CallbackListener/FirmwareServiceMessages.asmx",
    "https://[2001:db8::1]:8443/cb?x=1&y=%20#frag",
    "https://listener.example.com/fota%20callbacks/",
]


@pytest.mark.parametrize("url", GOOD_HTTPS_URLS)
async def test_good_v2_v3_callback_url_is_sent_as_given(memory: Wire, url: str) -> None:
    memory.reply(
        memory.json(200, json.dumps({"url": url}).encode()), memory.json(200, json.dumps({"url": url}).encode())
    )
    async with memory.client() as client:
        v2 = await client.v2.register_callback(ACCOUNT, fota.FotaV2CallbackRegistrationRequest(url=url))
        v3 = await client.v3.update_callback(ACCOUNT, fota.FotaV3CallbackRegistrationRequest(url=url))
    assert v2 == fota.FotaV2CallbackRegistrationResult(url=url)
    assert v3 == fota.FotaV3CallbackRegistrationResult(url=url)
    assert [json.loads(sent.body) for sent in memory.sent] == [{"url": url}, {"url": url}]


# --- V1 callback URL, name, credentials, service ----------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["http://10.120.102.183:50559/CallbackListener/FirmwareServiceMessages.asmx", "https://example.com/cb"]
)
async def test_v1_accepts_http_and_https(wire: Wire, url: str) -> None:
    wire.reply(wire.json(200, b'{"accountName":"0000123456-00001","serviceName":"Fota"}'))
    async with wire.client() as client:
        result = await client.v1.register_callback(
            ACCOUNT, fota.FotaV1CallbackRegistrationRequest(name=fota.CallbackService.FOTA, url=url)
        )
    assert result == fota.FotaV1CallbackRegistrationResult(account_name=ACCOUNT, service_name="Fota")
    [sent] = wire.sent
    assert sent.body == b'{"name":"Fota","url":"' + url.encode() + b'"}'


BAD_V1_URLS: dict[str, object] = {
    "ftp": "ftp://example.com/cb",
    "javascript": "javascript:alert(1)",
    "relative": "/cb",
    "no-host": "http://",
    "space": "http://example.com/a b",
    "crlf": "http://example.com/\r\n",
    "empty": "",
    "none": None,
}


@pytest.mark.parametrize("url", BAD_V1_URLS.values(), ids=list(BAD_V1_URLS))
async def test_bad_v1_callback_url_is_refused(wire: Wire, url: object) -> None:
    body = fota.FotaV1CallbackRegistrationRequest(name=fota.CallbackService.FOTA, url=url)  # type: ignore[arg-type]
    await expect_invalid(wire, lambda c, b: c.v1.register_callback(ACCOUNT, b), body, "body.url")
    await expect_invalid(wire, lambda c, b: c.v1.with_raw_response.register_callback(ACCOUNT, b), body, "body.url")


async def test_v1_name_given_as_its_string_value_is_accepted(memory: Wire) -> None:
    memory.reply(memory.json(200, b"{}"))
    body = fota.FotaV1CallbackRegistrationRequest(name="Fota", url="https://example.com/cb")  # type: ignore[arg-type]
    async with memory.client() as client:
        await client.v1.register_callback(ACCOUNT, body)
    assert memory.sent[0].body == b'{"name":"Fota","url":"https://example.com/cb"}'


@pytest.mark.parametrize("name", ["fota", "FOTA", "Other", "", None, 1])
async def test_bad_v1_name_is_refused(memory: Wire, name: object) -> None:
    body = fota.FotaV1CallbackRegistrationRequest(name=name, url="https://example.com/cb")  # type: ignore[arg-type]
    await expect_invalid(memory, lambda c, b: c.v1.register_callback(ACCOUNT, b), body, "body.name")


@pytest.mark.parametrize(("field", "value"), [("username", 5), ("password", b"pw"), ("username", ["u"])])
async def test_bad_v1_credentials_are_refused(memory: Wire, field: str, value: object) -> None:
    options: dict[str, Any] = {field: value}
    body = fota.FotaV1CallbackRegistrationRequest(
        name=fota.CallbackService.FOTA, url="https://example.com/cb", **options
    )
    await expect_invalid(memory, lambda c, b: c.v1.register_callback(ACCOUNT, b), body, f"body.{field}")


@pytest.mark.parametrize("service", ["fota", "FOTA", "Other", "Fota/../x", "Fota%2F..", "", None, 1])
async def test_bad_v1_deregister_service_is_refused(wire: Wire, service: object) -> None:
    await expect_invalid(wire, lambda c, s: c.v1.deregister_callback(ACCOUNT, s), service, "service")
    await expect_invalid(wire, lambda c, s: c.v1.with_raw_response.deregister_callback(ACCOUNT, s), service, "service")


# --- bodies of the wrong model ------------------------------------------------------------------------------------

WRONG_BODIES: list[tuple[str, Call, object]] = [
    ("v2-model-to-v3.register", lambda c, b: c.v3.register_callback(ACCOUNT, b), V2_BODY),
    ("v2-model-to-v3.update", lambda c, b: c.v3.update_callback(ACCOUNT, b), V2_BODY),
    ("v3-model-to-v2.register", lambda c, b: c.v2.register_callback(ACCOUNT, b), V3_BODY),
    ("v3-model-to-v2.update.raw", lambda c, b: c.v2.with_raw_response.update_callback(ACCOUNT, b), V3_BODY),
    ("v1-model-to-v2", lambda c, b: c.v2.register_callback(ACCOUNT, b), V1_BODY),
    ("v2-model-to-v1", lambda c, b: c.v1.register_callback(ACCOUNT, b), V2_BODY),
    ("dict-to-v1", lambda c, b: c.v1.register_callback(ACCOUNT, b), {"name": "Fota", "url": "https://e.com/cb"}),
    ("dict-to-v2", lambda c, b: c.v2.register_callback(ACCOUNT, b), {"url": "https://e.com/cb"}),
    ("str-to-v3", lambda c, b: c.v3.update_callback(ACCOUNT, b), "https://e.com/cb"),
    ("none-to-v3", lambda c, b: c.v3.register_callback(ACCOUNT, b), None),
    ("result-model-to-v2", lambda c, b: c.v2.register_callback(ACCOUNT, b), fota.CallbackSummary(url="https://e/")),
]


@pytest.mark.parametrize(("call", "body"), [(c, b) for _, c, b in WRONG_BODIES], ids=[i for i, _, _ in WRONG_BODIES])
async def test_a_body_of_the_wrong_model_is_refused(wire: Wire, call: Call, body: object) -> None:
    exc = await expect_invalid(wire, call, body, "body")
    assert type(body).__name__ in str(exc)


# --- secrets in refused URLs ----------------------------------------------------------------------------------------

SECRET = "hunter2-SECRET"
SECRET_URLS: dict[str, tuple[str, str]] = {
    # id: (version, url)
    "v2-http": ("v2", f"http://user:{SECRET}@example.com/cb"),
    "v2-space": ("v2", f"https://user:{SECRET}@example.com/a b"),
    "v2-bad-port": ("v2", f"https://user:{SECRET}@example.com:abc/cb"),
    "v2-no-host": ("v2", f"https://user:{SECRET}@/cb"),
    "v2-broken-ipv6": ("v2", f"https://user:{SECRET}@[::1/cb"),
    "v3-javascript": ("v3", f"javascript://user:{SECRET}@example.com/%0aalert(1)"),
    "v3-ftp": ("v3", f"ftp://user:{SECRET}@example.com/"),
    "v3-only-password": ("v3", f"http://:{SECRET}@example.com/"),
    "v3-at-in-password": ("v3", f"http://user:{SECRET}@x@example.com/"),
    "v1-ftp": ("v1", f"ftp://user:{SECRET}@example.com/cb"),
    "v1-crlf": ("v1", f"https://user:{SECRET}@example.com/\r\n"),
}


def _body_for(version: str, url: str) -> object:
    if version == "v1":
        return fota.FotaV1CallbackRegistrationRequest(name=fota.CallbackService.FOTA, url=url)
    if version == "v2":
        return fota.FotaV2CallbackRegistrationRequest(url=url)
    return fota.FotaV3CallbackRegistrationRequest(url=url)


@pytest.mark.parametrize(("version", "url"), SECRET_URLS.values(), ids=list(SECRET_URLS))
async def test_a_refused_url_does_not_echo_its_password(memory: Wire, version: str, url: str) -> None:
    call: Call = lambda c, b: getattr(c, version).register_callback(ACCOUNT, b)  # noqa: E731
    exc = await expect_invalid(memory, call, _body_for(version, url), "body.url", secret=SECRET)
    assert exc.parameter == "body.url"


@pytest.mark.parametrize("separator", ["/", "?", "#"])
async def test_a_refused_url_does_not_echo_a_password_containing_a_delimiter(memory: Wire, separator: str) -> None:
    url = f"https://user:pass{separator}{SECRET}@example.com/cb"
    await expect_invalid(
        memory, lambda c, b: c.v2.register_callback(ACCOUNT, b), _body_for("v2", url), "body.url", secret=SECRET
    )


@pytest.mark.parametrize(
    ("version", "body", "parameter"),
    [
        ("v2", fota.FotaV2CallbackRegistrationRequest(url="https://example.com/\ud800"), "body.url"),
        ("v3", fota.FotaV3CallbackRegistrationRequest(url="https://example.com/\udfff"), "body.url"),
        (
            "v1",
            fota.FotaV1CallbackRegistrationRequest(
                name=fota.CallbackService.FOTA, url="https://example.com/cb", username="\udc80"
            ),
            "body.username",
        ),
    ],
    ids=["v2-url", "v3-url", "v1-username"],
)
async def test_a_string_that_is_not_unicode_text_is_refused(
    memory: Wire, version: str, body: object, parameter: str
) -> None:
    await expect_invalid(memory, lambda c, b: getattr(c, version).register_callback(ACCOUNT, b), body, parameter)


# --- credentials ----------------------------------------------------------------------------------------------------

# (`clean_env`: tests/conftest.py)


def test_no_credentials_at_all(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(fota.MissingCredentialsError) as info:
        fota.FotaCallbacksClient()
    exc = info.value
    assert isinstance(exc, fota.InvalidArgumentError)
    assert isinstance(exc, ValueError)
    assert isinstance(exc, fota.FotaError)
    assert exc.parameter == "client_id"
    for mentioned in ("client_id", "client_secret", "access_token", "THINGSPACE_CLIENT_ID"):
        assert mentioned in str(exc)


MISSING: dict[str, tuple[dict[str, Any], dict[str, str], str, tuple[str, ...]]] = {
    # id: (arguments, environment, the parameter named, words the message mentions)
    "only-access-token": ({"access_token": BEARER}, {}, "m2m_token", ("m2m_token", "THINGSPACE_M2M_TOKEN")),
    "client-id-without-secret": ({"client_id": "id", "m2m_token": M2M}, {}, "client_secret", ("client_secret",)),
    "secret-without-client-id": (
        {"client_secret": "s3cr3t-VALUE", "m2m_token": M2M},
        {},
        "client_id",
        ("client_id",),
    ),
    "username-without-password": ({"access_token": BEARER, "username": "u"}, {}, "password", ("password",)),
    "password-without-username": ({"access_token": BEARER, "password": "s3cr3t-VALUE"}, {}, "username", ("username",)),
    "env-client-id-without-secret": (
        {"m2m_token": M2M},
        {"THINGSPACE_CLIENT_ID": "id"},
        "client_secret",
        ("THINGSPACE_CLIENT_SECRET",),
    ),
    "env-username-without-password": (
        {"access_token": BEARER},
        {"THINGSPACE_USERNAME": "u"},
        "password",
        ("THINGSPACE_PASSWORD",),
    ),
    "env-empty-m2m-token-is-unset": ({"access_token": BEARER}, {"THINGSPACE_M2M_TOKEN": ""}, "m2m_token", ()),
    "only-m2m-token": ({"m2m_token": M2M}, {}, "client_id", ("access_token",)),
}


@pytest.mark.parametrize(("arguments", "environment", "parameter", "mentions"), MISSING.values(), ids=list(MISSING))
def test_a_missing_credential_is_named_before_anything_is_sent(
    clean_env: pytest.MonkeyPatch,
    arguments: dict[str, Any],
    environment: dict[str, str],
    parameter: str,
    mentions: tuple[str, ...],
) -> None:
    for name, value in environment.items():
        clean_env.setenv(name, value)
    handler = Recorder()
    with pytest.raises(fota.MissingCredentialsError) as info:
        fota.FotaCallbacksClient(transport=fota.InMemoryTransport(handler), **arguments)
    exc = info.value
    assert exc.parameter == parameter
    for word in mentions:
        assert word in str(exc)
    for text in (str(exc), repr(exc)):
        assert "s3cr3t-VALUE" not in text
        assert BEARER not in text
        assert M2M not in text
    assert handler.requests == []


@pytest.mark.parametrize(
    ("arguments", "parameter"),
    [
        ({"access_token": "", "m2m_token": M2M}, "access_token"),
        ({"access_token": BEARER, "m2m_token": ""}, "m2m_token"),
        ({"access_token": "tok\r\nX-Injected: 1", "m2m_token": M2M}, "access_token"),
        ({"access_token": BEARER, "m2m_token": "m2m\nX: 1"}, "m2m_token"),
        ({"access_token": 5, "m2m_token": M2M}, "access_token"),
        ({"access_token": BEARER, "client_id": "id", "client_secret": "s", "m2m_token": M2M}, "access_token"),
        ({"access_token": BEARER, "m2m_token": M2M, "username": "u", "password": "p"}, "m2m_token"),
    ],
    ids=["empty-bearer", "empty-m2m", "crlf-bearer", "lf-m2m", "int-bearer", "bearer-and-oauth", "m2m-and-login"],
)
def test_a_bad_credential_is_refused(clean_env: pytest.MonkeyPatch, arguments: dict[str, Any], parameter: str) -> None:
    handler = Recorder()
    with pytest.raises(fota.InvalidArgumentError) as info:
        fota.FotaCallbacksClient(transport=fota.InMemoryTransport(handler), **arguments)
    assert info.value.parameter == parameter
    assert "X-Injected" not in str(info.value)
    assert handler.requests == []


async def test_a_token_that_cannot_be_a_header_value_is_refused(
    clean_env: pytest.MonkeyPatch, served_script: Scripted
) -> None:
    with pytest.raises(fota.InvalidArgumentError) as info:
        async with fota.FotaCallbacksClient(
            access_token="tök€n", m2m_token=M2M, base_url=served_script.base_url, max_retries=0
        ) as client:
            await client.v2.list_registered_callbacks(ACCOUNT)
    assert info.value.parameter in ("access_token", "token")
    assert served_script.sent == []


async def test_credentials_and_base_url_from_the_environment(
    clean_env: pytest.MonkeyPatch, served_script: Scripted
) -> None:
    clean_env.setenv("THINGSPACE_CLIENT_ID", "env-client-id")
    clean_env.setenv("THINGSPACE_CLIENT_SECRET", "env-client-secret")
    clean_env.setenv("THINGSPACE_M2M_TOKEN", "env-m2m-token")
    clean_env.setenv("THINGSPACE_BASE_URL", served_script.base_url)
    served_script.script.respond(json={"access_token": "oauth-token-1", "token_type": "Bearer", "expires_in": 3600})
    served_script.script.respond(json={"url": "https://example.com/cb"})
    async with fota.FotaCallbacksClient() as client:
        assert client.base_url == served_script.base_url
        assert isinstance(client.transport, fota.HttpxTransport)
        summary = await client.v2.list_registered_callbacks(ACCOUNT)
        for text in (repr(client), str(client)):
            assert "env-client-secret" not in text
            assert "env-m2m-token" not in text

    assert summary == fota.CallbackSummary(url="https://example.com/cb")
    token, call = served_script.sent
    assert (token.method, token.path) == ("POST", "/api/ts/v1/oauth2/token")
    basic = base64.b64encode(b"env-client-id:env-client-secret").decode()
    assert token.header("authorization") == f"Basic {basic}"
    assert token.header("content-type") == "application/x-www-form-urlencoded"
    assert token.body == b"grant_type=client_credentials"
    assert (call.method, call.path) == ("GET", f"/api/fota/v2/callbacks/{ACCOUNT}")
    assert call.header("authorization") == "Bearer oauth-token-1"
    assert call.header("vz-m2m-token") == "env-m2m-token"


async def test_m2m_login_credentials_from_the_environment(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("THINGSPACE_USERNAME", "env-user")
    clean_env.setenv("THINGSPACE_PASSWORD", "env-pass")
    requests: list[fota.Request] = []

    async def handler(request: fota.Request) -> fota.Response:
        requests.append(request)
        if request.url.endswith("/api/m2m/v1/session/login"):
            return fota.Response(200, {"content-type": "application/json"}, b'{"sessionToken":"session-1"}')
        return fota.Response(200, {"content-type": "application/json"}, b'{"success":true}')

    async with fota.FotaCallbacksClient(access_token=BEARER, transport=fota.InMemoryTransport(handler)) as client:
        assert "env-pass" not in repr(client)
        assert await client.v3.deregister_callback(ACCOUNT) == fota.FotaV3SuccessResult(success=True)

    login, call = requests
    assert (login.method, login.url) == ("POST", "https://thingspace.verizon.com/api/m2m/v1/session/login")
    assert login.headers["authorization"] == f"Bearer {BEARER}"
    assert json.loads(login.content) == {"username": "env-user", "password": "env-pass"}
    assert (call.method, call.url) == ("DELETE", f"https://thingspace.verizon.com/api/fota/v3/callbacks/{ACCOUNT}")
    assert call.headers["vz-m2m-token"] == "session-1"
    assert call.headers["authorization"] == f"Bearer {BEARER}"


async def test_arguments_win_over_the_environment(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("THINGSPACE_M2M_TOKEN", "env-m2m-token")
    clean_env.setenv("THINGSPACE_BASE_URL", "http://127.0.0.1:9")
    clean_env.setenv("THINGSPACE_USERNAME", "env-user")
    clean_env.setenv("THINGSPACE_PASSWORD", "env-pass")
    urls: list[str] = []
    m2m_tokens: list[str | None] = []

    async def handler(request: fota.Request) -> fota.Response:
        urls.append(request.url)
        m2m_tokens.append(request.headers.get("vz-m2m-token"))
        return fota.Response(200, {}, b'{"url":"https://e.com/cb"}')

    transport = fota.InMemoryTransport(handler)
    async with fota.FotaCallbacksClient(
        access_token=BEARER, m2m_token="arg-m2m", base_url="https://gateway.example.com", transport=transport
    ) as client:
        await client.v2.list_registered_callbacks(ACCOUNT)
    async with fota.FotaCallbacksClient(access_token=BEARER, m2m_token="arg-m2m", transport=transport) as client:
        await client.v2.list_registered_callbacks(ACCOUNT)  # THINGSPACE_BASE_URL replaces the environment's root
    assert urls == [
        f"https://gateway.example.com/api/fota/v2/callbacks/{ACCOUNT}",
        f"http://127.0.0.1:9/api/fota/v2/callbacks/{ACCOUNT}",
    ]
    assert m2m_tokens == ["arg-m2m", "arg-m2m"]


@pytest.mark.parametrize(
    "base_url",
    ["ftp://example.com", "example.com", "https://user:pw@example.com", "https://example.com/?q=1", "https://"],
)
def test_a_bad_base_url_is_refused(clean_env: pytest.MonkeyPatch, base_url: str) -> None:
    with pytest.raises(fota.InvalidArgumentError) as info:
        fota.FotaCallbacksClient(access_token=BEARER, m2m_token=M2M, base_url=base_url)
    assert info.value.parameter == "base_url"
    assert "pw" not in str(info.value).replace("base_url", "")


def test_a_bad_environment_is_refused(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(fota.InvalidArgumentError) as info:
        fota.FotaCallbacksClient(access_token=BEARER, m2m_token=M2M, environment="prod")
    assert info.value.parameter == "environment"


@pytest.mark.parametrize(
    ("arguments", "parameter"),
    [
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": 1.5}, "max_retries"),
        ({"max_retries": True}, "max_retries"),
        ({"max_retries": "2"}, "max_retries"),
        ({"initial_delay": -0.5}, "initial_delay"),
        ({"initial_delay": float("nan")}, "initial_delay"),
        ({"max_delay": "8"}, "max_delay"),
        ({"jitter": 1.5}, "jitter"),
        ({"jitter": -0.1}, "jitter"),
        ({"max_retry_after": None}, "max_retry_after"),
    ],
    ids=lambda value: value if isinstance(value, str) else "-".join(f"{k}={v!r}" for k, v in value.items()),
)
def test_a_bad_retry_policy_is_refused(arguments: dict[str, Any], parameter: str) -> None:
    with pytest.raises(fota.InvalidArgumentError) as info:
        fota.RetryPolicy(**arguments)
    assert info.value.parameter == parameter
    assert repr(next(iter(arguments.values()))) in str(info.value)


def test_a_retry_policy_at_its_bounds_is_accepted() -> None:
    policy = fota.RetryPolicy(max_retries=0, initial_delay=0, max_delay=0.0, jitter=1, max_retry_after=0)
    assert (policy.max_retries, policy.jitter, policy.backoff(3, rand=lambda: 0.5)) == (0, 1, 0.0)
