"""`fota-callbacks inbox stats|dead|retry|migrate (--sqlite PATH | --redis URL | --postgres DSN)`: look after a
callback inbox."""

from __future__ import annotations

import argparse
import json
import os
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..callbacks import CallbackParseError, _redacted, parse_callback_message
from ._common import NO_RESPONSE, OK, REFUSED, USAGE, CliError, Output, Progress, add_command, escape, host_of

if TYPE_CHECKING:
    from ..inbox import Inbox, InboxEntry


def add_parser(commands: Any) -> None:
    sub = add_command(commands, "inbox", run, verbose="the inbox's log")
    sub.add_argument("action", choices=("stats", "dead", "retry", "migrate"))
    store = sub.add_mutually_exclusive_group(required=True)
    store.add_argument("--sqlite", metavar="PATH", help="the SqliteInbox file")
    store.add_argument("--redis", metavar="URL", help="the RedisInbox server, e.g. redis://127.0.0.1:6379/0")
    store.add_argument("--postgres", metavar="DSN", help="the PostgresInbox database, e.g. postgresql://app@db/app")
    sub.add_argument("--table", default="fota_inbox", help="PostgresInbox table (default fota_inbox)")
    sub.add_argument("--print", action="store_true", help="migrate: print the DDL instead of applying it")
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
        if args.postgres is not None:
            # create=False: a typo'd --table or database must say so, not create an empty inbox.
            opened = inbox.PostgresInbox(args.postgres, table=args.table, create=args.action == "migrate")
            return opened, host_of(args.postgres)
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
        data["message"] = _redacted(dict(message.raw))
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


async def _migrate(store: Inbox, where: str, args: argparse.Namespace, output: Output) -> None:
    from ..inbox import PostgresInbox

    assert isinstance(store, PostgresInbox)
    created = await store.migrate()
    tables = f"{store.table} and {store.table}_dedup"
    if args.json:
        output.line(json.dumps({"table": store.table, "created": created}))
    else:
        output.line(f"created the tables {tables} at {where}" if created else f"{tables} already exist at {where}")


async def _act(store: Inbox, where: str, args: argparse.Namespace, output: Output) -> None:
    if args.action == "migrate":
        await _migrate(store, where, args, output)
    elif args.action == "stats":
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
    """count, list and re-queue the entries of a callback inbox (SQLite, Redis or PostgreSQL)

    Operator commands for the inbox a receiver stores callbacks in (fota_callbacks.inbox): `stats` counts pending,
    dead and handled entries; `dead` lists the dead letters (bodies are not printed: they may echo a V1 password);
    `retry` puts the dead letters (or the one with --id) back in the queue; `migrate` creates a PostgresInbox's
    tables (`--print`: prints their DDL, for your own migrations). Only `migrate` creates tables.
    """
    if args.id is not None and args.action != "retry":
        raise CliError(USAGE, "--id: only `retry` takes an id")
    if args.action == "migrate" and args.postgres is None:
        raise CliError(USAGE, "migrate: only a PostgresInbox (--postgres DSN) has tables to create")
    if args.print and args.action != "migrate":
        raise CliError(USAGE, "--print: only `migrate` prints")
    from ..inbox import InboxNotFoundError, InboxUnavailableError, PostgresInbox

    if args.print:
        output.line(PostgresInbox.schema(args.table).rstrip())
        return OK
    store, where = _open(args)
    try:
        with Progress(output, verbose=args.verbose).logging():
            await _act(store, where, args, output)
    except InboxNotFoundError as exc:
        raise CliError(USAGE, str(exc)) from None
    except InboxUnavailableError as exc:
        raise CliError(NO_RESPONSE, str(exc), host=where if args.redis or args.postgres else None) from None
    finally:
        await store.aclose()
    return OK
