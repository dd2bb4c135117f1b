"""A FOTA callback listener that is safe to expose: it registers its own URL with ThingSpace (V1) at startup,
accepts only callbacks that carry its credentials, and stores each one durably before answering.

V1 is the version whose messages echo the username and password given at registration, so the listener can
tell ThingSpace's callbacks from anyone else's POST. Every accepted body goes to a SQLite inbox first (answered
200 only once stored), and a worker hands it to `on_message`, retrying it later if it fails: a callback that
was answered is not lost by a failing handler, a restart or a killed process.

Install (from a clone): `pip install -e '.[fastapi,server]'` (FastAPI, and uvicorn to serve it). Against the
local fake, from the root of the clone, in three shells:

    # 1: the fake ThingSpace; it prints the THINGSPACE_* lines to export (it accepts any credentials)
    fota-callbacks fake-server --port 8080
    # 2: this app, with those lines exported and its own credentials; at startup it registers
    #    http://127.0.0.1:8000/fota/callbacks (V1) with the fake
    export FOTA_LISTENER_USERNAME=listener FOTA_LISTENER_PASSWORD='a long random secret'
    uvicorn examples.fastapi_app:app --port 8000
    # 3: the fake POSTs an upgradeProgress message to the registered URL; the app logs it
    fota-callbacks trigger upgradeProgress --account 0000123456-00001 --base-url http://127.0.0.1:8080

With `FOTA_ALLOWED_IPS=verizon` the app would refuse the local fake's deliveries (403): to restrict the sources
and still try it locally, set `FOTA_ALLOWED_IPS=verizon,127.0.0.1,::1`. The inbox file (`fota-inbox.db` and its
`-wal`/`-shm` companions) is written in the working directory; the repository's .gitignore leaves it out.

Settings (environment variables):
- `FOTA_LISTENER_USERNAME`, `FOTA_LISTENER_PASSWORD`: the credentials ThingSpace echoes; required. Without them
  the app refuses to start, unless `FOTA_LISTENER_INSECURE=1` says to accept callbacks from anyone (local
  experiments only).
- `FOTA_ACCOUNT` (default `0000123456-00001`): the account to register for.
- `FOTA_LISTENER_URL` (default `http://127.0.0.1:8000/fota/callbacks`): the address ThingSpace POSTs to; in
  production, this service's public URL.
- `FOTA_INBOX` (default `fota-inbox.db`): the SQLite file of the inbox.
- `FOTA_ALLOWED_IPS`: the source addresses and networks accepted, separated by commas; the word `verizon` stands
  for Verizon's published addresses. `verizon,127.0.0.1,::1` accepts ThingSpace and this machine (the local
  fake-server's deliveries); unset, any source address is accepted. Behind a proxy, see the README ("allowed_ips
  behind a proxy").
- `FOTA_FORCE_REGISTER=1`: register at startup even if ThingSpace already lists this URL and username. ThingSpace
  does not list the password back, so start once with it after changing `FOTA_LISTENER_PASSWORD`.

Operations: `GET /healthz` and `GET /readyz` (liveness and readiness probes), and `GET /metrics` for Prometheus
when OpenTelemetry's SDK and Prometheus exporter are installed (`pip install opentelemetry-sdk
opentelemetry-exporter-prometheus`): the SDK's metrics (callbacks received, handled, the inbox's gauges, ThingSpace
request durations; README, "Observability"). Without them the app runs the same, without `/metrics`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

from fastapi import FastAPI
from fastapi.responses import Response

import fota_callbacks as fota
from fota_callbacks.callbacks import FirmwareListMessage
from fota_callbacks.inbox import SqliteInbox
from fota_callbacks.integrations.fastapi import (
    FotaClient,
    callback_router,
    fota_lifespan,
    get_app_client,
    health_router,
)

ACCOUNT = os.environ.get("FOTA_ACCOUNT", "0000123456-00001")
LISTENER_URL = os.environ.get("FOTA_LISTENER_URL", "http://127.0.0.1:8000/fota/callbacks")
USERNAME = os.environ.get("FOTA_LISTENER_USERNAME") or None
PASSWORD = os.environ.get("FOTA_LISTENER_PASSWORD") or None
INSECURE = os.environ.get("FOTA_LISTENER_INSECURE", "") == "1"
FORCE_REGISTER = os.environ.get("FOTA_FORCE_REGISTER", "") == "1"
ALLOWED_IPS = os.environ.get("FOTA_ALLOWED_IPS", "")

if (USERNAME is None or PASSWORD is None) and not INSECURE:
    # A listener without credentials accepts any POST from anywhere as a ThingSpace callback.
    raise SystemExit(
        "examples/fastapi_app.py: set FOTA_LISTENER_USERNAME and FOTA_LISTENER_PASSWORD (the credentials "
        "ThingSpace echoes in every V1 callback), or FOTA_LISTENER_INSECURE=1 to accept callbacks from anyone"
    )

log = logging.getLogger("fota_listener")
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is too chatty here


@asynccontextmanager
async def register_listener(app: FastAPI) -> AsyncIterator[None]:
    """Runs inside `fota_lifespan`, so the shared client is already open: every replica converges on one
    registration, whatever the others do at the same moment."""
    client = get_app_client(app)
    registration = fota.FotaV1CallbackRegistrationRequest(
        name=fota.CallbackService.FOTA, url=LISTENER_URL, username=USERNAME, password=PASSWORD
    )
    result = await client.v1.ensure_callback(ACCOUNT, registration, force=FORCE_REGISTER)
    log.info("callback for %s %s: ThingSpace POSTs to %s", ACCOUNT, result.action, result.url)
    yield


async def on_message(message: fota.CallbackMessage) -> None:
    """Called by the inbox worker for each stored callback; raising makes the inbox retry it later."""
    log.info("%s message for account %s", message.type, message.account_name)
    if isinstance(message, FirmwareListMessage):
        for firmware in message.firmware_list or ():
            log.info("  firmware %s: %s -> %s", firmware.firmware_name, firmware.from_version, firmware.to_version)


def _prometheus_metrics() -> bool:
    """Report the SDK's metrics to Prometheus (the README's recipe): OpenTelemetry's global meter provider, read
    by the Prometheus exporter into prometheus_client's registry, which `/metrics` serves. False when they are not
    installed: the metrics are optional, the listener is not."""
    try:
        from opentelemetry import metrics
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from opentelemetry.sdk.metrics import MeterProvider
    except ImportError:
        log.info("no /metrics: pip install opentelemetry-sdk opentelemetry-exporter-prometheus to serve them")
        return False
    metrics.set_meter_provider(MeterProvider(metric_readers=[PrometheusMetricReader()]))
    return True


def _allowed_ips(setting: str) -> Literal["verizon"] | list[str] | None:
    """`FOTA_ALLOWED_IPS` as `callback_router` takes it: "verizon" alone, or a list (which may hold "verizon")."""
    entries = [entry.strip() for entry in setting.split(",") if entry.strip()]
    if entries == ["verizon"]:
        return "verizon"
    return entries or None


inbox = SqliteInbox(os.environ.get("FOTA_INBOX", "fota-inbox.db"))
app = FastAPI(lifespan=fota_lifespan(lifespan=register_listener, inbox=inbox, handler=on_message))
app.include_router(
    callback_router(inbox=inbox, username=USERNAME, password=PASSWORD, allowed_ips=_allowed_ips(ALLOWED_IPS))
)
app.include_router(health_router(inbox))

if _prometheus_metrics():
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        """The process's metrics in Prometheus' text format (scrape this)."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@app.get("/registration")
async def registration(client: FotaClient) -> dict[str, object]:
    """What ThingSpace has on record for this account, through the shared client."""
    callbacks = await client.v1.list_registered_callbacks(ACCOUNT)
    return {"account": ACCOUNT, "urls": [callback.url for callback in callbacks]}
