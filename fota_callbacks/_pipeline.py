"""The one choke point every request goes through: build -> authenticate -> send -> retry -> decode -> error."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar
from urllib.parse import quote, urlsplit

import anyio
import attrs

from ._auth import Auth, AuthSnapshot
from ._constants import REQUEST_ID_HEADERS, USER_AGENT
from ._errors import (
    ApiConnectionError,
    ApiError,
    ApiTimeoutError,
    FotaError,
    FotaResultException,
    RateLimitError,
    error_class_for_status,
)
from ._retry import RetryPolicy, parse_retry_after
from ._serde import decoder, encode
from .transport.base import Headers, Request, Response, Transport

__all__ = ["ApiResponse", "ApiVersion", "CallOptions", "Endpoint", "Middleware", "Pipeline", "SendNext"]

T = TypeVar("T")
log = logging.getLogger("fota_callbacks")

SendNext = Callable[[Request], Awaitable[Response]]
Middleware = Callable[[Request, SendNext], Awaitable[Response]]
"""`async def middleware(request, call_next) -> Response`: runs around every attempt (tracing, metrics)."""

Sleep = Callable[[float], Awaitable[Any]]


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

    __slots__ = ("_decode", "_empty", "_prefix", "_response", "_single", "_template", "method", "name", "version")

    def __init__(
        self,
        version: ApiVersion,
        name: str,
        method: str,
        path: str,
        response: Any,
        *,
        empty: Callable[[], T] | None = None,
    ) -> None:
        self.version = version
        self.name = name
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


@functools.lru_cache(maxsize=1024)
def _segment(value: str) -> str:
    return quote(value, safe="")


@attrs.frozen(kw_only=True)
class CallOptions:
    """Per-client call settings; `with_options` makes a client with other ones."""

    timeout: float | None
    retry: RetryPolicy
    deadline: float | None = None


_BASE_HEADERS = (("Accept", "application/json"), ("User-Agent", USER_AGENT))
_JSON_BODY_HEADERS = (*_BASE_HEADERS, ("Content-Type", "application/json"))


def request_id_of(headers: Headers) -> str | None:
    return headers.first(REQUEST_ID_HEADERS)


class _Progress:
    """Where a call with a deadline has got to, for the error raised when the deadline cuts it off."""

    __slots__ = ("deadline_at", "request", "retries")

    def __init__(self, deadline_at: float) -> None:
        self.deadline_at = deadline_at
        self.request: Request | None = None
        self.retries = 0


class ClientClosedError(FotaError, RuntimeError):
    """The client was closed with `aclose()`; make a new one."""


class Pipeline:
    """Sends calls for one client configuration. `with_options` shares everything but the options."""

    __slots__ = ("_auth", "_clock", "_closed", "_options", "_root", "_send", "_sleep")

    def __init__(
        self,
        *,
        root: str,
        transport: Transport,
        auth: Auth | None,
        options: CallOptions,
        middleware: Sequence[Middleware] = (),
        sleep: Sleep = anyio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._root = root
        self._auth = auth
        self._options = options
        self._sleep = sleep
        self._clock = clock
        self._closed = [False]  # one flag shared with every with_options clone
        send: SendNext = transport.send
        for layer in reversed(middleware):
            send = _around(layer, send)
        self._send = send

    @property
    def root(self) -> str:
        return self._root

    @property
    def options(self) -> CallOptions:
        return self._options

    def set_auth(self, auth: Auth) -> None:
        self._auth = auth

    @property
    def closed(self) -> bool:
        return self._closed[0]

    def mark_closed(self) -> None:
        self._closed[0] = True

    def with_options(self, options: CallOptions) -> Pipeline:
        clone = object.__new__(Pipeline)
        clone._root, clone._auth = self._root, self._auth
        clone._sleep, clone._clock, clone._closed, clone._send = (
            self._sleep,
            self._clock,
            self._closed,
            self._send,
        )
        clone._options = options
        return clone

    async def call(self, endpoint: Endpoint[T], params: Sequence[str], body: object = None) -> ApiResponse[T]:
        """Send one API operation with retries and return its decoded result, or raise its error."""
        if self._closed[0]:
            raise ClientClosedError("this client is closed")
        url = self._root + endpoint.path(params)
        headers: tuple[tuple[str, str], ...]
        if body is None:
            headers, content = _BASE_HEADERS, b""
        else:
            headers, content = _JSON_BODY_HEADERS, encode(body)
        deadline = self._options.deadline
        if deadline is None:
            request, response, retries = await self.exchange(endpoint.method, url, headers, content, self._auth)
        else:
            request, response, retries = await self._exchange_before(deadline, endpoint.method, url, headers, content)
        status = response.status_code
        if 200 <= status < 300:
            return ApiResponse(
                status,
                response.headers,
                endpoint.decode(response.content, status),
                request_id_of(response.headers),
                retries,
            )
        raise self._api_error(endpoint.version, request, response, retries)

    async def _exchange_before(
        self, deadline: float, method: str, url: str, headers: tuple[tuple[str, str], ...], content: bytes
    ) -> tuple[Request, Response, int]:
        progress = _Progress(self._clock() + deadline)
        try:
            with anyio.fail_after(deadline):
                return await self.exchange(method, url, headers, content, self._auth, progress)
        except TimeoutError:
            error = ApiTimeoutError(
                f"{method} {urlsplit(url).path}: deadline of {deadline} s exceeded", request=progress.request
            )
            error.retries_taken = progress.retries
            raise error from None

    async def exchange(
        self,
        method: str,
        url: str,
        headers: tuple[tuple[str, str], ...],
        content: bytes,
        auth: Auth | None = None,
        progress: _Progress | None = None,
    ) -> tuple[Request, Response, int]:
        """Send with retries; return the final request, its response (any status) and the retries taken.

        A 401 with renewable credentials is retried once with fresh tokens. A retryable status is retried
        until `max_retries` is spent, or returned at once when its Retry-After is beyond the cap.
        A connection failure left after the retries is raised.
        """
        policy = self._options.retry
        timeout = self._options.timeout
        deadline_at = None if progress is None else progress.deadline_at
        retries = 0
        reauthenticated = False
        while True:
            snapshot: AuthSnapshot | None = None
            if auth is None:
                request = Request(method, url, headers, content, timeout)
            else:
                snapshot = auth.static or await auth.current()
                request = Request(method, url, snapshot.request_headers(headers), content, timeout)
            if progress is not None:
                progress.request, progress.retries = request, retries
            try:
                response = await self._send(request)
            except ApiConnectionError as exc:
                exc.retries_taken = retries
                if log.isEnabledFor(logging.DEBUG):
                    self._log_attempt(request, None, retries, type(exc).__name__)
                if retries >= policy.max_retries or not policy.should_retry_failure(exc):
                    raise
                delay = policy.backoff(retries)
                if deadline_at is not None and self._clock() + delay >= deadline_at:
                    raise
                self._log_retry(request, type(exc).__name__, retries, delay)
                await self._sleep(delay)
                retries += 1
                continue

            status = response.status_code
            if log.isEnabledFor(logging.DEBUG):
                self._log_attempt(request, response, retries)
            if status < 400:
                return request, response, retries
            if (
                status == 401
                and not reauthenticated
                and auth is not None
                and snapshot is not None
                and await auth.invalidate(snapshot)
            ):
                reauthenticated = True
                log.info("HTTP 401 from %s %s: renewing credentials and retrying once", method, _path(url))
                continue
            if retries >= policy.max_retries or not policy.should_retry_status(status):
                return request, response, retries
            retry_after = parse_retry_after(response.headers)
            if retry_after is None:
                delay = policy.backoff(retries)
            elif retry_after <= policy.max_retry_after:
                delay = retry_after
            else:
                return request, response, retries  # the server asks for longer than we wait: raise now
            if deadline_at is not None and self._clock() + delay >= deadline_at:
                return request, response, retries
            self._log_retry(request, f"HTTP {status}", retries, delay)
            await self._sleep(delay)
            retries += 1

    def _api_error(self, version: ApiVersion, request: Request, response: Response, retries: int) -> ApiError:
        status = response.status_code
        kwargs: dict[str, Any] = {
            "status_code": status,
            "headers": response.headers,
            "body": response.content,
            "request_id": request_id_of(response.headers),
            "request": request,
        }
        where = f"HTTP {status} from {request.method} {_path(request.url)}"
        error: ApiError
        if status == 400:
            error = version.error.from_response(where, **kwargs)
        elif status == 429:
            retry_after = parse_retry_after(response.headers)
            error = RateLimitError(where, retry_after=retry_after, **kwargs)
        else:
            error = error_class_for_status(status)(where, **kwargs)
        error.retries_taken = retries
        return error

    def _log_attempt(
        self, request: Request, response: Response | None, retries: int, failure: str | None = None
    ) -> None:
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

    def _log_retry(self, request: Request, reason: str, retries: int, delay: float) -> None:
        log.info(
            "%s %s failed (%s); retry %d of %d in %.2f s",
            request.method,
            _path(request.url),
            reason,
            retries + 1,
            self._options.retry.max_retries,
            delay,
            extra={
                "method": request.method,
                "path": _path(request.url),
                "reason": reason,
                "attempt": retries + 1,
                "delay": delay,
            },
        )


def _around(layer: Middleware, call_next: SendNext) -> SendNext:
    async def send(request: Request) -> Response:
        return await layer(request, call_next)

    return send


def _path(url: str) -> str:
    return urlsplit(url).path
