"""Reading the messages ThingSpace POSTs to a registered callback URL."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fota_callbacks as fota
from fota_callbacks.callbacks import (
    MAX_NESTING,
    CallbackMessageType,
    CallbackParseError,
    CampaignState,
    DeviceStatus,
    Firmware,
    FirmwareListMessage,
    UnknownCallbackMessage,
    UpgradeFinishedMessage,
    UpgradeProgressMessage,
    UpgradeSchedule,
    UpgradeScheduledMessage,
    UpgradeStatus,
    parse_callback_message,
)

BY_TYPE: dict[str, type[Any]] = {
    "firmwareList": FirmwareListMessage,
    "upgradeScheduled": UpgradeScheduledMessage,
    "upgradeProgress": UpgradeProgressMessage,
    "upgradeFinished": UpgradeFinishedMessage,
}
MESSAGE_CLASSES = (
    FirmwareListMessage,
    UpgradeScheduledMessage,
    UpgradeProgressMessage,
    UpgradeFinishedMessage,
    UnknownCallbackMessage,
)

FIRMWARE = {
    "firmwareName": "FOTA_Verizon_Model-A_01To02_HF",
    "participantName": "Verizon",
    "launchDate": "2024-05-02",
    "releaseNote": "security fixes",
    "model": "Model-A",
    "make": "Verizon",
    "fromVersion": "01",
    "toVersion": "02",
}


def message(type_: str, **fields: Any) -> dict[str, Any]:
    """A message as documented in wire.md, with `fields` replacing or adding keys."""
    body: dict[str, Any] = {
        "accountName": "0000123456-00001",
        "participantName": "Verizon",
        "type": type_,
        "username": "listener",
        "password": "s3cret-echo",
        "firmwareList": [],
        "upgradeScheduled": {},
    }
    body.update(fields)
    return body


def test_firmware_list_message() -> None:
    parsed = parse_callback_message(json.dumps(message("firmwareList", firmwareList=[FIRMWARE])).encode())

    assert isinstance(parsed, FirmwareListMessage)
    assert parsed == FirmwareListMessage(
        account_name="0000123456-00001",
        participant_name="Verizon",
        username="listener",
        password="s3cret-echo",
        firmware_list=(
            Firmware(
                firmware_name="FOTA_Verizon_Model-A_01To02_HF",
                participant_name="Verizon",
                launch_date="2024-05-02",
                release_note="security fixes",
                model="Model-A",
                make="Verizon",
                from_version="01",
                to_version="02",
            ),
        ),
        upgrade_scheduled=UpgradeSchedule(),
    )
    assert parsed.type == "firmwareList"
    assert parsed.type == CallbackMessageType.FIRMWARE_LIST
    assert parsed.extra == {}
    assert parsed.raw == message("firmwareList", firmwareList=[FIRMWARE])


def test_upgrade_scheduled_message() -> None:
    schedule = {"firmwareName": "fw-2", "upgradeId": "b6f4d2e0", "startDate": "2024-06-01"}
    parsed = parse_callback_message(json.dumps(message("upgradeScheduled", upgradeScheduled=schedule)))

    assert isinstance(parsed, UpgradeScheduledMessage)
    assert parsed.type == "upgradeScheduled"
    assert parsed.upgrade_scheduled == UpgradeSchedule(
        firmware_name="fw-2", upgrade_id="b6f4d2e0", start_date="2024-06-01"
    )
    assert parsed.firmware_list == ()


@pytest.mark.parametrize(
    ("type_", "cls"), [("upgradeProgress", UpgradeProgressMessage), ("upgradeFinished", UpgradeFinishedMessage)]
)
def test_progress_and_finished_messages(type_: str, cls: type[Any]) -> None:
    parsed = parse_callback_message(json.dumps(message(type_, status="InProgress")).encode())

    assert type(parsed) is cls
    assert parsed.type == type_
    assert parsed.account_name == "0000123456-00001"
    # Where the status travels is not published: it is kept, and comparable with the constants.
    assert parsed.extra == {"status": "InProgress"}
    assert parsed.extra["status"] == UpgradeStatus.IN_PROGRESS


@pytest.mark.parametrize("body", [message("campaignEnded"), message("FirmwareList"), {"accountName": "x"}])
def test_unknown_or_missing_type_gives_unknown_message(body: dict[str, Any]) -> None:
    parsed = parse_callback_message(json.dumps(body))

    assert type(parsed) is UnknownCallbackMessage
    assert parsed.type == body.get("type")
    assert parsed.raw == body


def test_unknown_keys_are_kept_at_every_level() -> None:
    body = message(
        "upgradeScheduled",
        deviceIds=["A100", "A101"],
        firmwareList=[{**FIRMWARE, "checksum": "abc"}],
        upgradeScheduled={"upgradeId": "u1", "endDate": "2024-06-02"},
    )
    parsed = parse_callback_message(json.dumps(body))

    assert parsed.extra == {"deviceIds": ["A100", "A101"]}
    assert parsed.firmware_list is not None
    assert parsed.firmware_list[0].extra == {"checksum": "abc"}
    assert parsed.upgrade_scheduled == UpgradeSchedule(upgrade_id="u1", extra={"endDate": "2024-06-02"})


def test_values_of_unexpected_types_move_to_extra() -> None:
    body = message(
        "ignored",
        type=7,
        accountName=1234567890,
        username=None,
        firmwareList={"firmwareName": "not in a list"},
        upgradeScheduled=[],
    )
    parsed = parse_callback_message(json.dumps(body))

    assert type(parsed) is UnknownCallbackMessage
    assert (parsed.type, parsed.account_name, parsed.username) == (None, None, None)
    assert (parsed.firmware_list, parsed.upgrade_scheduled) == (None, None)
    assert parsed.extra == {
        "type": 7,
        "accountName": 1234567890,
        "firmwareList": {"firmwareName": "not in a list"},
        "upgradeScheduled": [],
    }
    # A list with one element that is not an object is kept whole, in order.
    mixed = parse_callback_message(json.dumps(message("firmwareList", firmwareList=[FIRMWARE, "junk"])))
    assert mixed.firmware_list is None
    assert mixed.extra == {"firmwareList": [FIRMWARE, "junk"]}
    nested = parse_callback_message(json.dumps(message("firmwareList", firmwareList=[{"toVersion": 2}])))
    assert nested.firmware_list == (Firmware(extra={"toVersion": 2}),)


def test_repr_hides_the_echoed_password() -> None:
    body = message("firmwareList", firmwareList=[FIRMWARE], extraPassword="hidden-too", meta={"apiToken": "tok-9"})
    parsed = parse_callback_message(json.dumps(body))

    shown = repr(parsed)
    assert "s3cret-echo" not in shown
    assert "hidden-too" not in shown
    assert "tok-9" not in shown
    assert "password='***'" in shown
    assert "FOTA_Verizon_Model-A_01To02_HF" in shown
    assert parsed.password == "s3cret-echo"


def test_status_constants_match_the_wire() -> None:
    assert [status.value for status in UpgradeStatus] == [
        "RequestPending",
        "Queued",
        "InProgress",
        "Finished",
        "RequestFailed",
        "UpgradeFailed",
    ]
    assert DeviceStatus("UpgradedFailed") is DeviceStatus.UPGRADED_FAILED
    received: str = "CampaignEnded"  # as read from a message
    assert received == CampaignState.CAMPAIGN_ENDED
    assert len(DeviceStatus) == 6
    assert len(CampaignState) == 8


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "not JSON"),
        (b"<xml/>", "not JSON"),
        (b'{"type": "firmwareList"', "not JSON"),
        (b'{"a": NaN}', "not standard JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        ('{"type": "x"}'.encode("utf-16"), "not UTF-8"),
        (b"[]", "an array"),
        (b'"firmwareList"', "a string"),
        (b"42", "a number"),
        (b"null", "null"),
        (b"[" * 100_000 + b"]" * 100_000, "nests deeper"),
        (b'{"a":' * (MAX_NESTING + 1) + b"1" + b"}" * (MAX_NESTING + 1), "nests deeper"),
    ],
)
def test_unreadable_bodies_raise_callback_parse_error(body: bytes, reason: str) -> None:
    with pytest.raises(CallbackParseError, match=reason) as raised:
        parse_callback_message(body)
    assert isinstance(raised.value, fota.FotaError)
    assert isinstance(raised.value, ValueError)


def test_error_message_never_quotes_the_body() -> None:
    with pytest.raises(CallbackParseError) as raised:
        parse_callback_message(b'{"password": "s3cret-echo", oops}')
    assert "s3cret-echo" not in str(raised.value)


def test_nesting_up_to_the_limit_is_read() -> None:
    deep: Any = 1
    for _ in range(MAX_NESTING - 1):
        deep = [deep]
    parsed = parse_callback_message(json.dumps({"type": "upgradeProgress", "deep": deep}))
    assert parsed.extra["deep"] == deep


def test_body_must_be_bytes_or_str() -> None:
    with pytest.raises(TypeError):
        parse_callback_message({"type": "firmwareList"})  # type: ignore[arg-type]


# --- fuzzing ------------------------------------------------------------------------------------------------------

MESSAGE_KEYS = ["accountName", "participantName", "type", "username", "password", "firmwareList", "upgradeScheduled"]
DOCUMENTED_KEYS = st.sampled_from([*MESSAGE_KEYS, *FIRMWARE, "upgradeId", "startDate"])
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | st.sampled_from([t.value for t in CallbackMessageType])
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(DOCUMENTED_KEYS | st.text(), children, max_size=6)
    ),
    max_leaves=25,
)


@settings(max_examples=200, deadline=None)
@given(JSON_VALUES)
def test_any_json_value_gives_a_message_or_callback_parse_error(value: Any) -> None:
    body = json.dumps(value).encode()
    if not isinstance(value, dict):
        with pytest.raises(CallbackParseError):
            parse_callback_message(body)
        return
    parsed = parse_callback_message(body)
    assert isinstance(parsed, MESSAGE_CLASSES)
    assert parsed.raw == value
    type_ = value.get("type")
    expected_class = BY_TYPE.get(type_, UnknownCallbackMessage) if isinstance(type_, str) else UnknownCallbackMessage
    assert type(parsed) is expected_class
    # Nothing is lost: every key with a value is read into its field or kept in `extra`.
    for key, item in value.items():
        assert item is None or key in parsed.extra or _field_for(parsed, key) is not None
    repr(parsed)


def _field_for(parsed: Any, key: str) -> Any:
    names = {
        "accountName": "account_name",
        "participantName": "participant_name",
        "type": "type",
        "username": "username",
        "password": "password",
        "firmwareList": "firmware_list",
        "upgradeScheduled": "upgrade_scheduled",
    }
    return getattr(parsed, names[key]) if key in names else None


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_bytes_give_a_message_or_callback_parse_error(body: bytes) -> None:
    try:
        parsed = parse_callback_message(body)
    except CallbackParseError:
        return
    assert isinstance(parsed, MESSAGE_CLASSES)
