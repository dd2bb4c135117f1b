"""AiohttpTransport's own shortcuts keep what a user sees: each request's headers on the wire as given (also past
its cache of prepared headers), and a session whose class overrides `request`, or a mock that patches aiohttp
after the first request, still gets the request."""

from __future__ import annotations

from typing import Any

import pytest

import fota_callbacks as fota
from tests.support.harness import Scripted

pytest.importorskip("aiohttp", reason="the aiohttp extra is not installed")

import aiohttp

from fota_callbacks.transport import AiohttpTransport

pytestmark = pytest.mark.anyio

OK = fota.Response(200, {"content-type": "application/json"}, b"{}")


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, object]]:
    """aiohttp runs on asyncio only (its refusal of trio is tested in test_transport_conformance.py)."""
    return ("asyncio", {})


async def test_each_request_goes_out_with_its_own_headers(served_script: Scripted) -> None:
    # More distinct header sets than the transport keeps prepared, then the first ones again.
    header_sets = [(("X-Tenant", f"t{n}"), ("Authorization", f"Bearer token-{n}")) for n in range(40)]
    order = [*header_sets, header_sets[0], header_sets[1], header_sets[0]]
    served_script.script.add(OK, times=len(order))
    transport = AiohttpTransport()
    try:
        for headers in order:
            response = await transport.send(fota.Request("GET", served_script.base_url + "/h", headers))
            assert response.status_code == 200
    finally:
        await transport.aclose()
    sent = served_script.sent
    assert [(s.header("x-tenant"), s.header("authorization")) for s in sent] == [
        (dict(h)["X-Tenant"], dict(h)["Authorization"]) for h in order
    ]
    assert all(s.header("accept-encoding") == "gzip, deflate" for s in sent)


async def test_header_pairs_given_as_lists_are_sent(served_script: Scripted) -> None:
    served_script.script.add(OK)
    transport = AiohttpTransport()
    try:
        request = fota.Request("GET", served_script.base_url + "/h", [["X-Listed", "yes"]])  # type: ignore[list-item]
        assert (await transport.send(request)).status_code == 200
    finally:
        await transport.aclose()
    [sent] = served_script.sent
    assert sent.header("x-listed") == "yes"


async def test_a_session_that_overrides_request_is_sent_through(served_script: Scripted) -> None:
    with pytest.warns(DeprecationWarning, match="discouraged"):  # aiohttp discourages subclasses; some exist

        class Tagging(aiohttp.ClientSession):
            def request(self, method: str, url: Any, **kwargs: Any) -> Any:
                kwargs["headers"] = [*kwargs["headers"].items(), ("X-Tagged", "by-override")]
                return super().request(method, url, **kwargs)

    served_script.script.add(OK, times=2)
    async with Tagging() as session:
        transport = AiohttpTransport(session)
        for _ in range(2):
            assert (await transport.send(fota.Request("GET", served_script.base_url + "/t"))).status_code == 200
    assert [s.header("x-tagged") for s in served_script.sent] == ["by-override", "by-override"]


async def test_a_mock_patched_in_after_the_first_request_applies(
    served_script: Scripted, monkeypatch: pytest.MonkeyPatch
) -> None:
    # aioresponses mocks aiohttp by patching `ClientSession._request`, possibly after the session was first used:
    # the transport sends through the public `request`, which calls it.
    served_script.script.add(OK)
    transport = AiohttpTransport()
    try:
        assert (await transport.send(fota.Request("GET", served_script.base_url + "/real"))).status_code == 200
        seen: list[str] = []
        real = aiohttp.ClientSession._request

        async def mocked(self: Any, method: str, url: Any, **kwargs: Any) -> Any:
            seen.append(str(url))
            return await real(self, method, url, **kwargs)

        monkeypatch.setattr(aiohttp.ClientSession, "_request", mocked)
        served_script.script.add(OK)
        assert (await transport.send(fota.Request("GET", served_script.base_url + "/mocked"))).status_code == 200
    finally:
        await transport.aclose()
    assert seen == [served_script.base_url + "/mocked"]
    assert served_script.paths() == ["/real", "/mocked"]
