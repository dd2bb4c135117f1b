"""Software Management Callbacks V3: declared, not implemented here (see `_controllers`)."""

from __future__ import annotations

from .._controllers import UrlCallbacksController
from .._errors import FotaV3ResultException
from .._pipeline import ApiVersion
from .models import (
    FotaV3CallbackRegistrationRequest,
    FotaV3CallbackRegistrationResult,
    FotaV3CallbackSummary,
    FotaV3SuccessResult,
)

__all__ = ["V3", "SoftwareManagementCallbacksV3Controller"]


class SoftwareManagementCallbacksV3Controller(
    UrlCallbacksController[
        FotaV3CallbackSummary,
        FotaV3CallbackRegistrationRequest,
        FotaV3CallbackRegistrationResult,
        FotaV3SuccessResult,
    ],
    version=ApiVersion("v3", "/api/fota/v3", FotaV3ResultException, callback_url_schemes=("https",)),
):
    """Software Management Callbacks V3 (`client.v3`): one HTTPS callback URL per account.

    Verizon's V3 SDK names the account parameter `acc`; on the wire it is the same path segment.
    """

    __slots__ = ()


V3 = SoftwareManagementCallbacksV3Controller.api
