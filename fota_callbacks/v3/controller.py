"""Software Management Callbacks V3: declared, not implemented here (see `_controllers`)."""

from __future__ import annotations

from .._controllers import UrlCallbacksApi, UrlCallbacksController
from .._errors import FotaV3ResultException
from .._pipeline import ApiVersion
from .models import (
    FotaV3CallbackRegistrationRequest,
    FotaV3CallbackRegistrationResult,
    FotaV3CallbackSummary,
    FotaV3SuccessResult,
)

__all__ = ["V3", "SoftwareManagementCallbacksV3Controller"]

V3 = UrlCallbacksApi.declare(
    ApiVersion("v3", "/api/fota/v3", FotaV3ResultException, callback_url_schemes=("https",)),
    request=FotaV3CallbackRegistrationRequest,
    summary=FotaV3CallbackSummary,
    result=FotaV3CallbackRegistrationResult,
    success=FotaV3SuccessResult,
)


class SoftwareManagementCallbacksV3Controller(
    UrlCallbacksController[
        FotaV3CallbackSummary,
        FotaV3CallbackRegistrationRequest,
        FotaV3CallbackRegistrationResult,
        FotaV3SuccessResult,
    ]
):
    """Software Management Callbacks V3 (`client.v3`): one HTTPS callback URL per account.

    Verizon's V3 SDK names the account parameter `acc`; on the wire it is the same path segment.
    """

    api = V3
    __slots__ = ()
