"""What the two server commands (`fake-server`, `listen`) share: their options, and serving an ASGI app in the
foreground on a socket bound here, with JSON answers."""

from __future__ import annotations

import argparse
import logging
import socket
import sys
from collections.abc import Callable
from typing import Any

from ._common import OK, USAGE, CliError, Output, port


def add_server_options(parser: argparse.ArgumentParser, default_port: int) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=port, default=default_port, help=f"port (default {default_port}; 0 picks a free one)"
    )


def need(module: str, extra: str, command: str) -> Any:
    """Import an optional dependency, or end with a one-line error naming the extra to install."""
    try:
        return __import__(module)
    except ImportError:
        raise CliError(USAGE, f"{command} needs {module}: pip install 'fota-callbacks[{extra}]'") from None


def _bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port (port 0: a free one), or a one-line `CliError` (exit 2)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        raise CliError(USAGE, f"cannot listen on {host}:{port}: {getattr(exc, 'strerror', None) or exc}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        reason = "address already in use" if exc.errno == 98 else (exc.strerror or str(exc))
        raise CliError(USAGE, f"cannot listen on {host}:{port}: {reason}") from None
    return sock


def _url_of(sock: socket.socket) -> str:
    host, bound = sock.getsockname()[:2]
    return f"http://[{host}]:{bound}" if ":" in host else f"http://{host}:{bound}"


def serve(app: Any, args: argparse.Namespace, output: Output, announce: Callable[[str], None]) -> int:
    """Bind `--host`/`--port`, `announce` the server's URL, then run `app` under uvicorn until Ctrl-C
    (KeyboardInterrupt), SIGTERM, or stdout is closed."""
    uvicorn = need("uvicorn", "server", "this command")
    sock = _bind(args.host, args.port)
    announce(_url_of(sock))
    config = uvicorn.Config(
        app,
        log_config=None,
        log_level="info" if args.verbose else "warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=2,
    )
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    server = uvicorn.Server(config)
    output.on_closed = lambda: setattr(server, "should_exit", True)
    with sock:
        server.run(sockets=[sock])
    return OK
