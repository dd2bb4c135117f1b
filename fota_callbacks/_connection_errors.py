"""The errors for a request that got no whole response (the connection failed or was closed, the attempt timed out,
the body was too large or did not decode), worded alike by every transport, the scripted one of
`fota_callbacks.testing` included: each says which host, and why, escaped (it may come from the server)."""

from __future__ import annotations

import ssl
from urllib.parse import urlsplit

from ._errors import ApiConnectionError, ApiTimeoutError, ClientClosedError
from .transport.base import Request

__all__ = ["attempt_timed_out", "closed", "no_response", "too_large", "undecodable"]

_MAX_REASON = 300


def closed(owner: str, request: Request, *, in_flight: bool = False) -> ClientClosedError:
    """The error for a request on a transport that was closed (before it was sent, or while it was in flight)."""
    when = "closed while this request was in flight" if in_flight else "closed"
    return ClientClosedError(f"{owner} was {when} ({_host(request)}): make a new client")


def _printable(text: str) -> str:
    """`text` with control characters escaped and cut to a readable length: it may come from the server."""
    if not text.isprintable():
        text = text.encode("unicode_escape").decode("ascii")
    return text if len(text) <= _MAX_REASON else text[:_MAX_REASON] + "..."


def _reason(exc: BaseException) -> str:
    """Why `exc` happened, from the first exception along its cause/context chain that says: HTTP stacks wrap the
    TLS or socket error that knows in several layers of exceptions with empty messages."""
    seen: set[int] = set()
    first = ""
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        # (Some stacks' own errors subclass the ssl ones without their attributes: the cause then has them.)
        verify_message = getattr(current, "verify_message", None)
        if isinstance(current, ssl.SSLCertVerificationError) and verify_message:
            return f"certificate verify failed: {verify_message}"
        reason = getattr(current, "reason", None)
        if isinstance(current, ssl.SSLError) and isinstance(reason, str) and reason:
            return f"TLS error: {reason}"
        if not first:
            first = str(current).strip()
        current = current.__cause__ or current.__context__
    return first or "no reason given"


def _host(request: Request) -> str:
    return urlsplit(request.url).netloc or "?"


def no_response(exc: BaseException, request: Request, *, sent: bool, timeout: bool) -> ApiConnectionError:
    """The SDK's error for a request that got no response: `ApiTimeoutError` or `ApiConnectionError`, saying which
    host and why."""
    if timeout:
        return ApiTimeoutError(
            f"timed out ({_host(request)}): {type(exc).__name__}", request=request, request_sent=sent
        )
    return ApiConnectionError(
        f"connection failed ({_host(request)}): {type(exc).__name__}: {_printable(_reason(exc))}",
        request=request,
        request_sent=sent,
    )


def attempt_timed_out(request: Request, *, sent: bool) -> ApiTimeoutError:
    """The error for an attempt that did not end within `request.timeout` (sending to the body's last byte)."""
    return ApiTimeoutError(
        f"timed out ({_host(request)}): no complete response within timeout={request.timeout} s",
        request=request,
        request_sent=sent,
    )


def too_large(limit: int, request: Request, declared: str | None = None) -> ApiConnectionError:
    """The error for a body (as decoded) longer than `max_response_bytes`."""
    size = f"of {declared} bytes " if declared is not None else ""
    return ApiConnectionError(
        f"response body {size}exceeds max_response_bytes={limit}", request=request, request_sent=True
    )


def undecodable(exc: BaseException, request: Request) -> ApiConnectionError:
    """The error for a body that does not decode as its `Content-Encoding` says."""
    return ApiConnectionError(
        f"response body does not decode ({_host(request)}): {_printable(str(exc))}", request=request, request_sent=True
    )
