"""Every way a callback request reaches a `CallbackReceiver`, each posting the table's requests (cases.py) and
reporting the answer as the sender sees it and what the handler or inbox got.

- `receive`, `receive_stream`: the core, called as an adapter calls it (asyncio and trio);
- `callback_app`: the plain ASGI app in-process through `httpx.ASGITransport` (asyncio and trio), `callback_app
  alone` under uvicorn (one server per receiver), `callback_app mounted` under `/hooks/...` in a Starlette app
  under uvicorn;
- `callback_router` (its direct ASGI path) and `callback_router dependency` (included with a FastAPI dependency:
  FastAPI's own request handling), under uvicorn;
- `aiohttp`: `callback_handler` registered with `add_post` on an aiohttp.web server;
- `django`: `callback_view` in the tests' Django project, under uvicorn through Django's ASGI handler;
- `listen`: `fota-callbacks listen --json`, a real process (its open receiver, and one with --username/--password).
"""

from __future__ import annotations

import abc
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from fota_callbacks.callbacks import CallbackMessage
from fota_callbacks.receiver import CallbackReceiver
from tests.receiving.cases import ENDPOINTS, PASSWORD, USERNAME, Endpoint, Request
from tests.support.cli_process import Running, listener
from tests.support.receiving import (
    Recorder,
    RecordingInbox,
    UnavailableInbox,
    django_urlpatterns,
    serve_aiohttp,
    serve_django,
)

CALLBACK_PATH = "/fota/callbacks"


@dataclass(frozen=True)
class Seen:
    """An answer as the sender saw it."""

    status: int
    body: bytes
    content_type: str | None
    allow: str | None


class Site:
    """One receiver per endpoint of the table, with the recorder (handler) and inbox it was given."""

    def __init__(self, endpoints: dict[str, Endpoint]) -> None:
        self.recorders: dict[str, Recorder] = {}
        self.inboxes: dict[str, RecordingInbox] = {}
        self.receivers: dict[str, CallbackReceiver] = {}
        for name, endpoint in endpoints.items():
            handler, inbox = None, None
            if endpoint.handler is not None:
                handler = self.recorders[name] = Recorder(fail=endpoint.handler == "failing")
            if endpoint.inbox is not None:
                inbox = self.inboxes[name] = UnavailableInbox() if endpoint.inbox == "unavailable" else RecordingInbox()
            self.receivers[name] = CallbackReceiver(handler, inbox=inbox, **endpoint.options)

    def clear(self) -> None:
        for recorder in self.recorders.values():
            recorder.clear()
        for inbox in self.inboxes.values():
            inbox.puts.clear()


def pieces(body: bytes, count: int) -> list[bytes]:
    """`body` cut in `count` pieces (at least one byte each while the body lasts)."""
    size = max(1, -(-len(body) // count))
    return [body[at : at + size] for at in range(0, len(body), size)] or [b""]


class Way(abc.ABC):
    """A way in: `post` one request to an endpoint's receiver; `handled` what its handler got."""

    name = ""
    backends: tuple[str, ...] = ("asyncio",)
    endpoints: tuple[str, ...] = tuple(ENDPOINTS)

    def __init__(self) -> None:
        self.site = Site({name: ENDPOINTS[name] for name in self.endpoints})

    @abc.abstractmethod
    async def post(self, endpoint: str, request: Request, body: bytes) -> Seen:
        """The answer to `request`, whose body (its NONCE replaced) is `body`, sent to `endpoint`."""

    async def handled(self, endpoint: str, count: int) -> list[dict[str, Any]]:
        """The messages the endpoint's handler got (the raw JSON objects), waiting for `count` of them."""
        recorder = self.site.recorders.get(endpoint)
        if recorder is None:
            return []
        messages: list[CallbackMessage] = await recorder.wait_for(count) if count else recorder.messages
        return [dict(message.raw) for message in messages]

    def inbox(self, endpoint: str) -> RecordingInbox | None:
        return self.site.inboxes.get(endpoint)

    def before_case(self) -> None:
        self.site.clear()


class CoreReceive(Way):
    """`await receiver.receive(body, peer=...)`; with `background=True` the test, as an adapter does, awaits
    `after` once it has the answer."""

    name = "receive"
    backends = ("asyncio", "trio")

    async def post(self, endpoint: str, request: Request, body: bytes) -> Seen:
        reception = await self.site.receivers[endpoint].receive(body, peer=request.peer)
        if reception.after is not None:
            await reception.after()
        return Seen(reception.status, reception.body, "application/json", None)


class CoreStream(Way):
    """`await receiver.receive_stream(chunks, peer=..., content_length=...)`: the Content-Length only when the
    request has one (not chunked)."""

    name = "receive_stream"
    backends = ("asyncio", "trio")

    async def post(self, endpoint: str, request: Request, body: bytes) -> Seen:
        async def chunks() -> AsyncIterator[bytes]:
            for piece in pieces(body, request.chunks or 1):
                yield piece

        length = None if request.chunks else str(len(body))
        # An async generator, as Starlette's request.stream() is: the receiver closes it when it stops early.
        reception = await self.site.receivers[endpoint].receive_stream(
            chunks(), peer=request.peer, content_length=length
        )
        if reception.after is not None:
            await reception.after()
        return Seen(reception.status, reception.body, "application/json", None)


class Pieces(httpx.AsyncByteStream):
    """A request body sent in pieces, chunked. Its iterator is a plain object, not an async generator: an app that
    stops reading early leaves nothing to finalize (trio reports an unfinished generator as a ResourceWarning)."""

    def __init__(self, parts: list[bytes]) -> None:
        self._parts = parts

    def __aiter__(self) -> AsyncIterator[bytes]:
        return _PieceIterator(iter(self._parts))


class _PieceIterator:
    def __init__(self, parts: Iterator[bytes]) -> None:
        self._parts = parts

    def __aiter__(self) -> _PieceIterator:
        return self

    async def __anext__(self) -> bytes:
        try:
            return next(self._parts)
        except StopIteration:
            raise StopAsyncIteration from None


async def post_http(http: httpx.AsyncClient, url: str, request: Request, body: bytes) -> Seen:
    """Send `request` with httpx: a chunked one in its pieces with `Transfer-Encoding: chunked`."""
    headers = {"content-type": request.content_type} if request.content_type else {}
    if request.chunks:
        headers["transfer-encoding"] = "chunked"
        sent = http.build_request(request.method, url, headers=headers)
        sent.stream = Pieces(pieces(body, request.chunks))
    elif request.method == "GET":
        sent = http.build_request("GET", url, headers=headers)
    else:
        sent = http.build_request(request.method, url, content=body, headers=headers)
    answer = await http.send(sent)
    return Seen(answer.status_code, answer.content, answer.headers.get("content-type"), answer.headers.get("allow"))


class HttpWay(Way):
    """A way over HTTP: `urls` maps each endpoint to where it is served; `serving()` starts the servers."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: dict[str, str] = {}

    @abc.abstractmethod
    def serving(self) -> contextlib.AbstractContextManager[HttpWay]:
        """Start the way's servers (filling `urls`) for the block."""

    async def post(self, endpoint: str, request: Request, body: bytes) -> Seen:
        async with httpx.AsyncClient(timeout=10) as http:
            return await post_http(http, self.urls[endpoint], request, body)


class InProcessApp(HttpWay):
    """`callback_app(receiver)` called in-process by `httpx.ASGITransport` (peer 127.0.0.1)."""

    name = "callback_app"
    backends = ("asyncio", "trio")

    @contextlib.contextmanager
    def serving(self) -> Iterator[HttpWay]:
        yield self

    async def post(self, endpoint: str, request: Request, body: bytes) -> Seen:
        from fota_callbacks.integrations.asgi import callback_app

        transport = httpx.ASGITransport(callback_app(self.site.receivers[endpoint]), client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, timeout=10) as http:
            return await post_http(http, "http://receiver" + CALLBACK_PATH, request, body)


class AloneApp(HttpWay):
    """`callback_app(receiver)` served alone by uvicorn (lifespan on): one server per receiver."""

    name = "callback_app alone"

    @contextlib.contextmanager
    def serving(self) -> Iterator[HttpWay]:
        from fota_callbacks.integrations.asgi import callback_app
        from fota_callbacks.testing import serve

        with contextlib.ExitStack() as stack:
            for name, receiver in self.site.receivers.items():
                base = stack.enter_context(serve(callback_app(receiver), lifespan="on"))
                self.urls[name] = base + CALLBACK_PATH
            yield self


class MountedApp(HttpWay):
    """Each `callback_app(receiver)` mounted in one Starlette app under `/hooks/<endpoint>`, under uvicorn."""

    name = "callback_app mounted"

    @contextlib.contextmanager
    def serving(self) -> Iterator[HttpWay]:
        from starlette.applications import Starlette
        from starlette.routing import Mount

        from fota_callbacks.integrations.asgi import callback_app
        from fota_callbacks.testing import serve

        mounts = [Mount(f"/hooks/{name}", app=callback_app(r)) for name, r in self.site.receivers.items()]
        with serve(Starlette(routes=mounts)) as base:
            self.urls = {name: f"{base}/hooks/{name}{CALLBACK_PATH}" for name in self.site.receivers}
            yield self


async def _let_through() -> None:
    """A FastAPI dependency that refuses nothing: its presence makes FastAPI handle the request itself."""


class Router(HttpWay):
    """`callback_router(receiver, path=...)` in a FastAPI app under uvicorn."""

    name = "callback_router"

    def __init__(self) -> None:
        super().__init__()
        self.dependencies: list[Any] = []

    @contextlib.contextmanager
    def serving(self) -> Iterator[HttpWay]:
        from fastapi import FastAPI

        from fota_callbacks.integrations.fastapi import callback_router
        from fota_callbacks.testing import serve

        app = FastAPI()
        for name, receiver in self.site.receivers.items():
            app.include_router(
                callback_router(receiver, path=f"/{name}{CALLBACK_PATH}"), dependencies=self.dependencies
            )
        with serve(app) as base:
            self.urls = {name: f"{base}/{name}{CALLBACK_PATH}" for name in self.site.receivers}
            yield self


class RouterWithDependency(Router):
    """As `Router`, included with a dependency: FastAPI's standard request handling runs the endpoint."""

    name = "callback_router dependency"

    def __init__(self) -> None:
        from fastapi import Depends

        super().__init__()
        self.dependencies = [Depends(_let_through)]


class Aiohttp(HttpWay):
    """`app.router.add_post(path, callback_handler(receiver))` on an aiohttp.web server in a thread."""

    name = "aiohttp"

    @contextlib.contextmanager
    def serving(self) -> Iterator[HttpWay]:
        from aiohttp import web

        from fota_callbacks.integrations.aiohttp import callback_handler

        app = web.Application()
        for name, receiver in self.site.receivers.items():
            app.router.add_post(f"/{name}{CALLBACK_PATH}", callback_handler(receiver))
        with serve_aiohttp(app) as base:
            self.urls = {name: f"{base}/{name}{CALLBACK_PATH}" for name in self.site.receivers}
            yield self


class Django(HttpWay):
    """`path(..., callback_view(receiver))` in the tests' Django project, under uvicorn."""

    name = "django"
    endpoints = tuple(name for name in ENDPOINTS if name != "background")

    @contextlib.contextmanager
    def serving(self) -> Iterator[HttpWay]:
        from django.urls import path

        from fota_callbacks.integrations.django import callback_view

        patterns = django_urlpatterns()
        patterns += [
            path(f"table/{name}{CALLBACK_PATH}", callback_view(receiver))
            for name, receiver in self.site.receivers.items()
        ]
        with serve_django() as base:
            self.urls = {name: f"{base}/table/{name}{CALLBACK_PATH}" for name in self.site.receivers}
            yield self


class Listen(HttpWay):
    """`fota-callbacks listen --json` processes: `open` without options, `checked` with --username/--password.
    What its receiver's handler got is what it printed: one JSON object per message (the password as ***)."""

    name = "listen"
    endpoints = ("open", "checked")
    MARKER = "listen-marker"

    def __init__(self) -> None:
        super().__init__()
        self.processes: dict[str, Running] = {}
        self.printed_before: dict[str, int] = {}
        self.markers = 0

    @contextlib.contextmanager
    def serving(self) -> Iterator[HttpWay]:
        options = {"open": (), "checked": ("--username", USERNAME, "--password", PASSWORD)}
        with contextlib.ExitStack() as stack:
            for name in self.endpoints:
                self.processes[name], self.urls[name] = stack.enter_context(listener("--json", *options[name]))
            yield self

    def before_case(self) -> None:
        self.printed_before = {name: len(process.lines["stdout"]) for name, process in self.processes.items()}

    async def handled(self, endpoint: str, count: int) -> list[dict[str, Any]]:
        # What the case made it print: every line before a marker message posted after the case's requests.
        self.markers += 1
        marker = {"type": self.MARKER, "n": self.markers, "username": USERNAME, "password": PASSWORD}
        async with httpx.AsyncClient(timeout=10) as http:
            assert (await http.post(self.urls[endpoint], json=marker)).status_code == 200
        process = self.processes[endpoint]
        printed = process.wait_for("stdout", lambda line: json.loads(line)["message"] == {**marker, "password": "***"})
        lines = process.lines["stdout"][self.printed_before[endpoint] : process.lines["stdout"].index(printed)]
        return [json.loads(line)["message"] for line in lines]


WAYS: dict[str, type[Way]] = {
    way.name: way
    for way in (
        CoreReceive,
        CoreStream,
        InProcessApp,
        AloneApp,
        MountedApp,
        Router,
        RouterWithDependency,
        Aiohttp,
        Django,
        Listen,
    )
}
