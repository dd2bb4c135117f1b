"""The exception hierarchy. Every error the SDK raises is a `FotaError`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from ._checks import json_or_none, parse_retry_after
from ._constants import REQUEST_ID_HEADERS, SECRET_HEADERS

if TYPE_CHECKING:
    from typing_extensions import Self

    from .transport.base import Headers, Request, Response

__all__ = [
    "ApiConnectionError",
    "ApiError",
    "ApiTimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ClientClosedError",
    "ConflictError",
    "ErrorCodeError",
    "FotaError",
    "FotaResultException",
    "FotaV1ResultException",
    "FotaV2ResultException",
    "FotaV3ResultException",
    "InvalidArgumentError",
    "MissingCredentialsError",
    "NotFoundError",
    "OAuthError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResponseValidationError",
    "ServerError",
    "SessionLoginError",
    "error_from_response",
    "redacted",
    "request_id_of",
]


class FotaError(Exception):
    """Base class of every error raised by fota_callbacks."""


class InvalidArgumentError(FotaError, ValueError):
    """An argument was rejected before anything was sent. `parameter` names it."""

    def __init__(self, parameter: str, problem: str) -> None:
        super().__init__(f"{parameter}: {problem}")
        self.parameter = parameter
        self.problem = problem


class MissingCredentialsError(InvalidArgumentError):
    """A credential needed to call ThingSpace was neither passed nor found in the environment."""


class ClientClosedError(FotaError, RuntimeError):
    """The client can send no more: it was closed with `aclose()` (also while this call was in flight), or it is
    used in an event loop other than the one it first ran in (a second `asyncio.run`). Make a new client, in
    the event loop that uses it."""


class ApiConnectionError(FotaError):
    """No response was received: the connection failed, was dropped, or timed out.

    `request_sent` is False when the request certainly never reached the server (connect or pool failure),
    True when it may have been processed (the connection broke or timed out after sending).
    """

    def __init__(self, message: str, *, request: Request | None = None, request_sent: bool = True) -> None:
        super().__init__(message)
        self.request = request
        self.request_sent = request_sent
        self.retries_taken = 0


class ApiTimeoutError(ApiConnectionError):
    """No response within the configured timeout (or the call's total deadline)."""


class ResponseValidationError(FotaError):
    """A 2xx response whose body is not JSON, or not the documented model. `errors` says where it failed."""

    def __init__(self, *, status_code: int, body: bytes, errors: list[str], request_id: str | None = None) -> None:
        super().__init__(f"unexpected response body (HTTP {status_code}): {'; '.join(errors)}")
        self.status_code = status_code
        self.body = body
        self.errors = errors
        self.request_id = request_id


class ApiError(FotaError):
    """The API answered with a non-2xx status."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        headers: Headers,
        body: bytes,
        request_id: str | None = None,
        request: Request | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.headers = headers
        self.body = body
        self.request_id = request_id
        self.request = request
        self.retries_taken = 0

    @classmethod
    def from_response(cls, where: str, *, body: bytes, **kwargs: Any) -> Self:
        """The error for a response; subclasses read what their body or headers add."""
        return cls(where, body=body, **kwargs)

    def json(self) -> Any:
        """The body parsed as JSON, or None when it is not JSON."""
        return json_or_none(self.body)


class BadRequestError(ApiError):
    """HTTP 400."""


class AuthenticationError(ApiError):
    """HTTP 401: the bearer token or the M2M session token was refused."""


class PermissionDeniedError(ApiError):
    """HTTP 403."""


class NotFoundError(ApiError):
    """HTTP 404."""


class ConflictError(ApiError):
    """HTTP 409."""


class RateLimitError(ApiError):
    """HTTP 429. `retry_after` is the wait the server asked for, in seconds, when it said."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after

    @classmethod
    def from_response(cls, where: str, *, body: bytes, **kwargs: Any) -> Self:
        """Read the wait the server asked for from `Retry-After` / `retry-after-ms`."""
        return cls(where, retry_after=parse_retry_after(kwargs["headers"]), body=body, **kwargs)


class ServerError(ApiError):
    """HTTP 5xx."""


class _DocumentedBodyError(ApiError):
    """An `ApiError` whose body names the failure in two JSON string members, kept as two attributes."""

    _members: ClassVar[tuple[tuple[str, str], tuple[str, str]]]
    """(JSON member, attribute) of the code, then of the text."""
    _undocumented: ClassVar[str]
    """What the message says when the body has neither."""

    @classmethod
    def from_response(cls, where: str, *, body: bytes, **kwargs: Any) -> Self:
        """Read the two members (None when absent or not strings) and show them in the message."""
        data = json_or_none(body)
        found: dict[str, Any] = {attribute: _str_at(data, member) for member, attribute in cls._members}
        detail = ": ".join(value for value in found.values() if value) or cls._undocumented
        return cls(f"{where}: {detail}", body=body, **found, **kwargs)


class ErrorCodeError(_DocumentedBodyError):
    """An `ApiError` whose body is ThingSpace's documented `{"errorCode": ..., "errorMessage": ...}`.

    `error_code` and `error_message` are None when the body is not that JSON.
    """

    _members = (("errorCode", "error_code"), ("errorMessage", "error_message"))
    _undocumented = "body is not the documented error JSON"

    def __init__(
        self, message: str, *, error_code: str | None = None, error_message: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)
        self.error_code = error_code
        self.error_message = error_message


class FotaResultException(ErrorCodeError, BadRequestError):
    """A 400 from a Software Management callbacks API, with the documented `errorCode`/`errorMessage` body.

    `error_code` and `error_message` are None when the body is not the documented JSON.
    """


class SessionLoginError(ErrorCodeError, AuthenticationError):
    """The M2M session login was refused. `error_code`/`error_message` come from the documented 400 body."""


class FotaV1ResultException(FotaResultException):
    """A 400 from Software Management Callbacks V1."""


class FotaV2ResultException(FotaResultException):
    """A 400 from Software Management Callbacks V2."""


class FotaV3ResultException(FotaResultException):
    """A 400 from Software Management Callbacks V3."""


class OAuthError(_DocumentedBodyError):
    """The OAuth token endpoint refused to issue a token. `error` is the RFC 6749 code."""

    _members = (("error", "error"), ("error_description", "error_description"))
    _undocumented = "no OAuth error in the body"

    def __init__(self, message: str, *, error: str | None, error_description: str | None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.error = error
        self.error_description = error_description


def _str_at(data: object, key: str) -> str | None:
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


_STATUS_CLASSES: Mapping[int, type[ApiError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    429: RateLimitError,
}
_REDACTED = "<redacted>"


def request_id_of(headers: Headers) -> str | None:
    """The request id a response carries, under any of the names ThingSpace and its gateways use."""
    return headers.first(REQUEST_ID_HEADERS)


def redacted(request: Request, *, secret_body: bool = False) -> Request:
    """`request` as errors keep it: credential header values (and a body holding a secret) replaced."""
    pairs = request.headers.raw()
    if any(name.lower() in SECRET_HEADERS for name, _ in pairs):
        pairs = tuple((name, _REDACTED if name.lower() in SECRET_HEADERS else value) for name, value in pairs)
        request = attrs.evolve(request, headers=type(request.headers)(pairs))
    if secret_body and request.content:
        request = attrs.evolve(request, content=_REDACTED.encode())
    return request


def error_from_response(
    where: str,
    request: Request,
    response: Response,
    retries: int,
    *,
    refusal: type[ApiError] | None = None,
    bad_request: type[ApiError] = BadRequestError,
    secret_body: bool = False,
) -> ApiError:
    """The one place an error class is chosen for a non-2xx response.

    `refusal` is used for every status (the token endpoint, the session login); otherwise a 400 is
    `bad_request` (the API version's exception) and the rest map by status.
    """
    status = response.status_code
    if refusal is not None:
        cls = refusal
    elif status == 400:
        cls = bad_request
    else:
        cls = ServerError if status >= 500 else _STATUS_CLASSES.get(status, ApiError)
    error = cls.from_response(
        f"{where} (HTTP {status})" if refusal is not None else f"HTTP {status} from {where}",
        status_code=status,
        headers=response.headers,
        body=response.content,
        request_id=request_id_of(response.headers),
        request=redacted(request, secret_body=secret_body),
    )
    error.retries_taken = retries
    return error
