"""A transport on one long-lived `aiohttp.ClientSession` (extra `aiohttp`; asyncio only)."""

from __future__ import annotations

from ssl import SSLContext
from typing import TYPE_CHECKING

import anyio
import sniffio

from .._constants import DEFAULT_TIMEOUT, MAX_RESPONSE_BYTES
from ._common import ca_bundle_context, check_declared_length, import_extra, no_response, too_large
from .base import Request, Response

if TYPE_CHECKING:
    import aiohttp
    import yarl

__all__ = ["AiohttpTransport"]

_MAX_CACHED_TIMEOUTS = 32
_MAX_CACHED_URLS = 256


def _refuse_other_event_loops() -> None:
    """Raise unless this runs outside any event loop, or on asyncio."""
    try:
        library = sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        return
    if library != "asyncio":
        raise RuntimeError(
            f"AiohttpTransport runs on asyncio only, and this is {library}: "
            "use HttpxTransport (the default) or Httpx2Transport, which run on asyncio and trio"
        )


class AiohttpTransport:
    """Sends requests with aiohttp (extra `aiohttp`), on asyncio only.

    With no `session`, it owns one `aiohttp.ClientSession`, created inside the running event loop by the first
    request, on a `TCPConnector` of at most `max_connections` connections that closes idle ones after
    `keepalive_expiry` seconds; redirects are not followed, cookies are not kept, and aiohttp does not retry on
    its own (the client's `RetryPolicy` decides every retry). `aclose()` closes it. A `session` you pass is
    used as it is (its connector, TLS settings, cookie jar) and is never closed.
    `ssl` is True (verify with the default CA certificates), False (no verification: tests only), the path
    of a CA bundle, or an `ssl.SSLContext`.
    Bodies longer than `max_response_bytes` are refused with `ApiConnectionError`.
    The aiohttp package is imported by the constructor: without the extra, that raises ImportError; on trio,
    it raises RuntimeError (use `HttpxTransport`).
    """

    def __init__(
        self,
        session: aiohttp.ClientSession | None = None,
        *,
        ssl: bool | str | SSLContext = True,
        max_connections: int = 100,
        keepalive_expiry: float = 5.0,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        self._aiohttp = import_extra("aiohttp", "AiohttpTransport", "aiohttp")
        from yarl import URL  # installed with aiohttp

        _refuse_other_event_loops()
        self._url_class = URL
        self._given = session
        self._owns_session = session is None
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        self._ssl = ca_bundle_context(ssl) if isinstance(ssl, str) else ssl
        self._max_connections = max_connections
        self._keepalive_expiry = keepalive_expiry
        self._max_response_bytes = max_response_bytes
        self._timeouts: dict[float | None, aiohttp.ClientTimeout] = {}
        self._urls: dict[str, yarl.URL] = {}
        aiohttp = self._aiohttp
        import asyncio  # here, not at the top: importing fota_callbacks need not import asyncio

        self._timeout_errors: tuple[type[BaseException], ...] = (aiohttp.ServerTimeoutError, asyncio.TimeoutError)
        self._client_error: type[Exception] = aiohttp.ClientError
        # Failures in which the request never left this process: always safe to send again.
        self._not_sent: tuple[type[Exception], ...] = (
            aiohttp.ClientConnectorError,  # DNS, refused, TLS handshake and certificate failures
            aiohttp.ConnectionTimeoutError,  # connecting, or waiting for a free connection in the pool
            aiohttp.ServerFingerprintMismatch,
            aiohttp.InvalidURL,
            aiohttp.NonHttpUrlClientError,
        )

    @property
    def session(self) -> aiohttp.ClientSession | None:
        """The session: the one you passed, or the owned one (None until the first request creates it)."""
        return self._session if self._session is not None else self._given

    def _open(self) -> aiohttp.ClientSession:
        """The session for the first request, on the running (asyncio) event loop."""
        if self._closed:
            raise RuntimeError("this AiohttpTransport is closed")
        _refuse_other_event_loops()
        session = self._given
        if session is None:
            aiohttp = self._aiohttp
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self._max_connections,
                    keepalive_timeout=self._keepalive_expiry,
                    ssl=self._ssl,
                ),
                timeout=self._timeout(DEFAULT_TIMEOUT),
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
            )
            # aiohttp resends an idempotent request once, silently, when the connection breaks before the
            # response: then `max_retries=0` or `retry_maybe_processed=False` would not hold.
            if hasattr(session, "_retry_connection"):
                session._retry_connection = False
        self._session = session
        return session

    def _timeout(self, seconds: float | None) -> aiohttp.ClientTimeout:
        # As httpx.Timeout(seconds): connecting (with the wait for a pooled connection) and each read get
        # `seconds`; no limit on the whole exchange, so that a timeout says whether the request was sent.
        timeouts = self._timeouts
        if len(timeouts) >= _MAX_CACHED_TIMEOUTS:
            timeouts.clear()
        timeout: aiohttp.ClientTimeout = self._aiohttp.ClientTimeout(total=None, connect=seconds, sock_read=seconds)
        timeouts[seconds] = timeout
        return timeout

    def _url(self, url: str) -> yarl.URL:
        urls = self._urls
        if len(urls) >= _MAX_CACHED_URLS:
            urls.clear()
        # An ASCII URL is the SDK's, already percent-encoded: sent byte for byte, not re-quoted by yarl.
        parsed = urls[url] = self._url_class(url, encoded=url.isascii())
        return parsed

    async def send(self, request: Request) -> Response:
        """Send `request` on the session (opened on first use) and read the whole body."""
        session = self._session
        if session is None:
            session = self._open()
        url = self._urls.get(request.url)
        if url is None:
            url = self._url(request.url)
        timeout = self._timeouts.get(request.timeout) or self._timeout(request.timeout)
        try:
            response = await session.request(
                request.method,
                url,
                headers=request.headers.raw(),
                data=request.content or None,
                timeout=timeout,
                allow_redirects=False,
            )
            try:
                content = await self._read(response, request)
            except BaseException:
                response.close()  # the body was not read to its end: the connection cannot be reused
                raise
            response.release()
        # The except clauses are evaluated only when something is raised: the lookups cost nothing per call.
        except self._timeout_errors as exc:
            raise no_response(exc, request, sent=not isinstance(exc, self._not_sent), timeout=True) from exc
        except self._client_error as exc:
            raise no_response(exc, request, sent=not isinstance(exc, self._not_sent), timeout=False) from exc
        return Response(response.status, response.headers.items(), content)

    async def _read(self, response: aiohttp.ClientResponse, request: Request) -> bytes:
        limit = self._max_response_bytes
        check_declared_length(response.headers.get("Content-Length"), limit, request)
        stream = response.content
        chunks: list[bytes] = []
        size = 0
        while chunk := await stream.readany():  # decompressed: the limit holds for what is kept in memory
            size += len(chunk)
            if size > limit:
                raise too_large(limit, request)
            chunks.append(chunk)
        return b"".join(chunks)

    async def aclose(self) -> None:
        """Close the owned session and its connections (a session you passed is left open). Safe to call twice."""
        if not self._owns_session:
            return
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            with anyio.CancelScope(shield=True):
                await session.close()

    def __repr__(self) -> str:
        return f"AiohttpTransport(owns_session={self._owns_session})"
