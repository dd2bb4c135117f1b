"""Software Management Callbacks V2: declared, not implemented here (see `_controllers`)."""

from __future__ import annotations

from .._controllers import UrlCallbacksApi, UrlCallbacksController
from .._errors import FotaV2ResultException
from .._pipeline import ApiVersion
from .models import (
    CallbackSummary,
    FotaV2CallbackRegistrationRequest,
    FotaV2CallbackRegistrationResult,
    FotaV2SuccessResult,
)

__all__ = ["V2", "SoftwareManagementCallbacksV2Controller"]

V2 = UrlCallbacksApi.declare(
    ApiVersion("v2", "/api/fota/v2", FotaV2ResultException, callback_url_schemes=("https",)),
    request=FotaV2CallbackRegistrationRequest,
    summary=CallbackSummary,
    result=FotaV2CallbackRegistrationResult,
    success=FotaV2SuccessResult,
)


class SoftwareManagementCallbacksV2Controller(
    UrlCallbacksController[
        CallbackSummary,
        FotaV2CallbackRegistrationRequest,
        FotaV2CallbackRegistrationResult,
        FotaV2SuccessResult,
    ]
):
    """Software Management Callbacks V2 (`client.v2`): one HTTPS callback URL per account."""

    api = V2
    __slots__ = ()
