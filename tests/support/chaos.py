"""Faults the soak test adds around the fake, beyond `FakeThingSpace.inject` (whose faults all strike before the
request is processed): responses lost after the request was processed, the case that makes retries delicate."""

from __future__ import annotations

import random
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["LoseResponses"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class _ResponseLost(Exception):
    """Raised after a partial response: the server then cuts the connection."""


class LoseResponses:
    """ASGI middleware: a `rate` of the HTTP requests is processed by `app` as usual, but its response is lost:
    the status line and headers go out with a longer `Content-Length` than the few body bytes that follow, then
    the connection is cut. The client cannot know whether the request took effect (it did)."""

    def __init__(self, app: App, *, rate: float, seed: int = 0) -> None:
        self._app = app
        self._rate = rate
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.lost = 0
        """Responses lost so far."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        with self._lock:
            lose = self._random.random() < self._rate
        if not lose:
            await self._app(scope, receive, send)
            return

        async def lossy_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"content-length"]
                await send({**message, "headers": [*headers, (b"content-length", b"1000")]})
            elif message["type"] == "http.response.body" and message.get("more_body", False):
                await send(message)  # not a whole response: the fake is acting out a fault of its own
            elif message["type"] == "http.response.body":
                await send({"type": "http.response.body", "body": message.get("body", b"")[:5], "more_body": True})
                raise _ResponseLost("response lost after processing (soak fault)")

        try:
            await self._app(scope, receive, lossy_send)
        except _ResponseLost:
            with self._lock:
                self.lost += 1
            raise
