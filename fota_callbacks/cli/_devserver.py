"""`fota-callbacks fake-server`: FakeThingSpace over HTTP for a shell user, with a control endpoint for `trigger`.

`DevServer` wraps `fake.asgi_app`: `POST /_fake/trigger` (JSON) makes the fake deliver a callback message with
its public `emit_*` methods; every other request goes to the fake. One line per request goes to `log`.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from .._asgi import ClientGone, read_asgi_body, respond_json
from .._constants import MAX_REQUEST_BODY_BYTES
from .._errors import InvalidArgumentError
from ._common import USAGE, CliError, Output, add_command, clock, escape, host_of
from ._serving import add_server_options, need, serve

if TYPE_CHECKING:
    from ..testing import Delivery, FakeThingSpace

TRIGGER_PATH = "/_fake/trigger"
MARK = "fota-fake-server"
"""A response header (value "1") on every answer of the trigger endpoint: tells it from other servers' 404s."""
_MARKED = [(MARK.encode(), b"1")]
MESSAGE_TYPES = ("firmwareList", "upgradeScheduled", "upgradeProgress", "upgradeFinished")
VERSIONS = ("v1", "v2", "v3")

# The fake accepts any credentials; these are the ones printed for the user to export.
CREDENTIALS = {
    "THINGSPACE_CLIENT_ID": "fake-client-id",
    "THINGSPACE_CLIENT_SECRET": "fake-client-secret",
    "THINGSPACE_USERNAME": "fake-username",
    "THINGSPACE_PASSWORD": "fake-password",
}

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


_Version = Literal["v1", "v2", "v3"]
"""The callbacks API a delivery is for."""


class _Refused(Exception):
    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail


class DevServer:
    """An ASGI app: `fake.asgi_app` plus `POST /_fake/trigger`; `log` gets one line per request."""

    def __init__(self, fake: FakeThingSpace, log: Callable[[str], None] | None = None) -> None:
        self.fake = fake
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.fake.asgi_app(scope, receive, send)  # lifespan
            return
        status: list[int] = []

        async def send_and_note(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        try:
            if scope["path"] == TRIGGER_PATH:
                await self._trigger(scope, receive, send_and_note)
            else:
                await self.fake.asgi_app(scope, receive, send_and_note)
        finally:
            if self.log is not None:
                path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
                self.log(f"{clock()} {scope['method']} {escape(path)} {status[0] if status else '(no response)'}")

    async def _trigger(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            if scope["method"] != "POST":
                raise _Refused(405, "method_not_allowed", f"use POST {TRIGGER_PATH}")
            body = await read_asgi_body(receive, MAX_REQUEST_BODY_BYTES)
            if body is None:
                raise _Refused(413, "too_large", "the trigger request is too large")
            answer = await self._deliver(_trigger_request(body))
        except ClientGone:
            return
        except _Refused as refused:
            await respond_json(send, refused.status, {"error": refused.error, "detail": refused.detail}, _MARKED)
            return
        await respond_json(send, 200, answer, _MARKED)

    async def _deliver(self, request: dict[str, Any]) -> dict[str, Any]:
        from ..testing import CallbackDeliveryError, CallbackNotRegisteredError

        account, kind, message = request["account"], request["type"], dict(request["message"])
        try:
            version: _Version = request["version"] or self._registered_version(account)
            if kind == "firmwareList":
                firmware = message.pop("firmwareList", [])
                if not isinstance(firmware, list):
                    raise _Refused(400, "bad_request", "firmwareList must be a JSON array")
                delivery = await self.fake.emit_firmware_list(account, firmware, version=version, extra=message)
            else:
                upgrade = message.pop("upgradeScheduled", None)
                if upgrade is not None and not isinstance(upgrade, dict):
                    raise _Refused(400, "bad_request", "upgradeScheduled must be a JSON object")
                delivery = await self.fake.emit_upgrade_event(
                    account, kind, upgrade=upgrade, version=version, extra=message
                )
        except CallbackNotRegisteredError as exc:
            raise _Refused(404, "not_registered", str(exc)) from None
        except CallbackDeliveryError as exc:
            self._note(exc.delivery, kind)
            raise _Refused(502, "no_answer", f"{exc} ({_shown(exc.delivery.url)})") from None
        except (InvalidArgumentError, TypeError, ValueError) as exc:  # e.g. --set firmwareList='[1]'
            raise _Refused(400, "bad_request", str(exc)) from None
        self._note(delivery, kind)
        return {
            "account": account,
            "type": kind,
            "version": version,
            "registered_url": _shown(delivery.registered_url),
            "url": _shown(delivery.url),
            "status_code": delivery.status_code,
            "response": delivery.response_body[:1000].decode("utf-8", "replace"),
        }

    def _registered_version(self, account: str) -> _Version:
        """The one version with a callback registered for `account`, when none was asked for."""
        from ..v1.models import CallbackService

        registered = self.fake.callbacks(account)
        present: list[tuple[_Version, bool]] = [
            ("v1", CallbackService.FOTA.value in registered.v1),
            ("v2", registered.v2 is not None),
            ("v3", registered.v3 is not None),
        ]
        versions = [version for version, registered_here in present if registered_here]
        if not versions:
            raise _Refused(404, "not_registered", f"no callback is registered for account {account}")
        if len(versions) > 1:
            raise _Refused(
                409, "ambiguous", f"account {account} has callbacks on {' and '.join(versions)}: choose --version"
            )
        return versions[0]

    def _note(self, delivery: Delivery, kind: str) -> None:
        if self.log is not None:
            answer = (
                delivery.status_code
                if delivery.status_code is not None
                else f"no answer ({escape(str(delivery.error))})"
            )
            self.log(f"{clock()} delivered {kind} for {delivery.account} to {_shown(delivery.url)}: {answer}")


def _shown(url: str) -> str:
    """`url` for display: any user:password@ hidden, escaped."""
    parts = urlsplit(url)
    if "@" in parts.netloc:
        url = urlunsplit(parts._replace(netloc="***@" + host_of(url)))
    return escape(url)


def _trigger_request(body: bytes) -> dict[str, Any]:
    """The checked JSON of a trigger request: {"account", "type", "version" (or null), "message": {...}}."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise _Refused(400, "bad_request", "the body is not JSON") from None
    if not isinstance(data, dict):
        raise _Refused(400, "bad_request", "the body must be a JSON object")
    if data.get("type") not in MESSAGE_TYPES:
        raise _Refused(400, "bad_request", f"type must be one of {', '.join(MESSAGE_TYPES)}")
    if data.get("version") not in (None, *VERSIONS):
        raise _Refused(400, "bad_request", "version must be v1, v2, v3 or null")
    if not isinstance(data.get("account"), str):
        raise _Refused(400, "bad_request", "account must be a string")
    message = data.get("message", {})
    if not isinstance(message, dict):
        raise _Refused(400, "bad_request", "message must be a JSON object")
    return {**data, "message": message}


# --- the command --------------------------------------------------------------------------------------------------


def add_parser(commands: Any) -> None:
    sub = add_command(commands, "fake-server", run, verbose="the server's own log (uvicorn) too")
    add_server_options(sub, 8080)
    sub.add_argument(
        "--redirect",
        action="append",
        default=[],
        metavar="FROM=TO",
        help="deliver messages for the registered URL FROM to TO instead (e.g. a local `fota-callbacks listen`)",
    )
    sub.add_argument("--quiet", action="store_true", help="no line per request")


def run(args: argparse.Namespace, output: Output) -> int:
    """serve FakeThingSpace over HTTP for local development (extra [server])

    Serve FakeThingSpace: the callbacks API, OAuth and M2M login, in memory. Prints its URL and the THINGSPACE_*
    variables to export (stdout), then one line per request (stderr). `fota-callbacks trigger` makes it deliver
    callback messages to the registered URLs.
    """
    need("uvicorn", "server", "fake-server")
    from ..testing import FakeThingSpace

    fake = FakeThingSpace()
    for rule in args.redirect:
        registered, sep, target = rule.partition("=")
        if not sep or not registered or not target:
            raise CliError(USAGE, f"--redirect: expected FROM=TO, got {rule!r}")
        try:
            fake.redirect_deliveries(registered, to=target)
        except InvalidArgumentError as exc:
            raise CliError(USAGE, f"--redirect {rule!r}: {exc.problem}") from None

    def announce(url: str) -> None:
        output.line(f"# FakeThingSpace on {url}; it accepts any credentials. In another shell:")
        output.line(f"export THINGSPACE_BASE_URL={url}")
        for name, value in CREDENTIALS.items():
            output.line(f"export {name}={value}")
        output.line("unset THINGSPACE_M2M_TOKEN  # a session token would be used instead of the username/password")
        for registered, target in fake.delivery_redirects.items():
            output.line(f"# delivering messages for {_shown(registered)} to {_shown(str(target))}")
        output.line("# then: fota-callbacks trigger upgradeProgress --account ACCOUNT   (Ctrl-C stops the server)")

    return serve(DevServer(fake, log=None if args.quiet else output.log), args, output, announce)
