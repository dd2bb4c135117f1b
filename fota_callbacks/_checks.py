"""Small checks and parsers the whole package shares, so each has one home. No imports from the package."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["is_positive_number", "json_or_none"]


def json_or_none(body: bytes | str) -> Any:
    """`body` parsed as JSON, or None when it is not JSON (or nested too deeply to parse)."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def is_positive_number(value: object) -> bool:
    """An int or float above zero; a bool is not a number here."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and value > 0
