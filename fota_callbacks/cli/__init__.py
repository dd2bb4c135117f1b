"""The `fota-callbacks` command line.

Exit codes: 0 success; 1 the API (or the listener, for `trigger`) refused; 2 bad usage or input, a missing extra,
a port that cannot be used; 3 missing credentials; 4 no response (connection failure or timeout); 5 an unexpected
response body; 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import inspect
import sys
from collections.abc import Sequence

import anyio

from .. import _errors as errors
from .._version import __version__
from . import _api, _devserver, _doctor, _inbox, _listen, _trigger
from ._common import INTERRUPTED, CliError, Output, Parser, Progress, add_command, api_error_code

__all__ = ["main"]

EXAMPLES = """\
examples:
  fota-callbacks demo
  fota-callbacks v2 list 0000123456-00001
  fota-callbacks v2 register 0000123456-00001 --url https://example.com/fota
  fota-callbacks v1 register 0000123456-00001 --url https://example.com/fota --username cb --password s3cret
  fota-callbacks v3 deregister 0000123456-00001 --json -v

  fota-callbacks fake-server --port 8080 --redirect https://example.com/fota=http://127.0.0.1:8000/fota/callbacks
  fota-callbacks listen --port 8000 --json
  fota-callbacks trigger upgradeProgress --account 0000123456-00001 --set status=InProgress

  fota-callbacks inbox stats --sqlite fota-inbox.db

  fota-callbacks doctor https://example.com/fota

credentials come from THINGSPACE_CLIENT_ID, THINGSPACE_CLIENT_SECRET and THINGSPACE_M2M_TOKEN
(or THINGSPACE_USERNAME and THINGSPACE_PASSWORD); THINGSPACE_BASE_URL replaces the root.
fake-server prints the values that work with it.
"""


async def _run_demo(args: argparse.Namespace, output: Output) -> int:
    """the whole lifecycle on V1, V2 and V3 against the embedded fake (no network)

    Register, list, update (V2 and V3) and deregister a callback on V1, V2 and V3 against FakeThingSpace in this
    process: no credentials, no network, nothing to start. It prints each operation's result, then the requests
    that reached the fake (the OAuth token and the M2M session login first); -v shows each HTTP attempt as it
    happens.
    """
    from .._demo import run_demo

    progress = Progress(output, verbose=args.verbose)
    with progress.logging():
        return await run_demo(middleware=[progress.middleware])


def _parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="fota-callbacks",
        description="Manage ThingSpace Software Management (FOTA) callback registrations, and develop against "
        "a local fake of ThingSpace.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"fota-callbacks {__version__}")
    # `fota-callbacks -v v2 list ...` as well as `fota-callbacks v2 list ... -v`.
    parser.add_argument("-v", "--verbose", action="store_true", dest="verbose_first", help=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    add_command(commands, "demo", _run_demo)
    _api.add_parsers(commands)
    _devserver.add_parser(commands)
    _listen.add_parser(commands)
    _trigger.add_parser(commands)
    _inbox.add_parser(commands)
    _doctor.add_parser(commands)
    return parser


_VARIABLES = {
    "client_id": "THINGSPACE_CLIENT_ID",
    "client_secret": "THINGSPACE_CLIENT_SECRET",
    "username": "THINGSPACE_USERNAME",
    "password": "THINGSPACE_PASSWORD",
}


def _worded(exc: errors.FotaError) -> str:
    """An SDK error in the command line's terms: options and environment variables, not Python parameters."""
    if isinstance(exc, errors.MissingCredentialsError):
        if exc.parameter in ("client_id", "client_secret") and "is set but" not in exc.problem:
            needed = "no OAuth credentials: set THINGSPACE_CLIENT_ID and THINGSPACE_CLIENT_SECRET"
        elif exc.parameter == "m2m_token":
            needed = (
                "no M2M session credentials: set THINGSPACE_USERNAME and THINGSPACE_PASSWORD (or THINGSPACE_M2M_TOKEN)"
            )
        else:
            needed = f"{_VARIABLES.get(exc.parameter, exc.parameter)} is not set"
        return f"{needed}; for a local fake, export what `fota-callbacks fake-server` prints"
    if isinstance(exc, errors.InvalidArgumentError) and exc.parameter == "base_url":
        return f"--base-url (or THINGSPACE_BASE_URL): {exc.problem}"
    return str(exc)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with `argv` (default `sys.argv[1:]`); return the exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    # `--json` turns errors into JSON, usage errors included: known before parsing.
    output = Output(json_errors="--json" in arguments)
    Parser.json_errors = output.json_errors
    try:
        args = _parser().parse_args(arguments)
        args.verbose = args.verbose_first or getattr(args, "verbose", False)
        run = args.run
        if inspect.iscoroutinefunction(run):
            code: int = anyio.run(run, args, output)
        else:
            code = run(args, output)
        return code
    except CliError as exc:
        return output.error(exc.code, exc.message, exc.host)
    except errors.FotaError as exc:
        return output.error(api_error_code(exc), _worded(exc))
    except KeyboardInterrupt:
        return INTERRUPTED
    except BaseException as exc:
        if _interrupted(exc):
            return INTERRUPTED
        raise


def _interrupted(exc: BaseException) -> bool:
    """Ctrl-C on Python 3.10: anyio's asyncio runner cancels the main task and `run` ends in CancelledError
    instead of KeyboardInterrupt (3.11's asyncio.Runner turns it into KeyboardInterrupt)."""
    if sys.version_info >= (3, 11):
        return False
    import asyncio  # only here: the CLI otherwise leaves the choice of event loop to anyio

    return isinstance(exc, asyncio.CancelledError)
