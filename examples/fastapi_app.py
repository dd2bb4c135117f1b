"""A FOTA callback listener: registers its own URL with ThingSpace (V2) at startup, then logs every message.

Against the local fake (it accepts any credentials), in two shells:

    fota-callbacks fake-server --port 8080
    THINGSPACE_BASE_URL=http://127.0.0.1:8080 THINGSPACE_CLIENT_ID=id THINGSPACE_CLIENT_SECRET=secret \
        THINGSPACE_USERNAME=user THINGSPACE_PASSWORD=pass uvicorn examples.fastapi_app:app --port 8000

then play ThingSpace:

    curl -d '{"type": "upgradeProgress", "accountName": "0000123456-00001"}' http://127.0.0.1:8000/fota/callbacks

`FOTA_ACCOUNT` is the account to register for; `FOTA_LISTENER_URL` the public HTTPS address of this service.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

import fota_callbacks as fota
from fota_callbacks.callbacks import CallbackMessage, FirmwareListMessage
from fota_callbacks.integrations.fastapi import FotaClient, callback_router, fota_lifespan, get_app_client

ACCOUNT = os.environ.get("FOTA_ACCOUNT", "0000123456-00001")
LISTENER_URL = os.environ.get("FOTA_LISTENER_URL", "https://listener.example.com/fota/callbacks")

log = logging.getLogger("fota_listener")
logging.basicConfig(level=logging.INFO)
logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is too chatty here


@asynccontextmanager
async def register_listener(app: FastAPI) -> AsyncIterator[None]:
    """Runs inside `fota_lifespan`, so the shared client is already open."""
    client = get_app_client(app)
    request = fota.FotaV2CallbackRegistrationRequest(url=LISTENER_URL)
    registered = await client.v2.register_callback(ACCOUNT, request)
    log.info("ThingSpace will POST %s messages to %s", ACCOUNT, registered.url)
    yield


async def log_message(message: CallbackMessage) -> None:
    log.info("%s message for account %s", message.type, message.account_name)
    if isinstance(message, FirmwareListMessage):
        for firmware in message.firmware_list or ():
            log.info("  firmware %s: %s -> %s", firmware.firmware_name, firmware.from_version, firmware.to_version)


app = FastAPI(lifespan=fota_lifespan(lifespan=register_listener))
app.include_router(callback_router(log_message))


@app.get("/registration")
async def registration(client: FotaClient) -> dict[str, str | None]:
    """What ThingSpace has on record for this account, through the shared client."""
    summary = await client.v2.list_registered_callbacks(ACCOUNT)
    return {"account": ACCOUNT, "url": summary.url}
