"""Authentication: OAuth client credentials, M2M session login, token sources, renewal, env vars, secrets.

Every flow runs in memory (`InMemoryTransport` on a `FakeAuthServer`) and over real HTTP (the same fake
served by uvicorn on 127.0.0.1, through `HttpxTransport`).
"""

from __future__ import annotations

import base64
import collections
import json
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import attrs
import pytest

import fota_callbacks as fota
from tests.auth_server import (
    ACCOUNT,
    API_PATH,
    CALLBACK_URL,
    LOGIN_PATH,
    LOGOUT_PATH,
    TOKEN_PATH,
    FakeAuthServer,
    FakeClock,
    HandlerApp,
    LogCapture,
    RecordingSleep,
    assert_no_secret,
    bearer_of,
    capture_logs,
    json_response,
    path_of,
    run_handler_app,
)
from tests.scripted_server import Drop, Slow

pytestmark = pytest.mark.anyio

ENV_NAMES = (
    "THINGSPACE_CLIENT_ID",
    "THINGSPACE_CLIENT_SECRET",
    "THINGSPACE_M2M_TOKEN",
    "THINGSPACE_USERNAME",
    "THINGSPACE_PASSWORD",
    "THINGSPACE_BASE_URL",
)
SUMMARY = fota.CallbackSummary(url=CALLBACK_URL)


def basic(client_id: str, client_secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{client_secret}".encode()).decode("ascii")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def _handler_app() -> Iterator[HandlerApp]:
    yield from run_handler_app()


@pytest.fixture
def logs() -> Iterator[LogCapture]:
    yield from capture_logs()


@attrs.define
class Served:
    """A `FakeAuthServer` reachable in memory or over HTTP, and clients on it."""

    kind: str
    server: FakeAuthServer
    base_url: str
    sleep: RecordingSleep = attrs.field(factory=RecordingSleep)

    def transport(self) -> fota.Transport:
        if self.kind == "memory":
            return fota.InMemoryTransport(self.server)
        # Plain http:// to 127.0.0.1: skip loading the CA bundle (~60 ms per client), nothing else changes.
        return fota.HttpxTransport(verify=False)

    def client(self, **kwargs: Any) -> fota.FotaCallbacksClient:
        """OAuth with the server's client credentials and a static M2M token, unless `kwargs` say otherwise."""
        if "access_token" not in kwargs:
            kwargs.setdefault("client_id", self.server.client_id)
            kwargs.setdefault("client_secret", self.server.client_secret)
        if "username" not in kwargs and "m2m_token" not in kwargs:
            kwargs["m2m_token"] = "static-session"
            self.server.valid_sessions.add("static-session")
        kwargs.setdefault("base_url", self.base_url)
        if "transport" not in kwargs:
            kwargs["transport"] = self.transport()
        kwargs.setdefault("sleep", self.sleep)
        return fota.FotaCallbacksClient(**kwargs)

    def login_client(self, **kwargs: Any) -> fota.FotaCallbacksClient:
        """OAuth + M2M session login with the server's credentials."""
        kwargs.setdefault("username", self.server.username)
        kwargs.setdefault("password", self.server.password)
        return self.client(**kwargs)


Serve = Callable[[FakeAuthServer], Served]


@pytest.fixture(params=["memory", "http"])
def serve(request: pytest.FixtureRequest) -> Iterator[Serve]:
    """`serve(FakeAuthServer(...))` -> a `Served` on the chosen transport."""
    kind: str = request.param
    app: HandlerApp | None = request.getfixturevalue("_handler_app") if kind == "http" else None

    def make(server: FakeAuthServer) -> Served:
        if app is None:
            return Served(kind, server, "https://thingspace.test")
        app.handler = server
        return Served(kind, server, app.base_url)

    yield make
    if app is not None:
        app.handler = None


async def list_once(client: fota.FotaCallbacksClient) -> fota.CallbackSummary:
    return await client.v2.list_registered_callbacks(ACCOUNT)


# -- OAuth client credentials -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scopes", "form"),
    [
        pytest.param((), b"grant_type=client_credentials", id="no-scope"),
        pytest.param(["a", "b"], b"grant_type=client_credentials&scope=a+b", id="scopes"),
    ],
)
async def test_oauth_token_request_is_exactly_the_documented_one(serve: Serve, scopes: list[str], form: bytes) -> None:
    served = serve(FakeAuthServer())
    async with served.client(scopes=scopes) as client:
        assert await list_once(client) == SUMMARY

    server = served.server
    assert [path_of(request) for request in server.requests] == [TOKEN_PATH, API_PATH]
    [token_request] = server.token_requests
    assert token_request.method == "POST"
    assert token_request.url == served.base_url + TOKEN_PATH
    assert token_request.headers["Authorization"] == basic("my-client", "my-secret")
    assert token_request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert token_request.headers["Accept"] == "application/json"
    assert token_request.content == form
    [api_request] = server.api_requests
    assert api_request.headers["Authorization"] == "Bearer token-1"
    assert api_request.headers["VZ-M2M-Token"] == "static-session"


async def test_concurrent_first_calls_make_one_token_request_and_one_login(serve: Serve) -> None:
    served = serve(FakeAuthServer(token_delay=0.01, login_delay=0.01))
    results: list[fota.CallbackSummary] = []

    async def call(client: fota.FotaCallbacksClient) -> None:
        results.append(await list_once(client))

    # Over HTTP, 100 calls (the default pool size: all of them really in flight at once) keep the test quick.
    calls = 500 if served.kind == "memory" else 100
    async with served.login_client() as client, anyio.create_task_group() as tg:
        for _ in range(calls):
            tg.start_soon(call, client)

    server = served.server
    assert results == [SUMMARY] * calls
    assert len(server.token_requests) == 1
    assert len(server.login_requests) == 1
    assert len(server.api_requests) == calls
    assert {bearer_of(request) for request in server.api_requests} == {"token-1"}
    assert {request.headers["VZ-M2M-Token"] for request in server.api_requests} == {"session-1"}


async def test_token_is_renewed_once_when_it_expires(serve: Serve) -> None:
    """expires_in=3600 and TOKEN_EXPIRY_MARGIN=60: cached for 3540 s of the client's clock, then renewed once."""
    clock = FakeClock()
    served = serve(FakeAuthServer(expires_in=3600))
    server = served.server
    async with served.client(clock=clock) as client:
        await list_once(client)
        clock.advance(3539.9)
        await list_once(client)
        assert len(server.token_requests) == 1

        clock.advance(0.2)  # 3540.1 s after the token was issued
        async with anyio.create_task_group() as tg:
            for _ in range(50):
                tg.start_soon(list_once, client)
        assert len(server.token_requests) == 2

        clock.advance(3000)
        await list_once(client)
        assert len(server.token_requests) == 2

    bearers = [bearer_of(request) for request in server.api_requests]
    assert bearers == ["token-1", "token-1", *["token-2"] * 51]
    assert served.sleep.delays == []


async def test_401_renews_the_token_and_retries_once(serve: Serve) -> None:
    served = serve(FakeAuthServer())
    server = served.server
    async with served.client() as client:
        await list_once(client)
        server.forget_tokens()  # the service stops accepting token-1
        assert await list_once(client) == SUMMARY

    assert len(server.token_requests) == 2
    assert [(bearer_of(r), path_of(r)) for r in server.api_requests] == [
        ("token-1", API_PATH),
        ("token-1", API_PATH),
        ("token-2", API_PATH),
    ]
    assert served.sleep.delays == []  # a renewal is not a backoff


async def test_concurrent_401s_cause_one_renewal(serve: Serve) -> None:
    served = serve(FakeAuthServer(token_delay=0.01))
    server = served.server
    async with served.login_client() as client:
        await list_once(client)
        server.forget_tokens()
        server.forget_sessions()
        async with anyio.create_task_group() as tg:
            for _ in range(50):
                tg.start_soon(list_once, client)

    assert len(server.token_requests) == 2
    assert len(server.login_requests) == 2
    # Each call: refused once with the old pair, then retried with the new one (in whatever order they arrive).
    sent = collections.Counter((bearer_of(r), r.headers["VZ-M2M-Token"]) for r in server.api_requests)
    assert sent == {("token-1", "session-1"): 1 + 50, ("token-2", "session-2"): 50}


async def test_401_after_renewal_raises_authentication_error(serve: Serve) -> None:
    served = serve(FakeAuthServer())
    server = served.server
    refused = json_response(401, {"errorCode": "UnAuthorized", "errorMessage": "no"})
    server.api_answers.extend([refused, refused, refused])
    async with served.client() as client:
        with pytest.raises(fota.AuthenticationError) as excinfo:
            await list_once(client)

    assert excinfo.value.status_code == 401
    assert excinfo.value.retries_taken == 1  # the retry with renewed credentials counts
    assert len(server.api_requests) == 2
    assert len(server.token_requests) == 2
    assert served.sleep.delays == []


async def test_401_with_static_tokens_is_final(serve: Serve) -> None:
    served = serve(FakeAuthServer(static_tokens={"other-token"}))
    server = served.server
    async with served.client(access_token="static-token", m2m_token="static-session") as client:
        with pytest.raises(fota.AuthenticationError) as excinfo:
            await list_once(client)

    assert excinfo.value.status_code == 401
    assert len(server.api_requests) == 1
    assert server.token_requests == []
    assert served.sleep.delays == []


async def test_failed_refresh_is_reported_to_every_waiter_and_the_next_call_retries(serve: Serve) -> None:
    served = serve(FakeAuthServer())
    server = served.server
    refusal = json_response(400, {"error": "invalid_client", "error_description": "client disabled"})
    server.token_answers.append(Slow(0.05, refusal))
    errors: list[fota.OAuthError] = []

    async def call(client: fota.FotaCallbacksClient) -> None:
        try:
            await list_once(client)
        except fota.OAuthError as exc:
            errors.append(exc)

    async with served.client() as client:
        async with anyio.create_task_group() as tg:
            for _ in range(100):
                tg.start_soon(call, client)
        assert len(errors) == 100
        assert {(exc.error, exc.status_code) for exc in errors} == {("invalid_client", 400)}
        assert len(server.token_requests) == 1
        assert server.api_requests == []

        assert await list_once(client) == SUMMARY  # the failure is not cached
    assert len(server.token_requests) == 2
    assert len(server.api_requests) == 1


OAUTH_ERRORS = [
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
]


@pytest.mark.parametrize("status", [400, 401])
@pytest.mark.parametrize("error", OAUTH_ERRORS)
async def test_oauth_error_carries_the_documented_fields(serve: Serve, error: str, status: int) -> None:
    served = serve(FakeAuthServer())
    server = served.server
    body = {"error": error, "error_description": f"about {error}", "error_uri": "https://example.com/e"}
    server.token_answers.append(json_response(status, body))
    async with served.client() as client:
        with pytest.raises(fota.OAuthError) as excinfo:
            await list_once(client)

    exc = excinfo.value
    assert isinstance(exc, fota.ApiError)
    assert (exc.error, exc.error_description, exc.status_code) == (error, f"about {error}", status)
    assert error in str(exc)
    assert len(server.token_requests) == 1  # a refusal is not retried
    assert server.api_requests == []
    assert served.sleep.delays == []


async def test_oauth_error_without_a_json_body(serve: Serve) -> None:
    served = serve(FakeAuthServer())
    served.server.token_answers.append(fota.Response(401, {"content-type": "text/html"}, b"<h1>nope</h1>"))
    async with served.client() as client:
        with pytest.raises(fota.OAuthError) as excinfo:
            await list_once(client)
    assert (excinfo.value.error, excinfo.value.error_description, excinfo.value.status_code) == (None, None, 401)


async def test_token_endpoint_network_failure_raises_api_connection_error(serve: Serve) -> None:
    served = serve(FakeAuthServer())
    server = served.server
    server.token_answers.extend([Drop(), Drop(), Drop()])
    async with served.client(retry_policy=fota.RetryPolicy(jitter=0)) as client:
        with pytest.raises(fota.ApiConnectionError) as excinfo:
            await list_once(client)
        assert excinfo.value.retries_taken == 2
        assert len(server.token_requests) == 3  # retried like any request
        assert served.sleep.delays == [0.5, 1.0]
        assert server.api_requests == []

        assert await list_once(client) == SUMMARY
    assert len(server.token_requests) == 4


async def test_token_endpoint_unreachable_raises_api_connection_error() -> None:
    # Port 1 on 127.0.0.1: nothing listens, the connection is refused before anything is sent.
    async with fota.FotaCallbacksClient(
        client_id="id", client_secret="secret", m2m_token="m2m", base_url="http://127.0.0.1:1", max_retries=0
    ) as client:
        with pytest.raises(fota.ApiConnectionError) as excinfo:
            await list_once(client)
    assert excinfo.value.request_sent is False


async def test_token_endpoint_5xx_is_retried(serve: Serve) -> None:
    served = serve(FakeAuthServer())
    served.server.token_answers.append(json_response(503, {}))
    async with served.client(retry_policy=fota.RetryPolicy(jitter=0)) as client:
        assert await list_once(client) == SUMMARY
    assert len(served.server.token_requests) == 2
    assert served.sleep.delays == [0.5]


async def test_with_options_clients_share_the_token(serve: Serve) -> None:
    served = serve(FakeAuthServer())
    async with served.client() as client:
        other = client.with_options(timeout=5.0, max_retries=0)
        await list_once(client)
        await list_once(other)
        await other.aclose()  # a no-op: `client` still works
        await list_once(client)
    assert len(served.server.token_requests) == 1
    assert len(served.server.api_requests) == 3


# -- M2M session login -------------------------------------------------------------------------------------


async def test_m2m_login_request_and_session_header(serve: Serve) -> None:
    served = serve(FakeAuthServer())
    server = served.server
    async with served.login_client() as client:
        assert await list_once(client) == SUMMARY

    assert [path_of(request) for request in server.requests] == [TOKEN_PATH, LOGIN_PATH, API_PATH]
    [login] = server.login_requests
    assert login.method == "POST"
    assert login.url == served.base_url + LOGIN_PATH
    assert login.headers["Authorization"] == "Bearer token-1"
    assert login.headers["Content-Type"] == "application/json"
    assert login.content == b'{"username":"my-user","password":"my-password"}'
    [api_request] = server.api_requests
    assert api_request.headers["Authorization"] == "Bearer token-1"
    assert api_request.headers["VZ-M2M-Token"] == "session-1"


async def test_expired_session_is_renewed_by_logging_in_again(serve: Serve) -> None:
    served = serve(FakeAuthServer(static_tokens={"static-token"}))
    server = served.server
    async with served.login_client(access_token="static-token") as client:
        await list_once(client)
        server.forget_sessions()
        assert await list_once(client) == SUMMARY

    assert server.token_requests == []
    assert len(server.login_requests) == 2
    assert [r.headers["VZ-M2M-Token"] for r in server.api_requests] == ["session-1", "session-1", "session-2"]


async def test_401_with_oauth_and_login_renews_both(serve: Serve) -> None:
    served = serve(FakeAuthServer())
    server = served.server
    async with served.login_client() as client:
        await list_once(client)
        server.forget_sessions()
        assert await list_once(client) == SUMMARY

    assert len(server.token_requests) == 2
    assert len(server.login_requests) == 2
    last = server.api_requests[-1]
    assert (bearer_of(last), last.headers["VZ-M2M-Token"]) == ("token-2", "session-2")
    assert server.login_requests[1].headers["Authorization"] == "Bearer token-2"


async def test_login_refused_raises_session_login_error(serve: Serve) -> None:
    served = serve(FakeAuthServer())
    async with served.login_client(password="wrong-password") as client:
        with pytest.raises(fota.SessionLoginError) as excinfo:
            await list_once(client)
    exc = excinfo.value
    assert isinstance(exc, fota.AuthenticationError)
    assert (exc.status_code, exc.error_code, exc.error_message) == (400, "LoginFailed", "bad username or password")
    assert served.server.api_requests == []
    assert len(served.server.login_requests) == 1


async def test_login_refused_with_a_body_that_is_not_json(serve: Serve) -> None:
    served = serve(FakeAuthServer())
    served.server.login_answers.append(fota.Response(400, {"content-type": "text/plain"}, b"Bad Request"))
    async with served.login_client() as client:
        with pytest.raises(fota.SessionLoginError) as excinfo:
            await list_once(client)
    assert (excinfo.value.status_code, excinfo.value.error_code, excinfo.value.error_message) == (400, None, None)


@pytest.mark.parametrize(
    ("logout_on_close", "calls", "expected_logouts"),
    [
        pytest.param(True, 1, 1, id="logs-out"),
        pytest.param(False, 1, 0, id="not-asked"),
        pytest.param(True, 0, 0, id="never-logged-in"),
    ],
)
async def test_logout_on_close(serve: Serve, logout_on_close: bool, calls: int, expected_logouts: int) -> None:
    served = serve(FakeAuthServer())
    server = served.server
    client = served.login_client(logout_on_close=logout_on_close)
    for _ in range(calls):
        await list_once(client)
    await client.aclose()
    await client.aclose()  # twice is fine, and logs out once

    assert len(server.logout_requests) == expected_logouts
    if expected_logouts:
        [logout] = server.logout_requests
        assert logout.method == "POST"
        assert logout.url == served.base_url + LOGOUT_PATH
        assert logout.headers["VZ-M2M-Token"] == "session-1"
        assert logout.headers["Authorization"] == "Bearer token-1"
        assert server.logged_out == ["session-1"]
    with pytest.raises(fota.ClientClosedError):
        await list_once(client)


# -- user-supplied token sources ---------------------------------------------------------------------------


class RotatingSource:
    """A user's TokenSource: hands out `values` in turn, moving on when told the current one was refused."""

    def __init__(self, *values: str, renewable: bool = True) -> None:
        self.values = values
        self.index = 0
        self.renewable = renewable
        self.invalidated: list[str] = []
        self.gets = 0

    async def get_token(self) -> str:
        self.gets += 1
        return self.values[self.index]

    async def invalidate(self, token: str) -> bool:
        self.invalidated.append(token)
        if not self.renewable:
            return False
        if token == self.values[self.index] and self.index + 1 < len(self.values):
            self.index += 1
        return True


async def test_user_token_sources_are_used_and_told_about_refusals(serve: Serve) -> None:
    served = serve(FakeAuthServer(static_tokens={"user-token-2"}, static_sessions={"user-session-2"}))
    bearer = RotatingSource("user-token-1", "user-token-2")
    session = RotatingSource("user-session-1", "user-session-2")
    assert isinstance(bearer, fota.TokenSource)
    async with served.client(access_token=bearer, m2m_token=session) as client:
        assert await list_once(client) == SUMMARY
        assert await list_once(client) == SUMMARY

    assert bearer.invalidated == ["user-token-1"]
    assert session.invalidated == ["user-session-1"]
    sent = [(bearer_of(r), r.headers["VZ-M2M-Token"]) for r in served.server.api_requests]
    assert sent == [
        ("user-token-1", "user-session-1"),
        ("user-token-2", "user-session-2"),
        ("user-token-2", "user-session-2"),
    ]
    assert served.server.token_requests == []
    assert served.server.login_requests == []


async def test_user_token_source_that_cannot_renew_makes_401_final(serve: Serve) -> None:
    served = serve(FakeAuthServer())
    bearer = RotatingSource("user-token", renewable=False)
    async with served.client(access_token=bearer, m2m_token="static-session") as client:
        with pytest.raises(fota.AuthenticationError):
            await list_once(client)
    assert bearer.invalidated == ["user-token"]
    assert len(served.server.api_requests) == 1


# -- credentials from the environment -----------------------------------------------------------------------


async def test_credentials_from_the_environment(serve: Serve, monkeypatch: pytest.MonkeyPatch) -> None:
    served = serve(
        FakeAuthServer(client_id="env-id", client_secret="env-secret", username="env-user", password="env-pw")
    )
    monkeypatch.setenv("THINGSPACE_CLIENT_ID", "env-id")
    monkeypatch.setenv("THINGSPACE_CLIENT_SECRET", "env-secret")
    monkeypatch.setenv("THINGSPACE_USERNAME", "env-user")
    monkeypatch.setenv("THINGSPACE_PASSWORD", "env-pw")
    monkeypatch.setenv("THINGSPACE_BASE_URL", served.base_url)
    async with fota.FotaCallbacksClient(transport=served.transport()) as client:
        assert client.base_url == served.base_url
        assert await list_once(client) == SUMMARY

    server = served.server
    [token_request] = server.token_requests
    assert token_request.url == served.base_url + TOKEN_PATH
    assert token_request.headers["Authorization"] == basic("env-id", "env-secret")
    [login] = server.login_requests
    assert json.loads(login.content) == {"username": "env-user", "password": "env-pw"}
    assert server.api_requests[0].headers["VZ-M2M-Token"] == "session-1"


async def test_static_m2m_token_from_the_environment(serve: Serve, monkeypatch: pytest.MonkeyPatch) -> None:
    served = serve(FakeAuthServer(static_sessions={"env-session"}))
    monkeypatch.setenv("THINGSPACE_CLIENT_ID", "my-client")
    monkeypatch.setenv("THINGSPACE_CLIENT_SECRET", "my-secret")
    monkeypatch.setenv("THINGSPACE_M2M_TOKEN", "env-session")
    async with fota.FotaCallbacksClient(base_url=served.base_url, transport=served.transport()) as client:
        assert await list_once(client) == SUMMARY
    assert served.server.login_requests == []
    assert served.server.api_requests[0].headers["VZ-M2M-Token"] == "env-session"


@pytest.mark.parametrize(
    ("env", "kwargs", "missing", "named"),
    [
        pytest.param({"THINGSPACE_CLIENT_ID": "id"}, {"m2m_token": "m"}, "client_secret", "THINGSPACE_CLIENT_SECRET"),
        pytest.param({"THINGSPACE_CLIENT_SECRET": "s"}, {"m2m_token": "m"}, "client_id", "THINGSPACE_CLIENT_ID"),
        pytest.param({}, {"client_id": "id", "m2m_token": "m"}, "client_secret", "client_secret"),
        pytest.param({}, {"client_secret": "s", "m2m_token": "m"}, "client_id", "client_id"),
        pytest.param({}, {"access_token": "t", "username": "u"}, "password", "password"),
        pytest.param({}, {"access_token": "t", "password": "p"}, "username", "username"),
        pytest.param({"THINGSPACE_USERNAME": "u"}, {"access_token": "t"}, "password", "THINGSPACE_PASSWORD"),
        pytest.param({"THINGSPACE_PASSWORD": "p"}, {"access_token": "t"}, "username", "THINGSPACE_USERNAME"),
        pytest.param({}, {"m2m_token": "m"}, "client_id", "client_id"),
        pytest.param({}, {"access_token": "t"}, "m2m_token", "m2m_token"),
        pytest.param({}, {}, "client_id", "client_id"),
    ],
)
async def test_missing_credentials_fail_before_sending(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], kwargs: dict[str, Any], missing: str, named: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    sent: list[fota.Request] = []

    async def handler(request: fota.Request) -> fota.Response:
        sent.append(request)
        return fota.Response(200)

    with pytest.raises(fota.MissingCredentialsError) as excinfo:
        fota.FotaCallbacksClient(transport=fota.InMemoryTransport(handler), **kwargs)
    assert isinstance(excinfo.value, fota.InvalidArgumentError)
    assert excinfo.value.parameter == missing
    assert named in str(excinfo.value)
    assert sent == []


# -- secrets never shown ------------------------------------------------------------------------------------

SECRET = "SENTINEL-SECRET-123"
PASSWORD = "SENTINEL-PW-456"
TOKEN = "SENTINEL-TOKEN-789"
SESSION = "SENTINEL-SESSION-000"
SENTINELS = (SECRET, PASSWORD, TOKEN, SESSION, base64.b64encode(f"my-client:{SECRET}".encode()).decode())


def exception_texts(exc: BaseException) -> list[str]:
    texts = [repr(exc), str(exc), "".join(traceback.format_exception(exc))]
    for attribute in ("request", "headers"):
        value = getattr(exc, attribute, None)
        if value is not None:
            texts += [repr(value), str(value)]
    request = getattr(exc, "request", None)
    if request is not None:
        texts += [repr(request.headers), str(request.headers)]
    for linked in (exc.__cause__, exc.__context__):
        if linked is not None:
            texts += [repr(linked), str(linked)]
    return texts


async def test_no_secret_in_any_repr_error_or_log_record(serve: Serve, logs: LogCapture) -> None:
    served = serve(FakeAuthServer(client_secret=SECRET, password=PASSWORD, token_prefix=f"{TOKEN}-"))
    server = served.server
    server.session_prefix = f"{SESSION}-"
    seen: list[object] = []

    async def spy(request: fota.Request, call_next: fota.SendNext) -> fota.Response:
        seen.append(request)
        response = await call_next(request)
        seen.append(response)
        return response

    texts: list[str] = []
    errors: list[BaseException] = []
    client = served.login_client(middleware=[spy], logout_on_close=True)

    async def expect(error: type[BaseException]) -> None:
        with pytest.raises(error) as excinfo:
            await list_once(client)
        errors.append(excinfo.value)

    raw = await client.v2.with_raw_response.list_registered_callbacks(ACCOUNT)
    texts += [repr(raw), str(raw), repr(raw.headers)]
    server.forget_tokens()
    await list_once(client)  # 401 -> new token and session -> retried
    refused = json_response(401, {"errorCode": "UnAuthorized", "errorMessage": "token refused"})
    server.api_answers.extend([refused, refused])
    await expect(fota.AuthenticationError)
    server.api_answers.extend([json_response(500, {"error": "boom"})] * 3)
    await expect(fota.ServerError)
    server.api_answers.extend([Drop()] * 3)
    await expect(fota.ApiConnectionError)
    server.api_answers.append(json_response(404, {"errorCode": "E", "errorMessage": "not found"}))
    await expect(fota.NotFoundError)
    server.api_answers.append(json_response(429, {}, {"Retry-After": "600"}))
    await expect(fota.RateLimitError)
    server.forget_sessions()
    server.login_answers.append(json_response(400, {"errorCode": "LoginFailed", "errorMessage": "locked"}))
    await expect(fota.SessionLoginError)
    server.forget_tokens()
    server.token_answers.append(json_response(401, {"error": "invalid_client", "error_description": "x"}))
    await expect(fota.OAuthError)
    await list_once(client)
    clone = client.with_options(timeout=1.0)
    texts += [repr(client), str(client), repr(clone), str(clone), repr(client.transport), str(client.transport)]
    await client.aclose()
    with pytest.raises(fota.ClientClosedError) as closed:
        await list_once(client)
    errors.append(closed.value)

    # The sentinels did travel: the server issued and received them.
    assert any(t.startswith(TOKEN) for t in server.issued_tokens)
    assert any(s.startswith(SESSION) for s in server.issued_sessions)
    assert server.logged_out
    assert any(PASSWORD.encode() in request.content for request in server.login_requests)

    for item in seen:
        texts += [repr(item), str(item), repr(getattr(item, "headers", None))]
    for request in server.requests:
        texts += [repr(request), str(request), repr(request.headers)]
    for exc in errors:
        texts += exception_texts(exc)
    assert len(errors) == 8
    texts += logs.texts()
    assert logs.records
    assert_no_secret(texts, SENTINELS)
