"""A transport that calls a Python function instead of the network."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio

from .._errors import ApiTimeoutError
from .base import Request, Response

__all__ = ["Handler", "InMemoryTransport"]

Handler = Callable[[Request], Awaitable[Response]]


class InMemoryTransport:
    """Calls `await handler(request)` in-process for every request; no sockets.

    The request's timeout is enforced around the handler (`ApiTimeoutError`), so a slow handler behaves like
    a slow server. A handler may raise `ApiConnectionError` to act out a dropped connection.
    """

    def __init__(self, handler: Handler) -> None:
        self._handler = handler

    async def send(self, request: Request) -> Response:
        """The handler's response to `request`; `ApiTimeoutError` if it takes longer than `request.timeout`."""
        timeout = request.timeout
        if timeout is None:
            return await self._handler(request)
        # A bare cancel scope with a deadline: anyio.fail_after costs twice as much per call.
        with anyio.CancelScope(deadline=anyio.current_time() + timeout):
            return await self._handler(request)
        raise ApiTimeoutError(f"timed out after {timeout} s", request=request, request_sent=True)

    async def aclose(self) -> None:
        """Nothing to release."""
        return None

    def __repr__(self) -> str:
        return f"InMemoryTransport({self._handler!r})"
