"""FakeThingSpace on the wire: hand-built requests to `fake.handle`, and the exact responses of wire.md."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote_plus

import httpx
import pytest

import fota_callbacks as fota
from fota_callbacks.testing import FakeThingSpace, serve

pytestmark = pytest.mark.anyio

ACCOUNT = "0000123456-00001"
ROOT = "https://thingspace.verizon.com"
V1 = f"/api/fota/v1/callbacks/{ACCOUNT}"
V2 = f"/api/fota/v2/callbacks/{ACCOUNT}"
V3 = f"/api/fota/v3/callbacks/{ACCOUNT}"
TOKEN = "/api/ts/v1/oauth2/token"
LOGIN = "/api/m2m/v1/session/login"
LOGOUT = "/api/m2m/v1/session/logout"


class FakeWire:
    """The wire of a fake: sends hand-built requests to its handler, signed with tokens it issued. (Not
    `tests.support.wire_cases.Wire`, which makes SDK clients on a scripted server.)"""

    def __init__(self, fake: FakeThingSpace) -> None:
        self.fake = fake
        self.access_token, self.session = fake.issue_tokens()

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}", "VZ-M2M-Token": self.session}

    async def send(
        self,
        method: str,
        path: str,
        body: object = None,
        *,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
        signed: bool = True,
        root: str = ROOT,
    ) -> fota.Response:
        sent = {"Accept": "application/json", **(self.auth() if signed else {})}
        if body is not None:
            sent["Content-Type"] = "application/json"
            content = json.dumps(body).encode()
        sent.update(headers or {})
        return await self.fake.handle(fota.Request(method, root + path, sent, content or b""))


@pytest.fixture
def fake_wire() -> FakeWire:
    return FakeWire(FakeThingSpace())


def body_of(response: fota.Response) -> Any:
    assert response.headers["content-type"] == "application/json"
    return json.loads(response.content)


def error_of(response: fota.Response) -> tuple[int, str]:
    body = body_of(response)
    assert set(body) == {"errorCode", "errorMessage"}
    assert isinstance(body["errorMessage"], str)
    return response.status_code, body["errorCode"]


# -- response shapes -----------------------------------------------------------------------------------------


async def test_v1_shapes(fake_wire: FakeWire) -> None:
    empty = await fake_wire.send("GET", V1)
    assert (empty.status_code, empty.content) == (200, b"")  # an empty body means none registered

    registered = await fake_wire.send("POST", V1, {"name": "Fota", "url": "http://10.120.102.183:50559/Listener.asmx"})
    assert registered.status_code == 200
    assert body_of(registered) == {"accountName": ACCOUNT, "serviceName": "Fota"}

    listed = await fake_wire.send("GET", V1)
    assert listed.status_code == 200
    assert body_of(listed) == [{"aname": ACCOUNT, "name": "Fota", "url": "http://10.120.102.183:50559/Listener.asmx"}]

    await fake_wire.send("POST", V1, {"name": "Fota", "url": "https://l.example", "username": "u", "password": "p"})
    assert body_of(await fake_wire.send("GET", V1)) == [
        {"aname": ACCOUNT, "name": "Fota", "url": "https://l.example", "username": "u", "password": "p"}
    ]

    deregistered = await fake_wire.send("DELETE", f"{V1}/name/Fota")
    assert (deregistered.status_code, body_of(deregistered)) == (200, {"success": True})
    assert (await fake_wire.send("GET", V1)).content == b""


@pytest.mark.parametrize("path", [V2, V3])
async def test_v2_v3_shapes(fake_wire: FakeWire, path: str) -> None:
    empty = await fake_wire.send("GET", path)
    # Nothing registered: 200 and an empty body, as Verizon documents for list (V1, V3; V2 taken the same).
    assert (empty.status_code, empty.content, empty.headers.get("content-type")) == (200, b"", None)
    registered = await fake_wire.send("POST", path, {"url": "https://l.example/a"})
    assert (registered.status_code, body_of(registered)) == (200, {"url": "https://l.example/a"})
    assert body_of(await fake_wire.send("GET", path)) == {"url": "https://l.example/a"}
    updated = await fake_wire.send("PUT", path, {"url": "https://l.example/b"})
    assert (updated.status_code, body_of(updated)) == (200, {"url": "https://l.example/b"})
    assert body_of(await fake_wire.send("GET", path)) == {"url": "https://l.example/b"}
    deregistered = await fake_wire.send("DELETE", path)
    assert (deregistered.status_code, body_of(deregistered)) == (200, {"success": True})
    assert (await fake_wire.send("GET", path)).content == b""


# -- request shapes accepted ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"name": "Fota", "url": "http://l.example"},
        {"name": "Fota", "url": "https://l.example:8443/path?q=1", "username": "u", "password": "p"},
        {"name": "Fota", "url": "http://l.example", "username": None, "password": None},  # null: absent
        {"name": "Fota", "url": "http://l.example", "somethingNew": [1, 2]},  # unknown keys tolerated
        {"name": "Fota", "url": "http://l.example", "username": ""},  # "" is a value, not absence
    ],
)
async def test_v1_register_accepts(fake_wire: FakeWire, body: dict[str, Any]) -> None:
    response = await fake_wire.send("POST", V1, body)
    assert response.status_code == 200, response.content
    [stored] = fake_wire.fake.callbacks(ACCOUNT).v1.values()
    assert stored.url == body["url"]
    assert stored.username == body.get("username")


async def test_empty_string_credentials_survive_a_round_trip(fake_wire: FakeWire) -> None:
    await fake_wire.send("POST", V1, {"name": "Fota", "url": "http://l.example", "username": "", "password": ""})
    assert body_of(await fake_wire.send("GET", V1)) == [
        {"aname": ACCOUNT, "name": "Fota", "url": "http://l.example", "username": "", "password": ""}
    ]


@pytest.mark.parametrize(
    ("headers", "content"),
    [
        ({"Content-Type": "application/json; charset=utf-8"}, b'{"url":"https://l.example"}'),
        ({"content-type": "Application/JSON"}, b'{ "url" : "https://l.example" }'),
        ({"Content-Type": "application/json"}, b'{"url":"https://l.example","extra":{"x":true}}'),
    ],
)
async def test_v2_register_accepts(fake_wire: FakeWire, headers: dict[str, str], content: bytes) -> None:
    response = await fake_wire.send("POST", V2, headers=headers, content=content)
    assert (response.status_code, body_of(response)) == (200, {"url": "https://l.example"})


@pytest.mark.parametrize(
    "root", ["http://127.0.0.1:8080", "https://staging.thingspace.verizon.com", "https://mock.example", ""]
)
async def test_any_root_is_served(fake_wire: FakeWire, root: str) -> None:
    assert (await fake_wire.send("GET", V2, root=root)).status_code == 200


async def test_query_and_fragment_are_ignored(fake_wire: FakeWire) -> None:
    assert (await fake_wire.send("GET", V2 + "?x=1#frag")).status_code == 200
    assert fake_wire.fake.requests[-1].path == V2


async def test_a_percent_encoded_account_segment_is_decoded(fake_wire: FakeWire) -> None:
    encoded = "".join(f"%{ord(char):02X}" for char in ACCOUNT)
    response = await fake_wire.send("POST", f"/api/fota/v2/callbacks/{encoded}", {"url": "https://l.example"})
    assert response.status_code == 200
    assert fake_wire.fake.callbacks(ACCOUNT).v2 == "https://l.example"
    assert fake_wire.fake.requests[-1].account == ACCOUNT


# -- 400 refusals --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "account",
    ["123", "0000123456-0001", "0000123456-000011", "000012345a-00001", "0000123456%2F00001", "%20" + ACCOUNT],
)
@pytest.mark.parametrize(("method", "version"), [("GET", "v1"), ("POST", "v2"), ("DELETE", "v3"), ("PUT", "v2")])
async def test_bad_account_is_invalid_account(fake_wire: FakeWire, account: str, method: str, version: str) -> None:
    body = {"url": "https://l.example"} if method in ("POST", "PUT") else None
    response = await fake_wire.send(method, f"/api/fota/{version}/callbacks/{account}", body)
    assert error_of(response) == (400, "InvalidAccount")


async def test_bad_account_on_v1_deregister(fake_wire: FakeWire) -> None:
    response = await fake_wire.send("DELETE", "/api/fota/v1/callbacks/42/name/Fota")
    assert error_of(response) == (400, "InvalidAccount")


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{not json",
        b"\xff\xfe",
        b"[]",
        b'"https://l.example"',
        b"{}",
        b'{"url": null}',
        b'{"url": 42}',
        b'{"url": ["https://l.example"]}',
        b'{"URL": "https://l.example"}',
    ],
)
@pytest.mark.parametrize(("method", "path"), [("POST", V2), ("PUT", V3)])
async def test_bad_v2_v3_body_is_invalid_request_body(
    fake_wire: FakeWire, content: bytes, method: str, path: str
) -> None:
    fake_wire.fake.seed(ACCOUNT, v3="https://l.example/seeded")
    response = await fake_wire.send(method, path, headers={"Content-Type": "application/json"}, content=content)
    assert error_of(response) == (400, "InvalidRequestBody")
    assert fake_wire.fake.callbacks(ACCOUNT).v3 == "https://l.example/seeded"


@pytest.mark.parametrize(
    "body",
    [
        {"url": "http://l.example"},
        {"name": "Other", "url": "http://l.example"},
        {"name": "fota", "url": "http://l.example"},
        {"name": None, "url": "http://l.example"},
        {"name": "Fota"},
        {"name": "Fota", "url": "http://l.example", "username": 7},
        {"name": "Fota", "url": "http://l.example", "password": False},
    ],
)
async def test_bad_v1_body_is_invalid_request_body(fake_wire: FakeWire, body: dict[str, Any]) -> None:
    assert error_of(await fake_wire.send("POST", V1, body)) == (400, "InvalidRequestBody")
    assert fake_wire.fake.callbacks(ACCOUNT).v1 == {}


@pytest.mark.parametrize(
    "url",
    [
        "http://l.example/cb",
        "ftp://l.example/cb",
        "https://",
        "https:///path",
        "/relative/cb",
        "l.example/cb",
        "https://l.example/a b",
        "https://l.example/\r\nX-Injected: 1",
        "https://l.example:99999/",
        "",
    ],
)
@pytest.mark.parametrize("path", [V2, V3])
async def test_v2_v3_need_an_absolute_https_url(fake_wire: FakeWire, url: str, path: str) -> None:
    assert error_of(await fake_wire.send("POST", path, {"url": url})) == (400, "InvalidCallbackUrl")


@pytest.mark.parametrize("url", ["ftp://l.example", "https://", "mailto:x@l.example", "http://l.example/\t"])
async def test_v1_needs_an_http_or_https_url(fake_wire: FakeWire, url: str) -> None:
    assert error_of(await fake_wire.send("POST", V1, {"name": "Fota", "url": url})) == (400, "InvalidCallbackUrl")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", V2, {"url": "https://l.example"}),
        ("PUT", V3, {"url": "https://l.example"}),
        ("DELETE", V2, None),
        ("DELETE", V3, None),
        ("DELETE", f"{V1}/name/Fota", None),
        ("DELETE", f"{V1}/name/Other", None),
    ],
)
async def test_changing_nothing_is_callback_not_found(
    fake_wire: FakeWire, method: str, path: str, body: object
) -> None:
    assert error_of(await fake_wire.send(method, path, body)) == (400, "CallbackNotFound")


@pytest.mark.parametrize("path", [V1, V2, LOGIN])
@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded", "*/json"])
async def test_json_endpoints_need_a_json_content_type(
    fake_wire: FakeWire, path: str, content_type: str | None
) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    body = b'{"name":"Fota","url":"https://l.example","username":"u","password":"p"}'
    response = await fake_wire.send("POST", path, headers=headers, content=body)
    assert error_of(response) == (415, "UnsupportedMediaType")


@pytest.mark.parametrize("content_type", ["*/*", "application/json; charset=utf-8"])
async def test_json_labelled_as_verizons_sdk_does_is_accepted(fake_wire: FakeWire, content_type: str) -> None:
    # wire.md "Fake fidelity": Verizon's generated SDK labels V2 bodies */*, and ThingSpace takes them.
    headers = {"Content-Type": content_type}
    body = b'{"name":"Fota","url":"https://l.example/1","username":"u","password":"p"}'
    assert body_of(await fake_wire.send("POST", V1, headers=headers, content=body)) == {
        "accountName": ACCOUNT,
        "serviceName": "Fota",
    }
    for path in (V2, V3):
        for method, url in (("POST", "https://l.example/2"), ("PUT", "https://l.example/3")):
            content = json.dumps({"url": url}).encode()
            assert body_of(await fake_wire.send(method, path, headers=headers, content=content)) == {"url": url}
    login = await fake_wire.send("POST", LOGIN, headers=headers, content=b'{"username":"u","password":"p"}')
    assert set(body_of(login)) == {"sessionToken"}
    callbacks = fake_wire.fake.callbacks(ACCOUNT)
    assert callbacks.v1["Fota"].url == "https://l.example/1"
    assert callbacks.v2 == callbacks.v3 == "https://l.example/3"


# -- routing -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/api/fota/v4/callbacks/" + ACCOUNT,
        "/api/fota/v2/callbacks/",
        "/api/fota/v2/callbacks/" + ACCOUNT + "/",
        "/api/fota/v2/callbacks/" + ACCOUNT + "/name/Fota",  # only V1 names its callbacks
        "/api/fota/v1/callbacks/" + ACCOUNT + "/name/",
        "/api/fota/v1/callbacks/" + ACCOUNT + "/name/Fota/x",
        "/prefix/api/fota/v2/callbacks/" + ACCOUNT,
        "/api/ts/v1/oauth2/token/",
    ],
)
async def test_unknown_path_is_404(fake_wire: FakeWire, path: str) -> None:
    response = await fake_wire.send("GET", path)
    assert error_of(response) == (404, "ResourceNotFound")
    assert (fake_wire.fake.requests[-1].version, fake_wire.fake.requests[-1].operation) == (None, None)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", V1, "GET, POST"),
        ("DELETE", V1, "GET, POST"),
        ("GET", f"{V1}/name/Fota", "DELETE"),
        ("PATCH", V2, "GET, PUT, POST, DELETE"),
        ("HEAD", V3, "GET, PUT, POST, DELETE"),
        ("GET", TOKEN, "POST"),
        ("GET", LOGIN, "POST"),
        ("DELETE", LOGOUT, "POST"),
    ],
)
async def test_wrong_method_is_405(fake_wire: FakeWire, method: str, path: str, allowed: str) -> None:
    response = await fake_wire.send(method, path)
    assert error_of(response) == (405, "MethodNotAllowed")
    assert response.headers["allow"] == allowed
    assert fake_wire.fake.requests[-1].operation is None
    assert fake_wire.fake.requests[-1].version is not None


# -- OAuth token endpoint ------------------------------------------------------------------------------------


def basic(client_id: str = "id", client_secret: str = "secret") -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


async def token_request(
    fake_wire: FakeWire, content: bytes = b"grant_type=client_credentials", headers: dict[str, str] | None = None
) -> fota.Response:
    sent = {"Authorization": basic(), **FORM, **(headers or {})}
    return await fake_wire.send("POST", TOKEN, headers=sent, content=content, signed=False)


async def test_token_shape(fake_wire: FakeWire) -> None:
    response = await token_request(fake_wire)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = body_of(response)
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    assert isinstance(body["access_token"], str)
    assert body["access_token"] != fake_wire.access_token

    # The token works for the callbacks endpoints.
    headers = {"Authorization": f"Bearer {body['access_token']}", "VZ-M2M-Token": fake_wire.session}
    assert (await fake_wire.send("GET", V2, headers=headers, signed=False)).status_code == 200


async def test_token_with_scope_echoes_it(fake_wire: FakeWire) -> None:
    response = await token_request(fake_wire, b"grant_type=client_credentials&scope=read+write%3Aall")
    assert body_of(response)["scope"] == "read write:all"
    assert fake_wire.fake.requests[-1].form == {"grant_type": "client_credentials", "scope": "read write:all"}


async def test_token_lifetime_is_configurable() -> None:
    response = await token_request(FakeWire(FakeThingSpace(token_lifetime=90.5)))
    assert body_of(response)["expires_in"] == 90.5


def oauth_error_of(response: fota.Response) -> tuple[int, str]:
    body = body_of(response)
    assert set(body) == {"error", "error_description"}
    assert isinstance(body["error_description"], str)
    return response.status_code, body["error"]


@pytest.mark.parametrize(
    ("content", "headers", "expected"),
    [
        (b"grant_type=client_credentials", {"Content-Type": "application/json"}, (400, "invalid_request")),
        (b"grant_type=client_credentials", {"Content-Type": ""}, (400, "invalid_request")),
        (b"", {}, (400, "invalid_request")),
        (b"scope=read", {}, (400, "invalid_request")),
        (b"grant_type", {}, (400, "invalid_request")),
        (b"grant_type=client_credentials&&", {}, (400, "invalid_request")),
        (b"grant_type=client_credentials&grant_type=client_credentials", {}, (400, "invalid_request")),
        (b"grant_type=client_credentials\xff", {}, (400, "invalid_request")),
        (b"grant_type=client_credentials", {"Authorization": ""}, (401, "invalid_client")),
        (b"grant_type=client_credentials", {"Authorization": "Bearer abc"}, (401, "invalid_client")),
        (b"grant_type=client_credentials", {"Authorization": "Basic !!!"}, (401, "invalid_client")),
        (b"grant_type=client_credentials", {"Authorization": "Basic " + "bm9jb2xvbg=="}, (401, "invalid_client")),
        (b"grant_type=password", {}, (400, "unsupported_grant_type")),
        (b"grant_type=authorization_code", {}, (400, "unsupported_grant_type")),
        (b"grant_type=client_credentials&scope=", {}, (400, "invalid_scope")),
        (b"grant_type=client_credentials&scope=a++b", {}, (400, "invalid_scope")),
        (b"grant_type=client_credentials&scope=%22quoted%22", {}, (400, "invalid_scope")),
    ],
)
async def test_token_refusals(
    fake_wire: FakeWire, content: bytes, headers: dict[str, str], expected: tuple[int, str]
) -> None:
    response = await token_request(fake_wire, content, headers)
    assert oauth_error_of(response) == expected
    if expected[0] == 401:
        assert response.headers["www-authenticate"].startswith("Basic")


async def test_token_without_authorization_is_invalid_client(fake_wire: FakeWire) -> None:
    response = await fake_wire.send("POST", TOKEN, headers=FORM, content=b"grant_type=client_credentials", signed=False)
    assert oauth_error_of(response) == (401, "invalid_client")


async def test_token_for_credentials_not_accepted(fake_wire: FakeWire) -> None:
    fake_wire.fake.accept_only(client_id="id", client_secret="right", scopes=["read"])
    assert oauth_error_of(await token_request(fake_wire)) == (401, "invalid_client")
    good = {"Authorization": basic("id", "right")}
    assert (await token_request(fake_wire, headers=good)).status_code == 200
    assert (await token_request(fake_wire, b"grant_type=client_credentials&scope=read", good)).status_code == 200
    refused = await token_request(fake_wire, b"grant_type=client_credentials&scope=read+write", good)
    assert oauth_error_of(refused) == (400, "invalid_scope")


@pytest.mark.parametrize(
    ("client_id", "client_secret"), [("id:with:colons", "p@ss w:rd"), ("ünï+cödé", "100%&=/"), ("plain", "")]
)
async def test_basic_credentials_are_form_decoded(fake_wire: FakeWire, client_id: str, client_secret: str) -> None:
    # RFC 6749, 2.3.1: id and secret are each form-urlencoded, then joined by ":" and base64-encoded.
    fake_wire.fake.accept_only(client_id=client_id, client_secret=client_secret)
    encoded = {"Authorization": basic(quote_plus(client_id), quote_plus(client_secret))}
    assert (await token_request(fake_wire, headers=encoded)).status_code == 200
    if client_id != "plain":  # sent without the encoding, they decode to other credentials
        unencoded = {"Authorization": basic(client_id, client_secret)}
        assert oauth_error_of(await token_request(fake_wire, headers=unencoded)) == (401, "invalid_client")


async def test_basic_credentials_with_a_bad_percent_escape_are_garbled(fake_wire: FakeWire) -> None:
    response = await token_request(fake_wire, headers={"Authorization": basic("id", "%ff")})
    assert oauth_error_of(response) == (401, "invalid_client")
    assert "garbled" in body_of(response)["error_description"]


# -- M2M session ---------------------------------------------------------------------------------------------


async def test_login_and_logout_shapes(fake_wire: FakeWire) -> None:
    bearer = {"Authorization": f"Bearer {fake_wire.access_token}"}
    login = await fake_wire.send("POST", LOGIN, {"username": "u", "password": "p"}, headers=bearer, signed=False)
    assert login.status_code == 200
    body = body_of(login)
    assert set(body) == {"sessionToken"}
    session = body["sessionToken"]

    signed = {**bearer, "VZ-M2M-Token": session}
    assert (await fake_wire.send("GET", V2, headers=signed, signed=False)).status_code == 200
    logout = await fake_wire.send("POST", LOGOUT, headers=signed, signed=False)
    assert (logout.status_code, body_of(logout)) == (200, {"sessionToken": session})
    assert error_of(await fake_wire.send("GET", V2, headers=signed, signed=False)) == (401, "UnauthorizedSession")
    assert error_of(await fake_wire.send("POST", LOGOUT, headers=signed, signed=False)) == (401, "UnauthorizedSession")


@pytest.mark.parametrize(
    "content",
    [b"", b"{not json", b"[]", b"{}", b'{"username": "u"}', b'{"username": "u", "password": 1}'],
)
async def test_login_refuses_a_bad_body(fake_wire: FakeWire, content: bytes) -> None:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {fake_wire.access_token}"}
    response = await fake_wire.send("POST", LOGIN, headers=headers, content=content, signed=False)
    assert error_of(response) == (400, "InvalidRequestBody")


async def test_login_with_credentials_not_accepted(fake_wire: FakeWire) -> None:
    fake_wire.fake.accept_only(username="alice", password="right")
    bearer = {"Authorization": f"Bearer {fake_wire.access_token}"}
    for credentials in ({"username": "bob", "password": "right"}, {"username": "alice", "password": "wrong"}):
        response = await fake_wire.send("POST", LOGIN, credentials, headers=bearer, signed=False)
        assert error_of(response) == (400, "InvalidCredentials")
    good = await fake_wire.send("POST", LOGIN, {"username": "alice", "password": "right"}, headers=bearer, signed=False)
    assert good.status_code == 200


async def test_login_and_logout_need_a_bearer_token(fake_wire: FakeWire) -> None:
    login = await fake_wire.send("POST", LOGIN, {"username": "u", "password": "p"}, signed=False)
    assert oauth_error_of(login) == (401, "invalid_token")
    logout = await fake_wire.send("POST", LOGOUT, headers={"VZ-M2M-Token": fake_wire.session}, signed=False)
    assert oauth_error_of(logout) == (401, "invalid_token")


# -- the same answers over HTTP ------------------------------------------------------------------------------

HTTP_SCRIPT: list[tuple[str, str, bytes]] = [
    ("GET", V1, b""),
    ("POST", V1, b'{"name":"Fota","url":"http://l.example","username":"u"}'),
    ("GET", V1, b""),
    ("DELETE", f"{V1}/name/Fota", b""),
    ("DELETE", f"{V1}/name/Fota", b""),
    ("PUT", V2, b'{"url":"https://l.example/2"}'),
    ("POST", V2, b'{"url":"https://l.example/2"}'),
    ("GET", V2, b""),
    ("POST", V3, b'{"url":"http://not-https.example"}'),
    ("POST", V3, b"{not json"),
    ("GET", "/api/fota/v3/callbacks/123", b""),
    ("GET", "/api/fota/v9/callbacks", b""),
    ("PATCH", V2, b""),
]


async def test_asgi_app_answers_like_handle() -> None:
    in_process, served = FakeWire(FakeThingSpace()), FakeWire(FakeThingSpace())
    json_type = {"Content-Type": "application/json"}
    with serve(served.fake) as base_url:
        async with httpx.AsyncClient(base_url=base_url) as http:
            for method, path, content in HTTP_SCRIPT:
                expected = await in_process.send(method, path, headers=json_type, content=content)
                got = await http.request(method, path, headers={**served.auth(), **json_type}, content=content)
                assert (got.status_code, got.content) == (expected.status_code, expected.content), (method, path)
                assert got.headers.get("content-type") == expected.headers.get("content-type")
                assert got.headers.get("allow") == expected.headers.get("allow")
    assert served.fake.callbacks(ACCOUNT) == in_process.fake.callbacks(ACCOUNT)
    assert [r.path for r in served.fake.requests] == [path for _, path, _ in HTTP_SCRIPT]


async def test_asgi_app_refuses_a_huge_body() -> None:
    fake_wire = FakeWire(FakeThingSpace())
    with serve(fake_wire.fake) as base_url:
        async with httpx.AsyncClient(base_url=base_url) as http:
            response = await http.post(V2, headers=fake_wire.auth(), content=b"x" * (2 * 1024 * 1024))
    assert response.status_code == 413
    assert response.json()["errorCode"] == "RequestTooLarge"
    assert fake_wire.fake.requests == []


async def test_asgi_app_reads_a_body_of_exactly_the_limit_and_refuses_one_byte_more() -> None:
    fake_wire = FakeWire(FakeThingSpace())
    limit = 1024 * 1024  # wire.md: the fake refuses request bodies over 1 MiB

    async def streamed(size: int) -> AsyncIterator[bytes]:  # many ASGI body messages, no Content-Length
        for start in range(0, size, 64 * 1024):
            yield b" " * min(64 * 1024, size - start)

    with serve(fake_wire.fake) as base_url:
        async with httpx.AsyncClient(base_url=base_url) as http:
            headers = {**fake_wire.auth(), "Content-Type": "application/json"}
            at_limit = await http.post(V2, headers=headers, content=streamed(limit))
            over = await http.post(V2, headers=headers, content=streamed(limit + 1))
    assert at_limit.json()["errorCode"] == "InvalidRequestBody"  # read whole and handled: blanks are not JSON
    assert [len(recorded.content) for recorded in fake_wire.fake.requests] == [limit]
    assert (over.status_code, over.json()["errorCode"]) == (413, "RequestTooLarge")
