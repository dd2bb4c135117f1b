from __future__ import annotations

import pytest

import fota_callbacks as fota
from tests.scripted_server import ScriptedServer

pytestmark = pytest.mark.anyio

ACCOUNT = "0000123456-00001"


async def test_v2_list_over_real_http(scripted_server: ScriptedServer) -> None:
    scripted_server.script(scripted_server.json(200, b'{"url":"https://example.com/cb"}'))
    async with fota.FotaCallbacksClient(
        access_token="token", m2m_token="session", base_url=scripted_server.base_url
    ) as client:
        summary = await client.v2.list_registered_callbacks(ACCOUNT)
    assert summary == fota.CallbackSummary(url="https://example.com/cb")
    [received] = scripted_server.received
    assert (received.method, received.path) == ("GET", f"/api/fota/v2/callbacks/{ACCOUNT}")
    assert received.header("authorization") == "Bearer token"
    assert received.header("vz-m2m-token") == "session"
