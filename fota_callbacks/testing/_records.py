"""What a `FakeThingSpace` received: one `RecordedRequest` per request, in arrival order."""

from __future__ import annotations

from typing import Any, Literal, get_args
from urllib.parse import parse_qsl

import attrs

from .._errors import InvalidArgumentError
from ..transport.base import Headers
from ._wire import json_or_none

__all__ = ["OPERATIONS", "VERSIONS", "Operation", "RecordedRequest", "Version", "check_filter"]

Version = Literal["v1", "v2", "v3", "oauth", "m2m"]
"""Which API a request was for: a callbacks version, the OAuth token server or the M2M session server."""

Operation = Literal[
    "list_registered_callbacks",
    "register_callback",
    "update_callback",
    "deregister_callback",
    "token",
    "login",
    "logout",
]
"""The operation a request asked for (the SDK's method names; `token`, `login`, `logout` for auth)."""

VERSIONS: frozenset[str] = frozenset(get_args(Version))
OPERATIONS: frozenset[str] = frozenset(get_args(Operation))


def check_filter(version: object, operation: object) -> None:
    """Refuse a version or operation name that no request can have: a typo would otherwise match nothing."""
    if version is not None and version not in VERSIONS:
        raise InvalidArgumentError("version", f"must be one of {sorted(VERSIONS)} or None, got {version!r}")
    if operation is not None and operation not in OPERATIONS:
        raise InvalidArgumentError("operation", f"must be one of {sorted(OPERATIONS)} or None, got {operation!r}")


@attrs.frozen
class RecordedRequest:
    """One request as the fake received it.

    `path` is as sent (percent-encoding kept). `version` and `operation` are None for a path the fake does
    not serve; `operation` is None for a known path with a method it does not allow. `account` is the
    decoded account path segment of a callbacks request. `json` and `form` are parsed from `content` when
    read.
    """

    method: str
    url: str
    path: str
    headers: Headers
    content: bytes
    version: Version | None
    operation: Operation | None
    account: str | None = None

    @property
    def json(self) -> Any:
        """The body parsed as JSON; None when it is empty or not JSON."""
        return json_or_none(self.content)

    @property
    def form(self) -> dict[str, str] | None:
        """The form parameters of a token request (the last value of a repeated name); None for other requests
        or a body that is not a form."""
        if self.operation != "token":
            return None
        try:
            return dict(parse_qsl(self.content.decode("ascii"), keep_blank_values=True, strict_parsing=True))
        except ValueError:  # includes UnicodeDecodeError
            return None

    def __repr__(self) -> str:
        return f"<RecordedRequest {self.method} {self.path} ({self.version}.{self.operation})>"
