"""Where the `Authorization: Bearer` and `VZ-M2M-Token` values come from, cached and renewed.

A `TokenSource` hands out a token and is told when the API refused one. `StaticToken` is a token obtained
elsewhere; the client makes its own private sources for OAuth client credentials and the M2M session login.
Those send their requests through the pipeline of the call that needed the token (`Send`), so that call's
options (timeout, retries, deadline) apply to them too. Renewals are single-flight: however many tasks need a
new token at once, one request is made and its outcome, success or failure, is handed to all of them.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable
from urllib.parse import quote_plus

import anyio
import attrs

from ._call import Call, HeaderPairs, Outcome
from ._checks import is_positive_number, json_or_none
from ._constants import TOKEN_EXPIRY_MARGIN, USER_AGENT
from ._errors import InvalidArgumentError, OAuthError, ResponseValidationError, SessionLoginError, request_id_of
from .transport.base import Headers

__all__ = ["Auth", "AuthSnapshot", "Send", "StaticToken", "TokenSource"]

T = TypeVar("T")
log = logging.getLogger("fota_callbacks")

# Header values we send must be visible ASCII (and spaces): anything else breaks or smuggles headers.
_HEADER_UNSAFE = re.compile(r"[^\x20-\x7e]")


Send = Callable[[Call, "Auth | None"], Awaitable[Outcome]]
"""The pipeline's retrying send for the SDK's own requests (with the credentials given, or none), under the
options of the call that needs them."""


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


def check_header_value(value: object, parameter: str, source: str = "") -> str:
    """A non-empty str of visible ASCII, fit for a header; `source` says where a refused value came from."""
    if not isinstance(value, str):
        problem = f"expected a str, got {type(value).__name__}"
    elif not value:
        problem = "is empty"
    elif _HEADER_UNSAFE.search(value):
        problem = "must be visible ASCII: contains control or non-ASCII characters"
    else:
        return value
    raise InvalidArgumentError(parameter, f"{source}: {problem}" if source else problem)


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
    """A token fetched on demand through `Send`, cached until it expires or is refused, renewed single-flight.

    The renewal runs with the options of the call that started it; calls arriving meanwhile share its outcome.
    """

    def __init__(self, *, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._cached: _Cached | None = None
        self._flight: SingleFlight[str] = SingleFlight()

    def _fresh(self) -> str | None:
        cached = self._cached
        if cached is not None and (cached.expires_at is None or self._clock() < cached.expires_at):
            return cached.value
        return None

    async def get_token(self, send: Send) -> str:
        fresh = self._fresh()
        if fresh is not None:
            return fresh
        return await self._flight.run(lambda: self._renew(send))

    async def _renew(self, send: Send) -> str:
        fresh = self._fresh()
        if fresh is not None:
            return fresh  # renewed by the flight that just ended
        value, lifetime = await self._fetch(send)
        expires_at = None if lifetime is None else self._clock() + lifetime
        self._cached = _Cached(value, expires_at)
        return value

    async def invalidate(self, token: str) -> bool:
        cached = self._cached
        if cached is not None and cached.value == token:
            self._cached = None
        return True

    async def _fetch(self, send: Send) -> tuple[str, float | None]:
        raise NotImplementedError

    def _lifetime(self, expires_in: float | None, margin: float) -> float | None:
        if expires_in is None:
            return None
        # Keep a margin for clock skew and latency, but never less than half of a short lifetime.
        return max(expires_in - margin, expires_in / 2)


def _usable_token(outcome: Outcome, data: Any, key: str) -> str:
    """The token under `key` of a 2xx body, which must be a non-empty header-safe string.

    The body is withheld from the error: it may hold a token after all.
    """
    token = data.get(key) if isinstance(data, dict) else None
    if not isinstance(token, str) or not token or _HEADER_UNSAFE.search(token):
        raise ResponseValidationError(
            status_code=outcome.response.status_code,
            body=b"<withheld: may hold a token>",
            errors=[f"{key} missing or not a usable string @ $.{key}"],
            request_id=request_id_of(outcome.response.headers),
        )
    return token


class _OAuthToken(_RenewableToken):
    """OAuth 2 client credentials grant against ThingSpace's token endpoint; the token is cached until
    `margin` seconds before it expires and renewed on demand."""

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        token_url: str,
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
        # RFC 6749 2.3.1: each half is form-encoded before joining, so a ':' in the id cannot move the split.
        pair = f"{quote_plus(client_id)}:{quote_plus(client_secret)}"
        form = "grant_type=client_credentials"
        if scopes:
            form += "&scope=" + "+".join(scopes)
        self._call = Call(
            "POST",
            token_url,
            (
                ("Authorization", "Basic " + base64.b64encode(pair.encode()).decode("ascii")),
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Accept", "application/json"),
                ("User-Agent", USER_AGENT),
            ),
            form.encode(),
        )
        self._margin = margin
        self._client_id = client_id

    async def _fetch(self, send: Send) -> tuple[str, float | None]:
        outcome = await send(self._call, None)
        response = outcome.response
        if not 200 <= response.status_code < 300:
            raise outcome.error("OAuth token request refused", refusal=OAuthError)
        data = json_or_none(response.content)
        token = _usable_token(outcome, data, "access_token")
        expires_in = data.get("expires_in")
        if isinstance(expires_in, str) and expires_in.isdigit():
            expires_in = int(expires_in)
        if not is_positive_number(expires_in):
            expires_in = None
        log.debug("obtained an OAuth access token", extra={"expires_in": expires_in})
        return token, self._lifetime(expires_in, self._margin)

    def __repr__(self) -> str:
        return f"OAuthClientCredentials(client_id={self._client_id!r}, client_secret=<redacted>)"


_JSON_POST = (("Content-Type", "application/json"), ("Accept", "application/json"), ("User-Agent", USER_AGENT))


class _SessionLogin(_RenewableToken):
    """An M2M session token obtained by logging in with a ThingSpace username and password.

    The session is kept until the API refuses it (401), then renewed by logging in again.
    """

    def __init__(
        self,
        username: str,
        password: str,
        *,
        bearer: TokenSource | _RenewableToken,
        login_url: str,
        logout_url: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(clock=clock)
        check_header_value(username, "username")
        check_header_value(password, "password")
        body = json.dumps({"username": username, "password": password}, separators=(",", ":")).encode()
        self._auth = Auth(bearer, None)
        self._call = Call("POST", login_url, _JSON_POST, body, secret_body=True)
        self._logout_url = logout_url
        self._username = username

    async def _fetch(self, send: Send) -> tuple[str, float | None]:
        outcome = await send(self._call, self._auth)
        if not 200 <= outcome.response.status_code < 300:
            raise outcome.error("M2M session login refused", refusal=SessionLoginError)
        token = _usable_token(outcome, json_or_none(outcome.response.content), "sessionToken")
        log.debug("logged in an M2M session")
        return token, None

    async def logout(self, send: Send) -> None:
        """End the current session, if any. Failures are logged, not raised: the session expires anyway."""
        cached, self._cached = self._cached, None
        if cached is None:
            return
        headers = (("Accept", "application/json"), ("User-Agent", USER_AGENT), ("VZ-M2M-Token", cached.value))
        try:
            outcome = await send(Call("POST", self._logout_url, headers), self._auth)
        except Exception as exc:  # a failed logout must not break closing the client
            log.warning("M2M session logout failed: %s", type(exc).__name__)
            return
        if not 200 <= outcome.response.status_code < 300:
            log.warning("M2M session logout answered HTTP %d", outcome.response.status_code)

    def __repr__(self) -> str:
        return f"M2MSessionLogin(username={self._username!r}, password=<redacted>)"


@attrs.frozen
class AuthSnapshot:
    """The tokens one attempt was sent with, as header pairs."""

    bearer: str
    m2m: str | None
    headers: HeaderPairs
    _merged: dict[HeaderPairs, Headers] = attrs.field(factory=dict, eq=False, repr=False)

    def request_headers(self, base: HeaderPairs) -> Headers:
        """`base` followed by the credential headers, built once per snapshot and kind of request."""
        merged = self._merged.get(base)
        if merged is None:
            merged = self._merged[base] = Headers(base + self.headers)
        return merged


def _snapshot(bearer: str, m2m: str | None) -> AuthSnapshot:
    pairs = [("Authorization", f"Bearer {bearer}")]
    if m2m is not None:
        pairs.append(("VZ-M2M-Token", m2m))
    return AuthSnapshot(bearer, m2m, tuple(pairs))


async def _token(source: TokenSource | _RenewableToken, send: Send, parameter: str) -> str:
    token = await (source.get_token(send) if isinstance(source, _RenewableToken) else source.get_token())
    # A token source is user code: what it returns is checked like an argument, before anything is sent.
    return check_header_value(token, parameter, "the value its token source returned")


class Auth:
    """The bearer token source and (for the callbacks APIs) the M2M session token source of a client."""

    __slots__ = ("bearer", "m2m", "static")

    def __init__(self, bearer: TokenSource | _RenewableToken, m2m: TokenSource | _RenewableToken | None) -> None:
        self.bearer = bearer
        self.m2m = m2m
        # Tokens that never change make one snapshot for the client's life: no per-call token lookups.
        self.static: AuthSnapshot | None = None
        if isinstance(bearer, StaticToken) and (m2m is None or isinstance(m2m, StaticToken)):
            self.static = _snapshot(bearer.value, None if m2m is None else m2m.value)

    @property
    def session(self) -> _SessionLogin | None:
        """The M2M session login, when the client logs in itself."""
        return self.m2m if isinstance(self.m2m, _SessionLogin) else None

    async def current(self, send: Send) -> AuthSnapshot:
        """The tokens to send now; sources that must fetch one send through `send`."""
        if self.static is not None:
            return self.static
        bearer = await _token(self.bearer, send, "access_token")
        m2m = None if self.m2m is None else await _token(self.m2m, send, "m2m_token")
        return _snapshot(bearer, m2m)

    async def invalidate(self, snapshot: AuthSnapshot) -> bool:
        """The API refused `snapshot` (401): drop what can be renewed. True when a retry can use new tokens."""
        renewable = await self.bearer.invalidate(snapshot.bearer)
        if self.m2m is not None and snapshot.m2m is not None:
            renewable = await self.m2m.invalidate(snapshot.m2m) or renewable
        return renewable

    def __repr__(self) -> str:
        return f"Auth(bearer={self.bearer!r}, m2m={self.m2m!r})"
