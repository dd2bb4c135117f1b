"""Transports: how requests reach ThingSpace (or a fake of it)."""

from .base import Headers, Request, Response, Transport
from .httpx import HttpxTransport
from .memory import Handler, InMemoryTransport

__all__ = ["Handler", "Headers", "HttpxTransport", "InMemoryTransport", "Request", "Response", "Transport"]
