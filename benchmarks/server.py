"""A minimal HTTP/1.1 keep-alive server for the callbacks endpoints, on a raw `asyncio.Protocol`.

Run it in its own process (`python -m benchmarks.server --port 0 --cpu 0`): it prints `PORT <n>` on stdout
once it listens, and serves until SIGTERM/SIGINT. It answers canned JSON:

- `GET  /api/fota/v2/callbacks/{acct}` -> `{"url":"https://example.com/cb"}`
- `GET  /api/fota/v1/callbacks/{acct}` -> a JSON array of 3 RegisteredCallbacks objects
- `POST /api/fota/v2/callbacks/{acct}` -> the request body echoed (`{"url":...}`)
- `GET  /__stats` -> `{"requests": n, "cpu_s": user+system CPU seconds of the server process}`

No framework, no header parsing beyond Content-Length, responses prebuilt as bytes: per request it costs a
few µs, so the client process is what the benchmark measures. Chunked request bodies are not supported
(httpx sends Content-Length for a bytes body).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
from types import TracebackType

from ._common import V1_LIST_BODY, V2_LIST_BODY, cpu_seconds, pin_to_cpu, stop_process

__all__ = ["CallbacksServerProtocol", "ServerProcess", "main", "serve"]

_V2_PREFIX = b"/api/fota/v2/callbacks/"
_V1_PREFIX = b"/api/fota/v1/callbacks/"
_CONTENT_LENGTH = b"\r\ncontent-length:"


def _response(status: bytes, body: bytes) -> bytes:
    return (
        b"HTTP/1.1 "
        + status
        + b"\r\nContent-Type: application/json\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


_V2_LIST = _response(b"200 OK", V2_LIST_BODY)
_V1_LIST = _response(b"200 OK", V1_LIST_BODY)
_NOT_FOUND = _response(b"404 Not Found", b'{"errorCode":"NotFound","errorMessage":"no such endpoint"}')
_BAD_REQUEST = _response(b"400 Bad Request", b'{"errorCode":"BadRequest","errorMessage":"malformed request"}')
_ECHO_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "


class _Counter:
    requests = 0


class CallbacksServerProtocol(asyncio.Protocol):
    """One connection: parses pipelined HTTP/1.1 requests from a buffer and writes canned responses."""

    __slots__ = ("_buffer", "_transport")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        transport = self._transport
        assert transport is not None
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buffer[:end])
            length = 0
            at = head.lower().find(_CONTENT_LENGTH)
            if at >= 0:
                stop = head.find(b"\r\n", at + 2)
                value = head[at + len(_CONTENT_LENGTH) : stop if stop >= 0 else len(head)].strip()
                if not value.isdigit():
                    transport.write(_BAD_REQUEST)
                    transport.close()
                    return
                length = int(value)
            total = end + 4 + length
            if len(buffer) < total:
                return
            body = bytes(buffer[end + 4 : total])
            del buffer[:total]
            _Counter.requests += 1
            transport.write(self._respond(head, body))

    @staticmethod
    def _respond(head: bytes, body: bytes) -> bytes:
        line_end = head.find(b"\r\n")
        method, _, rest = (head if line_end < 0 else head[:line_end]).partition(b" ")
        target = rest.partition(b" ")[0]
        if method == b"GET":
            if target.startswith(_V2_PREFIX):
                return _V2_LIST
            if target.startswith(_V1_PREFIX):
                return _V1_LIST
            if target == b"/__stats":
                stats = json.dumps({"requests": _Counter.requests, "cpu_s": cpu_seconds()}).encode()
                return _response(b"200 OK", stats)
        elif method == b"POST" and target.startswith(_V2_PREFIX):
            if not body:
                return _BAD_REQUEST
            return _ECHO_HEAD + str(len(body)).encode() + b"\r\n\r\n" + body
        return _NOT_FOUND

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None


async def serve(host: str, port: int) -> None:
    """Listen on host:port (0: any free port), print `PORT <n>`, serve until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    server = await loop.create_server(CallbacksServerProtocol, host, port, backlog=1024, reuse_address=True)
    bound = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"PORT {bound}\n")
    sys.stdout.flush()
    async with server:
        await stop.wait()


class ServerProcess:
    """Runs this server in a child process (optionally pinned to `cpu`); `base_url` once started.

    `with ServerProcess(cpu=0) as server: ... server.base_url ...`; leaving the block terminates that child.
    """

    def __init__(self, *, cpu: int | None = None, host: str = "127.0.0.1") -> None:
        self._cpu = cpu
        self._host = host
        self._process: subprocess.Popen[str] | None = None
        self.base_url = ""

    def start(self) -> str:
        command = [sys.executable, "-m", "benchmarks.server", "--host", self._host, "--port", "0"]
        if self._cpu is not None:
            command += ["--cpu", str(self._cpu)]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        self._process = process
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"benchmark server did not start (said {line!r})")
        self.base_url = f"http://{self._host}:{int(line.split()[1])}"
        return self.base_url

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        stop_process(process)
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed as PORT <n>)")
    parser.add_argument("--cpu", type=int, default=None, help="pin the server process to this CPU")
    args = parser.parse_args(argv)
    pin_to_cpu(args.cpu)
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
