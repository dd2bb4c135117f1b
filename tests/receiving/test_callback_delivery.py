"""FakeThingSpace calls back: the whole loop of a listener, locally.

The SDK registers a FastAPI listener's URL on the fake, the fake POSTs callback messages to it over real HTTP
(uvicorn in its own thread), and the listener's handler receives typed messages."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import anyio
import httpx
import pytest

pytest.importorskip("fastapi")

from fastapi import FastAPI

import fota_callbacks as fota
from fota_callbacks.callbacks import (
    CallbackMessage,
    CallbackMessageType,
    Firmware,
    FirmwareListMessage,
    UnknownCallbackMessage,
    UpgradeFinishedMessage,
    UpgradeProgressMessage,
    UpgradeSchedule,
    UpgradeScheduledMessage,
)
from fota_callbacks.inbox import MemoryInbox
from fota_callbacks.integrations.fastapi import callback_router
from fota_callbacks.receiver import CallbackReceiver
from fota_callbacks.testing import (
    CallbackDeliveryError,
    CallbackNotRegisteredError,
    Delivery,
    FakeThingSpace,
)
from tests.support.receiving import FastApiListener as Listener
from tests.support.receiving import Recorder

pytestmark = pytest.mark.anyio

ACCOUNT = "0000123456-00001"
OTHER_ACCOUNT = "0000654321-00002"
USERNAME = "listener"
PASSWORD = "s3cret-echo"
PUBLIC_URL = "https://listener.example.com/fota/callbacks"  # what a V2/V3 registration must look like


@pytest.fixture(scope="module")
def _listener() -> Iterator[Listener]:
    listener = Listener()
    listener.route("/v1", username=USERNAME, password=PASSWORD)  # checks the echoed V1 credentials
    listener.route("/open")  # no credentials (V2/V3 registrations have none)
    listener.route("/slow", Recorder(delay=1.0))
    with listener.serve():
        yield listener


@pytest.fixture
def listener(_listener: Listener) -> Listener:
    _listener.clear()
    return _listener


async def register_v1(fake: FakeThingSpace, url: str, *, username: str = USERNAME, password: str = PASSWORD) -> None:
    async with fake.client() as client:
        request = fota.FotaV1CallbackRegistrationRequest(
            name=fota.CallbackService.FOTA, url=url, username=username, password=password
        )
        await client.v1.register_callback(ACCOUNT, request)


# --- the whole loop -----------------------------------------------------------------------------------------------


async def test_v1_listener_receives_each_message_type_typed_with_the_echoed_credentials(
    listener: Listener,
) -> None:
    fake = FakeThingSpace()
    await register_v1(fake, listener.url("/v1"))

    scheduled = await fake.emit_upgrade_event(
        ACCOUNT, "upgradeScheduled", upgrade_id="u-42", firmware_name="FW-2", start_date="2024-05-01"
    )
    listed = await fake.emit_firmware_list(
        ACCOUNT,
        [
            Firmware(firmware_name="FW-2", make="Verizon", model="A1", from_version="1.0", to_version="2.0"),
            {"firmwareName": "FW-3", "toVersion": "3.0", "checksum": "abc"},
        ],
        participant_name="Verizon",
    )
    progress = await fake.emit_upgrade_event(ACCOUNT, "upgradeProgress", upgrade_id="u-42", extra={"status": "Queued"})
    finished = await fake.emit_upgrade_event(ACCOUNT, CallbackMessageType.UPGRADE_FINISHED)

    assert [d.status_code for d in (scheduled, listed, progress, finished)] == [200] * 4
    assert scheduled.ok
    assert json.loads(scheduled.response_body) == {"status": "ok"}
    first, second, third, fourth = await listener.recorders["/v1"].wait_for(4)

    assert isinstance(first, UpgradeScheduledMessage)
    assert first.upgrade_scheduled == UpgradeSchedule(firmware_name="FW-2", upgrade_id="u-42", start_date="2024-05-01")
    assert (first.account_name, first.username, first.password) == (ACCOUNT, USERNAME, PASSWORD)
    assert first.firmware_list == ()  # not relevant to the type: empty, not missing

    assert isinstance(second, FirmwareListMessage)
    assert second.participant_name == "Verizon"
    assert second.firmware_list is not None
    assert [(f.firmware_name, f.from_version, f.to_version) for f in second.firmware_list] == [
        ("FW-2", "1.0", "2.0"),
        ("FW-3", None, "3.0"),
    ]
    assert second.firmware_list[1].extra == {"checksum": "abc"}
    assert second.upgrade_scheduled == UpgradeSchedule()

    assert isinstance(third, UpgradeProgressMessage)
    assert third.extra == {"status": "Queued"}
    assert third.upgrade_scheduled is not None
    assert third.upgrade_scheduled.upgrade_id == "u-42"
    assert isinstance(fourth, UpgradeFinishedMessage)

    # The documented shape, every element present (wire.md).
    assert progress.json == {
        "accountName": ACCOUNT,
        "participantName": "",
        "type": "upgradeProgress",
        "username": USERNAME,
        "password": PASSWORD,
        "firmwareList": [],
        "upgradeScheduled": {"upgradeId": "u-42"},
        "status": "Queued",
    }
    assert fake.deliveries == [scheduled, listed, progress, finished]
    assert all(d.url == d.registered_url == listener.url("/v1") for d in fake.deliveries)
    assert (scheduled.account, scheduled.version, scheduled.service) == (ACCOUNT, "v1", "Fota")


@pytest.mark.parametrize("version", ["v2", "v3"])
async def test_v2_v3_https_registration_is_delivered_to_a_local_http_listener_through_a_redirect(
    listener: Listener, version: str
) -> None:
    fake = FakeThingSpace()
    async with fake.client() as client:
        if version == "v2":
            await client.v2.register_callback(ACCOUNT, fota.FotaV2CallbackRegistrationRequest(url=PUBLIC_URL))
        else:
            await client.v3.register_callback(ACCOUNT, fota.FotaV3CallbackRegistrationRequest(url=PUBLIC_URL))
    fake.redirect_deliveries(PUBLIC_URL, to=listener.url("/open"))

    delivery = await fake.emit_upgrade_event(ACCOUNT, "upgradeScheduled", upgrade_id="u-7", version=version)  # type: ignore[arg-type]

    assert delivery.status_code == 200
    assert (delivery.registered_url, delivery.url) == (PUBLIC_URL, listener.url("/open"))
    assert (delivery.version, delivery.service) == (version, None)
    [message] = await listener.recorders["/open"].wait_for(1)
    assert isinstance(message, UpgradeScheduledMessage)
    assert message.upgrade_scheduled is not None
    assert message.upgrade_scheduled.upgrade_id == "u-7"
    assert (message.username, message.password) == ("", "")  # V2/V3 registrations carry no credentials
    assert fake.delivery_redirects == {PUBLIC_URL: listener.url("/open")}


async def test_a_registration_with_the_wrong_password_is_refused_by_the_listener(listener: Listener) -> None:
    fake = FakeThingSpace()
    await register_v1(fake, listener.url("/v1"), password="not-the-one")

    delivery = await fake.emit_firmware_list(ACCOUNT, [Firmware(firmware_name="FW-2")])

    assert delivery.status_code == 401
    assert not delivery.ok
    assert json.loads(delivery.response_body)["error"] == "unauthorized"
    assert fake.deliveries == [delivery]
    await anyio.sleep(0.05)
    assert listener.recorders["/v1"].messages == []  # the listener answered before calling the handler: never called


async def test_emitting_with_nothing_registered_raises_and_sends_nothing(listener: Listener) -> None:
    fake = FakeThingSpace()
    with pytest.raises(CallbackNotRegisteredError, match=f"no v1 callback for service 'Fota' .* {ACCOUNT}") as caught:
        await fake.emit_upgrade_event(ACCOUNT, "upgradeScheduled", upgrade_id="u-1")
    assert (caught.value.account, caught.value.version, caught.value.service) == (ACCOUNT, "v1", "Fota")
    assert isinstance(caught.value, LookupError)
    assert isinstance(caught.value, fota.FotaError)

    # Registered for another version, another account, then deregistered: still nothing for this one.
    await register_v1(fake, listener.url("/v1"))
    fake.seed(OTHER_ACCOUNT, v2=PUBLIC_URL)
    with pytest.raises(CallbackNotRegisteredError, match="no v2 callback"):
        await fake.emit(ACCOUNT, {"type": "upgradeProgress"}, version="v2")
    with pytest.raises(CallbackNotRegisteredError, match="no v3 callback"):
        await fake.emit(OTHER_ACCOUNT, {"type": "upgradeProgress"}, version="v3")
    with pytest.raises(CallbackNotRegisteredError, match="'Other'"):
        await fake.emit(ACCOUNT, {"type": "upgradeProgress"}, service="Other")
    async with fake.client() as client:
        await client.v1.deregister_callback(ACCOUNT)
    with pytest.raises(CallbackNotRegisteredError):
        await fake.emit(ACCOUNT, b"{}")

    assert fake.deliveries == []
    assert listener.recorders["/v1"].messages == []


# --- emit: messages as given ----------------------------------------------------------------------------------------


async def test_emit_completes_a_mapping_and_keeps_what_it_has(listener: Listener) -> None:
    fake = FakeThingSpace()
    await register_v1(fake, listener.url("/v1"))

    minimal = await fake.emit(ACCOUNT, {"type": "upgradeFinished", "deviceCount": 3})
    forged = await fake.emit(ACCOUNT, {"type": "upgradeFinished", "password": "forged"})

    assert minimal.json == {
        "accountName": ACCOUNT,
        "participantName": "",
        "username": USERNAME,
        "password": PASSWORD,
        "firmwareList": [],
        "upgradeScheduled": {},
        "type": "upgradeFinished",
        "deviceCount": 3,
    }
    assert minimal.status_code == 200
    assert forged.status_code == 401
    [message] = await listener.recorders["/v1"].wait_for(1)
    assert isinstance(message, UpgradeFinishedMessage)
    assert message.extra == {"deviceCount": 3}


async def test_emit_sends_a_model_as_its_json_and_bytes_verbatim(listener: Listener) -> None:
    fake = FakeThingSpace()
    fake.seed(ACCOUNT, v3=PUBLIC_URL)
    fake.redirect_deliveries(PUBLIC_URL, to=listener.url("/open"))
    model = UpgradeScheduledMessage(
        account_name=ACCOUNT,
        participant_name="Verizon",
        upgrade_scheduled=UpgradeSchedule(upgrade_id="u-9", extra={"devices": ["a", "b"]}),
        extra={"campaignState": "CampaignScheduled"},
    )

    sent = await fake.emit(ACCOUNT, model, version="v3")
    unknown = await fake.emit(ACCOUNT, {"type": "campaignEnded"}, version="v3")
    garbage = await fake.emit(ACCOUNT, b"not json", version="v3")

    assert sent.json["upgradeScheduled"] == {"upgradeId": "u-9", "devices": ["a", "b"]}
    assert (sent.status_code, unknown.status_code, garbage.status_code) == (200, 200, 400)
    assert garbage.content == b"not json"
    assert garbage.json is None
    received, other = await listener.recorders["/open"].wait_for(2)
    assert isinstance(received, UpgradeScheduledMessage)
    # What the listener parsed equals what was emitted, apart from the fields the fake filled in.
    assert received == UpgradeScheduledMessage(
        account_name=ACCOUNT,
        participant_name="Verizon",
        username="",
        password="",
        firmware_list=(),
        upgrade_scheduled=UpgradeSchedule(upgrade_id="u-9", extra={"devices": ["a", "b"]}),
        extra={"campaignState": "CampaignScheduled"},
    )
    assert isinstance(other, UnknownCallbackMessage)
    assert other.type == "campaignEnded"


async def test_concurrent_emits_are_all_delivered_and_recorded(listener: Listener) -> None:
    fake = FakeThingSpace()
    await register_v1(fake, listener.url("/v1"))

    async def emit(number: int) -> None:
        await fake.emit_upgrade_event(ACCOUNT, "upgradeProgress", upgrade_id=f"u-{number}")

    async with anyio.create_task_group() as tasks:
        for number in range(20):
            tasks.start_soon(emit, number)

    messages = await listener.recorders["/v1"].wait_for(20)
    assert len(fake.deliveries) == 20
    assert all(d.status_code == 200 for d in fake.deliveries)
    upgrade_ids = {m.upgrade_scheduled.upgrade_id for m in messages if m.upgrade_scheduled is not None}
    assert upgrade_ids == {f"u-{n}" for n in range(20)}


# --- no answer ------------------------------------------------------------------------------------------------------


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_a_refused_connection_raises_a_delivery_error_and_is_recorded() -> None:
    fake = FakeThingSpace()
    dead = f"http://127.0.0.1:{unused_port()}/fota"
    await register_v1(fake, dead)

    with pytest.raises(CallbackDeliveryError, match=r"v1 callback message for 0000123456-00001 to http://127\.0\.0\.1"):
        await fake.emit_upgrade_event(ACCOUNT, "upgradeScheduled", upgrade_id="u-1")

    [delivery] = fake.deliveries
    assert delivery.status_code is None
    assert not delivery.ok
    assert delivery.error is not None
    assert "ConnectError" in delivery.error


async def test_a_slow_listener_times_out(listener: Listener) -> None:
    fake = FakeThingSpace(delivery_timeout=0.2)
    fake.seed(ACCOUNT, v2=PUBLIC_URL)
    fake.redirect_deliveries(PUBLIC_URL, to=listener.url("/slow"))

    started = time.monotonic()
    with pytest.raises(CallbackDeliveryError, match=r"no answer within 0\.2 s") as caught:
        await fake.emit_upgrade_event(ACCOUNT, "upgradeScheduled", version="v2")

    assert time.monotonic() - started < 0.9
    assert caught.value.delivery.status_code is None
    assert fake.deliveries == [caught.value.delivery]


# --- configuration and records --------------------------------------------------------------------------------------


async def test_a_given_httpx_client_delivers_in_process() -> None:
    inbox = Recorder()
    app = FastAPI()
    app.include_router(callback_router(inbox, username=USERNAME, password=PASSWORD))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app)) as http:
        fake = FakeThingSpace(delivery_client=http)
        await register_v1(fake, "http://listener.test/fota/callbacks")

        delivery = await fake.emit_firmware_list(ACCOUNT, [{"firmwareName": "FW-2"}])
        assert not http.is_closed  # the fake never closes a client it was given

    assert delivery.status_code == 200
    [message] = await inbox.wait_for(1)
    assert isinstance(message, FirmwareListMessage)


async def test_redirects_are_exact_checked_and_kept_by_reset(listener: Listener) -> None:
    fake = FakeThingSpace()
    fake.seed(ACCOUNT, v2=PUBLIC_URL)
    fake.redirect_deliveries(PUBLIC_URL + "/other", to=listener.url("/open"))  # another URL: not applied
    fake.redirect_deliveries(PUBLIC_URL, to=listener.url("/open"))
    await fake.emit(ACCOUNT, {"type": "upgradeProgress"}, version="v2")

    fake.reset()
    assert fake.deliveries == []
    assert fake.delivery_redirects == {
        PUBLIC_URL: listener.url("/open"),
        PUBLIC_URL + "/other": listener.url("/open"),
    }
    fake.redirect_deliveries(PUBLIC_URL + "/other", to=None)
    assert list(fake.delivery_redirects) == [PUBLIC_URL]
    with pytest.raises(fota.InvalidArgumentError, match="to"):
        fake.redirect_deliveries(PUBLIC_URL, to="ftp://127.0.0.1/x")
    with pytest.raises(fota.InvalidArgumentError, match="registered_url"):
        fake.redirect_deliveries("not a url", to=listener.url("/open"))


async def test_bad_arguments_are_refused_before_sending() -> None:
    fake = FakeThingSpace()
    fake.seed(ACCOUNT, v2=PUBLIC_URL)
    with pytest.raises(fota.InvalidArgumentError, match=r"^version: "):
        await fake.emit(ACCOUNT, {}, version="v4")  # type: ignore[arg-type]
    with pytest.raises(fota.InvalidArgumentError, match="account"):
        await fake.emit("123", {}, version="v2")
    with pytest.raises(fota.InvalidArgumentError, match=r"^type: must be one of"):
        await fake.emit_upgrade_event(ACCOUNT, "firmwareList", version="v2")  # type: ignore[arg-type]
    with pytest.raises(fota.InvalidArgumentError, match=r"^firmware: "):
        await fake.emit_firmware_list(ACCOUNT, {"firmwareName": "FW"}, version="v2")  # type: ignore[dict-item]
    with pytest.raises(fota.InvalidArgumentError, match=r"^message: "):
        await fake.emit(ACCOUNT, ["not", "an", "object"], version="v2")  # type: ignore[arg-type]
    with pytest.raises(fota.InvalidArgumentError, match=r"^delivery_timeout: "):
        FakeThingSpace(delivery_timeout=0)
    with pytest.raises(fota.InvalidArgumentError, match=r"^delivery_verify: "):
        FakeThingSpace(delivery_client=httpx.AsyncClient(), delivery_verify=False)
    assert fake.deliveries == []


def test_a_delivery_repr_shows_neither_body_nor_url_credentials() -> None:
    delivery = Delivery(
        account=ACCOUNT,
        version="v1",
        service="Fota",
        registered_url="https://user:pw@listener.example.com/x",
        url="https://user:pw@listener.example.com/x",
        content=json.dumps({"type": "upgradeScheduled", "password": PASSWORD}).encode(),
        status_code=401,
        response_body=b'{"echo": "' + PASSWORD.encode() + b'"}',
    )
    shown = repr(delivery)
    assert shown == f"<Delivery v1 {ACCOUNT} upgradeScheduled -> https://***@listener.example.com/x: 401>"
    assert PASSWORD not in shown


async def test_seeding_after_a_listing_is_seen_by_the_next_listing() -> None:
    # Regression: `seed` kept the cached answer of an earlier listing, so emit and list disagreed.
    fake = FakeThingSpace()
    fake.seed(ACCOUNT, v2=PUBLIC_URL, v1=[fota.RegisteredCallbacks(name="Fota", url="http://a.test/1")])
    async with fake.client() as client:
        assert (await client.v2.list_registered_callbacks(ACCOUNT)).url == PUBLIC_URL
        assert [r.url for r in await client.v1.list_registered_callbacks(ACCOUNT)] == ["http://a.test/1"]
        fake.seed(ACCOUNT, v2=PUBLIC_URL + "/new", v1=[fota.RegisteredCallbacks(name="Fota", url="http://a.test/2")])
        assert (await client.v2.list_registered_callbacks(ACCOUNT)).url == PUBLIC_URL + "/new"
        assert [r.url for r in await client.v1.list_registered_callbacks(ACCOUNT)] == ["http://a.test/2"]


# --- in-process: straight into a CallbackReceiver, no HTTP -----------------------------------------------------------


async def test_deliveries_go_straight_into_a_receiver_and_its_answer_is_the_delivery() -> None:
    inbox = MemoryInbox()
    receiver = CallbackReceiver(inbox=inbox, allowed_ips="verizon")  # the fake delivers as ThingSpace would
    fake = FakeThingSpace()
    fake.seed(ACCOUNT, v3=PUBLIC_URL)  # nothing listens there: only the redirect makes this work
    fake.redirect_deliveries(PUBLIC_URL, to=receiver)

    delivery = await fake.emit_upgrade_event(ACCOUNT, "upgradeScheduled", upgrade_id="u-5", version="v3")
    again = await fake.emit(ACCOUNT, delivery.content, version="v3")  # ThingSpace's retry: the same body

    assert (delivery.status_code, json.loads(delivery.response_body)) == (200, {"status": "ok"})
    assert (delivery.registered_url, delivery.url) == (PUBLIC_URL, f"in-process:{PUBLIC_URL}")
    assert again.ok
    assert fake.deliveries == [delivery, again]
    assert fake.delivery_redirects == {PUBLIC_URL: receiver}
    assert (await inbox.stats()).pending == 1  # stored once

    handled: list[CallbackMessage] = []
    with anyio.fail_after(10):
        async with anyio.create_task_group() as worker:

            async def handler(message: CallbackMessage) -> None:
                handled.append(message)
                worker.cancel_scope.cancel()

            worker.start_soon(inbox.run, handler)
    [message] = handled
    assert isinstance(message, UpgradeScheduledMessage)
    assert message.upgrade_scheduled is not None
    assert message.upgrade_scheduled.upgrade_id == "u-5"


async def test_an_in_process_delivery_gets_the_receivers_refusals() -> None:
    recorder = Recorder()
    fake = FakeThingSpace()
    await register_v1(fake, "http://listener.example.com/v1", password="not-the-one")
    fake.redirect_deliveries("http://listener.example.com/v1", to=CallbackReceiver(recorder, password=PASSWORD))

    refused = await fake.emit_firmware_list(ACCOUNT, [Firmware(firmware_name="FW-2")])
    garbage = await fake.emit(ACCOUNT, b"[1]")

    assert (refused.status_code, json.loads(refused.response_body)) == (
        401,
        {"error": "unauthorized", "detail": "wrong or missing username/password in the message"},
    )
    assert garbage.status_code == 400
    assert recorder.messages == []


async def test_a_background_receiver_has_handled_the_message_when_emit_returns() -> None:
    recorder = Recorder()
    fake = FakeThingSpace()
    fake.seed(ACCOUNT, v2=PUBLIC_URL)
    fake.redirect_deliveries(PUBLIC_URL, to=CallbackReceiver(recorder, background=True))

    delivery = await fake.emit(ACCOUNT, {"type": "upgradeFinished"}, version="v2")

    assert (delivery.status_code, json.loads(delivery.response_body)) == (202, {"status": "accepted"})
    [message] = recorder.messages
    assert isinstance(message, UpgradeFinishedMessage)


async def test_a_receiver_slower_than_the_delivery_timeout_is_no_answer() -> None:
    fake = FakeThingSpace(delivery_timeout=0.2)
    fake.seed(ACCOUNT, v2=PUBLIC_URL)
    fake.redirect_deliveries(PUBLIC_URL, to=CallbackReceiver(Recorder(delay=5.0)))

    expected = r"to in-process:https://listener\.example\.com/.* failed: no answer within 0\.2 s"
    with pytest.raises(CallbackDeliveryError, match=expected):
        await fake.emit(ACCOUNT, {"type": "upgradeProgress"}, version="v2")

    [delivery] = fake.deliveries
    assert (delivery.status_code, delivery.error) == (None, "no answer within 0.2 s")


def test_a_redirect_goes_to_a_url_or_a_receiver_only() -> None:
    fake = FakeThingSpace()
    with pytest.raises(fota.InvalidArgumentError) as caught:
        fake.redirect_deliveries(PUBLIC_URL, to=object())  # type: ignore[arg-type]
    assert caught.value.parameter == "to"
    assert fake.delivery_redirects == {}
