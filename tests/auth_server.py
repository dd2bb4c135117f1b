"""Small test doubles for the auth and resilience tests (not the full FakeThingSpace).

- `FakeAuthServer`: an in-memory handler that acts as ThingSpace's OAuth token endpoint, M2M session
  login/logout and (a stub of) the callbacks API, checking credentials like the real service.
- `MemoryScript`: the in-memory twin of `tests.scripted_server.ScriptedServer` (same `Response`, `Slow`,
  `Drop`, `Hang` steps), so one test can run over `InMemoryTransport` and over real HTTP.
- `HandlerApp`: serves any `async handler(fota.Request) -> fota.Response` as an ASGI app (uvicorn, real HTTP).
- `RecordingSleep`, `FakeClock`, `LogCapture`, `wait_until`: injectables and probes.
"""

from __future__ import annotations

import base64
import collections
import json
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import anyio.lowlevel

import fota_callbacks as fota
from fota_callbacks.testing import serve_app
from tests.harness import (
    FakeClock,
    LogCapture,
    RecordingSleep,
    assert_no_secret,
    capture_logs,
    json_response,
    resource_warnings,
    wait_until,
)
from tests.scripted_server import Drop, Hang, ScriptedServer, Slow, Step, read_request, send_drop, send_response

__all__ = [
    "ACCOUNT",
    "API_PATH",
    "CALLBACK_URL",
    "LOGIN_PATH",
    "LOGOUT_PATH",
    "TOKEN_PATH",
    "FakeAuthServer",
    "FakeClock",
    "HandlerApp",
    "Harness",
    "LogCapture",
    "MemoryScript",
    "RecordingSleep",
    "assert_no_secret",
    "bearer_of",
    "capture_logs",
    "json_response",
    "ok",
    "path_of",
    "resource_warnings",
    "run_handler_app",
    "token_response",
    "wait_until",
]

TOKEN_PATH = "/api/ts/v1/oauth2/token"
LOGIN_PATH = "/api/m2m/v1/session/login"
LOGOUT_PATH = "/api/m2m/v1/session/logout"
ACCOUNT = "0000123456-00001"
API_PATH = f"/api/fota/v2/callbacks/{ACCOUNT}"
CALLBACK_URL = "https://example.com/callback"
OK_BODY = json.dumps({"url": CALLBACK_URL}).encode()


def ok(headers: dict[str, str] | None = None) -> fota.Response:
    """A V2 list answer."""
    return json_response(200, OK_BODY, headers)


def token_response(token: str, expires_in: int | None = 3600) -> fota.Response:
    body: dict[str, object] = {"access_token": token, "token_type": "Bearer"}
    if expires_in is not None:
        body["expires_in"] = expires_in
    return json_response(200, body)


def path_of(request: fota.Request) -> str:
    return urlsplit(request.url).path


def bearer_of(request: fota.Request) -> str | None:
    value = request.headers.get("authorization")
    if value is None or not value.startswith("Bearer "):
        return None
    return value[len("Bearer ") :]


async def play(step: Step, request: fota.Request) -> fota.Response:
    """Act out one scripted step in-process."""
    if isinstance(step, Hang):
        await anyio.sleep_forever()
    if isinstance(step, Drop):
        raise fota.ApiConnectionError("scripted drop", request=request)
    if isinstance(step, Slow):
        await anyio.sleep(step.seconds)
        return step.response
    assert isinstance(step, fota.Response)
    return step


class FakeAuthServer:
    """Token endpoint + M2M session login/logout + a V2-shaped callbacks API, in memory.

    Tokens and sessions it issues are `f"{token_prefix}{n}"` / `f"{session_prefix}{n}"` (n from 1); the API
    answers 401 unless both headers carry a currently valid one. `token_answers` / `login_answers` /
    `api_answers` script the next answers of an endpoint (any `Step`), overriding its normal behaviour.
    """

    def __init__(
        self,
        *,
        client_id: str = "my-client",
        client_secret: str = "my-secret",
        username: str = "my-user",
        password: str = "my-password",
        token_prefix: str = "token-",
        session_prefix: str = "session-",
        expires_in: int | None = 3600,
        token_delay: float = 0.0,
        login_delay: float = 0.0,
        static_tokens: Iterable[str] = (),
        static_sessions: Iterable[str] = (),
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.username = username
        self.password = password
        self.token_prefix = token_prefix
        self.session_prefix = session_prefix
        self.expires_in = expires_in
        self.token_delay = token_delay
        self.login_delay = login_delay
        self.valid_tokens: set[str] = set(static_tokens)
        self.valid_sessions: set[str] = set(static_sessions)
        self.issued_tokens: list[str] = []
        self.issued_sessions: list[str] = []
        self.logged_out: list[str] = []
        self.token_answers: collections.deque[Step] = collections.deque()
        self.login_answers: collections.deque[Step] = collections.deque()
        self.api_answers: collections.deque[Step] = collections.deque()
        self.requests: list[fota.Request] = []
        self._lock = threading.Lock()

    # -- what was received -------------------------------------------------------------------------------
    def received(self, path: str) -> list[fota.Request]:
        return [request for request in list(self.requests) if path_of(request) == path]

    @property
    def token_requests(self) -> list[fota.Request]:
        return self.received(TOKEN_PATH)

    @property
    def login_requests(self) -> list[fota.Request]:
        return self.received(LOGIN_PATH)

    @property
    def logout_requests(self) -> list[fota.Request]:
        return self.received(LOGOUT_PATH)

    @property
    def api_requests(self) -> list[fota.Request]:
        return [request for request in list(self.requests) if path_of(request).startswith("/api/fota/")]

    def forget_tokens(self) -> None:
        """The service no longer accepts the access tokens issued so far (as after a key rotation)."""
        self.valid_tokens.clear()

    def forget_sessions(self) -> None:
        """Every M2M session issued so far has expired."""
        self.valid_sessions.clear()

    # -- the endpoints -----------------------------------------------------------------------------------
    def _scripted(self, answers: collections.deque[Step]) -> Step | None:
        with self._lock:
            return answers.popleft() if answers else None

    async def __call__(self, request: fota.Request) -> fota.Response:
        self.requests.append(request)
        path = path_of(request)
        if path == TOKEN_PATH:
            return await self._token(request)
        if path == LOGIN_PATH:
            return await self._login(request)
        if path == LOGOUT_PATH:
            return self._logout(request)
        if path.startswith("/api/fota/"):
            return await self._api(request)
        return json_response(404, {"error": "no such path"})

    async def _token(self, request: fota.Request) -> fota.Response:
        step = self._scripted(self.token_answers)
        if step is not None:
            return await play(step, request)
        basic = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if request.method != "POST" or request.headers.get("authorization") != f"Basic {basic}":
            return json_response(401, {"error": "invalid_client", "error_description": "bad client"})
        form = parse_qs(request.content.decode())
        if form.get("grant_type") != ["client_credentials"]:
            return json_response(400, {"error": "unsupported_grant_type", "error_description": "grant"})
        if self.token_delay:
            await anyio.sleep(self.token_delay)
        with self._lock:
            token = f"{self.token_prefix}{len(self.issued_tokens) + 1}"
            self.issued_tokens.append(token)
            self.valid_tokens.add(token)
        return token_response(token, self.expires_in)

    async def _login(self, request: fota.Request) -> fota.Response:
        step = self._scripted(self.login_answers)
        if step is not None:
            return await play(step, request)
        if bearer_of(request) not in self.valid_tokens:
            return json_response(401, {"error": "invalid_token"})
        try:
            body = json.loads(request.content)
        except ValueError:
            body = None
        if body != {"username": self.username, "password": self.password}:
            return json_response(400, {"errorCode": "LoginFailed", "errorMessage": "bad username or password"})
        if self.login_delay:
            await anyio.sleep(self.login_delay)
        with self._lock:
            session = f"{self.session_prefix}{len(self.issued_sessions) + 1}"
            self.issued_sessions.append(session)
            self.valid_sessions.add(session)
        return json_response(200, {"sessionToken": session})

    def _logout(self, request: fota.Request) -> fota.Response:
        session = request.headers.get("vz-m2m-token")
        if bearer_of(request) not in self.valid_tokens or session not in self.valid_sessions:
            return json_response(401, {"errorCode": "UnAuthorized", "errorMessage": "no such session"})
        assert session is not None
        self.valid_sessions.discard(session)
        self.logged_out.append(session)
        return json_response(200, {"success": True})

    async def _api(self, request: fota.Request) -> fota.Response:
        await anyio.lowlevel.checkpoint()  # like a network round trip, let concurrent calls overlap
        step = self._scripted(self.api_answers)
        if step is not None:
            return await play(step, request)
        if (
            bearer_of(request) not in self.valid_tokens
            or request.headers.get("vz-m2m-token") not in self.valid_sessions
        ):
            return json_response(401, {"errorCode": "UnAuthorized", "errorMessage": "token refused"})
        return ok()


class MemoryScript:
    """In-memory twin of `ScriptedServer`: answers each request with the next scripted step (then `default`)."""

    def __init__(self) -> None:
        self._steps: collections.deque[Step] = collections.deque()
        self.default: Step = fota.Response(599, {"content-type": "text/plain"}, b"unscripted request")
        self.received: list[fota.Request] = []

    def script(self, *steps: Step) -> None:
        self._steps.extend(steps)

    async def __call__(self, request: fota.Request) -> fota.Response:
        self.received.append(request)
        step = self._steps.popleft() if self._steps else self.default
        return await play(step, request)


class HandlerApp:
    """Serves `handler` (an in-memory handler) as an ASGI app. A handler raising `ApiConnectionError`
    makes the server cut the connection halfway through the response, like `Drop()`."""

    def __init__(self) -> None:
        self.handler: Callable[[fota.Request], Any] | None = None
        self.base_url = ""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        received = await read_request(scope, receive)
        url = self.base_url + received.path + (f"?{received.query}" if received.query else "")
        assert self.handler is not None, "no handler installed"
        try:
            response: fota.Response = await self.handler(
                fota.Request(received.method, url, received.headers, received.body)
            )
        except fota.ApiConnectionError:
            await send_drop(send)
        await send_response(send, response)


def run_handler_app() -> Iterator[HandlerApp]:
    app = HandlerApp()
    with serve_app(app) as base_url:
        app.base_url = base_url
        yield app


class Harness:
    """One scripted server, in memory (`MemoryScript` + `InMemoryTransport`) or over real HTTP (the uvicorn
    `ScriptedServer` + the default `HttpxTransport`), behind the same methods."""

    def __init__(self, kind: str, server: ScriptedServer | None = None) -> None:
        self.kind = kind
        self.memory = MemoryScript()
        self.server = server
        self.base_url = server.base_url if server is not None else "https://thingspace.test"

    def script(self, *steps: Step) -> None:
        if self.server is not None:
            self.server.script(*steps)
        else:
            self.memory.script(*steps)

    def set_default(self, step: Step) -> None:
        if self.server is not None:
            self.server.default = step
        else:
            self.memory.default = step

    @property
    def attempts(self) -> int:
        return len(self.server.received) if self.server is not None else len(self.memory.received)

    def paths(self) -> list[str]:
        if self.server is not None:
            return [received.path for received in self.server.received]
        return [path_of(request) for request in self.memory.received]

    def header(self, index: int, name: str) -> str | None:
        if self.server is not None:
            return self.server.received[index].header(name)
        return self.memory.received[index].headers.get(name)

    def transport(self) -> fota.Transport:
        if self.server is None:
            return fota.InMemoryTransport(self.memory)
        # Plain http:// to 127.0.0.1: skip loading the CA bundle (~60 ms per client), nothing else changes.
        return fota.HttpxTransport(verify=False)

    def client(self, **kwargs: Any) -> fota.FotaCallbacksClient:
        """A client on this server; static credentials unless `kwargs` say otherwise."""
        if "client_id" not in kwargs and "access_token" not in kwargs:
            kwargs["access_token"] = "static-token"
        if "username" not in kwargs and "m2m_token" not in kwargs:
            kwargs["m2m_token"] = "static-session"
        kwargs.setdefault("base_url", self.base_url)
        if "transport" not in kwargs:
            kwargs["transport"] = self.transport()
        return fota.FotaCallbacksClient(**kwargs)
