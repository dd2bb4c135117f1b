"""The picture in the README's "Observability" section: one callback, from its POST to the handler, as traced.

Runs the real flow in this process: a FastAPI app with `callback_router` and `fota_lifespan` on a `MemoryInbox`, a
handler that calls ThingSpace (the `FakeThingSpace`) and fails its first attempt, OpenTelemetry's SDK with an
in-memory exporter. Then draws the exported spans as a waterfall (HTML) and, with headless Chromium, a PNG:

    python docs/tools/trace_waterfall.py                        # writes docs/images/callback-trace.png
    python docs/tools/trace_waterfall.py --html /tmp/trace.html  # the HTML only (no Chromium needed)
"""

from __future__ import annotations

import argparse
import html
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import anyio
import httpx
from fastapi import FastAPI
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import fota_callbacks as fota
from fota_callbacks.inbox import MemoryInbox
from fota_callbacks.integrations.fastapi import callback_router, fota_lifespan, get_app_client
from fota_callbacks.testing import FakeThingSpace

ROOT = Path(__file__).resolve().parents[2]
PNG = ROOT / "docs" / "images" / "callback-trace.png"
ACCOUNT = "0000123456-00001"
CALLBACK = (
    b'{"type": "upgradeFinished", "accountName": "0000123456-00001", "username": "listener", '
    b'"password": "s3cret", "firmwareList": []}'
)
SHOWN = (
    "fota.callback.type",
    "fota.callback.outcome",
    "fota.inbox.attempt",
    "fota.inbox.outcome",
    "http.response.status_code",
    "http.request.resend_count",
    "error.type",
    "fota.account",
)


async def run_flow() -> list[ReadableSpan]:
    """POST one callback; the worker handles it twice (the first attempt fails); the spans, as exported."""
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    fake = FakeThingSpace()
    inbox = MemoryInbox(poll_interval=0.02, retry_base=0.15)
    attempts: list[int] = []

    async def on_message(message: fota.CallbackMessage) -> None:
        client = get_app_client(app)
        await client.v2.list_registered_callbacks(message.account_name or ACCOUNT)
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("the fleet database timed out")

    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[Any]] = fota_lifespan(
        lambda: fake.client(tracer_provider=tracer_provider),
        inbox=inbox,
        handler=on_message,
        tracer_provider=tracer_provider,
    )
    app = FastAPI(lifespan=lifespan)
    app.include_router(
        callback_router(inbox=inbox, username="listener", password="s3cret", tracer_provider=tracer_provider)
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://listener") as http,
    ):
        answer = await http.post("/fota/callbacks", content=CALLBACK)
        assert answer.status_code == 200, answer.text
        with anyio.fail_after(10):
            while len(attempts) < 2:  # noqa: ASYNC110 - the worker runs in another task
                await anyio.sleep(0.01)
        await anyio.sleep(0.05)  # the second handle span ends just after the handler returns
    tracer_provider.shutdown()
    return list(exporter.get_finished_spans())


def _depth(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> int:
    depth, parent = 0, span.parent
    while parent is not None and parent.span_id in by_id:
        depth, parent = depth + 1, by_id[parent.span_id].parent
    return depth


def _ordered(spans: Sequence[ReadableSpan]) -> list[ReadableSpan]:
    """Traces by start (the receive trace first), each span followed by its children."""
    children: dict[int | None, list[ReadableSpan]] = {}
    ids = {span.context.span_id for span in spans}
    for span in sorted(spans, key=lambda span: span.start_time or 0):
        parent = span.parent.span_id if span.parent is not None and span.parent.span_id in ids else None
        children.setdefault(parent, []).append(span)
    ordered: list[ReadableSpan] = []

    def visit(parent: int | None) -> None:
        for span in children.get(parent, []):
            ordered.append(span)
            visit(span.context.span_id)

    visit(None)
    return ordered


def _label_place(left: float, width: float) -> str:
    """A bar's duration beside it: on its right, or on its left near the end of the lane."""
    if left + width > 85:
        return f"right:calc({100 - left:.3f}% + 6px)"
    return f"left:calc({left + width:.3f}% + 6px)"


def render_html(spans: Sequence[ReadableSpan]) -> str:
    ordered = _ordered(spans)
    by_id = {span.context.span_id: span for span in spans}
    start = min(span.start_time or 0 for span in spans)
    end = max(span.end_time or 0 for span in spans)
    total = max(end - start, 1)
    traces = {span.context.trace_id: n for n, span in enumerate(s for s in ordered if s.parent is None)}
    colours = ["#3f51b5", "#00897b", "#8e24aa", "#ef6c00"]
    rows = []
    for span in ordered:
        left = ((span.start_time or 0) - start) / total * 100
        width = max(((span.end_time or 0) - (span.start_time or 0)) / total * 100, 0.25)
        millis = ((span.end_time or 0) - (span.start_time or 0)) / 1e6
        attributes = dict(span.attributes or {})
        details = " · ".join(f"{key}={attributes[key]}" for key in SHOWN if key in attributes)
        for link in span.links:
            linked = by_id.get(link.context.span_id)
            name = linked.name if linked is not None else "a span"
            details += f" · linked to {name} of trace {traces.get(link.context.trace_id, -1) + 1}"
        error = any(event.name == "exception" for event in span.events)
        if error:
            message = next(event for event in span.events if event.name == "exception").attributes or {}
            details += f" · exception: {message.get('exception.type')}: {message.get('exception.message')}"
        colour = colours[traces.get(span.context.trace_id, 0) % len(colours)]
        indent = _depth(span, by_id) * 18
        rows.append(
            f'<tr><td class="name" style="padding-left:{indent + 6}px">'
            f'<span class="kind">{html.escape(span.kind.name)}</span> {html.escape(span.name)}'
            f'<div class="attrs">{html.escape(details)}</div></td>'
            f'<td class="lane"><div class="bar{" error" if error else ""}" '
            f'style="left:{left:.3f}%;width:{width:.3f}%;background:{colour}"></div>'
            f'<span class="ms" style="{_label_place(left, width)}">{millis:.2f} ms</span></td></tr>'
        )
    legend = " ".join(
        f'<span class="key" style="background:{colours[n % len(colours)]}"></span>trace {n + 1}'
        for n in sorted(traces.values())
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><style>
body {{ font: 13px/1.35 -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 18px; color: #212121; }}
h1 {{ font-size: 16px; margin: 0 0 4px; }} p {{ margin: 0 0 12px; color: #555; }}
table {{ border-collapse: collapse; width: 100%; table-layout: fixed; }}
td {{ border-top: 1px solid #e0e0e0; padding: 5px 6px; vertical-align: top; }}
td.name {{ width: 46%; }} .kind {{ font-size: 10px; color: #fff; background: #757575; border-radius: 3px;
  padding: 0 4px; margin-right: 4px; }}
.attrs {{ font-size: 11px; color: #666; margin-top: 2px; word-break: break-word; }}
td.lane {{ position: relative; }} .bar {{ position: absolute; top: 8px; height: 12px; border-radius: 2px;
  min-width: 2px; }}
.bar.error {{ outline: 2px solid #e53935; }} .ms {{ position: absolute; top: 5px; font-size: 11px; color: #444; }}
.key {{ display: inline-block; width: 12px; height: 12px; margin: 0 4px 0 12px; vertical-align: -2px; }}
</style></head><body>
<h1>One FOTA callback, from the POST to the handler</h1>
<p>{len(spans)} spans from a real run (OpenTelemetry SDK, in-memory exporter), time left to right over
{total / 1e6:.0f} ms. {legend}</p>
<table>{"".join(rows)}</table></body></html>
"""


def screenshot(page: Path, png: Path, height: int) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if chromium is None:
        raise SystemExit("no Chromium found: apt-get install -y chromium (or use --html)")
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        command = [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--window-size=1000,{height}",  # about the width of the docs' text column
            f"--screenshot={png}",
            page.as_uri(),
        ]
        subprocess.run(command, check=True, capture_output=True, timeout=120)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--html", type=Path, help="write the HTML here and stop (no Chromium)")
    parser.add_argument("--png", type=Path, default=PNG, help=f"the picture (default {PNG.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    spans = anyio.run(run_flow)
    page = render_html(spans)
    if args.html is not None:
        args.html.write_text(page, encoding="utf-8")
        return
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "trace.html"
        path.write_text(page, encoding="utf-8")
        screenshot(path, args.png, height=130 + 50 * len(spans))
    print(f"{len(spans)} spans -> {args.png}", file=sys.stderr)


if __name__ == "__main__":
    main()
