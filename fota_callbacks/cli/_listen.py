"""`fota-callbacks listen`: a standalone callback listener that prints each message as it arrives."""

from __future__ import annotations

import argparse
import hmac
import json
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from .._asgi import ClientGone, read_asgi_body, respond_json
from .._constants import MAX_REQUEST_BODY_BYTES
from .._logsafe import masked
from ..callbacks import CallbackParseError, parse_callback_message
from ._common import USAGE, CliError, Output, add_command, clock, escape
from ._serving import add_server_options, need, serve

DEFAULT_PATH = "/fota/callbacks"


def add_parser(commands: Any) -> None:
    sub = add_command(commands, "listen", run, verbose="the server's own log (uvicorn) too")
    add_server_options(sub, 8000)
    sub.add_argument("--path", default=DEFAULT_PATH, help=f"the callback path (default {DEFAULT_PATH})")
    sub.add_argument("--username", help="the username messages must echo (V1 registrations)")
    sub.add_argument("--password", help="the password messages must echo (V1 registrations)")
    sub.add_argument("--json", action="store_true", help="one JSON object per message, and errors as JSON")


def _secret(value: str | None) -> bytes:
    return (value or "").encode("utf-8", "surrogatepass")


def _flat(data: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Nested objects as dotted keys; empty values left out."""
    fields: list[tuple[str, Any]] = []
    for key, value in data.items():
        if isinstance(value, dict) and value:
            fields.extend(_flat(value, f"{prefix}{key}."))
        elif value not in ("", [], {}, None):
            fields.append((f"{prefix}{key}", value))
    return fields


class Listener:
    """An ASGI app receiving callback messages on `path`; `show` prints each one."""

    def __init__(self, output: Output, *, path: str, username: str | None, password: str | None, as_json: bool):
        self.output = output
        self.path = path
        self.username = username
        self.password = password
        self.as_json = as_json

    async def __call__(self, scope: Mapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        peer = scope["client"][0] if scope.get("client") else "unknown"
        if scope["path"] != self.path:
            await respond_json(send, 404, {"error": "not_found", "detail": f"callbacks are received on {self.path}"})
            return
        if scope["method"] != "POST":
            await respond_json(send, 405, {"error": "method_not_allowed", "detail": "use POST"})
            return
        try:
            body = await read_asgi_body(receive, MAX_REQUEST_BODY_BYTES)
        except ClientGone:
            return
        if body is None:
            await self._refuse(send, peer, 413, "too_large", f"the body is larger than {MAX_REQUEST_BODY_BYTES} bytes")
            return
        try:
            message = parse_callback_message(body)
        except CallbackParseError as exc:
            await self._refuse(send, peer, 400, "malformed_callback", str(exc))
            return
        if self.username is not None or self.password is not None:
            # Both configured comparisons always run: which one failed must not show in the timing.
            username_ok = self.username is None or hmac.compare_digest(
                _secret(message.username), _secret(self.username)
            )
            password_ok = self.password is None or hmac.compare_digest(
                _secret(message.password), _secret(self.password)
            )
            if not (username_ok and password_ok):
                await self._refuse(send, peer, 401, "unauthorized", "wrong or missing username/password")
                return
        self.show(message.raw, peer)
        await respond_json(send, 200, {"status": "ok"})

    async def _refuse(self, send: Any, peer: str, status: int, error: str, detail: str) -> None:
        self.output.log(f"{clock()} refused a callback from {escape(peer)}: {escape(detail)} ({status})")
        await respond_json(send, status, {"error": error, "detail": detail})

    def show(self, raw: Mapping[str, Any], peer: str) -> None:
        data = masked(dict(raw))
        kind, account = data.get("type"), data.get("accountName")
        if self.as_json:
            received = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
            line = {"received_at": received, "from": peer, "type": kind, "account": account, "message": data}
            self.output.line(json.dumps(line))
            return
        what = escape(str(kind)) if kind is not None else "(no type)"
        whom = escape(str(account)) if account is not None else "(no account)"
        lines = [f"{clock()} {what} for {whom} from {escape(peer)}"]
        shown = masked({key: value for key, value in raw.items() if value not in ("", None)})  # no empty "***"
        fields = [(key, value) for key, value in _flat(shown) if key not in ("type", "accountName")]
        width = max((len(key) for key, _ in fields), default=0)
        lines += [
            f"  {escape(key):<{width}}  {escape(json.dumps(value) if not isinstance(value, str) else value)}"
            for key, value in fields
        ]
        self.output.line("\n".join(lines))


def run(args: argparse.Namespace, output: Output) -> int:
    """receive callback messages and print each one (extra [server])

    A standalone callback listener: prints each message POSTed to PATH as it arrives (stdout; passwords shown as
    ***), refusals on stderr. With --username/--password the credentials echoed in a message must match (compared in
    constant time), else 401.
    """
    need("uvicorn", "server", "listen")
    if args.username == "" or args.password == "":
        raise CliError(USAGE, "--username/--password: an empty value would accept messages without credentials")
    if not args.path.startswith("/"):
        raise CliError(USAGE, f"--path: expected a path starting with /, got {args.path!r}")
    checking = " (checking the echoed username/password)" if args.username or args.password else ""
    app = Listener(output, path=args.path, username=args.username, password=args.password, as_json=args.json)
    return serve(app, args, output, lambda url: output.note(f"listening on {url}{args.path}{checking}; Ctrl-C to stop"))
