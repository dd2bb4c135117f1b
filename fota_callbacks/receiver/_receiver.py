"""`CallbackReceiver`: the checks and answers for a callback POST, whatever framework carries it."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import AsyncIterable, Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final, Literal

import attrs

from .._asgi import ClientGone, read_asgi_body, send_json
from .._constants import MAX_REQUEST_BODY_BYTES
from .._errors import InvalidArgumentError
from .._logsafe import printable
from .._telemetry import ReceiverTelemetry, reported
from .._validation import positive_int
from ..callbacks import CallbackMessage, CallbackParseError, parse_callback_message
from ..inbox import Inbox
from ._sources import AllowedIps, Networks, networks, source_allowed

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

__all__ = ["DEFAULT_MAX_BODY_SIZE", "CallbackReceiver", "Reception", "ReceptionOutcome"]

logger = logging.getLogger("fota_callbacks.receiver")

DEFAULT_MAX_BODY_SIZE: Final = MAX_REQUEST_BODY_BYTES
"""Larger callback bodies are refused with 413 (the documented messages are a few KiB)."""

ReceptionOutcome = Literal["stored", "duplicate", "handled", "accepted", "refused"]
Handler = Callable[[CallbackMessage], Awaitable[object]]


def _json(data: dict[str, str]) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


@attrs.frozen
class Reception:
    """The answer to one callback request: send `status` with `body` (JSON, `application/json`).

    `message` is the parsed message when the body was read as one. `outcome`: `stored` (in the inbox),
    `duplicate` (the inbox already had it), `handled` (the handler returned), `accepted` (`background=True`: to be
    handled after the answer), or `refused` (any answer but 2xx). `after`: with `background=True`, what the
    adapter awaits once the answer is sent.
    """

    status: int
    body: bytes
    message: CallbackMessage | None = attrs.field(default=None, repr=False)
    outcome: ReceptionOutcome = "refused"
    after: Callable[[], Awaitable[None]] | None = attrs.field(default=None, repr=False)


def _refusal(status: int, error: str, detail: str) -> Reception:
    return Reception(status, _json({"error": error, "detail": detail}))


_OK: Final = _json({"status": "ok"})
_ACCEPTED: Final = _json({"status": "accepted"})
_FORBIDDEN: Final = _refusal(403, "forbidden", "this address may not send callback messages")
_UNAUTHORIZED: Final = _refusal(401, "unauthorized", "wrong or missing username/password in the message")
_FAILED: Final = _refusal(500, "internal_error", "the callback could not be processed")
_UNAVAILABLE: Final = _refusal(503, "unavailable", "the callback could not be stored; retry later")


def _secret_bytes(value: str | None) -> bytes:
    # surrogatepass: a JSON "\ud800" escape is a valid str that strict UTF-8 cannot encode.
    return (value or "").encode("utf-8", "surrogatepass")


class CallbackReceiver:
    """Receives ThingSpace callback messages: checks each request and answers it, for any framework.

    Pass exactly one of `handler` (`async def handler(message)`, awaited before the answer) and `inbox` (the body
    is stored before the answer and handled later by the inbox's worker: see `fota_callbacks.inbox`). For each
    request, in this order:

    - `allowed_ips`: when given, the peer address must be in it, else 403. `"verizon"` is Verizon's published
      list (`VERIZON_CALLBACK_SOURCE_IPS`); or addresses and CIDR networks, `"verizon"` among them if you like
      (`["verizon", "127.0.0.1"]`). The peer is what the server reports; `X-Forwarded-For` is never read here.
    - a body larger than `max_body_size` bytes: 413 (before reading it, when its Content-Length says so).
    - a body that is not a JSON object (`parse_callback_message`): 400; nothing is handled or stored.
    - `username` / `password`: each one given must equal the value the message echoes (V1 registration
      credentials), compared in constant time, else 401.
    - with `inbox`: 200 `{"status":"ok"}` once `put` returned (a duplicate the inbox already holds too); 503 when
      it cannot store the body, or when the worker this process runs on that inbox is down (the sender retries).
    - with `handler`: 200 once it returned; 500 (no details) when it raised, the exception logged.
      `background=True` answers 202 at once and leaves the handling to the adapter, after the answer: at-most-once
      (a failure, a restart or a crash loses the message): prefer an inbox.
    Every answer is JSON. The password is never logged; what a sender controls is logged escaped.

    With OpenTelemetry's API installed, each request is a `fota.callback.receive` span and counts in
    `fota.callbacks.received`, through `tracer_provider` / `meter_provider` or the global providers (see the
    README, Observability); an inbox stores the span's context with the entry, to link its handling to it.
    """

    def __init__(
        self,
        handler: Handler | None = None,
        *,
        inbox: Inbox | None = None,
        username: str | None = None,
        password: str | None = None,
        allowed_ips: AllowedIps = None,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        background: bool = False,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        if (handler is None) == (inbox is None):
            raise InvalidArgumentError("handler", "pass exactly one of handler (inline) and inbox= (stored first)")
        if handler is not None and not callable(handler):
            raise InvalidArgumentError("handler", f"expected an async callable, got {handler!r}")
        if inbox is not None and not isinstance(inbox, Inbox):
            raise InvalidArgumentError("inbox", f"expected an Inbox (MemoryInbox, SqliteInbox, ...), got {inbox!r}")
        if inbox is not None and background:
            raise InvalidArgumentError("background", "an inbox already answers at once; background=True is for handler")
        for name, value in (("username", username), ("password", password)):
            if value == "":
                raise InvalidArgumentError(name, "an empty value would accept messages without credentials")
            if value is not None and not isinstance(value, str):
                raise InvalidArgumentError(name, f"expected a string, got {type(value).__name__}")
        self.handler, self.inbox, self.background = handler, inbox, background
        self.max_body_size = positive_int(max_body_size, "max_body_size")
        self._networks: Networks | None = networks(allowed_ips)
        self._check_credentials = username is not None or password is not None
        self._username = None if username is None else _secret_bytes(username)
        self._password = None if password is None else _secret_bytes(password)
        self._too_large = _refusal(413, "too_large", f"callback bodies are limited to {self.max_body_size} bytes")
        self._telemetry = ReceiverTelemetry(tracer_provider, meter_provider)

    def __repr__(self) -> str:
        target = f"inbox={self.inbox!r}" if self.inbox is not None else f"handler={self.handler!r}"
        return f"CallbackReceiver({target}, checks_credentials={self._check_credentials})"

    # --- the ways in: bytes, chunks, ASGI -----------------------------------------------------------------------

    @reported
    async def receive(self, body: bytes, *, peer: str | None) -> Reception:
        """The answer to a POST of `body` from `peer` (the client address the server reports)."""
        refused = self._refuse_source(peer)
        if refused is not None:
            return refused
        if len(body) > self.max_body_size:
            return self._too_large
        return await self._answer(bytes(body), peer)

    @reported
    async def receive_stream(
        self, chunks: AsyncIterable[bytes], *, peer: str | None, content_length: str | int | None = None
    ) -> Reception:
        """As `receive`, reading the body from `chunks` only once the source is allowed, and no further than
        `max_body_size` (nothing at all when `content_length` already says it is larger)."""
        refused = self._refuse_source(peer)
        if refused is not None:
            return refused
        if content_length is not None and str(content_length).isdigit() and int(content_length) > self.max_body_size:
            return self._too_large
        body, size = [], 0
        async for chunk in chunks:
            size += len(chunk)
            if size > self.max_body_size:
                # Left unfinished, an async generator (Starlette's request.stream()) is closed only when collected,
                # which trio reports as a ResourceWarning: close it now.
                close = getattr(chunks, "aclose", None)
                if close is not None:
                    await close()
                return self._too_large
            body.append(chunk)
        return await self._answer(b"".join(body), peer)

    @reported
    async def serve_asgi(self, scope: Any, receive: Any, send: Any) -> Reception | None:
        """Answer one ASGI HTTP request as the callback endpoint (no routing: the caller chose this path and
        method); runs `after` once the answer is sent. Returns the answer sent, or None when the client left before
        sending its whole body (nothing is sent then)."""
        client = scope.get("client")
        peer = client[0] if client else None
        reception = self._refuse_source(peer)
        if reception is None:
            try:
                body = await read_asgi_body(receive, self.max_body_size, scope["headers"])
            except ClientGone:
                return None
            reception = self._too_large if body is None else await self._answer(body, peer)
        await send_json(send, reception.status, reception.body)
        if reception.after is not None:
            await reception.after()
        return reception

    # --- the checks and the answer --------------------------------------------------------------------------------

    def _refuse_source(self, peer: str | None) -> Reception | None:
        """403 when `allowed_ips` is set and `peer` may not send."""
        if self._networks is None or source_allowed(peer, self._networks):
            return None
        logger.warning("refused a FOTA callback from %s: address not allowed", printable(peer or "unknown"))
        return _FORBIDDEN

    async def _answer(self, body: bytes, peer: str | None) -> Reception:
        try:
            message = parse_callback_message(body)
        except CallbackParseError as exc:
            logger.warning("refused a FOTA callback from %s: %s", printable(peer or "unknown"), printable(exc))
            return _refusal(400, "malformed_callback", str(exc))
        if self._check_credentials and not self._credentials_match(message):
            logger.warning("refused a FOTA callback from %s: wrong username or password", printable(peer or "unknown"))
            return _UNAUTHORIZED
        if self.inbox is not None:
            return await self._store(message, body)
        if self.background:
            return Reception(202, _ACCEPTED, message, "accepted", after=lambda: self._handle_later(message))
        return await self._handle(message)

    def _credentials_match(self, message: CallbackMessage) -> bool:
        # Both configured comparisons always run: which one failed must not show in the timing.
        username_ok = self._username is None or hmac.compare_digest(_secret_bytes(message.username), self._username)
        password_ok = self._password is None or hmac.compare_digest(_secret_bytes(message.password), self._password)
        return username_ok and password_ok

    async def _store(self, message: CallbackMessage, body: bytes) -> Reception:
        assert self.inbox is not None
        down = getattr(self.inbox, "worker_down", None)
        if down is not None:
            logger.error("could not take a FOTA callback, answered 503: %s", printable(down))
            return _UNAVAILABLE
        try:
            stored = await self.inbox.put(body)
        except Exception as exc:
            logger.error("could not store a FOTA callback, answered 503: %s", printable(f"{type(exc).__name__}: {exc}"))
            return _UNAVAILABLE
        return Reception(200, _OK, message, "stored" if stored else "duplicate")

    async def _handle(self, message: CallbackMessage) -> Reception:
        """200 once the handler returned; 500 when it raised, the exception logged."""
        assert self.handler is not None
        try:
            await self.handler(message)
        except Exception:
            logger.exception("the FOTA callback handler failed on a %s message", printable(message.type))
            return attrs.evolve(_FAILED, message=message)
        return Reception(200, _OK, message, "handled")

    async def _handle_later(self, message: CallbackMessage) -> None:
        await self._handle(message)  # after the 202 was sent: a failure is logged, and nobody waits for an answer
