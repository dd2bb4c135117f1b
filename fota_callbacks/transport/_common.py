"""What the bundled network transports share: loading their optional package, TLS from a CA bundle path, proxies
from the environment, the event loop their connections belong to, and the bounded and decoded body read. (Their
errors for a request that got no whole response are worded in `fota_callbacks._connection_errors`.)"""

from __future__ import annotations

import importlib
import os
import socket
import ssl
import sys
import threading
import urllib.request
import zlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import sniffio

from .._checks import is_positive_number
from .._connection_errors import too_large, undecodable
from .._constants import ACCEPT_ENCODING
from .._errors import ClientClosedError, InvalidArgumentError
from .._validation import positive_int
from .base import Request

__all__ = [
    "ACCEPT_ENCODING",
    "BodyTooLarge",
    "LoopBinding",
    "ca_bundle_context",
    "check_pool_options",
    "environment_proxies",
    "import_extra",
    "read_body",
    "read_response_body",
]

_STEP = 64 * 1024
"""Bytes a decoder may produce at a time, before they are counted (or the next coding of a stacked
`Content-Encoding` consumes them)."""


def import_extra(name: str, transport: str, extra: str | None, python: tuple[int, int] | None = None) -> Any:
    """Import the package behind a transport, or say which extra installs it (and, when this Python is older than
    `python`, that the package needs a newer one)."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        if python is not None and sys.version_info < python:
            needs = ".".join(map(str, python))
            message = f"{transport} needs the {name} package, which needs Python {needs} or later"
        else:
            install = f"'fota-callbacks[{extra}]'" if extra else "fota-callbacks"
            message = f"{transport} needs the {name} package: pip install {install}"
        raise ImportError(message, name=name) from exc


def check_pool_options(max_connections: object, keepalive_expiry: object, max_response_bytes: object) -> None:
    """Refuse pool options the HTTP stacks would read another way (None or 0 connections: no limit at all)."""
    positive_int(max_connections, "max_connections")
    positive_int(max_response_bytes, "max_response_bytes")
    if not is_positive_number(keepalive_expiry):
        problem = f"expected a positive number of seconds, got {keepalive_expiry!r}"
        raise InvalidArgumentError("keepalive_expiry", problem)


def ca_bundle_context(path: str) -> ssl.SSLContext:
    """A verifying SSL context trusting the CA certificates in `path` (a PEM file, or an OpenSSL hashed directory)."""
    if os.path.isdir(path):
        return ssl.create_default_context(capath=path)
    return ssl.create_default_context(cafile=path)


class CertifiOnFirstUse(ssl.SSLContext):
    """The context `httpx.create_ssl_context()` makes by default, `ssl.create_default_context(cafile=certifi.where())`
    (certificates and host names verified), with certifi's CA bundle loaded when the context first wraps a
    connection instead of when it is made: loading it takes about 17 ms, most of what making a client costs, and a
    client may never open a TLS connection (or not for a while: a process's cold start). Every TLS connection, on
    asyncio or trio, begins with `wrap_bio` (or `wrap_socket`); the store is loaded before it, once."""

    def __new__(cls) -> CertifiOnFirstUse:
        return super().__new__(cls, ssl.PROTOCOL_TLS_CLIENT)

    def __init__(self) -> None:
        # What create_default_context sets (PROTOCOL_TLS_CLIENT starts so), and its SSLKEYLOGFILE.
        self.verify_mode = ssl.CERT_REQUIRED
        self.check_hostname = True
        keylog = os.environ.get("SSLKEYLOGFILE")
        if keylog and not sys.flags.ignore_environment:
            self.keylog_filename = keylog
        self._lock = threading.Lock()
        self._loaded = False

    def _load_ca_bundle(self) -> None:
        if self._loaded:
            return
        with self._lock:  # one transport may connect from several threads' event loops
            if not self._loaded:
                import certifi

                self.load_verify_locations(cafile=certifi.where())
                self._loaded = True

    def wrap_bio(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        self._load_ca_bundle()
        return super().wrap_bio(incoming, outgoing, server_side, server_hostname, session)

    def wrap_socket(
        self,
        sock: socket.socket,
        server_side: bool = False,
        do_handshake_on_connect: bool = True,
        suppress_ragged_eofs: bool = True,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLSocket:
        self._load_ca_bundle()
        return super().wrap_socket(
            sock, server_side, do_handshake_on_connect, suppress_ragged_eofs, server_hostname, session
        )

    def cert_store_stats(self) -> dict[str, int]:
        self._load_ca_bundle()
        return super().cert_store_stats()


def environment_proxies() -> Callable[[str, str], str | None] | None:
    """The proxies set by `HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY` and `NO_PROXY` (any case), read once.

    None when no proxy is set; otherwise a function of (scheme, host[:port]) giving the proxy URL to use, or None
    for a host that `NO_PROXY` exempts: `*`, the host itself, a domain it is in (`example.com` or `.example.com`),
    or `host:port`.
    """
    found = urllib.request.getproxies_environment()
    by_scheme = {scheme: found.get(scheme) or found.get("all") for scheme in ("http", "https")}
    if not any(by_scheme.values()):
        return None
    exempt = [entry.strip().lower().lstrip(".") for entry in found.get("no", "").split(",") if entry.strip()]

    def proxy_for(scheme: str, netloc: str) -> str | None:
        proxy = by_scheme.get(scheme)
        netloc = netloc.lower()
        host = netloc.rsplit(":", 1)[0] if not netloc.endswith("]") else netloc
        for entry in exempt:
            if entry == "*" or entry in (netloc, host) or host.endswith("." + entry):
                return None
        return proxy

    return proxy_for


# --- the event loop ------------------------------------------------------------------------------------------


def running_loop() -> object:
    """What the running task's I/O belongs to: its asyncio event loop, or the name of the async library running it
    otherwise ("trio", whose sockets are not tied to one `trio.run`)."""
    library = sniffio.thread_local.name  # trio (and any library that says so) names itself here while it runs
    if library is not None and library != "asyncio":
        return library
    asyncio = sys.modules.get("asyncio")  # not imported: not running on it (and importing it costs ~25 ms)
    if asyncio is not None:
        try:
            return asyncio.get_running_loop()
        except RuntimeError:
            pass
    return sniffio.current_async_library()


class LoopBinding:
    """The event loop a transport's connections belong to: the one it first sent in (`loop`).

    The HTTP stacks tie each connection to the loop that opened it; in another loop (a second `asyncio.run`)
    they fail with a bare `RuntimeError` ("Event loop is closed"), or worse. A transport compares the running loop
    with `loop` on every send (one identity test) and calls `bind` when they differ: the first send binds, any later
    one is refused at once with a `ClientClosedError` saying what to do.
    """

    __slots__ = ("_owner", "loop")

    def __init__(self, owner: str) -> None:
        self._owner = owner
        self.loop: object = None

    def bind(self, running: object) -> None:
        """`running` is not `loop`: take it as the connections' loop if there is none yet, else refuse it."""
        if self.loop is not None:
            raise self.error("cannot send")
        self.loop = running

    def foreign(self) -> bool:
        """Whether the connections belong to an event loop other than the running one."""
        return self.loop is not None and running_loop() is not self.loop

    def error(self, what: str) -> ClientClosedError:
        return ClientClosedError(
            f"{self._owner} {what} here: its connections belong to the event loop it first sent in, and this is "
            "another one (a second asyncio.run?). Make the client inside the event loop that uses it, "
            "e.g. in the coroutine you pass to asyncio.run, and close it there"
        )


# --- the bounded body read -----------------------------------------------------------------------------------


class BodyTooLarge(Exception):
    """A body is longer than `limit` bytes (`declared` is its Content-Length when that said so)."""

    def __init__(self, limit: int, declared: str | None = None) -> None:
        super().__init__(f"body exceeds {limit} bytes")
        self.limit = limit
        self.declared = declared


class _Inflater:
    """One `gzip` or `deflate` coding; `deflate` is zlib-wrapped as RFC 9110 says, or raw as some servers send."""

    def __init__(self, coding: str) -> None:
        self._raw_fallback = coding == "deflate"
        self._zlib = zlib.decompressobj(zlib.MAX_WBITS | 16 if coding != "deflate" else zlib.MAX_WBITS)
        self.unconsumed_tail = b""

    def decompress(self, data: bytes, max_length: int) -> bytes:
        try:
            out = self._zlib.decompress(data, max_length)
        except zlib.error:
            if not self._raw_fallback:
                raise
            self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
            out = self._zlib.decompress(data, max_length)
        self._raw_fallback = False
        self.unconsumed_tail = self._zlib.unconsumed_tail
        return out


def _inflaters(content_encoding: str | None) -> list[_Inflater]:
    """The decoders for a `Content-Encoding` value, in the order they apply (the last coding applied comes first).
    `identity` and codings this SDK does not ask for (it sends `Accept-Encoding: gzip, deflate`) are passed through
    as they are."""
    if not content_encoding:
        return []
    codings = [coding.strip().lower() for coding in content_encoding.split(",")]
    return [_Inflater(coding) for coding in reversed(codings) if coding in ("gzip", "x-gzip", "deflate")]


class _Body:
    """Collects a body through its decoders (one at least), never holding more than `limit` + 1 decoded bytes."""

    def __init__(self, limit: int, inflaters: list[_Inflater]) -> None:
        self.limit = limit
        self.size = 0
        self.chunks: list[bytes] = []
        self._inflaters = inflaters

    def add(self, chunk: bytes) -> None:
        self._feed(0, chunk)

    def _keep(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            raise BodyTooLarge(self.limit)
        self.chunks.append(chunk)

    def _feed(self, stage: int, data: bytes) -> None:
        inflater = self._inflaters[stage]
        last = stage == len(self._inflaters) - 1
        while True:
            # Each call is bounded, so that a few compressed bytes never become more than this at once (zlib
            # holds a large output twice while it builds it).
            room = min(self.limit - self.size + 1, _STEP) if last else _STEP
            out = inflater.decompress(data, room)
            if out and last:
                self._keep(out)
            elif out:
                self._feed(stage + 1, out)
            data = inflater.unconsumed_tail
            if not data and len(out) < room:
                return


async def read_body(
    chunks: AsyncIterator[bytes], limit: int, *, content_encoding: str | None = None, declared: str | None = None
) -> bytes:
    """The body from `chunks`, decoded as `content_encoding` says (gzip, deflate, stacked), with at most `limit`
    bytes kept in memory and inflated at any time: raises `BodyTooLarge` as soon as it is longer (or as soon as
    its Content-Length, `declared`, says so), and `zlib.error` for a body that does not decode."""
    if declared is not None and declared.isdigit() and int(declared) > limit and not content_encoding:
        raise BodyTooLarge(limit, declared)
    inflaters = _inflaters(content_encoding)
    if not inflaters:  # the common case, kept to a plain loop
        kept: list[bytes] = []
        size = 0
        async for chunk in chunks:
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(limit)
            kept.append(chunk)
        return b"".join(kept)
    body = _Body(limit, inflaters)
    async for chunk in chunks:
        if chunk:
            body.add(chunk)
    return b"".join(body.chunks)


async def read_response_body(
    request: Request,
    chunks: AsyncIterator[bytes],
    limit: int,
    *,
    content_encoding: str | None = None,
    declared: str | None = None,
) -> bytes:
    """`read_body` for a transport: a body over the limit or one that does not decode is `ApiConnectionError`."""
    try:
        return await read_body(chunks, limit, content_encoding=content_encoding, declared=declared)
    except BodyTooLarge as exc:
        raise too_large(exc.limit, request, exc.declared) from None
    except zlib.error as exc:
        raise undecodable(exc, request) from exc
