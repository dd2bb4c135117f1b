"""Text that may come from a remote party, made safe for one log line."""

from __future__ import annotations

__all__ = ["printable"]


def printable(value: object, limit: int = 500) -> str:
    """`value` as printable ASCII on one line: controls, line breaks and non-ASCII escaped as in `ascii()`.

    A sender-controlled string (a callback's `type`, a parse error quoting the body) can otherwise forge log
    lines ("upgradeProgress\\nCRITICAL root: ...") or hide itself with terminal escapes. Longer text is cut at
    `limit` characters.
    """
    text = ascii(value if isinstance(value, str) else str(value))[1:-1]
    return text if len(text) <= limit else text[:limit] + "..."
