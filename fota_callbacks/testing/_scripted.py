"""`ScriptedTransport`: a transport that answers from a script of queued answers and records every request.

For the tests of code that uses a `FotaCallbacksClient` when a stateful `FakeThingSpace` is more than you need
(or less: a status, a header or a broken connection at one exact moment). The shape follows respx: answers are
added up front, each optionally matched by method and path, the requests are recorded, and a check at the end
says whether every answer was used.
"""

from __future__ import annotations

import json as jsonlib
import math
import threading
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Literal
from urllib.parse import urlsplit

import anyio
import anyio.lowlevel

from .._connection_errors import no_response
from .._errors import ApiConnectionError, InvalidArgumentError
from ..transport.base import Headers, Request, Response
from ..transport.memory import InMemoryTransport
from ._asgi import AsgiApp

__all__ = ["ScriptedAnswer", "ScriptedTransport", "UnscriptedRequestError"]

HeadersInput = Mapping[str, str] | Iterable[tuple[str, str]]

_NOT_SENT_OVER_HTTP = (
    "drop(sent=False) cannot be acted out over HTTP: a server only sees requests that were sent; "
    "use the ScriptedTransport itself as the client's transport for it"
)
# 501 is not retried by the client: the call that met the answer fails at once, with the reason in the body.
_NOT_ACTABLE = Response(
    501,
    Headers((("Content-Type", "application/json"),)),
    jsonlib.dumps({"errorCode": "ScriptNotActable", "errorMessage": _NOT_SENT_OVER_HTTP}).encode(),
)


class UnscriptedRequestError(AssertionError):
    """A request arrived that no queued answer of a `ScriptedTransport` matches.

    An `AssertionError`, so that it fails the test where the request was sent; `assert_all_consumed()` reports it
    again in case the code under test swallowed it.
    """


class ScriptedAnswer:
    """One answer queued on a `ScriptedTransport`: what it does, which requests it matches, how often.

    Returned by `ScriptedTransport.respond`/`add`/`drop`/`hang`; `requests` lists the requests it answered.
    """

    __slots__ = ("_kind", "_response", "_sent", "delay", "method", "path", "remaining", "requests", "times")

    def __init__(
        self,
        kind: Literal["respond", "drop", "hang"],
        *,
        response: Response | None = None,
        sent: bool = True,
        method: str | None,
        path: str | None,
        delay: float,
        times: int | None,
    ) -> None:
        self._kind = kind
        self._response = response
        self._sent = sent
        self.method = method
        """The method it matches (upper case); None: any."""
        self.path = path
        """The URL path it matches exactly, as sent (percent-encoding kept); None: any."""
        self.delay = delay
        """Seconds it waits before answering (`math.inf` for a `hang`)."""
        self.times = times
        """How many requests it answers; None: every matching request."""
        self.remaining = times
        """How many more requests it will answer; None: no limit."""
        self.requests: list[Request] = []
        """The requests it answered, in order."""

    @property
    def used(self) -> bool:
        """Whether it answered every request it was queued for (at least one when `times` is None)."""
        return bool(self.requests) if self.remaining is None else self.remaining == 0

    def matches(self, request: Request) -> bool:
        """Whether this answer applies to `request` (ignoring whether it has uses left)."""
        if self.method is not None and request.method.upper() != self.method:
            return False
        return self.path is None or urlsplit(request.url).path == self.path

    async def _act(self, request: Request) -> Response:
        """Wait `delay`, then answer `request` as scripted (return the response, or raise the connection error)."""
        if self.delay == math.inf:
            await anyio.sleep_forever()
        elif self.delay:
            await anyio.sleep(self.delay)
        else:  # like a network round trip: a point where the caller can be cancelled and other tasks run
            await anyio.lowlevel.checkpoint()
        if self._response is None:
            cause: OSError = (
                ConnectionResetError("scripted: connection reset")
                if self._sent
                else ConnectionRefusedError("scripted: connection refused")
            )
            raise no_response(cause, request, sent=self._sent, timeout=False)
        return self._response

    def __repr__(self) -> str:
        if self._response is not None:
            what = f"respond {self._response.status_code}"
        else:
            what = "hang" if self._kind == "hang" else f"drop (request_sent={self._sent})"
        target = f"{self.method or '*'} {self.path or '*'}"
        left = "always" if self.remaining is None else f"{self.remaining} of {self.times} left"
        delay = f", after {self.delay} s" if self.delay and self.delay != math.inf else ""
        return f"<ScriptedAnswer {what} for {target}{delay}, {left}>"


def _check_times(times: object) -> int | None:
    if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 1):
        raise InvalidArgumentError("times", f"must be an int >= 1, or None for every matching request; got {times!r}")
    return times


def _check_delay(delay: object) -> float:
    if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not delay >= 0:
        raise InvalidArgumentError("delay", f"must be a number of seconds >= 0, got {delay!r}")
    return float(delay)


def _check_method(method: object) -> str | None:
    if method is None:
        return None
    if not isinstance(method, str) or not method.isalpha():
        raise InvalidArgumentError("method", f"must be an HTTP method such as 'GET', or None; got {method!r}")
    return method.upper()


def _check_path(path: object) -> str | None:
    if path is not None and (not isinstance(path, str) or not path.startswith("/")):
        raise InvalidArgumentError("path", f"must be a URL path starting with '/', or None; got {path!r}")
    return path


class ScriptedTransport:
    """A `fota.Transport` that answers each request with the next queued answer that matches it, and records it.

    ```python
    from fota_callbacks.testing import ScriptedTransport

    with ScriptedTransport() as transport:  # on exit: every queued answer was used
        transport.respond(503, headers={"Retry-After": "0"})
        transport.drop()  # the connection breaks after the request was sent
        listing = transport.respond(200, json={"url": "https://listener.example/fota"}, method="GET")
        async with fota.FotaCallbacksClient(access_token="t", m2m_token="m", transport=transport) as client:
            await client.v2.list_registered_callbacks("0000123456-00001")
    assert len(transport.requests) == 3 and len(listing.requests) == 1
    ```

    A request takes the earliest queued answer that matches its method and path and has uses left. A request
    that none matches raises `UnscriptedRequestError`. An answer waits its `delay` first, within the request's
    `timeout`: an attempt that would take longer raises `fota.ApiTimeoutError`, as a slow server does.
    `requests` records every request sent, answered or not. It is safe to use from many tasks, and from the
    thread of a server (see `asgi_app`).

    The client that is given this transport closes it; sending after `aclose()` raises `RuntimeError`, as the
    bundled network transports do.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answers: list[ScriptedAnswer] = []
        self._requests: list[Request] = []
        self._unscripted: list[Request] = []
        self._not_actable: list[Request] = []  # met a drop(sent=False) over HTTP
        self._closed = False
        # The request's timeout is enforced around the answer exactly as for any in-process handler.
        self._in_process = InMemoryTransport(self._answer)
        self.asgi_app = AsgiApp(self._send_over_http)
        """An ASGI 3 application answering from this script over real HTTP (`serve(transport)` serves it).

        A `drop()` answer then sends part of a response and cuts the connection: the client sees a broken
        connection with `request_sent=True`. A `drop(sent=False)` cannot be acted out by a server (the request
        reached it, so it was sent): a request that meets one is answered 501 with the reason in the body, and
        `assert_all_consumed()` fails. A `hang()` ends when the client disconnects.
        """

    # -- the script ------------------------------------------------------------------------------------------

    def respond(
        self,
        status_code: int = 200,
        *,
        json: object = None,
        content: bytes = b"",
        headers: HeadersInput | None = None,
        method: str | None = None,
        path: str | None = None,
        delay: float = 0.0,
        times: int | None = 1,
    ) -> ScriptedAnswer:
        """Queue a response: `status_code` with `headers` and `content`, or `json` (serialised, with a JSON
        content type unless `headers` name one). Matches requests with `method` and `path` (None: any), answers
        `times` of them (None: every one from now on), each after `delay` seconds."""
        if isinstance(status_code, bool) or not isinstance(status_code, int) or not 100 <= status_code <= 599:
            raise InvalidArgumentError("status_code", f"must be an int from 100 to 599, got {status_code!r}")
        if json is not None and content:
            raise InvalidArgumentError("json", "give json or content, not both")
        given = Headers(headers or ())
        if json is not None:
            content = jsonlib.dumps(json).encode()
            if "content-type" not in given:
                given = Headers((("Content-Type", "application/json"), *given.raw()))
        if not isinstance(content, bytes):
            raise InvalidArgumentError("content", f"must be bytes, got {type(content).__name__}")
        return self.add(Response(status_code, given, content), method=method, path=path, delay=delay, times=times)

    def add(
        self,
        response: Response,
        *,
        method: str | None = None,
        path: str | None = None,
        delay: float = 0.0,
        times: int | None = 1,
    ) -> ScriptedAnswer:
        """Queue `response` as it is; the other arguments as for `respond`."""
        if not isinstance(response, Response):
            raise InvalidArgumentError("response", f"expected a fota.Response, got {type(response).__name__}")
        return self._queue("respond", response, True, method, path, delay, times)

    def drop(
        self,
        *,
        sent: bool = True,
        method: str | None = None,
        path: str | None = None,
        delay: float = 0.0,
        times: int | None = 1,
    ) -> ScriptedAnswer:
        """Queue a connection failure: `fota.ApiConnectionError` with `request_sent=sent`. True (the default)
        acts out a connection that broke after the request went out (the server may have processed it); False,
        one that was refused before anything was sent (in-process only: see `asgi_app`). The other arguments as
        for `respond`."""
        if not isinstance(sent, bool):
            raise InvalidArgumentError("sent", f"must be a bool, got {sent!r}")
        return self._queue("drop", None, sent, method, path, delay, times)

    def hang(self, *, method: str | None = None, path: str | None = None, times: int | None = 1) -> ScriptedAnswer:
        """Queue a server that never answers: the request's timeout (`fota.ApiTimeoutError`) or a cancellation
        ends the attempt. The other arguments as for `respond`."""
        return self._queue("hang", None, True, method, path, math.inf, times)

    def _queue(
        self,
        kind: Literal["respond", "drop", "hang"],
        response: Response | None,
        sent: bool,
        method: object,
        path: object,
        delay: object,
        times: object,
    ) -> ScriptedAnswer:
        answer = ScriptedAnswer(
            kind,
            response=response,
            sent=sent,
            method=_check_method(method),
            path=_check_path(path),
            delay=_check_delay(delay),
            times=_check_times(times),
        )
        with self._lock:
            self._answers.append(answer)
        return answer

    # -- what happened ---------------------------------------------------------------------------------------

    @property
    def requests(self) -> list[Request]:
        """Every request sent through this transport, in order (including those no answer matched)."""
        with self._lock:
            return list(self._requests)

    @property
    def pending(self) -> list[ScriptedAnswer]:
        """The queued answers not yet used up (see `ScriptedAnswer.used`), in queue order."""
        with self._lock:
            return [answer for answer in self._answers if not answer.used]

    @property
    def closed(self) -> bool:
        """Whether `aclose()` was called (by the client that owned this transport, usually)."""
        return self._closed

    def assert_all_consumed(self) -> None:
        """Fail (`AssertionError`) if a queued answer was not used up, a request matched no answer, or a request
        over HTTP met a `drop(sent=False)` (see `asgi_app`)."""
        problems = [f"not used: {answer!r}" for answer in self.pending]
        with self._lock:
            problems += [f"no answer for: {r.method} {urlsplit(r.url).path}" for r in self._unscripted]
            problems += [f"{_NOT_SENT_OVER_HTTP} ({r.method} {urlsplit(r.url).path})" for r in self._not_actable]
        if problems:
            raise AssertionError("ScriptedTransport: " + "; ".join(problems))

    def reset(self) -> None:
        """Forget every queued answer and every recorded request."""
        with self._lock:
            self._answers.clear()
            self._requests.clear()
            self._unscripted.clear()
            self._not_actable.clear()

    # -- the Transport protocol ------------------------------------------------------------------------------

    async def send(self, request: Request) -> Response:
        """Record `request` and act out the first queued answer that matches it, within `request.timeout`."""
        if self._closed:
            raise RuntimeError("this ScriptedTransport was closed (aclose)")
        return await self._in_process.send(request)

    async def _send_over_http(self, request: Request) -> Response:
        try:
            return await self.send(request)
        except ApiConnectionError as exc:
            if exc.request_sent:
                raise  # acted out by the server: a partial response, then the connection cut
            with self._lock:
                self._not_actable.append(request)
            return _NOT_ACTABLE

    async def _answer(self, request: Request) -> Response:
        with self._lock:  # taking an answer and recording the request is one step: arrival order is queue order
            self._requests.append(request)
            answer = next((a for a in self._answers if a.remaining != 0 and a.matches(request)), None)
            if answer is None:
                self._unscripted.append(request)
            else:
                answer.requests.append(request)
                if answer.remaining is not None:
                    answer.remaining -= 1
        if answer is None:
            raise UnscriptedRequestError(
                f"no queued answer matches {request.method} {urlsplit(request.url).path}; pending: {self.pending!r}"
            )
        return await answer._act(request)

    async def aclose(self) -> None:
        """Mark the transport closed; the script and the record stay readable."""
        self._closed = True

    # -- a context manager that checks on exit ---------------------------------------------------------------

    def __enter__(self) -> ScriptedTransport:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if exc_type is None:  # a failing block's own error says more than an unused answer would
            self.assert_all_consumed()

    def __repr__(self) -> str:
        return f"<ScriptedTransport: {len(self.pending)} answers pending, {len(self._requests)} requests>"
