"""`fota-callbacks inbox work`: an inbox's worker as a process of its own, for frameworks without a lifespan (or
to scale handling apart from receiving). It gives back what it holds and exits 0 on SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import logging
import os
import signal
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel

from .._logsafe import printable
from ._common import INTERRUPTED, USAGE, CliError, Output, escape

if TYPE_CHECKING:
    from ..callbacks import CallbackMessage
    from ..inbox import Inbox, InboxHandler

__all__ = ["DEFAULT_CLAIM_IDLE", "load_handler", "work"]

DEFAULT_CLAIM_IDLE = 60.0
"""The inbox's own default `claim_idle`."""
_MISSING = object()


def load_handler(spec: str) -> InboxHandler:
    """The async callable `package.module:function` names, imported as uvicorn imports an app: the working
    directory first on the import path. Anything else is a one-line usage error."""
    module_name, colon, attribute = spec.partition(":")
    if not colon or not module_name or not attribute:
        raise CliError(USAGE, f"--handler: expected package.module:function, got {escape(spec)!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:
        raise CliError(USAGE, f"--handler: cannot import {escape(module_name)}: {_described(exc)}") from None
    for part in attribute.split("."):
        target = getattr(target, part, _MISSING)
        if target is _MISSING:
            raise CliError(USAGE, f"--handler: {escape(module_name)} has no {escape(attribute)}")
    if not callable(target):
        raise CliError(USAGE, f"--handler: {escape(spec)} is not callable (it is a {type(target).__name__})")
    if not (inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(type(target).__call__)):
        raise CliError(
            USAGE, f"--handler: {escape(spec)} is not an async function: the worker awaits it (async def ...)"
        )
    handler: InboxHandler = target
    return handler


def _described(exc: BaseException) -> str:
    return printable(f"{type(exc).__name__}: {exc}", 300)


async def work(store: Inbox, where: str, args: argparse.Namespace, output: Output, *, handler: InboxHandler) -> None:
    """Run the worker until SIGTERM or SIGINT (exit 0), or until the handler raises `KeyboardInterrupt` (exit 130)
    or `SystemExit`; whatever it holds then goes back to the queue at once."""
    await store.stats()  # an inbox is there (else InboxNotFoundError: exit 2), before saying it works on it
    workers, max_attempts = args.workers or 1, args.max_attempts or 10
    stop = _Stop()
    with _log_to_stderr(output, verbose=args.verbose):
        output.note(f"working off {where} with {escape(args.handler)}, {workers} at once; SIGTERM or Ctrl-C stops")
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(_stop_on_signal, tasks.cancel_scope, output)
            guarded = _guarded(handler, stop, tasks.cancel_scope, output, verbose=args.verbose)
            await store.run(guarded, concurrency=workers, max_attempts=max_attempts)
    if stop.raised is not None:
        code = INTERRUPTED if isinstance(stop.raised, KeyboardInterrupt) else _exit_code(stop.raised)
        raise CliError(
            code, f"the handler raised {type(stop.raised).__name__}: stopped; what it held is back in the queue"
        )
    output.note("stopped; what was being handled is back in the queue")


class _Stop:
    raised: KeyboardInterrupt | SystemExit | None = None


def _exit_code(exc: SystemExit) -> int:
    return exc.code if isinstance(exc.code, int) else 1


async def _stop_on_signal(scope: anyio.CancelScope, output: Output) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for number in signals:
            output.note(f"{signal.Signals(number).name}: giving back what is held, then stopping")
            scope.cancel()
            return


def _guarded(
    handler: InboxHandler, stop: _Stop, scope: anyio.CancelScope, output: Output, *, verbose: bool
) -> InboxHandler:
    """The handler, reporting each message with -v; its `KeyboardInterrupt` / `SystemExit` stops the worker (which
    gives back what it holds) instead of leaving the event loop in the middle of it, as asyncio lets them."""

    async def handle(message: CallbackMessage) -> None:
        try:
            await handler(message)
        except (KeyboardInterrupt, SystemExit) as exc:
            stop.raised = exc
            scope.cancel()
            await anyio.lowlevel.checkpoint()  # cancelled here: the worker stops as on SIGTERM
            raise
        if verbose:
            output.note(f"handled {escape(str(message.type))} for {escape(str(message.account_name))}")

    return handle


class _StderrLog(logging.Handler):
    def __init__(self, output: Output) -> None:
        super().__init__()
        self.output = output

    def emit(self, record: logging.LogRecord) -> None:
        level = "" if record.levelno < logging.WARNING else f"{record.levelname.lower()}: "
        self.output.note(level + escape(record.getMessage()))


@contextlib.contextmanager
def _log_to_stderr(output: Output, *, verbose: bool) -> Iterator[None]:
    """The package's log on stderr, one escaped line per record: warnings and errors (a handler's failures, a
    store that cannot be reached) always, everything with -v."""
    logger = logging.getLogger("fota_callbacks")
    handler, level = _StderrLog(output), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.WARNING)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
