"""A request handler (a `FakeThingSpace`'s, a `ScriptedTransport`'s) as an ASGI 3 application, served over HTTP."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import quote

import anyio

from .._asgi import ClientGone, complete_lifespan, read_asgi_body
from .._constants import MAX_REQUEST_BODY_BYTES
from .._errors import ApiConnectionError
from ..transport.base import Headers, Request, Response
from ..transport.memory import Handler

__all__ = ["AsgiApp", "Receive", "Scope", "Send"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_TOO_LARGE = Response(
    413,
    {"Content-Type": "application/json"},
    b'{"errorCode":"RequestTooLarge","errorMessage":"the request body is larger than 1 MiB"}',
)


class _ConnectionDropped(Exception):
    """Raised after a partial response, so that the server cuts the connection (an injected `Fault.drop()`)."""


class AsgiApp:
    """An ASGI 3 application answering every HTTP request with `await handler(Request)`.

    The handler sees the URL as the client sent it (`scheme://host/raw path?query`), the headers and the
    whole body. When it raises `ApiConnectionError` (a dropped connection), the response headers (with a
    `Content-Length`) and part of the body are sent, then the connection is aborted, so that the client sees a
    broken connection. Lifespan events are acknowledged.
    """

    def __init__(self, handler: Handler) -> None:
        self._handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await complete_lifespan(receive, send)
            return
        if scope["type"] != "http":
            raise RuntimeError(f"{type(self).__name__} serves HTTP only, not {scope['type']!r}")
        try:
            body = await read_asgi_body(receive, MAX_REQUEST_BODY_BYTES)
        except ClientGone:
            return
        if body is None:
            await _respond(send, _TOO_LARGE)
            return
        headers = Headers([(name.decode("latin-1"), value.decode("latin-1")) for name, value in scope["headers"]])
        request = Request(scope["method"], _url(scope, headers), headers, body)
        response: Response | None = None
        dropped = False
        async with anyio.create_task_group() as tasks:
            # A client that gives up (a timeout) closes the connection: stop working on its request then.
            tasks.start_soon(_cancel_on_disconnect, receive, tasks.cancel_scope)
            try:
                response = await self._handler(request)
            except ApiConnectionError:
                dropped = True
            tasks.cancel_scope.cancel()
        if dropped:
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"64")]})
            await send({"type": "http.response.body", "body": b'{"url":"https://', "more_body": True})
            raise _ConnectionDropped("connection dropped (injected fault)")
        if response is not None:
            await _respond(send, response)

    def __repr__(self) -> str:
        return f"AsgiApp({self._handler!r})"


def _url(scope: Scope, headers: Headers) -> str:
    raw_path: bytes | None = scope.get("raw_path")
    path = raw_path.decode("latin-1") if raw_path else quote(scope["path"])
    host = headers.get("host")
    if host is None:
        server = scope.get("server")
        host = f"{server[0]}:{server[1]}" if server else "localhost"
    query: bytes = scope.get("query_string", b"")
    url = f"{scope.get('scheme', 'http')}://{host}{path}"
    return f"{url}?{query.decode('latin-1')}" if query else url


async def _cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    scope.cancel()


async def _respond(send: Send, response: Response) -> None:
    headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in response.headers.raw()]
    # A response framed by Transfer-Encoding must not also declare a length (RFC 9112 6.3): uvicorn on h11 drops
    # it, on httptools it would send both.
    if "content-length" not in response.headers and "transfer-encoding" not in response.headers:
        headers.append((b"content-length", str(len(response.content)).encode("ascii")))
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": response.content})
