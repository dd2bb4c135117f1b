"""A plain ASGI app receiving ThingSpace callback messages: for any ASGI server or framework (nothing to install).

```python
from starlette.applications import Starlette
from starlette.routing import Mount

from fota_callbacks.inbox import SqliteInbox
from fota_callbacks.integrations.asgi import callback_app
from fota_callbacks.receiver import CallbackReceiver

inbox = SqliteInbox("fota-inbox.db")
app = callback_app(CallbackReceiver(inbox=inbox, username="listener", password="s3cret"))  # uvicorn module:app
# ... or inside another app: Starlette(routes=[Mount("/hooks", app=app)]) receives on /hooks/fota/callbacks
```
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final

from .._asgi import complete_lifespan, send_json
from .._errors import InvalidArgumentError
from ..receiver import (
    CallbackReceiver,
    health_answer,
    method_not_allowed_answer,
    not_found_answer,
    readiness_answer,
)

__all__ = ["DEFAULT_CALLBACK_PATH", "CallbackApp", "callback_app"]

DEFAULT_CALLBACK_PATH: Final = "/fota/callbacks"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_ALLOW_POST: Final = ((b"allow", b"POST"),)
_ALLOW_GET: Final = ((b"allow", b"GET"),)
_HEALTH_PATHS: Final = ("/healthz", "/readyz")


def callback_app(receiver: CallbackReceiver, *, path: str = DEFAULT_CALLBACK_PATH, health: bool = True) -> CallbackApp:
    """An ASGI app that answers `POST path` with `receiver` (every check and answer is the receiver's).

    Another method on `path` gets 405 (JSON, `Allow: POST`); with `health`, `GET /healthz` and `GET /readyz` answer
    as `fota_callbacks.receiver.health_answer` and `readiness_answer(receiver.inbox)` (Kubernetes probes); any other
    path gets 404 (JSON). Paths are matched exactly, below the ASGI `root_path`: mounted under `/hooks` (Starlette
    `Mount`, or a server's `--root-path`) it receives on `/hooks/fota/callbacks`. Served alone it answers the
    lifespan protocol (nothing to start: with an inbox, run its worker elsewhere, e.g. with `fota_lifespan` or
    as its own process). Runs on asyncio and trio.
    """
    return CallbackApp(receiver, path=path, health=health)


class CallbackApp:
    """The ASGI app `callback_app` makes: `await app(scope, receive, send)`."""

    def __init__(self, receiver: CallbackReceiver, *, path: str = DEFAULT_CALLBACK_PATH, health: bool = True) -> None:
        if not isinstance(receiver, CallbackReceiver):
            raise InvalidArgumentError("receiver", f"expected a CallbackReceiver, got {receiver!r}")
        if not isinstance(path, str) or not path.startswith("/"):
            raise InvalidArgumentError("path", f"expected a path starting with /, got {path!r}")
        if not isinstance(health, bool):
            raise InvalidArgumentError("health", f"expected True or False, got {health!r}")
        self.receiver, self.path, self.health = receiver, path, health

    def __repr__(self) -> str:
        return f"CallbackApp({self.receiver!r}, path={self.path!r}, health={self.health})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            # A callback, what the app exists for, goes straight to the receiver: an await less per message.
            if scope["method"] == "POST" and _route_path(scope) == self.path:
                await self.receiver.serve_asgi(scope, receive, send)
            else:
                await self._other_http(scope, send)
        elif kind == "lifespan":
            await complete_lifespan(receive, send)
        elif kind == "websocket":
            await receive()  # websocket.connect; closing before accepting makes the server answer 403
            await send({"type": "websocket.close", "code": 1000})

    async def _other_http(self, scope: Scope, send: Send) -> None:
        """Any HTTP request but a POST of a callback."""
        path = _route_path(scope)
        if path == self.path:
            await send_json(send, *method_not_allowed_answer(), _ALLOW_POST)
        elif self.health and path in _HEALTH_PATHS:
            if scope["method"] != "GET":
                await send_json(send, *method_not_allowed_answer("GET"), _ALLOW_GET)
            elif path == "/healthz":
                await send_json(send, *health_answer())
            else:
                await send_json(send, *await readiness_answer(self.receiver.inbox))
        else:
            await send_json(send, *not_found_answer(scope.get("root_path", "") + self.path))


def _route_path(scope: Scope) -> str:
    """The request's path below the app's `root_path`. ASGI servers and Starlette's `Mount` put the whole path in
    `path` and the prefix in `root_path`; a server that strips the prefix itself leaves a `path` without it."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("/", ""):
        return path[len(root) :] or "/"
    return path
