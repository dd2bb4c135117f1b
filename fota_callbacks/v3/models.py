"""Software Management Callbacks V3 models."""

from __future__ import annotations

from .._models import CallbackUrl, CallbackUrlRequest, SuccessResult, model

__all__ = [
    "FotaV3CallbackRegistrationRequest",
    "FotaV3CallbackRegistrationResult",
    "FotaV3CallbackSummary",
    "FotaV3SuccessResult",
]


@model
class FotaV3CallbackRegistrationRequest(CallbackUrlRequest):
    """The HTTPS callback address to register (or update to) for an account."""


@model
class FotaV3CallbackSummary(CallbackUrl):
    """The callback address registered for an account (`url` is None when the service omits it)."""


@model
class FotaV3CallbackRegistrationResult(CallbackUrl):
    """The callback address now registered."""


@model
class FotaV3SuccessResult(SuccessResult):
    """The outcome of a deregistration."""
