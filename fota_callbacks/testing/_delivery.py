"""Callback delivery (ThingSpace POSTing a callback message to the registered URL), over real HTTP with httpx.

- `await emit(account, message, version=...)`, `emit_firmware_list(...)` and `emit_upgrade_event(...)` POST a
  callback message (JSON, `Content-Type: application/json`) to the URL registered for the account: for V1 the
  registration of `service` ("Fota"), for V2/V3 the account's URL of that version. Nothing registered:
  `CallbackNotRegisteredError`, nothing sent. Messages have Verizon's documented shape: `accountName`,
  `participantName`, `type`, `username` and `password` (V1: the registration's, echoed; else ""),
  `firmwareList` and `upgradeScheduled`, the elements not relevant to the type empty (`[]`, `{}`).
- Only to the registered URL, or where `redirect_deliveries(registered_url, to=...)` says (exactly that
  registered URL; e.g. to an `http://127.0.0.1` listener in tests, as V2/V3 register only https:// URLs, or
  straight into a `CallbackReceiver`, in-process: no HTTP, from one of Verizon's published source addresses).
  No redirects followed, no retries, no proxies; each delivery has a timeout (`delivery_timeout`).
- The listener's answer, whatever its status, is returned as a `Delivery` and recorded in `deliveries`; no
  answer (connection refused, timeout) raises `CallbackDeliveryError`, recorded too.

The `emit*` methods of `FakeThingSpace` build the message; `Deliverer` here sends it, applies the redirects
and records every `Delivery`.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Literal, get_args

import anyio
import attrs
import httpx

from .._errors import FotaError, InvalidArgumentError
from .._serde import to_camel
from ..callbacks import (
    VERIZON_CALLBACK_SOURCE_IPS,
    CallbackMessage,
    CallbackMessageType,
    Firmware,
    FirmwareListMessage,
    UnknownCallbackMessage,
    UpgradeFinishedMessage,
    UpgradeProgressMessage,
    UpgradeSchedule,
    UpgradeScheduledMessage,
)
from ..receiver import CallbackReceiver
from ..v1.models import CallbackService
from ._wire import checked_url, json_or_none, shown

__all__ = [
    "DEFAULT_DELIVERY_TIMEOUT",
    "CallbackDeliveryError",
    "CallbackNotRegisteredError",
    "Deliverer",
    "Delivery",
    "DeliveryVersion",
    "UpgradeEventType",
]

DeliveryVersion = Literal["v1", "v2", "v3"]
"""The callbacks API whose registration a message is delivered to."""

UpgradeEventType = Literal["upgradeScheduled", "upgradeProgress", "upgradeFinished"]
"""The `type` of the messages `emit_upgrade_event` sends."""

DEFAULT_DELIVERY_TIMEOUT = 10.0
"""Seconds one delivery may take, from connecting to the end of the response."""

_DELIVERY_VERSIONS = frozenset(get_args(DeliveryVersion))
_UPGRADE_EVENT_TYPES = frozenset(get_args(UpgradeEventType))
_MESSAGE_MODELS = (
    FirmwareListMessage,
    UpgradeScheduledMessage,
    UpgradeProgressMessage,
    UpgradeFinishedMessage,
    UnknownCallbackMessage,
)
_HEADERS = {"Content-Type": "application/json", "User-Agent": "FakeThingSpace"}
IN_PROCESS_PEER = min(VERIZON_CALLBACK_SOURCE_IPS)
"""The peer address a `CallbackReceiver` sees for an in-process delivery: one of Verizon's published source
addresses, so a receiver with `allowed_ips="verizon"` takes it as it takes ThingSpace's."""


class CallbackNotRegisteredError(FotaError, LookupError):
    """`emit*` found no callback registered for the account and version (V1: and service name): nothing was sent."""

    def __init__(self, account: str, version: DeliveryVersion, service: str | None = None) -> None:
        what = f"v1 callback for service {service!r}" if version == "v1" else f"{version} callback"
        super().__init__(f"no {what} is registered for account {account}: nothing to deliver to")
        self.account = account
        self.version = version
        self.service = service


class CallbackDeliveryError(FotaError):
    """The listener gave no response: the connection failed or the delivery timed out. `delivery` is the
    recorded attempt (its `status_code` is None); the httpx exception (or `TimeoutError`) is the cause.

    An answer with any status, 401 or 500 included, is not an error: it is in the returned `Delivery`.
    """

    def __init__(self, message: str, delivery: Delivery) -> None:
        super().__init__(message)
        self.delivery = delivery


@attrs.frozen(repr=False)
class Delivery:
    """One callback message the fake POSTed (or tried to), as recorded in `fake.deliveries`.

    `registered_url` is the URL registered for `account` and `version` (`service`: the V1 registration's name),
    `url` where the message was really sent (they differ after `redirect_deliveries`; a delivery into a
    `CallbackReceiver`, in-process, has `url` `"in-process:"` followed by the registered URL). `content` is the JSON
    body sent. `status_code` and `response_body` are the listener's answer; `status_code` is None and `error`
    says why when there was none. `repr` shows neither body: they may hold the echoed V1 password.
    """

    account: str
    version: DeliveryVersion
    service: str | None
    registered_url: str
    url: str
    content: bytes
    status_code: int | None
    response_body: bytes = b""
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the listener answered with a 2xx status."""
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def json(self) -> Any:
        """The message sent, parsed as JSON; None when it is not JSON (a verbatim `bytes` message)."""
        return json_or_none(self.content)

    def __repr__(self) -> str:
        data = self.json
        kind = data.get("type") if isinstance(data, dict) else None
        outcome = self.status_code if self.status_code is not None else f"failed ({self.error})"
        return f"<Delivery {self.version} {self.account} {kind} -> {shown(self.url)}: {outcome}>"


# --- building messages --------------------------------------------------------------------------------------------


def _model_json(value: Any) -> dict[str, Any]:
    """A message, `Firmware` or `UpgradeSchedule` model as its JSON object: set fields by JSON name, then `extra`
    (which also holds documented keys whose value did not fit the field)."""
    data: dict[str, Any] = {}
    for field in attrs.fields(type(value)):
        if field.name in ("extra", "raw"):
            continue
        item = getattr(value, field.name)
        if item is None:
            continue
        if field.name == "firmware_list":
            item = [_model_json(firmware) for firmware in item]
        elif field.name == "upgrade_scheduled":
            item = _model_json(item)
        data[to_camel(field.name)] = item
    for key, item in value.extra.items():
        data.setdefault(key, item)
    return data


def message_json(message: Mapping[str, Any] | CallbackMessage) -> dict[str, Any]:
    """What `emit` sends for `message` before completing it: a copy of a mapping, or a model's JSON object."""
    if isinstance(message, _MESSAGE_MODELS):
        return _model_json(message)
    if isinstance(message, Mapping):
        if not all(isinstance(key, str) for key in message):
            raise InvalidArgumentError("message", "the keys of a JSON object must be str")
        return dict(message)
    raise InvalidArgumentError(
        "message", f"expected a mapping, a CallbackMessage model or bytes, got {type(message).__name__}"
    )


def complete_message(
    data: dict[str, Any], *, account: str, username: str | None, password: str | None
) -> dict[str, Any]:
    """`data` with every documented key it lacks set as ThingSpace would: `accountName` the account,
    `username`/`password` the V1 registration's (else ""), `participantName` "", `firmwareList` [] and
    `upgradeScheduled` {} (empty: not relevant to the message). `type` is never added."""
    defaults: dict[str, Any] = {
        "accountName": account,
        "participantName": "",
        **({"type": data["type"]} if "type" in data else {}),  # keeps the documented order on the wire
        "username": username or "",
        "password": password or "",
        "firmwareList": [],
        "upgradeScheduled": {},
    }
    return {**defaults, **data}


def firmware_list_json(firmware: Iterable[Firmware | Mapping[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(firmware, (str, bytes, Mapping, Firmware)):
        raise InvalidArgumentError("firmware", "expected an iterable of Firmware models or JSON objects")
    items: list[dict[str, Any]] = []
    for item in firmware:
        if isinstance(item, Firmware):
            items.append(_model_json(item))
        elif isinstance(item, Mapping):
            items.append(dict(item))
        else:
            problem = f"expected Firmware models or JSON objects, got {type(item).__name__}"
            raise InvalidArgumentError("firmware", problem)
    return items


def upgrade_event_type(value: object) -> str:
    event = value.value if isinstance(value, CallbackMessageType) else value
    if event not in _UPGRADE_EVENT_TYPES:
        raise InvalidArgumentError("type", f"must be one of {sorted(_UPGRADE_EVENT_TYPES)}, got {value!r}")
    return str(event)


def upgrade_schedule_json(
    schedule: UpgradeSchedule | Mapping[str, Any] | None,
    *,
    upgrade_id: str | None,
    firmware_name: str | None,
    start_date: str | None,
) -> dict[str, Any]:
    """The `upgradeScheduled` object: `schedule` (a model or JSON object), overridden by the keywords given."""
    if schedule is None:
        data: dict[str, Any] = {}
    elif isinstance(schedule, UpgradeSchedule):
        data = _model_json(schedule)
    elif isinstance(schedule, Mapping):
        data = dict(schedule)
    else:
        raise InvalidArgumentError(
            "upgrade", f"expected an UpgradeSchedule or a JSON object, got {type(schedule).__name__}"
        )
    for key, value in (("firmwareName", firmware_name), ("upgradeId", upgrade_id), ("startDate", start_date)):
        if value is not None:
            data[key] = value
    return data


def check_version(version: object) -> DeliveryVersion:
    if version not in _DELIVERY_VERSIONS:
        raise InvalidArgumentError("version", f"must be one of {sorted(_DELIVERY_VERSIONS)}, got {version!r}")
    return version  # type: ignore[return-value]  # checked just above


def check_timeout(timeout: object, parameter: str) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise InvalidArgumentError(parameter, f"must be a positive number of seconds, got {timeout!r}")
    return float(timeout)


# --- sending ------------------------------------------------------------------------------------------------------


class Deliverer:
    """Sends callback messages over HTTP and records them; one per `FakeThingSpace`.

    Without `client`, each delivery uses a short-lived `httpx.AsyncClient` (so a fake serves any event loop, on
    asyncio or trio, and needs no closing), with `verify` and without proxies from the environment. A given
    `client` (e.g. on `httpx.ASGITransport(app)`) is used as it is and never closed.
    """

    def __init__(
        self,
        *,
        timeout: float = DEFAULT_DELIVERY_TIMEOUT,
        verify: ssl.SSLContext | bool = True,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.timeout = check_timeout(timeout, "delivery_timeout")
        if not isinstance(verify, (bool, ssl.SSLContext)):
            raise InvalidArgumentError(
                "delivery_verify", f"expected a bool or an ssl.SSLContext, got {type(verify).__name__}"
            )
        if client is not None:
            if not isinstance(client, httpx.AsyncClient):
                raise InvalidArgumentError(
                    "delivery_client", f"expected an httpx.AsyncClient, got {type(client).__name__}"
                )
            if verify is not True:
                raise InvalidArgumentError("delivery_verify", "configure TLS on the delivery_client you pass instead")
        self._verify = verify
        self._ssl_context: ssl.SSLContext | None = verify if isinstance(verify, ssl.SSLContext) else None
        self._client = client
        self._lock = threading.Lock()
        self._redirects: dict[str, str | CallbackReceiver] = {}
        self._recorded: list[Delivery] = []

    # -- redirects -------------------------------------------------------------------------------------------

    def redirect(self, registered_url: str, to: str | CallbackReceiver | None) -> None:
        registered_url = checked_url(registered_url, ("http", "https"), "registered_url")
        if to is not None and not isinstance(to, CallbackReceiver):
            to = checked_url(to, ("http", "https"), "to")
        with self._lock:
            if to is None:
                self._redirects.pop(registered_url, None)
            else:
                self._redirects[registered_url] = to

    @property
    def redirects(self) -> dict[str, str | CallbackReceiver]:
        with self._lock:
            return dict(self._redirects)

    # -- records ---------------------------------------------------------------------------------------------

    @property
    def deliveries(self) -> list[Delivery]:
        return list(self._recorded)

    def clear(self) -> None:
        self._recorded.clear()

    # -- sending ---------------------------------------------------------------------------------------------

    def _tls(self) -> ssl.SSLContext | bool:
        """What the short-lived clients verify with: one SSL context, made at the first delivery (loading the
        CA certificates takes tens of milliseconds: not once per delivery, nor for fakes that never deliver)."""
        if self._verify is False:
            return False
        if self._ssl_context is None:
            self._ssl_context = httpx.create_ssl_context()
        return self._ssl_context

    async def deliver(
        self,
        *,
        account: str,
        version: DeliveryVersion,
        service: str | None,
        registered_url: str,
        content: bytes,
    ) -> Delivery:
        seconds = self.timeout
        with self._lock:
            target = self._redirects.get(registered_url, registered_url)
        url = target if isinstance(target, str) else f"in-process:{registered_url}"

        def record(status_code: int | None, body: bytes = b"", error: str | None = None) -> Delivery:
            delivery = Delivery(account, version, service, registered_url, url, content, status_code, body, error)
            self._recorded.append(delivery)  # list.append is atomic, also across threads
            return delivery

        after: Callable[[], Awaitable[None]] | None = None
        try:
            with anyio.fail_after(seconds):  # httpx times each phase; this bounds the whole exchange
                if isinstance(target, str):
                    response = await self._post(target, content, seconds)
                    status_code, body = response.status_code, response.content
                else:
                    reception = await target.receive(content, peer=IN_PROCESS_PEER)
                    status_code, body, after = reception.status, reception.body, reception.after
        except (httpx.HTTPError, TimeoutError) as exc:
            if isinstance(exc, (TimeoutError, httpx.TimeoutException)):
                reason = f"no answer within {seconds:g} s"
            else:
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            delivery = record(None, error=reason)
            raise CallbackDeliveryError(
                f"delivering the {version} callback message for {account} to {shown(url)} failed: {reason}",
                delivery,
            ) from exc
        delivery = record(status_code, body)
        if after is not None:  # background=True: the handler runs once the answer is in, as after an HTTP answer
            await after()
        return delivery

    async def _post(self, url: str, content: bytes, seconds: float) -> httpx.Response:
        if self._client is not None:
            return await self._client.post(url, content=content, headers=_HEADERS, timeout=seconds)
        async with httpx.AsyncClient(verify=self._tls(), trust_env=False, timeout=seconds) as client:
            return await client.post(url, content=content, headers=_HEADERS)


def registration_error(account: str, version: DeliveryVersion, service: str | None) -> CallbackNotRegisteredError:
    return CallbackNotRegisteredError(account, version, service if version == "v1" else None)


def check_service(service: object) -> str:
    if isinstance(service, CallbackService):
        return service.value
    if not isinstance(service, str) or not service:
        raise InvalidArgumentError("service", f"expected a V1 service name, got {service!r}")
    return service
