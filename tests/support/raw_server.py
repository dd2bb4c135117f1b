"""A TCP server on 127.0.0.1 that acts out what no HTTP server library will: silence, trickles, resets, floods,
invalid HTTP. Optionally behind TLS.

It runs in threads (one to accept, one per connection), so the same server serves tests on asyncio and on trio.
Each connection is handed to a `Behaviour`: a function of the `Connection`, which reads the request and writes
whatever it likes. `RawServer.stopping` is set when the server stops: behaviours that wait or loop end then.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Iterator
from types import TracebackType

__all__ = [
    "Behaviour",
    "Connection",
    "RawServer",
    "answer",
    "close_after_head",
    "endless_body",
    "hang_after_head",
    "http_response",
    "never_read",
    "reset_mid_body",
    "trickle_body",
    "trickle_headers",
]

Behaviour = Callable[["Connection"], None]

_HEAD_LIMIT = 1024 * 1024


class Connection:
    """One accepted connection, with what the server read and wrote on it."""

    def __init__(self, sock: socket.socket, server: RawServer) -> None:
        self.sock = sock
        self.server = server
        self.head = b""
        self.body = b""

    @property
    def stopping(self) -> threading.Event:
        return self.server.stopping

    def read_request(self) -> bytes:
        """Read the request head (and a body of `Content-Length` bytes); return the head, or b"" when the client
        closed first. The head is recorded in `server.requests`."""
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.sock.recv(65536)
            if not chunk:
                return b""
            data += chunk
            if len(data) > _HEAD_LIMIT:
                return b""
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(body) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            body += chunk
        self.head, self.body = head, body
        self.server.record(head)
        return head

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)
        self.server.count_sent(len(data))

    def wait(self, seconds: float | None = None) -> bool:
        """Sleep `seconds` (None: until the server stops); True when the server is stopping."""
        return self.server.stopping.wait(seconds)


class RawServer:
    """`with RawServer(behaviour) as server:` listens on 127.0.0.1 (a free port); `server.base_url`."""

    def __init__(self, behaviour: Behaviour, *, tls: ssl.SSLContext | None = None) -> None:
        self._behaviour = behaviour
        self._tls = tls
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self.requests: list[bytes] = []
        """The request heads read by the behaviours, in order."""
        self.connections = 0
        self.bytes_sent = 0
        self.errors: list[str] = []
        """Errors of behaviours other than the client going away (a broken test helper shows here)."""
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port: int = self._listener.getsockname()[1]
        scheme = "https" if tls is not None else "http"
        self.base_url = f"{scheme}://127.0.0.1:{self.port}"

    def record(self, head: bytes) -> None:
        with self._lock:
            self.requests.append(head)

    def count_sent(self, size: int) -> None:
        with self._lock:
            self.bytes_sent += size

    def __enter__(self) -> RawServer:
        thread = threading.Thread(target=self._accept, name=f"raw-server-{self.port}", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def stop(self) -> None:
        self.stopping.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread (close() alone does not)
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in list(self._threads):
            thread.join(timeout=5)

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self._sockets.append(sock)
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, raw: socket.socket) -> None:
        sock: socket.socket = raw
        try:
            if self._tls is not None:
                sock = self._tls.wrap_socket(raw, server_side=True)
                with self._lock:
                    self._sockets.append(sock)
            self._behaviour(Connection(sock, self))
        except (OSError, ssl.SSLError):
            pass  # the client went away, or refused the certificate: what these tests provoke
        except Exception as exc:
            self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            with contextlib.suppress(OSError):
                sock.close()


# --- behaviours ------------------------------------------------------------------------------------------------


def http_response(
    status: int = 200, body: bytes = b"", headers: list[tuple[str, str]] | None = None, *, reason: str = "OK"
) -> bytes:
    """A whole HTTP/1.1 response with `Content-Length` and `Connection: close`, unless `headers` name them."""
    given = list(headers or [("Content-Type", "application/json")])
    names = {name.lower() for name, _ in given}
    if "content-length" not in names and "transfer-encoding" not in names:
        given.append(("Content-Length", str(len(body))))
    if "connection" not in names:
        given.append(("Connection", "close"))
    head = f"HTTP/1.1 {status} {reason}\r\n" + "".join(f"{name}: {value}\r\n" for name, value in given)
    return head.encode("latin-1") + b"\r\n" + body


def answer(raw: bytes) -> Behaviour:
    """Read the request, send `raw` (any bytes: a response or not), close."""

    def behaviour(conn: Connection) -> None:
        if conn.read_request():
            conn.send(raw)

    return behaviour


def never_read() -> Behaviour:
    """Accept the connection, never read, never answer (until the server stops)."""

    def behaviour(conn: Connection) -> None:
        conn.wait()

    return behaviour


def hang_after_head(head: bytes = b"") -> Behaviour:
    """Read the request, send `head` (maybe nothing, maybe a status line and headers), then nothing more."""

    def behaviour(conn: Connection) -> None:
        if conn.read_request():
            if head:
                conn.send(head)
            conn.wait()

    return behaviour


def close_after_head(head: bytes) -> Behaviour:
    """Read the request, send `head` (e.g. half a status line), close."""

    def behaviour(conn: Connection) -> None:
        if conn.read_request():
            conn.send(head)

    return behaviour


def trickle_body(interval: float, chunk: bytes = b" ") -> Behaviour:
    """A 200 with a chunked body of which one `chunk` arrives every `interval` seconds, forever."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    framed = b"%x\r\n%s\r\n" % (len(chunk), chunk)

    def behaviour(conn: Connection) -> None:
        if not conn.read_request():
            return
        conn.send(head)
        while not conn.wait(interval):
            conn.send(framed)

    return behaviour


def trickle_headers(interval: float) -> Behaviour:
    """A status line, then one short header line every `interval` seconds, forever."""

    def behaviour(conn: Connection) -> None:
        if not conn.read_request():
            return
        conn.send(b"HTTP/1.1 200 OK\r\n")
        while not conn.wait(interval):
            conn.send(b"X-Slow: 1\r\n")

    return behaviour


def endless_body(total: int | None, *, chunked: bool, declare: bool = False, chunk_size: int = 64 * 1024) -> Behaviour:
    """A 200 whose body is `total` bytes (None: never ending) of JSON-ish filler, sent as fast as the client
    reads. `chunked`: Transfer-Encoding chunked; else `Content-Length` (`declare`: the true `total`) or none
    (the body ends when the connection closes). The filler is made once: sending it allocates nothing."""
    filler = b"[" + b"0," * (chunk_size // 2 - 1) + b"0"
    framed = b"%x\r\n%s\r\n" % (len(filler), filler) if chunked else filler
    headers = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    if chunked:
        headers += b"Transfer-Encoding: chunked\r\n"
    elif declare and total is not None:
        headers += b"Content-Length: %d\r\n" % total
    else:
        headers += b"Connection: close\r\n"
    head = headers + b"\r\n"

    def behaviour(conn: Connection) -> None:
        if not conn.read_request():
            return
        conn.send(head)
        sent = 0
        while (total is None or sent < total) and not conn.stopping.is_set():
            conn.send(framed)
            sent += len(filler)
        if chunked:
            conn.send(b"0\r\n\r\n")

    return behaviour


def reset_mid_body(declared: int = 1000, sent: bytes = b'{"url": "https://') -> Behaviour:
    """A 200 declaring `declared` bytes; `sent` of them, then a TCP reset (RST, not a clean close)."""

    def behaviour(conn: Connection) -> None:
        if not conn.read_request():
            return
        conn.send(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (declared, sent)
        )
        conn.wait(0.05)
        # SO_LINGER on with a zero timeout: close() sends RST.
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.sock.close()

    return behaviour


@contextlib.contextmanager
def serving(behaviour: Behaviour, *, tls: ssl.SSLContext | None = None) -> Iterator[RawServer]:
    """`with serving(answer(...)) as server:` a started `RawServer`, stopped at the end; fails the test if a
    behaviour broke."""
    with RawServer(behaviour, tls=tls) as server:
        yield server
    assert not server.errors, server.errors
