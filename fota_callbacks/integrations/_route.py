"""The callback route's direct path: an `APIRoute` whose POST is served from ASGI by the endpoint itself.

`callback_router`'s endpoint takes the request and returns a response; FastAPI's request handler around it
(dependency solving, its exit stacks, its exception wrapper) does nothing for it, yet cost about a third of
the server's CPU per message (`python -m benchmarks.receiver --profile`). The route stays an `APIRoute`: it
is in the OpenAPI schema, prefixed and tagged by `include_router`, and routed like any other. When a FastAPI
dependency applies to it (declared on `include_router`, an enclosing router or the app) FastAPI's standard
handling runs instead, so the dependency runs as the user declared it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import fastapi.routing
from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

__all__ = ["ASGI_ATTRIBUTE", "CallbackRoute", "receive_body"]

ASGI_ATTRIBUTE = "fota_serve_asgi"
"""The endpoint function's attribute holding `async def serve(scope, receive, send)`: the direct path."""

_Serve = Callable[[Scope, Receive, Send], Awaitable[None]]


async def receive_body(scope: Scope, receive: Receive, limit: int) -> bytes | None:
    """The request body from ASGI `receive`, or None as soon as it is known to exceed `limit` bytes."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            if value.isdigit() and int(value) > limit:
                return None
            break
    body = b""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnect()  # as Request.stream() does: the client went away mid-body
        chunk: bytes = message.get("body", b"")
        if chunk:
            body = body + chunk if body else chunk
            if len(body) > limit:
                return None
        if not message.get("more_body", False):
            return body


def _has_dependencies(route: APIRoute, scope: Scope) -> bool:
    """Whether a FastAPI dependency applies to `route` as this request reached it."""
    if route.dependant.dependencies:
        return True  # its own, or (FastAPI before the include contexts) copied onto it by include_router
    # Recent FastAPI: an included route keeps its object; what include_router added lives in a per-inclusion
    # context. Not public API: when it is absent, the check above is the whole answer.
    lookup = getattr(fastapi.routing, "_get_scope_effective_route_context", None)
    if lookup is None:
        return False
    context = lookup(scope)
    if context is None or getattr(context, "original_route", None) is not route:
        return False
    dependant = getattr(context, "dependant", None)
    return dependant is None or bool(dependant.dependencies)


class CallbackRoute(APIRoute):
    """An `APIRoute` that serves its POST with the endpoint's direct ASGI path when no dependency applies."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The endpoint's ASGI path for a POST without dependencies; FastAPI's handling otherwise (and 405s)."""
        serve: _Serve | None = getattr(self.endpoint, ASGI_ATTRIBUTE, None)
        if serve is None or scope["method"] != "POST" or _has_dependencies(self, scope):
            await super().handle(scope, receive, send)
        else:
            await serve(scope, receive, send)
