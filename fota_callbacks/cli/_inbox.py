"""`fota-callbacks inbox stats|dead|retry (--sqlite PATH | --redis URL)`: look after a callback inbox."""

from __future__ import annotations

import argparse
import json
import os
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .._logsafe import redacted
from ..callbacks import CallbackParseError, parse_callback_message
from ._common import NO_RESPONSE, OK, REFUSED, USAGE, CliError, Output, Progress, add_command, escape, host_of

if TYPE_CHECKING:
    from ..inbox import Inbox, InboxEntry


def add_parser(commands: Any) -> None:
    sub = add_command(commands, "inbox", run, verbose="the inbox's log")
    sub.add_argument("action", choices=("stats", "dead", "retry"))
    store = sub.add_mutually_exclusive_group(required=True)
    store.add_argument("--sqlite", metavar="PATH", help="the SqliteInbox file")
    store.add_argument("--redis", metavar="URL", help="the RedisInbox server, e.g. redis://127.0.0.1:6379/0")
    sub.add_argument("--stream", default="fota:callbacks", help="RedisInbox stream (default fota:callbacks)")
    sub.add_argument("--group", default="fota-callbacks", help="RedisInbox consumer group (default fota-callbacks)")
    sub.add_argument("--id", type=int, help="retry: only the dead letter with this id")
    sub.add_argument("--json", action="store_true", help="print the result, and errors, as JSON")


def _open(args: argparse.Namespace) -> tuple[Inbox, str]:
    """The inbox the options name, and what to call it in messages."""
    from .. import inbox

    if args.sqlite is not None:
        if not os.path.isfile(args.sqlite):  # SQLite would create an empty inbox: a typo must not look fine
            raise CliError(USAGE, f"--sqlite: no inbox file at {args.sqlite!r}")
        return inbox.SqliteInbox(args.sqlite), args.sqlite
    try:
        return inbox.RedisInbox(args.redis, stream=args.stream, group=args.group), host_of(args.redis)
    except ImportError as exc:
        raise CliError(USAGE, str(exc)) from None


def _entry_json(entry: InboxEntry) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": entry.id,
        "attempts": entry.attempts,
        "last_error": entry.last_error,
        "received_at": entry.received_at.isoformat(),
        "size": len(entry.body),
    }
    try:
        message = parse_callback_message(entry.body)
    except CallbackParseError as exc:
        data["unreadable"] = str(exc)
    else:
        data["type"], data["account"] = message.type, message.account_name
        data["message"] = redacted(dict(message.raw))
    return data


def _entry_lines(entry: dict[str, Any]) -> str:
    what = (
        f"{escape(str(entry['type']))} for {escape(str(entry['account']))}"
        if "message" in entry
        else f"unreadable body ({entry['unreadable']})"
    )
    received = datetime.fromisoformat(entry["received_at"]).isoformat(timespec="seconds")
    attempts = f"{entry['attempts']} failed attempt{'' if entry['attempts'] == 1 else 's'}"
    return (
        f"#{entry['id']}  {received}  {what}, {entry['size']} bytes\n"
        f"  {attempts}; last error: {escape(str(entry['last_error']))}"
    )


async def _act(store: Inbox, where: str, args: argparse.Namespace, output: Output) -> None:
    if args.action == "stats":
        stats = await store.stats()
        counts = {"pending": stats.pending, "dead": stats.dead, "done": stats.done}
        output.line(json.dumps(counts) if args.json else "\n".join(f"{k:<7}  {v}" for k, v in counts.items()))
    elif args.action == "dead":
        entries = [_entry_json(entry) for entry in await store.dead_letters()]
        if args.json:
            output.line(json.dumps(entries, indent=2))
        else:
            output.line("\n".join(_entry_lines(entry) for entry in entries) or "(no dead letters)")
    else:
        count = await store.retry_dead(args.id)
        if args.id is not None and count == 0:
            raise CliError(REFUSED, f"no dead letter with id {args.id} in {where}")
        output.line(json.dumps({"requeued": count}) if args.json else f"re-queued {count} dead letter(s)")


async def run(args: argparse.Namespace, output: Output) -> int:
    """count, list and re-queue the entries of a callback inbox (SQLite or Redis)

    Operator commands for the inbox a receiver stores callbacks in (fota_callbacks.inbox): `stats` counts pending,
    dead and handled entries; `dead` lists the dead letters (bodies are not printed: they may echo a V1 password);
    `retry` puts the dead letters (or the one with --id) back in the queue.
    """
    if args.id is not None and args.action != "retry":
        raise CliError(USAGE, "--id: only `retry` takes an id")
    from ..inbox import InboxUnavailableError

    store, where = _open(args)
    try:
        with Progress(output, verbose=args.verbose).logging():
            await _act(store, where, args, output)
    except InboxUnavailableError as exc:
        raise CliError(NO_RESPONSE, str(exc), host=where if args.redis else None) from None
    finally:
        await store.aclose()
    return OK
