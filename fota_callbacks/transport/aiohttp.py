"""A transport on one long-lived `aiohttp.ClientSession` (extra `aiohttp`; asyncio only)."""

from __future__ import annotations

from contextvars import ContextVar
from ssl import SSLContext
from typing import TYPE_CHECKING, Any

import anyio
import sniffio

from .._connection_errors import attempt_timed_out, closed, no_response
from .._constants import ACCEPT_ENCODING, DEFAULT_TIMEOUT, KEEPALIVE_EXPIRY, MAX_CONNECTIONS, MAX_RESPONSE_BYTES
from .._errors import FotaError
from ._common import (
    LoopBinding,
    ca_bundle_context,
    check_pool_options,
    environment_proxies,
    import_extra,
    read_response_body,
)
from .base import Headers, Request, Response, response_from_parts

if TYPE_CHECKING:
    import aiohttp
    import yarl
    from multidict import CIMultiDictProxy

__all__ = ["AiohttpTransport"]

_MAX_CACHED_TIMEOUTS = 32
_MAX_CACHED_URLS = 256
_MAX_CACHED_HEADERS = 32
_ACCEPT_ENCODING = ("Accept-Encoding", ACCEPT_ENCODING)

_connected: ContextVar[list[bool] | None] = ContextVar("fota_callbacks_aiohttp_connected", default=None)
"""Set by `send` around one request: the owned session's connector marks it once it has handed out a connection,
so that a timeout says whether the request may have been sent."""


def _marking_connector(aiohttp: Any) -> type[Any]:
    class MarkingConnector(aiohttp.TCPConnector):  # type: ignore[misc]
        async def connect(self, req: Any, traces: Any, timeout: Any) -> Any:  # noqa: ASYNC109 (aiohttp's signature)
            connection = await super().connect(req, traces, timeout)
            mark = _connected.get()
            if mark is not None:
                mark[0] = True
            return connection

    return MarkingConnector


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
    `request.timeout` bounds each attempt as a whole (aiohttp's total timeout), from sending to the body's last byte.
    Bodies are asked for as gzip or deflate and decoded here, also on a session you pass; they are refused with
    `ApiConnectionError` once longer than `max_response_bytes` as decoded: decoding stops there.
    The owned session sends through the proxies that `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` name
    when the transport is made.
    The aiohttp package is imported by the constructor: without the extra, that raises ImportError; on trio,
    it raises RuntimeError (use `HttpxTransport`).
    """

    def __init__(
        self,
        session: aiohttp.ClientSession | None = None,
        *,
        ssl: bool | str | SSLContext = True,
        max_connections: int = MAX_CONNECTIONS,
        keepalive_expiry: float = KEEPALIVE_EXPIRY,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        check_pool_options(max_connections, keepalive_expiry, max_response_bytes)
        self._aiohttp = import_extra("aiohttp", "AiohttpTransport", "aiohttp")
        from multidict import CIMultiDict, CIMultiDictProxy  # installed with aiohttp
        from yarl import URL

        _refuse_other_event_loops()
        self._url_class = URL
        self._header_classes = (CIMultiDict, CIMultiDictProxy)
        self._given = session
        self._owns_session = session is None
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        self._binding = LoopBinding("AiohttpTransport")
        self._ssl = ca_bundle_context(ssl) if isinstance(ssl, str) else ssl
        self._max_connections = max_connections
        self._keepalive_expiry = keepalive_expiry
        self._max_response_bytes = max_response_bytes
        self._timeouts: dict[float | None, aiohttp.ClientTimeout] = {}
        self._urls: dict[str, tuple[yarl.URL, str | None]] = {}
        self._headers: dict[tuple[tuple[str, str], ...], CIMultiDictProxy[str]] = {}
        self._proxy_for = environment_proxies() if session is None else None
        aiohttp = self._aiohttp
        import asyncio  # here, not at the top: importing fota_callbacks need not import asyncio

        self._running_loop = asyncio.get_running_loop
        self._timeout_errors: tuple[type[BaseException], ...] = (aiohttp.ServerTimeoutError, asyncio.TimeoutError)
        self._connect_timeout: type[Exception] = aiohttp.ConnectionTimeoutError
        self._failures: tuple[type[BaseException], ...] = (*self._timeout_errors, aiohttp.ClientError)
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

    def _open(self, request: Request) -> aiohttp.ClientSession:
        """The session for the first request, on the running (asyncio) event loop."""
        if self._closed:
            raise closed("AiohttpTransport", request)
        _refuse_other_event_loops()
        session = self._given
        if session is None:
            aiohttp = self._aiohttp
            session = aiohttp.ClientSession(
                connector=_marking_connector(aiohttp)(
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
        # The whole exchange, from connecting (and waiting for a pooled connection) to the body's last byte.
        timeouts = self._timeouts
        if len(timeouts) >= _MAX_CACHED_TIMEOUTS:
            timeouts.clear()
        timeout: aiohttp.ClientTimeout = self._aiohttp.ClientTimeout(total=seconds)
        timeouts[seconds] = timeout
        return timeout

    def _prepared(self, headers: tuple[tuple[str, str], ...]) -> CIMultiDictProxy[str]:
        # The SDK reuses a few header tuples (per credentials and kind of request): aiohttp takes a multidict
        # without converting it, and copies it before adding its own headers, so one read-only copy serves all.
        prepared = self._headers
        if len(prepared) >= _MAX_CACHED_HEADERS:
            prepared.clear()
        multidict, proxy = self._header_classes
        cached = prepared[headers] = proxy(multidict([*headers, _ACCEPT_ENCODING]))
        return cached

    def _url(self, url: str) -> tuple[yarl.URL, str | None]:
        urls = self._urls
        if len(urls) >= _MAX_CACHED_URLS:
            urls.clear()
        # An ASCII URL is the SDK's, already percent-encoded: sent byte for byte, not re-quoted by yarl.
        parsed = self._url_class(url, encoded=url.isascii())
        proxy = None if self._proxy_for is None else self._proxy_for(parsed.scheme, parsed.raw_authority)
        cached = urls[url] = (parsed, proxy)
        return cached

    def _arguments(self, request: Request) -> tuple[yarl.URL, str | None, Any, aiohttp.ClientTimeout]:
        """The URL, proxy, headers and timeout to hand aiohttp for `request`, from the caches when they hold them;
        refuses another event loop than the one the session's connections belong to (see `LoopBinding`)."""
        try:
            running = self._running_loop()
        except RuntimeError:  # no asyncio loop runs: trio, refused as on the first request
            _refuse_other_event_loops()
            raise
        if running is not self._binding.loop:
            self._binding.bind(running)
        cached = self._urls.get(request.url)
        if cached is None:
            cached = self._url(request.url)
        raw_headers = request.headers.raw()
        try:
            headers: Any = self._headers.get(raw_headers) or self._prepared(raw_headers)
        except TypeError:  # pairs given as lists: sent as they are, not cached
            headers = [*raw_headers, _ACCEPT_ENCODING]
        timeout = self._timeouts.get(request.timeout) or self._timeout(request.timeout)
        return cached[0], cached[1], headers, timeout

    async def send(self, request: Request) -> Response:
        """Send `request` on the session (opened on first use) and read the whole body within `request.timeout`."""
        session = self._session
        if session is None:
            session = self._open(request)
        url, proxy, headers, timeout = self._arguments(request)
        connected = [not self._owns_session]  # a session you pass says nothing: a timeout counts as maybe sent
        mark = _connected.set(connected)
        try:
            response = await session.request(
                request.method,
                url,
                headers=headers,
                data=request.content or None,
                timeout=timeout,
                allow_redirects=False,
                auto_decompress=False,
                proxy=proxy,
            )
            try:
                response_headers = response.headers
                encoding = response_headers.get("Content-Encoding")
                declared = response_headers.get("Content-Length")
                if (
                    not encoding
                    and declared is not None
                    and declared.isdigit()
                    and int(declared) <= self._max_response_bytes
                ):
                    # aiohttp's parser stops at the declared length: a plain body that fits is read at once, as
                    # raw aiohttp does (the common case, and the cheapest).
                    content = await response.read()
                else:
                    content = await read_response_body(
                        request,
                        response.content.iter_any(),
                        self._max_response_bytes,
                        content_encoding=encoding,
                        declared=declared,
                    )
            except BaseException:
                response.close()  # the body was not read to its end: the connection cannot be reused
                raise
            response.release()
        # The except clause is evaluated only when something is raised: the lookup costs nothing per call.
        except self._failures as exc:
            raise self._no_response(exc, request, connected=connected[0]) from exc
        finally:
            _connected.reset(mark)
        return response_from_parts(response.status, Headers(response_headers.items()), content)

    def _no_response(self, exc: BaseException, request: Request, *, connected: bool) -> FotaError:
        """The SDK's error for a request aiohttp got no response to; `connected`: a connection was handed out."""
        if self._closed:  # `aclose()` broke the connection under this request
            return closed("AiohttpTransport", request, in_flight=True)
        if isinstance(exc, self._timeout_errors):
            if isinstance(exc, self._connect_timeout) or not connected:
                return no_response(exc, request, sent=False, timeout=True)
            return attempt_timed_out(request, sent=True)
        return no_response(exc, request, sent=not isinstance(exc, self._not_sent), timeout=False)

    async def aclose(self) -> None:
        """Close the owned session and its connections (a session you passed is left open). Safe to call twice.

        In another event loop than the one its connections belong to, they cannot be closed: it is marked closed
        and raises `ClientClosedError` saying so.
        """
        if not self._owns_session or self._closed:
            return
        self._closed = True
        if self._binding.foreign():
            self._session = None
            raise self._binding.error("cannot close its connections")
        session, self._session = self._session, None
        if session is not None:
            with anyio.CancelScope(shield=True):
                await session.close()

    def __repr__(self) -> str:
        return f"AiohttpTransport(owns_session={self._owns_session})"
