"""Async Python SDK for Verizon ThingSpace Software Management (FOTA) Callbacks V1, V2 and V3."""

import importlib
from typing import TYPE_CHECKING, Any

from ._auth import StaticToken, TokenSource
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
    ErrorCodeError,
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
from ._models import EnsureResult
from ._pipeline import ApiResponse, Middleware, SendNext
from ._retry import RetryPolicy
from ._version import __version__
from .transport import (
    AiohttpTransport,
    Headers,
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
    SoftwareManagementCallbacksV1Controller,
)
from .v2 import (
    CallbackSummary,
    FotaV2CallbackRegistrationRequest,
    FotaV2CallbackRegistrationResult,
    FotaV2SuccessResult,
    SoftwareManagementCallbacksV2Controller,
)
from .v3 import (
    FotaV3CallbackRegistrationRequest,
    FotaV3CallbackRegistrationResult,
    FotaV3CallbackSummary,
    FotaV3SuccessResult,
    SoftwareManagementCallbacksV3Controller,
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
    "CallbackMessageType",
    "CallbackParseError",
    "CallbackService",
    "CallbackSummary",
    "CampaignState",
    "ClientClosedError",
    "ConflictError",
    "DeviceStatus",
    "EnsureResult",
    "Environment",
    "ErrorCodeError",
    "Firmware",
    "FirmwareListMessage",
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
    "Headers",
    "Httpx2Transport",
    "HttpxTransport",
    "InMemoryTransport",
    "Inbox",
    "InboxEntry",
    "InboxHandler",
    "InboxStats",
    "InboxUnavailableError",
    "InvalidArgumentError",
    "MemoryInbox",
    "Middleware",
    "MissingCredentialsError",
    "NotFoundError",
    "OAuthError",
    "PermissionDeniedError",
    "RateLimitError",
    "RedisInbox",
    "RegisteredCallbacks",
    "Request",
    "Response",
    "ResponseValidationError",
    "RetryPolicy",
    "SendNext",
    "ServerError",
    "SessionLoginError",
    "SoftwareManagementCallbacksV1Controller",
    "SoftwareManagementCallbacksV2Controller",
    "SoftwareManagementCallbacksV3Controller",
    "SqliteInbox",
    "StaticToken",
    "TokenSource",
    "Transport",
    "UnknownCallbackMessage",
    "UpgradeFinishedMessage",
    "UpgradeProgressMessage",
    "UpgradeSchedule",
    "UpgradeScheduledMessage",
    "UpgradeStatus",
    "VERIZON_CALLBACK_SOURCE_IPS",
    "parse_callback_message",
    "__version__",
]

if TYPE_CHECKING:  # at run time, `__getattr__` below loads them
    from .callbacks import *
    from .inbox import *


# The callback-message models and the inbox are for listeners, not for every caller: the names of theirs that
# `__all__` lists are loaded on first use (PEP 562), which keeps `import fota_callbacks` cheaper.
def __getattr__(name: str) -> Any:
    if name in __all__:
        for module in ("callbacks", "inbox"):
            # import_module, not `from . import callbacks`: that form looks the name up here first, and recurses.
            loaded = importlib.import_module(f"{__name__}.{module}")
            if name in loaded.__all__:
                return getattr(loaded, name)
    raise AttributeError(f"module 'fota_callbacks' has no attribute {name!r}")
