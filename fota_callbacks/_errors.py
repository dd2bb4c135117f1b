"""The exception hierarchy. Every error the SDK raises is a `FotaError`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from typing_extensions import Self

    from .transport.base import Headers, Request

__all__ = [
    "ApiConnectionError",
    "ApiError",
    "ApiTimeoutError",
    "AuthenticationError",
    "BadRequestError",
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

    def __init__(self, *, status_code: int, body: bytes, errors: list[str]) -> None:
        super().__init__(f"unexpected response body (HTTP {status_code}): {'; '.join(errors)}")
        self.status_code = status_code
        self.body = body
        self.errors = errors


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

    def json(self) -> Any:
        """The body parsed as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError):
            return None


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


class ServerError(ApiError):
    """HTTP 5xx."""


class ErrorCodeError(ApiError):
    """An `ApiError` whose body is ThingSpace's documented `{"errorCode": ..., "errorMessage": ...}`.

    `error_code` and `error_message` are None when the body is not that JSON.
    """

    def __init__(
        self, message: str, *, error_code: str | None = None, error_message: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)
        self.error_code = error_code
        self.error_message = error_message

    @classmethod
    def from_response(cls, where: str, *, body: bytes, **kwargs: Any) -> Self:
        """Read the documented `{"errorCode", "errorMessage"}` body; any other body leaves both None."""
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            data = None
        code = message = None
        if isinstance(data, dict):
            code = data.get("errorCode") if isinstance(data.get("errorCode"), str) else None
            message = data.get("errorMessage") if isinstance(data.get("errorMessage"), str) else None
        detail = ": ".join(part for part in (code, message) if part) or "body is not the documented error JSON"
        return cls(f"{where}: {detail}", error_code=code, error_message=message, body=body, **kwargs)


class FotaResultException(ErrorCodeError, BadRequestError):
    """A 400 from a Software Management callbacks API, with the documented `errorCode`/`errorMessage` body.

    `error_code` and `error_message` are None when the body is not the documented JSON.
    """

    version: ClassVar[str] = ""


class SessionLoginError(ErrorCodeError, AuthenticationError):
    """The M2M session login was refused. `error_code`/`error_message` come from the documented 400 body."""


class FotaV1ResultException(FotaResultException):
    """A 400 from Software Management Callbacks V1."""

    version = "v1"


class FotaV2ResultException(FotaResultException):
    """A 400 from Software Management Callbacks V2."""

    version = "v2"


class FotaV3ResultException(FotaResultException):
    """A 400 from Software Management Callbacks V3."""

    version = "v3"


class OAuthError(ApiError):
    """The OAuth token endpoint refused to issue a token. `error` is the RFC 6749 code."""

    def __init__(self, message: str, *, error: str | None, error_description: str | None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.error = error
        self.error_description = error_description


_STATUS_CLASSES: Mapping[int, type[ApiError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    429: RateLimitError,
}


def error_class_for_status(status_code: int) -> type[ApiError]:
    """The `ApiError` subclass for a non-2xx status (the 400 of an API version is chosen by the caller)."""
    if status_code >= 500:
        return ServerError
    return _STATUS_CLASSES.get(status_code, ApiError)
