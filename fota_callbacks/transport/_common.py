"""What the bundled network transports share: loading their optional package, and TLS from a CA bundle path."""

from __future__ import annotations

import importlib
import os
import ssl
from typing import Any

__all__ = ["ca_bundle_context", "import_extra"]


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
