"""An inbox reports through OpenTelemetry, whatever its store: the context of the `fota.callback.receive` span is
stored with the entry, and each handling attempt is a `fota.callback.handle` span in a trace of its own linked to
it; `fota.inbox.handled`, the handling time, and the gauges from the last `stats()`. Through the FastAPI router
and lifespan, over every store of the contract suite (tests/support/inbox.py)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from opentelemetry.trace import SpanKind, StatusCode

import fota_callbacks as fota
from fota_callbacks.inbox import MemoryInbox
from tests.support.inbox import Clock, MakeInbox, anyio_backend, case, make_inbox, postgres_server, redis_server
from tests.support.telemetry import Otel, attrs, body, receiving, until_reported

pytestmark = pytest.mark.anyio

__all__ = ["anyio_backend", "case", "make_inbox", "postgres_server", "redis_server"]  # fixtures, used below

RECEIVED = "fota.callbacks.received"
HANDLED = "fota.inbox.handled"


async def test_a_callback_is_one_receive_span_and_its_handlings_are_linked_traces_of_their_own(
    make_inbox: MakeInbox, otel: Otel
) -> None:
    calls: list[int] = []

    async def flaky(message: fota.CallbackMessage) -> None:
        calls.append(message.raw["n"])
        if len(calls) == 1:
            raise RuntimeError("downstream refused\nCRITICAL root: forged")

    inbox = make_inbox(retry_base=0.01, retry_max=0.01)
    async with receiving(inbox, otel, flaky) as http:
        answer = await http.post("/fota/callbacks", content=body(1))
        await until_reported(otel, "fota.callback.handle", 2)
    assert answer.status_code == 200

    [received] = otel.spans("fota.callback.receive")
    assert received.kind == SpanKind.SERVER
    assert received.parent is None
    assert attrs(received) == {
        "fota.callback.outcome": "stored",
        "fota.callback.type": "upgradeProgress",
        "http.response.status_code": 200,
    }
    retry, done = otel.spans("fota.callback.handle")
    for handling in (retry, done):
        assert handling.kind == SpanKind.CONSUMER
        assert handling.parent is None
        assert handling.context.trace_id != received.context.trace_id
        # ... linked to the request that stored the entry: its context was kept with the entry.
        [link] = handling.links
        assert (link.context.trace_id, link.context.span_id) == (received.context.trace_id, received.context.span_id)
    assert retry.context.trace_id != done.context.trace_id
    progress = {"fota.callback.type": "upgradeProgress"}
    assert attrs(retry) == {"fota.inbox.attempt": 1, **progress, "fota.inbox.outcome": "retry"}
    assert attrs(done) == {"fota.inbox.attempt": 2, **progress, "fota.inbox.outcome": "done"}
    assert (retry.status.status_code, done.status.status_code) == (StatusCode.ERROR, StatusCode.UNSET)
    [event] = retry.events
    assert event.name == "exception"
    assert event.attributes is not None
    assert event.attributes["exception.type"] == "RuntimeError"
    assert event.attributes["exception.message"] == "downstream refused\\nCRITICAL root: forged"  # escaped
    assert "flaky" in str(event.attributes["exception.stacktrace"])
    assert done.events == ()

    assert otel.value(RECEIVED, fota__callback__type="upgradeProgress", fota__callback__outcome="stored") == 1
    assert otel.value(HANDLED, fota__callback__type="upgradeProgress", fota__inbox__outcome="retry") == 1
    assert otel.value(HANDLED, fota__callback__type="upgradeProgress", fota__inbox__outcome="done") == 1
    durations = otel.points("fota.inbox.handle.duration")
    counts = sorted((found["fota.inbox.outcome"], point.count) for found, point in durations)
    assert counts == [("done", 1), ("retry", 1)]
    units = {name: metric.unit for name, metric in otel.metrics().items()}
    assert (units[RECEIVED], units[HANDLED], units["fota.inbox.handle.duration"]) == ("{request}", "{attempt}", "s")


async def test_the_handler_s_own_spans_nest_under_its_handle_span(make_inbox: MakeInbox, otel: Otel) -> None:
    tracer = otel.tracer_provider.get_tracer("the-application")

    async def handler(message: fota.CallbackMessage) -> None:
        with tracer.start_as_current_span("update the fleet database"):
            pass

    async with receiving(make_inbox(), otel, handler) as http:
        await http.post("/fota/callbacks", content=body(1))
        await until_reported(otel, "fota.callback.handle", 1)

    [handling] = otel.spans("fota.callback.handle")
    [own] = otel.spans("update the fleet database")
    assert own.parent is not None
    assert own.parent.span_id == handling.context.span_id


# --- the gauges ---------------------------------------------------------------------------------------------------


def gauges(otel: Otel) -> dict[str, Any]:
    names = ("fota.inbox.pending", "fota.inbox.in_flight", "fota.inbox.dead", "fota.inbox.oldest_pending_age")
    data = otel.collect()
    return {name.removeprefix("fota.inbox."): [value for _, value in otel.points(name, data)] for name in names}


async def test_the_gauges_report_the_last_stats_taken(make_inbox: MakeInbox, otel: Otel) -> None:
    clock = Clock()

    async def failing(message: fota.CallbackMessage) -> None:
        raise RuntimeError("never handled")

    inbox = make_inbox(clock=clock, **otel.providers())
    assert gauges(otel)["pending"] == []  # nothing taken yet: nothing reported
    async with receiving(inbox, otel) as http:
        for n in range(3):
            await http.post("/fota/callbacks", content=body(n))
            clock.advance(10)
        await inbox.stats()
        assert gauges(otel) == {"pending": [3], "in_flight": [0], "dead": [0], "oldest_pending_age": [30.0]}
        units = {name: metric.unit for name, metric in otel.metrics().items()}
        assert units["fota.inbox.pending"] == "{entry}"
        assert units["fota.inbox.oldest_pending_age"] == "s"

    # The app's shutdown closed the inbox: the next app runs on another handle on the same storage.
    inbox = inbox if isinstance(inbox, MemoryInbox) else make_inbox(clock=clock, **otel.providers())
    async with receiving(inbox, otel, failing, max_attempts=1):
        with anyio.fail_after(30):
            while (await inbox.stats()).dead < 3:  # noqa: ASYNC110 - the worker runs in another task
                await anyio.sleep(0.01)
        assert gauges(otel) == {"pending": [0], "in_flight": [0], "dead": [3], "oldest_pending_age": [0.0]}
    # The app's shutdown closed the inbox: it no longer reports (another handle would, with its own stats).
    assert gauges(otel) == {"pending": [], "in_flight": [], "dead": [], "oldest_pending_age": []}


async def test_the_worker_refreshes_the_gauges_itself(make_inbox: MakeInbox, otel: Otel) -> None:
    release = anyio.Event()

    async def waits(message: fota.CallbackMessage) -> None:
        await release.wait()

    inbox = make_inbox()
    async with receiving(inbox, otel, waits, workers=2) as http:
        for n in range(2):
            await http.post("/fota/callbacks", content=body(n))
        with anyio.fail_after(30):  # no stats() here: only the worker's housekeeping takes them
            while gauges(otel)["in_flight"] != [2]:  # noqa: ASYNC110
                await anyio.sleep(0.02)
        assert gauges(otel)["pending"] == [2]
        release.set()
        with anyio.fail_after(30):
            while gauges(otel)["pending"] != [0]:  # noqa: ASYNC110
                await anyio.sleep(0.02)
