"""The fake's own reading of ThingSpace's documented wire format: what an account and a callback URL are, how a JSON
body is read, and how errors are answered.

None of it comes from the SDK's validators: a fake that shared them would agree with the SDK's bugs instead of
catching them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from typing import Any, NoReturn
from urllib.parse import urlsplit

from .._errors import InvalidArgumentError
from ..transport.base import Headers, Request, Response

_ACCOUNT = re.compile(r"[0-9]{10}-[0-9]{5}")  # "##########-#####", ASCII digits only
_USERINFO = re.compile(r"(?<=//)[^/?#]*@")
CALLBACK_URL_SCHEMES: Mapping[str, tuple[str, ...]] = {"v1": ("http", "https"), "v2": ("https",), "v3": ("https",)}
"""V1 registers any http(s) listener; V2 and V3 require HTTPS, as their documentation says."""

# V2/V3 JSON bodies arrive as "*/*" from Verizon's generated SDKs, which ThingSpace accepts.
_JSON_MEDIA_TYPES = frozenset({"application/json", "*/*"})

JSON_HEADERS = Headers((("Content-Type", "application/json"),))
_encode = json.JSONEncoder(separators=(",", ":")).encode  # made once: json.dumps with options makes one per call


def json_response(status_code: int, body: object, headers: Headers = JSON_HEADERS) -> Response:
    """A response with `body` as compact JSON."""
    return Response(status_code, headers, _encode(body).encode())


def shown(url: str) -> str:
    """`url` with any user:password@ part hidden, for a message."""
    return _USERINFO.sub("***@", url, count=1)


def checked_account(value: object, parameter: str = "account") -> str:
    """`value` if it is an account identifier `##########-#####`, else `InvalidArgumentError`."""
    if isinstance(value, str) and _ACCOUNT.fullmatch(value):
        return value
    raise InvalidArgumentError(parameter, f"{value!r} is not an account ##########-##### (10 digits, dash, 5 digits)")


def checked_url(value: object, schemes: Collection[str], parameter: str) -> str:
    """`value` if it is an absolute URL of one of `schemes` with a host, else `InvalidArgumentError`."""
    if not isinstance(value, str):
        raise InvalidArgumentError(parameter, f"expected a str, got {type(value).__name__}")
    # Not printable: every control, format, separator and unassigned character but the space, checked apart.
    if " " in value or not value.isprintable():
        raise InvalidArgumentError(parameter, f"{shown(value)!r} holds whitespace, control or invisible characters")
    try:
        parts = urlsplit(value)
        has_host = bool(parts.hostname)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError:
        raise InvalidArgumentError(parameter, f"{shown(value)!r} is not a valid URL (malformed host or port)") from None
    if parts.scheme.lower() not in schemes:
        expected = " or ".join(scheme + "://" for scheme in schemes)
        raise InvalidArgumentError(parameter, f"{shown(value)!r} must be an absolute {expected} URL")
    if not has_host:
        raise InvalidArgumentError(parameter, f"{shown(value)!r} has no host")
    return value


class Refusal(Exception):
    """Ends the handling of a request with `response` (an error answer)."""

    def __init__(self, response: Response) -> None:
        self.response = response


def refuse(status_code: int, code: str, message: str) -> NoReturn:
    """Answer `{"errorCode", "errorMessage"}` with `status_code`."""
    raise Refusal(json_response(status_code, {"errorCode": code, "errorMessage": message}))


def account_or_refuse(segment: str | None) -> str:
    """The account of a callbacks path, or a 400 InvalidAccount."""
    try:
        return checked_account(segment)
    except InvalidArgumentError as exc:
        refuse(400, "InvalidAccount", exc.problem)


def url_or_refuse(url: str, version: str) -> str:
    """`url` if `version` accepts it as a callback address, else a 400 InvalidCallbackUrl."""
    try:
        return checked_url(url, CALLBACK_URL_SCHEMES[version], "url")
    except InvalidArgumentError as exc:
        refuse(400, "InvalidCallbackUrl", str(exc))


def media_type(headers: Headers) -> str | None:
    """The media type of the Content-Type header, lower case, without parameters."""
    value = headers.get("content-type")
    return None if value is None else value.partition(";")[0].strip().lower()


def json_object(request: Request) -> dict[str, Any]:
    """The request's body, a JSON object labelled `application/json` or `*/*`; else a 415 or 400."""
    if media_type(request.headers) not in _JSON_MEDIA_TYPES:
        refuse(415, "UnsupportedMediaType", "the request body must be JSON sent as Content-Type: application/json")
    data = json_or_none(request.content)
    if not isinstance(data, dict):
        refuse(400, "InvalidRequestBody", "the request body is not a JSON object")
    return data


def json_or_none(content: bytes) -> Any:
    """`content` parsed as JSON; None when it is not JSON (or empty)."""
    try:
        return json.loads(content)
    except (ValueError, RecursionError):  # includes content that is not UTF-8
        return None


def required_str(data: Mapping[str, Any], key: str) -> str:
    """The string at `key`; a 400 InvalidRequestBody when it is missing, null or not a string."""
    value = data.get(key)
    if value is None:
        refuse(400, "InvalidRequestBody", f"{key!r} is required")
    return _str_or_refuse(value, key)


def optional_str(data: Mapping[str, Any], key: str) -> str | None:
    """The string at `key`, None when missing or null; a 400 InvalidRequestBody when not a string."""
    value = data.get(key)
    return None if value is None else _str_or_refuse(value, key)


def _str_or_refuse(value: object, key: str) -> str:
    if not isinstance(value, str):
        refuse(400, "InvalidRequestBody", f"{key!r} must be a string, not {type(value).__name__}")
    return value
