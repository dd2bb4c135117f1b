"""Software Management Callbacks V1: models and controller."""

from .controller import SoftwareManagementCallbacksV1Controller
from .models import (
    CallbackService,
    FotaV1CallbackRegistrationRequest,
    FotaV1CallbackRegistrationResult,
    FotaV1SuccessResult,
    RegisteredCallbacks,
)

__all__ = [
    "CallbackService",
    "FotaV1CallbackRegistrationRequest",
    "FotaV1CallbackRegistrationResult",
    "FotaV1SuccessResult",
    "RegisteredCallbacks",
    "SoftwareManagementCallbacksV1Controller",
]
