"""Software Management Callbacks V2: models and controller."""

from .controller import SoftwareManagementCallbacksV2Controller
from .models import (
    CallbackSummary,
    FotaV2CallbackRegistrationRequest,
    FotaV2CallbackRegistrationResult,
    FotaV2SuccessResult,
)

__all__ = [
    "CallbackSummary",
    "FotaV2CallbackRegistrationRequest",
    "FotaV2CallbackRegistrationResult",
    "FotaV2SuccessResult",
    "SoftwareManagementCallbacksV2Controller",
]
