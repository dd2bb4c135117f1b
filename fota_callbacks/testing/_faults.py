"""Faults a `FakeThingSpace` can be told to act out for its next requests."""

from __future__ import annotations

import http
import json
import threading
from collections.abc import Iterable, Mapping
from typing import Literal

import anyio
import attrs

from .._errors import ApiConnectionError, InvalidArgumentError
from ..transport.base import Headers, Request, Response
from ._records import Operation, Version

__all__ = ["Fault", "FaultKind", "FaultQueue"]

FaultKind = Literal["status", "drop", "delay", "malformed"]

_JSON = (("Content-Type", "application/json"),)


def _status_code(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
        raise InvalidArgumentError("status_code", f"must be an int from 100 to 599, got {value!r}")
    return value


@attrs.frozen
class Fault:
    """What to do instead of (or before) answering a request. Make one with a constructor:

    - `Fault.status(503, headers={"Retry-After": "1"}, body=b"...")`: answer with this status, headers and body
      (by default a JSON `{"errorCode": "InjectedFault", "errorMessage": ...}`);
    - `Fault.drop()`: the connection breaks after the request was sent: `handle` raises `ApiConnectionError`
      (`request_sent=True`); over HTTP the response headers and part of the body are sent, then the
      connection is cut;
    - `Fault.delay(seconds)`: wait, then answer normally (a client timeout can cut the wait);
    - `Fault.malformed(body=b"{not json", status=200)`: answer `status` with a JSON content type and a body
      that is not what the API documents.
    """

    kind: FaultKind
    status_code: int = 0
    headers: Headers = attrs.field(factory=Headers)
    body: bytes = b""
    seconds: float = 0.0

    @classmethod
    def status(
        cls,
        status_code: int,
        *,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        body: bytes | None = None,
    ) -> Fault:
        """Answer `status_code` with `headers` (a JSON content type unless they name one) and `body`."""
        _status_code(status_code)
        given = Headers(headers or ())
        pairs = given.raw() if "content-type" in given else _JSON + given.raw()
        if body is None:
            try:
                message = f"injected HTTP {status_code} {http.HTTPStatus(status_code).phrase}"
            except ValueError:  # a status code without a registered name
                message = f"injected HTTP {status_code}"
            body = json.dumps({"errorCode": "InjectedFault", "errorMessage": message}).encode()
        return cls("status", status_code, Headers(pairs), bytes(body))

    @classmethod
    def drop(cls) -> Fault:
        """Break the connection after the request was sent, before a whole response arrives."""
        return cls("drop")

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        """Wait `seconds`, then answer the request normally."""
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds >= 0:
            raise InvalidArgumentError("seconds", f"must be a number >= 0, got {seconds!r}")
        return cls("delay", seconds=float(seconds))

    @classmethod
    def malformed(cls, body: bytes = b"{not json", *, status: int = 200) -> Fault:
        """Answer `status` (2xx by default) with a JSON content type and `body`."""
        return cls("malformed", _status_code(status), Headers(_JSON), bytes(body))

    def response(self) -> Response:
        """The response a `status` or `malformed` fault answers with."""
        return Response(self.status_code, self.headers, self.body)

    async def _act(self, request: Request) -> Response | None:
        """Act this fault out on `request`: the response that replaces the answer, or None to answer normally
        (after a `delay`). Raises `ApiConnectionError` (`request_sent=True`) for a `drop`."""
        if self.kind == "drop":
            raise ApiConnectionError(
                "FakeThingSpace dropped the connection (injected fault)", request=request, request_sent=True
            )
        if self.kind == "delay":
            await anyio.sleep(self.seconds)
            return None
        return self.response()


class _Armed:
    __slots__ = ("fault", "operation", "remaining", "version")

    def __init__(self, fault: Fault, remaining: int, version: Version | None, operation: Operation | None) -> None:
        self.fault = fault
        self.remaining = remaining
        self.version = version
        self.operation = operation


class FaultQueue:
    """Armed faults, each for its next `times` matching requests, taken atomically (also across threads).

    The earliest armed fault that matches a request is the one it gets.
    """

    __slots__ = ("_armed", "_lock")

    def __init__(self) -> None:
        self._armed: list[_Armed] = []
        self._lock = threading.Lock()

    def arm(self, fault: Fault, times: int, version: Version | None, operation: Operation | None) -> None:
        with self._lock:
            self._armed.append(_Armed(fault, times, version, operation))

    def take(self, version: Version | None, operation: Operation | None) -> Fault | None:
        """The fault for a request of `version`/`operation`, counted as used; None when none matches."""
        if not self._armed:  # the common case, without taking the lock
            return None
        with self._lock:
            for index, armed in enumerate(self._armed):
                if (armed.version is None or armed.version == version) and (
                    armed.operation is None or armed.operation == operation
                ):
                    armed.remaining -= 1
                    if armed.remaining == 0:
                        del self._armed[index]
                    return armed.fault
        return None

    def pending(self) -> list[tuple[Fault, int]]:
        """Each armed fault with the number of requests it still applies to."""
        with self._lock:
            return [(armed.fault, armed.remaining) for armed in self._armed]

    def clear(self) -> None:
        with self._lock:
            self._armed.clear()
