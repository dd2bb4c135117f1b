"""What a remote party sends, made safe to show: escaped for one log line, credentials hidden."""

from __future__ import annotations

from typing import Any

__all__ = ["printable", "redacted"]

_SECRET_KEY_PARTS = ("password", "secret", "token")


def printable(value: object, limit: int = 500) -> str:
    """`value` as printable ASCII on one line: controls, line breaks and non-ASCII escaped as in `ascii()`.

    A sender-controlled string (a callback's `type`, a parse error quoting the body) can otherwise forge log
    lines ("upgradeProgress\\nCRITICAL root: ...") or hide itself with terminal escapes. Longer text is cut at
    `limit` characters.
    """
    text = ascii(value if isinstance(value, str) else str(value))[1:-1]
    return text if len(text) <= limit else text[:limit] + "..."


def redacted(value: Any) -> Any:
    """A copy of decoded JSON `value` with the values of keys that look like credentials (`password`, `secret`,
    `token`, any case, at any depth) replaced by `"***"`: a V1 callback echoes the registration's password."""
    if type(value) is dict:
        return {
            key: "***" if any(part in key.lower() for part in _SECRET_KEY_PARTS) else redacted(item)
            for key, item in value.items()
        }
    if type(value) is list:
        return [redacted(item) for item in value]
    return value
