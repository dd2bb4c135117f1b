from __future__ import annotations

import pytest

import fota_callbacks as fota
from tests.support.harness import Scripted

pytestmark = pytest.mark.anyio

ACCOUNT = "0000123456-00001"


async def test_v2_list_over_real_http(served_script: Scripted) -> None:
    served_script.script.respond(200, json={"url": "https://example.com/cb"})
    async with fota.FotaCallbacksClient(
        access_token="token", m2m_token="session", base_url=served_script.base_url
    ) as client:
        summary = await client.v2.list_registered_callbacks(ACCOUNT)
    assert summary == fota.CallbackSummary(url="https://example.com/cb")
    [received] = served_script.script.requests
    assert (received.method, received.url) == ("GET", f"{served_script.base_url}/api/fota/v2/callbacks/{ACCOUNT}")
    assert received.headers["authorization"] == "Bearer token"
    assert received.headers["vz-m2m-token"] == "session"
