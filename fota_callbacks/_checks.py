"""Small checks and parsers the whole package shares, so each has one home. No imports from the package."""

from __future__ import annotations

import email.utils
import json
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["is_positive_number", "json_or_none", "parse_retry_after"]


def json_or_none(body: bytes | str) -> Any:
    """`body` parsed as JSON, or None when it is not JSON (or nested too deeply to parse)."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def is_positive_number(value: object) -> bool:
    """An int or float above zero; a bool is not a number here."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and value > 0


def parse_retry_after(headers: Mapping[str, str], now: Callable[[], float] = time.time) -> float | None:
    """Seconds the server asked us to wait: `retry-after-ms`, or `Retry-After` as seconds or an HTTP date.

    `headers` is looked up by lowercase name (the SDK's `Headers` matches any case).
    """
    milliseconds = _finite(headers.get("retry-after-ms"))
    if milliseconds is not None:
        return max(milliseconds / 1000.0, 0.0)
    value = headers.get("retry-after")
    if value is None:
        return None
    seconds = _finite(value)
    if seconds is None:
        try:
            when = email.utils.parsedate_to_datetime(value.strip())
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        seconds = when.timestamp() - now()
    return max(seconds, 0.0)


def _finite(value: str | None) -> float | None:
    """A header value as a finite number of seconds; None when absent, not a number, NaN or infinite."""
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None
