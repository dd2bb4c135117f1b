"""A transport on httpx2 (extra `httpx2`, Python 3.11+): `HttpxTransport`'s implementation on the httpx2 package."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .httpx import _HttpxFamilyTransport

if TYPE_CHECKING:
    from httpx2 import AsyncClient
else:
    AsyncClient = Any  # httpx2 is imported by the constructor, not here

__all__ = ["Httpx2Transport"]


class Httpx2Transport(_HttpxFamilyTransport[AsyncClient]):
    """Sends requests with httpx2 (extra `httpx2`, which needs Python 3.11+), on asyncio and trio; options and
    behaviour as `HttpxTransport`'s.

    With no `client`, it sends on connection pools of its own (`httpx2.AsyncHTTPTransport`s: TLS verified,
    redirects not followed, idle connections closed after `keepalive_expiry` seconds), at most `max_connections`
    connections in all, split as `HttpxTransport` splits them, through the proxies that `HTTPS_PROXY`,
    `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` name when it is made; its `client` is an `httpx2.AsyncClient` on those
    pools, closed by `aclose()`. A `client` you pass is used as it is
    and is never closed.
    `verify` is True (httpx2's default CA certificates), False (no verification: tests only), the path of a
    CA bundle, or an `ssl.SSLContext`.
    `request.timeout` bounds each attempt as a whole, from sending to the body's last byte.
    Bodies are asked for as gzip or deflate, and refused with `ApiConnectionError` once longer than
    `max_response_bytes` as decoded: decoding stops there.
    The httpx2 package is imported when the first one is made: without the extra, that raises ImportError.
    """

    _package_name = "httpx2"
    _extra = "httpx2"
    _python = (3, 11)
