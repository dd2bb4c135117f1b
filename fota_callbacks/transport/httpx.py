"""The default transport, on httpx; and the one implementation it shares with `Httpx2Transport`.

httpx2 keeps httpx's API (client, transport, limits, streams, exception classes), so one class, parametrised by the
package it loads, serves both: `HttpxTransport` and `Httpx2Transport` only name the package and its extra.
This module imports httpx (a dependency of fota-callbacks) when it is imported; `Httpx2Transport` imports httpx2
in its constructor, so that importing fota_callbacks does not import the optional package.
"""

from __future__ import annotations

import contextlib
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import anyio
import attrs
import httpx

from .._connection_errors import attempt_timed_out, closed, no_response, too_large
from .._constants import (
    ACCEPT_ENCODING,
    DEFAULT_TIMEOUT,
    KEEPALIVE_EXPIRY,
    MAX_CONNECTIONS,
    MAX_RESPONSE_BYTES,
    POOL_SHARD_CONNECTIONS,
)
from .._errors import ApiConnectionError
from . import _common
from .base import Headers, Request, Response, response_from_parts

__all__ = ["HttpxTransport"]

_MAX_CACHED = 256
_ACCEPT_ENCODING = ("Accept-Encoding", ACCEPT_ENCODING)
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class _AsyncClient(Protocol):
    """What the transport uses of `httpx.AsyncClient` (and of `httpx2.AsyncClient`, its twin)."""

    def build_request(
        self, method: str, url: str, *, content: bytes | None = ..., headers: Any = ..., timeout: Any = ...
    ) -> Any: ...

    async def send(self, request: Any, *, stream: bool = ...) -> Any: ...

    async def aclose(self) -> None: ...


ClientT = TypeVar("ClientT", bound=_AsyncClient)


def _request_body_class(base: type[Any]) -> type[Any]:
    """A request body stream for the package whose `AsyncByteStream` is `base`.

    Its iterator is itself, not an async generator: a send cancelled while writing leaves nothing for the garbage
    collector to finalize (httpx's own `ByteStream` leaves a suspended generator, which trio reports as a
    ResourceWarning). `started` tells whether the HTTP stack began writing the body, i.e. had written the head:
    from then on the server may have the request.
    """

    class RequestBody(base):  # type: ignore[misc]
        __slots__ = ("_content", "_pending", "started")

        def __init__(self, content: bytes) -> None:
            self._content = content
            self._pending = b""
            self.started = False

        def __aiter__(self) -> RequestBody:
            self.started = True
            self._pending = self._content  # from the start again: a stack may send it again on another connection
            return self

        async def __anext__(self) -> bytes:
            chunk = self._pending
            if not chunk:
                raise StopAsyncIteration
            self._pending = b""
            return chunk

        async def aclose(self) -> None:
            self._pending = b""

    return RequestBody


class _ReleasedStream:
    """A response body that gives its place in its pool back when it is closed; `_pools_class` mixes it into the
    package's `AsyncByteStream`."""

    __slots__ = ("_busy", "_index", "_stream")

    def __init__(self, stream: Any, busy: list[int] | None, index: int) -> None:
        self._stream = stream
        self._busy = busy
        self._index = index

    def __aiter__(self) -> AsyncIterator[bytes]:
        iterator: AsyncIterator[bytes] = self._stream.__aiter__()
        return iterator

    async def aclose(self) -> None:
        busy, self._busy = self._busy, None
        if busy is not None:
            busy[self._index] -= 1
        await self._stream.aclose()


class _ShardedPools:
    """An owned pool: `max_connections` split over several connection pools of at most `POOL_SHARD_CONNECTIONS`
    each; `_pools_class` mixes it into the package's `AsyncBaseTransport`.

    httpcore's pool goes over every connection it holds, probing each idle socket for readability, whenever a
    request starts or a response ends: its CPU per request grows with the number of connections, and at 32 in use
    those scans cost more than the rest of a request. Several small pools keep each scan short. They are filled
    in order, a request going to the first one with a free place (so light traffic stays on the first pool and its
    warm connections), and the limits add up to `max_connections`. When every place is taken, a request waits in
    the pool with the fewest waiting, for a connection of that pool.
    """

    _released: ClassVar[type[_ReleasedStream]]
    """`_ReleasedStream` on the package's `AsyncByteStream`."""

    def __init__(self, new_pool: Callable[[int], Any], max_connections: int, keepalive_expiry: float) -> None:
        count = -(-max_connections // POOL_SHARD_CONNECTIONS)
        share, extra = divmod(max_connections, count)
        self.sizes = [share + (index < extra) for index in range(count)]
        self._new_pool = new_pool
        self._made: list[Any] = [None] * count  # each made when first needed: most traffic needs one or two
        self._busy = [0] * count
        self._started = [0.0] * count  # when each pool was last given a request
        self._expiry = keepalive_expiry
        self._sweep_at = time.monotonic() + keepalive_expiry

    @property
    def pools(self) -> list[Any]:
        """The connection pools made so far (`AsyncHTTPTransport`s), in the order they are filled."""
        return [pool for pool in self._made if pool is not None]

    def _pool(self, index: int) -> Any:
        pool = self._made[index]
        if pool is None:
            pool = self._made[index] = self._new_pool(self.sizes[index])
        return pool

    def _pick(self) -> int:
        busy, sizes = self._busy, self.sizes
        for index, size in enumerate(sizes):
            if busy[index] < size:
                return index
        return min(range(len(sizes)), key=lambda index: busy[index] - sizes[index])

    async def handle_async_request(self, request: Any) -> Any:
        now = time.monotonic()
        if now >= self._sweep_at:
            await self._sweep(now)
        busy = self._busy
        index = self._pick()
        busy[index] += 1
        self._started[index] = now
        try:
            response = await (self._made[index] or self._pool(index)).handle_async_request(request)
        except BaseException:
            busy[index] -= 1
            raise
        response.stream = self._released(response.stream, busy, index)
        return response

    async def _sweep(self, now: float) -> None:
        """Close the pools past the first that were given no request for `keepalive_expiry` seconds.

        httpcore closes a pool's expired connections only when that pool is used again: after a burst, the
        later pools would keep their idle connections (and a server's closes of them) open until `aclose()`.
        A pool closed here is made again when traffic needs it.
        """
        self._sweep_at = now + self._expiry
        for index in range(1, len(self._made)):
            pool = self._made[index]
            if pool is not None and not self._busy[index] and now - self._started[index] >= self._expiry:
                self._made[index] = None
                with anyio.CancelScope(shield=True):
                    await pool.aclose()

    async def aclose(self) -> None:
        for pool in self.pools:
            await pool.aclose()


def _pools_class(base_transport: type[Any], base_stream: type[Any]) -> type[Any]:
    """`_ShardedPools` as a transport of the package whose `AsyncBaseTransport` and `AsyncByteStream` are given."""
    released = type("Released", (_ReleasedStream, base_stream), {"__slots__": ()})
    return type("Pools", (_ShardedPools, base_transport), {"_released": released})


@attrs.frozen
class _Package:
    """The parts of an httpx-like package a transport calls, looked up when it is made."""

    async_client: Any
    http_transport: Any
    request: Any
    create_ssl_context: Any
    url: Any
    proxy: Any
    limits: Any
    timeout: Any
    request_body: Any
    pools: Any
    timeout_error: type[Exception]
    request_error: type[Exception]
    """Every failure of a request: transport errors, and a body that does not decode (a broken Content-Encoding)."""
    not_sent: tuple[type[Exception], ...]
    """Failures in which the request never left this process: always safe to send again."""

    @classmethod
    def load(cls, name: str, transport: str, extra: str | None, python: tuple[int, int] | None) -> _Package:
        module = _common.import_extra(name, transport, extra, python)
        return cls(
            async_client=module.AsyncClient,
            http_transport=module.AsyncHTTPTransport,
            request=module.Request,
            create_ssl_context=module.create_ssl_context,
            url=module.URL,
            proxy=module.Proxy,
            limits=module.Limits,
            timeout=module.Timeout,
            request_body=_request_body_class(module.AsyncByteStream),
            pools=_pools_class(module.AsyncBaseTransport, module.AsyncByteStream),
            timeout_error=module.TimeoutException,
            request_error=module.RequestError,
            not_sent=(module.ConnectError, module.ConnectTimeout, module.PoolTimeout, module.UnsupportedProtocol),
        )


async def _abandon(close: Callable[[], Awaitable[None]], stream: AsyncIterator[bytes]) -> None:
    """Stop reading a body midway: close the response (and its connection), then end `stream` by cancelling its
    first wait, so that none of the HTTP stack's nested async generators is left suspended for the garbage
    collector to finalize (which trio reports as a ResourceWarning)."""
    await close()
    with anyio.CancelScope() as scope:
        scope.cancel()
        with contextlib.suppress(Exception):
            async for _ in stream:
                pass


class _HttpxFamilyTransport(Generic[ClientT]):
    """Sends requests with an httpx-like package; `HttpxTransport` and `Httpx2Transport` name which one."""

    _package_name: ClassVar[str]
    _extra: ClassVar[str | None] = None
    """The extra that installs the package; None: a dependency of fota-callbacks itself."""
    _python: ClassVar[tuple[int, int] | None] = None
    """The oldest Python the package installs on, when newer than fota-callbacks' own."""

    def __init__(
        self,
        client: ClientT | None = None,
        *,
        verify: bool | str | ssl.SSLContext = True,
        max_connections: int = MAX_CONNECTIONS,
        keepalive_expiry: float = KEEPALIVE_EXPIRY,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        _common.check_pool_options(max_connections, keepalive_expiry, max_response_bytes)
        self._package = package = _Package.load(self._package_name, type(self).__name__, self._extra, self._python)
        self._owns_client = client is None
        self._pool: Any = None
        self._proxied: dict[str | None, Any] = {}
        self._proxy_for = None
        self._closed = False
        self._binding = _common.LoopBinding(type(self).__name__)
        if client is None:
            # The packages deprecate a CA bundle path given as `verify`: the context is built here instead. Built
            # once (loading the CA certificates takes tens of ms) and shared by all the pools, as one pool shares it.
            if isinstance(verify, str):
                verify = _common.ca_bundle_context(verify)
            elif verify is True and self._package_name == "httpx":
                verify = _common.CertifiOnFirstUse()  # httpx's default context, its CA bundle loaded when it connects
            else:
                verify = package.create_ssl_context(verify=verify, trust_env=False)

            def pool(proxy: str | None = None) -> Any:
                def connections(size: int) -> Any:
                    limits = package.limits(
                        max_connections=size, max_keepalive_connections=size, keepalive_expiry=keepalive_expiry
                    )
                    return package.http_transport(
                        verify=verify, limits=limits, trust_env=False, proxy=package.proxy(proxy) if proxy else None
                    )

                return package.pools(connections, max_connections, keepalive_expiry)

            self._new_pool = pool
            self._pool = self._proxied[None] = pool()
            self._proxy_for = _common.environment_proxies()
            # Requests go to the pool directly (the client's layer of URL merging, cookies, auth flows and hooks
            # is work the SDK does not need); the client stays, as the documented `client` of this transport.
            client = package.async_client(transport=self._pool, follow_redirects=False, timeout=DEFAULT_TIMEOUT)
        self._client: ClientT = client
        self._max_response_bytes = max_response_bytes
        self._timeouts: dict[float | None, Any] = {}
        self._urls: dict[str, tuple[Any, tuple[str, str], Any]] = {}

    @property
    def client(self) -> ClientT:
        """The client you passed; or the one this transport made, on the connection pools it uses."""
        return self._client

    async def send(self, request: Request) -> Response:
        """Send `request` and read the whole body within `request.timeout`, from sending to the body's last byte."""
        running = _common.running_loop()
        if running is not self._binding.loop:
            self._binding.bind(running)
        if self._closed:
            raise closed(type(self).__name__, request)
        body = self._package.request_body(request.content)
        timeout = request.timeout
        if timeout is None:
            return await self._exchange(request, body)
        with anyio.CancelScope(deadline=anyio.current_time() + timeout):
            return await self._exchange(request, body)
        raise attempt_timed_out(request, sent=body.started)

    async def _exchange(self, request: Request, body: Any) -> Response:
        package = self._package
        try:
            if self._pool is not None:
                return await self._on_pool(request, body)
            return await self._on_client(request, body)
        # The except clauses are evaluated only when something is raised: the lookups cost nothing per call.
        except (package.timeout_error, package.request_error) as exc:
            if self._closed:  # `aclose()` broke the connection under this request
                raise closed(type(self).__name__, request, in_flight=True) from exc
            sent, timeout = not isinstance(exc, package.not_sent), isinstance(exc, package.timeout_error)
            raise no_response(exc, request, sent=sent, timeout=timeout) from exc

    async def _on_pool(self, request: Request, body: Any) -> Response:
        """The request on the owned connection pools (`handle_async_request`, below the client layer)."""
        cached = self._urls.get(request.url)
        if cached is None:
            cached = self._url(request.url)
        url, host, pool = cached
        headers = [host, *request.headers.raw(), _ACCEPT_ENCODING]
        if request.content or request.method in _BODY_METHODS:
            headers.append(("Content-Length", str(len(request.content))))
        response = await pool.handle_async_request(
            self._package.request(request.method, url, headers=headers, stream=body)
        )
        stream = response.stream
        return await self._read(request, response, stream.__aiter__(), stream.aclose)

    async def _on_client(self, request: Request, body: Any) -> Response:
        """The request through the client you passed: its hooks, mounts, auth and mocks all apply."""
        timeout = self._timeouts.get(request.timeout) or self._timeout(request.timeout)
        http_request = self._client.build_request(
            request.method,
            request.url,
            headers=[*request.headers.raw(), _ACCEPT_ENCODING],
            content=request.content or None,
            timeout=timeout,
        )
        http_request.stream = body
        response = await self._client.send(http_request, stream=True)
        if response.is_stream_consumed:  # a mock's response, made from bytes: read (and decoded) by the package
            content = response.content
            if len(content) > self._max_response_bytes:
                raise too_large(self._max_response_bytes, request)
            return response_from_parts(response.status_code, Headers(response.headers.multi_items()), content)
        return await self._read(request, response, response.aiter_raw(), response.aclose)

    async def _read(
        self, request: Request, response: Any, stream: AsyncIterator[bytes], close: Callable[[], Awaitable[None]]
    ) -> Response:
        headers = response.headers
        try:
            content = await _common.read_response_body(
                request,
                stream,
                self._max_response_bytes,
                content_encoding=headers.get("content-encoding"),
                declared=headers.get("content-length"),
            )
        except ApiConnectionError:  # too large, or not decodable: the rest is not read
            await _abandon(close, stream)
            raise
        finally:
            await close()
        return response_from_parts(response.status_code, Headers(headers.multi_items()), content)

    def _url(self, url: str) -> tuple[Any, tuple[str, str], Any]:
        """The parsed URL, its Host header, and the pool it goes to (through the proxy the environment names for
        it, or direct): worked out once per URL."""
        urls = self._urls
        if len(urls) >= _MAX_CACHED:
            urls.clear()
        parsed = self._package.url(url)
        netloc = parsed.netloc.decode("ascii")
        proxy = None if self._proxy_for is None else self._proxy_for(parsed.scheme, netloc)
        pool = self._proxied.get(proxy)
        if pool is None:
            pool = self._proxied[proxy] = self._new_pool(proxy)
        cached = urls[url] = (parsed, ("Host", netloc), pool)
        return cached

    def _timeout(self, seconds: float | None) -> Any:
        timeouts = self._timeouts
        if len(timeouts) >= _MAX_CACHED:
            timeouts.clear()
        timeout = timeouts[seconds] = self._package.timeout(seconds)
        return timeout

    async def aclose(self) -> None:
        """Close the owned client and its connections (a client you passed is left open). Safe to call twice.

        In another event loop than the one its connections belong to, they cannot be closed: it is marked closed
        and raises `ClientClosedError` saying so.
        """
        if not self._owns_client or self._closed:
            return
        self._closed = True
        if self._binding.foreign():
            raise self._binding.error("cannot close its connections")
        with anyio.CancelScope(shield=True):
            await self._client.aclose()  # and with it the direct pool
            for proxy, pool in self._proxied.items():
                if proxy is not None:
                    await pool.aclose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(owns_client={self._owns_client})"


class HttpxTransport(_HttpxFamilyTransport[httpx.AsyncClient]):
    """Sends requests with httpx: the default transport, on asyncio and trio.

    With no `client`, it sends on connection pools of its own (`httpx.AsyncHTTPTransport`s: TLS verified,
    redirects not followed, idle connections closed after `keepalive_expiry` seconds), at most `max_connections`
    connections in all, split over pools of at most 4 (an httpx pool's CPU per request grows with its size),
    through the proxies that `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` name when it is made; its
    `client` is an `httpx.AsyncClient` on those pools, closed by `aclose()`. A `client` you pass is used as it is
    (its hooks, mounts, auth, proxies; respx and pytest-httpx mocks) and is never closed.
    `verify` is True (httpx's CA certificates), False (no verification: tests only), the path of a CA bundle,
    or an `ssl.SSLContext`.
    `request.timeout` bounds each attempt as a whole, from sending to the body's last byte.
    Bodies are asked for as gzip or deflate, and refused with `ApiConnectionError` once longer than
    `max_response_bytes` as decoded: decoding stops there.
    """

    _package_name = "httpx"
