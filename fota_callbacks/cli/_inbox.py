"""`fota-callbacks inbox stats|dead|retry|replay|work|migrate (--sqlite PATH | --redis URL | --postgres DSN)`: look
after a callback inbox, run its worker as a process of its own, or create a PostgresInbox's tables.

Every command but `migrate` opens the inbox with `create=False`: what is not an inbox (a missing or foreign file,
a typo'd stream, a database without the tables) is refused with exit status 2 and left exactly as it was. A store
adds its options in `_add_stores` and its constructor in `_open`.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import re
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import attrs

from .._logsafe import masked
from ..callbacks import CallbackParseError, parse_callback_message
from ._common import (
    NO_RESPONSE,
    OK,
    REFUSED,
    USAGE,
    CliError,
    Output,
    Progress,
    add_command,
    escape,
    host_of,
    positive_count,
    positive_seconds,
)
from ._inbox_worker import DEFAULT_CLAIM_IDLE, load_handler, work

if TYPE_CHECKING:
    from ..inbox import Inbox, InboxEntry, InboxStats

ACTIONS = ("stats", "dead", "retry", "replay", "work", "migrate")
ONLY_FOR = {
    "id": ("retry",),
    "body": ("dead",),
    "since": ("replay",),
    "until": ("replay",),
    "type": ("replay",),
    "account": ("replay",),
    "handler": ("work",),
    "workers": ("work",),
    "max_attempts": ("work",),
    "claim_idle": ("work", "stats"),
    "print": ("migrate",),
}
"""The options only some actions take (None when not given)."""

EPILOG = """\
examples:
  fota-callbacks inbox stats --sqlite fota-inbox.db
  fota-callbacks inbox dead --redis redis://127.0.0.1:6379/0 --json
  fota-callbacks inbox retry --sqlite fota-inbox.db --id 42
  fota-callbacks inbox replay --sqlite fota-inbox.db --since 2026-12-01T00:00Z --type upgradeFinished
  fota-callbacks inbox work --sqlite fota-inbox.db --handler myapp.callbacks:on_message --workers 4
  fota-callbacks inbox migrate --postgres postgresql://app@db.internal/app --print
"""


def add_parser(commands: Any) -> None:
    sub = add_command(
        commands, "inbox", run, verbose="the inbox's log (and, for work, each message handled)", epilog=EPILOG
    )
    sub.formatter_class = argparse.RawDescriptionHelpFormatter
    sub.add_argument("action", choices=ACTIONS)
    _add_stores(sub)
    sub.add_argument("--id", type=int, help="retry: only the dead letter with this id")
    sub.add_argument("--body", action="store_true", default=None, help="dead: also print each body (secrets masked)")
    sub.add_argument("--since", metavar="ISO", type=aware_time, help="replay: received at or after (2026-12-01T00:00Z)")
    sub.add_argument("--until", metavar="ISO", type=aware_time, help="replay: received before this time")
    sub.add_argument("--type", help="replay: only messages of this type (upgradeFinished, ...)")
    sub.add_argument("--account", help="replay: only messages for this account")
    sub.add_argument("--handler", metavar="MODULE:FUNCTION", help="work: the async handler, e.g. app.hooks:on_message")
    sub.add_argument("--workers", type=positive_count, help="work: messages handled at once (default 1)")
    sub.add_argument("--max-attempts", type=positive_count, help="work: failures before a dead letter (default 10)")
    sub.add_argument(
        "--claim-idle",
        type=positive_seconds,
        help=f"work, stats: seconds after which a stopped worker's entries go back to the queue (default "
        f"{DEFAULT_CLAIM_IDLE:g}; as the inbox's claim_idle)",
    )
    sub.add_argument("--json", action="store_true", help="print the result, and errors, as JSON")


def _add_stores(sub: argparse.ArgumentParser) -> None:
    store = sub.add_mutually_exclusive_group(required=True)
    store.add_argument("--sqlite", metavar="PATH", help="the SqliteInbox file")
    store.add_argument("--redis", metavar="URL", help="the RedisInbox server, e.g. redis://127.0.0.1:6379/0")
    store.add_argument("--postgres", metavar="DSN", help="the PostgresInbox database, e.g. postgresql://app@db/app")
    sub.add_argument("--stream", default="fota:callbacks", help="RedisInbox stream (default fota:callbacks)")
    sub.add_argument("--group", default="fota-callbacks", help="RedisInbox consumer group (default fota-callbacks)")
    sub.add_argument("--table", default="fota_inbox", help="PostgresInbox table prefix (default fota_inbox)")
    sub.add_argument("--print", action="store_true", default=None, help="migrate: print the DDL, apply nothing")


def _open(args: argparse.Namespace) -> tuple[Inbox, str]:
    """The inbox the options name (never created here but by `migrate`), and what to call it in messages."""
    from .. import inbox

    options: dict[str, Any] = {"create": False, "claim_idle": args.claim_idle or DEFAULT_CLAIM_IDLE}
    if args.sqlite is not None:
        opened: Inbox = inbox.SqliteInbox(args.sqlite, **options)
        return opened, args.sqlite
    try:
        if args.postgres is not None:
            options["create"] = args.action == "migrate"
            opened = inbox.PostgresInbox(args.postgres, table=args.table, **options)
            return opened, host_of(args.postgres)
        opened = inbox.RedisInbox(args.redis, stream=args.stream, group=args.group, **options)
    except ImportError as exc:
        raise CliError(USAGE, str(exc)) from None
    return opened, host_of(args.redis)


def aware_time(text: str) -> datetime:
    """An argparse type: ISO 8601 with a timezone (`Z` or an offset); a naive time is refused."""
    try:
        moment = datetime.fromisoformat(re.sub(r"[zZ]$", "+00:00", text.strip()))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO 8601 time such as 2026-12-01T00:00Z, got {text!r}") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no timezone: add one, as in {text}Z (UTC) or {text}+01:00")
    return moment


# --- the actions --------------------------------------------------------------------------------------------------


async def _stats(store: Inbox, where: str, args: argparse.Namespace, output: Output) -> None:
    stats = await store.stats()
    if args.json:
        output.line(json.dumps(attrs.asdict(stats)))
        return
    rows = [
        ("pending", str(stats.pending)),
        ("in_flight", str(stats.in_flight)),
        ("dead", str(stats.dead)),
        ("done", str(stats.done)),
        ("oldest_pending_age", f"{stats.oldest_pending_age:.1f} s"),
    ]
    lines = [f"{name:<18}  {value}" for name, value in rows]
    if stats.in_flight:
        lines.append(in_flight_words(stats))
    output.line("\n".join(lines))


def in_flight_words(stats: InboxStats) -> str:
    """Who holds the entries in flight, in plain words: a live worker, or one that stopped (and until when). A live
    worker renews its claims every third of its `claim_idle`; one not renewed for half of it is `stale`."""
    parts = []
    live = stats.in_flight - stats.stale
    if live:
        parts.append(f"{live} held by a live worker")
    if stats.stale:
        lapse = max(0.0, stats.next_takeover or 0.0)
        parts.append(
            f"{stats.stale} held by a worker that stopped (its claims are no longer renewed): "
            f"back in the queue in {lapse:.0f} s"
        )
    return "in flight: " + "; ".join(parts)


async def _dead(store: Inbox, where: str, args: argparse.Namespace, output: Output) -> None:
    entries = [dead_letter(entry, body=bool(args.body)) for entry in await store.dead_letters()]
    if args.json:
        output.line(json.dumps(entries, indent=2))
    else:
        output.line("\n".join(dead_letter_lines(entry) for entry in entries) or "(no dead letters)")


def dead_letter(entry: InboxEntry, *, body: bool) -> dict[str, Any]:
    """What `dead` shows of a dead letter: never its body (it may echo a V1 password) unless asked, and then with
    every credential masked."""
    data: dict[str, Any] = {
        "id": entry.id,
        "type": None,
        "account": None,
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
    if body:
        data["body"] = masked_body(entry.body)
    return data


_QUOTED_SECRET = re.compile(r'("[^"]*(?:password|secret|token)[^"]*"\s*:\s*)"(?:[^"\\]|\\.)*"', re.IGNORECASE)


def masked_body(body: bytes) -> Any:
    """The body as JSON with credentials masked; a body that is not JSON as text, quoted credentials masked."""
    try:
        return masked(json.loads(body))
    except ValueError:
        return _QUOTED_SECRET.sub(r'\1"***"', body.decode("utf-8", "replace"))


def dead_letter_lines(entry: dict[str, Any]) -> str:
    if "unreadable" in entry:
        what = f"unreadable body ({escape(entry['unreadable'])})"
    else:
        what = f"{escape(str(entry['type']))} for {escape(str(entry['account']))}"
    received = datetime.fromisoformat(entry["received_at"]).isoformat(timespec="seconds")
    attempts = f"{entry['attempts']} failed attempt{'' if entry['attempts'] == 1 else 's'}"
    lines = [
        f"#{entry['id']}  {received}  {what}, {entry['size']} bytes",
        f"  {attempts}; last error: {escape(str(entry['last_error']))}",
    ]
    if "body" in entry:
        shown = entry["body"] if isinstance(entry["body"], str) else json.dumps(entry["body"])
        lines.append(f"  body: {escape(shown)}")
    return "\n".join(lines)


async def _retry(store: Inbox, where: str, args: argparse.Namespace, output: Output) -> None:
    count = await store.retry_dead(args.id)
    if args.id is not None and count == 0:
        raise CliError(REFUSED, f"no dead letter with id {args.id} in {escape(where)}")
    output.line(json.dumps({"requeued": count}) if args.json else f"re-queued {count} dead letter(s)")


async def _replay(store: Inbox, where: str, args: argparse.Namespace, output: Output) -> None:
    if args.since is None:
        raise CliError(USAGE, "--since: replay needs the time to replay from, e.g. --since 2026-12-01T00:00Z")
    count = await store.replay(since=args.since, until=args.until, type=args.type, account=args.account)
    if args.json:
        output.line(json.dumps({"requeued": count}))
        return
    window = f"received since {args.since.astimezone(timezone.utc).isoformat(timespec='seconds')}"
    if args.until is not None:
        window += f" and before {args.until.astimezone(timezone.utc).isoformat(timespec='seconds')}"
    output.line(f"re-queued {count} handled entr{'y' if count == 1 else 'ies'} {window}")


async def _migrate(store: Inbox, where: str, args: argparse.Namespace, output: Output) -> None:
    from ..inbox import PostgresInbox

    assert isinstance(store, PostgresInbox)
    created = await store.migrate()
    tables = f"{store.table} and {store.table}_dedup"
    if args.json:
        output.line(json.dumps({"table": store.table, "created": created}))
    else:
        output.line(f"created the tables {tables} at {where}" if created else f"{tables} already exist at {where}")


STEPS = {"stats": _stats, "dead": _dead, "retry": _retry, "replay": _replay, "migrate": _migrate}


async def run(args: argparse.Namespace, output: Output) -> int:
    """count, list, re-queue and replay the entries of a callback inbox (SQLite, Redis, PostgreSQL), or run its worker

    Operator commands for the inbox a receiver stores callbacks in (fota_callbacks.inbox): `stats` counts
    pending, in-flight, dead and handled entries and says who holds those in flight; `dead` lists the dead
    letters (not their bodies, which may echo a V1 password, unless --body: then with credentials masked);
    `retry` puts the dead letters (or the one with --id) back in the queue; `replay` puts the handled entries
    received in a time range back in the queue (after a handler bug is fixed); `work` runs the inbox's worker with
    --handler as a process of its own, for frameworks without a lifespan (SIGTERM or Ctrl-C: it gives back what
    it holds and exits 0); `migrate` creates a PostgresInbox's tables (--print: prints their DDL, for your own
    migrations). Only `migrate` creates anything: what is not an inbox is refused and left unchanged.
    """
    _check_options(args)
    if args.action == "migrate" and args.print:
        from ..inbox import PostgresInbox

        output.line(PostgresInbox.schema(args.table).rstrip())
        return OK
    step: Callable[[Inbox, str, argparse.Namespace, Output], Awaitable[None]] = STEPS.get(args.action) or (
        functools.partial(work, handler=load_handler(args.handler))  # before the store: an import error needs none
    )
    from ..inbox import InboxNotFoundError, InboxUnavailableError

    store, where = _open(args)
    option = "--sqlite" if args.sqlite is not None else "--redis" if args.redis is not None else "--postgres"
    try:
        # `work` logs on its own terms: a worker's failures are shown without -v.
        with contextlib.nullcontext() if args.action == "work" else Progress(output, verbose=args.verbose).logging():
            await step(store, escape(where), args, output)
    except InboxNotFoundError as exc:
        raise CliError(USAGE, f"{option}: {escape(str(exc))}") from None
    except InboxUnavailableError as exc:
        remote = args.sqlite is None
        raise CliError(NO_RESPONSE if remote else REFUSED, escape(str(exc)), host=where if remote else None) from None
    finally:
        await store.aclose()
    return OK


def _check_options(args: argparse.Namespace) -> None:
    for name, actions in ONLY_FOR.items():
        if getattr(args, name) is not None and args.action not in actions:
            option = "--" + name.replace("_", "-")
            which = " and ".join(f"`{action}`" for action in actions)
            raise CliError(USAGE, f"{option}: only {which} take{'s' if len(actions) == 1 else ''} it")
    if args.action == "migrate" and args.postgres is None:
        raise CliError(USAGE, "migrate: only a PostgresInbox (--postgres DSN) has tables to create")
    if args.action == "work" and args.handler is None:
        raise CliError(USAGE, "--handler: work needs the handler to run, e.g. --handler myapp.callbacks:on_message")
