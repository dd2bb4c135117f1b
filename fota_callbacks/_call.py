"""What the pipeline sends and what it comes back with: a `Call` (an API operation, or a request the SDK makes for
itself) and its `Outcome` after the retries. The pipeline and the token sources (`_auth`) both speak in them."""

from __future__ import annotations

from typing import Any

import attrs

from ._errors import ApiError, error_from_response
from .transport.base import Request, Response

__all__ = ["Call", "HeaderPairs", "Outcome"]

HeaderPairs = tuple[tuple[str, str], ...]


# Not frozen, though never changed once made: a frozen attrs class sets each field through object.__setattr__,
# and made this way each of these costs a third of what it did (about 0.3 µs of a 7 µs in-memory call each).
@attrs.define
class Call:
    """One request to send through the pipeline, before credentials and timeout are added: an API operation,
    or one the SDK makes for itself (token, session login, logout). Which credentials it carries is said beside
    it, when it is sent."""

    method: str
    url: str
    headers: HeaderPairs
    content: bytes = b""
    secret_body: bool = False


@attrs.define
class Outcome:
    """What one call came to after its retries: the last request, its response (any status), the retries.

    `maybe_processed` is True when an earlier attempt failed after it may have reached the server.
    """

    request: Request
    response: Response
    retries: int
    maybe_processed: bool = False
    secret_body: bool = False

    def error(self, where: str, **kinds: Any) -> ApiError:
        """The error for this (non-2xx) outcome; `kinds` as in `error_from_response`."""
        return error_from_response(
            where, self.request, self.response, self.retries, secret_body=self.secret_body, **kinds
        )
