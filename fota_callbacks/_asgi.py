"""What the SDK's own HTTP servers share (the callback receiver, `fota-callbacks listen` and `fake-server`, the fake's
ASGI app): reading an ASGI request's body within a limit, and sending a JSON answer."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

__all__ = ["ClientGone", "complete_lifespan", "read_asgi_body", "respond_json", "send_json"]


class ClientGone(Exception):
    """The client disconnected before sending its whole request."""


async def read_asgi_body(
    receive: Callable[[], Awaitable[Mapping[str, Any]]], limit: int, headers: Iterable[tuple[bytes, bytes]] = ()
) -> bytes | None:
    """An ASGI request's body, or None as soon as it is known to exceed `limit` bytes (also when a Content-Length
    among its `headers`, the scope's, says so: then nothing is read); `ClientGone` when the client left first."""
    for name, value in headers:
        if name == b"content-length":
            if value.isdigit() and int(value) > limit:
                return None
            break
    body = b""
    while True:  # a plain loop, no async generator: this runs once per callback a server receives
        message = await receive()
        if message["type"] != "http.request":
            raise ClientGone
        chunk: bytes = message.get("body", b"")
        if chunk:
            body = body + chunk if body else chunk  # one chunk, the common case, is kept without a copy
            if len(body) > limit:
                return None
        if not message.get("more_body", False):
            return body


async def send_json(send: Any, status: int, body: bytes, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    """Answer with `body`, already JSON."""
    fields = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body)), *headers]
    await send({"type": "http.response.start", "status": status, "headers": fields})
    await send({"type": "http.response.body", "body": body})


async def respond_json(send: Any, status: int, data: Any, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    """Answer with `data` as JSON."""
    await send_json(send, status, json.dumps(data).encode(), headers)


async def complete_lifespan(receive: Any, send: Any) -> None:
    """Answer an ASGI lifespan's startup and shutdown (an app with nothing to start), so servers do not complain."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
