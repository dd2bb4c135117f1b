"""FakeThingSpace: an in-memory, stateful fake of ThingSpace's Software Management Callbacks V1, V2 and V3,
with the OAuth 2 token endpoint and the M2M session login/logout they need (wire.md).

One core, `handle(Request) -> Response`, answers every request; `transport()` puts it behind an
`InMemoryTransport` and `asgi_app` serves it over real HTTP. Only the URL's path matters (any scheme and host).

Authentication, as on ThingSpace
- `POST /api/ts/v1/oauth2/token`: `Authorization: Basic base64(client_id:client_secret)`,
  `Content-Type: application/x-www-form-urlencoded`, form `grant_type=client_credentials` [`&scope=a+b`].
  Answers `{"access_token", "token_type": "bearer", "expires_in", "scope"?}` (`scope` when one was asked for),
  the token valid for `token_lifetime` seconds of the fake's clock. Refusals (RFC 6749, 5.2), as
  `{"error", "error_description"}`: 400 `invalid_request` (wrong content type, a body that is not a form, a
  repeated parameter, no `grant_type`), 401 `invalid_client` (no or garbled Basic credentials, or ones
  `accept_only` does not accept), 400 `unsupported_grant_type`, 400 `invalid_scope` (an empty or malformed
  scope, or one outside `accept_only(scopes=...)`).
- `POST /api/m2m/v1/session/login`: a valid bearer token, JSON `{"username", "password"}`; answers
  `{"sessionToken"}`. `POST /api/m2m/v1/session/logout`: a valid bearer token and the session in
  `VZ-M2M-Token`; ends the session and answers `{"sessionToken"}` (the one ended). Sessions do not expire.
- Every callbacks request needs `Authorization: Bearer <a token this fake issued, not expired, not revoked>`
  and `VZ-M2M-Token: <a session this fake issued, not logged out, not revoked>`. Otherwise 401:
  `{"error": "invalid_token", "error_description"}` with a `WWW-Authenticate: Bearer` header for the bearer
  token (checked first, also on login and logout), `{"errorCode": "UnauthorizedSession", "errorMessage"}` for
  the session.
- Any client id/secret and username/password are accepted until `accept_only(...)` says otherwise.

State and semantics, per account (`##########-#####`)
- V1 keeps named registrations (service name -> url, username, password).
  `GET /api/fota/v1/callbacks/{account}` answers a JSON array of `{"aname", "name", "url", "username"?,
  "password"?}`, or 200 with an EMPTY body when nothing is registered (wire.md: an empty body means none).
  `POST` (body `{"name": "Fota", "url": http(s) URL, "username"?, "password"?}`) stores or replaces the
  registration of that name and answers `{"accountName": account, "serviceName": name}`.
  `DELETE /api/fota/v1/callbacks/{account}/name/{service}` removes it, answering `{"success": true}`;
  400 CallbackNotFound when nothing is registered under that name.
- V2 and V3 keep one callback URL per account and version.
  `GET .../callbacks/{account}` answers `{"url": ...}`, or `{}` when none is registered.
  `POST` (body `{"url": https URL}`) sets or replaces the URL and answers `{"url": ...}`.
  `PUT` (same body) replaces the URL and answers `{"url": ...}`; 400 CallbackNotFound when none is registered.
  `DELETE` removes it, answering `{"success": true}`; 400 CallbackNotFound when none is registered.
- Request bodies are read strictly (types, required keys, `Content-Type: application/json`); unknown extra
  keys are ignored, and `null` counts as absent for optional keys.

Errors of the callbacks and session endpoints: `{"errorCode": ..., "errorMessage": ...}` with these codes
- 400 InvalidAccount: the account path segment is not `##########-#####`;
- 400 InvalidRequestBody: the body is not a JSON object, lacks a required key, has a value of the wrong
  type, or (V1) a `name` other than "Fota";
- 400 InvalidCallbackUrl: the callback URL is not an absolute https:// URL with a host (V2, V3), or not an
  http:// or https:// one (V1), or holds whitespace or control characters;
- 400 CallbackNotFound: update or deregister with nothing registered;
- 400 InvalidCredentials: login with a username/password that `accept_only` does not accept;
- 401 UnauthorizedSession: see above;
- 404 ResourceNotFound: a path the fake does not serve;
- 405 MethodNotAllowed (with `Allow`): a served path with another method;
- 415 UnsupportedMediaType: a JSON endpoint sent a body without `Content-Type: application/json`;
- 413 RequestTooLarge (over HTTP only): a request body over 1 MiB;
- InjectedFault: the default body of `Fault.status(...)`.

Callback delivery (ThingSpace -> the registered URL)
- `await emit(account, message, version=...)`, `emit_firmware_list(...)` and `emit_upgrade_event(...)` POST a
  callback message (JSON, `Content-Type: application/json`) to the URL registered for the account: for V1 the
  registration of `service` ("Fota"), for V2/V3 the account's URL of that version. Nothing registered:
  `CallbackNotRegisteredError`, nothing sent. Messages have the documented shape (wire.md): `accountName`,
  `participantName`, `type`, `username` and `password` (V1: the registration's, echoed; else ""),
  `firmwareList` and `upgradeScheduled`, the elements not relevant to the type empty (`[]`, `{}`).
- Only to the registered URL, or where `redirect_deliveries(registered_url, to=...)` says (exactly that
  registered URL; e.g. to an `http://127.0.0.1` listener in tests, as V2/V3 register only https:// URLs).
  No redirects followed, no retries, no proxies; each delivery has a timeout (`delivery_timeout`).
- The listener's answer, whatever its status, is returned as a `Delivery` and recorded in `deliveries`; no
  answer (connection refused, timeout) raises `CallbackDeliveryError`, recorded too.

Faults injected with `inject` apply to the next matching requests before any routing or auth check is
acted on; a request is recorded whatever happens to it. State changes happen without an await in between and
under a lock, so many tasks (and the HTTP server's thread) can use one fake at once.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import ssl
import threading
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any, NoReturn
from urllib.parse import parse_qsl, unquote

import anyio
import attrs
import httpx

from .._client import FotaCallbacksClient
from .._errors import ApiConnectionError, InvalidArgumentError
from .._validation import check_account, check_callback_url
from ..callbacks import CallbackMessage, CallbackMessageType, Firmware, UpgradeSchedule
from ..transport.base import Headers, Request, Response
from ..transport.memory import InMemoryTransport
from ..v1.models import CallbackService, FotaV1CallbackRegistrationRequest, RegisteredCallbacks
from ._asgi import AsgiApp
from ._delivery import (
    DEFAULT_DELIVERY_TIMEOUT,
    Deliverer,
    Delivery,
    DeliveryVersion,
    UpgradeEventType,
    check_service,
    check_version,
    complete_message,
    firmware_list_json,
    message_json,
    registration_error,
    upgrade_event_type,
    upgrade_schedule_json,
)
from ._faults import Fault, FaultQueue
from ._records import Operation, RecordedRequest, Version, check_filter

__all__ = ["AccountCallbacks", "FakeThingSpace"]

FAKE_ROOT = "https://thingspace.fake.invalid"
"""The root `client()` uses: a reserved name, so that a request escaping the fake never reaches a real host."""

_DEFAULT_CLIENT_ID = "fake-client-id"
_DEFAULT_CLIENT_SECRET = "fake-client-secret"
_DEFAULT_USERNAME = "fake-username"
_DEFAULT_PASSWORD = "fake-password"

# The fake reads wire.md itself, rather than the SDK's endpoint declarations, so that it catches a wrong path
# in the SDK instead of agreeing with it.
_URL_PATH = re.compile(r"(?:[A-Za-z][A-Za-z0-9+.\-]*:)?(?://[^/?#]*)?([^?#]*)")
_CALLBACKS_PATH = re.compile(r"/api/fota/(v[123])/callbacks/([^/]+)(?:/name/([^/]+))?")
_URL_CALLBACK_METHODS: Mapping[str, Operation] = {
    "GET": "list_registered_callbacks",
    "PUT": "update_callback",
    "POST": "register_callback",
    "DELETE": "deregister_callback",
}
_CALLBACK_ROUTES: Mapping[tuple[str, bool], tuple[Version, Mapping[str, Operation]]] = {
    ("v1", False): ("v1", {"GET": "list_registered_callbacks", "POST": "register_callback"}),
    ("v1", True): ("v1", {"DELETE": "deregister_callback"}),
    ("v2", False): ("v2", _URL_CALLBACK_METHODS),
    ("v3", False): ("v3", _URL_CALLBACK_METHODS),
}
_AUTH_ROUTES: Mapping[str, tuple[Version, Mapping[str, Operation]]] = {
    "/api/ts/v1/oauth2/token": ("oauth", {"POST": "token"}),
    "/api/m2m/v1/session/login": ("m2m", {"POST": "login"}),
    "/api/m2m/v1/session/logout": ("m2m", {"POST": "logout"}),
}
_CALLBACK_URL_SCHEMES: Mapping[str, tuple[str, ...]] = {"v1": ("http", "https"), "v2": ("https",), "v3": ("https",)}
_NO_METHODS: Mapping[str, Operation] = MappingProxyType({})
_V1_SERVICE = "Fota"
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")  # RFC 6749, 3.3

_NO_HEADERS = Headers()
_JSON_HEADERS = Headers((("Content-Type", "application/json"),))
_TOKEN_HEADERS = Headers((("Content-Type", "application/json"), ("Cache-Control", "no-store"), ("Pragma", "no-cache")))
_BEARER_CHALLENGE = Headers(
    (("Content-Type", "application/json"), ("WWW-Authenticate", 'Bearer realm="ThingSpace", error="invalid_token"'))
)
_BASIC_CHALLENGE = Headers((("Content-Type", "application/json"), ("WWW-Authenticate", 'Basic realm="ThingSpace"')))


def _route(path: str) -> tuple[Version | None, Mapping[str, Operation], str | None, str | None]:
    """What `path` is: its API (None: not served), the operation of each method, the account (decoded) and
    V1 service path segments."""
    found = _CALLBACKS_PATH.fullmatch(path)
    if found is None:
        version, methods = _AUTH_ROUTES.get(path, (None, _NO_METHODS))
        return version, methods, None, None
    route = _CALLBACK_ROUTES.get((found[1], found[3] is not None))
    if route is None:
        return None, _NO_METHODS, None, None
    account = found[2]
    return route[0], route[1], unquote(account) if "%" in account else account, found[3]


_encode = json.JSONEncoder(separators=(",", ":")).encode  # made once: json.dumps with options makes one per call


def _json(status_code: int, body: object, headers: Headers = _JSON_HEADERS) -> Response:
    return Response(status_code, headers, _encode(body).encode())


class _Refusal(Exception):
    """Ends the handling of a request with `response` (an error answer)."""

    def __init__(self, response: Response) -> None:
        self.response = response


def _refuse(status_code: int, code: str, message: str) -> NoReturn:
    raise _Refusal(_json(status_code, {"errorCode": code, "errorMessage": message}))


def _refuse_oauth(status_code: int, error: str, description: str, headers: Headers = _JSON_HEADERS) -> NoReturn:
    raise _Refusal(_json(status_code, {"error": error, "error_description": description}, headers))


def _refuse_bearer(description: str) -> NoReturn:
    _refuse_oauth(401, "invalid_token", description, _BEARER_CHALLENGE)


def _media_type(headers: Headers) -> str | None:
    value = headers.get("content-type")
    return None if value is None else value.partition(";")[0].strip().lower()


def _json_object(request: Request) -> dict[str, Any]:
    if _media_type(request.headers) != "application/json":
        _refuse(415, "UnsupportedMediaType", "the request body must be sent as Content-Type: application/json")
    try:
        data = json.loads(request.content)
    except (ValueError, RecursionError):  # includes a body that is not UTF-8
        _refuse(400, "InvalidRequestBody", "the request body is not JSON")
    if not isinstance(data, dict):
        _refuse(400, "InvalidRequestBody", f"the request body must be a JSON object, not {type(data).__name__}")
    return data


def _required_str(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if value is None:
        _refuse(400, "InvalidRequestBody", f"{key!r} is required")
    if not isinstance(value, str):
        _refuse(400, "InvalidRequestBody", f"{key!r} must be a string, not {type(value).__name__}")
    return value


def _optional_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        _refuse(400, "InvalidRequestBody", f"{key!r} must be a string, not {type(value).__name__}")
    return value


def _callback_url(url: str, version: str) -> str:
    """`url` if the version accepts it as a callback address, else a 400 InvalidCallbackUrl."""
    try:
        return check_callback_url(url, _CALLBACK_URL_SCHEMES[version], "url")
    except InvalidArgumentError as exc:
        _refuse(400, "InvalidCallbackUrl", str(exc))


def _registration_json(entry: RegisteredCallbacks) -> dict[str, str]:
    fields = (
        ("aname", entry.aname),
        ("name", entry.name),
        ("url", entry.url),
        ("username", entry.username),
        ("password", entry.password),
    )
    return {key: value for key, value in fields if value is not None}


@attrs.frozen
class AccountCallbacks:
    """What is registered for one account: V1 registrations by service name, the V2 and V3 callback URLs."""

    v1: Mapping[str, RegisteredCallbacks] = attrs.field(factory=lambda: MappingProxyType({}))
    v2: str | None = None
    v3: str | None = None


_NO_V1_CALLBACKS = Response(200, _NO_HEADERS, b"")  # wire.md: an empty body means none registered
_NO_URL_CALLBACK = Response(200, _JSON_HEADERS, b"{}")
_DEREGISTERED = Response(200, _JSON_HEADERS, b'{"success":true}')


class _AccountState:
    """One account's registrations. The answer to listing a version is kept until that version changes:
    listing is what benchmarks repeat, and encoding JSON would be most of its cost."""

    __slots__ = ("_listings", "urls", "v1")

    def __init__(self) -> None:
        self.v1: dict[str, RegisteredCallbacks] = {}
        self.urls: dict[str, str] = {}  # "v2" / "v3" -> the callback URL
        self._listings: dict[str, Response] = {}

    def changed(self, version: str) -> None:
        self._listings.pop(version, None)

    def listing(self, version: str) -> Response:
        answer = self._listings.get(version)
        if answer is None:
            if version == "v1":
                entries = [_registration_json(entry) for entry in self.v1.values()]
                answer = _json(200, entries) if entries else _NO_V1_CALLBACKS
            else:
                url = self.urls.get(version)
                answer = _NO_URL_CALLBACK if url is None else _json(200, {"url": url})
            self._listings[version] = answer
        return answer

    def snapshot(self) -> AccountCallbacks:
        return AccountCallbacks(MappingProxyType(dict(self.v1)), self.urls.get("v2"), self.urls.get("v3"))


@attrs.frozen
class _Accepted:
    """The credentials the fake accepts; None accepts any."""

    client_id: str | None = None
    client_secret: str | None = None
    username: str | None = None
    password: str | None = None
    scopes: frozenset[str] | None = None


V1Seed = Mapping[str, RegisteredCallbacks] | Iterable[RegisteredCallbacks | FotaV1CallbackRegistrationRequest]
"""What `seed(v1=...)` takes: `AccountCallbacks.v1` of a snapshot, or registrations."""

_CallbackHandler = Callable[[Request, Version, str, str | None], Response]
_AuthHandler = Callable[[Request], Response]


class FakeThingSpace:
    """An in-memory, stateful fake of ThingSpace Software Management Callbacks V1/V2/V3 with its OAuth token
    and M2M session endpoints. See this module's docstring for its exact behaviour.

    `token_lifetime` is the life of the access tokens it issues, in seconds of its clock. The clock starts at 0
    and moves only with `advance()`; pass `clock` to read another one (`advance()` then adds to it).
    `record_requests=False` stops recording requests (for long benchmarks).

    Callback messages (`emit*`) are POSTed with a short-lived `httpx.AsyncClient` per delivery, checking
    certificates with `delivery_verify` (True: httpx's default CAs, i.e. certifi or `SSL_CERT_FILE`/`SSL_CERT_DIR`;
    an `ssl.SSLContext`, e.g. trusting a test CA; False: no check) and no proxy from the environment, within
    `delivery_timeout` seconds. `delivery_client` replaces that client (e.g. `httpx.AsyncClient(
    transport=httpx.ASGITransport(app))` to deliver to an app in-process); it is never closed by the fake.
    """

    def __init__(
        self,
        *,
        token_lifetime: float = 3600.0,
        clock: Callable[[], float] | None = None,
        record_requests: bool = True,
        delivery_timeout: float = DEFAULT_DELIVERY_TIMEOUT,
        delivery_verify: ssl.SSLContext | bool = True,
        delivery_client: httpx.AsyncClient | None = None,
    ) -> None:
        if isinstance(token_lifetime, bool) or not isinstance(token_lifetime, (int, float)) or not token_lifetime > 0:
            raise ValueError(f"token_lifetime must be a positive number of seconds, got {token_lifetime!r}")
        self._token_lifetime = float(token_lifetime)
        self._clock: Callable[[], float] = clock if clock is not None else (lambda: 0.0)
        self._offset = 0.0
        self._record = record_requests
        self._lock = threading.Lock()
        self._accounts: dict[str, _AccountState] = {}
        self._tokens: dict[str, float] = {}  # access token -> when it expires (fake clock)
        self._sessions: set[str] = set()
        self._accepted = _Accepted()
        self._faults = FaultQueue()
        self._recorded: list[RecordedRequest] = []
        self._callback_handlers: dict[tuple[Version, Operation], _CallbackHandler] = {
            ("v1", "list_registered_callbacks"): self._list,
            ("v1", "register_callback"): self._v1_register,
            ("v1", "deregister_callback"): self._v1_deregister,
        }
        for version in ("v2", "v3"):
            self._callback_handlers.update(
                {
                    (version, "list_registered_callbacks"): self._list,
                    (version, "register_callback"): self._url_register,
                    (version, "update_callback"): self._url_update,
                    (version, "deregister_callback"): self._url_deregister,
                }
            )
        self._auth_handlers: dict[Operation, _AuthHandler] = {
            "token": self._token,
            "login": self._login,
            "logout": self._logout,
        }
        self._deliverer = Deliverer(timeout=delivery_timeout, verify=delivery_verify, client=delivery_client)
        self.asgi_app = AsgiApp(self.handle)
        """An ASGI 3 application serving this fake over HTTP (e.g. with uvicorn, or `serve(fake)`)."""

    # -- clients ---------------------------------------------------------------------------------------------

    def transport(self) -> InMemoryTransport:
        """A transport that hands every request to `handle`, in-process."""
        return InMemoryTransport(self.handle)

    def client(self, **kwargs: Any) -> FotaCallbacksClient:
        """A `FotaCallbacksClient` on `transport()` that logs in with credentials this fake accepts (OAuth client
        credentials and an M2M username/password). `kwargs` override any argument, e.g. `base_url` and
        `transport` to go over HTTP, `max_retries`, `sleep`, or `access_token`/`m2m_token` for static tokens."""
        accepted = self._accepted
        options: dict[str, Any] = {"base_url": FAKE_ROOT}
        if "access_token" not in kwargs:
            options["client_id"] = _DEFAULT_CLIENT_ID if accepted.client_id is None else accepted.client_id
            options["client_secret"] = (
                _DEFAULT_CLIENT_SECRET if accepted.client_secret is None else accepted.client_secret
            )
        if "m2m_token" not in kwargs:
            options["username"] = _DEFAULT_USERNAME if accepted.username is None else accepted.username
            options["password"] = _DEFAULT_PASSWORD if accepted.password is None else accepted.password
        options.update(kwargs)
        if "transport" not in options:
            options["transport"] = self.transport()
        return FotaCallbacksClient(**options)

    # -- clock and credentials -------------------------------------------------------------------------------

    def now(self) -> float:
        """The fake's current time, in seconds."""
        return self._clock() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the fake's clock forward (tokens issued before may expire)."""
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds >= 0:
            raise ValueError(f"seconds must be a number >= 0, got {seconds!r}")
        with self._lock:
            self._offset += seconds

    def accept_only(
        self,
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        username: str | None = None,
        password: str | None = None,
        scopes: Iterable[str] | None = None,
    ) -> None:
        """Accept only these credentials from now on (each None: any), replacing earlier restrictions.

        `scopes` are the scopes a token request may ask for. `accept_only()` accepts anything again. Tokens and
        sessions already issued stay valid (see `revoke_tokens`).
        """
        if isinstance(scopes, str):
            raise TypeError("scopes must be a collection of scope names, not one str")
        self._accepted = _Accepted(
            client_id, client_secret, username, password, None if scopes is None else frozenset(scopes)
        )

    def issue_tokens(self) -> tuple[str, str]:
        """A fresh (access token, M2M session token) pair, for clients given static tokens."""
        with self._lock:
            return self._new_access_token(), self._new_session()

    def revoke_tokens(self) -> None:
        """Invalidate every access token and session issued so far: the next call with them gets a 401."""
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

    # -- state -----------------------------------------------------------------------------------------------

    def callbacks(self, account: str) -> AccountCallbacks:
        """An immutable snapshot of what is registered for `account`."""
        account = check_account(account)
        with self._lock:
            state = self._accounts.get(account)
            return AccountCallbacks() if state is None else state.snapshot()

    def seed(
        self,
        account: str,
        *,
        v1: V1Seed | None = None,
        v2: str | None = None,
        v3: str | None = None,
    ) -> None:
        """Register callbacks for `account` as if through the API: `v1` registrations (replacing those of the
        same name; `RegisteredCallbacks` may carry any service name), the `v2` and `v3` callback URLs.

        Raises `InvalidArgumentError` (a `ValueError`) for what the API would refuse.
        """
        account = check_account(account)
        items = v1.values() if isinstance(v1, Mapping) else v1 or ()
        entries = dict(self._seed_entry(account, item) for item in items)
        urls = {
            version: check_callback_url(url, _CALLBACK_URL_SCHEMES[version], version)
            for version, url in (("v2", v2), ("v3", v3))
            if url is not None
        }
        with self._lock:
            state = self._accounts.setdefault(account, _AccountState())
            state.v1.update(entries)
            state.urls.update(urls)
            for version in ("v1", *urls) if entries else urls:
                state.changed(version)  # the cached listing answer is stale now

    @staticmethod
    def _seed_entry(account: str, item: object) -> tuple[str, RegisteredCallbacks]:
        if isinstance(item, FotaV1CallbackRegistrationRequest):
            name: object = str(item.name)
        elif isinstance(item, RegisteredCallbacks):
            name = item.name
        else:
            raise InvalidArgumentError(
                "v1", f"expected RegisteredCallbacks or FotaV1CallbackRegistrationRequest, got {type(item).__name__}"
            )
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError("v1.name", "a V1 registration needs a service name")
        url = check_callback_url(item.url, _CALLBACK_URL_SCHEMES["v1"], "v1.url")
        return name, RegisteredCallbacks(
            aname=account, name=name, url=url, username=item.username, password=item.password
        )

    def reset(self) -> None:
        """Forget every registration, token, session, armed fault, recorded request and recorded delivery.

        `accept_only` restrictions, delivery redirects and the clock are kept.
        """
        with self._lock:
            self._accounts.clear()
            self._tokens.clear()
            self._sessions.clear()
            self._recorded.clear()
        self._faults.clear()
        self._deliverer.clear()

    # -- recording and faults --------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far (since `clear_requests`/`reset`), in arrival order."""
        return list(self._recorded)

    def requests_for(self, version: Version | None = None, operation: Operation | None = None) -> list[RecordedRequest]:
        """The recorded requests of `version` and/or `operation`."""
        check_filter(version, operation)
        return [
            recorded
            for recorded in list(self._recorded)
            if (version is None or recorded.version == version)
            and (operation is None or recorded.operation == operation)
        ]

    def clear_requests(self) -> None:
        """Forget the requests recorded so far."""
        self._recorded.clear()

    def inject(
        self,
        fault: Fault,
        *,
        times: int = 1,
        version: Version | None = None,
        operation: Operation | None = None,
    ) -> None:
        """Act out `fault` for the next `times` requests of `version` and/or `operation` (None: any)."""
        if not isinstance(fault, Fault):
            raise TypeError(f"expected a Fault, got {type(fault).__name__}")
        if isinstance(times, bool) or not isinstance(times, int) or times < 1:
            raise ValueError(f"times must be an int >= 1, got {times!r}")
        check_filter(version, operation)
        self._faults.arm(fault, times, version, operation)

    def pending_faults(self) -> list[tuple[Fault, int]]:
        """Each injected fault not yet used up, with how many more requests it applies to."""
        return self._faults.pending()

    def clear_faults(self) -> None:
        """Disarm every injected fault."""
        self._faults.clear()

    # -- callback delivery -----------------------------------------------------------------------------------

    async def emit(
        self,
        account: str,
        message: Mapping[str, Any] | CallbackMessage | bytes,
        *,
        version: DeliveryVersion = "v1",
        service: str | CallbackService = CallbackService.FOTA,
    ) -> Delivery:
        """POST a callback message to the URL registered for `account` and `version` (V1: the registration of
        `service`), as ThingSpace does; return the listener's answer as a `Delivery` (also in `deliveries`).

        `message` is a JSON object (a mapping with camelCase keys, as on the wire) or a `CallbackMessage` model;
        the documented keys it lacks are filled in: `accountName` (the account), `username` and `password` (V1:
        the registration's, echoed; else ""), `participantName` (""), `firmwareList` ([]), `upgradeScheduled`
        ({}). Keys it has are sent as given (a wrong `password` plays a forged message). `bytes` are sent
        verbatim. The delivery may take up to `delivery_timeout` seconds.

        Raises `CallbackNotRegisteredError` (a `LookupError`) when nothing is registered, before sending;
        `CallbackDeliveryError` when the listener does not answer. Any HTTP status is an answer: see
        `Delivery.status_code` / `.ok`.
        """
        account = check_account(account)
        version = check_version(version)
        name = check_service(service)
        if isinstance(message, (bytes, bytearray, memoryview)):
            registered_url, _, _ = self._delivery_target(account, version, name)
            content = bytes(message)
        else:
            data = message_json(message)
            registered_url, username, password = self._delivery_target(account, version, name)
            data = complete_message(data, account=account, username=username, password=password)
            content = json.dumps(data, separators=(",", ":")).encode()
        return await self._deliverer.deliver(
            account=account,
            version=version,
            service=name if version == "v1" else None,
            registered_url=registered_url,
            content=content,
        )

    async def emit_firmware_list(
        self,
        account: str,
        firmware: Iterable[Firmware | Mapping[str, Any]],
        *,
        version: DeliveryVersion = "v1",
        participant_name: str = "",
        extra: Mapping[str, Any] | None = None,
        service: str | CallbackService = CallbackService.FOTA,
    ) -> Delivery:
        """Emit a `firmwareList` message (new firmware is available) listing `firmware` (`Firmware` models, or
        JSON objects with camelCase keys), with `upgradeScheduled` empty. `extra` adds or replaces top-level
        keys. Otherwise as `emit`."""
        data: dict[str, Any] = {
            "participantName": participant_name,
            "type": "firmwareList",
            "firmwareList": firmware_list_json(firmware),
            "upgradeScheduled": {},
            **(extra or {}),
        }
        return await self.emit(account, data, version=version, service=service)

    async def emit_upgrade_event(
        self,
        account: str,
        type: UpgradeEventType | CallbackMessageType,
        *,
        upgrade_id: str | None = None,
        firmware_name: str | None = None,
        start_date: str | None = None,
        upgrade: UpgradeSchedule | Mapping[str, Any] | None = None,
        version: DeliveryVersion = "v1",
        participant_name: str = "",
        extra: Mapping[str, Any] | None = None,
        service: str | CallbackService = CallbackService.FOTA,
    ) -> Delivery:
        """Emit an `upgradeScheduled`, `upgradeProgress` or `upgradeFinished` message, with `firmwareList` empty.

        Its `upgradeScheduled` object is `upgrade` (a model or JSON object), with `upgradeId`, `firmwareName`
        and `startDate` set from the keywords given; `{}` when none is. What else ThingSpace sends in progress
        and finished messages is not published: pass it in `extra` (top-level keys added or replaced, e.g.
        `{"status": "InProgress"}`). Otherwise as `emit`.
        """
        data: dict[str, Any] = {
            "participantName": participant_name,
            "type": upgrade_event_type(type),
            "firmwareList": [],
            "upgradeScheduled": upgrade_schedule_json(
                upgrade, upgrade_id=upgrade_id, firmware_name=firmware_name, start_date=start_date
            ),
            **(extra or {}),
        }
        return await self.emit(account, data, version=version, service=service)

    def redirect_deliveries(self, registered_url: str, to: str | None) -> None:
        """Deliver the messages meant for `registered_url` (exactly as registered) to `to` instead, e.g. to the
        `http://127.0.0.1:PORT/...` of a test's listener, since V2/V3 accept only https:// registrations.
        `to=None` removes the redirect. Redirects are kept by `reset()`."""
        self._deliverer.redirect(registered_url, to)

    @property
    def delivery_redirects(self) -> dict[str, str]:
        """The redirects in force: registered URL -> where its messages go."""
        return self._deliverer.redirects

    @property
    def deliveries(self) -> list[Delivery]:
        """Every callback delivery attempted so far (since `clear_deliveries`/`reset`), in order."""
        return self._deliverer.deliveries

    def clear_deliveries(self) -> None:
        """Forget the deliveries recorded so far."""
        self._deliverer.clear()

    def _delivery_target(
        self, account: str, version: DeliveryVersion, service: str
    ) -> tuple[str, str | None, str | None]:
        """The URL registered for `account` and `version` (V1: `service`), with the V1 username and password."""
        with self._lock:
            state = self._accounts.get(account)
            if state is not None:
                if version == "v1":
                    entry = state.v1.get(service)
                    if entry is not None and entry.url is not None:
                        return entry.url, entry.username, entry.password
                else:
                    url = state.urls.get(version)
                    if url is not None:
                        return url, None, None
        raise registration_error(account, version, service)

    # -- the core --------------------------------------------------------------------------------------------

    async def handle(self, request: Request) -> Response:
        """Answer one request as ThingSpace would (or act out an injected fault).

        Raises `ApiConnectionError` (`request_sent=True`) for an injected `Fault.drop()`.
        """
        path = _URL_PATH.match(request.url).group(1)  # type: ignore[union-attr]  # it matches every string
        version, methods, account, service = _route(path)
        operation = methods.get(request.method)
        if self._record:
            # list.append is atomic, also against the HTTP server's thread.
            self._recorded.append(
                RecordedRequest(
                    request.method, request.url, path, request.headers, request.content, version, operation, account
                )
            )

        fault = self._faults.take(version, operation)
        if fault is not None:
            if fault.kind == "drop":
                raise ApiConnectionError(
                    "FakeThingSpace dropped the connection (injected fault)", request=request, request_sent=True
                )
            if fault.kind != "delay":
                return fault.response()
            await anyio.sleep(fault.seconds)

        if version is None:
            return _json(404, {"errorCode": "ResourceNotFound", "errorMessage": f"no resource at {path}"})
        if operation is None:
            allowed = ", ".join(methods)
            return _json(
                405,
                {"errorCode": "MethodNotAllowed", "errorMessage": f"{request.method} is not allowed here ({allowed})"},
                Headers((*_JSON_HEADERS.raw(), ("Allow", allowed))),
            )
        try:
            if version == "oauth" or version == "m2m":
                return self._auth_handlers[operation](request)
            self._check_bearer(request.headers)
            self._check_session(request.headers)
            try:
                account = check_account(account)
            except InvalidArgumentError as exc:
                _refuse(400, "InvalidAccount", exc.problem)
            return self._callback_handlers[version, operation](request, version, account, service)
        except _Refusal as refusal:
            return refusal.response

    # -- authentication --------------------------------------------------------------------------------------

    def _check_bearer(self, headers: Headers) -> None:
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

    def _check_session(self, headers: Headers) -> str:
        session = headers.get("vz-m2m-token")
        if session is None:
            _refuse(401, "UnauthorizedSession", "the request has no VZ-M2M-Token header")
        if session not in self._sessions:
            _refuse(401, "UnauthorizedSession", "the M2M session token is unknown, logged out or revoked")
        return session

    def _token(self, request: Request) -> Response:
        if _media_type(request.headers) != "application/x-www-form-urlencoded":
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

        client_id, client_secret = self._basic_credentials(request.headers)
        accepted = self._accepted
        if (accepted.client_id is not None and client_id != accepted.client_id) or (
            accepted.client_secret is not None and client_secret != accepted.client_secret
        ):
            _refuse_oauth(401, "invalid_client", "client authentication failed", _BASIC_CHALLENGE)
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
        return _json(200, body, _TOKEN_HEADERS)

    @staticmethod
    def _basic_credentials(headers: Headers) -> tuple[str, str]:
        value = headers.get("authorization")
        if value is None:
            _refuse_oauth(401, "invalid_client", "no client credentials (Authorization: Basic)", _BASIC_CHALLENGE)
        scheme, _, encoded = value.partition(" ")
        try:
            if scheme.lower() != "basic":
                raise ValueError(scheme)
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (ValueError, binascii.Error):  # UnicodeDecodeError is a ValueError
            decoded = ""
        client_id, colon, client_secret = decoded.partition(":")
        if not colon or not client_id:
            _refuse_oauth(401, "invalid_client", "the Authorization: Basic credentials are garbled", _BASIC_CHALLENGE)
        return client_id, client_secret

    def _login(self, request: Request) -> Response:
        self._check_bearer(request.headers)
        data = _json_object(request)
        username, password = _required_str(data, "username"), _required_str(data, "password")
        accepted = self._accepted
        if (accepted.username is not None and username != accepted.username) or (
            accepted.password is not None and password != accepted.password
        ):
            _refuse(400, "InvalidCredentials", "the username or password is not valid")
        with self._lock:
            session = self._new_session()
        return _json(200, {"sessionToken": session})

    def _logout(self, request: Request) -> Response:
        self._check_bearer(request.headers)
        with self._lock:
            session = self._check_session(request.headers)
            self._sessions.discard(session)
        return _json(200, {"sessionToken": session})

    # -- V1 --------------------------------------------------------------------------------------------------

    def _list(self, request: Request, version: Version, account: str, service: str | None) -> Response:
        with self._lock:
            state = self._accounts.get(account)
            if state is not None:
                return state.listing(version)
        return _NO_V1_CALLBACKS if version == "v1" else _NO_URL_CALLBACK

    def _v1_register(self, request: Request, version: Version, account: str, service: str | None) -> Response:
        data = _json_object(request)
        name = _required_str(data, "name")
        if name != _V1_SERVICE:
            _refuse(400, "InvalidRequestBody", f"'name' must be {_V1_SERVICE!r}")
        url = _callback_url(_required_str(data, "url"), version)
        entry = RegisteredCallbacks(
            aname=account,
            name=name,
            url=url,
            username=_optional_str(data, "username"),
            password=_optional_str(data, "password"),
        )
        with self._lock:
            state = self._accounts.setdefault(account, _AccountState())
            state.v1[name] = entry
            state.changed(version)
        return _json(200, {"accountName": account, "serviceName": name})

    def _v1_deregister(self, request: Request, version: Version, account: str, service: str | None) -> Response:
        name = unquote(service or "")
        with self._lock:
            state = self._accounts.get(account)
            if state is not None and state.v1.pop(name, None) is not None:
                state.changed(version)
                return _DEREGISTERED
        _refuse(400, "CallbackNotFound", f"no callback is registered for service {name!r} of account {account}")

    # -- V2 and V3 -------------------------------------------------------------------------------------------

    def _url_register(self, request: Request, version: Version, account: str, service: str | None) -> Response:
        url = _callback_url(_required_str(_json_object(request), "url"), version)
        with self._lock:
            state = self._accounts.setdefault(account, _AccountState())
            state.urls[version] = url
            state.changed(version)
        return _json(200, {"url": url})

    def _url_update(self, request: Request, version: Version, account: str, service: str | None) -> Response:
        url = _callback_url(_required_str(_json_object(request), "url"), version)
        with self._lock:
            state = self._accounts.get(account)
            if state is not None and version in state.urls:
                state.urls[version] = url
                state.changed(version)
                return _json(200, {"url": url})
        _refuse(400, "CallbackNotFound", f"no {version} callback is registered for account {account}")

    def _url_deregister(self, request: Request, version: Version, account: str, service: str | None) -> Response:
        with self._lock:
            state = self._accounts.get(account)
            if state is not None and state.urls.pop(version, None) is not None:
                state.changed(version)
                return _DEREGISTERED
        _refuse(400, "CallbackNotFound", f"no {version} callback is registered for account {account}")

    def __repr__(self) -> str:
        return f"<FakeThingSpace accounts={len(self._accounts)} requests={len(self._recorded)}>"


def _seconds(value: float) -> int | float:
    """A whole number of seconds as an int (`expires_in` is an integer in RFC 6749), others as they are."""
    return int(value) if value.is_integer() else value
