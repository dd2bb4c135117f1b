"""Models (frozen, slotted, keyword-only, secrets redacted), the client's controllers and repr, `with_options`,
and who closes which transport."""

from __future__ import annotations

from typing import Any

import attrs
import httpx
import pytest

import fota_callbacks as fota
import fota_callbacks.v1
import fota_callbacks.v2
import fota_callbacks.v3
from tests.support.harness import Scripted
from tests.support.wire_cases import ACCOUNT, BEARER, M2M

MODELS: list[object] = [
    fota.FotaV1CallbackRegistrationRequest(
        name=fota.CallbackService.FOTA, url="https://e.com/cb", username="u", password="p"
    ),
    fota.RegisteredCallbacks(aname=ACCOUNT, name="Fota", url="https://e.com/cb", username="u", password="p"),
    fota.FotaV1CallbackRegistrationResult(account_name=ACCOUNT, service_name="Fota"),
    fota.FotaV1SuccessResult(success=True),
    fota.FotaV2CallbackRegistrationRequest(url="https://e.com/cb"),
    fota.CallbackSummary(url="https://e.com/cb"),
    fota.FotaV2CallbackRegistrationResult(url="https://e.com/cb"),
    fota.FotaV2SuccessResult(success=True),
    fota.FotaV3CallbackRegistrationRequest(url="https://e.com/cb"),
    fota.FotaV3CallbackSummary(url="https://e.com/cb"),
    fota.FotaV3CallbackRegistrationResult(url="https://e.com/cb"),
    fota.FotaV3SuccessResult(success=True),
]


def _name(model: object) -> str:
    return type(model).__name__


# --- models -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS, ids=_name)
def test_models_are_frozen_slotted_attrs_classes(model: object) -> None:
    assert attrs.has(type(model))
    assert not hasattr(model, "__dict__")
    cls: Any = type(model)
    for field in attrs.fields(cls):
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            setattr(model, field.name, None)
    attribute = "not_a_field"
    with pytest.raises(AttributeError):
        setattr(model, attribute, 1)


@pytest.mark.parametrize("model", MODELS, ids=_name)
def test_models_take_keyword_arguments_only(model: object) -> None:
    cls: Any = type(model)
    values = attrs.asdict(model, recurse=False)  # type: ignore[arg-type]
    assert cls(**values) == model
    with pytest.raises(TypeError):
        cls(*values.values())


@pytest.mark.parametrize("model", MODELS, ids=_name)
def test_models_compare_by_value_and_type(model: object) -> None:
    cls: Any = type(model)
    assert cls(**attrs.asdict(model, recurse=False)) == model  # type: ignore[arg-type]
    assert attrs.evolve(model) == model  # type: ignore[misc]
    others = [other for other in MODELS if type(other) is not type(model)]
    assert all(other != model for other in others)  # same fields, other class: not equal


def test_models_are_exported_from_their_version_modules() -> None:
    assert fota_callbacks.v1.RegisteredCallbacks is fota.RegisteredCallbacks
    assert fota_callbacks.v1.CallbackService is fota.CallbackService
    assert fota_callbacks.v1.FotaV1CallbackRegistrationRequest is fota.FotaV1CallbackRegistrationRequest
    assert fota_callbacks.v1.FotaV1CallbackRegistrationResult is fota.FotaV1CallbackRegistrationResult
    assert fota_callbacks.v1.FotaV1SuccessResult is fota.FotaV1SuccessResult
    assert fota_callbacks.v2.CallbackSummary is fota.CallbackSummary
    assert fota_callbacks.v2.FotaV2CallbackRegistrationRequest is fota.FotaV2CallbackRegistrationRequest
    assert fota_callbacks.v2.FotaV2CallbackRegistrationResult is fota.FotaV2CallbackRegistrationResult
    assert fota_callbacks.v2.FotaV2SuccessResult is fota.FotaV2SuccessResult
    assert fota_callbacks.v3.FotaV3CallbackSummary is fota.FotaV3CallbackSummary
    assert fota_callbacks.v3.FotaV3CallbackRegistrationRequest is fota.FotaV3CallbackRegistrationRequest
    assert fota_callbacks.v3.FotaV3CallbackRegistrationResult is fota.FotaV3CallbackRegistrationResult
    assert fota_callbacks.v3.FotaV3SuccessResult is fota.FotaV3SuccessResult


def test_optional_fields_default_to_none_and_required_ones_are_required() -> None:
    assert fota.RegisteredCallbacks() == fota.RegisteredCallbacks(
        aname=None, name=None, url=None, username=None, password=None
    )
    assert fota.FotaV1CallbackRegistrationResult().account_name is None
    assert fota.FotaV1SuccessResult().success is None
    assert fota.CallbackSummary().url is None
    assert fota.FotaV3CallbackRegistrationResult().url is None
    required: list[Any] = [
        fota.FotaV2SuccessResult,
        fota.FotaV3SuccessResult,
        fota.FotaV2CallbackRegistrationRequest,
        fota.FotaV3CallbackRegistrationRequest,
        fota.FotaV1CallbackRegistrationRequest,
    ]
    for cls in required:
        with pytest.raises(TypeError):
            cls()


def test_callback_service() -> None:
    service: str = fota.CallbackService.FOTA
    assert service == "Fota"
    assert fota.CallbackService.FOTA.value == "Fota"
    assert str(fota.CallbackService.FOTA) == "Fota"
    assert f"{fota.CallbackService.FOTA}" == "Fota"
    assert fota.CallbackService("Fota") is fota.CallbackService.FOTA
    assert isinstance(fota.CallbackService.FOTA, str)
    assert list(fota.CallbackService) == [fota.CallbackService.FOTA]


@pytest.mark.parametrize(
    "model",
    [
        fota.FotaV1CallbackRegistrationRequest(
            name=fota.CallbackService.FOTA, url="https://e.com/cb", username="listener", password="hunter2"
        ),
        fota.RegisteredCallbacks(name="Fota", url="https://e.com/cb", username="listener", password="hunter2"),
    ],
    ids=_name,
)
def test_repr_hides_the_password(model: fota.FotaV1CallbackRegistrationRequest | fota.RegisteredCallbacks) -> None:
    for text in (repr(model), str(model)):
        assert "hunter2" not in text
        assert "password=" in text
        assert "listener" in text  # the user name is not a secret
        assert "https://e.com/cb" in text
    assert model.password == "hunter2"  # hidden from repr, not lost


def test_repr_shows_an_unset_password_as_none() -> None:
    assert "password=None" in repr(fota.RegisteredCallbacks(url="https://e.com/cb"))


# --- the client -------------------------------------------------------------------------------------------------


async def _ok(request: fota.Request) -> fota.Response:
    return fota.Response(200, {"content-type": "application/json"}, b'{"url":"https://e.com/cb","success":true}')


def test_controllers_under_verizons_names_are_the_same_objects() -> None:
    client = fota.FotaCallbacksClient(access_token=BEARER, m2m_token=M2M, transport=fota.InMemoryTransport(_ok))
    assert client.software_management_callbacks_v1 is client.v1
    assert client.software_management_callbacks_v2 is client.v2
    assert client.software_management_callbacks_v3 is client.v3
    assert isinstance(client.v1, fota_callbacks.v1.SoftwareManagementCallbacksV1Controller)
    assert isinstance(client.v2, fota_callbacks.v2.SoftwareManagementCallbacksV2Controller)
    assert isinstance(client.v3, fota_callbacks.v3.SoftwareManagementCallbacksV3Controller)
    assert client.v1 is client.v1  # not rebuilt per access


@pytest.mark.parametrize(
    "credentials",
    [
        {"access_token": BEARER, "m2m_token": M2M},
        {"client_id": "my-client-id", "client_secret": "client-SECRET-x1", "m2m_token": M2M},
        {"access_token": BEARER, "username": "my-user", "password": "login-SECRET-x2"},
    ],
    ids=["static", "oauth", "login"],
)
def test_repr_of_the_client_shows_no_secret(credentials: dict[str, str]) -> None:
    client = fota.FotaCallbacksClient(transport=fota.InMemoryTransport(_ok), **credentials)  # type: ignore[arg-type]
    derived = client.with_options(timeout=1)
    for text in (repr(client), str(client), repr(derived)):
        for secret in (BEARER, M2M, "client-SECRET-x1", "login-SECRET-x2"):
            assert secret not in text
    assert "https://thingspace.verizon.com" in repr(client)


class CountingTransport:
    """A `fota.Transport` that answers in memory and counts `aclose()` calls."""

    def __init__(self) -> None:
        self.requests: list[fota.Request] = []
        self.closed = 0

    async def send(self, request: fota.Request) -> fota.Response:
        self.requests.append(request)
        return await _ok(request)

    async def aclose(self) -> None:
        self.closed += 1


@pytest.mark.anyio
async def test_with_options_shares_the_transport_and_never_closes_it() -> None:
    transport = CountingTransport()
    assert isinstance(transport, fota.Transport)
    client = fota.FotaCallbacksClient(access_token=BEARER, m2m_token=M2M, transport=transport)
    derived = client.with_options(timeout=5, max_retries=0)

    assert derived is not client
    assert derived.transport is client.transport is transport
    assert (derived.timeout, derived.max_retries) == (5.0, 0)
    assert (client.timeout, client.max_retries) == (30.0, 2)  # the parent keeps its options
    assert derived.base_url == client.base_url
    assert derived.software_management_callbacks_v2 is derived.v2
    assert derived.v2 is not client.v2

    assert await derived.v2.list_registered_callbacks(ACCOUNT) == fota.CallbackSummary(url="https://e.com/cb")
    assert await client.v2.list_registered_callbacks(ACCOUNT) == fota.CallbackSummary(url="https://e.com/cb")
    assert [request.timeout for request in transport.requests] == [5.0, 30.0]
    assert all(request.headers["authorization"] == f"Bearer {BEARER}" for request in transport.requests)
    assert all(request.headers["vz-m2m-token"] == M2M for request in transport.requests)

    await derived.aclose()
    async with derived:
        pass
    assert transport.closed == 0
    assert await client.v3.deregister_callback(ACCOUNT) == fota.FotaV3SuccessResult(success=True)

    await client.aclose()
    await client.aclose()  # safe twice
    assert transport.closed == 1
    with pytest.raises(fota.ClientClosedError):
        await client.v2.list_registered_callbacks(ACCOUNT)
    with pytest.raises(fota.ClientClosedError):  # a derived client stops with its parent
        await derived.v2.list_registered_callbacks(ACCOUNT)


@pytest.mark.anyio
async def test_with_options_max_retries_applies_to_the_derived_client_only() -> None:
    statuses = [503]

    async def handler(request: fota.Request) -> fota.Response:
        status = statuses.pop(0) if statuses else 200
        return fota.Response(status, {"content-type": "application/json"}, b'{"url":"https://e.com/cb"}')

    async with fota.FotaCallbacksClient(
        access_token=BEARER, m2m_token=M2M, transport=fota.InMemoryTransport(handler)
    ) as client:
        with pytest.raises(fota.ServerError) as info:
            await client.with_options(max_retries=0).v2.list_registered_callbacks(ACCOUNT)
        assert info.value.retries_taken == 0
        assert client.max_retries == 2


@pytest.mark.parametrize(
    "options",
    [{"timeout": -1}, {"timeout": 0}, {"timeout": "5"}, {"max_retries": -1}, {"max_retries": 1.5}],
    ids=["negative-timeout", "zero-timeout", "str-timeout", "negative-retries", "float-retries"],
)
def test_with_options_refuses_bad_values(options: dict[str, Any]) -> None:
    client = fota.FotaCallbacksClient(access_token=BEARER, m2m_token=M2M, transport=fota.InMemoryTransport(_ok))
    with pytest.raises(fota.InvalidArgumentError) as info:
        client.with_options(**options)
    assert info.value.parameter in options


def test_with_options_timeout_none_means_no_limit() -> None:
    client = fota.FotaCallbacksClient(access_token=BEARER, m2m_token=M2M, transport=fota.InMemoryTransport(_ok))
    assert client.with_options(timeout=None).timeout is None
    assert client.with_options().timeout == client.timeout


@pytest.mark.anyio
async def test_closing_a_derived_client_leaves_the_http_transport_open(served_script: Scripted) -> None:
    served_script.script.respond(json={"success": True})
    served_script.script.respond(json={"url": "https://e.com/cb"})
    async with fota.FotaCallbacksClient(access_token=BEARER, m2m_token=M2M, base_url=served_script.base_url) as client:
        transport = client.transport
        assert isinstance(transport, fota.HttpxTransport)
        async with client.with_options(timeout=5, max_retries=0) as derived:
            assert await derived.v2.deregister_callback(ACCOUNT) == fota.FotaV2SuccessResult(success=True)
        assert not transport.client.is_closed
        assert await client.v2.list_registered_callbacks(ACCOUNT) == fota.CallbackSummary(url="https://e.com/cb")
    assert transport.client.is_closed  # the client owned it (it made it)
    assert len(served_script.sent) == 2


# --- HttpxTransport ownership -------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_httpx_transport_does_not_close_a_client_it_was_given(served_script: Scripted) -> None:
    served_script.script.respond(json={"url": "https://e.com/cb"})
    served_script.script.respond(404, path="/still-usable")
    async with httpx.AsyncClient() as user_client:
        transport = fota.HttpxTransport(user_client)
        assert transport.client is user_client
        assert isinstance(transport, fota.Transport)
        async with fota.FotaCallbacksClient(
            access_token=BEARER, m2m_token=M2M, base_url=served_script.base_url, transport=transport
        ) as client:
            assert client.transport is transport
            assert await client.v3.list_registered_callbacks(ACCOUNT) == fota.FotaV3CallbackSummary(
                url="https://e.com/cb"
            )
        assert not user_client.is_closed  # closing the SDK client closed the transport, not the user's client
        await transport.aclose()
        assert not user_client.is_closed
        response = await user_client.get(served_script.base_url + "/still-usable")
        assert response.status_code == 404  # answered by the same server, through the same client
    assert user_client.is_closed


@pytest.mark.anyio
async def test_httpx_transport_closes_the_client_it_owns() -> None:
    transport = fota.HttpxTransport()
    assert not transport.client.is_closed
    await transport.aclose()
    assert transport.client.is_closed


@pytest.mark.anyio
async def test_the_default_transport_is_an_owned_httpx_transport_closed_with_the_client() -> None:
    client = fota.FotaCallbacksClient(access_token=BEARER, m2m_token=M2M)
    transport = client.transport
    assert isinstance(transport, fota.HttpxTransport)
    async with client:
        assert not transport.client.is_closed
    assert transport.client.is_closed
