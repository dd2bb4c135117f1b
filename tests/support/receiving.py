"""What the receiving tests share: a recording handler, inboxes that record or refuse, the FastAPI listener of
a module, and the real servers of the other frameworks (aiohttp.web in a thread; Django through its ASGI handler
under uvicorn), each on 127.0.0.1 and stopped when its block ends."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any, Literal

import anyio
import httpx

from fota_callbacks.callbacks import CallbackMessage
from fota_callbacks.inbox import InboxUnavailableError, MemoryInbox
from fota_callbacks.testing import serve

WAIT_SECONDS = 5.0


class Recorder:
    """A callback handler that records the messages it is given. It may run on a server's thread: messages are
    kept under a lock, and a test waits for them on a condition (in a worker thread, at most `WAIT_SECONDS`).
    `fail=True`: it raises after recording (a detail the answer must not show); `delay`: it sleeps first."""

    FAILURE = "internal detail: row 42 of table devices"

    def __init__(self, *, fail: bool = False, delay: float = 0.0) -> None:
        self._changed = threading.Condition()
        self._messages: list[CallbackMessage] = []
        self.fail, self.delay = fail, delay

    async def __call__(self, message: CallbackMessage) -> None:
        if self.delay:
            await anyio.sleep(self.delay)
        with self._changed:
            self._messages.append(message)
            self._changed.notify_all()
        if self.fail:
            raise KeyError(self.FAILURE)

    @property
    def messages(self) -> list[CallbackMessage]:
        with self._changed:
            return list(self._messages)

    def clear(self) -> None:
        with self._changed:
            self._messages.clear()

    async def wait_for(self, count: int) -> list[CallbackMessage]:
        """The first `count` messages, once they have arrived; `TimeoutError` if they do not in time."""

        def wait() -> list[CallbackMessage]:
            with self._changed:
                if not self._changed.wait_for(lambda: len(self._messages) >= count, WAIT_SECONDS):
                    raise TimeoutError(f"{len(self._messages)} of {count} messages after {WAIT_SECONDS} s")
                return self._messages[:count]

        return await anyio.to_thread.run_sync(wait, abandon_on_cancel=True)


PutOutcome = Literal["stored", "duplicate", "failed"]


class RecordingInbox(MemoryInbox):
    """A `MemoryInbox` that also keeps what it was asked to store, and how each `put` ended."""

    def __init__(self) -> None:
        super().__init__()
        self.puts: list[tuple[bytes, PutOutcome]] = []

    async def put(self, body: bytes) -> bool:
        try:
            stored = await super().put(body)
        except Exception:
            self.puts.append((bytes(body), "failed"))
            raise
        self.puts.append((bytes(body), "stored" if stored else "duplicate"))
        return stored


class UnavailableInbox(RecordingInbox):
    """An inbox whose store refuses every write, as a full disk or an unreachable Redis does."""

    REASON = "the disk is full"

    async def _store(self, body: bytes, key: bytes, now: float, trace: str | None) -> bool:
        raise InboxUnavailableError(self.REASON)

    async def _probe(self) -> None:
        raise InboxUnavailableError(self.REASON)


# --- the FastAPI listener of a test module ---------------------------------------------------------------------


class FastApiListener:
    """One FastAPI app with a `callback_router` per path, each with its own `Recorder`; `serve()` runs it under
    uvicorn on 127.0.0.1 (for a module-scoped fixture)."""

    def __init__(self) -> None:
        from fastapi import FastAPI

        self.app = FastAPI()
        self.recorders: dict[str, Recorder] = {}
        self.base_url = ""

    def route(self, path: str, recorder: Recorder | None = None, **options: Any) -> Recorder:
        from fota_callbacks.integrations.fastapi import callback_router

        self.recorders[path] = recorder = recorder or Recorder()
        self.app.include_router(callback_router(recorder, path=path, **options))
        return recorder

    def url(self, path: str) -> str:
        return self.base_url + path

    def clear(self) -> None:
        for recorder in self.recorders.values():
            recorder.clear()

    @contextlib.contextmanager
    def serve(self) -> Iterator[FastApiListener]:
        with serve(self.app) as base_url:
            self.base_url = base_url
            yield self

    async def post(self, path: str, body: dict[str, Any] | bytes, **headers: str) -> httpx.Response:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        async with httpx.AsyncClient(base_url=self.base_url, timeout=10) as http:
            return await http.post(path, content=content, headers={"content-type": "application/json", **headers})


# --- other frameworks' real servers -------------------------------------------------------------------------------


@contextlib.contextmanager
def serve_aiohttp(app: Any) -> Iterator[str]:
    """Run an `aiohttp.web.Application` on 127.0.0.1 (a free port) in a thread with its own asyncio loop; yield
    its base URL; clean it up (aiohttp's graceful shutdown) when the block ends."""
    from aiohttp import web

    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, access_log=None)

    async def start() -> str:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        return f"http://{host}:{port}"

    thread = threading.Thread(target=loop.run_forever, name="aiohttp-server", daemon=True)
    thread.start()
    try:
        base_url = asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=10)
        yield base_url
    finally:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


DJANGO_URLCONF = "tests.support.django_urls"
"""The URLconf module of the tests' Django project: its `urlpatterns` list is filled by each test module."""


def django_urlpatterns() -> list[Any]:
    """The tests' Django project, configured on first use (`settings.configure`: CSRF middleware on, as in a new
    project, so a view that is not CSRF-exempt is refused); its URL patterns, for a test module to extend."""
    import django
    from django.conf import settings

    from tests.support import django_urls

    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY="tests-only-" + "x" * 40,
            ALLOWED_HOSTS=["127.0.0.1"],
            ROOT_URLCONF=DJANGO_URLCONF,
            INSTALLED_APPS=[],
            MIDDLEWARE=[
                "django.middleware.security.SecurityMiddleware",
                "django.middleware.common.CommonMiddleware",
                "django.middleware.csrf.CsrfViewMiddleware",
            ],
            LOGGING_CONFIG=None,
        )
        django.setup(set_prefix=False)
    return django_urls.urlpatterns


@contextlib.contextmanager
def serve_django() -> Iterator[str]:
    """The tests' Django project served by uvicorn through Django's ASGI handler; yields its base URL."""
    django_urlpatterns()
    from django.core.asgi import get_asgi_application

    # Django's ASGI handler takes no lifespan events: "off", rather than uvicorn finding that out on each start.
    with serve(get_asgi_application(), lifespan="off") as base_url:
        yield base_url


def answer_to_a_promise(base_url: str, path: str, content_length: int, timeout: float = 5.0) -> tuple[int, bytes]:
    """POST with a `Content-Length` but none of the body, and return the status and body of the answer: a server
    that tried to read the promised body first would give none (`TimeoutError` after `timeout` seconds)."""
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {content_length}\r\n\r\n"
        sock.sendall(head.encode())
        received = b""
        while b"\r\n\r\n" not in received or len(received) < _answer_end(received):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    head_bytes, _, body = received.partition(b"\r\n\r\n")
    return int(head_bytes.split()[1]), body[: _length_of(head_bytes)]


def _length_of(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    raise AssertionError(f"an answer without Content-Length: {head!r}")


def _answer_end(received: bytes) -> int:
    head, _, _ = received.partition(b"\r\n\r\n")
    return len(head) + 4 + _length_of(head)
