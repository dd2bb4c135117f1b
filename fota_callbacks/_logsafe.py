"""Text and data that may come from a remote party, made safe to show: escaped onto one line, credentials hidden."""

from __future__ import annotations

from typing import Any

__all__ = ["masked", "printable"]

SECRET_KEY_PARTS = ("password", "secret", "token")
"""A key containing one of these (any case) holds a credential: V1 callbacks echo the registered password."""


def printable(value: object, limit: int = 500) -> str:
    """`value` as printable ASCII on one line: controls, line breaks and non-ASCII escaped as in `ascii()`.

    A sender-controlled string (a callback's `type`, a parse error quoting the body) can otherwise forge log
    lines ("upgradeProgress\\nCRITICAL root: ...") or hide itself with terminal escapes. Longer text is cut at
    `limit` characters.
    """
    text = ascii(value if isinstance(value, str) else str(value))[1:-1]
    return text if len(text) <= limit else text[:limit] + "..."


def masked(value: Any) -> Any:
    """A copy of `value` (parsed JSON) with the values of keys that look like credentials hidden, at any depth."""
    if type(value) is dict:
        return {
            key: "***" if any(part in str(key).lower() for part in SECRET_KEY_PARTS) else masked(item)
            for key, item in value.items()
        }
    if type(value) is list:
        return [masked(item) for item in value]
    return value
