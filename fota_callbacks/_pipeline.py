"""The one choke point every request goes through: build -> send -> decide -> wait, then decode or raise."""

from __future__ import annotations

import enum
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import quote, urlsplit

import anyio
import attrs

from ._auth import Auth, AuthSnapshot
from ._call import Call, Outcome
from ._constants import PATH_SEGMENT_CACHE, USER_AGENT
from ._errors import (
    ApiConnectionError,
    ApiTimeoutError,
    ClientClosedError,
    FotaResultException,
    ResponseValidationError,
    redacted,
    request_id_of,
)
from ._retry import RetryPolicy
from ._serde import decoder, encode
from ._telemetry import ClientTelemetry
from .transport.base import Headers, Request, Response, SendNext, Transport, request_from_parts

if TYPE_CHECKING:
    from ._otel import ClientRecording

__all__ = [
    "ApiResponse",
    "ApiVersion",
    "CallOptions",
    "Endpoint",
    "Middleware",
    "Pipeline",
    "SendNext",
    "Shared",
    "request_id_of",
    "stack",
]

T = TypeVar("T")
R = TypeVar("R")
log = logging.getLogger("fota_callbacks")

Middleware = Callable[[Request, SendNext], Awaitable[Response]]
"""`async def middleware(request, call_next) -> Response`: runs around every attempt (tracing, metrics)."""

Sleep = Callable[[float], Awaitable[Any]]


class _LookUp(enum.Enum):
    LOOK_UP = "LOOK_UP"


LOOK_UP = _LookUp.LOOK_UP
"""`exchange`'s default `recording`: look up what to report through (the SDK's own requests)."""


@attrs.frozen
class ApiResponse(Generic[T]):
    """A successful call with its HTTP details: what `with_raw_response` methods return."""

    status_code: int
    headers: Headers
    data: T
    request_id: str | None
    retries_taken: int


@attrs.frozen
class ApiVersion:
    """What sets one callbacks API apart: its base path, its 400 exception and the callback URL schemes it takes."""

    name: str
    base_path: str
    error: type[FotaResultException]
    callback_url_schemes: tuple[str, ...]


class Endpoint(Generic[T]):
    """One operation: method, path template under the version's base path, and how its 2xx body decodes."""

    __slots__ = (
        "_decode",
        "_empty",
        "_prefix",
        "_response",
        "_single",
        "_template",
        "gone",
        "method",
        "name",
        "template",
        "version",
    )

    def __init__(
        self,
        version: ApiVersion,
        name: str,
        method: str,
        path: str,
        response: Any,
        *,
        empty: Callable[[], T] | None = None,
        gone: Callable[[], T] | None = None,
    ) -> None:
        self.version = version
        # A deregister's result when a retry finds nothing left to remove (see `Pipeline.call`).
        self.gone = gone
        self.name = name
        self.template = f"{version.base_path}/{path}"  # `url.template` of its telemetry
        self.method = method
        # "callbacks/{account}" -> ("/api/fota/v2/callbacks/", None): None marks a parameter slot.
        template: list[str | None] = [version.base_path]
        for segment in path.split("/"):
            template.append("/")
            template.append(None if segment.startswith("{") else segment)
        self._template = tuple(template)
        # Most paths end in their only parameter: then a path is a prefix and one encoded segment.
        self._single = template.count(None) == 1 and template[-1] is None
        self._prefix = "".join(part for part in template if part is not None)
        self._response = response
        self._empty = empty
        self._decode: Callable[[bytes, int], T] | None = None  # built on first use: import stays cheap

    def decode(self, body: bytes, status_code: int) -> T:
        """The model a 2xx body holds, or `ResponseValidationError`."""
        decode = self._decode
        if decode is None:
            decode = self._decode = decoder(self._response, empty=self._empty)
        return decode(body, status_code)

    def path(self, params: Sequence[str]) -> str:
        """The request path, each parameter percent-encoded as one whole segment (`/` becomes `%2F`)."""
        if self._single:
            return self._prefix + _segment(params[0])
        values = iter(params)
        return "".join(_segment(next(values)) if part is None else part for part in self._template)

    def __repr__(self) -> str:
        return f"<Endpoint {self.version.name}.{self.name}>"


@functools.lru_cache(maxsize=PATH_SEGMENT_CACHE)
def _segment(value: str) -> str:
    return quote(value, safe="")


@attrs.frozen(kw_only=True)
class CallOptions:
    """Per-client call settings; `with_options` makes a client with other ones.

    `timeout` bounds each attempt as a whole, from sending to the last body byte (the transport enforces it);
    `deadline` bounds the whole call, retries and waits included.
    """

    timeout: float | None
    retry: RetryPolicy
    deadline: float | None = None


_BASE_HEADERS = (("Accept", "application/json"), ("User-Agent", USER_AGENT))
_JSON_BODY_HEADERS = (*_BASE_HEADERS, ("Content-Type", "application/json"))


class _Progress:
    """Where a call with a deadline has got to, for the error raised when the deadline cuts it off."""

    __slots__ = ("deadline_at", "request", "retries")

    def __init__(self, deadline_at: float) -> None:
        self.deadline_at = deadline_at
        self.request: Request | None = None
        self.retries = 0


@attrs.define(kw_only=True)
class Shared:
    """What a client and all its `with_options` clones share: the root, the transport and the stack of
    middleware around it (`send`), the credentials, the clock and sleep, whether the client was closed, and the
    OpenTelemetry providers it reports through."""

    root: str
    transport: Transport
    send: SendNext
    auth: Auth
    sleep: Sleep = anyio.sleep
    clock: Callable[[], float] = time.monotonic
    closed: bool = False
    telemetry: ClientTelemetry = attrs.field(
        default=attrs.Factory(lambda self: ClientTelemetry(None, None, self.root), takes_self=True)
    )


def stack(transport: Transport, middleware: Sequence[Middleware]) -> SendNext:
    """`transport.send` wrapped in each middleware, the first given outermost."""
    send: SendNext = transport.send
    for layer in reversed(middleware):
        send = _around(layer, send)
    return send


class Pipeline:
    """Sends calls with one set of options over a `Shared` stack."""

    __slots__ = ("options", "shared")

    def __init__(self, shared: Shared, options: CallOptions) -> None:
        self.shared = shared
        self.options = options

    def with_options(self, options: CallOptions) -> Pipeline:
        """The same stack with other options."""
        return Pipeline(self.shared, options)

    def call(self, endpoint: Endpoint[T], params: Sequence[str], body: object = None) -> Awaitable[ApiResponse[T]]:
        """Send one API operation with retries and return its decoded result, or raise its error.

        A deregister retried after an attempt that may have been processed, and then refused with the
        version's 400, succeeds: the first attempt removed the registration (the status stays the 400's).
        """
        return self._operation(endpoint, params, body, _api_response)

    def data(self, endpoint: Endpoint[T], params: Sequence[str], body: object = None) -> Awaitable[T]:
        """`call`'s decoded result alone, for the methods that return the model: no `ApiResponse` built."""
        return self._operation(endpoint, params, body, _model)

    def _operation(
        self, endpoint: Endpoint[T], params: Sequence[str], body: object, shape: Callable[[Outcome, T], R]
    ) -> Awaitable[R]:
        """The operation to await: in its span when an OpenTelemetry provider records, else as it is. Plain
        functions, not coroutines (as are `call` and `data`): each coroutine layer costs an in-memory call about
        5%, so the usual path awaits `_result` straight from the controller."""
        recording = self.shared.telemetry.current()
        if recording is None:
            return self._result(endpoint, params, body, None, shape)
        return recording.operation(endpoint, params[0], lambda: self._result(endpoint, params, body, recording, shape))

    async def _result(
        self,
        endpoint: Endpoint[T],
        params: Sequence[str],
        body: object,
        recording: ClientRecording | None,
        shape: Callable[[Outcome, T], R],
    ) -> R:
        url = self.shared.root + endpoint.path(params)
        if body is None:
            call = Call(endpoint.method, url, _BASE_HEADERS)
        else:
            # A body holding a password (V1 registration) is withheld from the request errors carry.
            secret = getattr(body, "password", None) is not None
            call = Call(endpoint.method, url, _JSON_BODY_HEADERS, encode(body), secret)
        deadline = self.options.deadline
        auth = self.shared.auth
        template = endpoint.template
        outcome = await (
            self.exchange(call, auth, None, template, recording)
            if deadline is None
            else self._exchange_before(deadline, call, template, recording)
        )
        response = outcome.response
        status = response.status_code
        if 200 <= status < 300:
            try:
                return shape(outcome, endpoint.decode(response.content, status))
            except ResponseValidationError as exc:
                exc.request_id = request_id_of(response.headers)
                raise
        if status == 400 and outcome.maybe_processed and endpoint.gone is not None:
            return shape(outcome, endpoint.gone())
        raise outcome.error(f"{endpoint.method} {_path(url)}", bad_request=endpoint.version.error)

    async def _exchange_before(
        self, deadline: float, call: Call, template: str, recording: ClientRecording | None
    ) -> Outcome:
        progress = _Progress(self.shared.clock() + deadline)
        try:
            with anyio.fail_after(deadline):
                return await self.exchange(call, self.shared.auth, progress, template, recording)
        except TimeoutError:
            sent = None if progress.request is None else redacted(progress.request, secret_body=call.secret_body)
            error = ApiTimeoutError(f"{call.method} {_path(call.url)}: deadline of {deadline} s exceeded", request=sent)
            error.retries_taken = progress.retries
            raise error from None

    async def exchange(
        self,
        call: Call,
        auth: Auth | None = None,
        progress: _Progress | None = None,
        template: str | None = None,
        recording: ClientRecording | _LookUp | None = LOOK_UP,
    ) -> Outcome:
        """Send `call` with `auth`'s credentials (None: none) and retries: build -> send -> decide -> wait.
        Returns the last response (any status) with its request and the retries taken; raises the connection
        failure left after the retries, or `ClientClosedError` once the client is closed.

        A 401 with renewable credentials is retried once with fresh tokens; that retry counts in
        `retries_taken` but not against `max_retries`. For telemetry: `template` is the operation's path
        template (None: the SDK's own requests, whose paths hold no parameter), `recording` what its attempts
        report through (looked up when not given).
        """
        if recording is LOOK_UP:
            recording = self.shared.telemetry.current()
        policy = self.options.retry
        retries = 0  # retries the policy granted
        renewed = 0  # 1 once a 401 made us renew the credentials
        maybe_processed = False
        while True:
            # Static credentials need no await: one coroutine layer less per attempt on the usual path.
            snapshot = None if auth is None else auth.static or await auth.current(self.exchange)
            request = self._build(call, snapshot)
            if progress is not None:
                progress.request, progress.retries = request, retries + renewed
            try:
                outcome: Response | ApiConnectionError = await (
                    self.shared.send(request)
                    if recording is None  # telemetry: else the attempt in its CLIENT span
                    else recording.attempt(self.shared.send, request, template, retries + renewed)
                )
            except ApiConnectionError as exc:
                outcome = self._failed(exc, request, call, retries + renewed)
                maybe_processed = maybe_processed or exc.request_sent
            if log.isEnabledFor(logging.DEBUG):
                self._log_attempt(request, outcome, retries + renewed)
            if isinstance(outcome, Response) and outcome.status_code == 401 and not renewed and snapshot is not None:
                assert auth is not None  # a snapshot comes from it
                if await auth.invalidate(snapshot):
                    renewed = 1
                    log.info(
                        "HTTP 401 from %s %s: renewing credentials and retrying once", call.method, _path(call.url)
                    )
                    continue
            delay = policy.next_delay(retries, outcome, self._remaining(progress))
            if delay is None:
                if isinstance(outcome, ApiConnectionError):
                    raise outcome
                return Outcome(request, outcome, retries + renewed, maybe_processed, call.secret_body)
            self._log_retry(request, outcome, retries, delay)
            await self.shared.sleep(delay)
            retries += 1

    def _failed(self, failure: ApiConnectionError, request: Request, call: Call, retries: int) -> ApiConnectionError:
        """`failure` as the caller may see it: the request redacted, the retries counted; `ClientClosedError`
        instead when `aclose()` broke the connection under this call (that is what happened, not how it broke)."""
        failure.request = redacted(failure.request or request, secret_body=call.secret_body)
        failure.retries_taken = retries
        if self.shared.closed:
            raise _closed_in_flight(call, failure) from failure
        return failure

    def _build(self, call: Call, snapshot: AuthSnapshot | None) -> Request:
        """One attempt's request: the call's headers plus the credentials of `snapshot`, and the attempt's
        timeout; `ClientClosedError` once the client is closed (also while the credentials were being fetched)."""
        if self.shared.closed:
            raise ClientClosedError(f"{call.method} {_path(call.url)}: this client is closed; make a new one")
        headers = Headers(call.headers) if snapshot is None else snapshot.request_headers(call.headers)
        return request_from_parts(call.method, call.url, headers, call.content, self.options.timeout)

    def _remaining(self, progress: _Progress | None) -> float | None:
        return None if progress is None else progress.deadline_at - self.shared.clock()

    def _log_attempt(self, request: Request, outcome: Response | ApiConnectionError, retries: int) -> None:
        response = outcome if isinstance(outcome, Response) else None
        failure = None if response is not None else type(outcome).__name__
        request_id = None if response is None else request_id_of(response.headers)
        status = None if response is None else response.status_code
        log.debug(
            "%s %s -> %s (attempt %d%s)",
            request.method,
            _path(request.url),
            failure if status is None else status,
            retries + 1,
            f", request id {request_id}" if request_id else "",
            extra={
                "method": request.method,
                "path": _path(request.url),
                "status_code": status,
                "request_id": request_id,
                "attempt": retries + 1,
                "error": failure,
            },
        )

    def _log_retry(self, request: Request, outcome: Response | ApiConnectionError, retries: int, delay: float) -> None:
        reason = f"HTTP {outcome.status_code}" if isinstance(outcome, Response) else type(outcome).__name__
        log.info(
            "%s %s failed (%s); retry %d of %d in %.2f s",
            request.method,
            _path(request.url),
            reason,
            retries + 1,
            self.options.retry.max_retries,
            delay,
            extra={
                "method": request.method,
                "path": _path(request.url),
                "reason": reason,
                "attempt": retries + 1,
                "delay": delay,
            },
        )


def _api_response(outcome: Outcome, data: T) -> ApiResponse[T]:
    response = outcome.response
    return ApiResponse(response.status_code, response.headers, data, request_id_of(response.headers), outcome.retries)


def _model(outcome: Outcome, data: T) -> T:
    return data


def _around(layer: Middleware, call_next: SendNext) -> SendNext:
    async def send(request: Request) -> Response:
        return await layer(request, call_next)

    return send


def _path(url: str) -> str:
    return urlsplit(url).path


def _closed_in_flight(call: Call, failure: ApiConnectionError) -> ClientClosedError:
    maybe = " (the request may have reached the server)" if failure.request_sent else ""
    return ClientClosedError(
        f"{call.method} {_path(call.url)}: the client was closed while this call was in flight{maybe}"
    )
