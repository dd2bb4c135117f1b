"""No secret in any log line, `repr`, `str`, traceback or printed output: the whole client surface driven with
sentinel secrets (tests/support/sentinels.py), DEBUG logging on for the SDK, httpx, httpcore and uvicorn.

Besides what each test checks itself, the session guard in tests/conftest.py fails any test during which a
sentinel (or a token the fake issued, once watched) shows in a log record or in captured stdout/stderr.
"""

from __future__ import annotations

import contextlib
import logging
import traceback
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI

import fota_callbacks as fota
from fota_callbacks.callbacks import CallbackParseError
from fota_callbacks.cli import main
from fota_callbacks.inbox import MemoryInbox
from fota_callbacks.integrations.fastapi import callback_router, fota_lifespan
from fota_callbacks.testing import FakeThingSpace, Fault, serve
from fota_callbacks.transport import SendNext
from tests.support import figures
from tests.support.sentinels import (
    GUARD,
    GUARDED_LOGGERS,
    SENTINEL_ACCESS_TOKEN,
    SENTINEL_BODY_FIELD,
    SENTINEL_CALLBACK_PASSWORD,
    SENTINEL_CLIENT_ID,
    SENTINEL_CLIENT_SECRET,
    SENTINEL_M2M_TOKEN,
    SENTINEL_PASSWORD,
    SENTINEL_WRONG_PASSWORD,
    SENTINEL_WRONG_SECRET,
    telemetry_leaks,
)
from tests.support.telemetry import Otel

pytestmark = pytest.mark.stress

ACCOUNT = "0000123456-00001"
USERNAME = "sentinel-user"
LISTENER = "https://listener.example.com/fota"
V1_LISTENER = "http://listener.example.com/fota/v1"


# --- DEBUG everywhere -----------------------------------------------------------------------------------------


def debug_everything() -> None:
    """DEBUG on every guarded logger, and the guard attached (uvicorn reconfigures its loggers on start)."""
    for name in GUARDED_LOGGERS:
        if name:
            logging.getLogger(name).setLevel(logging.DEBUG)
    GUARD.ensure_attached()


@pytest.fixture(autouse=True)
def debug_logging(clean_env: pytest.MonkeyPatch) -> Iterator[None]:
    levels = {name: logging.getLogger(name).level for name in GUARDED_LOGGERS if name}
    debug_everything()
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


@contextlib.contextmanager
def served(fake: FakeThingSpace) -> Iterator[str]:
    with serve(fake) as base_url:
        debug_everything()
        yield base_url


def secured_fake() -> FakeThingSpace:
    fake = FakeThingSpace()
    fake.accept_only(
        client_id=SENTINEL_CLIENT_ID,
        client_secret=SENTINEL_CLIENT_SECRET,
        username=USERNAME,
        password=SENTINEL_PASSWORD,
    )
    return fake


def watch_issued_tokens(fake: FakeThingSpace) -> int:
    """Watch every bearer and session token the fake's clients sent (the fake issued them)."""
    tokens = set()
    for recorded in fake.requests:
        bearer = recorded.headers.get("authorization") or ""
        if bearer.lower().startswith("bearer "):
            tokens.add(bearer[7:])
        session = recorded.headers.get("vz-m2m-token")
        if session:
            tokens.add(session)
    GUARD.watch("token issued by the fake", *tokens)
    return len(tokens)


# --- what a user can see of an object ------------------------------------------------------------------------


def texts_of(value: object) -> list[str]:
    """str, repr, and for an exception its whole formatted traceback (causes included), its request and headers."""
    texts = [str(value), repr(value)]
    if isinstance(value, BaseException):
        texts.append("".join(traceback.format_exception(value)))
        # Not `body`: the raw response, which the caller reads on purpose (token responses are withheld: below).
        for attribute in ("request", "headers", "errors", "error", "error_description", "error_message"):
            part = getattr(value, attribute, None)
            if part is not None:
                texts.extend((str(part), repr(part)))
                if isinstance(part, fota.Request):
                    texts.append(repr(part.headers))
    if isinstance(value, fota.ApiResponse):
        texts.extend((repr(value.data), repr(value.headers)))
    return texts


def assert_hidden(values: Iterable[object], where: str) -> int:
    """None of the watched secrets shows in what a user sees of `values`; returns how many texts were checked."""
    texts = [text for value in values for text in texts_of(value)]
    leaked = GUARD.found_in_any(texts)
    assert leaked == [], f"{where}: {', '.join(leaked)} shown"
    return len(texts)


async def raised(call: Any) -> fota.FotaError:
    with pytest.raises(fota.FotaError) as info:
        await call
    return info.value


# --- the guard itself -----------------------------------------------------------------------------------------


def test_the_guard_watches_every_logger_and_sees_a_secret_anywhere_in_a_record() -> None:
    for name in GUARDED_LOGGERS:
        assert GUARD in logging.getLogger(name).handlers, name
    # Records handed to the guard directly: through a logger, pytest would capture them, and fail this test.
    records = [
        logging.LogRecord("httpx", logging.DEBUG, __file__, 1, "a leak: %s", (SENTINEL_CLIENT_SECRET,), None),
        logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1, f"a leak: {SENTINEL_PASSWORD}", None, None),
    ]
    structured = logging.LogRecord("fota_callbacks", logging.DEBUG, __file__, 1, "fine", None, None)
    structured.detail = {"token": SENTINEL_ACCESS_TOKEN}
    try:
        raise ValueError(SENTINEL_M2M_TOKEN)
    except ValueError as exc:
        failed = logging.LogRecord(
            "fota_callbacks", logging.ERROR, __file__, 1, "failed", None, (ValueError, exc, None)
        )
    clean = logging.LogRecord("fota_callbacks", logging.DEBUG, __file__, 1, "GET %s", ("/api/fota/v2",), None)
    for record in (*records, structured, failed, clean):
        GUARD.handle(record)
    leaks = GUARD.take_leaks()
    assert len(leaks) == 4, leaks
    assert all(secret not in leak for leak in leaks for secret in GUARD.watched.values())  # named, never shown
    assert GUARD.found_in(f"stdout: Basic {GUARD.watched['Basic credentials']}") == ["Basic credentials"]
    assert GUARD.found_in("nothing to see") == []


# --- the client surface, over the fake in memory and over HTTP -------------------------------------------------


@pytest.fixture(params=["memory", "http"])
def wire(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@contextlib.asynccontextmanager
async def client_for(fake: FakeThingSpace, wire: str, **options: Any) -> AsyncIterator[fota.FotaCallbacksClient]:
    if wire == "memory":
        async with fake.client(**options) as client:
            yield client
        return
    with served(fake) as base_url:
        options.setdefault("transport", fota.HttpxTransport(verify=False))
        if "access_token" not in options:
            options.setdefault("client_id", SENTINEL_CLIENT_ID)
            options.setdefault("client_secret", SENTINEL_CLIENT_SECRET)
        if "m2m_token" not in options:
            options.setdefault("username", USERNAME)
            options.setdefault("password", SENTINEL_PASSWORD)
        async with fota.FotaCallbacksClient(base_url=base_url, **options) as client:
            yield client


@pytest.mark.anyio
async def test_a_whole_lifecycle_shows_no_secret(wire: str) -> None:
    fake = secured_fake()
    seen: list[object] = []

    async def keep(request: fota.Request, call_next: SendNext) -> fota.Response:
        """Middleware: every request (tokens, login body with the password) and response (issued tokens)."""
        response = await call_next(request)
        seen.extend((request, request.headers, response, response.headers))
        return response

    async with client_for(fake, wire, logout_on_close=True, middleware=[keep]) as client:
        seen += [client, client.transport, client.with_options(timeout=5.0), client.v1, client.v2, client.v3]
        v1_body = fota.FotaV1CallbackRegistrationRequest(
            name=fota.CallbackService.FOTA, url=V1_LISTENER, username="cb-user", password=SENTINEL_CALLBACK_PASSWORD
        )
        seen.append(v1_body)
        seen.append(await client.v1.register_callback(ACCOUNT, v1_body))
        seen.append(await client.v1.with_raw_response.register_callback(ACCOUNT, v1_body))
        listed = await client.v1.list_registered_callbacks(ACCOUNT)
        assert listed[0].password == SENTINEL_CALLBACK_PASSWORD  # returned to the caller, as sent ...
        seen += [listed, *listed, await client.v1.with_raw_response.list_registered_callbacks(ACCOUNT)]
        for controller in (client.v2, client.v3):
            request = (
                fota.FotaV2CallbackRegistrationRequest(url=LISTENER)
                if controller is client.v2
                else fota.FotaV3CallbackRegistrationRequest(url=LISTENER)
            )
            seen.append(await controller.register_callback(ACCOUNT, request))  # type: ignore[arg-type]
            seen.append(await controller.with_raw_response.update_callback(ACCOUNT, request))  # type: ignore[arg-type]
            seen.append(await controller.with_raw_response.list_registered_callbacks(ACCOUNT))
            seen.append(await controller.deregister_callback(ACCOUNT))
        seen.append(await client.v1.with_raw_response.deregister_callback(ACCOUNT))
    tokens = watch_issued_tokens(fake)
    assert tokens >= 2
    checked = assert_hidden(seen, "lifecycle")  # ... but never shown
    assert fake.requests_for(version="m2m", operation="logout")  # the session was ended on close
    figures.add("secrets: objects and texts checked", objects=len(seen), texts=checked, tokens_watched=tokens)


@pytest.mark.anyio
async def test_every_error_along_the_way_shows_no_secret(wire: str) -> None:
    fake = secured_fake()
    errors: list[fota.FotaError] = []

    async with client_for(fake, wire, client_secret=SENTINEL_WRONG_SECRET) as client:
        errors.append(await raised(client.v2.list_registered_callbacks(ACCOUNT)))
        assert isinstance(errors[-1], fota.OAuthError)
    async with client_for(fake, wire, password=SENTINEL_WRONG_PASSWORD) as client:
        errors.append(await raised(client.v2.list_registered_callbacks(ACCOUNT)))
        assert isinstance(errors[-1], fota.SessionLoginError)
    async with client_for(fake, wire, access_token=SENTINEL_ACCESS_TOKEN, m2m_token=SENTINEL_M2M_TOKEN) as client:
        errors.append(await raised(client.v3.list_registered_callbacks(ACCOUNT)))  # tokens the fake never issued
        assert isinstance(errors[-1], fota.AuthenticationError)

    async with client_for(fake, wire, max_retries=0, timeout=0.3) as client:
        fake.inject(Fault.status(401), times=2, version="v2")  # refused again after renewing: raised
        errors.append(await raised(client.v2.list_registered_callbacks(ACCOUNT)))
        assert isinstance(errors[-1], fota.AuthenticationError)
        errors.append(
            await raised(client.v2.update_callback(ACCOUNT, fota.FotaV2CallbackRegistrationRequest(url=LISTENER)))
        )
        assert isinstance(errors[-1], fota.FotaV2ResultException)
        fake.inject(Fault.status(503), version="v1")
        errors.append(await raised(client.v1.list_registered_callbacks(ACCOUNT)))
        fake.inject(Fault.status(429, headers={"Retry-After": "1"}), version="v1")
        errors.append(await raised(client.v1.list_registered_callbacks(ACCOUNT)))
        fake.inject(Fault.drop(), version="v3")
        errors.append(await raised(client.v3.list_registered_callbacks(ACCOUNT)))
        fake.inject(Fault.delay(2.0), version="v3")
        errors.append(await raised(client.v3.list_registered_callbacks(ACCOUNT)))
        assert isinstance(errors[-1], fota.ApiTimeoutError)
        fake.inject(Fault.malformed(b'[{"password": "' + SENTINEL_CALLBACK_PASSWORD.encode() + b'", "url": 5}]'))
        errors.append(await raised(client.v1.list_registered_callbacks(ACCOUNT)))
        assert isinstance(errors[-1], fota.ResponseValidationError)
        bad_v1 = fota.FotaV1CallbackRegistrationRequest(
            name=fota.CallbackService.FOTA, url="not a url", password=SENTINEL_CALLBACK_PASSWORD
        )
        errors.append(await raised(client.v1.register_callback(ACCOUNT, bad_v1)))
        userinfo = fota.FotaV2CallbackRegistrationRequest(url=f"https://user:{SENTINEL_CALLBACK_PASSWORD}@h .example/")
        errors.append(await raised(client.v2.register_callback(ACCOUNT, userinfo)))
        assert isinstance(errors[-1], fota.InvalidArgumentError)

    # A token response the client cannot use, holding a token-like secret: withheld from the error.
    fake.revoke_tokens()
    leaky = b'{"access_token": "' + SENTINEL_ACCESS_TOKEN.encode() + b'\\u0000", "expires_in": 60}'
    fake.inject(Fault.malformed(leaky), version="oauth")
    async with client_for(fake, wire, max_retries=0) as client:
        errors.append(await raised(client.v2.list_registered_callbacks(ACCOUNT)))
        assert isinstance(errors[-1], fota.ResponseValidationError)
        assert SENTINEL_ACCESS_TOKEN.encode() not in errors[-1].body
    fake.inject(Fault.malformed(b'{"sessionToken": "' + SENTINEL_M2M_TOKEN.encode() + b' \\n"}'), version="m2m")
    async with client_for(fake, wire, max_retries=0) as client:
        errors.append(await raised(client.v2.list_registered_callbacks(ACCOUNT)))
        assert isinstance(errors[-1], fota.ResponseValidationError)
        assert SENTINEL_M2M_TOKEN.encode() not in errors[-1].body
        await client.aclose()
        errors.append(await raised(client.v2.list_registered_callbacks(ACCOUNT)))  # closed

    with pytest.raises(fota.MissingCredentialsError) as missing:
        fota.FotaCallbacksClient(client_secret=SENTINEL_CLIENT_SECRET, m2m_token=SENTINEL_M2M_TOKEN)
    errors.append(missing.value)
    with pytest.raises(fota.InvalidArgumentError) as both:
        fota.FotaCallbacksClient(
            access_token=SENTINEL_ACCESS_TOKEN, client_secret=SENTINEL_CLIENT_SECRET, m2m_token="m"
        )
    errors.append(both.value)

    watch_issued_tokens(fake)
    kinds = {type(error).__name__ for error in errors}
    assert {
        "OAuthError",
        "SessionLoginError",
        "AuthenticationError",
        "FotaV2ResultException",
        "ServerError",
        "RateLimitError",
        "ApiConnectionError",
        "ApiTimeoutError",
        "ResponseValidationError",
        "InvalidArgumentError",
        "ClientClosedError",
        "MissingCredentialsError",
    } <= kinds, kinds
    checked = assert_hidden(errors, "errors")
    figures.add("secrets: errors checked", errors=len(errors), texts=checked)
    figures.report("secrets: error classes raised per run", classes=len(kinds))


@pytest.mark.anyio
async def test_callback_messages_and_the_listener_show_no_password() -> None:
    received: list[fota.CallbackMessage] = []

    async def on_message(message: fota.CallbackMessage) -> None:
        received.append(message)
        raise RuntimeError("the handler failed")  # logged by the router with its traceback

    app = FastAPI()
    app.include_router(callback_router(on_message, username="cb-user", password=SENTINEL_CALLBACK_PASSWORD))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app)) as http:
        fake = FakeThingSpace(delivery_client=http)
        async with fake.client() as client:
            body = fota.FotaV1CallbackRegistrationRequest(
                name=fota.CallbackService.FOTA,
                url="http://listener.test/fota/callbacks",
                username="cb-user",
                password=SENTINEL_CALLBACK_PASSWORD,
            )
            await client.v1.register_callback(ACCOUNT, body)
        failed = await fake.emit_upgrade_event(ACCOUNT, "upgradeScheduled", upgrade_id="u-1")
        forged = await fake.emit(ACCOUNT, {"type": "upgradeProgress", "password": SENTINEL_WRONG_PASSWORD})
        malformed = await fake.emit(ACCOUNT, b'{"password": "' + SENTINEL_CALLBACK_PASSWORD.encode() + b'", ')
    assert (failed.status_code, forged.status_code, malformed.status_code) == (500, 401, 400)
    [message] = received
    assert message.password == SENTINEL_CALLBACK_PASSWORD
    with pytest.raises(CallbackParseError) as unparsable:
        fota.parse_callback_message(b'{"password": "' + SENTINEL_CALLBACK_PASSWORD.encode() + b'" ')
    watch_issued_tokens(fake)
    assert_hidden([message, unparsable.value, failed, forged, malformed, *fake.deliveries], "callbacks")


# --- spans and metrics ----------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_spans_and_metrics_show_no_secret_no_body_and_no_authorization_header(wire: str) -> None:
    """Every operation, refusal and failure above, and callbacks stored, refused and handled (a V1 body echoes its
    password), reported to OpenTelemetry's SDK: what it exported holds none of it."""
    otel = Otel()
    fake = secured_fake()
    async with client_for(fake, wire, logout_on_close=True, **otel.providers()) as client:
        v1_body = fota.FotaV1CallbackRegistrationRequest(
            name=fota.CallbackService.FOTA, url=V1_LISTENER, username="cb-user", password=SENTINEL_CALLBACK_PASSWORD
        )
        await client.v1.register_callback(ACCOUNT, v1_body)
        await client.v1.list_registered_callbacks(ACCOUNT)
        await client.v2.register_callback(ACCOUNT, fota.FotaV2CallbackRegistrationRequest(url=LISTENER))
        with pytest.raises(fota.FotaV3ResultException):
            await client.v3.update_callback(ACCOUNT, fota.FotaV3CallbackRegistrationRequest(url=LISTENER))
        fake.inject(Fault.malformed(b'[{"password": "' + SENTINEL_CALLBACK_PASSWORD.encode() + b'", "url": 5}]'))
        with pytest.raises(fota.ResponseValidationError):
            await client.v1.list_registered_callbacks(ACCOUNT)
    for refused in ({"client_secret": SENTINEL_WRONG_SECRET}, {"password": SENTINEL_WRONG_PASSWORD}):
        async with client_for(fake, wire, max_retries=0, **refused, **otel.providers()) as client:
            with pytest.raises((fota.OAuthError, fota.SessionLoginError)):
                await client.v2.list_registered_callbacks(ACCOUNT)
    statics = {"access_token": SENTINEL_ACCESS_TOKEN, "m2m_token": SENTINEL_M2M_TOKEN}
    async with client_for(fake, wire, **statics, **otel.providers()) as client:
        with pytest.raises(fota.AuthenticationError):
            await client.v2.list_registered_callbacks(ACCOUNT)

    handled: list[str] = []

    async def handler(message: fota.CallbackMessage) -> None:
        handled.append(message.type or "")
        if len(handled) == 1:
            raise RuntimeError("the fleet database is down")

    inbox = MemoryInbox(poll_interval=0.01, retry_base=0.01, retry_max=0.01)
    app = FastAPI(lifespan=fota_lifespan(client_for_receiver, inbox=inbox, handler=handler, **otel.providers()))
    app.include_router(
        callback_router(inbox=inbox, username="cb-user", password=SENTINEL_CALLBACK_PASSWORD, **otel.providers())
    )
    callback = {"type": "upgradeProgress", "username": "cb-user", "participantName": SENTINEL_BODY_FIELD}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://receiver") as http,
    ):
        answers = [
            await http.post("/fota/callbacks", json={**callback, "password": SENTINEL_CALLBACK_PASSWORD}),
            await http.post("/fota/callbacks", json={**callback, "password": SENTINEL_WRONG_PASSWORD}),
            await http.post("/fota/callbacks", content=b'{"password": "' + SENTINEL_CALLBACK_PASSWORD.encode()),
        ]
        with anyio.fail_after(30):
            while len(handled) < 2:  # noqa: ASYNC110 - the worker runs in another task
                await anyio.sleep(0.01)
        await inbox.stats()
    assert [answer.status_code for answer in answers] == [200, 401, 400]

    watch_issued_tokens(fake)
    texts = list(otel.texts())
    assert len(otel.spans()) >= 25  # everything above was reported ...
    assert leaks_none(texts)  # ... and none of it shows
    otel.shutdown()
    figures.add("secrets: spans and metrics checked", spans=len(otel.spans()), texts=len(texts))


def client_for_receiver() -> fota.FotaCallbacksClient:
    return fota.FotaCallbacksClient(access_token="unused-token", m2m_token="unused-token")


def leaks_none(texts: list[str]) -> bool:
    leaks = telemetry_leaks(texts)
    assert leaks == [], f"telemetry shows {', '.join(leaks)}"
    return True


# --- the command line -----------------------------------------------------------------------------------------


def test_the_cli_prints_no_secret(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    fake = secured_fake()
    outputs: list[str] = []
    codes: list[int] = []
    with served(fake) as base_url:
        monkeypatch.setenv("THINGSPACE_BASE_URL", base_url)
        monkeypatch.setenv("THINGSPACE_CLIENT_ID", SENTINEL_CLIENT_ID)
        monkeypatch.setenv("THINGSPACE_CLIENT_SECRET", SENTINEL_CLIENT_SECRET)
        monkeypatch.setenv("THINGSPACE_USERNAME", USERNAME)
        monkeypatch.setenv("THINGSPACE_PASSWORD", SENTINEL_PASSWORD)
        commands = [
            [
                "v1",
                "register",
                ACCOUNT,
                "--url",
                V1_LISTENER,
                "--username",
                "u",
                "--password",
                SENTINEL_CALLBACK_PASSWORD,
            ],
            ["v1", "list", ACCOUNT],
            ["v1", "list", ACCOUNT, "--json"],
            ["v2", "register", ACCOUNT, "--url", LISTENER, "--json"],
            ["v3", "update", ACCOUNT, "--url", LISTENER],  # nothing registered: exit 1
            ["v1", "register", ACCOUNT, "--url", "not a url", "--password", SENTINEL_CALLBACK_PASSWORD],  # exit 2
        ]
        for command in commands:
            codes.append(main(command))
            captured = capsys.readouterr()
            outputs += [captured.out, captured.err]
        monkeypatch.setenv("THINGSPACE_CLIENT_SECRET", SENTINEL_WRONG_SECRET)
        codes.append(main(["v2", "list", ACCOUNT]))  # OAuth refused: exit 1
        monkeypatch.setenv("THINGSPACE_CLIENT_SECRET", SENTINEL_CLIENT_SECRET)
        monkeypatch.setenv("THINGSPACE_PASSWORD", SENTINEL_WRONG_PASSWORD)
        codes.append(main(["v2", "list", ACCOUNT]))  # login refused: exit 1
        monkeypatch.delenv("THINGSPACE_CLIENT_ID")
        codes.append(main(["v2", "list", ACCOUNT]))  # client id missing: exit 3
        captured = capsys.readouterr()
        outputs += [captured.out, captured.err]
    monkeypatch.setenv("THINGSPACE_BASE_URL", "http://127.0.0.1:9")  # nothing listens: exit 4
    monkeypatch.setenv("THINGSPACE_CLIENT_ID", SENTINEL_CLIENT_ID)
    codes.append(main(["v2", "list", ACCOUNT, "--max-retries", "0", "--timeout", "1"]))
    captured = capsys.readouterr()
    outputs += [captured.out, captured.err]

    assert codes == [0, 0, 0, 0, 1, 2, 1, 1, 3, 4]
    assert "***" in "".join(outputs)  # the V1 callback password, masked
    watch_issued_tokens(fake)
    leaked = GUARD.found_in_any(outputs)
    assert leaked == [], f"the CLI printed: {', '.join(leaked)}"
    figures.add("secrets: CLI commands checked", commands=len(codes))
