"""The callback route's direct path: an `APIRoute` whose POST is served from ASGI by the endpoint itself.

`callback_router`'s endpoint takes the request and returns a response; FastAPI's request handler around it
(dependency solving, its exit stacks, its exception wrapper) does nothing for it, yet cost about a third of
the server's CPU per message (`python -m benchmarks.receiver --profile`). The route stays an `APIRoute`: it
is in the OpenAPI schema, prefixed and tagged by `include_router`, and routed like any other. When a FastAPI
dependency applies to it (declared on `include_router`, an enclosing router or the app) FastAPI's standard
handling runs instead, so the dependency runs as the user declared it.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

import fastapi
import fastapi.routing
from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from .._asgi import send_json
from ..receiver import method_not_allowed_answer

__all__ = ["ASGI_ATTRIBUTE", "CallbackRoute"]

ASGI_ATTRIBUTE = "fota_serve_asgi"
"""The endpoint function's attribute holding the direct path: `CallbackReceiver.serve_asgi` of its receiver."""

_Serve = Callable[[Scope, Receive, Send], Awaitable[object]]


def _has_dependencies(route: APIRoute, scope: Scope) -> bool:
    """Whether a FastAPI dependency applies to `route` as this request reached it."""
    if route.dependant.dependencies:
        return True  # its own, or (FastAPI before the include contexts) copied onto it by include_router
    # Recent FastAPI: an included route keeps its object; what include_router added lives in a per-inclusion
    # context, read through a private function. Without it (a FastAPI that renamed it), which dependencies apply
    # cannot be told here: unless this FastAPI copies them onto the route (as before those contexts, and then the
    # check above said it all), FastAPI's own handling runs, which never skips one.
    lookup = getattr(fastapi.routing, "_get_scope_effective_route_context", None)
    if lookup is None:
        return not _include_router_copies_dependencies()
    context = lookup(scope)
    if context is None or getattr(context, "original_route", None) is not route:
        return False
    dependant = getattr(context, "dependant", None)
    return dependant is None or bool(dependant.dependencies)


async def _nothing() -> None:
    return None


@functools.cache
def _include_router_copies_dependencies() -> bool:
    """Whether this FastAPI puts the dependencies `include_router` declares onto the routes it includes (asked of
    FastAPI itself once, with a route and a dependency that do nothing)."""
    router = fastapi.APIRouter()
    router.add_api_route("/", _nothing)
    app = fastapi.FastAPI()
    app.include_router(router, dependencies=[fastapi.Depends(_nothing)])
    return any(isinstance(route, APIRoute) and route.dependant.dependencies for route in app.router.routes)


_ALLOW_POST = ((b"allow", b"POST"),)


class CallbackRoute(APIRoute):
    """An `APIRoute` that serves its POST with the endpoint's direct ASGI path when no dependency applies, and
    answers other methods as every callback adapter does (the receiver's 405 JSON, not FastAPI's own)."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The endpoint's ASGI path for a POST without dependencies; FastAPI's handling otherwise."""
        serve: _Serve | None = getattr(self.endpoint, ASGI_ATTRIBUTE, None)
        if serve is None:
            await super().handle(scope, receive, send)
        elif scope["method"] != "POST":
            # Reached only when no other route of the app takes this method on this path (Starlette's partial match).
            await send_json(send, *method_not_allowed_answer(), _ALLOW_POST)
        elif _has_dependencies(self, scope):
            await super().handle(scope, receive, send)
        elif await serve(scope, receive, send) is None:
            raise ClientDisconnect()  # as Request.stream() does: the client went away mid-body
