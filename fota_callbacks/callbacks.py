"""The messages ThingSpace POSTs to a registered callback URL, as typed models.

`parse_callback_message(body)` turns a request body into one of the message classes, chosen by its `type`.
Verizon's documentation shows only part of the shape (the V1 example: `accountName`, `participantName`, `type`,
`username`, `password`, `firmwareList`, `upgradeScheduled`), so reading is forgiving and loses nothing:

- every documented field is optional;
- a key the models do not know is kept in the model's `extra`, under its JSON name;
- a documented key whose value has an unexpected JSON type (a number where a string belongs, an object where
  `firmwareList` should be an array of objects...) leaves the field None and is kept in `extra` as it came, so a
  field's annotation can be trusted and nothing is dropped; a JSON null reads as absent;
- the whole decoded object is in the message's `raw`.

The only error is `CallbackParseError`: the body is not UTF-8, not JSON, nested deeper than `MAX_NESTING`
levels, or not a JSON object.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, TypeAlias

import attrs

from ._errors import FotaError
from ._logsafe import masked
from ._models import WireEnum, instance_maker, model, secret_field
from ._serde import to_camel

__all__ = [
    "MAX_NESTING",
    "VERIZON_CALLBACK_SOURCE_IPS",
    "CallbackHandler",
    "CallbackMessage",
    "CallbackMessageType",
    "CallbackParseError",
    "CampaignState",
    "DeviceStatus",
    "Firmware",
    "FirmwareListMessage",
    "UnknownCallbackMessage",
    "UpgradeFinishedMessage",
    "UpgradeProgressMessage",
    "UpgradeSchedule",
    "UpgradeScheduledMessage",
    "UpgradeStatus",
    "parse_callback_message",
]

MAX_NESTING: Final = 64
"""Deepest nesting of arrays and objects a callback body may have (the documented shape has 3 levels)."""

VERIZON_CALLBACK_SOURCE_IPS: Final = frozenset(
    {
        "3.87.163.45",
        "3.91.119.203",
        "54.197.62.209",
        "54.200.43.232",
        "34.216.81.234",
        "137.117.33.109",
        "168.62.173.153",
        "68.128.212.217",
    }
)
"""The addresses Verizon publishes as the sources of callback messages."""


class CallbackParseError(FotaError, ValueError):
    """A callback body that cannot be read as a message: not UTF-8, not JSON, too deeply nested, not an object.

    The message says why and never quotes the body (it carries the V1 password).
    """


class CallbackMessageType(WireEnum):
    """The documented values of a message's `type`."""

    FIRMWARE_LIST = "firmwareList"
    UPGRADE_SCHEDULED = "upgradeScheduled"
    UPGRADE_PROGRESS = "upgradeProgress"
    UPGRADE_FINISHED = "upgradeFinished"


class UpgradeStatus(WireEnum):
    """V1 upgrade statuses. Where a message carries one is not published: look in `extra`."""

    REQUEST_PENDING = "RequestPending"
    QUEUED = "Queued"
    IN_PROGRESS = "InProgress"
    FINISHED = "Finished"
    REQUEST_FAILED = "RequestFailed"
    UPGRADE_FAILED = "UpgradeFailed"


class DeviceStatus(WireEnum):
    """V2 device upgrade statuses (`UpgradedFailed` is spelled as ThingSpace sends it)."""

    ACCEPTED = "Accepted"
    DEVICE_REJECTED = "DeviceRejected"
    UPGRADED_FAILED = "UpgradedFailed"
    CAMPAIGN_CANCELLED = "CampaignCancelled"
    UPGRADE_SUCCESS = "UpgradeSuccess"
    CAMPAIGN_ABORTED = "CampaignAborted"


class CampaignState(WireEnum):
    """V3 campaign states."""

    CAMPAIGN_REQUEST_PENDING = "CampaignRequestPending"
    CAMPAIGN_REQUEST_FAILED = "CampaignRequestFailed"
    CAMPAIGN_QUEUED = "CampaignQueued"
    CAMPAIGN_CANCELLED = "CampaignCancelled"
    CAMPAIGN_ABORTED = "CampaignAborted"
    CAMPAIGN_FAILED = "CampaignFailed"
    CAMPAIGN_SCHEDULED = "CampaignScheduled"
    CAMPAIGN_ENDED = "CampaignEnded"


def _redacted_mapping(value: Mapping[str, Any]) -> str:
    """`repr` of `extra`: what ThingSpace sent beyond the documented shape may hold credentials too."""
    return repr(masked(dict(value)))


def _extra_field() -> Any:
    return attrs.field(factory=dict, repr=_redacted_mapping)


@model
class Firmware:
    """One firmware in a message's `firmwareList`."""

    firmware_name: str | None = None
    participant_name: str | None = None
    launch_date: str | None = None
    release_note: str | None = None
    model: str | None = None
    make: str | None = None
    from_version: str | None = None
    to_version: str | None = None
    extra: Mapping[str, Any] = _extra_field()
    """Keys not listed above, and documented keys whose value had an unexpected type, by JSON name."""


@model
class UpgradeSchedule:
    """A message's `upgradeScheduled` object."""

    firmware_name: str | None = None
    upgrade_id: str | None = None
    start_date: str | None = None
    extra: Mapping[str, Any] = _extra_field()
    """Keys not listed above, and documented keys whose value had an unexpected type, by JSON name."""


@model
class _CallbackMessageBase:
    """The fields every callback message has (all optional: the published shape is partial)."""

    account_name: str | None = None
    participant_name: str | None = None
    type: str | None = None
    username: str | None = None
    """The V1 registration's username, echoed back."""
    password: str | None = secret_field()
    """The V1 registration's password, echoed back; never in `repr`."""
    firmware_list: tuple[Firmware, ...] | None = None
    upgrade_scheduled: UpgradeSchedule | None = None
    extra: Mapping[str, Any] = _extra_field()
    """Keys not listed above, and documented keys whose value had an unexpected type, by JSON name."""
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)
    """The whole decoded JSON object (not compared, not in `repr`: it holds the password)."""


@model
class FirmwareListMessage(_CallbackMessageBase):
    """New firmware is available: see `firmware_list`."""

    type: str = "firmwareList"


@model
class UpgradeScheduledMessage(_CallbackMessageBase):
    """An upgrade was scheduled: see `upgrade_scheduled`."""

    type: str = "upgradeScheduled"


@model
class UpgradeProgressMessage(_CallbackMessageBase):
    """An upgrade progressed."""

    type: str = "upgradeProgress"


@model
class UpgradeFinishedMessage(_CallbackMessageBase):
    """An upgrade finished."""

    type: str = "upgradeFinished"


@model
class UnknownCallbackMessage(_CallbackMessageBase):
    """A message whose `type` is missing, not a string, or not one of the documented four.

    A non-string `type` leaves `type` None and is kept in `extra`.
    """


CallbackMessage: TypeAlias = (
    FirmwareListMessage
    | UpgradeScheduledMessage
    | UpgradeProgressMessage
    | UpgradeFinishedMessage
    | UnknownCallbackMessage
)
"""Any message `parse_callback_message` returns; tell them apart with `isinstance`, `match`, or `.type`."""

CallbackHandler: TypeAlias = Callable[[CallbackMessage], Awaitable[object]]
"""Your code that handles a message: `async def handler(message: CallbackMessage) -> None`. The receiver, the
FastAPI router and an inbox's worker await it with each message; an exception it raises is a failed attempt."""

_MESSAGE_CLASSES: Final[Mapping[str, type[CallbackMessage]]] = {
    "firmwareList": FirmwareListMessage,
    "upgradeScheduled": UpgradeScheduledMessage,
    "upgradeProgress": UpgradeProgressMessage,
    "upgradeFinished": UpgradeFinishedMessage,
}

# --- decoding ---------------------------------------------------------------------------------------------------
# Each model class gets, once, a `_Reading` (from JSON key to field: a plain string field is checked inline, any
# other has a reader, which returns the field's value or _MISFIT when the JSON value has the wrong type, in which
# case the value goes to `extra` instead) and a maker (`instance_maker`: the instance made without the frozen
# __init__, a fifth of parse_callback_message's time; every field set, so it is the instance __init__ would make).

_MISFIT: Final[Any] = object()
_Reader = Callable[[Any], Any]
_Maker = Callable[[list[Any]], Any]
_PLAIN_STRING: Final = ("str | None", "str")


class _Reading:
    """How one model's documented fields are read from a JSON object, in the order of its attrs fields."""

    __slots__ = ("_defaults", "_others", "_strings", "names")

    def __init__(self, cls: type[Any], readers: Mapping[str, _Reader]) -> None:
        fields = [field for field in attrs.fields(cls) if field.name not in ("extra", "raw")]
        for field in fields:
            if isinstance(field.default, attrs.Factory):  # type: ignore[arg-type]
                raise TypeError(f"{cls.__name__}.{field.name}: a default made by a factory is not supported here")
            if field.name not in readers and field.type not in _PLAIN_STRING:
                raise TypeError(f"{cls.__name__}.{field.name}: a field that is not a string needs a reader")
        self.names = tuple(field.name for field in fields)
        # The last value is `extra`: what `split` returns is the maker's list as it is.
        self._defaults: list[Any] = [field.default for field in fields] + [None]
        self._strings = {to_camel(f.name): i for i, f in enumerate(fields) if f.name not in readers}
        self._others = {to_camel(f.name): (i, readers[f.name]) for i, f in enumerate(fields) if f.name in readers}

    def split(self, data: Mapping[str, Any]) -> list[Any]:
        """The field values a JSON object gives, in field order, then its `extra`."""
        values = self._defaults.copy()
        extra: dict[str, Any] = {}
        strings, others = self._strings, self._others
        for key, value in data.items():
            index = strings.get(key)
            if index is not None:
                if type(value) is str:
                    values[index] = value
                elif value is not None:
                    extra[key] = value
                continue
            entry = others.get(key)
            if entry is None:
                extra[key] = value
            elif value is not None:
                index, read = entry
                converted = read(value)
                if converted is _MISFIT:
                    extra[key] = value
                else:
                    values[index] = converted
        values[-1] = extra
        return values


def _maker(cls: type[Any], names: tuple[str, ...]) -> _Maker:
    """Makes `cls` from a list of values: the fields `names`, then `extra`, then `raw` when `cls` has it."""
    return instance_maker(cls, (*names, "extra", "raw") if "raw" in attrs.fields_dict(cls) else (*names, "extra"))


def _read_firmware_list(value: Any) -> Any:
    if type(value) is not list:
        return _MISFIT
    if not value:
        return ()  # every message but firmwareList has it empty
    # All or nothing: a list with a non-object element is kept whole in `extra`, in its original order.
    if not all(type(item) is dict for item in value):
        return _MISFIT
    return tuple(_make_firmware(_FIRMWARE.split(item)) for item in value)


def _read_schedule(value: Any) -> Any:
    return _make_schedule(_SCHEDULE.split(value)) if type(value) is dict else _MISFIT


_FIRMWARE: Final = _Reading(Firmware, {})
_make_firmware: Final = _maker(Firmware, _FIRMWARE.names)
_SCHEDULE: Final = _Reading(UpgradeSchedule, {})
_make_schedule: Final = _maker(UpgradeSchedule, _SCHEDULE.names)
_MESSAGE: Final = _Reading(
    _CallbackMessageBase, {"firmware_list": _read_firmware_list, "upgrade_scheduled": _read_schedule}
)
# The base's defaults serve every message class: only `type` differs, and a class with its own `type` default is
# chosen only when the message has that `type`.
_MESSAGE_MAKERS: Final[Mapping[str, _Maker]] = {
    type_: _maker(cls, _MESSAGE.names) for type_, cls in _MESSAGE_CLASSES.items()
}
_make_unknown: Final = _maker(UnknownCallbackMessage, _MESSAGE.names)
_TYPE_INDEX: Final = _MESSAGE.names.index("type")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# Standard JSON only: Python's json would otherwise accept NaN and Infinity.
_JSON: Final = json.JSONDecoder(parse_constant=_reject_constant)


def _json_value(text: str) -> Any:
    """The JSON value `text` holds, as `JSONDecoder.decode` reads it. `decode` is `raw_decode` and two whitespace
    matches around it, a tenth of a message's parsing: a body with nothing around its value is read by `raw_decode`
    alone; any other (whitespace around, or an error) by `decode`, which then answers exactly as it always did."""
    try:
        value, end = _JSON.raw_decode(text)
    except json.JSONDecodeError:
        return _JSON.decode(text)
    return value if end == len(text) else _JSON.decode(text)


def _nesting_exceeds(value: Any, limit: int) -> bool:
    """Whether arrays and objects in `value` nest deeper than `limit` (iterative: no recursion to exhaust)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if type(node) is dict else node
        stack.extend((child, depth + 1) for child in children if type(child) in (dict, list))
    return False


def parse_callback_message(body: bytes | bytearray | memoryview | str) -> CallbackMessage:
    """Read a callback request body (UTF-8 JSON, or the already-decoded text) as a typed message.

    The class follows `type`: `FirmwareListMessage`, `UpgradeScheduledMessage`, `UpgradeProgressMessage`,
    `UpgradeFinishedMessage`, or `UnknownCallbackMessage` for anything else. Raises `CallbackParseError`
    (a `ValueError`) when the body is not UTF-8, not standard JSON, nested deeper than `MAX_NESTING`, or
    not a JSON object; `TypeError` when `body` is neither bytes nor str.
    """
    if isinstance(body, (bytes, bytearray, memoryview)):
        try:
            text = bytes(body).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CallbackParseError(f"callback body is not UTF-8 (invalid byte at offset {exc.start})") from None
    elif isinstance(body, str):
        text = body
    else:
        raise TypeError(f"body: expected bytes or str, got {type(body).__name__}")
    try:
        data = _json_value(text)
    except json.JSONDecodeError as exc:
        raise CallbackParseError(
            f"callback body is not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except RecursionError:
        raise CallbackParseError(f"callback body nests deeper than {MAX_NESTING} levels") from None
    except ValueError as exc:  # NaN/Infinity, integers too long to convert
        raise CallbackParseError(f"callback body is not standard JSON: {exc}") from None
    if type(data) is not dict:
        raise CallbackParseError(f"callback body is {_json_kind(data)}, not a JSON object")
    # Only a body with enough brackets can nest too deep; most are skipped after a cheap count.
    if text.count("[") + text.count("{") > MAX_NESTING and _nesting_exceeds(data, MAX_NESTING):
        raise CallbackParseError(f"callback body nests deeper than {MAX_NESTING} levels")
    values = _MESSAGE.split(data)
    values.append(data)
    message: CallbackMessage = _MESSAGE_MAKERS.get(values[_TYPE_INDEX], _make_unknown)(values)
    return message


def _json_kind(value: Any) -> str:
    if type(value) is list:
        return "an array"
    if type(value) is str:
        return "a string"
    if value is None:
        return "null"
    return "a boolean" if type(value) is bool else "a number"
