"""Checks on caller input, run before anything is sent."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection
from enum import Enum
from typing import TypeVar
from urllib.parse import urlsplit

from ._checks import is_positive_number
from ._errors import InvalidArgumentError

__all__ = [
    "check_account",
    "check_callback_url",
    "check_enum",
    "check_optional_str",
    "mask_userinfo",
    "non_negative_int",
    "positive_int",
    "positive_seconds",
]

E = TypeVar("E", bound=Enum)

_ACCOUNT = re.compile(r"[0-9]{10}-[0-9]{5}")
# C0 and C1 controls, DEL, and every kind of Unicode space: none may stand in a URL we pass on.
_FORBIDDEN_IN_URL = re.compile(r"[\x00-\x20\x7f-\x9f\s]")
_AUTHORITY_END = re.compile(r"[/?#]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _unsafe_in_url(value: str) -> bool:
    """Controls, whitespace, and (beyond ASCII) any Unicode control, format, surrogate or separator character,
    such as U+202E RIGHT-TO-LEFT OVERRIDE, which would make a URL read differently from what it is."""
    if _FORBIDDEN_IN_URL.search(value):
        return True
    return not value.isascii() and any(unicodedata.category(ch)[0] in "CZ" for ch in value)


def mask_userinfo(url: str) -> str:
    """`url` with the user:password@ part of its authority replaced by `***@`; host, path and query kept.

    The authority ends at the first "/", "?" or "#". One that reads `user:not-a-port` with an "@" later in the
    URL is taken as a password holding one of those characters, and masked up to the last "@".
    """
    start = url.find("//") + 2
    if start < 2:
        return url
    found = _AUTHORITY_END.search(url, start)
    end = found.start() if found else len(url)
    authority = url[start:end]
    if "@" in authority:
        cut = start + authority.rindex("@")
    elif ":" in authority and not authority.startswith("[") and not authority.rpartition(":")[2].isdigit():
        cut = url.rfind("@")
        if cut < end:
            return url
    else:
        return url
    return url[:start] + "***" + url[cut:]


def _shown(url: str) -> str:
    return repr(mask_userinfo(url))


def check_account(value: object, parameter: str = "account") -> str:
    """An account identifier in the documented format `##########-#####`."""
    if not isinstance(value, str):
        raise InvalidArgumentError(parameter, f"expected a str, got {type(value).__name__}")
    if _ACCOUNT.fullmatch(value) is None:
        raise InvalidArgumentError(
            parameter, f"{value!r} is not an account identifier ##########-##### (10 digits, dash, 5 digits)"
        )
    return value


def check_callback_url(value: object, schemes: Collection[str], parameter: str = "body.url") -> str:
    """An absolute URL with a host, one of `schemes`, with no whitespace or control characters."""
    if not isinstance(value, str):
        raise InvalidArgumentError(parameter, f"expected a str, got {type(value).__name__}")

    def refused(problem: str) -> InvalidArgumentError:  # messages are formatted only when needed
        return InvalidArgumentError(parameter, f"{_shown(value)} {problem}")

    if _unsafe_in_url(value):
        raise refused("contains whitespace, control or invisible characters")
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number in range
    except ValueError:
        # urllib's message may quote part of a user:password@ section: not repeated here.
        raise refused("is not a valid URL (malformed host or port)") from None
    if parts.scheme.lower() not in schemes:
        raise refused(f"must be an absolute {' or '.join(f'{scheme}://' for scheme in schemes)} URL")
    if not host:
        raise refused("has no host")
    return value


def check_optional_str(value: object, parameter: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise InvalidArgumentError(parameter, f"expected a str or None, got {type(value).__name__}")
    if value is not None and _SURROGATE.search(value):
        raise InvalidArgumentError(parameter, "contains a lone surrogate, which cannot be sent as UTF-8")
    return value


def check_enum(value: object, enum: type[E], parameter: str) -> E:
    """A member of `enum`, or its value (so `"Fota"` is accepted for `CallbackService.FOTA`)."""
    try:
        return enum(value)
    except (ValueError, TypeError):
        allowed = ", ".join(repr(member.value) for member in enum)
        raise InvalidArgumentError(parameter, f"{value!r} is not one of {allowed}") from None


def positive_seconds(value: object, parameter: str) -> float | None:
    """A positive number of seconds, or None (no limit)."""
    if value is None:
        return None
    if not is_positive_number(value):
        raise InvalidArgumentError(parameter, f"expected a positive number of seconds or None, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def positive_int(value: object, parameter: str) -> int:
    """An int >= 1 (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgumentError(parameter, f"expected a positive int, got {value!r}")
    return value


def non_negative_int(value: object, parameter: str) -> int:
    """An int >= 0 (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgumentError(parameter, f"expected an int >= 0, got {value!r}")
    return value
