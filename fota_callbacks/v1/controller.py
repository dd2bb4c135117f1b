"""Software Management Callbacks V1: named callback registrations, list / register / deregister."""

from __future__ import annotations

from .._controllers import State, check_body, converge
from .._errors import FotaV1ResultException
from .._models import EnsureResult
from .._pipeline import ApiResponse, ApiVersion, Endpoint, Pipeline
from .._validation import check_account, check_callback_url, check_enum, check_optional_str
from .models import (
    CallbackService,
    FotaV1CallbackRegistrationRequest,
    FotaV1CallbackRegistrationResult,
    FotaV1SuccessResult,
    RegisteredCallbacks,
)

__all__ = ["V1", "SoftwareManagementCallbacksV1Controller", "SoftwareManagementCallbacksV1RawController"]

V1 = ApiVersion("v1", "/api/fota/v1", FotaV1ResultException, callback_url_schemes=("http", "https"))

LIST: Endpoint[list[RegisteredCallbacks]] = Endpoint(
    V1, "list_registered_callbacks", "GET", "callbacks/{account}", list[RegisteredCallbacks], empty=list
)
REGISTER: Endpoint[FotaV1CallbackRegistrationResult] = Endpoint(
    V1, "register_callback", "POST", "callbacks/{account}", FotaV1CallbackRegistrationResult
)
DEREGISTER: Endpoint[FotaV1SuccessResult] = Endpoint(
    V1,
    "deregister_callback",
    "DELETE",
    "callbacks/{account}/name/{service}",
    FotaV1SuccessResult,
    gone=lambda: FotaV1SuccessResult(success=True),
)


def _check_registration(body: object) -> FotaV1CallbackRegistrationRequest:
    checked = check_body(body, FotaV1CallbackRegistrationRequest)
    check_enum(checked.name, CallbackService, "body.name")
    check_callback_url(checked.url, V1.callback_url_schemes)
    check_optional_str(checked.username, "body.username")
    check_optional_str(checked.password, "body.password")
    return checked


class SoftwareManagementCallbacksV1RawController:
    """The V1 operations returning `ApiResponse` (status, headers, request id, retries) around the model."""

    __slots__ = ("_pipeline",)

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline

    async def list_registered_callbacks(self, account: str) -> ApiResponse[list[RegisteredCallbacks]]:
        """The callbacks registered for `account` (an empty list when there are none)."""
        return await self._pipeline.call(LIST, (check_account(account),))

    async def register_callback(
        self, account: str, body: FotaV1CallbackRegistrationRequest
    ) -> ApiResponse[FotaV1CallbackRegistrationResult]:
        """Register the callback URL in `body` (http:// or https://) for `account`."""
        return await self._pipeline.call(REGISTER, (check_account(account),), _check_registration(body))

    async def deregister_callback(
        self, account: str, service: CallbackService = CallbackService.FOTA
    ) -> ApiResponse[FotaV1SuccessResult]:
        """Remove the callback registered for `account` and `service`."""
        name = check_enum(service, CallbackService, "service").value
        return await self._pipeline.call(DEREGISTER, (check_account(account), name))


class SoftwareManagementCallbacksV1Controller:
    """Software Management Callbacks V1 (`client.v1`): named callbacks, http:// or https://, with optional
    basic-auth credentials that ThingSpace echoes in every message."""

    __slots__ = ("_pipeline", "with_raw_response")

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline
        self.with_raw_response = SoftwareManagementCallbacksV1RawController(pipeline)
        """The same operations, each returning an `ApiResponse` (status, headers, request id, retries) whose `data`
        is what the operation returns here."""

    # The same checks as `with_raw_response`'s methods, through `Pipeline.data`: no ApiResponse to discard.

    async def list_registered_callbacks(self, account: str) -> list[RegisteredCallbacks]:
        """The callbacks registered for `account` (an empty list when there are none)."""
        return await self._pipeline.data(LIST, (check_account(account),))

    async def register_callback(
        self, account: str, body: FotaV1CallbackRegistrationRequest
    ) -> FotaV1CallbackRegistrationResult:
        """Register the callback URL in `body` (http:// or https://) for `account`."""
        return await self._pipeline.data(REGISTER, (check_account(account),), _check_registration(body))

    async def deregister_callback(
        self, account: str, service: CallbackService = CallbackService.FOTA
    ) -> FotaV1SuccessResult:
        """Remove the callback registered for `account` and `service`."""
        name = check_enum(service, CallbackService, "service").value
        return await self._pipeline.data(DEREGISTER, (check_account(account), name))

    async def ensure_callback(
        self, account: str, body: FotaV1CallbackRegistrationRequest, *, force: bool = False
    ) -> EnsureResult:
        """Make `account`'s callback for `body.name` the one in `body`, whatever other callers do meanwhile.

        Registers when the service is not listed (`"registered"`) or is listed with another URL or username
        (`"updated"`); leaves it alone otherwise (`"unchanged"`). The password is not listed back: `force=True`
        registers regardless, without listing. Input checks and errors are those of `register_callback`.
        """
        raw = self.with_raw_response
        account, checked = check_account(account), _check_registration(body)
        service = check_enum(checked.name, CallbackService, "body.name").value
        if force:
            await raw.register_callback(account, checked)
            return EnsureResult("registered", checked.url)

        async def current() -> State:
            listed = (await raw.list_registered_callbacks(account)).data
            found = [entry for entry in listed if entry.name == service]
            if not found:
                return "none"
            same = any(entry.url == checked.url and entry.username == checked.username for entry in found)
            return "same" if same else "other"

        async def register() -> object:
            return await raw.register_callback(account, checked)

        return await converge(
            checked.url, current=current, register=register, update=register, refused=FotaV1ResultException
        )
