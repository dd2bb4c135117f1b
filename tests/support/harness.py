"""How the tests reach a scripted server: the public `ScriptedTransport`, in memory or served over real HTTP.

- `Scripted`: a test's `script` (the `ScriptedTransport` that answers and records), where it is reached
  (`kind` "memory": in-process, at ThingSpace's default root; "http": a uvicorn server on 127.0.0.1 in front of
  `script.asgi_app`, through the default `HttpxTransport`), and `client()` to make clients on it. A test written
  against it runs unchanged both ways (conftest's `scripted` fixture), or over HTTP only (`served_script`).
- `Switchboard`: the one uvicorn server of a test session, serving whichever script (or `FakeThingSpace`) the
  running test installed (starting a server per test would cost more than the tests).
- `client_on(transport, base_url)`: a client as most tests make one (static tokens, backoff that does not wait);
  `list_once(client)`: the call most tests make; `Recorder`: an in-memory handler that records what it is sent.
- Probes a test injects or reads: `RecordingSleep`, `no_wait`, `FakeClock`, `LogCapture` (`capture_logs`),
  `wait_until`, `assert_no_secret`, `resource_warnings`.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import socket
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from typing import Any, Literal
from urllib.parse import urlsplit

import anyio
import anyio.lowlevel
import attrs

import fota_callbacks as fota
from fota_callbacks.testing import ScriptedTransport, serve
from fota_callbacks.transport import AiohttpTransport, Httpx2Transport

DEFAULT_ROOT = "https://thingspace.verizon.com"
ACCOUNT = "0000123456-00001"
TOKEN_PATH = "/api/ts/v1/oauth2/token"
LOGIN_PATH = "/api/m2m/v1/session/login"
LOGOUT_PATH = "/api/m2m/v1/session/logout"
V2_PATH = f"/api/fota/v2/callbacks/{ACCOUNT}"
STATIC_TOKEN = "static-access-token"
"""The bearer token `client_on` and `Scripted.client` send unless told other credentials."""
STATIC_SESSION = "static-session-token"
"""The M2M session token `client_on` and `Scripted.client` send unless told other credentials."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, for a server a test starts."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Switchboard:
    """An ASGI app handing each request to the app of the running test (a script's or a fake's `asgi_app`)."""

    def __init__(self) -> None:
        self.app: Any = ScriptedTransport().asgi_app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


def run_switchboard() -> Iterator[tuple[Switchboard, str]]:
    board = Switchboard()
    with serve(board) as base_url:
        yield board, base_url


@attrs.frozen
class Sent:
    """One request as it reached the server (a view of a recorded `fota.Request`)."""

    method: str
    url: str  # root + path, the path exactly as sent (percent-encoding kept)
    path: str
    query: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    @classmethod
    def of(cls, request: fota.Request) -> Sent:
        parts = urlsplit(request.url)
        return cls(request.method, request.url, parts.path, parts.query, request.headers.raw(), request.content)

    def header(self, name: str) -> str | None:
        """The value of a header (repeats joined by ", " so that a duplicate shows), or None."""
        values = [value for key, value in self.headers if key.lower() == name.lower()]
        return ", ".join(values) if values else None

    @property
    def header_names(self) -> list[str]:
        """Lower-cased names, repeats kept."""
        return [key.lower() for key, _ in self.headers]


@attrs.frozen
class Scripted:
    """A `ScriptedTransport` and how a client reaches it."""

    kind: Literal["memory", "http"]
    script: ScriptedTransport = attrs.field(factory=ScriptedTransport)
    base_url: str = DEFAULT_ROOT

    def transport(self, kind: str | None = None, /) -> fota.Transport:
        """A new transport to the script: in-process for `kind` "memory", else `make_transport(kind)`; by default
        the one of this `Scripted`'s kind (httpx for "http"). Closing it leaves the script usable for the test's next
        client."""
        kind = kind or ("memory" if self.kind == "memory" else "httpx")
        return fota.InMemoryTransport(self.script.send) if kind == "memory" else make_transport(kind)

    def client(self, kind: str | None = None, /, **options: Any) -> fota.FotaCallbacksClient:
        """A client on the script, through a transport of `kind` (see `transport`); static tokens unless `options`
        give credentials. Its backoff really waits (unlike `client_on`'s), unless `options` give a `sleep`."""
        options.setdefault("base_url", self.base_url)
        if "transport" not in options:
            options["transport"] = self.transport(kind)
        return fota.FotaCallbacksClient(**_static_tokens(options))

    @property
    def attempts(self) -> int:
        """How many requests reached the script."""
        return len(self.script.requests)

    @property
    def sent(self) -> list[Sent]:
        """Every request the script received, in order."""
        return [Sent.of(request) for request in self.script.requests]

    def paths(self) -> list[str]:
        """The path of each request, as sent."""
        return [sent.path for sent in self.sent]

    def header(self, index: int, name: str) -> str | None:
        """Header `name` of the `index`th request."""
        return self.script.requests[index].headers.get(name)


def make_transport(kind: str, /, **options: Any) -> fota.Transport:
    """A network transport of `kind` ("httpx", "httpx2", "aiohttp") that owns its HTTP client, without TLS
    verification unless `options` say (plain http:// to 127.0.0.1: loading the CA bundle costs ~50 ms per client)."""
    if kind == "aiohttp":
        return AiohttpTransport(**options)
    assert kind in ("httpx", "httpx2"), kind
    options.setdefault("verify", False)
    return fota.HttpxTransport(**options) if kind == "httpx" else Httpx2Transport(**options)


def _static_tokens(options: dict[str, Any]) -> dict[str, Any]:
    """`options` with `STATIC_TOKEN` / `STATIC_SESSION` for the credentials they do not give otherwise."""
    if "client_id" not in options and "access_token" not in options:
        options["access_token"] = STATIC_TOKEN
    if "username" not in options and "m2m_token" not in options:
        options["m2m_token"] = STATIC_SESSION
    return options


def client_on(
    transport: fota.Transport | Callable[[fota.Request], Awaitable[fota.Response]],
    base_url: str = DEFAULT_ROOT,
    **options: Any,
) -> fota.FotaCallbacksClient:
    """A client on `transport` (a handler is called through an `InMemoryTransport`) at `base_url`: static tokens
    unless `options` give credentials, and a backoff that does not wait (`no_wait`) unless they give a `sleep`."""
    if not isinstance(transport, fota.Transport):
        transport = fota.InMemoryTransport(transport)
    options.setdefault("sleep", no_wait)
    return fota.FotaCallbacksClient(transport=transport, base_url=base_url, **_static_tokens(options))


async def list_once(client: fota.FotaCallbacksClient) -> fota.CallbackSummary:
    """The call most tests make: V2 list for `ACCOUNT`."""
    return await client.v2.list_registered_callbacks(ACCOUNT)


class Recorder:
    """An `InMemoryTransport` handler: records each request (`requests`) and answers `status` with the JSON
    `answer` (both may be changed between calls)."""

    def __init__(self, answer: bytes = b"{}", status: int = 200) -> None:
        self.requests: list[fota.Request] = []
        self.answer = answer
        self.status = status

    async def __call__(self, request: fota.Request) -> fota.Response:
        self.requests.append(request)
        return fota.Response(self.status, {"content-type": "application/json"}, self.answer)


def json_response(status: int, body: object = None, headers: dict[str, str] | None = None) -> fota.Response:
    """A response with a JSON content type; `body` bytes as they are, anything else serialised."""
    content = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    return fota.Response(status, {"content-type": "application/json", **(headers or {})}, content)


# -- probes ------------------------------------------------------------------------------------------------------


async def no_wait(seconds: float) -> None:
    """A `sleep=` for the client that does not wait (one checkpoint: a cancellation still reaches it there)."""
    await anyio.lowlevel.checkpoint()


class RecordingSleep:
    """A `sleep=` for the client that records the delays and does not wait."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await anyio.lowlevel.checkpoint()


class FakeClock:
    """A `clock=` for the client that only moves when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class LogCapture(logging.Handler):
    """Collects every record of the "fota_callbacks" logger, at DEBUG and above."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def texts(self) -> list[str]:
        """Everything a formatter or a structured-logging handler could show of each record."""
        texts: list[str] = []
        for record in self.records:
            texts.append(record.getMessage())
            for value in record.__dict__.values():
                texts.extend((str(value), repr(value)))
        return texts

    def with_attribute(self, name: str, level: int | None = None) -> list[logging.LogRecord]:
        return [
            record for record in self.records if name in record.__dict__ and (level is None or record.levelno == level)
        ]


def capture_logs() -> Iterator[LogCapture]:
    logger = logging.getLogger("fota_callbacks")
    handler = LogCapture()
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


async def wait_until(condition: Callable[[], bool], within: float = 5.0) -> None:
    """Poll `condition` (real time) until it holds; fail the test after `within` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await anyio.sleep(0.005)


def assert_no_secret(texts: Iterable[str], secrets: Iterable[str]) -> None:
    secrets = list(secrets)
    for text in texts:
        for secret in secrets:
            assert secret not in text, f"secret {secret!r} leaked in {text[:300]!r}"


@contextlib.asynccontextmanager
async def resource_warnings() -> AsyncIterator[list[str]]:
    """Collects the ResourceWarnings raised in the block, garbage collecting at its end. (trio warns when an
    abandoned async generator is collected, and closes it in a later task, which frees the generators it
    was iterating: under pytest's `error` filter, that would fail whichever test runs then.)"""
    found: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield found
        finally:
            for _ in range(2):
                gc.collect()
                for _ in range(50):  # let trio's system tasks close the abandoned generators, one level a tick
                    await anyio.lowlevel.checkpoint()
    found.extend(str(w.message) for w in caught if issubclass(w.category, ResourceWarning))
