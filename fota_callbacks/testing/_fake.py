"""FakeThingSpace: an in-memory, stateful fake of ThingSpace's Software Management Callbacks V1, V2 and V3,
with the OAuth 2 token endpoint and the M2M session login/logout they need, as Verizon documents them.

One core, `handle(Request) -> Response`, routes every request; `transport()` puts it behind an
`InMemoryTransport` and `asgi_app` serves it over real HTTP. Only the URL's path matters (any scheme and host).
The parts: `_auth_server` (tokens, sessions and their checks), `_registrations` (the store and the V1/V2/V3
operations), `_delivery` (callback messages to listeners), `_wire` (the fake's own reading of the documented wire
format: it does not share the SDK's validators, so that it can catch their bugs). Their docstrings say exactly
how each behaves.

Errors of the callbacks and session endpoints: `{"errorCode": ..., "errorMessage": ...}` with these codes:

- 400 InvalidAccount: the account path segment is not `##########-#####`;
- 400 InvalidRequestBody: the body is not a JSON object, lacks a required key, has a value of the wrong
  type, or (V1) a `name` other than "Fota";
- 400 InvalidCallbackUrl: the callback URL is not an absolute https:// URL with a host (V2, V3), or not an
  http:// or https:// one (V1), or holds whitespace or control characters;
- 400 CallbackNotFound: update or deregister with nothing registered;
- 400 InvalidCredentials: login with a username/password that `accept_only` does not accept;
- 401 UnauthorizedSession (and OAuth's `invalid_token`): see `_auth_server`;
- 404 ResourceNotFound: a path the fake does not serve;
- 405 MethodNotAllowed (with `Allow`): a served path with another method;
- 415 UnsupportedMediaType: a JSON endpoint sent a body labelled neither `application/json` nor `*/*`;
- 413 RequestTooLarge (over HTTP only): a request body over 1 MiB;
- InjectedFault: the default body of `Fault.status(...)`.

Faults injected with `inject` apply to the next matching requests before any routing or auth check is
acted on; a request is recorded whatever happens to it. State changes happen without an await in between and
under a lock, so many tasks (and the HTTP server's thread) can use one fake at once.
"""

from __future__ import annotations

import json
import re
import ssl
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any
from urllib.parse import unquote

import httpx

from .._client import FotaCallbacksClient
from .._errors import InvalidArgumentError
from .._validation import positive_int
from ..callbacks import CallbackMessage, CallbackMessageType, Firmware, UpgradeSchedule
from ..receiver import CallbackReceiver
from ..transport.base import Headers, Request, Response
from ..transport.memory import InMemoryTransport
from ..v1.models import CallbackService
from ._asgi import AsgiApp
from ._auth_server import AuthServer, Credentials
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
    upgrade_event_type,
    upgrade_schedule_json,
)
from ._faults import Fault, FaultQueue
from ._records import Operation, RecordedRequest, Version, check_filter
from ._registrations import AccountCallbacks, Registrations, V1Seed
from ._wire import JSON_HEADERS, Refusal, account_or_refuse, checked_account, json_response

__all__ = ["AccountCallbacks", "FakeThingSpace"]

FAKE_ROOT = "https://thingspace.fake.invalid"
"""The root `client()` uses: a reserved name, so that a request escaping the fake never reaches a real host."""

_DEFAULTS = {
    "client_id": "fake-client-id",
    "client_secret": "fake-client-secret",
    "username": "fake-username",
    "password": "fake-password",
}

# Routes are written from Verizon's API documentation, rather than from the SDK's endpoint declarations, so that
# the fake catches a wrong path in the SDK instead of agreeing with it.
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
_NO_METHODS: Mapping[str, Operation] = MappingProxyType({})


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
        self._auth = AuthServer(token_lifetime=token_lifetime, clock=clock)
        self._registrations = Registrations()
        self._record = record_requests
        self._faults = FaultQueue()
        self._recorded: list[RecordedRequest] = []
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
        accepted = self._auth.accepted
        options: dict[str, Any] = {"base_url": FAKE_ROOT}
        if "access_token" not in kwargs:
            options.update(client_id=accepted.client_id, client_secret=accepted.client_secret)
        if "m2m_token" not in kwargs:
            options.update(username=accepted.username, password=accepted.password)
        for name, default in _DEFAULTS.items():
            if options.get(name, default) is None:  # what `accept_only` left open
                options[name] = default
        options.update(kwargs)
        if "transport" not in options:
            options["transport"] = self.transport()
        return FotaCallbacksClient(**options)

    # -- clock and credentials -------------------------------------------------------------------------------

    def now(self) -> float:
        """The fake's current time, in seconds."""
        return self._auth.now()

    def advance(self, seconds: float) -> None:
        """Move the fake's clock forward (tokens issued before may expire)."""
        self._auth.advance(seconds)

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
        self._auth.accept_only(Credentials(client_id, client_secret, username, password), scopes)

    def issue_tokens(self) -> tuple[str, str]:
        """A fresh (access token, M2M session token) pair, for clients given static tokens."""
        return self._auth.issue()

    def revoke_tokens(self) -> None:
        """Invalidate every access token and session issued so far: the next call with them gets a 401."""
        self._auth.revoke()

    # -- state -----------------------------------------------------------------------------------------------

    def callbacks(self, account: str) -> AccountCallbacks:
        """An immutable snapshot of what is registered for `account`."""
        return self._registrations.snapshot(checked_account(account))

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
        self._registrations.seed(checked_account(account), v1, v2, v3)

    def reset(self) -> None:
        """Forget every registration, token, session, armed fault, recorded request and recorded delivery.

        `accept_only` restrictions, delivery redirects and the clock are kept.
        """
        self._registrations.clear()
        self._auth.revoke()
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
            raise InvalidArgumentError("fault", f"expected a Fault, got {type(fault).__name__}")
        positive_int(times, "times")
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
        account = checked_account(account)
        version = check_version(version)
        name = check_service(service)
        if isinstance(message, (bytes, bytearray, memoryview)):
            registered_url, _, _ = self._registrations.target(account, version, name)
            content = bytes(message)
        else:
            data = message_json(message)
            registered_url, username, password = self._registrations.target(account, version, name)
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

    def redirect_deliveries(self, registered_url: str, to: str | CallbackReceiver | None) -> None:
        """Deliver the messages meant for `registered_url` (exactly as registered) to `to` instead, e.g. to the
        `http://127.0.0.1:PORT/...` of a test's listener, since V2/V3 accept only https:// registrations.

        `to` may be a `fota_callbacks.receiver.CallbackReceiver`: each message then goes straight into
        `receiver.receive(body, peer=...)`, in-process, without HTTP, from one of Verizon's published source
        addresses; the `Delivery` returned is the receiver's answer (its `url` is `"in-process:"` + the registered
        URL), and with `background=True` the handler has run when `emit` returns. `to=None` removes the redirect.
        Redirects are kept by `reset()`."""
        self._deliverer.redirect(registered_url, to)

    @property
    def delivery_redirects(self) -> dict[str, str | CallbackReceiver]:
        """The redirects in force: registered URL -> where its messages go."""
        return self._deliverer.redirects

    @property
    def deliveries(self) -> list[Delivery]:
        """Every callback delivery attempted so far (since `clear_deliveries`/`reset`), in order."""
        return self._deliverer.deliveries

    def clear_deliveries(self) -> None:
        """Forget the deliveries recorded so far."""
        self._deliverer.clear()

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
        if fault is not None and (replaced := await fault._act(request)) is not None:
            return replaced

        if version is None:
            return json_response(404, {"errorCode": "ResourceNotFound", "errorMessage": f"no resource at {path}"})
        if operation is None:
            allowed = ", ".join(methods)
            return json_response(
                405,
                {"errorCode": "MethodNotAllowed", "errorMessage": f"{request.method} is not allowed here ({allowed})"},
                Headers((*JSON_HEADERS.raw(), ("Allow", allowed))),
            )
        try:
            if version == "oauth" or version == "m2m":
                return self._auth.handlers[operation](request)
            self._auth.check_bearer(request.headers)
            self._auth.check_session(request.headers)
            handler = self._registrations.handlers[version, operation]
            return handler(request, version, account_or_refuse(account), service)
        except Refusal as refusal:
            return refusal.response

    def __repr__(self) -> str:
        return f"<FakeThingSpace accounts={len(self._registrations)} requests={len(self._recorded)}>"
