"""aiohttp.web glue (extra `aiohttp`): a handler that receives ThingSpace callback messages, and the health paths.

```python
from aiohttp import web

from fota_callbacks.inbox import SqliteInbox
from fota_callbacks.integrations.aiohttp import callback_handler, health_routes
from fota_callbacks.receiver import CallbackReceiver

inbox = SqliteInbox("fota-inbox.db")
receiver = CallbackReceiver(inbox=inbox, username="listener", password="s3cret")
app = web.Application()
app.router.add_post("/fota/callbacks", callback_handler(receiver))
app.add_routes(health_routes(inbox))
```
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Callable
from typing import Final

try:
    from aiohttp import StreamReader, web
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "fota_callbacks.integrations.aiohttp needs aiohttp: pip install 'fota-callbacks[aiohttp]'"
    ) from exc

from .._errors import InvalidArgumentError
from ..inbox import Inbox
from ..receiver import CallbackReceiver, health_answer, method_not_allowed_answer, readiness_answer

__all__ = ["Handler", "callback_handler", "health_routes"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
"""An aiohttp.web request handler."""

_JSON: Final = "application/json"


def _answer(status: int, body: bytes, allow: str | None = None) -> web.Response:
    return web.Response(
        body=body, status=status, content_type=_JSON, headers=None if allow is None else {"Allow": allow}
    )


class _Whole:
    """The body in one read, as the one chunk of an async iterator (a class: an async generator costs the loop's
    bookkeeping of generators on every request)."""

    __slots__ = ("_content", "_done")

    def __init__(self, content: StreamReader) -> None:
        self._content, self._done = content, False

    def __aiter__(self) -> _Whole:
        return self

    async def __anext__(self) -> bytes:
        if self._done:
            raise StopAsyncIteration
        self._done = True
        return await self._content.read()


def callback_handler(receiver: CallbackReceiver) -> Handler:
    """An aiohttp.web handler that answers a callback POST with `receiver` (every check and answer is the
    receiver's): `app.router.add_post("/fota/callbacks", callback_handler(receiver))`.

    The peer is `request.remote`. The body is read from `request.content` up to the receiver's `max_body_size`
    (nothing of it when its Content-Length is larger), so the application's `client_max_size` does not apply to
    it. With `background=True`, the handler runs once the answer is sent. Other methods: registered with
    `add_post`, aiohttp answers them itself (405, plain text); registered with `add_route("*", ...)`, they get
    the receiver's 405 JSON answer with `Allow: POST`. asyncio only, as aiohttp.
    """
    if not isinstance(receiver, CallbackReceiver):
        raise InvalidArgumentError("receiver", f"expected a CallbackReceiver, got {receiver!r}")

    async def receive_callback(request: web.Request) -> web.StreamResponse:
        if request.method != "POST":
            return _answer(*method_not_allowed_answer(), allow="POST")
        length, content = request.content_length, request.content
        if length is not None and content.is_eof():
            # A callback's few KiB mostly arrive with the head: all of it is buffered, and taken without a wait or
            # an iterator (the receiver's size check then applies to what was read, as to a Content-Length).
            reception = await receiver.receive(content.read_nowait(), peer=request.remote)
        else:
            # With a Content-Length (the receiver reads nothing when it is over the limit) the body is one read,
            # which aiohttp bounds by that length; without one, chunk by chunk, as far as the limit.
            body: AsyncIterable[bytes] = _Whole(content) if length is not None else content.iter_any()
            reception = await receiver.receive_stream(body, peer=request.remote, content_length=length)
        response = _answer(reception.status, reception.body)
        if reception.after is not None:
            await response.prepare(request)
            await response.write_eof()  # the sender has its answer: now the handler runs
            await reception.after()
        return response

    return receive_callback


def health_routes(inbox: Inbox | None = None) -> list[web.RouteDef]:
    """`GET /healthz` (200 `{"status":"ok"}` while the process serves: a liveness probe) and `GET /readyz` (200
    `{"status":"ready"}`, or 503 `{"status":"unavailable","reason":"..."}` while `inbox` cannot take messages: a
    readiness probe), for `app.add_routes(health_routes(inbox))`."""
    if inbox is not None and not isinstance(inbox, Inbox):
        raise InvalidArgumentError("inbox", f"expected an Inbox (MemoryInbox, SqliteInbox, ...), got {inbox!r}")

    async def healthz(request: web.Request) -> web.StreamResponse:
        return _answer(*health_answer())

    async def readyz(request: web.Request) -> web.StreamResponse:
        return _answer(*await readiness_answer(inbox))

    return [web.get("/healthz", healthz, allow_head=False), web.get("/readyz", readyz, allow_head=False)]
