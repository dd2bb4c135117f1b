"""Software Management Callbacks V2 models."""

from __future__ import annotations

from .._models import CallbackUrl, CallbackUrlRequest, SuccessResult, model

__all__ = [
    "CallbackSummary",
    "FotaV2CallbackRegistrationRequest",
    "FotaV2CallbackRegistrationResult",
    "FotaV2SuccessResult",
]


@model
class FotaV2CallbackRegistrationRequest(CallbackUrlRequest):
    """The HTTPS callback address to register (or update to) for an account."""


@model
class CallbackSummary(CallbackUrl):
    """The callback address registered for an account (`url` is None when the service omits it)."""


@model
class FotaV2CallbackRegistrationResult(CallbackUrl):
    """The callback address now registered."""


@model
class FotaV2SuccessResult(SuccessResult):
    """The outcome of a deregistration."""
