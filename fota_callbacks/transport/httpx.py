"""The default transport, on an `httpx.AsyncClient`; and the one implementation it shares with `Httpx2Transport`.

httpx2 keeps httpx's API (client, limits, timeouts, exception classes), so one class, parametrised by the
package it loads, serves both: `HttpxTransport` and `Httpx2Transport` only name the package and its extra.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import anyio
import attrs
import httpx

from .._constants import DEFAULT_TIMEOUT, MAX_RESPONSE_BYTES
from ._common import ca_bundle_context, check_declared_length, import_extra, no_response, too_large
from .base import Request, Response

__all__ = ["HttpxTransport"]

_MAX_CACHED_TIMEOUTS = 32


class _ResponseHeaders(Protocol):
    def get(self, key: str, /) -> str | None: ...

    def multi_items(self) -> list[tuple[str, str]]: ...


class _StreamedResponse(Protocol):
    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> _ResponseHeaders: ...

    def aiter_bytes(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


class _AsyncClient(Protocol):
    """What the transport uses of `httpx.AsyncClient` (and of `httpx2.AsyncClient`, its twin)."""

    def build_request(
        self, method: str, url: str, *, content: bytes | None = ..., headers: Any = ..., timeout: Any = ...
    ) -> Any: ...

    async def send(self, request: Any, *, stream: bool = ...) -> _StreamedResponse: ...

    async def aclose(self) -> None: ...


ClientT = TypeVar("ClientT", bound=_AsyncClient)


@attrs.frozen
class _Package:
    """The parts of an httpx-like package a transport calls, looked up when it is made."""

    async_client: Any
    limits: Any
    timeout: Any
    timeout_error: type[Exception]
    request_error: type[Exception]
    """Every failure of a request: transport errors, and a body that does not decode (a broken Content-Encoding)."""
    not_sent: tuple[type[Exception], ...]
    """Failures in which the request never left this process: always safe to send again."""

    @classmethod
    def load(cls, name: str, transport: str, extra: str | None) -> _Package:
        module = import_extra(name, transport, extra)
        return cls(
            async_client=module.AsyncClient,
            limits=module.Limits,
            timeout=module.Timeout,
            timeout_error=module.TimeoutException,
            request_error=module.RequestError,
            not_sent=(module.ConnectError, module.ConnectTimeout, module.PoolTimeout, module.UnsupportedProtocol),
        )


async def _abandon(response: _StreamedResponse, stream: AsyncIterator[bytes]) -> None:
    """Stop reading a body midway: close the response (and its connection), then end `stream` by cancelling its
    first wait, so that none of the HTTP stack's nested async generators is left suspended for the garbage
    collector to finalize (which trio reports as a ResourceWarning)."""
    await response.aclose()
    with anyio.CancelScope() as scope:
        scope.cancel()
        with contextlib.suppress(Exception):
            async for _ in stream:
                pass


class _HttpxFamilyTransport(Generic[ClientT]):
    """Sends requests with an httpx-like package; `HttpxTransport` and `Httpx2Transport` name which one.

    The package is imported by the constructor, so that importing fota_callbacks does not import it.
    """

    _package_name: ClassVar[str]
    _extra: ClassVar[str | None] = None
    """The extra that installs the package; None: a dependency of fota-callbacks itself."""

    def __init__(
        self,
        client: ClientT | None = None,
        *,
        verify: bool | str | ssl.SSLContext = True,
        max_connections: int = 100,
        keepalive_expiry: float = 5.0,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        self._package = package = _Package.load(self._package_name, type(self).__name__, self._extra)
        self._owns_client = client is None
        if client is None:
            client = package.async_client(
                # The packages deprecate a CA bundle path given as `verify`: the context is built here instead.
                verify=ca_bundle_context(verify) if isinstance(verify, str) else verify,
                follow_redirects=False,
                timeout=DEFAULT_TIMEOUT,
                limits=package.limits(
                    max_connections=max_connections,
                    max_keepalive_connections=max_connections,
                    keepalive_expiry=keepalive_expiry,
                ),
                trust_env=False,
            )
        self._client: ClientT = client
        self._max_response_bytes = max_response_bytes
        self._timeouts: dict[float | None, Any] = {}

    @property
    def client(self) -> ClientT:
        """The underlying client."""
        return self._client

    def _timeout(self, seconds: float | None) -> Any:
        timeouts = self._timeouts
        if len(timeouts) >= _MAX_CACHED_TIMEOUTS:
            timeouts.clear()
        timeout = timeouts[seconds] = self._package.timeout(seconds)
        return timeout

    async def send(self, request: Request) -> Response:
        client = self._client
        timeout = self._timeouts.get(request.timeout) or self._timeout(request.timeout)
        http_request = client.build_request(
            request.method,
            request.url,
            headers=request.headers.raw(),
            content=request.content or None,
            timeout=timeout,
        )
        package = self._package
        try:
            http_response = await client.send(http_request, stream=True)
            try:
                content = await self._read(http_response, request)
            finally:
                await http_response.aclose()
        # The except clauses are evaluated only when something is raised: the lookups cost nothing per call.
        except package.timeout_error as exc:
            raise no_response(exc, request, sent=not isinstance(exc, package.not_sent), timeout=True) from exc
        except package.request_error as exc:
            raise no_response(exc, request, sent=not isinstance(exc, package.not_sent), timeout=False) from exc
        return Response(http_response.status_code, http_response.headers.multi_items(), content)

    async def _read(self, response: _StreamedResponse, request: Request) -> bytes:
        limit = self._max_response_bytes
        check_declared_length(response.headers.get("content-length"), limit, request)
        chunks: list[bytes] = []
        size = 0
        stream = response.aiter_bytes()
        async for chunk in stream:
            size += len(chunk)
            if size > limit:
                await _abandon(response, stream)
                raise too_large(limit, request)
            chunks.append(chunk)
        return b"".join(chunks)

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(owns_client={self._owns_client})"


class HttpxTransport(_HttpxFamilyTransport[httpx.AsyncClient]):
    """Sends requests with httpx: the default transport, on asyncio and trio.

    With no `client`, it creates and owns an `httpx.AsyncClient` (TLS verified, redirects not followed,
    `max_connections` pooled, idle connections closed after `keepalive_expiry` seconds) and closes it in
    `aclose()`. A `client` you pass is used as it is and is never closed.
    `verify` is True (httpx's CA certificates), False (no verification: tests only), the path of a CA bundle,
    or an `ssl.SSLContext`.
    Bodies longer than `max_response_bytes` are refused with `ApiConnectionError`.
    """

    _package_name = "httpx"
