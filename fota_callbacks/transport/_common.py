"""What the bundled network transports share: loading their optional package, and TLS from a CA bundle path."""

from __future__ import annotations

import importlib
import os
import ssl
from typing import Any

from .._errors import ApiConnectionError, ApiTimeoutError
from .base import Request

__all__ = ["ca_bundle_context", "check_declared_length", "import_extra", "no_response", "too_large"]


def import_extra(name: str, transport: str, extra: str | None) -> Any:
    """Import the package behind a transport, or say which extra installs it."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        install = f"'fota-callbacks[{extra}]'" if extra else "fota-callbacks"
        raise ImportError(f"{transport} needs the {name} package: pip install {install}", name=name) from exc


def ca_bundle_context(path: str) -> ssl.SSLContext:
    """A verifying SSL context trusting the CA certificates in `path` (a PEM file, or an OpenSSL hashed directory)."""
    if os.path.isdir(path):
        return ssl.create_default_context(capath=path)
    return ssl.create_default_context(cafile=path)


def no_response(exc: BaseException, request: Request, *, sent: bool, timeout: bool) -> ApiConnectionError:
    """The SDK's error for a request that got no response: `ApiTimeoutError` or `ApiConnectionError`."""
    if timeout:
        return ApiTimeoutError(f"timed out: {type(exc).__name__}", request=request, request_sent=sent)
    return ApiConnectionError(f"connection failed: {type(exc).__name__}: {exc}", request=request, request_sent=sent)


def too_large(limit: int, request: Request, declared: str | None = None) -> ApiConnectionError:
    size = f"of {declared} bytes " if declared is not None else ""
    return ApiConnectionError(
        f"response body {size}exceeds max_response_bytes={limit}", request=request, request_sent=True
    )


def check_declared_length(declared: str | None, limit: int, request: Request) -> None:
    """Refuse a body whose Content-Length is over the limit before reading any of it."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(limit, request, declared)
