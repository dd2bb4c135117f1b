"""A transport that calls a Python function instead of the network."""

from __future__ import annotations

import sys
import types
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any

import anyio

from .._errors import ApiTimeoutError
from .base import Request, Response

__all__ = ["Handler", "InMemoryTransport"]

Handler = Callable[[Request], Awaitable[Response]]

_HAS_TIMEOUT_AT = sys.version_info >= (3, 11)  # asyncio.timeout_at


def _on_asyncio() -> bool:
    # Imported here, not with the module: asyncio alone takes ~25 ms to import, and `import fota_callbacks`
    # must not pay for it (a caller on asyncio has it loaded already: then these imports are lookups).
    # sniffio's `current_async_library()` costs a quarter of an in-memory call on asyncio; this is its answer
    # in three lookups: trio (and any library that says so) names itself in sniffio's thread-local while it runs,
    # and otherwise a running asyncio loop in this thread means asyncio.
    import sniffio

    if sniffio.thread_local.name is not None or sniffio.current_async_library_cvar.get() is not None:
        return sniffio.current_async_library() == "asyncio"
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:  # no asyncio loop runs in this thread
        return False
    return True


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
        if _HAS_TIMEOUT_AT and _on_asyncio():
            return await self._send_asyncio(request, timeout)
        # A bare cancel scope with a deadline: anyio.fail_after costs twice as much per call.
        with anyio.CancelScope(deadline=anyio.current_time() + timeout):
            return await self._handler(request)
        raise _timed_out(request, timeout)

    async def _send_asyncio(self, request: Request, seconds: float) -> Response:
        # A timeout can only cut a handler where it suspends, and most in-memory handlers (canned responses,
        # FakeThingSpace) answer without suspending: the handler runs until it first suspends before any timer
        # is armed (about half the cost of a call otherwise). asyncio.timeout_at joins no cancel scope stack,
        # so arming it then is sound even when the handler entered a cancel scope of its own before suspending.
        import asyncio

        deadline = asyncio.get_running_loop().time() + seconds
        awaitable = self._handler(request)
        coro = awaitable if isinstance(awaitable, types.CoroutineType) else _await(awaitable)
        try:
            yielded = coro.send(None)
        except StopIteration as done:
            response: Response = done.value
            return response
        if sys.version_info < (3, 11):  # pragma: no cover - _HAS_TIMEOUT_AT keeps 3.10 off this path
            raise AssertionError("asyncio.timeout_at needs Python 3.11")
        timer = asyncio.timeout_at(deadline)
        try:
            async with timer:
                return await _resume(coro, yielded)
        except TimeoutError:
            if timer.expired():
                raise _timed_out(request, seconds) from None
            raise

    async def aclose(self) -> None:
        """Nothing to release."""
        return None

    def __repr__(self) -> str:
        return f"InMemoryTransport({self._handler!r})"


def _timed_out(request: Request, timeout: float) -> ApiTimeoutError:
    return ApiTimeoutError(f"timed out after {timeout} s", request=request, request_sent=True)


async def _await(awaitable: Awaitable[Response]) -> Response:
    return await awaitable


@types.coroutine
def _resume(coro: Coroutine[Any, Any, Response], yielded: Any) -> Generator[Any, Any, Response]:
    """Go on running `coro`, which has suspended yielding `yielded`, in the awaiting task until it returns."""
    while True:
        try:
            sent = yield yielded
        except GeneratorExit:  # noqa: PERF203 - runs once per suspension, for handlers that suspend only
            coro.close()
            raise
        except BaseException as exc:  # cancellation included: the handler sees it where it waits
            try:
                yielded = coro.throw(exc)
            except StopIteration as done:
                response: Response = done.value
                return response
        else:
            try:
                yielded = coro.send(sent)
            except StopIteration as done:
                response = done.value
                return response
