"""Whether to report through OpenTelemetry, decided per use without importing it; what a component reports.

The SDK never imports OpenTelemetry itself. A provider that records exists only once the application imported
the API (to set a global provider, or to pass one in), so a component reads the API's global providers from
`sys.modules`. While none records (the API not imported, no provider set, the API's proxy or no-op providers),
`current()` answers None after a few dictionary lookups, and nothing else happens: no span, no attribute dict.
Once one records, `_otel` (which imports the API) builds the component's tracer and instruments, once per pair of
providers, so a provider set later is picked up by the next call.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar

from ._errors import InvalidArgumentError

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

    from ._otel import ClaimLike, ClientRecording, Handling, InboxRecording, ReceiverRecording, ReceptionLike, StatsLike
    from .callbacks import CallbackMessage

__all__ = [
    "ClientTelemetry",
    "InboxTelemetry",
    "ReceiverTelemetry",
    "Telemetry",
    "current_traceparent",
    "reported",
]

R = TypeVar("R")
P = ParamSpec("P")
ReceptionT = TypeVar("ReceptionT", bound="ReceptionLike | None")

_TRACE = "opentelemetry.trace"
_METRICS = "opentelemetry.metrics._internal"  # where the API keeps its global meter provider
_TRACER_GLOBAL, _METER_GLOBAL = "_TRACER_PROVIDER", "_METER_PROVIDER"
_UNSET: Any = object()
# Providers that record nothing; a proxy delegates to the global provider once one is set.
_INERT = frozenset({"ProxyTracerProvider", "NoOpTracerProvider", "_ProxyMeterProvider", "NoOpMeterProvider"})
_PROXIES = frozenset({"ProxyTracerProvider", "_ProxyMeterProvider"})
# A provider the environment names is loaded by the API's getter on first use (the variables are read once).
_FROM_ENVIRONMENT = bool(os.environ.get("OTEL_PYTHON_TRACER_PROVIDER") or os.environ.get("OTEL_PYTHON_METER_PROVIDER"))


_modules = sys.modules  # the one dict: imports and the benchmark's hiding both change it in place


def _no_global(name: str, default: Any = None) -> Any:
    return None


# `.get` of the API modules' globals once they are imported (a module keeps its globals dict for its life): one
# call reads the global provider. The API's public getters check `os.environ` on every call, which costs about
# 1 µs here, a tenth of an in-memory call.
_tracer_global: Callable[..., Any] = _no_global
_meter_global: Callable[..., Any] = _no_global


def _look_for_the_api() -> bool:
    """Whether the API is imported (either half), its globals found once it is."""
    global _tracer_global, _meter_global
    if _tracer_global is _no_global:
        module = sys.modules.get(_TRACE)
        if module is not None:
            _tracer_global = vars(module).get if _TRACER_GLOBAL in vars(module) else _public_getter(module)
    if _meter_global is _no_global:
        module = sys.modules.get(_METRICS)
        if module is not None:
            _meter_global = vars(module).get if _METER_GLOBAL in vars(module) else _public_getter(module)
    return _tracer_global is not _no_global or _meter_global is not _no_global


def _public_getter(module: Any) -> Callable[..., Any]:
    """An API without the global this module reads: ask its public getter (slower, and as correct)."""
    getter = getattr(module, "get_tracer_provider", None) or module.get_meter_provider
    return lambda name, default=None: getter()


def _global_providers() -> tuple[Any, Any]:
    """The API's global providers (None: not imported, or none set), loading one the environment names."""
    tracer_provider, meter_provider = _tracer_global(_TRACER_GLOBAL), _meter_global(_METER_GLOBAL)
    if _FROM_ENVIRONMENT:
        if tracer_provider is None and _tracer_global is not _no_global:
            tracer_provider = sys.modules[_TRACE].get_tracer_provider()
        if meter_provider is None and _meter_global is not _no_global:
            meter_provider = sys.modules[_METRICS].get_meter_provider()
    return tracer_provider, meter_provider


def _recording(provider: Any) -> Any:
    return None if provider is None or type(provider).__name__ in _INERT else provider


def _given(value: Any, parameter: str, method: str) -> Any:
    """A provider passed in: checked like any argument; the API's proxy means "the global one" (None)."""
    if value is None:
        return None
    if not callable(getattr(value, method, None)):
        raise InvalidArgumentError(parameter, f"expected an OpenTelemetry {parameter} (with {method}()), got {value!r}")
    return None if type(value).__name__ in _PROXIES else value


class Telemetry(Generic[R]):
    """The providers one component reports through: those it was given, else the API's global ones."""

    __slots__ = ("__weakref__", "_cached", "_given", "_meter_provider", "_tracer_provider")

    def __init__(self, tracer_provider: TracerProvider | None, meter_provider: MeterProvider | None) -> None:
        self._tracer_provider = _given(tracer_provider, "tracer_provider", "get_tracer")
        self._meter_provider = _given(meter_provider, "meter_provider", "get_meter")
        self._given = self._tracer_provider is not None or self._meter_provider is not None
        self._cached: tuple[Any, Any, R | None] | None = None

    def current(self) -> R | None:
        """What to report through now; None while neither provider records (the fast path: nothing is built).

        Runs once per operation, request or handling: while the API is not imported, or no provider is set, it
        costs two dictionary lookups.
        """
        if self._given:
            tracer_provider, meter_provider = self._tracer_provider, self._meter_provider
            if tracer_provider is None or meter_provider is None:
                _look_for_the_api()
                found = _global_providers()
                tracer_provider = found[0] if tracer_provider is None else tracer_provider
                meter_provider = found[1] if meter_provider is None else meter_provider
        else:
            if (_tracer_global is _no_global or _meter_global is _no_global) and (
                "opentelemetry" not in _modules or not _look_for_the_api()
            ):
                return None
            tracer_provider, meter_provider = _tracer_global(_TRACER_GLOBAL), _meter_global(_METER_GLOBAL)
            if tracer_provider is None and meter_provider is None:
                if not _FROM_ENVIRONMENT:
                    return None
                tracer_provider, meter_provider = _global_providers()
        return self._for(tracer_provider, meter_provider)

    def _for(self, tracer_provider: Any, meter_provider: Any) -> R | None:
        cached = self._cached
        if cached is None or cached[0] is not tracer_provider or cached[1] is not meter_provider:
            tracing, metering = _recording(tracer_provider), _recording(meter_provider)
            made = None if tracing is None and metering is None else self._make(tracing, metering)
            cached = self._cached = (tracer_provider, meter_provider, made)
        return cached[2]

    def _make(self, tracer_provider: Any, meter_provider: Any) -> R:
        raise NotImplementedError


class ClientTelemetry(Telemetry["ClientRecording"]):
    """A client's: a span per operation and per HTTP attempt, the `http.client.request.duration` histogram."""

    __slots__ = ("_root",)

    def __init__(self, tracer_provider: TracerProvider | None, meter_provider: MeterProvider | None, root: str) -> None:
        super().__init__(tracer_provider, meter_provider)
        self._root = root

    def _make(self, tracer_provider: Any, meter_provider: Any) -> ClientRecording:
        from ._otel import ClientRecording

        return ClientRecording(tracer_provider, meter_provider, self._root)


class ReceiverTelemetry(Telemetry["ReceiverRecording"]):
    """A receiver's: the `fota.callback.receive` span and the `fota.callbacks.received` counter."""

    __slots__ = ()

    def _make(self, tracer_provider: Any, meter_provider: Any) -> ReceiverRecording:
        from ._otel import ReceiverRecording

        return ReceiverRecording(tracer_provider, meter_provider)


class _Receiving(Protocol):
    @property
    def _telemetry(self) -> ReceiverTelemetry: ...


SelfT = TypeVar("SelfT", bound=_Receiving)


def reported(
    answer: Callable[Concatenate[SelfT, P], Coroutine[Any, Any, ReceptionT]],
) -> Callable[Concatenate[SelfT, P], Coroutine[Any, Any, ReceptionT]]:
    """Decorates a receiver's ways in: each request in a `fota.callback.receive` span, counted, when a provider
    records; a direct call otherwise."""

    async def reporting(self: SelfT, /, *args: P.args, **kwargs: P.kwargs) -> ReceptionT:
        recording = self._telemetry.current()
        if recording is None:
            return await answer(self, *args, **kwargs)
        return await recording.receive(lambda: answer(self, *args, **kwargs))

    functools.update_wrapper(reporting, answer)  # its name and docstring (the API reference)
    return reporting


class InboxTelemetry(Telemetry["InboxRecording"]):
    """An inbox's: a `fota.callback.handle` span per attempt, `fota.inbox.handled`, the handling time, and the
    gauges, which report the last `stats()` (taken by the worker's housekeeping, or by any caller)."""

    __slots__ = ("stats",)

    def __init__(self, tracer_provider: TracerProvider | None, meter_provider: MeterProvider | None) -> None:
        super().__init__(tracer_provider, meter_provider)
        self.stats: StatsLike | None = None

    def _make(self, tracer_provider: Any, meter_provider: Any) -> InboxRecording:
        from ._otel import InboxRecording

        return InboxRecording(tracer_provider, meter_provider)

    def replaced(self, tracer_provider: TracerProvider | None, meter_provider: MeterProvider | None) -> InboxTelemetry:
        """This inbox's telemetry with the providers given instead of its own (None: keep that one)."""
        replacement = InboxTelemetry(tracer_provider, meter_provider)
        if replacement._tracer_provider is None:
            replacement._tracer_provider = self._tracer_provider
        if replacement._meter_provider is None:
            replacement._meter_provider = self._meter_provider
        replacement._given = replacement._tracer_provider is not None or replacement._meter_provider is not None
        replacement.stats = self.stats
        return replacement

    def handling(self, claim: ClaimLike, message: CallbackMessage | None) -> Handling | None:
        """A started handle span (current until it ends) for one attempt; None while nothing records."""
        recording = self.current()
        return None if recording is None else recording.handling(claim, message)

    def measuring(self) -> bool:
        """Whether a meter records: then the worker refreshes `stats` for the gauges."""
        recording = self.current()
        return recording is not None and recording.gauges_of is not None

    def observe(self, stats: StatsLike) -> None:
        """Keep `stats` for the gauges (callbacks of the metric reader, which cannot await a store)."""
        self.stats = stats
        recording = self.current()
        if recording is not None:
            recording.report_gauges(self)


def current_traceparent() -> str | None:
    """The W3C `traceparent` of the current span (the receive span, when a receiver stores), or None."""
    module = sys.modules.get(_TRACE)
    if module is None:
        return None
    context = module.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"
