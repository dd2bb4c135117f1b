"""FotaCallbacksClient: configuration, credentials, controllers and lifecycle."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

import anyio
import attrs

from ._auth import Auth, M2MSessionLogin, OAuthClientCredentials, StaticToken, TokenSource
from ._constants import DEFAULT_TIMEOUT, LOGOUT_TIMEOUT
from ._environments import M2M_LOGIN_PATH, M2M_LOGOUT_PATH, OAUTH_TOKEN_PATH, Environment, resolve_root
from ._errors import InvalidArgumentError, MissingCredentialsError
from ._pipeline import CallOptions, Middleware, Pipeline, Sleep
from ._retry import RetryPolicy
from .transport.base import Transport
from .transport.httpx import HttpxTransport
from .v1.controller import SoftwareManagementCallbacksV1Controller
from .v2.controller import SoftwareManagementCallbacksV2Controller
from .v3.controller import SoftwareManagementCallbacksV3Controller

__all__ = ["FotaCallbacksClient"]


class _NotGiven:
    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN: Any = _NotGiven()


def _env(name: str) -> str | None:
    return os.environ.get(name) or None  # an empty variable counts as unset


def _check_timeout(value: object, parameter: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise InvalidArgumentError(parameter, f"expected a positive number of seconds or None, got {value!r}")
    return float(value)


def _retry_policy(max_retries: object, policy: RetryPolicy | None) -> RetryPolicy:
    if policy is not None and not isinstance(policy, RetryPolicy):
        raise InvalidArgumentError("retry_policy", f"expected a RetryPolicy, got {type(policy).__name__}")
    base = policy or RetryPolicy()
    if max_retries is None:
        return base
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise InvalidArgumentError("max_retries", f"expected an int >= 0, got {max_retries!r}")
    return attrs.evolve(base, max_retries=max_retries)


def _token_source(value: object, parameter: str) -> TokenSource:
    if isinstance(value, str):
        return StaticToken(value, parameter=parameter)
    if isinstance(value, TokenSource):
        return value
    raise InvalidArgumentError(parameter, f"expected a str or a TokenSource, got {type(value).__name__}")


def _pair(first: tuple[str, str | None, str], second: tuple[str, str | None, str]) -> tuple[str, str] | None:
    """A credential pair, each half from its argument or else its environment variable; None if neither half
    is anywhere. `first`/`second` are (parameter, argument, variable)."""
    (first_name, first_arg, first_var), (second_name, second_arg, second_var) = first, second
    first_value = first_arg if first_arg is not None else _env(first_var)
    second_value = second_arg if second_arg is not None else _env(second_var)
    if first_value is None and second_value is None:
        return None
    if first_value is None or second_value is None:
        missing, variable = (first_name, first_var) if first_value is None else (second_name, second_var)
        given = second_name if first_value is None else first_name
        raise MissingCredentialsError(
            missing, f"{given} is set but {missing} is not (pass {missing}= or set {variable})"
        )
    return first_value, second_value


class FotaCallbacksClient:
    """The async client for ThingSpace Software Management Callbacks V1, V2 and V3.

    Credentials not passed are read from `THINGSPACE_CLIENT_ID`, `THINGSPACE_CLIENT_SECRET`,
    `THINGSPACE_M2M_TOKEN`, `THINGSPACE_USERNAME`, `THINGSPACE_PASSWORD`; `THINGSPACE_BASE_URL` replaces the
    environment's root. The bearer token comes from `access_token` (a str or a `TokenSource`) or from OAuth
    client credentials (`client_id` + `client_secret`); the M2M session token from `m2m_token` (a str or a
    `TokenSource`) or from logging in with `username` + `password`. A missing credential raises
    `MissingCredentialsError` here, before anything is sent.

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
    ) -> None:
        root = resolve_root(environment, base_url if base_url is not None else _env("THINGSPACE_BASE_URL"))
        options = CallOptions(
            timeout=_check_timeout(timeout, "timeout"),
            retry=_retry_policy(max_retries, retry_policy),
            deadline=_check_timeout(deadline, "deadline"),
        )
        if transport is not None and not isinstance(transport, Transport):
            raise InvalidArgumentError("transport", f"expected a Transport, got {type(transport).__name__}")
        for layer in middleware:
            if not callable(layer):
                raise InvalidArgumentError("middleware", f"expected async callables, got {type(layer).__name__}")

        # Everything about credentials is decided before a transport (and its connection pool) exists.
        oauth = None
        if access_token is None:
            oauth = _pair(
                ("client_id", client_id, "THINGSPACE_CLIENT_ID"),
                ("client_secret", client_secret, "THINGSPACE_CLIENT_SECRET"),
            )
            if oauth is None:
                raise MissingCredentialsError(
                    "client_id",
                    "no OAuth credentials: pass client_id and client_secret (or set THINGSPACE_CLIENT_ID and "
                    "THINGSPACE_CLIENT_SECRET), or pass access_token",
                )
        elif client_id is not None or client_secret is not None:
            raise InvalidArgumentError("access_token", "pass either access_token or client_id/client_secret")
        login = None
        if m2m_token is None:
            # Arguments first; then a static token from the environment; then a login from the environment.
            if username is None and password is None:
                m2m_token = _env("THINGSPACE_M2M_TOKEN")
            if m2m_token is None:
                login = _pair(
                    ("username", username, "THINGSPACE_USERNAME"), ("password", password, "THINGSPACE_PASSWORD")
                )
            if login is None and m2m_token is None:
                raise MissingCredentialsError(
                    "m2m_token",
                    "no M2M session credentials: pass m2m_token (or set THINGSPACE_M2M_TOKEN), or username and "
                    "password (or set THINGSPACE_USERNAME and THINGSPACE_PASSWORD)",
                )
        elif username is not None or password is not None:
            raise InvalidArgumentError("m2m_token", "pass either m2m_token or username/password")

        bearer = _token_source(access_token, "access_token") if access_token is not None else None
        static_m2m = _token_source(m2m_token, "m2m_token") if m2m_token is not None else None

        self._owns_transport = True
        self._transport: Transport = transport if transport is not None else HttpxTransport()
        self._pipeline = Pipeline(
            root=root,
            transport=self._transport,
            auth=None,
            options=options,
            middleware=middleware,
            sleep=sleep,
            clock=clock,
        )
        exchange = self._pipeline.exchange
        if bearer is None:
            assert oauth is not None
            bearer = OAuthClientCredentials(
                oauth[0],
                oauth[1],
                scopes=scopes,
                token_url=root + OAUTH_TOKEN_PATH,
                exchange=exchange,
                clock=clock,
            )
        self._session: M2MSessionLogin | None = None
        if static_m2m is None:
            assert login is not None
            self._session = M2MSessionLogin(
                login[0],
                login[1],
                bearer=bearer,
                login_url=root + M2M_LOGIN_PATH,
                logout_url=root + M2M_LOGOUT_PATH,
                exchange=exchange,
                clock=clock,
            )
        self._auth = Auth(bearer, static_m2m if static_m2m is not None else self._session)
        self._pipeline.set_auth(self._auth)
        self._logout_on_close = logout_on_close
        self._make_controllers()

    def _make_controllers(self) -> None:
        self._v1 = SoftwareManagementCallbacksV1Controller(self._pipeline)
        self._v2 = SoftwareManagementCallbacksV2Controller(self._pipeline)
        self._v3 = SoftwareManagementCallbacksV3Controller(self._pipeline)

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
        return self._pipeline.root

    @property
    def timeout(self) -> float | None:
        """Seconds allowed for each attempt (None: no limit)."""
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
        return self._transport

    def with_options(
        self,
        *,
        timeout: float | None = NOT_GIVEN,
        max_retries: int = NOT_GIVEN,
        retry_policy: RetryPolicy = NOT_GIVEN,
        deadline: float | None = NOT_GIVEN,
    ) -> FotaCallbacksClient:
        """A client with other call options that shares this one's transport and credentials.

        It never closes them: closing it is a no-op, and it stops working when this client is closed.
        """
        current = self._pipeline.options
        options = CallOptions(
            timeout=current.timeout if timeout is NOT_GIVEN else _check_timeout(timeout, "timeout"),
            retry=_retry_policy(
                None if max_retries is NOT_GIVEN else max_retries,
                current.retry if retry_policy is NOT_GIVEN else retry_policy,
            ),
            deadline=current.deadline if deadline is NOT_GIVEN else _check_timeout(deadline, "deadline"),
        )
        clone = object.__new__(FotaCallbacksClient)
        clone.__dict__.update(self.__dict__)
        clone._owns_transport = False
        clone._pipeline = self._pipeline.with_options(options)
        clone._make_controllers()
        return clone

    async def aclose(self) -> None:
        """Close the transport (and log the M2M session out, with `logout_on_close`). Safe to call twice."""
        if not self._owns_transport or self._pipeline.closed:
            return
        with anyio.CancelScope(shield=True):
            try:
                if self._logout_on_close and self._session is not None:
                    # Best effort, and bounded: closing must not hang on an unresponsive logout endpoint.
                    with anyio.move_on_after(LOGOUT_TIMEOUT):
                        await self._session.logout()
            finally:
                self._pipeline.mark_closed()
                await self._transport.aclose()

    async def __aenter__(self) -> FotaCallbacksClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        if "_auth" not in self.__dict__:  # __init__ refused its arguments
            return "FotaCallbacksClient(<not initialised>)"
        return f"FotaCallbacksClient(base_url={self.base_url!r}, auth={self._auth!r})"
