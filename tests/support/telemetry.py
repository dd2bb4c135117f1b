"""OpenTelemetry's SDK with in-memory exporters, read the way a dashboard reads what the SDK reported."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
from fastapi import FastAPI
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, Metric, MetricsData
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import fota_callbacks as fota
from fota_callbacks.inbox import BaseInbox
from fota_callbacks.integrations.fastapi import callback_router, fota_lifespan

__all__ = ["Otel", "Point"]

Point = tuple[dict[str, Any], Any]
"""A metric's data point as a dashboard reads it: its attributes, and its value (a histogram: its data point)."""


class Otel:
    """A tracer provider exporting to memory and a meter provider read on demand: pass `providers()` to the SDK."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def providers(self) -> dict[str, Any]:
        return {"tracer_provider": self.tracer_provider, "meter_provider": self.meter_provider}

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()

    # --- spans ------------------------------------------------------------------------------------------------------

    def spans(self, name: str | None = None, **attributes: Any) -> list[ReadableSpan]:
        """Finished spans, oldest first, with that name and those attributes (dots written as `__`)."""
        wanted = {key.replace("__", "."): value for key, value in attributes.items()}
        return [
            span
            for span in self.exporter.get_finished_spans()
            if (name is None or span.name == name) and all(attrs(span).get(k) == v for k, v in wanted.items())
        ]

    def clear(self) -> None:
        self.exporter.clear()

    # --- metrics ----------------------------------------------------------------------------------------------------

    def collect(self) -> MetricsData | None:
        return self.reader.get_metrics_data()

    def metrics(self, data: MetricsData | None = None) -> dict[str, Metric]:
        data = self.collect() if data is None else data
        found: dict[str, Metric] = {}
        if data is None:
            return found
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    found[metric.name] = metric
        return found

    def points(self, name: str, data: MetricsData | None = None) -> list[Point]:
        """The data points of metric `name` (none when it was not reported): (attributes, value or histogram)."""
        metric = self.metrics(data).get(name)
        if metric is None:
            return []
        return [(dict(point.attributes or {}), _value(point)) for point in metric.data.data_points]

    def value(self, name: str, **attributes: Any) -> Any:
        """The value of the one point of `name` with exactly these attributes (dots written as `__`), or None."""
        wanted = {key.replace("__", "."): value for key, value in attributes.items()}
        matching = [value for found, value in self.points(name) if found == wanted]
        assert len(matching) <= 1, matching
        return matching[0] if matching else None

    def texts(self) -> Iterator[str]:
        """Everything exported, as JSON text: each span, and the metrics (for the secrets sweep)."""
        for span in self.exporter.get_finished_spans():
            yield span.to_json()
        data = self.collect()
        if data is not None:
            yield data.to_json()


def attrs(span: ReadableSpan) -> Mapping[str, Any]:
    return dict(span.attributes or {})


def _value(point: Any) -> Any:
    return point if hasattr(point, "bucket_counts") else point.value


# --- a receiving app reporting to an `Otel` (the telemetry tests of the receiver and the inbox) ---------------


def client_factory() -> fota.FotaCallbacksClient:
    return fota.FotaCallbacksClient(access_token="unused", m2m_token="unused")


def body(n: int, type: str = "upgradeProgress", **fields: Any) -> bytes:
    return json.dumps({"type": type, "accountName": "0000123456-00001", "n": n, **fields}).encode()


@asynccontextmanager
async def receiving(
    inbox: BaseInbox, otel: Otel, handler: Any = None, *, workers: int = 1, max_attempts: int = 10, **router: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """An app storing into `inbox` and (with `handler`) working it off, both reporting to `otel`."""
    lifespan = fota_lifespan(
        client_factory, inbox=inbox, handler=handler, workers=workers, max_attempts=max_attempts, **otel.providers()
    )
    app = FastAPI(lifespan=lifespan)
    app.include_router(callback_router(inbox=inbox, **otel.providers(), **router))
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://receiver")
    async with app.router.lifespan_context(app), http:
        yield http


async def until_reported(otel: Otel, name: str, count: int) -> None:
    with anyio.fail_after(30):
        while len(otel.spans(name)) < count:  # noqa: ASYNC110 - the worker runs in another task
            await anyio.sleep(0.01)
