"""The SDK's own cost per call, with no sockets: `InMemoryTransport` and a handler returning canned bytes.

- per operation: µs of this process's CPU per call and calls/s, one task on one core, medians over rounds,
  next to the floor any client pays for the same result (`await handler(request)` + `json.loads`);
- a per-stage split of a V2 list call, replaying the pipeline's steps with the package's own objects
  (validate, build the path, auth headers, the `Request`, send, decode, wrap), each timed in its own loop
  on the process CPU clock (`time.process_time_ns`), interleaved repetitions, medians; what the replay
  leaves out (the coroutine layers between the controller and the transport) is the total minus the stages;
- cProfile of V2 list calls: the top functions by self and by cumulative time (inflated by the profiler;
  read them as proportions);
- what OpenTelemetry costs a V2 list call (when `opentelemetry-api` is installed): with the API imported but no
  provider set, and with the SDK configured (a `BatchSpanProcessor`, a meter provider), each over the same call
  with the API out of `sys.modules` (as in an application that never imports it), in interleaved slices.

Standalone: `python -m benchmarks.inmemory [--seconds S] [--rounds N] [--backend trio] [--telemetry-only]`
(`benchmarks.run` measures on asyncio).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import functools
import gc
import json
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import anyio
import attrs

import fota_callbacks as fota

from ._common import (
    ACCESS_TOKEN,
    ACCOUNT,
    CALLBACK_URL,
    M2M_TOKEN,
    V1_LIST_BODY,
    V2_LIST_BODY,
    ProfileLine,
    cpu_layout,
    cpu_seconds,
    median,
    pin_to_cpu,
    profile_lines,
    quartiles,
    render_table,
)

__all__ = ["InMemoryResult", "format_inmemory", "main", "measure"]

Call = Callable[[], Awaitable[object]]
BASE_URL = "http://bench.invalid"
IN_MEMORY_TARGET_US = 30.0
HANDWRITTEN_TARGETS = {"asyncio": 2.0, "trio": 3.0}
"""SDK CPU per call at most this many times the hand-written client's, per event loop (issue 25; 3x, issue 17)."""
HANDWRITTEN_TARGET = HANDWRITTEN_TARGETS["asyncio"]
OTEL_API_TARGET = 1.03
"""With the OpenTelemetry API imported and no provider set, a call costs at most 3% more (issue 23)."""


def canned_handler(body: bytes) -> Callable[[fota.Request], Awaitable[fota.Response]]:
    """A handler answering every request with one prebuilt 200 response."""
    response = fota.Response(200, (("Content-Type", "application/json"),), body)

    async def handler(request: fota.Request) -> fota.Response:
        return response

    return handler


def make_client(body: bytes, *, timeout: float | None = 30.0) -> fota.FotaCallbacksClient:
    """A client on a canned-response `InMemoryTransport`; `timeout` is the SDK's default unless told."""
    return fota.FotaCallbacksClient(
        access_token=ACCESS_TOKEN,
        m2m_token=M2M_TOKEN,
        base_url=BASE_URL,
        transport=fota.InMemoryTransport(canned_handler(body)),
        timeout=timeout,
    )


def sdk_calls() -> tuple[dict[str, Call], list[fota.FotaCallbacksClient]]:
    v2_client, v1_client, register_client, untimed_client = (
        make_client(V2_LIST_BODY),
        make_client(V1_LIST_BODY),
        make_client(V2_LIST_BODY),
        make_client(V2_LIST_BODY, timeout=None),
    )
    v2, v1, v2r, v2u = v2_client.v2, v1_client.v1, register_client.v2, untimed_client.v2
    register_request = fota.FotaV2CallbackRegistrationRequest

    async def v2_list() -> object:
        return await v2.list_registered_callbacks(ACCOUNT)

    async def v1_list() -> object:
        return await v1.list_registered_callbacks(ACCOUNT)

    async def v2_register() -> object:
        return await v2r.register_callback(ACCOUNT, register_request(url=CALLBACK_URL))

    async def v2_list_untimed() -> object:
        return await v2u.list_registered_callbacks(ACCOUNT)

    v2_raw = v2.with_raw_response

    async def v2_list_raw() -> object:
        return await v2_raw.list_registered_callbacks(ACCOUNT)

    calls: dict[str, Call] = {
        "v2_list": v2_list,
        "v1_list": v1_list,
        "v2_register": v2_register,
        "v2_list_untimed": v2_list_untimed,
        "v2_list_raw": v2_list_raw,
    }
    return calls, [v2_client, v1_client, register_client, untimed_client]


def _same_for_variants(v2_list: Call, v1_list: Call, v2_register: Call) -> dict[str, Call]:
    """A reference driver per SDK operation: the SDK's V2 list variants all compare with the same V2 list."""
    return {
        "v2_list": v2_list,
        "v1_list": v1_list,
        "v2_register": v2_register,
        "v2_list_untimed": v2_list,
        "v2_list_raw": v2_list,
    }


def floor_calls() -> dict[str, Call]:
    """What any client does for the same result: call the handler, `json.loads` the body (and dump one)."""
    loads, dumps = json.loads, json.dumps
    request = fota.Request("GET", f"{BASE_URL}/api/fota/v2/callbacks/{ACCOUNT}")
    v2_handler, v1_handler = canned_handler(V2_LIST_BODY), canned_handler(V1_LIST_BODY)

    async def v2_list() -> object:
        return loads((await v2_handler(request)).content)

    async def v1_list() -> object:
        return loads((await v1_handler(request)).content)

    async def v2_register() -> object:
        dumps({"url": CALLBACK_URL}, separators=(",", ":")).encode()
        return loads((await v2_handler(request)).content)

    return _same_for_variants(v2_list, v1_list, v2_register)


@attrs.frozen
class _Url:
    url: str | None


@attrs.frozen
class _Registered:
    aname: str | None
    name: str | None
    url: str | None
    username: str | None


_HandwrittenHandler = Callable[[str, str, dict[str, str], bytes], Awaitable[tuple[int, bytes]]]


def handwritten_calls() -> dict[str, Call]:
    """The minimal hand-written client the SDK is held to (issue 17.3): quote the account, build the URL and
    the headers, await a handler, check the status, `json.loads`, build an attrs object. Nothing else: no
    validation, no retries, no timeout, no error model."""
    loads, dumps = json.loads, json.dumps
    user_agent = "handwritten/1.0"

    def canned(body: bytes) -> _HandwrittenHandler:
        async def handler(method: str, url: str, headers: dict[str, str], content: bytes) -> tuple[int, bytes]:
            return 200, body

        return handler

    v2_handler, v1_handler = canned(V2_LIST_BODY), canned(V1_LIST_BODY)

    def headers() -> dict[str, str]:
        return {
            "Accept": "application/json",
            "User-Agent": user_agent,
            "Authorization": f"Bearer {ACCESS_TOKEN}",
            "VZ-M2M-Token": M2M_TOKEN,
        }

    async def v2_list() -> object:
        url = f"{BASE_URL}/api/fota/v2/callbacks/{quote(ACCOUNT, safe='')}"
        status, body = await v2_handler("GET", url, headers(), b"")
        if status != 200:
            raise RuntimeError(status)
        return _Url(url=loads(body).get("url"))

    async def v1_list() -> object:
        url = f"{BASE_URL}/api/fota/v1/callbacks/{quote(ACCOUNT, safe='')}"
        status, body = await v1_handler("GET", url, headers(), b"")
        if status != 200:
            raise RuntimeError(status)
        return [
            _Registered(item.get("aname"), item.get("name"), item.get("url"), item.get("username"))
            for item in loads(body)
        ]

    async def v2_register() -> object:
        url = f"{BASE_URL}/api/fota/v2/callbacks/{quote(ACCOUNT, safe='')}"
        request_headers = headers()
        request_headers["Content-Type"] = "application/json"
        content = dumps({"url": CALLBACK_URL}, separators=(",", ":")).encode()
        status, body = await v2_handler("POST", url, request_headers, content)
        if status != 200:
            raise RuntimeError(status)
        return _Url(url=loads(body).get("url"))

    return _same_for_variants(v2_list, v1_list, v2_register)


async def _timed_loop(call: Call, seconds: float) -> tuple[float, float]:
    """(CPU µs per call, calls/s) of calling `call` back to back for about `seconds`."""
    gc.collect()
    batch = 200
    calls = 0
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    stop_at = t0 + seconds
    while time.perf_counter() < stop_at:
        for _ in range(batch):
            await call()
        calls += batch
    wall = time.perf_counter() - t0
    cpu = cpu_seconds() - cpu0
    return cpu / calls * 1e6, calls / wall


async def _paired(sdk_call: Call, reference: Call, seconds: float, parts: int = 10) -> tuple[float, float, float]:
    """(SDK CPU µs/call, SDK calls/s, reference CPU µs/call) from `parts` short slices of each, alternating:
    the two see the same machine speed even when it drifts within the round (a ratio of one SDK slice and one
    reference slice moved by ±20% here)."""
    gc.collect()
    piece = seconds / parts
    cpu, wall, calls = [0.0, 0.0], [0.0, 0.0], [0, 0]
    for part in range(parts):
        for which in (0, 1) if part % 2 == 0 else (1, 0):
            call = sdk_call if which == 0 else reference
            count = 0
            cpu0, t0 = time.process_time(), time.perf_counter()
            stop_at = t0 + piece
            while time.perf_counter() < stop_at:
                for _ in range(50):
                    await call()
                count += 50
            cpu[which] += time.process_time() - cpu0
            wall[which] += time.perf_counter() - t0
            calls[which] += count
    return cpu[0] / calls[0] * 1e6, calls[0] / wall[0], cpu[1] / calls[1] * 1e6


@dataclass
class Stage:
    name: str
    what: str
    us: float


@dataclass
class InMemoryResult:
    rounds: int
    seconds: float
    sdk_us: dict[str, float]
    sdk_calls_per_s: dict[str, float]
    floor_us: dict[str, float]
    handwritten_us: dict[str, float]
    ratios: dict[str, list[float]]
    stages: list[Stage]
    stage_error: str | None
    profile_calls: int
    profile_total_us: float
    top_self: list[ProfileLine]
    top_cumulative: list[ProfileLine]
    telemetry: TelemetryCost | None = None
    backend: str = "asyncio"

    @property
    def target(self) -> float:
        """The SDK/hand-written target on this result's event loop."""
        return HANDWRITTEN_TARGETS[self.backend]

    def ratio(self, op: str) -> float:
        """SDK CPU per call over the hand-written client's: the median of the per-round ratios."""
        return median(self.ratios[op])

    def spread(self, op: str) -> tuple[float, float]:
        return quartiles(self.ratios[op])

    def summary(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "rounds": self.rounds,
            "seconds": self.seconds,
            "sdk_us_per_call": self.sdk_us,
            "sdk_calls_per_s": self.sdk_calls_per_s,
            "floor_us_per_call": self.floor_us,
            "handwritten_us_per_call": self.handwritten_us,
            "sdk_over_handwritten": {op: self.ratio(op) for op in self.ratios},
            "sdk_over_handwritten_p25_p75": {op: self.spread(op) for op in self.ratios},
            "stages_us": {stage.name: stage.us for stage in self.stages},
            "stage_error": self.stage_error,
            "profile_calls": self.profile_calls,
            "top_self": [line.__dict__ for line in self.top_self],
            "top_cumulative": [line.__dict__ for line in self.top_cumulative],
            "telemetry": None if self.telemetry is None else self.telemetry.summary(),
        }


@dataclass
class TelemetryCost:
    """CPU µs per V2 list call in each condition (medians over rounds), and each over `without`, per round."""

    us: dict[str, float]
    ratios: dict[str, list[float]] = field(default_factory=dict)
    spans_exported: int = 0
    note: str | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "us_per_call": self.us,
            "over_without": {name: median(values) for name, values in self.ratios.items()},
            "over_without_p25_p75": {name: quartiles(values) for name, values in self.ratios.items()},
            "spans_exported": self.spans_exported,
            "note": self.note,
        }


@contextlib.contextmanager
def _opentelemetry_hidden() -> Iterator[None]:
    """As in an application that never imports OpenTelemetry: its modules out of `sys.modules` for the slice, and
    the SDK's memory of having found them there forgotten (private: `_telemetry` keeps the API's globals once it
    saw them; the SDK never imports the API itself)."""
    from fota_callbacks import _telemetry

    hidden = {name: sys.modules.pop(name) for name in list(sys.modules) if name.split(".")[0] == "opentelemetry"}
    _telemetry._tracer_global = _telemetry._meter_global = _telemetry._no_global
    try:
        yield
    finally:
        sys.modules.update(hidden)


async def _slice(call: Call, seconds: float, flush: Callable[[], object] | None = None) -> tuple[float, int]:
    """(process CPU seconds, calls) of `call` back to back for `seconds`, then `flush()`: the batch processor's
    export of this slice's spans is counted here, not in the next condition's slice."""
    count = 0
    cpu0 = time.process_time()  # all threads: the batch processor exports from its own
    stop_at = time.perf_counter() + seconds
    while time.perf_counter() < stop_at:
        for _ in range(50):
            await call()
        count += 50
    if flush is not None:
        flush()
    return time.process_time() - cpu0, count


async def telemetry_cost(rounds: int, seconds: float, parts: int = 6) -> TelemetryCost:
    """A V2 list call without OpenTelemetry, with its API imported and no provider, and with the SDK configured
    (`BatchSpanProcessor` to an exporter that drops the batches, a meter provider with an in-memory reader), each
    round `parts` slices of each, rotating the order; ratios over "without" per round."""
    try:
        import opentelemetry.metrics
        import opentelemetry.trace  # noqa: F401 - imported as an application would
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
    except ImportError:
        return TelemetryCost({}, note="opentelemetry-api/-sdk not installed: the otel rows are not measured")

    exported = [0]

    class Dropping(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            exported[0] += len(spans)
            return SpanExportResult.SUCCESS

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(Dropping()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    plain = make_client(V2_LIST_BODY)
    reporting = fota.FotaCallbacksClient(
        access_token=ACCESS_TOKEN,
        m2m_token=M2M_TOKEN,
        base_url=BASE_URL,
        transport=fota.InMemoryTransport(canned_handler(V2_LIST_BODY)),
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
    )

    async def v2_list() -> object:
        return await plain.v2.list_registered_callbacks(ACCOUNT)

    async def v2_list_sdk() -> object:
        return await reporting.v2.list_registered_callbacks(ACCOUNT)

    variants: dict[str, _Variant] = {
        "without": (v2_list, _opentelemetry_hidden),
        "api_no_sdk": (v2_list, contextlib.nullcontext),
        "sdk_batch": (v2_list_sdk, contextlib.nullcontext),
    }
    for call, condition in variants.values():
        with condition():
            for _ in range(1000):
                await call()
    flushes: dict[str, Callable[[], object]] = {"sdk_batch": tracer_provider.force_flush}
    samples = await _interleaved(variants, flushes, rounds=rounds, seconds=seconds, parts=parts)
    await plain.aclose()
    await reporting.aclose()
    tracer_provider.shutdown()
    meter_provider.shutdown()
    ratios = {
        name: [value / without for value, without in zip(values, samples["without"], strict=True)]
        for name, values in samples.items()
        if name != "without"
    }
    return TelemetryCost({name: median(values) for name, values in samples.items()}, ratios, exported[0])


_Variant = tuple[Call, Callable[[], contextlib.AbstractContextManager[None]]]


async def _interleaved(
    variants: dict[str, _Variant], flushes: dict[str, Callable[[], object]], *, rounds: int, seconds: float, parts: int
) -> dict[str, list[float]]:
    """CPU µs per call of each variant per round: `parts` slices of each per round, the order rotating."""
    samples: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for round_index in range(rounds):
        cpu, calls = dict.fromkeys(names, 0.0), dict.fromkeys(names, 0)
        gc.collect()
        for part in range(parts):
            shift = (round_index + part) % len(names)
            for name in names[shift:] + names[:shift]:
                call, condition = variants[name]
                with condition():
                    spent, count = await _slice(call, seconds / parts, flushes.get(name))
                cpu[name] += spent
                calls[name] += count
        for name in names:
            samples[name].append(cpu[name] / calls[name] * 1e6)
    return samples


async def _per_iteration_ns(body: Callable[[], Awaitable[object]], iterations: int) -> float:
    """CPU ns of this process per `await body()` (process CPU clock: robust to sharing the core)."""
    await body()
    gc.collect()
    t0 = time.process_time_ns()
    for _ in range(iterations):
        await body()
    return (time.process_time_ns() - t0) / iterations


async def stage_split(iterations: int) -> list[Stage]:
    """Replay one V2 list call step by step with the package's own objects; µs per step.

    Reaches into private modules (`_validation`, the client's pipeline): if they changed shape,
    the caller reports the error instead of the split.
    """
    from fota_callbacks._call import Call as PipelineCall
    from fota_callbacks._validation import check_account
    from fota_callbacks.v2.controller import V2

    client = make_client(V2_LIST_BODY)
    pipeline: Any = client._pipeline
    endpoint = V2.list
    auth = pipeline.shared.auth
    transport = pipeline.shared.transport
    root: str = pipeline.shared.root
    timeout = pipeline.options.timeout
    base_headers: tuple[tuple[str, str], ...] = (("Accept", "application/json"), ("User-Agent", "x"))
    snapshot = auth.static or await auth.current(pipeline.exchange)
    merged = snapshot.request_headers(base_headers)
    url = root + endpoint.path((ACCOUNT,))
    request = fota.Request("GET", url, merged, b"", timeout)
    untimed_request = fota.Request("GET", url, merged, b"", None)
    response = await transport.send(request)
    controller = client.v2

    async def validate() -> object:
        return check_account(ACCOUNT)

    async def build() -> object:
        return root + endpoint.path((ACCOUNT,))

    async def authenticate() -> object:
        return auth.static or await auth.current(pipeline.exchange)

    async def headers() -> object:
        return snapshot.request_headers(base_headers)

    call = PipelineCall("GET", url, base_headers)

    async def make_request() -> object:
        return pipeline._build(call, snapshot)

    async def send() -> object:
        return await transport.send(request)

    async def send_untimed() -> object:
        return await transport.send(untimed_request)

    async def decode() -> object:
        return endpoint.decode(response.content, 200)

    async def nothing() -> object:
        return None

    async def whole() -> object:
        return await controller.list_registered_callbacks(ACCOUNT)

    steps: list[tuple[str, str, Call]] = [
        ("validate", "_validation.check_account (regex fullmatch)", validate),
        ("build", "root + Endpoint.path (quote each segment, join)", build),
        ("auth", "auth.static or Auth.current(): the credentials snapshot", authenticate),
        ("headers", "AuthSnapshot.request_headers: base + credential headers (cached per snapshot)", headers),
        (
            "request",
            "Pipeline._build: the closed check, the request's headers, the Request (through its slots)",
            make_request,
        ),
        ("send", "InMemoryTransport.send with a timeout (timer armed only if the handler suspends)", send),
        ("decode", "Endpoint.decode: UTF-8 decode + json raw_decode + cattrs structure hook", decode),
    ]
    # Interleaved repetitions, medians: the machine's speed drifts within seconds.
    repetitions = 5
    per_repetition = max(1, iterations // repetitions)
    samples: dict[str, list[float]] = {name: [] for name, _, _ in steps}
    totals: list[float] = []
    untimed: list[float] = []
    for _ in range(repetitions):
        loop_ns = await _per_iteration_ns(nothing, per_repetition)
        for name, _, fn in steps:
            samples[name].append((await _per_iteration_ns(fn, per_repetition) - loop_ns) / 1e3)
        totals.append((await _per_iteration_ns(whole, per_repetition) - loop_ns) / 1e3)
        untimed.append((await _per_iteration_ns(send_untimed, per_repetition) - loop_ns) / 1e3)
    stages = [Stage(name, what, max(0.0, median(samples[name]))) for name, what, _ in steps]
    total_us = median(totals)
    rest = total_us - sum(stage.us for stage in stages)
    stages.append(
        Stage("rest", "controller -> _result -> exchange: Call, retry decision, Outcome, logging check", rest)
    )
    stages.append(Stage("total", "client.v2.list_registered_callbacks, measured whole", total_us))
    # Not part of the sum: what `send` costs without the timeout's cancel scope (timeout=None).
    stages.append(Stage("(send, timeout=None)", "the same send, no cancel scope", max(0.0, median(untimed))))
    await client.aclose()
    return stages


async def profile(calls: int, top: int) -> tuple[float, list[ProfileLine], list[ProfileLine]]:
    """cProfile `calls` V2 list calls; the top functions by self and by cumulative time, µs per SDK call."""
    client = make_client(V2_LIST_BODY)
    v2 = client.v2
    for _ in range(200):
        await v2.list_registered_callbacks(ACCOUNT)
    gc.collect()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        await v2.list_registered_callbacks(ACCOUNT)
    profiler.disable()
    await client.aclose()
    lines = profile_lines(profiler, calls)
    by_self = sorted(lines, key=lambda line: line.self_us, reverse=True)[:top]
    by_cum = sorted(lines, key=lambda line: line.cum_us, reverse=True)[:top]
    return sum(line.self_us for line in lines), by_self, by_cum


async def measure(
    *, rounds: int, seconds: float, stage_iterations: int, profile_calls: int, top: int = 15, telemetry: bool = True
) -> InMemoryResult:
    """On the running event loop (asyncio or trio); `stage_iterations=0`, `profile_calls=0` and `telemetry=False`
    leave out the stage split, the profile and the OpenTelemetry rows (the run's trio leg)."""
    import sniffio

    backend = sniffio.current_async_library()
    sdk, clients = sdk_calls()
    floor = floor_calls()
    handwritten = handwritten_calls()
    for call in (*sdk.values(), *floor.values(), *handwritten.values()):
        for _ in range(500):
            await call()
    sdk_samples: dict[str, list[tuple[float, float]]] = {op: [] for op in sdk}
    floor_samples: dict[str, list[float]] = {op: [] for op in sdk}
    handwritten_samples: dict[str, list[float]] = {op: [] for op in sdk}
    ratios: dict[str, list[float]] = {op: [] for op in sdk}
    for round_index in range(rounds):
        for op in sdk if round_index % 2 == 0 else list(sdk)[::-1]:
            sdk_us, sdk_rate, handwritten_us = await _paired(sdk[op], handwritten[op], seconds)
            sdk_sample = (sdk_us, sdk_rate)
            sdk_samples[op].append(sdk_sample)
            handwritten_samples[op].append(handwritten_us)
            ratios[op].append(sdk_sample[0] / handwritten_us)
            floor_samples[op].append((await _timed_loop(floor[op], seconds / 4))[0])
    for client in clients:
        await client.aclose()
    stage_error = None
    stages: list[Stage] = []
    try:
        stages = await stage_split(stage_iterations) if stage_iterations else []
    except (AttributeError, ImportError, TypeError) as exc:  # the package's internals changed shape
        stage_error = f"{type(exc).__name__}: {exc}"
    total_us, top_self, top_cum = await profile(profile_calls, top) if profile_calls else (0.0, [], [])
    cost = await telemetry_cost(rounds, seconds * 2) if telemetry else None
    return InMemoryResult(
        rounds=rounds,
        seconds=seconds,
        sdk_us={op: median([s[0] for s in samples]) for op, samples in sdk_samples.items()},
        sdk_calls_per_s={op: median([s[1] for s in samples]) for op, samples in sdk_samples.items()},
        floor_us={op: median(samples) for op, samples in floor_samples.items()},
        handwritten_us={op: median(samples) for op, samples in handwritten_samples.items()},
        ratios=ratios,
        stages=stages,
        stage_error=stage_error,
        profile_calls=profile_calls,
        profile_total_us=total_us,
        top_self=top_self,
        top_cumulative=top_cum,
        telemetry=cost,
        backend=backend,
    )


def format_telemetry(cost: TelemetryCost, rounds: int) -> str:
    if cost.note is not None:
        return f"OpenTelemetry: {cost.note}"
    labels = {
        "without": "V2 list, OpenTelemetry not imported",
        "api_no_sdk": "V2 list, API imported, no provider set",
        "sdk_batch": "V2 list, SDK: BatchSpanProcessor + meter provider",
    }
    rows = []
    for name, label in labels.items():
        if name == "without":
            rows.append([label, f"{cost.us[name]:.1f}", "1.00x", "", ""])
            continue
        ratio, (low, high) = median(cost.ratios[name]), quartiles(cost.ratios[name])
        verdict = ("ok" if ratio <= OTEL_API_TARGET else "MISS") if name == "api_no_sdk" else "reported"
        rows.append([label, f"{cost.us[name]:.1f}", f"{ratio:.3f}x", f"{low:.3f}-{high:.3f}", verdict])
    return render_table(
        ["condition", "CPU µs/call", "over not imported", "p25-p75", f"<= {OTEL_API_TARGET:g}x (API)"],
        rows,
        f"OpenTelemetry's cost on an in-memory V2 list call: medians of {rounds} rounds, each interleaving short "
        "slices of the three conditions (process CPU, all threads: the batch processor exports from its own); "
        f"{cost.spans_exported:,} spans handed to the exporter",
    )


_LABELS = {
    "v2_list": "V2 list (object)",
    "v1_list": "V1 list (array of 3)",
    "v2_register": "V2 register (enc+dec)",
    "v2_list_untimed": "V2 list, timeout=None",
    "v2_list_raw": "V2 list, with_raw_response",
}


def format_inmemory(result: InMemoryResult) -> str:
    rows = []
    for op, label in _LABELS.items():
        sdk_us, floor_us = result.sdk_us[op], result.floor_us[op]
        ratio, (low, high) = result.ratio(op), result.spread(op)
        rows.append(
            [
                label,
                f"{sdk_us:.1f}",
                f"{result.sdk_calls_per_s[op]:,.0f}",
                f"{result.handwritten_us[op]:.1f}",
                f"{ratio:.2f}x",
                f"{low:.2f}-{high:.2f}",
                "ok" if ratio <= result.target else "MISS",
                f"{floor_us:.1f}",
            ]
        )
    parts = [
        render_table(
            [
                "operation",
                "sdk CPU µs/call",
                "sdk calls/s",
                "hand-written µs",
                "sdk/hand-written",
                "p25-p75",
                f"<= {result.target:g}x",
                "floor µs",
            ],
            rows,
            f"In-memory on {result.backend} (InMemoryTransport, canned bytes, 1 task, 1 core): medians of "
            f"{result.rounds} rounds; in "
            f"each, {result.seconds:g} s of the SDK and as much of the hand-written client in 10 alternating slices "
            "each; hand-written = quote + URL + headers dict + await handler + status check + json.loads + attrs "
            "object; floor = await handler + json.loads (+ json.dumps for register)",
        )
    ]
    if result.telemetry is not None:
        parts.append(format_telemetry(result.telemetry, result.rounds))
    if result.stage_error is not None:
        parts.append(f"Per-stage split unavailable (package internals changed): {result.stage_error}")
    elif result.stages:
        total = next(stage.us for stage in result.stages if stage.name == "total")
        stage_rows = [
            [stage.name, f"{stage.us:.2f}", f"{stage.us / total * 100:.0f}%" if total else "", stage.what]
            for stage in result.stages
        ]
        parts.append(
            render_table(
                ["stage", "µs/call", "share", "what (replayed with the package's own objects)"],
                stage_rows,
                "Per-stage split of one in-memory V2 list call (CPU µs, process_time_ns loops, median of 5):",
            )
        )
    for title, lines in (("self", result.top_self), ("cumulative", result.top_cumulative)):
        if not lines:
            continue
        parts.append(
            render_table(
                ["function", "self µs/call", "cum µs/call", "calls/call", "where"],
                [
                    [
                        line.function[:48],
                        f"{line.self_us:.2f}",
                        f"{line.cum_us:.2f}",
                        f"{line.calls_per_call:g}",
                        line.where,
                    ]
                    for line in lines
                ],
                f"cProfile, {result.profile_calls} in-memory V2 list calls, top by {title} time "
                f"(profiled total {result.profile_total_us:.1f} µs/call; the profiler inflates small functions):",
            )
        )
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=0.5, help="seconds per timed loop")
    parser.add_argument("--stage-iterations", type=int, default=20_000)
    parser.add_argument("--profile-calls", type=int, default=20_000)
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio", help="the event loop")
    parser.add_argument("--telemetry-only", action="store_true", help="only the OpenTelemetry rows")
    args = parser.parse_args(argv)
    layout = cpu_layout()
    pin_to_cpu(None if layout is None else layout[1])
    if args.telemetry_only:
        cost = anyio.run(telemetry_cost, args.rounds, args.seconds * 2, backend=args.backend)
        print(f"event loop: {args.backend}")
        print(format_telemetry(cost, args.rounds))
        return
    run = functools.partial(
        measure,
        rounds=args.rounds,
        seconds=args.seconds,
        stage_iterations=args.stage_iterations,
        profile_calls=args.profile_calls,
    )
    result = anyio.run(run, backend=args.backend)
    print(f"event loop: {args.backend}")
    print(format_inmemory(result))


if __name__ == "__main__":
    main()
