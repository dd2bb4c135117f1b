"""Authentication: OAuth client credentials, M2M session login, token sources, renewal, env vars, secrets.

The flows run against `FakeThingSpace` (which issues tokens and sessions and checks them like ThingSpace),
exact answers of the token and login endpoints against a `ScriptedTransport`; each in memory and over real HTTP
(the same fake or script served by uvicorn on 127.0.0.1, through `HttpxTransport`).
"""

from __future__ import annotations

import base64
import collections
import json
import traceback
from collections.abc import Hashable, Iterator, Sequence
from typing import Any

import anyio
import attrs
import pytest

import fota_callbacks as fota
from fota_callbacks.testing import FakeThingSpace, Fault, RecordedRequest
from fota_callbacks.transport import SendNext
from tests.support.harness import (
    ACCOUNT,
    LOGIN_PATH,
    LOGOUT_PATH,
    TOKEN_PATH,
    V2_PATH,
    FakeClock,
    LogCapture,
    RecordingSleep,
    Scripted,
    assert_no_secret,
    capture_logs,
    list_once,
)

pytestmark = pytest.mark.anyio

CALLBACK_URL = "https://example.com/callback"
SUMMARY = fota.CallbackSummary(url=CALLBACK_URL)
CLIENT_ID, CLIENT_SECRET, USERNAME, PASSWORD = "my-client", "my-secret", "my-user", "my-password"


def basic(client_id: str, client_secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{client_secret}".encode()).decode("ascii")


def order(values: Sequence[Hashable]) -> list[int]:
    """Each value numbered by its first appearance: which token (the 1st, the 2nd...) each request carried."""
    numbers: dict[Hashable, int] = {}
    return [numbers.setdefault(value, len(numbers) + 1) for value in values]


@pytest.fixture(autouse=True)
def _clean_environment(clean_env: pytest.MonkeyPatch) -> None:
    """No THINGSPACE_* variable from the shell running the tests."""


@pytest.fixture
def logs() -> Iterator[LogCapture]:
    yield from capture_logs()


@attrs.define
class Faked:
    """A `FakeThingSpace` reachable in memory or over HTTP, and clients on it."""

    kind: str
    fake: FakeThingSpace
    base_url: str
    sleep: RecordingSleep = attrs.field(factory=RecordingSleep)

    def transport(self) -> fota.Transport:
        if self.kind == "memory":
            return self.fake.transport()
        # Plain http:// to 127.0.0.1: skip loading the CA bundle (~60 ms per client), nothing else changes.
        return fota.HttpxTransport(verify=False)

    def client(self, **kwargs: Any) -> fota.FotaCallbacksClient:
        """OAuth with the accepted client credentials and a static M2M session, unless `kwargs` say otherwise."""
        if "access_token" not in kwargs:
            kwargs.setdefault("client_id", CLIENT_ID)
            kwargs.setdefault("client_secret", CLIENT_SECRET)
        if "username" not in kwargs and "m2m_token" not in kwargs:
            kwargs["m2m_token"] = self.fake.issue_tokens()[1]
        kwargs.setdefault("base_url", self.base_url)
        kwargs.setdefault("transport", self.transport())
        kwargs.setdefault("sleep", self.sleep)
        return fota.FotaCallbacksClient(**kwargs)

    def login_client(self, **kwargs: Any) -> fota.FotaCallbacksClient:
        """OAuth + M2M session login with the accepted credentials."""
        kwargs.setdefault("username", USERNAME)
        kwargs.setdefault("password", PASSWORD)
        return self.client(**kwargs)

    # -- what the fake received --------------------------------------------------------------------------------

    def received(self, operation: str) -> list[RecordedRequest]:
        return self.fake.requests_for(operation=operation)  # type: ignore[arg-type]

    @property
    def api_requests(self) -> list[RecordedRequest]:
        return self.fake.requests_for(version="v2")

    def bearers(self) -> list[int]:
        """Which access token (1st, 2nd...) each API request carried."""
        return order([request.headers["Authorization"] for request in self.api_requests])

    def sessions(self) -> list[int]:
        """Which M2M session (1st, 2nd...) each API request carried."""
        return order([request.headers["VZ-M2M-Token"] for request in self.api_requests])


@pytest.fixture(params=["memory", "http"])
def faked(request: pytest.FixtureRequest) -> Faked:
    """A fake that accepts only `my-client`/`my-secret` and `my-user`/`my-password`, in memory or over HTTP, with
    a V2 registration to list."""
    fake = FakeThingSpace()
    fake.accept_only(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, username=USERNAME, password=PASSWORD)
    fake.seed(ACCOUNT, v2=CALLBACK_URL)
    if request.param == "http":
        board, base_url = request.getfixturevalue("_switchboard")
        board.app = fake.asgi_app
        return Faked("http", fake, base_url)
    return Faked("memory", fake, "https://thingspace.fake.invalid")


def token_answer(value: str) -> dict[str, object]:
    return {"access_token": value, "token_type": "Bearer", "expires_in": 3600}


def scripted_client(scripted: Scripted, **kwargs: Any) -> fota.FotaCallbacksClient:
    kwargs.setdefault("client_id", CLIENT_ID)
    kwargs.setdefault("client_secret", CLIENT_SECRET)
    kwargs.setdefault("m2m_token", "static-session")
    return scripted.client(**kwargs)


# -- OAuth client credentials -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scopes", "form"),
    [
        pytest.param((), b"grant_type=client_credentials", id="no-scope"),
        pytest.param(["a", "b"], b"grant_type=client_credentials&scope=a+b", id="scopes"),
    ],
)
async def test_oauth_token_request_is_exactly_the_documented_one(faked: Faked, scopes: list[str], form: bytes) -> None:
    _, session = faked.fake.issue_tokens()
    async with faked.client(scopes=scopes, m2m_token=session) as client:
        assert await list_once(client) == SUMMARY

    assert [request.path for request in faked.fake.requests] == [TOKEN_PATH, V2_PATH]
    [token_request] = faked.received("token")
    assert token_request.method == "POST"
    assert token_request.url == faked.base_url + TOKEN_PATH
    assert token_request.headers["Authorization"] == basic(CLIENT_ID, CLIENT_SECRET)
    assert token_request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert token_request.headers["Accept"] == "application/json"
    assert token_request.content == form
    [api_request] = faked.api_requests
    assert api_request.headers["Authorization"].startswith("Bearer ")  # the token issued (the fake checked it)
    assert api_request.headers["VZ-M2M-Token"] == session


async def test_concurrent_first_calls_make_one_token_request_and_one_login(faked: Faked) -> None:
    # Slow token and login answers: every call arrives while they are outstanding.
    faked.fake.inject(Fault.delay(0.01), operation="token")
    faked.fake.inject(Fault.delay(0.01), operation="login")
    results: list[fota.CallbackSummary] = []

    async def call(client: fota.FotaCallbacksClient) -> None:
        results.append(await list_once(client))

    # Over HTTP, 100 calls (the default pool size: all of them really in flight at once) keep the test quick.
    calls = 500 if faked.kind == "memory" else 100
    async with faked.login_client() as client, anyio.create_task_group() as tg:
        for _ in range(calls):
            tg.start_soon(call, client)

    assert results == [SUMMARY] * calls
    assert len(faked.received("token")) == 1
    assert len(faked.received("login")) == 1
    assert len(faked.api_requests) == calls
    assert faked.bearers() == [1] * calls
    assert faked.sessions() == [1] * calls


async def test_token_is_renewed_once_when_it_expires(faked: Faked) -> None:
    """expires_in=3600 and TOKEN_EXPIRY_MARGIN=60: cached for 3540 s of the client's clock, then renewed once."""
    clock = FakeClock()
    async with faked.client(clock=clock) as client:
        await list_once(client)
        clock.advance(3539.9)
        await list_once(client)
        assert len(faked.received("token")) == 1

        clock.advance(0.2)  # 3540.1 s after the token was issued
        async with anyio.create_task_group() as tg:
            for _ in range(50):
                tg.start_soon(list_once, client)
        assert len(faked.received("token")) == 2

        clock.advance(3000)
        await list_once(client)
        assert len(faked.received("token")) == 2

    assert faked.bearers() == [1, 1, *[2] * 51]
    assert faked.sleep.delays == []


async def test_401_renews_the_token_and_retries_once(faked: Faked) -> None:
    async with faked.client() as client:
        await list_once(client)
        faked.fake.advance(3600)  # the fake's clock: its token expired (the client's clock did not move)
        assert await list_once(client) == SUMMARY

    assert len(faked.received("token")) == 2
    assert faked.bearers() == [1, 1, 2]
    assert faked.sleep.delays == []  # a renewal is not a backoff


async def test_concurrent_401s_cause_one_renewal(faked: Faked) -> None:
    async with faked.login_client() as client:
        await list_once(client)
        faked.fake.revoke_tokens()
        # Slow answers: all 50 calls are sent with the old pair before the first refusal arrives.
        faked.fake.inject(Fault.delay(0.01), times=50, version="v2")
        faked.fake.inject(Fault.delay(0.01), operation="token")
        async with anyio.create_task_group() as tg:
            for _ in range(50):
                tg.start_soon(list_once, client)

    assert len(faked.received("token")) == 2
    assert len(faked.received("login")) == 2
    # Each call: refused once with the old pair, then retried with the new one (in whatever order they arrive).
    sent = collections.Counter(zip(faked.bearers(), faked.sessions(), strict=True))
    assert sent == {(1, 1): 1 + 50, (2, 2): 50}


async def test_401_after_renewal_raises_authentication_error(faked: Faked) -> None:
    refused = Fault.status(401, body=b'{"errorCode":"UnAuthorized","errorMessage":"no"}')
    faked.fake.inject(refused, times=2, version="v2")
    async with faked.client() as client:
        with pytest.raises(fota.AuthenticationError) as excinfo:
            await list_once(client)

    assert excinfo.value.status_code == 401
    assert excinfo.value.retries_taken == 1  # the retry with renewed credentials counts
    assert len(faked.api_requests) == 2
    assert len(faked.received("token")) == 2
    assert faked.fake.pending_faults() == []
    assert faked.sleep.delays == []


async def test_401_with_static_tokens_is_final(faked: Faked) -> None:
    _, session = faked.fake.issue_tokens()
    async with faked.client(access_token="not-a-token-the-fake-issued", m2m_token=session) as client:
        with pytest.raises(fota.AuthenticationError) as excinfo:
            await list_once(client)

    assert excinfo.value.status_code == 401
    assert len(faked.api_requests) == 1
    assert faked.received("token") == []
    assert faked.sleep.delays == []


async def test_failed_refresh_is_reported_to_every_waiter_and_the_next_call_retries(scripted: Scripted) -> None:
    script = scripted.script
    refusal = {"error": "invalid_client", "error_description": "client disabled"}
    script.respond(400, json=refusal, delay=0.05, path=TOKEN_PATH)
    script.respond(json=token_answer("t2"), path=TOKEN_PATH)
    script.respond(json={"url": CALLBACK_URL}, path=V2_PATH)
    errors: list[fota.OAuthError] = []

    async def call(client: fota.FotaCallbacksClient) -> None:
        try:
            await list_once(client)
        except fota.OAuthError as exc:
            errors.append(exc)

    async with scripted_client(scripted, sleep=RecordingSleep()) as client:
        async with anyio.create_task_group() as tg:
            for _ in range(100):
                tg.start_soon(call, client)
        assert len(errors) == 100
        assert {(exc.error, exc.status_code) for exc in errors} == {("invalid_client", 400)}
        assert scripted.paths() == [TOKEN_PATH]

        assert await list_once(client) == SUMMARY  # the failure is not cached
    assert scripted.paths() == [TOKEN_PATH, TOKEN_PATH, V2_PATH]
    script.assert_all_consumed()


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
async def test_oauth_error_carries_the_documented_fields(scripted: Scripted, error: str, status: int) -> None:
    body = {"error": error, "error_description": f"about {error}", "error_uri": "https://example.com/e"}
    scripted.script.respond(status, json=body)
    sleep = RecordingSleep()
    async with scripted_client(scripted, sleep=sleep) as client:
        with pytest.raises(fota.OAuthError) as excinfo:
            await list_once(client)

    exc = excinfo.value
    assert isinstance(exc, fota.ApiError)
    assert (exc.error, exc.error_description, exc.status_code) == (error, f"about {error}", status)
    assert error in str(exc)
    assert scripted.paths() == [TOKEN_PATH]  # a refusal is not retried, and nothing else is sent
    assert sleep.delays == []


async def test_oauth_error_without_a_json_body(scripted: Scripted) -> None:
    scripted.script.respond(401, headers={"content-type": "text/html"}, content=b"<h1>nope</h1>")
    async with scripted_client(scripted) as client:
        with pytest.raises(fota.OAuthError) as excinfo:
            await list_once(client)
    assert (excinfo.value.error, excinfo.value.error_description, excinfo.value.status_code) == (None, None, 401)


async def test_token_endpoint_network_failure_raises_api_connection_error(scripted: Scripted) -> None:
    script = scripted.script
    script.drop(times=3, path=TOKEN_PATH)
    script.respond(json=token_answer("t1"), path=TOKEN_PATH)
    script.respond(json={"url": CALLBACK_URL}, path=V2_PATH)
    sleep = RecordingSleep()
    async with scripted_client(scripted, sleep=sleep, retry_policy=fota.RetryPolicy(jitter=0)) as client:
        with pytest.raises(fota.ApiConnectionError) as excinfo:
            await list_once(client)
        assert excinfo.value.retries_taken == 2
        assert scripted.paths() == [TOKEN_PATH] * 3  # retried like any request, and no API request
        assert sleep.delays == [0.5, 1.0]

        assert await list_once(client) == SUMMARY
    assert scripted.paths() == [TOKEN_PATH] * 4 + [V2_PATH]


async def test_token_endpoint_unreachable_raises_api_connection_error() -> None:
    # Port 1 on 127.0.0.1: nothing listens, the connection is refused before anything is sent.
    async with fota.FotaCallbacksClient(
        client_id="id", client_secret="secret", m2m_token="m2m", base_url="http://127.0.0.1:1", max_retries=0
    ) as client:
        with pytest.raises(fota.ApiConnectionError) as excinfo:
            await list_once(client)
    assert excinfo.value.request_sent is False


async def test_token_endpoint_5xx_is_retried(faked: Faked) -> None:
    faked.fake.inject(Fault.status(503), operation="token")
    async with faked.client(retry_policy=fota.RetryPolicy(jitter=0)) as client:
        assert await list_once(client) == SUMMARY
    assert len(faked.received("token")) == 2
    assert faked.sleep.delays == [0.5]


async def test_with_options_clients_share_the_token(faked: Faked) -> None:
    async with faked.client() as client:
        other = client.with_options(timeout=5.0, max_retries=0)
        await list_once(client)
        await list_once(other)
        await other.aclose()  # a no-op: `client` still works
        await list_once(client)
    assert len(faked.received("token")) == 1
    assert len(faked.api_requests) == 3


# -- M2M session login -------------------------------------------------------------------------------------


async def test_m2m_login_request_and_session_header(faked: Faked) -> None:
    async with faked.login_client() as client:
        assert await list_once(client) == SUMMARY

    assert [request.path for request in faked.fake.requests] == [TOKEN_PATH, LOGIN_PATH, V2_PATH]
    [login] = faked.received("login")
    [api_request] = faked.api_requests
    assert login.method == "POST"
    assert login.url == faked.base_url + LOGIN_PATH
    assert login.headers["Authorization"] == api_request.headers["Authorization"]  # the token just issued
    assert login.headers["Content-Type"] == "application/json"
    assert login.content == b'{"username":"my-user","password":"my-password"}'
    assert api_request.headers["VZ-M2M-Token"]  # the session issued (the fake checked it)


async def test_expired_session_is_renewed_by_logging_in_again(scripted: Scripted) -> None:
    script = scripted.script
    script.respond(json={"sessionToken": "session-1"}, path=LOGIN_PATH)
    script.respond(json={"url": CALLBACK_URL}, path=V2_PATH)
    script.respond(401, json={"errorCode": "UnauthorizedSession", "errorMessage": "expired"}, path=V2_PATH)
    script.respond(json={"sessionToken": "session-2"}, path=LOGIN_PATH)
    script.respond(json={"url": CALLBACK_URL}, path=V2_PATH)
    async with scripted.client(access_token="static-token", username=USERNAME, password=PASSWORD) as client:
        await list_once(client)
        assert await list_once(client) == SUMMARY

    assert scripted.paths() == [LOGIN_PATH, V2_PATH, V2_PATH, LOGIN_PATH, V2_PATH]  # no token request
    assert [scripted.header(i, "VZ-M2M-Token") for i in (1, 2, 4)] == ["session-1", "session-1", "session-2"]
    script.assert_all_consumed()


async def test_401_with_oauth_and_login_renews_both(faked: Faked) -> None:
    async with faked.login_client() as client:
        await list_once(client)
        # The session is refused (the token is still good): the client renews both.
        refused = b'{"errorCode":"UnauthorizedSession","errorMessage":"the session expired"}'
        faked.fake.inject(Fault.status(401, body=refused), version="v2")
        assert await list_once(client) == SUMMARY

    logins = faked.received("login")
    assert len(faked.received("token")) == 2
    assert len(logins) == 2
    assert (faked.bearers()[-1], faked.sessions()[-1]) == (2, 2)
    assert logins[1].headers["Authorization"] == faked.api_requests[-1].headers["Authorization"]


async def test_login_refused_raises_session_login_error(faked: Faked) -> None:
    async with faked.login_client(password="wrong-password") as client:
        with pytest.raises(fota.SessionLoginError) as excinfo:
            await list_once(client)
    exc = excinfo.value
    assert isinstance(exc, fota.AuthenticationError)
    assert (exc.status_code, exc.error_code) == (400, "InvalidCredentials")
    assert exc.error_message
    assert faked.api_requests == []
    assert len(faked.received("login")) == 1


async def test_login_refused_with_a_body_that_is_not_json(scripted: Scripted) -> None:
    scripted.script.respond(400, headers={"content-type": "text/plain"}, content=b"Bad Request", path=LOGIN_PATH)
    async with scripted.client(access_token="static-token", username=USERNAME, password=PASSWORD) as client:
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
async def test_logout_on_close(faked: Faked, logout_on_close: bool, calls: int, expected_logouts: int) -> None:
    client = faked.login_client(logout_on_close=logout_on_close)
    for _ in range(calls):
        await list_once(client)
    await client.aclose()
    await client.aclose()  # twice is fine, and logs out once

    logouts = faked.received("logout")
    assert len(logouts) == expected_logouts
    if expected_logouts:
        [logout] = logouts
        [api_request] = faked.api_requests
        assert logout.method == "POST"
        assert logout.url == faked.base_url + LOGOUT_PATH
        assert logout.headers["VZ-M2M-Token"] == api_request.headers["VZ-M2M-Token"]
        assert logout.headers["Authorization"] == api_request.headers["Authorization"]
        # the fake ended the session: a request with it is refused
        session = api_request.headers["VZ-M2M-Token"]
        token, _ = faked.fake.issue_tokens()
        async with fota.FotaCallbacksClient(
            access_token=token, m2m_token=session, transport=faked.fake.transport(), base_url=faked.base_url
        ) as after:
            with pytest.raises(fota.AuthenticationError):
                await list_once(after)
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


async def test_user_token_sources_are_used_and_told_about_refusals(faked: Faked) -> None:
    token, session = faked.fake.issue_tokens()
    bearer = RotatingSource("user-token-1", token)
    m2m = RotatingSource("user-session-1", session)
    assert isinstance(bearer, fota.TokenSource)
    async with faked.client(access_token=bearer, m2m_token=m2m) as client:
        assert await list_once(client) == SUMMARY
        assert await list_once(client) == SUMMARY

    assert bearer.invalidated == ["user-token-1"]
    assert m2m.invalidated == ["user-session-1"]
    sent = [(r.headers["Authorization"], r.headers["VZ-M2M-Token"]) for r in faked.api_requests]
    assert sent == [
        ("Bearer user-token-1", "user-session-1"),
        (f"Bearer {token}", session),
        (f"Bearer {token}", session),
    ]
    assert faked.received("token") == []
    assert faked.received("login") == []


async def test_user_token_source_that_cannot_renew_makes_401_final(faked: Faked) -> None:
    bearer = RotatingSource("user-token", renewable=False)
    async with faked.client(access_token=bearer) as client:
        with pytest.raises(fota.AuthenticationError):
            await list_once(client)
    assert bearer.invalidated == ["user-token"]
    assert len(faked.api_requests) == 1


# -- credentials from the environment -----------------------------------------------------------------------


async def test_credentials_from_the_environment(faked: Faked, monkeypatch: pytest.MonkeyPatch) -> None:
    faked.fake.accept_only(client_id="env-id", client_secret="env-secret", username="env-user", password="env-pw")
    monkeypatch.setenv("THINGSPACE_CLIENT_ID", "env-id")
    monkeypatch.setenv("THINGSPACE_CLIENT_SECRET", "env-secret")
    monkeypatch.setenv("THINGSPACE_USERNAME", "env-user")
    monkeypatch.setenv("THINGSPACE_PASSWORD", "env-pw")
    monkeypatch.setenv("THINGSPACE_BASE_URL", faked.base_url)
    async with fota.FotaCallbacksClient(transport=faked.transport()) as client:
        assert client.base_url == faked.base_url
        assert await list_once(client) == SUMMARY

    [token_request] = faked.received("token")
    assert token_request.url == faked.base_url + TOKEN_PATH
    assert token_request.headers["Authorization"] == basic("env-id", "env-secret")
    [login] = faked.received("login")
    assert json.loads(login.content) == {"username": "env-user", "password": "env-pw"}
    assert faked.sessions() == [1]


async def test_static_m2m_token_from_the_environment(faked: Faked, monkeypatch: pytest.MonkeyPatch) -> None:
    _, session = faked.fake.issue_tokens()
    monkeypatch.setenv("THINGSPACE_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("THINGSPACE_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("THINGSPACE_M2M_TOKEN", session)
    async with fota.FotaCallbacksClient(base_url=faked.base_url, transport=faked.transport()) as client:
        assert await list_once(client) == SUMMARY
    assert faked.received("login") == []
    assert faked.api_requests[0].headers["VZ-M2M-Token"] == session


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
SENTINEL_PASSWORD = "SENTINEL-PW-456"


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


async def test_no_secret_in_any_repr_error_or_log_record(faked: Faked, logs: LogCapture) -> None:
    fake = faked.fake
    fake.accept_only(client_id=CLIENT_ID, client_secret=SECRET, username=USERNAME, password=SENTINEL_PASSWORD)
    seen: list[object] = []

    async def spy(request: fota.Request, call_next: SendNext) -> fota.Response:
        seen.append(request)
        response = await call_next(request)
        seen.append(response)
        return response

    texts: list[str] = []
    errors: list[BaseException] = []
    client = faked.login_client(
        client_secret=SECRET, password=SENTINEL_PASSWORD, middleware=[spy], logout_on_close=True
    )

    async def expect(error: type[BaseException]) -> None:
        with pytest.raises(error) as excinfo:
            await list_once(client)
        errors.append(excinfo.value)

    raw = await client.v2.with_raw_response.list_registered_callbacks(ACCOUNT)
    texts += [repr(raw), str(raw), repr(raw.headers)]
    fake.advance(3600)  # the token expired
    await list_once(client)  # 401 -> new token -> retried
    refused = Fault.status(401, body=b'{"errorCode":"UnAuthorized","errorMessage":"token refused"}')
    fake.inject(refused, times=2, version="v2")
    await expect(fota.AuthenticationError)
    fake.inject(Fault.status(500, body=b'{"error":"boom"}'), times=3, version="v2")
    await expect(fota.ServerError)
    fake.inject(Fault.drop(), times=3, version="v2")
    await expect(fota.ApiConnectionError)
    fake.inject(Fault.status(404, body=b'{"errorCode":"E","errorMessage":"not found"}'), version="v2")
    await expect(fota.NotFoundError)
    fake.inject(Fault.status(429, headers={"Retry-After": "600"}), version="v2")
    await expect(fota.RateLimitError)
    fake.revoke_tokens()
    fake.inject(Fault.status(400, body=b'{"errorCode":"LoginFailed","errorMessage":"locked"}'), operation="login")
    await expect(fota.SessionLoginError)
    fake.revoke_tokens()
    fake.inject(Fault.status(401, body=b'{"error":"invalid_client","error_description":"x"}'), operation="token")
    await expect(fota.OAuthError)
    await list_once(client)
    clone = client.with_options(timeout=1.0)
    texts += [repr(client), str(client), repr(clone), str(clone), repr(client.transport), str(client.transport)]
    await client.aclose()
    with pytest.raises(fota.ClientClosedError) as closed:
        await list_once(client)
    errors.append(closed.value)

    # The secrets did travel: the fake received them, issued tokens and sessions, and was logged out of one.
    tokens = {r.headers["Authorization"].removeprefix("Bearer ") for r in faked.api_requests}
    sessions = {r.headers["VZ-M2M-Token"] for r in faked.api_requests}
    assert len(tokens) >= 3
    assert len(sessions) >= 3
    assert len(faked.received("logout")) == 1
    assert all(SENTINEL_PASSWORD.encode() in request.content for request in faked.received("login"))

    for item in seen:
        texts += [repr(item), str(item), repr(getattr(item, "headers", None))]
    for request in fake.requests:
        texts += [repr(request), str(request), repr(request.headers)]
    for exc in errors:
        texts += exception_texts(exc)
    assert len(errors) == 8
    texts += logs.texts()
    assert logs.records
    basic_credentials = base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode()
    assert_no_secret(texts, [SECRET, SENTINEL_PASSWORD, basic_credentials, *tokens, *sessions])
