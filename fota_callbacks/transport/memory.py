"""A transport that calls a Python function instead of the network."""

from __future__ import annotations

import math
import sys
import time
import types
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any

import anyio

from .._errors import ApiTimeoutError
from .base import Request, Response

__all__ = ["Handler", "InMemoryTransport"]

Handler = Callable[[Request], Awaitable[Response]]

_HAS_TIMEOUT_AT = sys.version_info >= (3, 11)  # asyncio.timeout_at


class InMemoryTransport:
    """Calls `await handler(request)` in-process for every request; no sockets.

    The request's timeout is enforced around the handler (`ApiTimeoutError`), so a slow handler behaves like
    a slow server. A handler may raise `ApiConnectionError` to act out a dropped connection.
    """

    def __init__(self, handler: Handler) -> None:
        self._handler = handler

    async def send(self, request: Request) -> Response:
        """The handler's response to `request`; `ApiTimeoutError` if it takes longer than `request.timeout`.

        A timeout can only cut a handler where it suspends, and most in-memory handlers (canned responses,
        `FakeThingSpace`) answer without suspending: the handler runs until it first suspends before any timer
        or cancel scope is set up, which would cost more than the rest of the call (on trio, twice as much).
        """
        timeout = request.timeout
        if timeout is None:
            return await self._handler(request)
        if not _HAS_TIMEOUT_AT:  # pragma: no cover - Python 3.10: a cancel scope from the start
            with anyio.CancelScope(deadline=anyio.current_time() + timeout):
                return await self._handler(request)
            raise _timed_out(request, timeout)
        started = time.monotonic()
        awaitable = self._handler(request)
        coro = awaitable if type(awaitable) is types.CoroutineType else _await(awaitable)
        try:
            yielded = coro.send(None)
        except StopIteration as done:
            response: Response = done.value
            return response
        return await _suspended(coro, yielded, request, timeout, started)

    async def aclose(self) -> None:
        """Nothing to release."""
        return None

    def __repr__(self) -> str:
        return f"InMemoryTransport({self._handler!r})"


async def _suspended(
    coro: Coroutine[Any, Any, Response], yielded: Any, request: Request, seconds: float, started: float
) -> Response:
    """The rest of a handler that suspended, under the attempt's deadline (`started` on `time.monotonic()`)."""
    # Imported here: `import fota_callbacks` must not pay for them, and a caller on either loop has them loaded.
    import sniffio

    spent = time.monotonic() - started
    if sniffio.current_async_library() == "trio":
        import trio

        return await _resume_on_trio(coro, yielded, trio.current_time() + seconds - spent, request, seconds)
    import asyncio

    if sys.version_info < (3, 11):  # pragma: no cover - _HAS_TIMEOUT_AT keeps 3.10 off this path
        raise AssertionError("asyncio.timeout_at needs Python 3.11")
    # asyncio.timeout_at joins no cancel scope stack, so arming it now is sound even when the handler entered a
    # cancel scope of its own before suspending.
    timer = asyncio.timeout_at(asyncio.get_running_loop().time() + seconds - spent)
    try:
        async with timer:
            return await _resume(coro, yielded)
    except TimeoutError:
        if timer.expired():
            raise _timed_out(request, seconds) from None
        raise


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


@types.coroutine
def _resume_on_trio(
    coro: Coroutine[Any, Any, Response], yielded: Any, deadline: float, request: Request, seconds: float
) -> Generator[Any, Any, Response]:
    """`_resume` on trio, the handler cancelled at `deadline` (trio's clock) where it waits.

    Trio cancel scopes must nest: one entered now, around a handler that may have entered scopes of its own
    before suspending, would be exited out of order. So a scope with the deadline is open only while the handler
    is suspended, entered after it yields and exited before it runs again: it encloses each wait and never any of
    the handler's code, and trio delivers its cancellation to the wait as ever. Once the deadline has passed, a
    scope entered is cancelled at once, so every later wait of the handler is cancelled too, as in one scope held
    throughout. A `Cancelled` the handler then raises is the timeout's, unless the caller's own context is
    cancelled as well (the outer scope takes it, as trio's rule is), and ends as `ApiTimeoutError`.
    """
    import trio

    timed_out = False
    while True:
        scope = trio.CancelScope(deadline=deadline)
        scope.__enter__()
        thrown: BaseException | None = None
        try:
            sent = yield yielded
        except BaseException as exc:
            thrown = exc
            scope.__exit__(type(exc), exc, exc.__traceback__)
        else:
            scope.__exit__(None, None, None)
        timed_out = timed_out or scope.cancel_called
        try:
            if thrown is None:
                yielded = coro.send(sent)
            elif isinstance(thrown, GeneratorExit):
                coro.close()
                raise thrown
            else:
                yielded = coro.throw(thrown)
        except StopIteration as done:
            response: Response = done.value
            return response
        except trio.Cancelled:
            if timed_out and trio.current_effective_deadline() != -math.inf:
                raise _timed_out(request, seconds) from None
            raise
