"""A real HTTP server on 127.0.0.1 whose answers each test scripts, and which records what it received.

Steps a test can queue, consumed one per request (then `default` answers):
- a `fota.Response`: sent as it is;
- `Slow(seconds, response)`: sent after a delay;
- `Drop()`: headers and half a body, then the connection is cut;
- `Hang()`: never answers (until the server stops).
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterator
from typing import Any, NoReturn

import anyio
import attrs

import fota_callbacks as fota
from fota_callbacks.testing import serve_app


@attrs.frozen
class Received:
    method: str
    path: str  # as sent, percent-encoding kept
    query: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = [value for key, value in self.headers if key.lower() == name.lower()]
        return ", ".join(values) if values else None

    @property
    def header_names(self) -> set[str]:
        return {key.lower() for key, _ in self.headers}


@attrs.frozen
class Slow:
    seconds: float
    response: fota.Response


@attrs.frozen
class Drop:
    pass


@attrs.frozen
class Hang:
    pass


Step = fota.Response | Slow | Drop | Hang


class ScriptedServer:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._steps: collections.deque[Step] = collections.deque()
        self.received: list[Received] = []
        self.default: Step = fota.Response(599, {"content-type": "text/plain"}, b"unscripted request")
        self.base_url = ""

    def reset(self) -> None:
        with self._lock:
            self._steps.clear()
            self.received.clear()
            self.default = fota.Response(599, {"content-type": "text/plain"}, b"unscripted request")

    def script(self, *steps: Step) -> None:
        with self._lock:
            self._steps.extend(steps)

    def json(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> fota.Response:
        return fota.Response(status, {"content-type": "application/json", **(headers or {})}, body)

    def _next(self) -> Step:
        with self._lock:
            return self._steps.popleft() if self._steps else self.default

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        received = await read_request(scope, receive)
        with self._lock:
            self.received.append(received)
        step = self._next()
        if isinstance(step, Hang):
            await anyio.sleep_forever()
        if isinstance(step, Drop):
            await send_drop(send)
        if isinstance(step, Slow):
            await anyio.sleep(step.seconds)
            step = step.response
        assert isinstance(step, fota.Response)
        await send_response(send, step)


async def read_request(scope: dict[str, Any], receive: Any) -> Received:
    """An ASGI HTTP request, its body read, with the path as sent (percent-encoding kept)."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    headers = [(key.decode("latin-1"), value.decode("latin-1")) for key, value in scope["headers"]]
    raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
    return Received(scope["method"], raw_path, scope["query_string"].decode(), headers, body)


async def send_response(send: Any, response: fota.Response) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": response.status_code,
            "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.raw()],
        }
    )
    await send({"type": "http.response.body", "body": response.content})


async def send_drop(send: Any) -> NoReturn:
    """Headers and half a body, then the connection is cut."""
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"100")]})
    await send({"type": "http.response.body", "body": b'{"url":', "more_body": True})
    raise ConnectionResetError("scripted drop")


def run_scripted_server() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    with serve_app(server) as base_url:
        server.base_url = base_url
        yield server
