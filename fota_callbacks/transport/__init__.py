"""Transports: how requests reach ThingSpace (or a fake of it).

`AiohttpTransport` and `Httpx2Transport` can always be imported: the package each runs on (extras `aiohttp`,
`httpx2`) is imported when one is made.
"""

from .aiohttp import AiohttpTransport
from .base import Headers, Request, Response, SendNext, Transport
from .httpx import HttpxTransport
from .httpx2 import Httpx2Transport
from .memory import Handler, InMemoryTransport

__all__ = [
    "AiohttpTransport",
    "Handler",
    "Headers",
    "Httpx2Transport",
    "HttpxTransport",
    "InMemoryTransport",
    "Request",
    "Response",
    "SendNext",
    "Transport",
]
