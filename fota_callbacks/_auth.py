"""Where the `Authorization: Bearer` and `VZ-M2M-Token` values come from, cached and renewed.

A `TokenSource` hands out a token and is told when the API refused one. The bundled sources:
`StaticToken` (a token obtained elsewhere), `OAuthClientCredentials` (the OAuth 2 token endpoint) and
`M2MSessionLogin` (the M2M session login). Renewals are single-flight: however many tasks need a new token
at once, one request is made and its outcome, success or failure, is handed to all of them.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

import anyio
import attrs

from ._constants import TOKEN_EXPIRY_MARGIN, USER_AGENT
from ._errors import InvalidArgumentError, OAuthError, ResponseValidationError, SessionLoginError
from .transport.base import Headers, Request, Response

__all__ = [
    "Auth",
    "AuthSnapshot",
    "Exchange",
    "M2MSessionLogin",
    "OAuthClientCredentials",
    "StaticToken",
    "TokenSource",
]

T = TypeVar("T")
log = logging.getLogger("fota_callbacks")

# Header values we send must be visible ASCII (and spaces): anything else breaks or smuggles headers.
_HEADER_UNSAFE = re.compile(r"[^\x20-\x7e]")

Exchange = Callable[..., Awaitable[tuple[Request, Response, int]]]
"""The pipeline's retrying send, without API error mapping: `(method, url, headers, content, auth=...)`."""


@runtime_checkable
class TokenSource(Protocol):
    """Supplies a token, and learns when the API refused it.

    Implement it to share tokens across processes (e.g. a cache in Redis). `invalidate(token)` is called with
    the token a request was refused with; it returns True when a fresh token can be had (the call is then
    retried once with it) and False when not (the 401 is raised).
    """

    async def get_token(self) -> str:
        """A token to send now."""
        ...

    async def invalidate(self, token: str) -> bool:
        """The API refused `token`; True if a fresh one can be had."""
        ...


def check_header_value(value: object, parameter: str) -> str:
    if not isinstance(value, str):
        raise InvalidArgumentError(parameter, f"expected a str, got {type(value).__name__}")
    if not value:
        raise InvalidArgumentError(parameter, "is empty")
    if _HEADER_UNSAFE.search(value):
        raise InvalidArgumentError(parameter, "must be visible ASCII: contains control or non-ASCII characters")
    return value


class StaticToken:
    """A token obtained elsewhere. It cannot be renewed, so a 401 with it is final."""

    __slots__ = ("_value",)

    def __init__(self, value: str, *, parameter: str = "token") -> None:
        self._value = check_header_value(value, parameter)

    @property
    def value(self) -> str:
        """The token."""
        return self._value

    async def get_token(self) -> str:
        """The token."""
        return self._value

    async def invalidate(self, token: str) -> bool:
        """Nothing to renew: False."""
        return False

    def __repr__(self) -> str:
        return "StaticToken(<redacted>)"


class _Flight(Generic[T]):
    __slots__ = ("done", "error", "result")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.result: T | None = None
        self.error: BaseException | None = None


class SingleFlight(Generic[T]):
    """Runs one `fetch` at a time; callers arriving meanwhile wait for its outcome instead of starting another.

    If the task running the fetch is cancelled, the waiters are not: one of them starts a new fetch.
    """

    __slots__ = ("_current",)

    def __init__(self) -> None:
        self._current: _Flight[T] | None = None

    async def run(self, fetch: Callable[[], Awaitable[T]]) -> T:
        while True:
            flight = self._current
            if flight is None:
                return await self._lead(fetch)
            await flight.done.wait()
            if flight.error is None:
                return flight.result  # type: ignore[return-value]
            if not isinstance(flight.error, anyio.get_cancelled_exc_class()):
                raise flight.error

    async def _lead(self, fetch: Callable[[], Awaitable[T]]) -> T:
        flight: _Flight[T] = _Flight()
        self._current = flight
        try:
            flight.result = await fetch()
            return flight.result
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            self._current = None
            flight.done.set()


@attrs.frozen
class _Cached:
    value: str
    expires_at: float | None


class _RenewableToken:
    """A token fetched on demand, cached until it expires or is refused, renewed single-flight."""

    def __init__(self, *, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._cached: _Cached | None = None
        self._flight: SingleFlight[str] = SingleFlight()

    async def get_token(self) -> str:
        cached = self._cached
        if cached is not None and (cached.expires_at is None or self._clock() < cached.expires_at):
            return cached.value
        return await self._flight.run(self._renew)

    async def _renew(self) -> str:
        cached = self._cached
        if cached is not None and (cached.expires_at is None or self._clock() < cached.expires_at):
            return cached.value  # renewed by the flight that just ended
        value, lifetime = await self._fetch()
        expires_at = None if lifetime is None else self._clock() + lifetime
        self._cached = _Cached(value, expires_at)
        return value

    async def invalidate(self, token: str) -> bool:
        cached = self._cached
        if cached is not None and cached.value == token:
            self._cached = None
        return True

    async def _fetch(self) -> tuple[str, float | None]:
        raise NotImplementedError

    def _lifetime(self, expires_in: float | None, margin: float) -> float | None:
        if expires_in is None:
            return None
        # Keep a margin for clock skew and latency, but never less than half of a short lifetime.
        return max(expires_in - margin, expires_in / 2)


def _json_object(response: Response) -> dict[str, Any] | None:
    try:
        data = json.loads(response.content)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _str_or_none(data: dict[str, Any] | None, key: str) -> str | None:
    value = None if data is None else data.get(key)
    return value if isinstance(value, str) else None


def _usable_token(data: dict[str, Any] | None, key: str, status_code: int) -> str:
    """The token under `key` of a 2xx body, which must be a non-empty header-safe string.

    The body is withheld from the error: it may hold a token after all.
    """
    token = _str_or_none(data, key)
    if not token or _HEADER_UNSAFE.search(token):
        raise ResponseValidationError(
            status_code=status_code,
            body=b"<withheld: may hold a token>",
            errors=[f"{key} missing or not a usable string @ $.{key}"],
        )
    return token


def _error_kwargs(request: Request, response: Response) -> dict[str, Any]:
    return {
        "status_code": response.status_code,
        "headers": response.headers,
        "body": response.content,
        "request": request,
    }


class OAuthClientCredentials(_RenewableToken):
    """OAuth 2 client credentials grant against ThingSpace's token endpoint; the token is cached until
    `margin` seconds before it expires and renewed on demand."""

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        token_url: str,
        exchange: Exchange,
        scopes: Sequence[str] = (),
        margin: float = TOKEN_EXPIRY_MARGIN,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(clock=clock)
        check_header_value(client_id, "client_id")
        check_header_value(client_secret, "client_secret")
        if isinstance(scopes, str):
            raise InvalidArgumentError("scopes", "expected a sequence of scope names, not one str")
        for scope in scopes:
            if not isinstance(scope, str) or not scope or any(ch.isspace() for ch in scope):
                raise InvalidArgumentError("scopes", f"{scope!r} is not a scope name")
        basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode("ascii")
        form = "grant_type=client_credentials"
        if scopes:
            form += "&scope=" + "+".join(scopes)
        self._headers = (
            ("Authorization", f"Basic {basic}"),
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Accept", "application/json"),
            ("User-Agent", USER_AGENT),
        )
        self._form = form.encode()
        self._token_url = token_url
        self._exchange = exchange
        self._margin = margin
        self._client_id = client_id

    async def _fetch(self) -> tuple[str, float | None]:
        request, response, retries = await self._exchange("POST", self._token_url, self._headers, self._form)
        data = _json_object(response)
        if not 200 <= response.status_code < 300:
            error = _str_or_none(data, "error")
            description = _str_or_none(data, "error_description")
            detail = ": ".join(part for part in (error, description) if part) or "no OAuth error in the body"
            exc = OAuthError(
                f"OAuth token request refused (HTTP {response.status_code}): {detail}",
                error=error,
                error_description=description,
                **_error_kwargs(request, response),
            )
            exc.retries_taken = retries
            raise exc
        token = _usable_token(data, "access_token", response.status_code)
        expires_in = None if data is None else data.get("expires_in")
        if isinstance(expires_in, str) and expires_in.isdigit():
            expires_in = int(expires_in)
        if not isinstance(expires_in, (int, float)) or isinstance(expires_in, bool) or expires_in <= 0:
            expires_in = None
        log.debug("obtained an OAuth access token", extra={"expires_in": expires_in})
        return token, self._lifetime(expires_in, self._margin)

    def __repr__(self) -> str:
        return f"OAuthClientCredentials(client_id={self._client_id!r}, client_secret=<redacted>)"


class M2MSessionLogin(_RenewableToken):
    """An M2M session token obtained by logging in with a ThingSpace username and password.

    The session is kept until the API refuses it (401), then renewed by logging in again.
    """

    def __init__(
        self,
        username: str,
        password: str,
        *,
        bearer: TokenSource,
        login_url: str,
        logout_url: str,
        exchange: Exchange,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(clock=clock)
        check_header_value(username, "username")
        check_header_value(password, "password")
        self._body = json.dumps({"username": username, "password": password}, separators=(",", ":")).encode()
        self._auth = Auth(bearer, None)
        self._login_url = login_url
        self._logout_url = logout_url
        self._exchange = exchange
        self._username = username

    async def _fetch(self) -> tuple[str, float | None]:
        headers = (("Content-Type", "application/json"), ("Accept", "application/json"), ("User-Agent", USER_AGENT))
        request, response, retries = await self._exchange("POST", self._login_url, headers, self._body, auth=self._auth)
        if not 200 <= response.status_code < 300:
            where = f"M2M session login refused (HTTP {response.status_code})"
            exc = SessionLoginError.from_response(where, **_error_kwargs(request, response))
            exc.retries_taken = retries
            raise exc
        token = _usable_token(_json_object(response), "sessionToken", response.status_code)
        log.debug("logged in an M2M session")
        return token, None

    async def logout(self) -> None:
        """End the current session, if any. Failures are logged, not raised: the session expires anyway."""
        cached, self._cached = self._cached, None
        if cached is None:
            return
        headers = (("Accept", "application/json"), ("User-Agent", USER_AGENT), ("VZ-M2M-Token", cached.value))
        try:
            _, response, _ = await self._exchange("POST", self._logout_url, headers, b"", auth=self._auth)
        except Exception as exc:  # a failed logout must not break closing the client
            log.warning("M2M session logout failed: %s", type(exc).__name__)
            return
        if not 200 <= response.status_code < 300:
            log.warning("M2M session logout answered HTTP %d", response.status_code)

    def __repr__(self) -> str:
        return f"M2MSessionLogin(username={self._username!r}, password=<redacted>)"


@attrs.frozen
class AuthSnapshot:
    """The tokens one attempt was sent with, as header pairs."""

    bearer: str
    m2m: str | None
    headers: tuple[tuple[str, str], ...]
    _merged: dict[tuple[tuple[str, str], ...], Headers] = attrs.field(factory=dict, eq=False, repr=False)

    def request_headers(self, base: tuple[tuple[str, str], ...]) -> Headers:
        """`base` followed by the credential headers, built once per snapshot and kind of request."""
        merged = self._merged.get(base)
        if merged is None:
            merged = self._merged[base] = Headers(base + self.headers)
        return merged


def _snapshot(bearer: str, m2m: str | None) -> AuthSnapshot:
    pairs = [("Authorization", f"Bearer {bearer}")]
    if m2m is not None:
        pairs.append(("VZ-M2M-Token", m2m))
    for _, value in pairs:
        if _HEADER_UNSAFE.search(value):
            raise InvalidArgumentError("token", "a token source returned a value that is not visible ASCII")
    return AuthSnapshot(bearer, m2m, tuple(pairs))


class Auth:
    """The bearer token source and (for the callbacks APIs) the M2M session token source of a client."""

    __slots__ = ("bearer", "m2m", "static")

    def __init__(self, bearer: TokenSource, m2m: TokenSource | None) -> None:
        self.bearer = bearer
        self.m2m = m2m
        # Tokens that never change make one snapshot for the client's life: no per-call token lookups.
        self.static: AuthSnapshot | None = None
        if isinstance(bearer, StaticToken) and (m2m is None or isinstance(m2m, StaticToken)):
            self.static = _snapshot(bearer.value, None if m2m is None else m2m.value)

    async def current(self) -> AuthSnapshot:
        if self.static is not None:
            return self.static
        bearer = await self.bearer.get_token()
        m2m = None if self.m2m is None else await self.m2m.get_token()
        return _snapshot(bearer, m2m)

    async def invalidate(self, snapshot: AuthSnapshot) -> bool:
        """The API refused `snapshot` (401): drop what can be renewed. True when a retry can use new tokens."""
        renewable = await self.bearer.invalidate(snapshot.bearer)
        if self.m2m is not None and snapshot.m2m is not None:
            renewable = await self.m2m.invalidate(snapshot.m2m) or renewable
        return renewable

    def __repr__(self) -> str:
        return f"Auth(bearer={self.bearer!r}, m2m={self.m2m!r})"
