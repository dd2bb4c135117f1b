"""What every `fota-callbacks` command shares: errors and their exit codes, output, `-v`, the "still waiting"
notice, option types. The server commands' share is in `_serving`."""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any, NoReturn
from urllib.parse import urlsplit

import anyio

from .. import _errors as errors
from ..transport import Request, Response, SendNext

# Exit codes (the module docstring of fota_callbacks.cli lists them).
OK, REFUSED, USAGE, CREDENTIALS, NO_RESPONSE, BAD_BODY, INTERRUPTED = 0, 1, 2, 3, 4, 5, 130

WAIT_NOTICE_AFTER = 3.0
"""Seconds without an answer before the CLI says on stderr what it is waiting for (then every 10 s)."""

_PROG = "fota-callbacks"


class CliError(Exception):
    """Ends the command with one error line (`message`, naming `host` when there is one) and `code`."""

    def __init__(self, code: int, message: str, *, host: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.host = host


class Output:
    """Where a command writes: results on stdout, errors and progress on stderr; `--json` makes both JSON.
    Every line is flushed at once, since users pipe the output."""

    def __init__(self, *, json_errors: bool = False) -> None:
        self.json_errors = json_errors
        self.on_closed: Callable[[], None] | None = None
        """Called once when stdout's reader went away (`listen | head -1`): a server then stops."""

    def line(self, text: str) -> None:
        try:
            print(text, flush=True)
        except BrokenPipeError:
            # Nothing more can be shown: later writes go nowhere, and a server is asked to stop quietly.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            if self.on_closed is not None:
                self.on_closed()
                self.on_closed = None

    def note(self, text: str) -> None:
        """One line on stderr; anything in `text` that a server sent cannot break it or reach the terminal raw."""
        print(f"{_PROG}: {escape(text)}", file=sys.stderr, flush=True)

    def log(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def error(self, code: int, message: str, host: str | None = None) -> int:
        """The command's error, one line on stderr: `message` often quotes a server (an `errorMessage`), so a
        CR/LF cannot forge a second line and terminal escapes are shown, not obeyed. `--json`: one JSON object,
        the message kept as it was (JSON escapes it)."""
        if host and host not in message:
            message = f"{message} (host {host})"
        if self.json_errors:
            data = {"error": message, "exit_code": code, **({"host": host} if host else {})}
            print(json.dumps(data), file=sys.stderr, flush=True)
        else:
            print(f"{_PROG}: error: {escape(message)}", file=sys.stderr, flush=True)
        return code


def escape(text: str) -> str:
    """`text` from a remote party, safe on one terminal line: control and non-printable characters escaped."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def host_of(url: str) -> str:
    """The host[:port] of `url`, without any user:password@."""
    return urlsplit(url).netloc.rpartition("@")[2]


def clock() -> str:
    return datetime.now().strftime("%H:%M:%S")


# --- option types -------------------------------------------------------------------------------------------------


class Parser(argparse.ArgumentParser):
    """Usage errors are one line (and JSON with `--json`), exit status 2, naming the help of the (sub)command
    whose usage was wrong."""

    json_errors = False

    def error(self, message: str) -> NoReturn:
        Output(json_errors=self.json_errors).error(USAGE, f"{message} (see {self.prog} --help)")
        sys.exit(USAGE)

    def parse_args(self, args: Any = None, namespace: Any = None) -> Any:
        """As argparse's, but an argument no parser took is reported by the subcommand it was given to
        (`v2 list --username`: "see fota-callbacks v2 --help"), not by the top-level parser."""
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            command: argparse.ArgumentParser = getattr(parsed, "command_parser", self)
            command.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed


def _number(read: Callable[[str], Any], fits: Callable[[Any], bool], expected: str) -> Callable[[str], Any]:
    """An argparse type: `read` the text, then check that it `fits`, else "expected ..., got ..."."""

    def convert(value: str) -> Any:
        try:
            number = read(value)
        except ValueError:
            number = None
        if number is None or not fits(number):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {value!r}")
        return number

    return convert


port = _number(int, lambda n: 0 <= n <= 65535, "a port number 0-65535 (0 picks a free one)")
positive_seconds = _number(float, lambda n: 0 < n < float("inf"), "a positive number of seconds")
retries = _number(int, lambda n: n >= 0, "a whole number >= 0")
positive_count = _number(int, lambda n: n >= 1, "a whole number >= 1")


def add_command(
    commands: Any, name: str, run: Callable[..., Any], *, verbose: str = "each HTTP attempt and retry", **texts: str
) -> argparse.ArgumentParser:
    """Add the subcommand `name`, which calls `run(args, output)` and has `-v/--verbose` to show `verbose` on
    stderr; add its other options to the parser returned.

    Its help is `run`'s docstring: the first paragraph for the list of commands, the rest for its own `--help`.
    `texts` adds (`epilog`) or replaces (`help`, `description`) argparse texts.
    """
    summary, _, details = (inspect.getdoc(run) or "").partition("\n\n")
    parser: argparse.ArgumentParser = commands.add_parser(
        name, **{"help": summary, "description": details or None, **texts}
    )
    parser.add_argument("-v", "--verbose", action="store_true", help=f"show {verbose} on stderr")
    parser.set_defaults(run=run, command_parser=parser)
    return parser


# --- -v and "still waiting" ---------------------------------------------------------------------------------------


class Progress:
    """Follows a client's requests (as middleware) and its retries (from the `fota_callbacks` logger), for `-v`
    and for the notice shown when an answer is slow to come."""

    def __init__(self, output: Output, *, verbose: bool) -> None:
        self.output = output
        self.verbose = verbose
        self.host: str | None = None
        self.waiting_for: str | None = None
        self.started = time.monotonic()
        """When the command started: the "still waiting" notice counts from here, across attempts and retries."""

    def waiting(self, what: str | None) -> None:
        self.waiting_for = what

    async def middleware(self, request: Request, call_next: SendNext) -> Response:
        self.host = host_of(request.url)
        self.waiting(f"an answer to {request.method} {urlsplit(request.url).path} from {self.host}")
        try:
            return await call_next(request)
        finally:
            self.waiting(None)

    def describe(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = record.__dict__
        if "method" not in fields:
            return escape(record.getMessage())
        request = f"{fields['method']} {escape(str(fields['path']))}"
        where = f"{request} on {self.host}" if self.host else request
        if "delay" in fields:  # a retry
            delay, reason = float(fields["delay"]), escape(str(fields["reason"]))
            self.waiting(f"{delay:.1f} s before retrying {request} ({reason})")
            return f"{where} failed ({reason}); retry {fields['attempt']} in {delay:.2f} s"
        outcome = fields["status_code"] if fields["status_code"] is not None else fields.get("error")
        request_id = f", request id {escape(fields['request_id'])}" if fields.get("request_id") else ""
        return f"{where} -> {escape(str(outcome))} (attempt {fields['attempt']}{request_id})"

    @contextlib.contextmanager
    def logging(self) -> Any:
        handler = _Handler(self)
        logger = logging.getLogger("fota_callbacks")
        level = logger.level
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG if self.verbose else logging.INFO)
        try:
            yield
        finally:
            logger.removeHandler(handler)
            logger.setLevel(level)


class _Handler(logging.Handler):
    def __init__(self, progress: Progress) -> None:
        super().__init__(logging.DEBUG)
        self.progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        text = self.progress.describe(record)  # also notes a retry's delay for the waiting notice
        if self.progress.verbose:
            self.progress.output.note(text)


@contextlib.asynccontextmanager
async def waiting_notice(progress: Progress, first: float = WAIT_NOTICE_AFTER) -> AsyncIterator[None]:
    """While the block runs, say on stderr what it waits for once the command has run `first` seconds (then every
    10 s). Counted from the command's start, not per wait: attempts shorter than `first` (`--timeout 2`) and the
    retries between them add up to a silence the user must not sit through."""

    async def watch() -> None:
        notice_at = first
        while True:
            await anyio.sleep(0.25)
            what = progress.waiting_for
            waited = time.monotonic() - progress.started
            if what is not None and waited >= notice_at:
                progress.output.note(f"still waiting for {what} ({waited:.0f} s so far; Ctrl-C to give up)")
                notice_at = waited + 10.0

    failure: Exception | None = None
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(watch)
        try:
            yield
        except Exception as exc:  # raised below as it is, not inside the task group's ExceptionGroup
            failure = exc
        finally:
            tasks.cancel_scope.cancel()
    if failure is not None:
        raise failure


def api_error_code(exc: errors.FotaError) -> int:
    """The exit code for an SDK error."""
    if isinstance(exc, errors.MissingCredentialsError):
        return CREDENTIALS
    if isinstance(exc, errors.InvalidArgumentError):
        return USAGE
    if isinstance(exc, errors.ApiConnectionError):
        return NO_RESPONSE
    if isinstance(exc, errors.ResponseValidationError):
        return BAD_BODY
    return REFUSED
