"""The fake's OAuth 2 token endpoint and M2M session login/logout, and the checks every callbacks request passes.

- `POST /api/ts/v1/oauth2/token`: `Authorization: Basic base64(client_id:client_secret)`, each half
  form-urlencoded before (RFC 6749, 2.3.1: decoded by splitting at the first `:`, then form-decoding each half),
  `Content-Type: application/x-www-form-urlencoded`, form `grant_type=client_credentials` [`&scope=a+b`].
  Answers `{"access_token", "token_type": "bearer", "expires_in", "scope"?}` (`scope` when one was asked for),
  the token valid for `token_lifetime` seconds of the fake's clock. Refusals (RFC 6749, 5.2), as
  `{"error", "error_description"}`: 400 `invalid_request` (wrong content type, a body that is not a form, a
  repeated parameter, no `grant_type`), 401 `invalid_client` (no or garbled Basic credentials, or ones
  `accept_only` does not accept), 400 `unsupported_grant_type`, 400 `invalid_scope` (an empty or malformed
  scope, or one outside `accept_only(scopes=...)`).
- `POST /api/m2m/v1/session/login`: a valid bearer token, JSON `{"username", "password"}`; answers
  `{"sessionToken"}`; 400 InvalidCredentials for a username/password `accept_only` does not accept.
  `POST /api/m2m/v1/session/logout`: a valid bearer token and the session in `VZ-M2M-Token`; ends the session
  and answers `{"sessionToken"}` (the one ended). Sessions do not expire.
- Every callbacks request needs `Authorization: Bearer <a token this fake issued, not expired, not revoked>`
  and `VZ-M2M-Token: <a session this fake issued, not logged out, not revoked>`. Otherwise 401:
  `{"error": "invalid_token", "error_description"}` with a `WWW-Authenticate: Bearer` header for the bearer
  token (checked first, also on login and logout), `{"errorCode": "UnauthorizedSession", "errorMessage"}` for
  the session.
- Any client id/secret and username/password are accepted until `accept_only(...)` says otherwise.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import NoReturn
from urllib.parse import parse_qsl, unquote_plus

import attrs

from .._errors import InvalidArgumentError
from ..transport.base import Headers, Request, Response
from ._records import Operation
from ._wire import JSON_HEADERS, Refusal, json_object, json_response, media_type, refuse, required_str

__all__ = ["AuthServer", "Credentials"]

_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")  # RFC 6749, 3.3
_TOKEN_HEADERS = Headers((*JSON_HEADERS.raw(), ("Cache-Control", "no-store"), ("Pragma", "no-cache")))
_BEARER_CHALLENGE = Headers(
    (*JSON_HEADERS.raw(), ("WWW-Authenticate", 'Bearer realm="ThingSpace", error="invalid_token"'))
)
_BASIC_CHALLENGE = Headers((*JSON_HEADERS.raw(), ("WWW-Authenticate", 'Basic realm="ThingSpace"')))


def _refuse_oauth(status_code: int, error: str, description: str, headers: Headers = JSON_HEADERS) -> NoReturn:
    raise Refusal(json_response(status_code, {"error": error, "error_description": description}, headers))


def _refuse_bearer(description: str) -> NoReturn:
    _refuse_oauth(401, "invalid_token", description, _BEARER_CHALLENGE)


def _refuse_client(description: str) -> NoReturn:
    _refuse_oauth(401, "invalid_client", description, _BASIC_CHALLENGE)


def _seconds(value: float) -> int | float:
    """A whole number of seconds as an int (`expires_in` is an integer in RFC 6749), others as they are."""
    return int(value) if value.is_integer() else value


@attrs.frozen
class Credentials:
    """The credentials the fake accepts; None accepts any."""

    client_id: str | None = None
    client_secret: str | None = None
    username: str | None = None
    password: str | None = None
    scopes: frozenset[str] | None = None


class AuthServer:
    """Issues access tokens and M2M sessions, and checks them; see this module's docstring.

    The clock starts at `clock()` and moves with it and with `advance()`.
    """

    def __init__(self, *, token_lifetime: float, clock: Callable[[], float] | None) -> None:
        if isinstance(token_lifetime, bool) or not isinstance(token_lifetime, (int, float)) or not token_lifetime > 0:
            raise InvalidArgumentError(
                "token_lifetime", f"must be a positive number of seconds, got {token_lifetime!r}"
            )
        self._token_lifetime = float(token_lifetime)
        self._clock: Callable[[], float] = clock if clock is not None else (lambda: 0.0)
        self._offset = 0.0
        self._lock = threading.Lock()
        self._tokens: dict[str, float] = {}  # access token -> when it expires (fake clock)
        self._sessions: set[str] = set()
        self.accepted = Credentials()
        self.handlers: Mapping[Operation, Callable[[Request], Response]] = {
            "token": self._token,
            "login": self._login,
            "logout": self._logout,
        }

    def now(self) -> float:
        return self._clock() + self._offset

    def advance(self, seconds: float) -> None:
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds >= 0:
            raise InvalidArgumentError("seconds", f"must be a number >= 0, got {seconds!r}")
        with self._lock:
            self._offset += seconds

    def accept_only(self, credentials: Credentials, scopes: Iterable[str] | None) -> None:
        if isinstance(scopes, str):
            raise InvalidArgumentError("scopes", "expected a collection of scope names, not one str")
        self.accepted = attrs.evolve(credentials, scopes=None if scopes is None else frozenset(scopes))

    def issue(self) -> tuple[str, str]:
        with self._lock:
            return self._new_access_token(), self._new_session()

    def revoke(self) -> None:
        with self._lock:
            self._tokens.clear()
            self._sessions.clear()

    def _new_access_token(self) -> str:
        token = "fake-at-" + secrets.token_urlsafe(18)
        self._tokens[token] = self.now() + self._token_lifetime
        return token

    def _new_session(self) -> str:
        session = "fake-session-" + secrets.token_urlsafe(18)
        self._sessions.add(session)
        return session

    # -- checks ----------------------------------------------------------------------------------------------

    def check_bearer(self, headers: Headers) -> None:
        """Refuse (401) a request without a valid `Authorization: Bearer` token."""
        value = headers.get("authorization")
        if value is None:
            _refuse_bearer("the request has no Authorization: Bearer token")
        scheme, _, token = value.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            _refuse_bearer("the Authorization header does not hold a Bearer token")
        expires_at = self._tokens.get(token)
        if expires_at is None:
            _refuse_bearer("the access token is unknown or was revoked")
        if self.now() >= expires_at:
            _refuse_bearer("the access token has expired")

    def check_session(self, headers: Headers) -> str:
        """The request's M2M session; refuse (401) a request without a valid one."""
        session = headers.get("vz-m2m-token")
        if session is None:
            refuse(401, "UnauthorizedSession", "the request has no VZ-M2M-Token header")
        if session not in self._sessions:
            refuse(401, "UnauthorizedSession", "the M2M session token is unknown, logged out or revoked")
        return session

    # -- endpoints -------------------------------------------------------------------------------------------

    def _token(self, request: Request) -> Response:
        if media_type(request.headers) != "application/x-www-form-urlencoded":
            _refuse_oauth(400, "invalid_request", "the body must be application/x-www-form-urlencoded")
        try:
            pairs = parse_qsl(request.content.decode("ascii"), keep_blank_values=True, strict_parsing=True)
        except ValueError:  # includes UnicodeDecodeError
            _refuse_oauth(400, "invalid_request", "the body is not a form")
        form = dict(pairs)
        if len(form) != len(pairs):
            _refuse_oauth(400, "invalid_request", "a parameter is repeated")
        grant_type = form.get("grant_type")
        if not grant_type:
            _refuse_oauth(400, "invalid_request", "grant_type is missing")

        client_id, client_secret = _basic_credentials(request.headers)
        accepted = self.accepted
        if (accepted.client_id is not None and client_id != accepted.client_id) or (
            accepted.client_secret is not None and client_secret != accepted.client_secret
        ):
            _refuse_client("client authentication failed")
        if grant_type != "client_credentials":
            _refuse_oauth(400, "unsupported_grant_type", "only grant_type=client_credentials is supported")

        body: dict[str, object] = {"token_type": "bearer", "expires_in": _seconds(self._token_lifetime)}
        scope = form.get("scope")
        if scope is not None:
            scopes = scope.split(" ")
            if not all(_SCOPE_TOKEN.fullmatch(name) for name in scopes):
                _refuse_oauth(400, "invalid_scope", "the scope is empty or malformed")
            if accepted.scopes is not None and not accepted.scopes.issuperset(scopes):
                _refuse_oauth(400, "invalid_scope", "a requested scope is not granted to this client")
            body["scope"] = scope
        with self._lock:
            body["access_token"] = self._new_access_token()
        return json_response(200, body, _TOKEN_HEADERS)

    def _login(self, request: Request) -> Response:
        self.check_bearer(request.headers)
        data = json_object(request)
        username, password = required_str(data, "username"), required_str(data, "password")
        accepted = self.accepted
        if (accepted.username is not None and username != accepted.username) or (
            accepted.password is not None and password != accepted.password
        ):
            refuse(400, "InvalidCredentials", "the username or password is not valid")
        with self._lock:
            session = self._new_session()
        return json_response(200, {"sessionToken": session})

    def _logout(self, request: Request) -> Response:
        self.check_bearer(request.headers)
        with self._lock:
            session = self.check_session(request.headers)
            self._sessions.discard(session)
        return json_response(200, {"sessionToken": session})


def _basic_credentials(headers: Headers) -> tuple[str, str]:
    """The client id and secret of `Authorization: Basic`, decoded as RFC 6749, 2.3.1 says: base64, split at the
    first `:`, then each half form-urldecoded (so either may hold a `:`)."""
    value = headers.get("authorization")
    if value is None:
        _refuse_client("no client credentials (Authorization: Basic)")
    scheme, _, encoded = value.partition(" ")
    try:
        if scheme.lower() != "basic":
            raise ValueError(scheme)
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        client_id, colon, client_secret = (unquote_plus(part, errors="strict") for part in decoded.partition(":"))
    except (ValueError, binascii.Error):  # UnicodeDecodeError is a ValueError
        client_id = colon = client_secret = ""
    if not colon or not client_id:
        _refuse_client("the Authorization: Basic credentials are garbled")
    return client_id, client_secret
