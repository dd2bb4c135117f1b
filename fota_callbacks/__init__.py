"""Async Python SDK for Verizon ThingSpace Software Management (FOTA) Callbacks V1, V2 and V3.

The names here are the sending half, what a user constructs, catches or annotates: the client, its models and
errors, the transports. The receiving half has its own ways in: `fota_callbacks.callbacks` (the messages),
`fota_callbacks.inbox` and `fota_callbacks.integrations`; `parse_callback_message` and `CallbackMessage` are here too.
"""

import importlib
import warnings
from typing import TYPE_CHECKING, Any

from ._auth import TokenSource
from ._client import FotaCallbacksClient
from ._environments import Environment
from ._errors import (
    ApiConnectionError,
    ApiError,
    ApiTimeoutError,
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    ConflictError,
    FotaError,
    FotaResultException,
    FotaV1ResultException,
    FotaV2ResultException,
    FotaV3ResultException,
    InvalidArgumentError,
    MissingCredentialsError,
    NotFoundError,
    OAuthError,
    PermissionDeniedError,
    RateLimitError,
    ResponseValidationError,
    ServerError,
    SessionLoginError,
)
from ._logconfig import configure_from_environment as _configure_logging
from ._models import EnsureResult
from ._pipeline import ApiResponse, Middleware
from ._retry import RetryPolicy
from ._version import __version__ as __version__
from .transport import (
    AiohttpTransport,
    Httpx2Transport,
    HttpxTransport,
    InMemoryTransport,
    Request,
    Response,
    Transport,
)
from .v1 import (
    CallbackService,
    FotaV1CallbackRegistrationRequest,
    FotaV1CallbackRegistrationResult,
    FotaV1SuccessResult,
    RegisteredCallbacks,
)
from .v2 import (
    CallbackSummary,
    FotaV2CallbackRegistrationRequest,
    FotaV2CallbackRegistrationResult,
    FotaV2SuccessResult,
)
from .v3 import (
    FotaV3CallbackRegistrationRequest,
    FotaV3CallbackRegistrationResult,
    FotaV3CallbackSummary,
    FotaV3SuccessResult,
)

__all__ = [
    "AiohttpTransport",
    "ApiConnectionError",
    "ApiError",
    "ApiResponse",
    "ApiTimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "CallbackMessage",
    "CallbackService",
    "CallbackSummary",
    "ClientClosedError",
    "ConflictError",
    "EnsureResult",
    "Environment",
    "FotaCallbacksClient",
    "FotaError",
    "FotaResultException",
    "FotaV1CallbackRegistrationRequest",
    "FotaV1CallbackRegistrationResult",
    "FotaV1ResultException",
    "FotaV1SuccessResult",
    "FotaV2CallbackRegistrationRequest",
    "FotaV2CallbackRegistrationResult",
    "FotaV2ResultException",
    "FotaV2SuccessResult",
    "FotaV3CallbackRegistrationRequest",
    "FotaV3CallbackRegistrationResult",
    "FotaV3CallbackSummary",
    "FotaV3ResultException",
    "FotaV3SuccessResult",
    "Httpx2Transport",
    "HttpxTransport",
    "InMemoryTransport",
    "InvalidArgumentError",
    "Middleware",
    "MissingCredentialsError",
    "NotFoundError",
    "OAuthError",
    "PermissionDeniedError",
    "RateLimitError",
    "RegisteredCallbacks",
    "Request",
    "Response",
    "ResponseValidationError",
    "RetryPolicy",
    "ServerError",
    "SessionLoginError",
    "TokenSource",
    "Transport",
    "parse_callback_message",
]

_configure_logging()  # FOTA_CALLBACKS_LOG=debug|info|warning: log to stderr with no code

_LAZY = {"CallbackMessage": "callbacks", "parse_callback_message": "callbacks"}
"""Names loaded on first use (PEP 562): the callback models are for listeners, and loading them costs every caller."""

_MOVED = {
    **dict.fromkeys(
        (
            "CallbackMessageType",
            "CallbackParseError",
            "CampaignState",
            "DeviceStatus",
            "Firmware",
            "FirmwareListMessage",
            "UnknownCallbackMessage",
            "UpgradeFinishedMessage",
            "UpgradeProgressMessage",
            "UpgradeSchedule",
            "UpgradeScheduledMessage",
            "UpgradeStatus",
            "VERIZON_CALLBACK_SOURCE_IPS",
        ),
        "fota_callbacks.callbacks",
    ),
    **dict.fromkeys(
        ("Inbox", "InboxEntry", "InboxStats", "InboxUnavailableError", "MemoryInbox", "RedisInbox", "SqliteInbox"),
        "fota_callbacks.inbox",
    ),
    "Headers": "fota_callbacks.transport",
    "SendNext": "fota_callbacks.transport",
    "SoftwareManagementCallbacksV1Controller": "fota_callbacks.v1",
    "SoftwareManagementCallbacksV2Controller": "fota_callbacks.v2",
    "SoftwareManagementCallbacksV3Controller": "fota_callbacks.v3",
}
"""Names that were here in 0.1 and live elsewhere now (where), under the same name; each still works, with a warning."""

_RENAMED = {"InboxHandler": ("fota_callbacks.callbacks", "CallbackHandler")}
"""Names that were here in 0.1 and live elsewhere under another name; each still works, with a warning."""

_GONE = {
    "ErrorCodeError": (
        "fota_callbacks._errors",
        "catch FotaResultException (a 400 from a callbacks API) or SessionLoginError, which carry error_code",
    ),
    "StaticToken": ("fota_callbacks._auth", "pass the token itself as a str (access_token=..., m2m_token=...)"),
}
"""Names that were here in 0.1 and are no longer public: (where they live, what to do instead); each still works,
with a warning."""

if TYPE_CHECKING:  # loaded by `__getattr__` below at run time
    from .callbacks import CallbackMessage as CallbackMessage
    from .callbacks import parse_callback_message as parse_callback_message


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is not None:
        # import_module, not `from . import callbacks`: that form looks the name up here first, and recurses.
        return getattr(importlib.import_module(f"{__name__}.{module}"), name)
    if name in _MOVED or name in _RENAMED:
        where, new_name = _RENAMED.get(name) or (_MOVED[name], name)
        message = f"fota_callbacks.{name} is deprecated: import {new_name} from {where}"
    elif name in _GONE:
        where, new_name = _GONE[name][0], name
        message = f"fota_callbacks.{name} is deprecated and will be removed: {_GONE[name][1]}"
    else:
        raise AttributeError(f"module 'fota_callbacks' has no attribute {name!r}")
    warnings.warn(message, DeprecationWarning, stacklevel=2)
    return getattr(importlib.import_module(where), new_name)
