"""Where the SDK's telemetry goes, in fresh processes (the API's global providers can be set once per process):
nowhere, and nothing imported, without OpenTelemetry; nothing built while no provider records; reported as soon
as the application sets one, through the objects it made before."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from tests.support import ROOT

USE_EVERYTHING = """
import json, sys
import anyio

blocked = []


class NoOpenTelemetry:
    \"\"\"As if opentelemetry were not installed; records every attempt to import it.\"\"\"

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "opentelemetry":
            blocked.append(name)
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None


if sys.argv[1] == "blocked":
    sys.meta_path.insert(0, NoOpenTelemetry())

import fota_callbacks as fota
from fota_callbacks.inbox import MemoryInbox
from fota_callbacks.receiver import CallbackReceiver
from fota_callbacks.testing import FakeThingSpace


async def use_everything():
    handled = []

    async def handler(message):
        handled.append(message.type)

    inbox = MemoryInbox(poll_interval=0.01)
    receiver = CallbackReceiver(inbox=inbox)
    async with FakeThingSpace().client() as client:
        listed = await client.v2.list_registered_callbacks("0000123456-00001")
    reception = await receiver.receive(b'{"type": "upgradeProgress"}', peer="127.0.0.1")
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(inbox.run, handler)
        while not handled:
            await anyio.sleep(0.01)
        tasks.cancel_scope.cancel()
    stats = await inbox.stats()
    return {"url": listed.url, "status": reception.status, "handled": handled, "done": stats.done}


result = anyio.run(use_everything)
result["imported"] = sorted(name for name in sys.modules if name.split(".")[0] == "opentelemetry")
result["blocked"] = blocked
print(json.dumps(result))
"""

SET_LATER = """
import json
import anyio
from opentelemetry import metrics, trace

asked = []
for provider, method in ((trace.get_tracer_provider(), "get_tracer"), (metrics.get_meter_provider(), "get_meter")):
    original = getattr(type(provider), method)

    def asking(self, *args, _original=original, _method=method, **kwargs):
        asked.append(_method)
        return _original(self, *args, **kwargs)

    setattr(type(provider), method, asking)

import fota_callbacks as fota
from fota_callbacks.inbox import MemoryInbox
from fota_callbacks.receiver import CallbackReceiver
from fota_callbacks.testing import FakeThingSpace


async def traffic(client, receiver, inbox, handled):
    await client.v2.list_registered_callbacks("0000123456-00001")
    reception = await receiver.receive(b'{"type": "upgradeProgress", "n": %d}' % len(handled), peer="127.0.0.1")
    assert reception.status == 200, reception
    waiting_for = len(handled) + 1
    while len(handled) < waiting_for:
        await anyio.sleep(0.01)
    await inbox.stats()


async def main():
    inbox = MemoryInbox(poll_interval=0.01)
    receiver = CallbackReceiver(inbox=inbox)
    handled = []

    async def handler(message):
        handled.append(message.type)

    async with FakeThingSpace().client() as client, anyio.create_task_group() as tasks:
        tasks.start_soon(inbox.run, handler)
        await traffic(client, receiver, inbox, handled)
        before = list(asked)

        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        exporter, reader = InMemorySpanExporter(), InMemoryMetricReader()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(tracer_provider)
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
        await traffic(client, receiver, inbox, handled)  # the same objects, made before the providers were set
        tasks.cancel_scope.cancel()

    data = reader.get_metrics_data()
    names = sorted(m.name for r in data.resource_metrics for s in r.scope_metrics for m in s.metrics)
    spans = sorted({span.name for span in exporter.get_finished_spans()})
    print(json.dumps({"asked_before": before, "spans": spans, "metrics": names}))


anyio.run(main)
"""


def run(code: str, *args: str) -> Any:
    outcome = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert outcome.returncode == 0, outcome.stderr
    return json.loads(outcome.stdout)


def test_without_opentelemetry_nothing_is_imported_and_everything_works() -> None:
    result = run(USE_EVERYTHING, "blocked")
    assert result == {
        "url": None,
        "status": 200,
        "handled": ["upgradeProgress"],
        "done": 1,
        "imported": [],
        "blocked": [],  # never even tried
    }


def test_with_opentelemetry_installed_but_unused_the_sdk_does_not_import_it() -> None:
    result = run(USE_EVERYTHING, "installed")
    assert (result["status"], result["handled"], result["imported"]) == (200, ["upgradeProgress"], [])


def test_nothing_is_built_until_a_provider_is_set_and_then_the_same_objects_report() -> None:
    result = run(SET_LATER)
    assert result["asked_before"] == []  # the API's proxies were never asked for a tracer or a meter
    assert result["spans"] == [
        "GET /api/fota/v2/callbacks/{account}",
        "fota.callback.handle",
        "fota.callback.receive",
        "fota.v2.list_registered_callbacks",
    ]
    assert result["metrics"] == [
        "fota.callbacks.received",
        "fota.inbox.dead",
        "fota.inbox.handle.duration",
        "fota.inbox.handled",
        "fota.inbox.in_flight",
        "fota.inbox.oldest_pending_age",
        "fota.inbox.pending",
        "http.client.request.duration",
    ]
