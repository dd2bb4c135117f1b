"""The transport seam: the SDK's own request and response types and the protocol a transport implements.

httpx (or any other HTTP stack) never crosses this seam: a transport turns a `Request` into a `Response`,
or raises `ApiConnectionError` / `ApiTimeoutError`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Protocol, runtime_checkable

import attrs

from .._constants import SECRET_HEADERS
from .._models import slot_setters

__all__ = ["Headers", "Request", "Response", "SendNext", "Transport"]

_REDACTED = "<redacted>"


class Headers(Mapping[str, str]):
    """An immutable, case-insensitive mapping of HTTP headers that keeps the names as given.

    A name repeated in the input is folded into one value joined by ", " (RFC 9110, 5.3).
    Values of credential headers are redacted from `repr()`.
    """

    __slots__ = ("_items", "_lower")

    def __init__(self, headers: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        pairs = headers.items() if isinstance(headers, Mapping) else headers
        self._items: tuple[tuple[str, str], ...] = tuple(pairs)
        self._lower: dict[str, str] | None = None

    def _index(self) -> dict[str, str]:
        lower = self._lower
        if lower is None:
            lower = {}
            for name, value in self._items:
                key = name.lower()
                lower[key] = f"{lower[key]}, {value}" if key in lower else value
            self._lower = lower
        return lower

    def __getitem__(self, name: str) -> str:
        return self._index()[name.lower()]

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        """The value of header `name` (any case), or `default`."""
        return self._index().get(name.lower(), default)

    def first(self, lowercase_names: tuple[str, ...]) -> str | None:
        """The value of the first of these (lowercase) names that is present."""
        index = self._index()
        for name in lowercase_names:
            value = index.get(name)
            if value is not None:
                return value
        return None

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._index()

    def __iter__(self) -> Iterator[str]:
        seen: set[str] = set()
        for name, _ in self._items:
            if name.lower() not in seen:
                seen.add(name.lower())
                yield name

    def __len__(self) -> int:
        return len(self._index())

    def raw(self) -> tuple[tuple[str, str], ...]:
        """The headers as given: (name, value) pairs in order, repeats kept."""
        return self._items

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return self._index() == other._index()
        if isinstance(other, Mapping):
            return self._index() == {str(k).lower(): v for k, v in other.items()}
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        shown = {name: (_REDACTED if name.lower() in SECRET_HEADERS else value) for name, value in self._items}
        return f"Headers({shown!r})"


def _to_headers(value: Mapping[str, str] | Iterable[tuple[str, str]]) -> Headers:
    return value if isinstance(value, Headers) else Headers(value)


@attrs.frozen(slots=True)
class Request:
    """One HTTP request as the SDK sends it.

    `timeout` is the number of seconds this attempt may take as a whole, from sending it to the last byte of the
    response body (None: no limit), for the transport to enforce (see `Transport`).
    """

    method: str
    url: str
    headers: Headers = attrs.field(factory=Headers, converter=_to_headers)
    content: bytes = b""
    timeout: float | None = None

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.url}>"


@attrs.frozen(slots=True)
class Response:
    """One HTTP response as a transport returns it: the whole body, read."""

    status_code: int
    headers: Headers = attrs.field(factory=Headers, converter=_to_headers)
    content: bytes = b""

    def __repr__(self) -> str:
        return f"<Response {self.status_code} ({len(self.content)} bytes)>"


_new = object.__new__
_set_method, _set_url, _set_request_headers, _set_content, _set_timeout = slot_setters(
    Request, ("method", "url", "headers", "content", "timeout"), converted=("headers",)
)
_set_status, _set_response_headers, _set_body = slot_setters(
    Response, ("status_code", "headers", "content"), converted=("headers",)
)


# `Request(...)` and `Response(...)` for the SDK's own hot path (the pipeline and the transports; not in `__all__`),
# whose headers are a `Headers` already: the same frozen objects, each field set through its slot. The frozen init
# sets each through object.__setattr__ and runs the converter: three times as long, about 0.4 µs per object, a
# tenth of the SDK's own cost per call.
def request_from_parts(method: str, url: str, headers: Headers, content: bytes, timeout: float | None) -> Request:
    request: Request = _new(Request)
    _set_method(request, method)
    _set_url(request, url)
    _set_request_headers(request, headers)
    _set_content(request, content)
    _set_timeout(request, timeout)
    return request


def response_from_parts(status_code: int, headers: Headers, content: bytes) -> Response:
    response: Response = _new(Response)
    _set_status(response, status_code)
    _set_response_headers(response, headers)
    _set_body(response, content)
    return response


@runtime_checkable
class Transport(Protocol):
    """Sends requests. Implementations: `HttpxTransport`, `InMemoryTransport`, or your own.

    `send` returns the response (any status) with its body read, or raises `ApiConnectionError`
    (`ApiTimeoutError` for timeouts) with `request_sent` telling whether the server may have seen it.
    It must be safe to call concurrently from many tasks, and to cancel.

    `request.timeout` is the budget of the whole attempt: connecting, waiting for a pooled connection, sending,
    and reading the head and the whole body. The client sets no limit of its own around `send`: every transport
    enforces it, each with its cheapest mechanism (a cancel scope around the exchange, or its HTTP stack's total
    timeout), so that a server trickling a byte at a time cannot hold an attempt longer. When it expires, `send`
    raises `ApiTimeoutError`, with `request_sent=False` only if nothing of the request was written yet.
    A custom transport must do the same.
    """

    async def send(self, request: Request) -> Response:
        """The response to `request`, body read; or `ApiConnectionError` / `ApiTimeoutError`."""
        ...

    async def aclose(self) -> None:
        """Release connections; the transport is not used again."""
        ...


SendNext = Callable[[Request], Awaitable[Response]]
"""An async function that sends one request and returns its response: what a middleware calls to go on (the next
middleware, and at the end the transport's `send`)."""
