"""The public surface: at most 50 names at the top level, each a thing a user constructs, catches or annotates; every
name API.md promises importable from `fota_callbacks`; a name that moved keeps working for one release, with a
`DeprecationWarning` that names its new place; the receiving half is not loaded by `import fota_callbacks`."""

from __future__ import annotations

import importlib
import importlib.metadata
import subprocess
import sys
import warnings
from typing import Any

import pytest

import fota_callbacks as fota
import fota_callbacks.testing

PROMISED = {
    # API.md: the client, its options and results
    "FotaCallbacksClient",
    "Environment",
    "ApiResponse",
    "EnsureResult",
    # operations and models (also importable from fota_callbacks.v1/.v2/.v3)
    "RegisteredCallbacks",
    "CallbackService",
    "FotaV1CallbackRegistrationRequest",
    "FotaV1CallbackRegistrationResult",
    "FotaV1SuccessResult",
    "CallbackSummary",
    "FotaV2CallbackRegistrationRequest",
    "FotaV2CallbackRegistrationResult",
    "FotaV2SuccessResult",
    "FotaV3CallbackSummary",
    "FotaV3CallbackRegistrationRequest",
    "FotaV3CallbackRegistrationResult",
    "FotaV3SuccessResult",
    # errors
    "FotaError",
    "ApiError",
    "BadRequestError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "ConflictError",
    "RateLimitError",
    "ServerError",
    "FotaV1ResultException",
    "FotaV2ResultException",
    "FotaV3ResultException",
    "OAuthError",
    "ApiConnectionError",
    "ApiTimeoutError",
    "ResponseValidationError",
    "InvalidArgumentError",
    # transports
    "Transport",
    "Request",
    "Response",
    "HttpxTransport",
    "InMemoryTransport",
    "AiohttpTransport",
    "Httpx2Transport",
    # receiving
    "parse_callback_message",
    "CallbackMessage",
}

ANNOTATIONS = {"Middleware", "CallbackMessage"}
"""Type aliases, for annotating: the one kind of public name that is not a class."""
FUNCTIONS = {"parse_callback_message"}
"""The one function at the top level (API.md names it there)."""

MOVED = {
    "CallbackMessageType": "fota_callbacks.callbacks",
    "CallbackParseError": "fota_callbacks.callbacks",
    "CampaignState": "fota_callbacks.callbacks",
    "DeviceStatus": "fota_callbacks.callbacks",
    "Firmware": "fota_callbacks.callbacks",
    "FirmwareListMessage": "fota_callbacks.callbacks",
    "UnknownCallbackMessage": "fota_callbacks.callbacks",
    "UpgradeFinishedMessage": "fota_callbacks.callbacks",
    "UpgradeProgressMessage": "fota_callbacks.callbacks",
    "UpgradeSchedule": "fota_callbacks.callbacks",
    "UpgradeScheduledMessage": "fota_callbacks.callbacks",
    "UpgradeStatus": "fota_callbacks.callbacks",
    "VERIZON_CALLBACK_SOURCE_IPS": "fota_callbacks.callbacks",
    "Inbox": "fota_callbacks.inbox",
    "InboxEntry": "fota_callbacks.inbox",
    "InboxStats": "fota_callbacks.inbox",
    "InboxUnavailableError": "fota_callbacks.inbox",
    "MemoryInbox": "fota_callbacks.inbox",
    "RedisInbox": "fota_callbacks.inbox",
    "SqliteInbox": "fota_callbacks.inbox",
    "Headers": "fota_callbacks.transport",
    "SendNext": "fota_callbacks.transport",
    "SoftwareManagementCallbacksV1Controller": "fota_callbacks.v1",
    "SoftwareManagementCallbacksV2Controller": "fota_callbacks.v2",
    "SoftwareManagementCallbacksV3Controller": "fota_callbacks.v3",
}
"""Top-level names of 0.1 that live elsewhere now, and where."""


def test_at_most_50_top_level_names_each_constructed_caught_or_annotated() -> None:
    assert len(fota.__all__) <= 50
    assert len(set(fota.__all__)) == len(fota.__all__)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # none of them is a deprecated one
        public = {name: getattr(fota, name) for name in fota.__all__}
    for name, value in public.items():
        if name in FUNCTIONS:
            assert callable(value), name
        elif name not in ANNOTATIONS:
            assert isinstance(value, type), f"{name} is not a class"
    assert not set(fota.__all__) & set(MOVED)
    assert not set(fota.__all__) & {"ErrorCodeError", "StaticToken", "InboxHandler", "__version__"}


def test_every_name_api_md_promises_is_at_the_top_level() -> None:
    assert set(fota.__all__) >= PROMISED, PROMISED - set(fota.__all__)
    assert fota.__version__ == importlib.metadata.version("fota-callbacks")


@pytest.mark.parametrize("version", ["v1", "v2", "v3"])
def test_models_and_controllers_stay_importable_from_their_version(version: str) -> None:
    module = importlib.import_module(f"fota_callbacks.{version}")
    controller = f"SoftwareManagementCallbacks{version.upper()}Controller"
    assert controller in module.__all__
    for name in module.__all__:
        if name != controller:
            assert getattr(module, name) is getattr(fota, name), name


@pytest.mark.parametrize(("name", "module"), MOVED.items(), ids=list(MOVED))
def test_a_moved_name_still_works_with_a_warning_naming_its_new_place(name: str, module: str) -> None:
    with pytest.warns(
        DeprecationWarning, match=rf"^fota_callbacks\.{name} is deprecated: import {name} from {module}$"
    ):
        value = getattr(fota, name)
    assert value is getattr(importlib.import_module(module), name)
    assert name in importlib.import_module(module).__all__


def test_a_moved_name_still_imports_with_from() -> None:
    with pytest.warns(DeprecationWarning, match="import UpgradeScheduledMessage from fota_callbacks.callbacks"):
        from fota_callbacks import UpgradeScheduledMessage
    message = fota.parse_callback_message(b'{"type": "upgradeScheduled"}')
    assert isinstance(message, UpgradeScheduledMessage)


def test_the_inbox_handler_is_the_callback_handler() -> None:
    from fota_callbacks.callbacks import CallbackHandler

    with pytest.warns(DeprecationWarning, match="import CallbackHandler from fota_callbacks.callbacks"):
        assert fota.InboxHandler is CallbackHandler


@pytest.mark.anyio
async def test_names_no_longer_public_still_work_with_a_warning_saying_what_to_use() -> None:
    with pytest.warns(DeprecationWarning, match=r"StaticToken is deprecated and will be removed: pass the token"):
        static = fota.StaticToken("bearer-token")
    with pytest.warns(DeprecationWarning, match=r"ErrorCodeError is deprecated .*: catch FotaResultException"):
        error_code_error = fota.ErrorCodeError

    async def refuse(request: fota.Request) -> fota.Response:
        assert request.headers["authorization"] == "Bearer bearer-token"
        return fota.Response(400, {"content-type": "application/json"}, b'{"errorCode": "E1", "errorMessage": "no"}')

    transport = fota.InMemoryTransport(refuse)
    async with fota.FotaCallbacksClient(access_token=static, m2m_token="m2m", transport=transport) as client:
        with pytest.raises(error_code_error) as caught:
            await client.v2.list_registered_callbacks("0000123456-00001")
    assert isinstance(caught.value, fota.FotaV2ResultException)
    assert caught.value.error_code == "E1"


LITERALS = {
    "DeliveryVersion": "Literal['v1', 'v2', 'v3']",
    "UpgradeEventType": "Literal['upgradeScheduled', 'upgradeProgress', 'upgradeFinished']",
    "FaultKind": "Literal['status', 'drop', 'delay', 'malformed']",
    "Version": "Literal['v1', 'v2', 'v3', 'oauth', 'm2m']",
    "Operation": "Literal['list_registered_callbacks', 'register_callback', 'update_callback', 'deregister_callback', "
    "'token', 'login', 'logout']",
}


@pytest.mark.parametrize(("name", "spelled"), LITERALS.items(), ids=list(LITERALS))
def test_the_literal_aliases_of_testing_still_work_with_a_warning(name: str, spelled: str) -> None:
    assert name not in fota_callbacks.testing.__all__
    with pytest.warns(DeprecationWarning, match=rf"testing\.{name} is deprecated and will be removed") as caught:
        alias: Any = getattr(fota_callbacks.testing, name)
    assert str(caught[0].message).endswith(f"annotate with {spelled}")
    assert f"Literal[{', '.join(repr(value) for value in alias.__args__)}]" == spelled


def test_serve_app_is_serve() -> None:
    assert "serve_app" not in fota_callbacks.testing.__all__
    with pytest.warns(DeprecationWarning, match="serve_app is deprecated: use fota_callbacks.testing.serve"):
        assert fota_callbacks.testing.serve_app is fota_callbacks.testing.serve


def test_the_testing_names_are_things_to_construct_catch_or_use() -> None:
    for name in fota_callbacks.testing.__all__:
        value = getattr(fota_callbacks.testing, name)
        assert isinstance(value, type) or name == "serve", name


def test_unknown_names_are_attribute_errors() -> None:
    with pytest.raises(AttributeError, match="no attribute 'NoSuchName'"):
        _ = fota.NoSuchName
    with pytest.raises(AttributeError, match="no attribute 'NoSuchName'"):
        _ = fota_callbacks.testing.NoSuchName


def test_importing_the_sdk_loads_neither_the_messages_nor_the_inbox() -> None:
    script = (
        "import sys, warnings\n"
        "warnings.simplefilter('error')\n"
        "import fota_callbacks as fota\n"
        "assert 'fota_callbacks.inbox' not in sys.modules\n"
        "assert 'fota_callbacks.callbacks' not in sys.modules\n"
        "assert fota.CallbackMessage is not None  # loaded on first use, no warning\n"
        "assert 'fota_callbacks.callbacks' in sys.modules\n"
        "assert 'fota_callbacks.inbox' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)


def test_cattrs_is_loaded_by_the_first_call_not_by_making_a_client() -> None:
    script = (
        "import sys, anyio\n"
        "import fota_callbacks as fota\n"
        "async def main():\n"
        "    async def handler(request):\n"
        '        return fota.Response(200, {}, b\'{"url": "https://a.example/cb"}\')\n'
        "    transport = fota.InMemoryTransport(handler)\n"
        "    client = fota.FotaCallbacksClient(access_token='t', m2m_token='m', transport=transport)\n"
        "    assert 'cattrs' not in sys.modules  # cold start: the converter is not built until it is needed\n"
        "    summary = await client.v2.list_registered_callbacks('0000123456-00001')\n"
        "    assert summary == fota.CallbackSummary(url='https://a.example/cb')\n"
        "    assert 'cattrs' in sys.modules\n"
        "anyio.run(main)\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)
