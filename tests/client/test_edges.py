"""The client's contract at its edges (issue 13): a lost deregister answer, form-encoded Basic credentials,
options on token requests, token sources returning non-strings, secrets in the requests errors keep, URL
masking, and request ids on every error made from a response."""

from __future__ import annotations

import base64
from typing import Any

import pytest

import fota_callbacks as fota
from fota_callbacks.testing import FakeThingSpace, Fault
from tests.support.harness import no_wait

pytestmark = pytest.mark.anyio

ACCOUNT = "0000123456-00001"
LISTENER = "https://listener.example.com/fota"
VERSIONS = ["v1", "v2", "v3"]
RESULTS = {"v1": fota.FotaV1SuccessResult, "v2": fota.FotaV2SuccessResult, "v3": fota.FotaV3SuccessResult}


def seeded() -> FakeThingSpace:
    fake = FakeThingSpace()
    v1 = [fota.FotaV1CallbackRegistrationRequest(name=fota.CallbackService.FOTA, url=LISTENER)]
    fake.seed(ACCOUNT, v1=v1, v2=LISTENER, v3=LISTENER)
    return fake


def held(fake: FakeThingSpace, version: str) -> bool:
    callbacks = fake.callbacks(ACCOUNT)
    return bool({"v1": callbacks.v1, "v2": callbacks.v2, "v3": callbacks.v3}[version])


class LoseFirstAnswer:
    """The fake processes each DELETE, but the first one's answer is lost: the connection breaks after the
    request was sent (`request_sent`), or before it could be (`not request_sent`, then nothing is processed)."""

    def __init__(self, fake: FakeThingSpace, *, sent: bool = True) -> None:
        self.fake, self.sent, self.lost = fake, sent, 0

    async def __call__(self, request: fota.Request) -> fota.Response:
        if request.method == "DELETE" and not self.lost:
            self.lost += 1
            if self.sent:
                await self.fake.handle(request)  # processed ...
            raise fota.ApiConnectionError("connection reset", request=request, request_sent=self.sent)
        return await self.fake.handle(request)


# -- 13.3: a deregister whose answer was lost ---------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_deregister_whose_answer_was_lost_succeeds(version: str) -> None:
    fake = seeded()
    async with fake.client(transport=fota.InMemoryTransport(LoseFirstAnswer(fake)), sleep=no_wait) as client:
        result = await getattr(client, version).deregister_callback(ACCOUNT)
    assert result == RESULTS[version](success=True)
    assert not held(fake, version)
    deletes = [r for r in fake.requests if r.method == "DELETE"]
    assert len(deletes) == 2  # the processed one, and the retry the fake refused


@pytest.mark.parametrize("version", VERSIONS)
async def test_raw_deregister_whose_answer_was_lost_reports_the_real_status(version: str) -> None:
    fake = seeded()
    async with fake.client(transport=fota.InMemoryTransport(LoseFirstAnswer(fake)), sleep=no_wait) as client:
        raw = await getattr(client, version).with_raw_response.deregister_callback(ACCOUNT)
    assert (raw.status_code, raw.data, raw.retries_taken) == (400, RESULTS[version](success=True), 1)


@pytest.mark.parametrize("version", VERSIONS)
async def test_the_same_400_on_a_first_attempt_is_raised(version: str) -> None:
    fake = FakeThingSpace()  # nothing registered
    async with fake.client(sleep=no_wait) as client:
        with pytest.raises(fota.FotaResultException) as caught:
            await getattr(client, version).deregister_callback(ACCOUNT)
    assert caught.value.error_code == "CallbackNotFound"
    assert caught.value.retries_taken == 0


@pytest.mark.parametrize("version", VERSIONS)
async def test_the_400_after_a_failure_that_never_reached_the_server_is_raised(version: str) -> None:
    fake = FakeThingSpace()  # nothing registered, and the first attempt certainly not processed
    transport = fota.InMemoryTransport(LoseFirstAnswer(fake, sent=False))
    async with fake.client(transport=transport, sleep=no_wait) as client:
        with pytest.raises(fota.FotaResultException) as caught:
            await getattr(client, version).deregister_callback(ACCOUNT)
    assert caught.value.error_code == "CallbackNotFound"
    assert caught.value.retries_taken == 1


# -- 13.4: Basic credentials are form-encoded (RFC 6749 2.3.1) ----------------------------------------------------


async def test_basic_credentials_form_encode_id_and_secret_on_the_wire() -> None:
    fake = FakeThingSpace()
    async with fake.client(client_id="my:app id", client_secret="p@ss:w/rd+") as client:
        await client.v2.list_registered_callbacks(ACCOUNT)
    (token,) = fake.requests_for(operation="token")
    expected = base64.b64encode(b"my%3Aapp+id:p%40ss%3Aw%2Frd%2B").decode("ascii")
    assert token.headers["Authorization"] == f"Basic {expected}"


async def test_an_id_and_secret_with_colons_are_accepted_end_to_end() -> None:
    fake = FakeThingSpace()
    fake.accept_only(client_id="my:app", client_secret="s:e@cret w+rd")
    async with fake.client(client_id="my:app", client_secret="s:e@cret w+rd") as client:
        assert await client.v2.list_registered_callbacks(ACCOUNT) == fota.CallbackSummary(url=None)
    async with fake.client(client_id="my", client_secret="app:s:e@cret w+rd") as client:
        with pytest.raises(fota.OAuthError):  # the split stays where it was meant to be
            await client.v2.list_registered_callbacks(ACCOUNT)


# -- 13.8: options reach token and session-login requests ---------------------------------------------------------


@pytest.mark.parametrize(("operation", "error"), [("token", fota.OAuthError), ("login", fota.SessionLoginError)])
async def test_a_clone_without_retries_does_not_retry_token_or_login_requests(
    operation: str, error: type[fota.ApiError]
) -> None:
    fake = FakeThingSpace()
    fake.inject(Fault.status(503), operation=operation, times=5)  # type: ignore[arg-type]
    async with fake.client(sleep=no_wait, max_retries=3) as client:
        with pytest.raises(error) as caught:
            await client.with_options(max_retries=0).v2.list_registered_callbacks(ACCOUNT)
        assert caught.value.status_code == 503
        assert caught.value.retries_taken == 0
        assert len(fake.requests_for(operation=operation)) == 1  # type: ignore[arg-type]

        fake.clear_requests()
        with pytest.raises(error):  # the client itself still retries them
            await client.v2.list_registered_callbacks(ACCOUNT)
        assert len(fake.requests_for(operation=operation)) == 4  # type: ignore[arg-type]


async def test_a_clone_timeout_reaches_token_and_login_requests() -> None:
    fake = FakeThingSpace()
    timeouts: dict[str, float | None] = {}

    async def record(request: fota.Request) -> fota.Response:
        timeouts[request.url.rsplit("/", 1)[-1]] = request.timeout
        return await fake.handle(request)

    async with fake.client(transport=fota.InMemoryTransport(record), timeout=30) as client:
        await client.with_options(timeout=1.5).v2.list_registered_callbacks(ACCOUNT)
    assert timeouts == {"token": 1.5, "login": 1.5, ACCOUNT: 1.5}


async def test_a_clone_deadline_bounds_a_slow_token_request() -> None:
    fake = FakeThingSpace()
    fake.inject(Fault.delay(30), operation="token")
    async with fake.client(sleep=no_wait) as client:
        with pytest.raises(fota.ApiTimeoutError, match=r"deadline of 0\.2 s"):
            await client.with_options(deadline=0.2).v2.list_registered_callbacks(ACCOUNT)


# -- 13.9: what a token source returns is checked before sending -------------------------------------------------


class Returns:
    def __init__(self, value: Any) -> None:
        self.value = value

    async def get_token(self) -> Any:
        return self.value

    async def invalidate(self, token: str) -> bool:
        return False


@pytest.mark.parametrize("value", [None, 12345, b"bytes", "", "two\r\nlines"])
@pytest.mark.parametrize("parameter", ["access_token", "m2m_token"])
async def test_a_token_source_returning_a_non_token_is_refused_before_sending(parameter: str, value: Any) -> None:
    sent: list[fota.Request] = []

    async def never(request: fota.Request) -> fota.Response:
        sent.append(request)
        return fota.Response(200, {}, b"{}")

    tokens: dict[str, Any] = {"access_token": "bearer", "m2m_token": "session", parameter: Returns(value)}
    client = fota.FotaCallbacksClient(**tokens, base_url="http://127.0.0.1:9", transport=fota.InMemoryTransport(never))
    async with client:
        with pytest.raises(fota.InvalidArgumentError) as caught:
            await client.v2.list_registered_callbacks(ACCOUNT)
    assert caught.value.parameter == parameter
    assert "token source" in str(caught.value)
    assert sent == []


# -- 13.10: the request an error keeps holds no secret ------------------------------------------------------------

PASSWORD = "pa55-w0rd-SECRET"
CLIENT_SECRET = "client-SECRET-value"


def assert_no_secret(request: fota.Request | None, *secrets: str) -> None:
    assert request is not None
    readable = repr(request.headers.raw()) + request.content.decode() + request.url
    for secret in secrets:
        assert secret not in readable
    for name in ("authorization", "vz-m2m-token"):
        if name in request.headers:
            assert request.headers[name] == "<redacted>"


async def test_a_refused_login_keeps_no_password_or_token_in_its_request() -> None:
    fake = FakeThingSpace()
    fake.accept_only(username="someone", password="else")
    async with fake.client(username="someone", password=PASSWORD) as client:
        with pytest.raises(fota.SessionLoginError) as caught:
            await client.v2.list_registered_callbacks(ACCOUNT)
    token = fake.requests_for(operation="token")[0].json
    assert_no_secret(caught.value.request, PASSWORD)
    assert caught.value.request is not None
    assert caught.value.request.content == b"<redacted>"
    assert caught.value.request.headers["Authorization"] == "<redacted>"
    assert token is None or "access_token" not in str(token)


async def test_refused_token_and_api_calls_and_dropped_connections_keep_no_credentials() -> None:
    fake = FakeThingSpace()
    fake.accept_only(client_id="app", client_secret="right")
    async with fake.client(client_id="app", client_secret=CLIENT_SECRET, sleep=no_wait) as client:
        with pytest.raises(fota.OAuthError) as oauth:
            await client.v2.list_registered_callbacks(ACCOUNT)
    assert_no_secret(oauth.value.request)

    fake = FakeThingSpace()
    async with fake.client(access_token="bearer-SECRET", m2m_token="session-SECRET", max_retries=0) as client:
        with pytest.raises(fota.AuthenticationError) as refused:
            await client.v2.list_registered_callbacks(ACCOUNT)
        fake.inject(Fault.drop())
        with pytest.raises(fota.ApiConnectionError) as dropped:
            await client.v2.list_registered_callbacks(ACCOUNT)
    for error in (refused.value, dropped.value):
        assert_no_secret(error.request, "bearer-SECRET", "session-SECRET")


async def test_a_v1_registration_password_is_not_kept_in_the_error_request() -> None:
    fake = FakeThingSpace()
    fake.inject(Fault.status(400), operation="register_callback")
    body = fota.FotaV1CallbackRegistrationRequest(
        name=fota.CallbackService.FOTA, url=LISTENER, username="listener", password=PASSWORD
    )
    async with fake.client() as client:
        with pytest.raises(fota.FotaV1ResultException) as caught:
            await client.v1.register_callback(ACCOUNT, body)
    assert_no_secret(caught.value.request, PASSWORD)


# -- 13.11: masking a URL in a validation error keeps its host ----------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown", "hidden"),
    [
        ("http://listener.example/cb?x=a@b", "'http://listener.example/cb?x=a@b'", None),
        ("http://user:s3cret@listener.example/cb?x=a@b", "'http://***@listener.example/cb?x=a@b'", "s3cret"),
        ("http://listener.example/cb#frag@ment", "listener.example", None),
    ],
)
async def test_a_refused_url_is_shown_with_its_host_and_without_userinfo(url: str, shown: str, hidden: str) -> None:
    fake = FakeThingSpace()
    async with fake.client() as client:
        with pytest.raises(fota.InvalidArgumentError) as caught:
            await client.v2.register_callback(ACCOUNT, fota.FotaV2CallbackRegistrationRequest(url=url))
    assert shown in str(caught.value)
    if hidden:
        assert hidden not in str(caught.value)


# -- 14.1: every error made from a response carries the request id -----------------------------------------------

REQUEST_ID = {"X-Request-Id": "req-42", "Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("path_part", "response", "error"),
    [
        ("oauth2/token", fota.Response(401, REQUEST_ID, b'{"error":"invalid_client"}'), fota.OAuthError),
        ("session/login", fota.Response(400, REQUEST_ID, b'{"errorCode":"X"}'), fota.SessionLoginError),
        ("session/login", fota.Response(200, REQUEST_ID, b'{"sessionToken": 5}'), fota.ResponseValidationError),
        ("callbacks/", fota.Response(200, REQUEST_ID, b'{"url": 5}'), fota.ResponseValidationError),
        ("callbacks/", fota.Response(429, REQUEST_ID, b""), fota.RateLimitError),
    ],
)
async def test_errors_from_token_login_and_api_responses_carry_the_request_id(
    path_part: str, response: fota.Response, error: type[fota.FotaError]
) -> None:
    fake = FakeThingSpace()

    async def answer(request: fota.Request) -> fota.Response:
        return response if path_part in request.url else await fake.handle(request)

    async with fake.client(transport=fota.InMemoryTransport(answer), max_retries=0) as client:
        with pytest.raises(error) as caught:
            await client.v2.list_registered_callbacks(ACCOUNT)
    assert getattr(caught.value, "request_id", None) == "req-42"
