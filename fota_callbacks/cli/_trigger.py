"""`fota-callbacks trigger TYPE --account A`: make a running `fota-callbacks fake-server` deliver a callback."""

from __future__ import annotations

import argparse
import json
import os
import uuid
from datetime import date
from typing import Any

import httpx

from .._environments import resolve_root
from .._errors import InvalidArgumentError
from .._validation import check_account
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
    waiting_notice,
)
from ._devserver import MARK, MESSAGE_TYPES, TRIGGER_PATH

DEFAULT_BASE_URL = "http://127.0.0.1:8080"
_SCHEDULE_KEYS = frozenset({"upgradeId", "firmwareName", "startDate"})
_FIRMWARE_KEYS = frozenset({"firmwareName", "launchDate", "releaseNote", "model", "make", "fromVersion", "toVersion"})
# Documented string fields: "toVersion=2.0" or "upgradeId=123" stay strings, not JSON numbers.
_STRING_KEYS = _SCHEDULE_KEYS | _FIRMWARE_KEYS | {"accountName", "participantName", "type", "username", "password"}
_ANSWER_TIMEOUT = 30.0  # the fake gives a listener 10 s to answer


def add_parser(commands: Any) -> None:
    sub = add_command(
        commands,
        "trigger",
        run,
        epilog="--set KEY=VALUE sets a key of the message (repeat it). The upgradeScheduled keys (upgradeId, "
        "firmwareName, startDate) of upgrade messages and the firmware keys (firmwareName, toVersion, ...) of "
        "firmwareList go where they belong; a.b=c sets a nested key. VALUE is a string for the documented "
        'fields (upgradeId, toVersion, ...); for other keys it is read as JSON when it parses (42, true, {"a": 1}), '
        "else taken as a string.",
    )
    sub.add_argument("type", choices=MESSAGE_TYPES, metavar="TYPE", help=", ".join(MESSAGE_TYPES))
    sub.add_argument("--account", required=True, help="account identifier, ##########-#####")
    sub.add_argument(
        "--version",
        choices=("1", "2", "3"),
        help="the callbacks version whose registration receives it (default: the one registered for the account)",
    )
    sub.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="fields", help="a message key")
    sub.add_argument("--base-url", help=f"the fake-server (default THINGSPACE_BASE_URL, else {DEFAULT_BASE_URL})")
    sub.add_argument("--json", action="store_true", help="print the answer, and errors, as JSON")


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return text


def message_fields(kind: str, settings: list[str]) -> dict[str, Any]:
    """The message to send: sample values for `kind`, then each KEY=VALUE of `settings`."""
    today = date.today().isoformat()
    if kind == "firmwareList":
        firmware = {"firmwareName": "FOTA_DEMO_1.1", "fromVersion": "1.0", "toVersion": "1.1", "launchDate": today}
        message: dict[str, Any] = {"firmwareList": [firmware]}
    else:
        message = {"upgradeScheduled": {"upgradeId": str(uuid.uuid4()), "firmwareName": "FOTA_DEMO_1.1"}}
        message["upgradeScheduled"]["startDate"] = today
    for setting in settings:
        key, sep, text = setting.partition("=")
        path = key.split(".")
        if not sep or not all(path):
            raise InvalidArgumentError("--set", f"expected KEY=VALUE (KEY may be a.b.c), got {setting!r}")
        if len(path) == 1 and kind != "firmwareList" and key in _SCHEDULE_KEYS:
            path = ["upgradeScheduled", key]
        target = message
        if len(path) == 1 and kind == "firmwareList" and key in _FIRMWARE_KEYS:
            firmware_list = message.get("firmwareList")
            if isinstance(firmware_list, list) and firmware_list and isinstance(firmware_list[0], dict):
                target = firmware_list[0]
        for part in path[:-1]:
            if not isinstance(target.get(part), dict):
                target[part] = {}
            target = target[part]
        target[path[-1]] = text if path[-1] in _STRING_KEYS else _value(text)
    return message


def _failure(response: httpx.Response, answer: Any, base_url: str) -> CliError:
    host, status = host_of(base_url), response.status_code
    if MARK not in response.headers or not (isinstance(answer, dict) and isinstance(answer.get("error"), str)):
        problem = f"{base_url} is not a fota-callbacks fake-server (POST {TRIGGER_PATH} answered {status})"
        return CliError(REFUSED, problem, host=host)
    detail = escape(str(answer.get("detail", answer["error"])))
    if answer["error"] == "no_answer":
        # The documented exit codes: 1 for any outcome but a 2xx from the listener; 4 stays for "no fake-server there".
        return CliError(REFUSED, f"the listener did not answer: {detail}")
    if answer["error"] == "not_registered":
        detail += " (register one first: fota-callbacks v1|v2|v3 register)"
    return CliError(USAGE if status in (400, 409) else REFUSED, detail, host=host)


async def run(args: argparse.Namespace, output: Output) -> int:
    """make a running fake-server deliver a callback message

    Make a running `fota-callbacks fake-server` POST a callback message of TYPE to the URL registered for the
    account, and print the listener's answer. Exit 0 when it answered 2xx, 1 when it answered anything else or did
    not answer, 4 when no fake-server answered.
    """
    account = check_account(args.account, "--account")
    message = message_fields(args.type, args.fields)
    base_url = resolve_root("production", args.base_url or os.environ.get("THINGSPACE_BASE_URL") or DEFAULT_BASE_URL)
    host = host_of(base_url)
    request = {
        "account": account,
        "type": args.type,
        "version": None if args.version is None else f"v{args.version}",
        "message": message,
    }
    progress = Progress(output, verbose=args.verbose)
    progress.waiting(f"the fake-server at {host} to deliver {args.type} and the listener to answer")
    if args.verbose:
        output.note(f"POST {TRIGGER_PATH} on {host}: {args.type} for {account}")
    try:
        async with httpx.AsyncClient(timeout=_ANSWER_TIMEOUT, trust_env=False) as http, waiting_notice(progress):
            response = await http.post(base_url + TRIGGER_PATH, json=request)
    except httpx.TransportError as exc:
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise CliError(
            NO_RESPONSE,
            f"no fake-server answering at {base_url} ({reason}); start one with `fota-callbacks fake-server`",
            host=host,
        ) from None
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if args.verbose:
        output.note(f"POST {TRIGGER_PATH} on {host} -> {response.status_code}")
    if response.status_code != 200 or MARK not in response.headers or not isinstance(answer, dict):
        raise _failure(response, answer, base_url)
    status = answer["status_code"]
    if args.json:
        output.line(json.dumps(answer))
    else:
        # What the server sent is shown escaped, one line each.
        url, registered = escape(str(answer["url"])), escape(str(answer["registered_url"]))
        via = "" if url == registered else f" (registered as {registered})"
        output.line(f"{args.type} for {account} ({escape(str(answer['version']))}) -> {url}{via}")
        output.line(f"listener answered {status}: {escape(answer['response'][:200])}")
    return OK if isinstance(status, int) and 200 <= status < 300 else REFUSED
