"""The fake's registration store and the V1/V2/V3 callbacks operations on it, per account (`##########-#####`).

- V1 keeps named registrations (service name -> url, username, password).
  `GET /api/fota/v1/callbacks/{account}` answers a JSON array of `{"aname", "name", "url", "username"?,
  "password"?}`, or 200 with an EMPTY body when nothing is registered (as ThingSpace does: an empty body means none).
  `POST` (body `{"name": "Fota", "url": http(s) URL, "username"?, "password"?}`) stores or replaces the
  registration of that name and answers `{"accountName": account, "serviceName": name}`.
  `DELETE /api/fota/v1/callbacks/{account}/name/{service}` removes it, answering `{"success": true}`;
  400 CallbackNotFound when nothing is registered under that name.
- V2 and V3 keep one callback URL per account and version.
  `GET .../callbacks/{account}` answers `{"url": ...}`, or 200 with an EMPTY body when none is registered (as
  ThingSpace documents for V1 and V3 list; V2 is taken to behave the same).
  `POST` (body `{"url": https URL}`) sets or replaces the URL and answers `{"url": ...}`.
  `PUT` (same body) replaces the URL and answers `{"url": ...}`; 400 CallbackNotFound when none is registered.
  `DELETE` removes it, answering `{"success": true}`; 400 CallbackNotFound when none is registered.
- Request bodies are read strictly (types, required keys, a JSON body labelled `Content-Type: application/json`
  or `*/*`, as Verizon's own SDK sends on V2); unknown extra keys are ignored, and `null` counts as absent for
  optional keys. Bodies of GET and DELETE requests are not read.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from urllib.parse import unquote

import attrs

from .._errors import InvalidArgumentError
from ..transport.base import Headers, Request, Response
from ..v1.models import FotaV1CallbackRegistrationRequest, RegisteredCallbacks
from ._delivery import DeliveryVersion, registration_error
from ._records import Operation, Version
from ._wire import (
    CALLBACK_URL_SCHEMES,
    JSON_HEADERS,
    checked_url,
    json_object,
    json_response,
    optional_str,
    refuse,
    required_str,
    url_or_refuse,
)

__all__ = ["AccountCallbacks", "Registrations", "V1Seed"]

_V1_SERVICE = "Fota"
# As ThingSpace answers a list with nothing registered: 200 and an empty body, on every version.
_NOTHING_REGISTERED = Response(200, Headers(), b"")
_DEREGISTERED = Response(200, JSON_HEADERS, b'{"success":true}')

V1Seed = Mapping[str, RegisteredCallbacks] | Iterable[RegisteredCallbacks | FotaV1CallbackRegistrationRequest]
"""What `seed(v1=...)` takes: `AccountCallbacks.v1` of a snapshot, or registrations."""

Handler = Callable[[Request, Version, str, str | None], Response]
"""Answers a callbacks request, given its version, account and (V1 deregister) service path segment."""


@attrs.frozen
class AccountCallbacks:
    """What is registered for one account: V1 registrations by service name, the V2 and V3 callback URLs."""

    v1: Mapping[str, RegisteredCallbacks] = attrs.field(factory=lambda: MappingProxyType({}))
    v2: str | None = None
    v3: str | None = None


class _Account:
    __slots__ = ("urls", "v1")

    def __init__(self) -> None:
        self.v1: dict[str, RegisteredCallbacks] = {}
        self.urls: dict[str, str] = {}  # "v2" / "v3" -> the callback URL


def _registration_json(entry: RegisteredCallbacks) -> dict[str, str]:
    keys = ("aname", "name", "url", "username", "password")  # the JSON keys are the field names
    return {key: value for key in keys if (value := getattr(entry, key)) is not None}


class Registrations:
    """What every account has registered, changed only under a lock with no await in between (so tasks and the
    HTTP server's thread can share it). `handlers` answers each (version, operation)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._accounts: dict[str, _Account] = {}
        self.handlers: dict[tuple[Version, Operation], Handler] = {
            ("v1", "list_registered_callbacks"): self._list,
            ("v1", "register_callback"): self._v1_register,
            ("v1", "deregister_callback"): self._v1_deregister,
        }
        for version in ("v2", "v3"):
            self.handlers[version, "list_registered_callbacks"] = self._list
            self.handlers[version, "register_callback"] = self._url_register
            self.handlers[version, "update_callback"] = self._url_update
            self.handlers[version, "deregister_callback"] = self._url_deregister

    def __len__(self) -> int:
        return len(self._accounts)

    def clear(self) -> None:
        with self._lock:
            self._accounts.clear()

    def snapshot(self, account: str) -> AccountCallbacks:
        with self._lock:
            state = self._accounts.get(account)
            if state is None:
                return AccountCallbacks()
            return AccountCallbacks(MappingProxyType(dict(state.v1)), state.urls.get("v2"), state.urls.get("v3"))

    def seed(self, account: str, v1: V1Seed | None, v2: str | None, v3: str | None) -> None:
        items = v1.values() if isinstance(v1, Mapping) else v1 or ()
        entries = dict(_seed_entry(account, item) for item in items)
        urls = {
            version: checked_url(url, CALLBACK_URL_SCHEMES[version], version)
            for version, url in (("v2", v2), ("v3", v3))
            if url is not None
        }
        with self._lock:
            state = self._accounts.setdefault(account, _Account())
            state.v1.update(entries)
            state.urls.update(urls)

    def target(self, account: str, version: DeliveryVersion, service: str) -> tuple[str, str | None, str | None]:
        """The URL registered for `account` and `version` (V1: `service`), with the V1 username and password;
        `CallbackNotRegisteredError` when there is none."""
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

    # -- the operations --------------------------------------------------------------------------------------

    def _list(self, request: Request, version: Version, account: str, service: str | None) -> Response:
        with self._lock:
            state = self._accounts.get(account)
            if version == "v1":
                entries = [] if state is None else [_registration_json(entry) for entry in state.v1.values()]
                return json_response(200, entries) if entries else _NOTHING_REGISTERED
            url = None if state is None else state.urls.get(version)
        return _NOTHING_REGISTERED if url is None else json_response(200, {"url": url})

    def _v1_register(self, request: Request, version: Version, account: str, service: str | None) -> Response:
        data = json_object(request)
        name = required_str(data, "name")
        if name != _V1_SERVICE:
            refuse(400, "InvalidRequestBody", f"'name' must be {_V1_SERVICE!r}")
        url = url_or_refuse(required_str(data, "url"), version)
        entry = RegisteredCallbacks(
            aname=account,
            name=name,
            url=url,
            username=optional_str(data, "username"),
            password=optional_str(data, "password"),
        )
        with self._lock:
            self._accounts.setdefault(account, _Account()).v1[name] = entry
        return json_response(200, {"accountName": account, "serviceName": name})

    def _v1_deregister(self, request: Request, version: Version, account: str, service: str | None) -> Response:
        name = unquote(service or "")
        with self._lock:
            state = self._accounts.get(account)
            if state is not None and state.v1.pop(name, None) is not None:
                return _DEREGISTERED
        refuse(400, "CallbackNotFound", f"no callback is registered for service {name!r} of account {account}")

    def _url_register(self, request: Request, version: Version, account: str, service: str | None) -> Response:
        url = url_or_refuse(required_str(json_object(request), "url"), version)
        with self._lock:
            self._accounts.setdefault(account, _Account()).urls[version] = url
        return json_response(200, {"url": url})

    def _url_update(self, request: Request, version: Version, account: str, service: str | None) -> Response:
        url = url_or_refuse(required_str(json_object(request), "url"), version)
        with self._lock:
            state = self._accounts.get(account)
            if state is not None and version in state.urls:
                state.urls[version] = url
                return json_response(200, {"url": url})
        refuse(400, "CallbackNotFound", f"no {version} callback is registered for account {account}")

    def _url_deregister(self, request: Request, version: Version, account: str, service: str | None) -> Response:
        with self._lock:
            state = self._accounts.get(account)
            if state is not None and state.urls.pop(version, None) is not None:
                return _DEREGISTERED
        refuse(400, "CallbackNotFound", f"no {version} callback is registered for account {account}")


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
    url = checked_url(item.url, CALLBACK_URL_SCHEMES["v1"], "v1.url")
    return name, RegisteredCallbacks(aname=account, name=name, url=url, username=item.username, password=item.password)
