"""`fota-callbacks listen`: a standalone callback listener that prints each message as it arrives."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from .._asgi import send_json
from .._logsafe import masked
from ..callbacks import CallbackMessage
from ..receiver import CallbackReceiver, method_not_allowed_answer, not_found_answer
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


async def _shown_after(message: CallbackMessage) -> None:
    """The receiver's handler: nothing to do before the answer; `Listener` prints the message after it."""


_ALLOW_POST = ((b"allow", b"POST"),)


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
    """An ASGI app receiving callback messages on `path` with a `CallbackReceiver`; `show` prints each one."""

    def __init__(self, output: Output, *, path: str, username: str | None, password: str | None, as_json: bool):
        self.output = output
        self.path = path
        self.as_json = as_json
        self.receiver = CallbackReceiver(_shown_after, username=username, password=password)
        # The receiver logs its refusals; this command prints them itself (below), in its own format.
        logging.getLogger("fota_callbacks.receiver").addHandler(logging.NullHandler())

    async def __call__(self, scope: Mapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] != self.path:
            await send_json(send, *not_found_answer(self.path))
            return
        if scope["method"] != "POST":
            await send_json(send, *method_not_allowed_answer(), _ALLOW_POST)
            return
        reception = await self.receiver.serve_asgi(scope, receive, send)
        peer = scope["client"][0] if scope.get("client") else "unknown"
        if reception is None:
            return
        if reception.message is not None and reception.status < 300:
            self.show(reception.message.raw, peer)
        elif reception.status >= 300:
            detail = json.loads(reception.body).get("detail", "")
            self.output.log(f"{clock()} refused a callback from {escape(peer)}: {escape(detail)} ({reception.status})")

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
