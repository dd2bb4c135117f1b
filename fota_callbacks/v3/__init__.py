"""Software Management Callbacks V3: models and controller."""

from .controller import SoftwareManagementCallbacksV3Controller
from .models import (
    FotaV3CallbackRegistrationRequest,
    FotaV3CallbackRegistrationResult,
    FotaV3CallbackSummary,
    FotaV3SuccessResult,
)

__all__ = [
    "FotaV3CallbackRegistrationRequest",
    "FotaV3CallbackRegistrationResult",
    "FotaV3CallbackSummary",
    "FotaV3SuccessResult",
    "SoftwareManagementCallbacksV3Controller",
]
