"""Software Management Callbacks V2: declared, not implemented here (see `_controllers`)."""

from __future__ import annotations

from .._controllers import UrlCallbacksController
from .._errors import FotaV2ResultException
from .._pipeline import ApiVersion
from .models import (
    CallbackSummary,
    FotaV2CallbackRegistrationRequest,
    FotaV2CallbackRegistrationResult,
    FotaV2SuccessResult,
)

__all__ = ["V2", "SoftwareManagementCallbacksV2Controller"]


class SoftwareManagementCallbacksV2Controller(
    UrlCallbacksController[
        CallbackSummary,
        FotaV2CallbackRegistrationRequest,
        FotaV2CallbackRegistrationResult,
        FotaV2SuccessResult,
    ],
    version=ApiVersion("v2", "/api/fota/v2", FotaV2ResultException, callback_url_schemes=("https",)),
):
    """Software Management Callbacks V2 (`client.v2`): one HTTPS callback URL per account."""

    __slots__ = ()


V2 = SoftwareManagementCallbacksV2Controller.api
