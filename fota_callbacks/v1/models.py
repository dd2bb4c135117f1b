"""Software Management Callbacks V1 models."""

from __future__ import annotations

from .._models import WireEnum, model, secret_field

__all__ = [
    "CallbackService",
    "FotaV1CallbackRegistrationRequest",
    "FotaV1CallbackRegistrationResult",
    "FotaV1SuccessResult",
    "RegisteredCallbacks",
]


class CallbackService(WireEnum):
    """The service a V1 callback is registered for. ThingSpace documents only `Fota`."""

    FOTA = "Fota"


@model
class FotaV1CallbackRegistrationRequest:
    """Register `url` (http:// or https://) for `name`; `username`/`password` are echoed in every message."""

    name: CallbackService
    url: str
    username: str | None = None
    password: str | None = secret_field()


@model
class RegisteredCallbacks:
    """One registered V1 callback. `aname` is the billing account."""

    aname: str | None = None
    name: str | None = None
    url: str | None = None
    username: str | None = None
    password: str | None = secret_field()


@model
class FotaV1CallbackRegistrationResult:
    """The account and service a V1 callback was registered for."""

    account_name: str | None = None
    service_name: str | None = None


@model
class FotaV1SuccessResult:
    """The outcome of a V1 deregistration."""

    success: bool | None = None
