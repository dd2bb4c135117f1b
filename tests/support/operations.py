"""The eleven public operations, each with what wire.md documents for it: method, path, request body and a 2xx
answer. Property and hostile-response tests iterate over them, plain and through `with_raw_response`."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, Literal

import attrs

import fota_callbacks as fota

__all__ = ["OPERATIONS", "Operation", "request_model"]

Version = Literal["v1", "v2", "v3"]

_REQUESTS: dict[str, Any] = {
    "v2": fota.FotaV2CallbackRegistrationRequest,
    "v3": fota.FotaV3CallbackRegistrationRequest,
}


def request_model(version: Version, url: str, username: str | None = None, password: str | None = None) -> Any:
    """The registration request of `version` for `url` (V1: service Fota, with `username`/`password`)."""
    if version == "v1":
        return fota.FotaV1CallbackRegistrationRequest(
            name=fota.CallbackService.FOTA, url=url, username=username, password=password
        )
    return _REQUESTS[version](url=url)


@attrs.frozen
class Operation:
    version: Version
    name: str  # the method name on the controller
    method: str
    ok_body: bytes
    """A documented 2xx answer (wire.md's examples)."""

    @property
    def id(self) -> str:
        return f"{self.version}.{self.name}"

    @property
    def takes_body(self) -> bool:
        return self.name in ("register_callback", "update_callback")

    @property
    def takes_service(self) -> bool:
        return self.version == "v1" and self.name == "deregister_callback"

    def call(
        self,
        client: fota.FotaCallbacksClient,
        account: str,
        *,
        raw: bool = False,
        url: str = "https://listener.example.com/fota",
        username: str | None = None,
        password: str | None = None,
        service: Any = fota.CallbackService.FOTA,
    ) -> Awaitable[Any]:
        """Start the call (await the result) with these arguments, through `with_raw_response` when `raw`."""
        controller: Any = getattr(client, self.version)
        method = getattr(controller.with_raw_response if raw else controller, self.name)
        if self.takes_body:
            return method(account, request_model(self.version, url, username, password))  # type: ignore[no-any-return]
        if self.takes_service:
            return method(account, service)  # type: ignore[no-any-return]
        return method(account)  # type: ignore[no-any-return]

    def path(self, account: str, service: str = "Fota") -> str:
        """The documented path under the root."""
        path = f"/api/fota/{self.version}/callbacks/{account}"
        return f"{path}/name/{service}" if self.takes_service else path

    def json_body(self, url: str, username: str | None = None, password: str | None = None) -> dict[str, str] | None:
        """The documented request body, as JSON; None for operations without one. Unset fields are omitted."""
        if not self.takes_body:
            return None
        if self.version == "v1":
            body = {"name": "Fota", "url": url}
            if username is not None:
                body["username"] = username
            if password is not None:
                body["password"] = password
            return body
        return {"url": url}


_URL_OK = b'{"url": "https://listener.example.com/fota"}'
_SUCCESS = b'{"success": true}'

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "v1",
        "list_registered_callbacks",
        "GET",
        b'[{"aname": "0252012345-00001", "name": "Fota", "url": "http://x.example/cb"}]',
    ),
    Operation("v1", "register_callback", "POST", b'{"accountName": "0204563412-00001", "serviceName": "Fota"}'),
    Operation("v1", "deregister_callback", "DELETE", _SUCCESS),
    Operation("v2", "list_registered_callbacks", "GET", _URL_OK),
    Operation("v2", "register_callback", "POST", _URL_OK),
    Operation("v2", "update_callback", "PUT", _URL_OK),
    Operation("v2", "deregister_callback", "DELETE", _SUCCESS),
    Operation("v3", "list_registered_callbacks", "GET", _URL_OK),
    Operation("v3", "register_callback", "POST", _URL_OK),
    Operation("v3", "update_callback", "PUT", _URL_OK),
    Operation("v3", "deregister_callback", "DELETE", _SUCCESS),
)
