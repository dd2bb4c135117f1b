"""Verizon's own generated Python SDK (`sdksio-verizon-apis-sdk`, import `verizon`), unchanged, runs its whole
lifecycle against a `fota-callbacks fake-server` process (wire.md "Fake fidelity").

The server is test_cli's `fake_server` fixture: a subprocess on a free port, stopped by its process id.
The SDK is synchronous (requests), so these are plain sync tests. It is pointed at the fake by replacing
`Configuration.environments`, as wire.md says. The fake's state is read back with this project's own client, a
second view that does not go through the SDK under test.
"""

from __future__ import annotations

import anyio
import pytest
from verizon.configuration import Configuration, Environment, Server
from verizon.exceptions.api_exception import APIException
from verizon.exceptions.fota_v2_result_exception import FotaV2ResultException
from verizon.exceptions.fota_v3_result_exception import FotaV3ResultException
from verizon.http.auth.thingspace_oauth import ThingspaceOauthCredentials
from verizon.http.auth.vz_m2m_token import VZM2mTokenCredentials
from verizon.models.callback_service_enum import CallbackServiceEnum
from verizon.models.fota_v1_callback_registration_request import FotaV1CallbackRegistrationRequest
from verizon.models.fota_v2_callback_registration_request import FotaV2CallbackRegistrationRequest
from verizon.models.fota_v3_callback_registration_request import FotaV3CallbackRegistrationRequest
from verizon.models.log_in_request import LogInRequest
from verizon.verizon_client import VerizonClient

import fota_callbacks as fota
from tests.cli.test_cli import fake_server as fake_server  # `fota-callbacks fake-server` on a free 127.0.0.1 port

ACCOUNT = "0000123456-00001"


@pytest.fixture
def verizon(fake_server: str, monkeypatch: pytest.MonkeyPatch) -> VerizonClient:
    """A Verizon SDK client pointed at the fake, with OAuth client credentials only (no session yet)."""
    servers = {
        Server.THINGSPACE: f"{fake_server}/api",
        Server.OAUTH_SERVER: f"{fake_server}/api/ts/v1",
        Server.M2M: f"{fake_server}/api/m2m",
        Server.SOFTWARE_MANAGEMENT_V1: f"{fake_server}/api/fota/v1",
        Server.SOFTWARE_MANAGEMENT_V2: f"{fake_server}/api/fota/v2",
        Server.SOFTWARE_MANAGEMENT_V3: f"{fake_server}/api/fota/v3",
    }
    monkeypatch.setattr(Configuration, "environments", dict.fromkeys(Environment, servers))
    credentials = ThingspaceOauthCredentials(oauth_client_id="verizon-sdk-id", oauth_client_secret="sdk-secret")
    return VerizonClient(thingspace_oauth_credentials=credentials)


def _logged_in(client: VerizonClient) -> tuple[VerizonClient, str]:
    """Session login through the SDK (it fetches its OAuth token first); a client sending the session token."""
    login = client.session_management.start_connectivity_management_session(
        LogInRequest(username="sdk-user", password="sdk-password")
    )
    assert login.status_code == 200
    session: str = login.body.session_token
    assert session
    config = client.config.clone_with(vz_m2m_token_credentials=VZM2mTokenCredentials(session))
    return VerizonClient(config=config), session


def _state(base_url: str) -> tuple[list[fota.RegisteredCallbacks], str | None, str | None]:
    """What the fake holds for ACCOUNT, read with this project's client (its own token and session)."""

    async def read() -> tuple[list[fota.RegisteredCallbacks], str | None, str | None]:
        async with fota.FotaCallbacksClient(
            base_url=base_url, client_id="reader", client_secret="reader", username="reader", password="reader"
        ) as client:
            v1 = await client.v1.list_registered_callbacks(ACCOUNT)
            v2 = await client.v2.list_registered_callbacks(ACCOUNT)
            v3 = await client.v3.list_registered_callbacks(ACCOUNT)
            return v1, v2.url, v3.url

    return anyio.run(read)


def test_the_whole_lifecycle_of_verizons_sdk(verizon: VerizonClient, fake_server: str) -> None:
    client, session = _logged_in(verizon)

    # Nothing registered yet: ThingSpace answers list with 200 and an empty body, which the SDK reads as no body.
    for controller in (
        client.software_management_callbacks_v1,
        client.software_management_callbacks_v2,
        client.software_management_callbacks_v3,
    ):
        nothing = controller.list_registered_callbacks(ACCOUNT)
        assert (nothing.status_code, nothing.text, nothing.body) == (200, "", None)

    # V1: register (with the credentials ThingSpace echoes in messages), list, deregister.
    v1 = client.software_management_callbacks_v1
    registration = FotaV1CallbackRegistrationRequest(
        name=CallbackServiceEnum.FOTA, url="https://listener.example/v1", username="echo-user", password="echo-pw"
    )
    registered = v1.register_callback(ACCOUNT, registration).body
    assert (registered.account_name, registered.service_name) == (ACCOUNT, "Fota")
    [listed] = v1.list_registered_callbacks(ACCOUNT).body
    assert (listed.aname, listed.name, listed.url) == (ACCOUNT, "Fota", "https://listener.example/v1")
    assert (listed.username, listed.password) == ("echo-user", "echo-pw")
    assert _state(fake_server)[0] == [
        fota.RegisteredCallbacks(
            aname=ACCOUNT, name="Fota", url="https://listener.example/v1", username="echo-user", password="echo-pw"
        )
    ]
    assert v1.deregister_callback(ACCOUNT, "Fota").body.success is True
    assert _state(fake_server)[0] == []
    assert v1.list_registered_callbacks(ACCOUNT).body is None

    # V2 and V3 (V2's bodies go as Content-Type: */*): register, update, list, deregister.
    for version, controller, request_model in (
        ("v2", client.software_management_callbacks_v2, FotaV2CallbackRegistrationRequest),
        ("v3", client.software_management_callbacks_v3, FotaV3CallbackRegistrationRequest),
    ):
        index = 1 if version == "v2" else 2
        first, second = f"https://listener.example/{version}/a", f"https://listener.example/{version}/b"
        assert controller.register_callback(ACCOUNT, request_model(url=first)).body.url == first
        assert _state(fake_server)[index] == first
        assert controller.update_callback(ACCOUNT, request_model(url=second)).body.url == second
        assert controller.list_registered_callbacks(ACCOUNT).body.url == second
        assert _state(fake_server)[index] == second
        assert controller.deregister_callback(ACCOUNT).body.success is True
        assert _state(fake_server)[index] is None
        assert controller.list_registered_callbacks(ACCOUNT).body is None

    # Logout ends the session: the SDK's next call is refused.
    logout = client.session_management.end_connectivity_management_session()
    assert (logout.status_code, logout.body.session_token) == (200, session)
    with pytest.raises(APIException) as refused:
        client.software_management_callbacks_v2.list_registered_callbacks(ACCOUNT)
    assert refused.value.response_code == 401


@pytest.mark.parametrize("version", ["v2", "v3"])
def test_verizons_sdk_reads_the_fakes_errors(verizon: VerizonClient, version: str) -> None:
    client, _ = _logged_in(verizon)
    controller, request_model, error = {
        "v2": (client.software_management_callbacks_v2, FotaV2CallbackRegistrationRequest, FotaV2ResultException),
        "v3": (client.software_management_callbacks_v3, FotaV3CallbackRegistrationRequest, FotaV3ResultException),
    }[version]
    with pytest.raises(error) as not_found:
        controller.update_callback(ACCOUNT, request_model(url="https://listener.example/none"))
    assert (not_found.value.response_code, not_found.value.error_code) == (400, "CallbackNotFound")
    with pytest.raises(error) as not_https:
        controller.register_callback(ACCOUNT, request_model(url="http://listener.example/plain"))
    assert not_https.value.error_code == "InvalidCallbackUrl"
