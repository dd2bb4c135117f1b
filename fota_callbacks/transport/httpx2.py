"""A transport on `httpx2.AsyncClient` (extra `httpx2`): `HttpxTransport`'s implementation on the httpx2 package."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .httpx import _HttpxFamilyTransport

if TYPE_CHECKING:
    from httpx2 import AsyncClient
else:
    AsyncClient = Any  # httpx2 is imported by the constructor, not here

__all__ = ["Httpx2Transport"]


class Httpx2Transport(_HttpxFamilyTransport[AsyncClient]):
    """Sends requests with httpx2 (extra `httpx2`), on asyncio and trio; options as `HttpxTransport`'s.

    With no `client`, it creates and owns an `httpx2.AsyncClient` (TLS verified, redirects not followed,
    `max_connections` pooled, idle connections closed after `keepalive_expiry` seconds) and closes it in
    `aclose()`. A `client` you pass is used as it is and is never closed.
    `verify` is True (httpx2's default CA certificates), False (no verification: tests only), the path of a
    CA bundle, or an `ssl.SSLContext`.
    Bodies longer than `max_response_bytes` are refused with `ApiConnectionError`.
    The httpx2 package is imported when the first one is made: without the extra, that raises ImportError.
    """

    _package_name = "httpx2"
    _extra = "httpx2"
