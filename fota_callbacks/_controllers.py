"""Controller logic shared by the API versions. Version modules declare endpoints and models only."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, Generic, Literal, TypeVar, get_args

import attrs

from ._constants import ENSURE_ROUNDS
from ._errors import FotaResultException, InvalidArgumentError
from ._models import CallbackUrl, CallbackUrlRequest, EnsureResult, SuccessResult
from ._pipeline import ApiResponse, ApiVersion, Endpoint, Pipeline
from ._validation import check_account, check_callback_url

__all__ = ["UrlCallbacksApi", "UrlCallbacksController", "UrlCallbacksRawController", "check_body", "converge"]

State = Literal["same", "other", "none"]
"""What is registered, compared with what should be: the same, something else, or nothing."""

SummaryT = TypeVar("SummaryT", bound=CallbackUrl)
RequestT = TypeVar("RequestT", bound=CallbackUrlRequest)
ResultT = TypeVar("ResultT")
SuccessT = TypeVar("SuccessT", bound=SuccessResult)
M = TypeVar("M")


def check_body(body: object, expected: type[M]) -> M:
    if not isinstance(body, expected):
        raise InvalidArgumentError("body", f"expected a {expected.__name__}, got {type(body).__name__}")
    return body


async def converge(
    url: str,
    *,
    current: Callable[[], Awaitable[State]],
    register: Callable[[], Awaitable[object]],
    update: Callable[[], Awaitable[object]],
    refused: type[FotaResultException],
) -> EnsureResult:
    """Make the registration read `url`: look, then register (nothing there) or update (something else).

    A write refused with the version's 400 while the registration changed under us (another caller registered
    or removed it meanwhile) is followed by another look; a refusal with nothing changed is raised.
    """
    last: tuple[State, FotaResultException] | None = None
    for _ in range(ENSURE_ROUNDS):
        state = await current()
        if last is not None and last[0] == state:
            raise last[1]
        if state == "same":
            return EnsureResult("unchanged", url)
        try:
            await (register() if state == "none" else update())
        except refused as exc:
            last = (state, exc)
            continue
        return EnsureResult("registered" if state == "none" else "updated", url)
    assert last is not None
    raise last[1]


@attrs.frozen
class UrlCallbacksApi(Generic[SummaryT, RequestT, ResultT, SuccessT]):
    """A callbacks API of the V2 shape: one HTTPS callback URL per account, four operations on
    `callbacks/{account}`. V2 and V3 are two declarations of it."""

    version: ApiVersion
    request: type[RequestT]
    list: Endpoint[SummaryT]
    update: Endpoint[ResultT]
    register: Endpoint[ResultT]
    deregister: Endpoint[SuccessT]

    @classmethod
    def declare(
        cls,
        version: ApiVersion,
        *,
        request: type[RequestT],
        summary: type[SummaryT],
        result: type[ResultT],
        success: type[SuccessT],
    ) -> UrlCallbacksApi[SummaryT, RequestT, ResultT, SuccessT]:
        path = "callbacks/{account}"
        return cls(
            version,
            request,
            # Verizon documents an empty list body for "nothing registered" (V1, V3; V2 taken to be the same).
            Endpoint(version, "list_registered_callbacks", "GET", path, summary, empty=summary),
            Endpoint(version, "update_callback", "PUT", path, result),
            Endpoint(version, "register_callback", "POST", path, result),
            Endpoint(
                version, "deregister_callback", "DELETE", path, success, gone=functools.partial(success, success=True)
            ),
        )


class UrlCallbacksRawController(Generic[SummaryT, RequestT, ResultT, SuccessT]):
    """The V2/V3 operations returning `ApiResponse` (status, headers, request id, retries) around the model."""

    __slots__ = ("_api", "_pipeline")

    def __init__(self, pipeline: Pipeline, api: UrlCallbacksApi[SummaryT, RequestT, ResultT, SuccessT]) -> None:
        self._pipeline = pipeline
        self._api = api

    def _body(self, body: object) -> RequestT:
        checked = check_body(body, self._api.request)
        check_callback_url(checked.url, self._api.version.callback_url_schemes)
        return checked

    async def list_registered_callbacks(self, account: str) -> ApiResponse[SummaryT]:
        """The callback URL registered for `account` (`url` None when none is: an empty body, or `{}`)."""
        return await self._pipeline.call(self._api.list, (check_account(account),))

    async def register_callback(self, account: str, body: RequestT) -> ApiResponse[ResultT]:
        """Register the HTTPS callback URL in `body` for `account`."""
        return await self._pipeline.call(self._api.register, (check_account(account),), self._body(body))

    async def update_callback(self, account: str, body: RequestT) -> ApiResponse[ResultT]:
        """Replace the callback URL registered for `account` with the one in `body`."""
        return await self._pipeline.call(self._api.update, (check_account(account),), self._body(body))

    async def deregister_callback(self, account: str) -> ApiResponse[SuccessT]:
        """Remove the callback registered for `account`."""
        return await self._pipeline.call(self._api.deregister, (check_account(account),))


class UrlCallbacksController(Generic[SummaryT, RequestT, ResultT, SuccessT]):
    """The V2/V3 operations. Each returns the parsed model; `with_raw_response` has the same methods
    returning `ApiResponse`."""

    api: ClassVar[UrlCallbacksApi[Any, Any, Any, Any]]
    __slots__ = ("with_raw_response",)

    def __init_subclass__(cls, *, version: ApiVersion, **kwargs: Any) -> None:
        """Declare the subclass's API from `version` and the models it names as type arguments, in the order
        `UrlCallbacksController[summary, request, result, success]`: each is written once, where mypy reads it."""
        super().__init_subclass__(**kwargs)
        summary, request, result, success = get_args(cls.__orig_bases__[0])  # type: ignore[attr-defined]
        cls.api = UrlCallbacksApi.declare(version, request=request, summary=summary, result=result, success=success)

    def __init__(self, pipeline: Pipeline) -> None:
        self.with_raw_response: UrlCallbacksRawController[SummaryT, RequestT, ResultT, SuccessT] = (
            UrlCallbacksRawController(pipeline, self.api)
        )
        """The same operations, each returning an `ApiResponse` (status, headers, request id, retries) whose `data`
        is what the operation returns here."""

    # The same checks as `with_raw_response`'s methods, through `Pipeline.data`: no ApiResponse to discard.

    async def list_registered_callbacks(self, account: str) -> SummaryT:
        """The callback URL registered for `account` (`url` None when none is: an empty body, or `{}`)."""
        raw = self.with_raw_response
        return await raw._pipeline.data(raw._api.list, (check_account(account),))

    async def register_callback(self, account: str, body: RequestT) -> ResultT:
        """Register the HTTPS callback URL in `body` for `account`."""
        raw = self.with_raw_response
        return await raw._pipeline.data(raw._api.register, (check_account(account),), raw._body(body))

    async def update_callback(self, account: str, body: RequestT) -> ResultT:
        """Replace the callback URL registered for `account` with the one in `body`."""
        raw = self.with_raw_response
        return await raw._pipeline.data(raw._api.update, (check_account(account),), raw._body(body))

    async def deregister_callback(self, account: str) -> SuccessT:
        """Remove the callback registered for `account`."""
        raw = self.with_raw_response
        return await raw._pipeline.data(raw._api.deregister, (check_account(account),))

    async def ensure_callback(self, account: str, body: RequestT) -> EnsureResult:
        """Make `account`'s callback URL the one in `body`, whatever other callers do meanwhile.

        Lists first: the same URL is left alone (`"unchanged"`), none is registered (`"registered"`), another
        is updated (`"updated"`). Input checks and errors are those of register/update.
        """
        raw = self.with_raw_response
        account, checked = check_account(account), raw._body(body)

        async def current() -> State:
            listed = (await raw.list_registered_callbacks(account)).data.url
            return "none" if listed is None else "same" if listed == checked.url else "other"

        return await converge(
            checked.url,
            current=current,
            register=lambda: raw.register_callback(account, checked),
            update=lambda: raw.update_callback(account, checked),
            refused=raw._api.version.error,
        )
