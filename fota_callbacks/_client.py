"""FotaCallbacksClient: configuration, credentials, controllers and lifecycle."""

from __future__ import annotations

import copy
import enum
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Literal

import anyio
import attrs

from ._auth import TokenSource
from ._constants import DEFAULT_TIMEOUT, LOGOUT_TIMEOUT
from ._credentials import env, resolve_credentials
from ._environments import Environment, resolve_root
from ._errors import InvalidArgumentError
from ._pipeline import CallOptions, Middleware, Pipeline, Shared, Sleep, stack
from ._retry import RetryPolicy
from ._telemetry import ClientTelemetry
from ._validation import non_negative_int, positive_seconds
from .transport.base import Transport
from .transport.httpx import HttpxTransport
from .v1.controller import SoftwareManagementCallbacksV1Controller
from .v2.controller import SoftwareManagementCallbacksV2Controller
from .v3.controller import SoftwareManagementCallbacksV3Controller

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

__all__ = ["NOT_GIVEN", "FotaCallbacksClient", "NotGiven"]


class NotGiven(enum.Enum):
    """The type of `NOT_GIVEN`: "keep this client's value", where None would mean "no limit"."""

    NOT_GIVEN = "NOT_GIVEN"

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN: Literal[NotGiven.NOT_GIVEN] = NotGiven.NOT_GIVEN


_DEFAULT_OPTIONS = CallOptions(timeout=DEFAULT_TIMEOUT, retry=RetryPolicy())


def _options(
    base: CallOptions,
    *,
    timeout: float | NotGiven | None,
    max_retries: int | NotGiven | None,
    retry_policy: RetryPolicy | NotGiven | None,
    deadline: float | NotGiven | None,
) -> CallOptions:
    """Checked call options: each one given replaces `base`'s (None for `max_retries`/`retry_policy`: keep)."""
    retry = base.retry
    if not isinstance(retry_policy, NotGiven) and retry_policy is not None:
        if not isinstance(retry_policy, RetryPolicy):
            raise InvalidArgumentError("retry_policy", f"expected a RetryPolicy, got {type(retry_policy).__name__}")
        retry = retry_policy
    if not isinstance(max_retries, NotGiven) and max_retries is not None:
        retry = attrs.evolve(retry, max_retries=non_negative_int(max_retries, "max_retries"))
    return CallOptions(
        timeout=base.timeout if isinstance(timeout, NotGiven) else positive_seconds(timeout, "timeout"),
        retry=retry,
        deadline=base.deadline if isinstance(deadline, NotGiven) else positive_seconds(deadline, "deadline"),
    )


class FotaCallbacksClient:
    """The async client for ThingSpace Software Management Callbacks V1, V2 and V3.

    Credentials not passed are read from `THINGSPACE_CLIENT_ID`, `THINGSPACE_CLIENT_SECRET`,
    `THINGSPACE_M2M_TOKEN`, `THINGSPACE_USERNAME`, `THINGSPACE_PASSWORD`; `THINGSPACE_BASE_URL` replaces the
    environment's root. The bearer token comes from `access_token` (a str or a `TokenSource`) or from OAuth
    client credentials (`client_id` + `client_secret`); the M2M session token from `m2m_token` (a str or a
    `TokenSource`) or from logging in with `username` + `password`. A missing credential raises
    `MissingCredentialsError` here, before anything is sent.

    With OpenTelemetry's API installed, each operation is a span, each HTTP attempt (token and session requests
    included) a CLIENT span and a `http.client.request.duration` measurement, reported through
    `tracer_provider` / `meter_provider`, or the global providers when not given (see the README, Observability).

    Make one client and share it between tasks; close it with `aclose()` or `async with`.
    """

    def __init__(
        self,
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        access_token: str | TokenSource | None = None,
        m2m_token: str | TokenSource | None = None,
        username: str | None = None,
        password: str | None = None,
        scopes: Sequence[str] = (),
        environment: Environment | str = Environment.PRODUCTION,
        base_url: str | None = None,
        transport: Transport | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        max_retries: int | None = None,
        retry_policy: RetryPolicy | None = None,
        deadline: float | None = None,
        middleware: Sequence[Middleware] = (),
        logout_on_close: bool = False,
        sleep: Sleep = anyio.sleep,
        clock: Callable[[], float] = time.monotonic,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        root = resolve_root(environment, base_url if base_url is not None else env("THINGSPACE_BASE_URL"))
        telemetry = ClientTelemetry(tracer_provider, meter_provider, root)
        options = _options(
            _DEFAULT_OPTIONS, timeout=timeout, max_retries=max_retries, retry_policy=retry_policy, deadline=deadline
        )
        if transport is not None and not isinstance(transport, Transport):
            raise InvalidArgumentError("transport", f"expected a Transport, got {type(transport).__name__}")
        for layer in middleware:
            if not callable(layer):
                raise InvalidArgumentError("middleware", f"expected async callables, got {type(layer).__name__}")
        # Everything about credentials is decided before a transport (and its connection pool) exists.
        auth = resolve_credentials(
            root,
            client_id=client_id,
            client_secret=client_secret,
            access_token=access_token,
            m2m_token=m2m_token,
            username=username,
            password=password,
            scopes=scopes,
            clock=clock,
        )
        transport = transport if transport is not None else HttpxTransport()
        shared = Shared(
            root=root,
            transport=transport,
            send=stack(transport, middleware),
            auth=auth,
            sleep=sleep,
            clock=clock,
            telemetry=telemetry,
        )
        self._logout_on_close = logout_on_close
        self._attach(Pipeline(shared, options), owner=True)

    def _attach(self, pipeline: Pipeline, *, owner: bool) -> None:
        self._pipeline = pipeline
        self._owner = owner  # only the client that made the transport closes it
        self._v1 = SoftwareManagementCallbacksV1Controller(pipeline)
        self._v2 = SoftwareManagementCallbacksV2Controller(pipeline)
        self._v3 = SoftwareManagementCallbacksV3Controller(pipeline)

    @property
    def v1(self) -> SoftwareManagementCallbacksV1Controller:
        """Software Management Callbacks V1."""
        return self._v1

    @property
    def v2(self) -> SoftwareManagementCallbacksV2Controller:
        """Software Management Callbacks V2."""
        return self._v2

    @property
    def v3(self) -> SoftwareManagementCallbacksV3Controller:
        """Software Management Callbacks V3."""
        return self._v3

    software_management_callbacks_v1 = v1
    software_management_callbacks_v2 = v2
    software_management_callbacks_v3 = v3

    @property
    def base_url(self) -> str:
        """The root every API path hangs off."""
        return self._pipeline.shared.root

    @property
    def timeout(self) -> float | None:
        """Seconds allowed for each attempt as a whole, from sending to the last body byte (None: no limit)."""
        return self._pipeline.options.timeout

    @property
    def max_retries(self) -> int:
        """Retries after a failed attempt."""
        return self._pipeline.options.retry.max_retries

    @property
    def retry_policy(self) -> RetryPolicy:
        """Which failures are retried and how long to wait."""
        return self._pipeline.options.retry

    @property
    def deadline(self) -> float | None:
        """Seconds allowed for a whole call, retries included (None: no limit)."""
        return self._pipeline.options.deadline

    @property
    def transport(self) -> Transport:
        """The transport requests go through."""
        return self._pipeline.shared.transport

    def with_options(
        self,
        *,
        timeout: float | NotGiven | None = NOT_GIVEN,
        max_retries: int | NotGiven = NOT_GIVEN,
        retry_policy: RetryPolicy | NotGiven = NOT_GIVEN,
        deadline: float | NotGiven | None = NOT_GIVEN,
    ) -> FotaCallbacksClient:
        """A client with other call options that shares this one's transport and credentials.

        The options apply to every request its calls make, token and session-login requests included.
        It never closes what it shares: closing it is a no-op, and it stops working when this client is closed.
        """
        options = _options(
            self._pipeline.options,
            timeout=timeout,
            max_retries=max_retries,
            retry_policy=retry_policy,
            deadline=deadline,
        )
        clone = copy.copy(self)
        clone._attach(self._pipeline.with_options(options), owner=False)
        return clone

    async def aclose(self) -> None:
        """Close the transport (and log the M2M session out, with `logout_on_close`). Safe to call twice."""
        shared = self._pipeline.shared
        if not self._owner or shared.closed:
            return
        with anyio.CancelScope(shield=True):
            try:
                session = shared.auth.session
                if self._logout_on_close and session is not None:
                    # Best effort, and bounded: closing must not hang on an unresponsive logout endpoint.
                    with anyio.move_on_after(LOGOUT_TIMEOUT):
                        await session.logout(self._pipeline.exchange)
            finally:
                shared.closed = True
                await shared.transport.aclose()

    async def __aenter__(self) -> FotaCallbacksClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        if "_pipeline" not in self.__dict__:  # __init__ refused its arguments
            return "FotaCallbacksClient(<not initialised>)"
        return f"FotaCallbacksClient(base_url={self.base_url!r}, auth={self._pipeline.shared.auth!r})"
