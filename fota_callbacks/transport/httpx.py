"""The default transport, on an `httpx.AsyncClient`."""

from __future__ import annotations

import httpx

from .._constants import DEFAULT_TIMEOUT, MAX_RESPONSE_BYTES
from .._errors import ApiConnectionError, ApiTimeoutError
from .base import Request, Response

__all__ = ["HttpxTransport"]

# Failures in which the request never left this process: always safe to send again.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


class HttpxTransport:
    """Sends requests with httpx.

    With no `client`, it creates and owns an `httpx.AsyncClient` (TLS verified, redirects not followed,
    `max_connections` pooled) and closes it in `aclose()`. A `client` you pass is used as it is and is
    never closed.
    Bodies longer than `max_response_bytes` are refused with `ApiConnectionError`.
    """

    def __init__(
        self,
        client: httpx.AsyncClient | None = None,
        *,
        verify: bool | str = True,
        max_connections: int = 100,
        keepalive_expiry: float = 5.0,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        self._owns_client = client is None
        if client is None:
            client = httpx.AsyncClient(
                verify=verify,
                follow_redirects=False,
                timeout=DEFAULT_TIMEOUT,
                limits=httpx.Limits(
                    max_connections=max_connections,
                    max_keepalive_connections=max_connections,
                    keepalive_expiry=keepalive_expiry,
                ),
                trust_env=False,
            )
        self._client = client
        self._max_response_bytes = max_response_bytes
        self._timeouts: dict[float | None, httpx.Timeout] = {}

    @property
    def client(self) -> httpx.AsyncClient:
        """The underlying httpx client."""
        return self._client

    def _timeout(self, seconds: float | None) -> httpx.Timeout:
        timeout = self._timeouts.get(seconds)
        if timeout is None:
            timeout = self._timeouts[seconds] = httpx.Timeout(seconds)
        return timeout

    async def send(self, request: Request) -> Response:
        client = self._client
        http_request = client.build_request(
            request.method,
            request.url,
            headers=request.headers.raw(),
            content=request.content or None,
            timeout=self._timeout(request.timeout),
        )
        try:
            http_response = await client.send(http_request, stream=True)
            try:
                content = await self._read(http_response)
            finally:
                await http_response.aclose()
        except httpx.TimeoutException as exc:
            raise ApiTimeoutError(
                f"timed out: {type(exc).__name__}",
                request=request,
                request_sent=not isinstance(exc, _NOT_SENT),
            ) from exc
        except httpx.TransportError as exc:
            raise ApiConnectionError(
                f"connection failed: {type(exc).__name__}: {exc}",
                request=request,
                request_sent=not isinstance(exc, _NOT_SENT),
            ) from exc
        return Response(http_response.status_code, http_response.headers.multi_items(), content)

    async def _read(self, response: httpx.Response) -> bytes:
        limit = self._max_response_bytes
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise ApiConnectionError(
                f"response body of {declared} bytes exceeds max_response_bytes={limit}", request_sent=True
            )
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > limit:
                raise ApiConnectionError(f"response body exceeds max_response_bytes={limit}", request_sent=True)
            chunks.append(chunk)
        return b"".join(chunks)

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    def __repr__(self) -> str:
        return f"HttpxTransport(owns_client={self._owns_client})"
