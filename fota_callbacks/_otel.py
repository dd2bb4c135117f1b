"""What the SDK reports through OpenTelemetry. Imported only once a provider records (see `_telemetry`).

Names, kinds and attributes follow the OpenTelemetry semantic conventions where one applies (HTTP client spans and
`http.client.request.duration`), and the `fota.*` names of the API reference otherwise. Nothing here records a
body, a header value, a token or a password: an error is reported by its type (`error.type`), never its message,
because a ThingSpace error message is part of a response body; the one message recorded is that of the user's own
handler, escaped (`printable`).
"""

from __future__ import annotations

import functools
import threading
import time
import traceback
import weakref
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar
from urllib.parse import urlsplit

import anyio
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.metrics import CallbackOptions, Meter, MeterProvider, Observation
from opentelemetry.trace import Link, Span, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TracerProvider

from ._errors import FotaError
from ._logsafe import printable
from ._version import __version__
from .callbacks import CallbackMessageType

if TYPE_CHECKING:
    from .callbacks import CallbackMessage
    from .transport.base import Request, Response

__all__ = [
    "ClaimLike",
    "ClientRecording",
    "Handling",
    "InboxRecording",
    "ReceiverRecording",
    "StatsHolder",
    "callback_type",
    "error_type",
]

T = TypeVar("T")
ReceptionT = TypeVar("ReceptionT", bound="ReceptionLike | None")

# What the recordings read of the SDK's own objects, as protocols: telemetry sits below the pipeline, the inbox and
# the receiver, which report through it, and imports none of them.


class _Named(Protocol):
    @property
    def name(self) -> str: ...


class EndpointLike(Protocol):
    """What an operation span reads of a pipeline endpoint: its API version's name and its own."""

    @property
    def version(self) -> _Named: ...

    @property
    def name(self) -> str: ...


class ReceptionLike(Protocol):
    """What a receive span reads of a receiver's answer."""

    @property
    def status(self) -> int: ...

    @property
    def outcome(self) -> str: ...

    @property
    def message(self) -> CallbackMessage | None: ...


class StatsLike(Protocol):
    """What the gauges read of an inbox's `stats()`."""

    @property
    def pending(self) -> int: ...

    @property
    def in_flight(self) -> int: ...

    @property
    def dead(self) -> int: ...

    @property
    def oldest_pending_age(self) -> float: ...


class ClaimLike(Protocol):
    """What a handle span reads of an inbox's claim: the attempts before this one, the stored trace context."""

    @property
    def attempts(self) -> int: ...

    @property
    def trace(self) -> str | None: ...


class StatsHolder(Protocol):
    """An inbox's telemetry, holding the last `stats()` it took, for the gauges."""

    @property
    def stats(self) -> StatsLike | None: ...


SCOPE: Final = "fota_callbacks"
SCHEMA_URL: Final = "https://opentelemetry.io/schemas/1.26.0"
HTTP_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
"""The buckets the HTTP conventions advise for `http.client.request.duration`."""
HANDLE_BUCKETS: Final = (*HTTP_BUCKETS, 30.0, 60.0, 120.0, 300.0)
"""Handlers may call other services for minutes."""

RECEPTION_OUTCOMES: Final = {
    "stored": "stored",
    "duplicate": "duplicate",
    "handled": "handled",
    "accepted": "handled",  # background=True: handed to the handler, after the 202
    "refused": "refused",
}
_DOCUMENTED_TYPES: Final = frozenset(member.value for member in CallbackMessageType)
_MAX_MESSAGE: Final = 1000


def callback_type(message: CallbackMessage | None) -> str:
    """A message's `type` as an attribute value: a documented type, or `unknown` (a sender cannot make up
    metric series)."""
    value = None if message is None else message.type
    return value if value in _DOCUMENTED_TYPES else "unknown"


def error_type(exc: BaseException) -> str:
    """`error.type` for an exception: the SDK's errors by their public name (`fota_callbacks.ApiTimeoutError`),
    others by their qualified name."""
    cls = type(exc)
    if isinstance(exc, FotaError):
        return f"fota_callbacks.{cls.__name__}"
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def _cancelled(exc: BaseException) -> bool:
    """The caller cut it short: not an error (HTTP conventions), nothing to count."""
    try:
        return isinstance(exc, anyio.get_cancelled_exc_class())
    except Exception:  # no async library running (sniffio cannot tell): not a cancellation of ours
        return False


def _meter(provider: MeterProvider) -> Meter:
    return provider.get_meter(SCOPE, __version__, schema_url=SCHEMA_URL)


def _tracer(provider: TracerProvider | None) -> trace.Tracer | None:
    return None if provider is None else provider.get_tracer(SCOPE, __version__, schema_url=SCHEMA_URL)


async def _in_span(span: Span | None, run: Callable[[], Awaitable[T]]) -> T:
    if span is None:
        return await run()
    with trace.use_span(span, record_exception=False, set_status_on_exception=False):
        return await run()


# --- the client ---------------------------------------------------------------------------------------------------


class ClientRecording:
    """A client's tracer and `http.client.request.duration` histogram, for one pair of providers."""

    __slots__ = ("duration", "prefix", "tracer")

    def __init__(self, tracer_provider: TracerProvider | None, meter_provider: MeterProvider | None, root: str) -> None:
        self.tracer = _tracer(tracer_provider)
        self.duration = None
        if meter_provider is not None:
            self.duration = _meter(meter_provider).create_histogram(
                "http.client.request.duration",
                unit="s",
                description="Duration of HTTP client requests.",
                explicit_bucket_boundaries_advisory=HTTP_BUCKETS,
            )
        self.prefix = urlsplit(root).path  # a root with a path ("http://proxy/thingspace") prefixes every template

    async def operation(self, endpoint: EndpointLike, account: str, run: Callable[[], Awaitable[T]]) -> T:
        """`run()` (one API operation, retries included) inside its INTERNAL span `fota.v2.register_callback`..."""
        if self.tracer is None:
            return await run()
        version = endpoint.version.name
        attributes = {"fota.api_version": version, "fota.operation": endpoint.name, "fota.account": account}
        span = self.tracer.start_span(f"fota.{version}.{endpoint.name}", kind=SpanKind.INTERNAL, attributes=attributes)
        with trace.use_span(span, end_on_exit=True, record_exception=False, set_status_on_exception=False):
            try:
                return await run()
            except BaseException as exc:
                if not _cancelled(exc):
                    span.set_attribute("error.type", error_type(exc))
                    span.set_status(Status(StatusCode.ERROR))
                raise

    async def attempt(
        self, send: Callable[[Request], Awaitable[Response]], request: Request, template: str | None, resend: int
    ) -> Response:
        """One HTTP attempt: a CLIENT span (HTTP client conventions) and a duration measurement, both timed alike.

        `template` is the operation's path template (`/api/fota/v2/callbacks/{account}`); None for the token and
        session requests, whose paths hold no parameter.
        """
        parts = urlsplit(request.url)
        route = parts.path if template is None else self.prefix + template
        attributes: dict[str, Any] = {
            "http.request.method": request.method,
            "server.address": parts.hostname or "",
            "server.port": parts.port or (443 if parts.scheme == "https" else 80),
            "url.template": route,
        }
        started = time.time_ns()
        span = None
        if self.tracer is not None:
            opening = {**attributes, "url.full": request.url}
            if resend:
                opening["http.request.resend_count"] = resend
            span = self.tracer.start_span(
                f"{request.method} {route}", kind=SpanKind.CLIENT, attributes=opening, start_time=started
            )
        try:
            response = await _in_span(span, lambda: send(request))
        except BaseException as exc:
            self._ended(span, attributes, started, None, exc)
            raise
        self._ended(span, attributes, started, response.status_code, None)
        return response

    def _ended(
        self,
        span: Span | None,
        attributes: dict[str, Any],
        started: int,
        status: int | None,
        exc: BaseException | None,
    ) -> None:
        ended = time.time_ns()
        if exc is not None and _cancelled(exc):
            if span is not None:
                span.end(ended)
            return
        closing: dict[str, Any] = {}
        if status is not None:
            closing["http.response.status_code"] = status
        error = error_type(exc) if exc is not None else str(status) if status is not None and status >= 400 else None
        if error is not None:
            closing["error.type"] = error
        attributes.update(closing)
        if span is not None:
            span.set_attributes(closing)
            if error is not None:
                span.set_status(Status(StatusCode.ERROR))
            span.end(ended)
        if self.duration is not None:
            self.duration.record((ended - started) / 1e9, attributes)


# --- receiving ----------------------------------------------------------------------------------------------------


class ReceiverRecording:
    """A receiver's tracer and `fota.callbacks.received` counter, for one pair of providers."""

    __slots__ = ("received", "tracer")

    def __init__(self, tracer_provider: TracerProvider | None, meter_provider: MeterProvider | None) -> None:
        self.tracer = _tracer(tracer_provider)
        self.received = None
        if meter_provider is not None:
            self.received = _meter(meter_provider).create_counter(
                "fota.callbacks.received",
                unit="{request}",
                description="Callback requests received, by message type and outcome (refused ones included).",
            )

    async def receive(self, answer: Callable[[], Awaitable[ReceptionT]]) -> ReceptionT:
        """`answer()` (the checks, and the store or the handler) inside the `fota.callback.receive` span: SERVER
        when it starts the trace, INTERNAL under a framework's own server span."""
        span = None
        if self.tracer is not None:
            enclosed = trace.get_current_span().get_span_context().is_valid
            kind = SpanKind.INTERNAL if enclosed else SpanKind.SERVER
            span = self.tracer.start_span("fota.callback.receive", kind=kind)
        try:
            reception = await _in_span(span, answer)
        except BaseException as exc:
            self._answered(span, None, exc)
            raise
        self._answered(span, reception, None)
        return reception

    def _answered(self, span: Span | None, reception: ReceptionLike | None, exc: BaseException | None) -> None:
        # No answer (the client left mid-body, or the request failed): not acknowledged, the sender retries.
        attributes: dict[str, Any] = {"fota.callback.outcome": "refused"}
        if reception is not None:
            attributes["fota.callback.outcome"] = RECEPTION_OUTCOMES.get(reception.outcome, "refused")
            if reception.message is not None:
                attributes["fota.callback.type"] = callback_type(reception.message)
        if span is not None:
            span.set_attributes(attributes)
            if reception is not None:
                span.set_attribute("http.response.status_code", reception.status)
            if exc is not None and not _cancelled(exc):
                span.set_attribute("error.type", error_type(exc))
                span.set_status(Status(StatusCode.ERROR))
            elif reception is not None and reception.status >= 500:
                span.set_status(Status(StatusCode.ERROR))
            span.end()
        if self.received is not None:
            self.received.add(1, attributes)


# --- the inbox's worker -------------------------------------------------------------------------------------------


def _link(traceparent: str | None) -> list[Link]:
    """A link to the receive span stored with the entry (`00-<trace id>-<span id>-<flags>`), if it is one."""
    if traceparent is None:
        return []
    parts = traceparent.split("-")
    try:
        if len(parts) != 4 or parts[0] != "00":
            return []
        context = SpanContext(
            trace_id=int(parts[1], 16),
            span_id=int(parts[2], 16),
            is_remote=True,
            trace_flags=TraceFlags(int(parts[3], 16) & 0xFF),
        )
    except ValueError:
        return []
    return [Link(context)] if context.is_valid else []


def exception_event(exc: BaseException) -> dict[str, str]:
    """The attributes of an `exception` event: type, the message escaped (`printable`), the frames.

    Never raises: an exception whose `str()` fails is named by its type alone.
    """
    try:
        message = printable(str(exc), _MAX_MESSAGE)
    except Exception:
        message = "<str() of the exception failed>"
    return {
        "exception.type": error_type(exc),
        "exception.message": message,
        "exception.stacktrace": "".join(traceback.format_tb(exc.__traceback__)),
    }


class Handling:
    """One handling attempt being reported: its `fota.callback.handle` span (in a trace of its own, linked to the
    request that stored the entry, and current while the handler runs) and, at `end`, its measurements."""

    __slots__ = ("_recording", "_span", "_started", "_token", "_type")

    def __init__(self, recording: InboxRecording, claim: ClaimLike, message: CallbackMessage | None) -> None:
        self._recording = recording
        self._type = callback_type(message)
        self._started = time.time_ns()
        self._span: Span | None = None
        self._token: object = None
        if recording.tracer is not None:
            self._span = recording.tracer.start_span(
                "fota.callback.handle",
                context=otel_context.Context(),  # a root: the handling is not part of the request's trace
                kind=SpanKind.CONSUMER,
                links=_link(claim.trace),
                attributes={"fota.inbox.attempt": claim.attempts + 1, "fota.callback.type": self._type},
                start_time=self._started,
            )
            # The handler's own spans (a client call, a database) nest under this one.
            self._token = otel_context.attach(trace.set_span_in_context(self._span, otel_context.Context()))

    def end(self, outcome: str | None, exc: BaseException | None = None) -> None:
        """The attempt ended: `done`, `retry` or `dead`; None when it was cut short (shutdown), not counted."""
        ended = time.time_ns()
        if self._token is not None:
            otel_context.detach(self._token)  # type: ignore[arg-type]
            self._token = None
        span = self._span
        if span is not None:
            if outcome is not None:
                span.set_attribute("fota.inbox.outcome", outcome)
            if exc is not None and outcome is not None:
                span.add_event("exception", exception_event(exc), timestamp=ended)
            if outcome in ("retry", "dead"):
                span.set_status(Status(StatusCode.ERROR))
            span.end(ended)
        if outcome is not None:
            self._recording.measure(self._type, outcome, (ended - self._started) / 1e9)


class InboxRecording:
    """An inbox's tracer, `fota.inbox.handled` counter and `fota.inbox.handle.duration` histogram, and the gauges
    of its meter provider."""

    __slots__ = ("duration", "gauges_of", "handled", "tracer")

    def __init__(self, tracer_provider: TracerProvider | None, meter_provider: MeterProvider | None) -> None:
        self.tracer = _tracer(tracer_provider)
        self.gauges_of = meter_provider
        self.handled = self.duration = None
        if meter_provider is not None:
            meter = _meter(meter_provider)
            self.handled = meter.create_counter(
                "fota.inbox.handled", unit="{attempt}", description="Handling attempts, by message type and outcome."
            )
            self.duration = meter.create_histogram(
                "fota.inbox.handle.duration",
                unit="s",
                description="Time the handler took, per attempt.",
                explicit_bucket_boundaries_advisory=HANDLE_BUCKETS,
            )

    def handling(self, claim: ClaimLike, message: CallbackMessage | None) -> Handling:
        return Handling(self, claim, message)

    def measure(self, message_type: str, outcome: str, seconds: float) -> None:
        attributes = {"fota.callback.type": message_type, "fota.inbox.outcome": outcome}
        if self.handled is not None:
            self.handled.add(1, attributes)
        if self.duration is not None:
            self.duration.record(seconds, attributes)

    def report_gauges(self, telemetry: StatsHolder) -> None:
        if self.gauges_of is not None:
            _gauges(self.gauges_of).inboxes.add(telemetry)


# --- the gauges: one set per meter provider, over every inbox that reports through it -----------------------------

_GAUGE_FIELDS: Final = (
    ("fota.inbox.pending", "pending", "{entry}", "Entries not yet done or dead (in-flight ones included)."),
    ("fota.inbox.in_flight", "in_flight", "{entry}", "Pending entries a worker has claimed."),
    ("fota.inbox.dead", "dead", "{entry}", "Dead letters."),
    ("fota.inbox.oldest_pending_age", "oldest_pending_age", "s", "Age of the oldest pending entry; 0 when none."),
)


class _InboxGauges:
    """The observable gauges of one meter provider. An SDK meter keeps the first callbacks registered under a name
    and drops later ones, so each provider gets one set, reporting every inbox added: counts summed, the oldest age.
    Each reports the last `stats()` an inbox took (the callbacks run in the reader's thread and cannot await)."""

    def __init__(self, meter: Meter) -> None:
        self.inboxes: weakref.WeakSet[StatsHolder] = weakref.WeakSet()
        for name, field, unit, description in _GAUGE_FIELDS:
            meter.create_observable_gauge(
                name, callbacks=[functools.partial(self._observe, field)], unit=unit, description=description
            )

    def _observe(self, field: str, options: CallbackOptions) -> Iterable[Observation]:
        taken: list[StatsLike] = [telemetry.stats for telemetry in list(self.inboxes) if telemetry.stats is not None]
        if not taken:
            return []
        values = [getattr(stats, field) for stats in taken]
        return [Observation(max(values) if field == "oldest_pending_age" else sum(values))]


_GAUGES: weakref.WeakKeyDictionary[MeterProvider, _InboxGauges] = weakref.WeakKeyDictionary()
_GAUGES_LOCK = threading.Lock()


def _gauges(provider: MeterProvider) -> _InboxGauges:
    with _GAUGES_LOCK:
        gauges = _GAUGES.get(provider)
        if gauges is None:
            gauges = _GAUGES[provider] = _InboxGauges(_meter(provider))
        return gauges
