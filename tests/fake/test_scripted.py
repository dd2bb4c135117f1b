"""ScriptedTransport through a real FotaCallbacksClient: queued and matched answers, dropped connections,
delays within the request's timeout, the record of requests, the end-of-test check, and the same script over
real HTTP."""

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx
import pytest

import fota_callbacks as fota
from fota_callbacks.testing import ScriptedTransport, UnscriptedRequestError, serve
from tests.support.harness import STATIC_TOKEN, client_on

pytestmark = pytest.mark.anyio

ACCOUNT = "0000123456-00001"
V2_PATH = f"/api/fota/v2/callbacks/{ACCOUNT}"
TOKEN_PATH = "/api/ts/v1/oauth2/token"
URL = "https://listener.example/fota"


# -- queued answers ------------------------------------------------------------------------------------------


async def test_answers_are_used_in_order_and_every_request_is_recorded() -> None:
    with ScriptedTransport() as transport:
        busy = transport.respond(503, headers={"Retry-After": "0"})
        listing = transport.respond(200, json={"url": URL}, headers={"x-request-id": "req-2"})
        async with client_on(transport) as client:
            response = await client.v2.with_raw_response.list_registered_callbacks(ACCOUNT)
    assert response.data == fota.CallbackSummary(url=URL)
    assert (response.status_code, response.request_id, response.retries_taken) == (200, "req-2", 1)
    first, second = transport.requests
    assert (first.method, first.url) == ("GET", f"https://thingspace.verizon.com{V2_PATH}")
    assert first.headers["authorization"] == f"Bearer {STATIC_TOKEN}"
    assert busy.requests == [first]
    assert listing.requests == [second]
    assert busy.used
    assert listing.used
    assert transport.pending == []


async def test_an_answer_matched_by_method_and_path_waits_for_its_request() -> None:
    with ScriptedTransport() as transport:
        register = transport.respond(200, json={"url": URL}, method="post", path=V2_PATH)
        listing = transport.respond(200, json={"url": "https://old.example/fota"}, method="GET", path=V2_PATH)
        async with client_on(transport) as client:
            summary = await client.v2.list_registered_callbacks(ACCOUNT)
            assert transport.pending == [register]
            result = await client.v2.register_callback(ACCOUNT, fota.FotaV2CallbackRegistrationRequest(url=URL))
    assert summary.url == "https://old.example/fota"
    assert result.url == URL
    assert [r.method for r in listing.requests] == ["GET"]
    [posted] = register.requests
    assert json.loads(posted.content) == {"url": URL}


async def test_token_endpoint_and_api_answered_by_path_whatever_the_queue_order() -> None:
    with ScriptedTransport() as transport:
        api = transport.respond(200, json={"url": URL}, path=V2_PATH)
        token = transport.respond(200, json={"access_token": "issued", "token_type": "Bearer"}, path=TOKEN_PATH)
        async with client_on(transport, client_id="id", client_secret="secret") as client:
            await client.v2.list_registered_callbacks(ACCOUNT)
    assert [r.url.rsplit(".com", 1)[1] for r in transport.requests] == [TOKEN_PATH, V2_PATH]
    assert token.requests[0].content == b"grant_type=client_credentials"
    assert api.requests[0].headers["authorization"] == "Bearer issued"


async def test_times_and_a_standing_answer() -> None:
    transport = ScriptedTransport()
    twice = transport.respond(503, times=2)
    always = transport.respond(200, json={"url": URL}, times=None)
    assert not always.used
    assert transport.pending == [twice, always]
    async with client_on(transport) as client:
        for _ in range(3):
            await client.v2.list_registered_callbacks(ACCOUNT)
    assert (len(twice.requests), len(always.requests)) == (2, 3)
    assert twice.remaining == 0
    assert always.remaining is None
    transport.assert_all_consumed()


# -- dropped connections and delays --------------------------------------------------------------------------


@pytest.mark.parametrize("sent", [True, False])
async def test_a_drop_raises_what_a_real_transport_raises(sent: bool) -> None:
    with ScriptedTransport() as transport:
        transport.drop(sent=sent)
        async with client_on(transport, max_retries=0) as client:
            with pytest.raises(fota.ApiConnectionError) as caught:
                await client.v2.list_registered_callbacks(ACCOUNT)
    assert type(caught.value) is fota.ApiConnectionError
    assert caught.value.request_sent is sent
    assert caught.value.request is not None
    assert caught.value.request.url.endswith(V2_PATH)


async def test_the_client_retries_after_a_drop() -> None:
    with ScriptedTransport() as transport:
        transport.drop()
        transport.respond(200, json={"url": URL})
        async with client_on(transport) as client:
            response = await client.v2.with_raw_response.list_registered_callbacks(ACCOUNT)
    assert response.retries_taken == 1
    assert len(transport.requests) == 2


async def test_a_delay_within_the_timeout_is_waited_out() -> None:
    with ScriptedTransport() as transport:
        transport.respond(200, json={"url": URL}, delay=0.02)
        async with client_on(transport, timeout=5.0) as client:
            started = anyio.current_time()
            assert (await client.v2.list_registered_callbacks(ACCOUNT)).url == URL
    assert anyio.current_time() - started >= 0.02


@pytest.mark.parametrize("how", ["delay", "hang"])
async def test_an_attempt_longer_than_the_timeout_is_an_api_timeout(how: str) -> None:
    with ScriptedTransport() as transport:
        if how == "delay":
            transport.respond(200, json={"url": URL}, delay=60)
        else:
            transport.hang()
        transport.respond(200, json={"url": URL})
        async with client_on(transport, timeout=0.05, max_retries=0) as client:
            with pytest.raises(fota.ApiTimeoutError) as caught:
                await client.v2.list_registered_callbacks(ACCOUNT)
            assert caught.value.request_sent is True
            # the next attempt gets the next answer
            assert (await client.v2.list_registered_callbacks(ACCOUNT)).url == URL


async def test_a_cancelled_attempt_used_its_answer() -> None:
    transport = ScriptedTransport()
    transport.hang()
    transport.respond(200, json={"url": URL})
    async with client_on(transport) as client:
        with anyio.move_on_after(0.05):
            await client.v2.list_registered_callbacks(ACCOUNT)
        assert (await client.v2.list_registered_callbacks(ACCOUNT)).url == URL
    transport.assert_all_consumed()


# -- the checks ----------------------------------------------------------------------------------------------


async def test_a_request_no_answer_matches_fails_where_it_was_sent_and_at_the_end() -> None:
    transport = ScriptedTransport()
    transport.respond(200, json={"success": True}, method="DELETE")
    async with client_on(transport) as client:
        with pytest.raises(UnscriptedRequestError, match=f"no queued answer matches GET {V2_PATH}"):
            await client.v2.list_registered_callbacks(ACCOUNT)
    assert len(transport.requests) == 1
    with pytest.raises(AssertionError) as caught:
        transport.assert_all_consumed()
    assert f"no answer for: GET {V2_PATH}" in str(caught.value)
    assert "not used: <ScriptedAnswer respond 200 for DELETE *, 1 of 1 left>" in str(caught.value)


async def test_leaving_the_block_with_an_unused_answer_fails() -> None:
    transport = ScriptedTransport()
    transport.drop(method="GET", path="/x")
    unused = r"not used: <ScriptedAnswer drop \(request_sent=True\) for GET /x"
    with pytest.raises(AssertionError, match=unused), transport:
        pass


async def test_an_error_in_the_block_is_not_replaced_by_the_check() -> None:
    transport = ScriptedTransport()
    transport.respond(200)
    with pytest.raises(KeyError), transport:
        raise KeyError("the test's own failure")


async def test_a_standing_answer_counts_as_used_once_it_answered() -> None:
    transport = ScriptedTransport()
    transport.respond(200, times=None)
    with pytest.raises(AssertionError, match="always"):
        transport.assert_all_consumed()


async def test_the_client_closes_it_and_then_it_refuses_to_send() -> None:
    transport = ScriptedTransport()
    transport.respond(200, json={"url": URL})
    async with client_on(transport) as client:
        await client.v2.list_registered_callbacks(ACCOUNT)
        assert not transport.closed
    assert transport.closed
    with pytest.raises(RuntimeError, match="closed"):
        await transport.send(fota.Request("GET", "https://thingspace.verizon.com/x"))
    assert len(transport.requests) == 1  # the record stays readable


async def test_reset_forgets_answers_and_requests() -> None:
    transport = ScriptedTransport()
    transport.respond(200, json={"url": URL}, times=2)
    async with client_on(transport) as client:
        await client.v2.list_registered_callbacks(ACCOUNT)
    transport.reset()
    assert transport.requests == []
    assert transport.pending == []
    transport.assert_all_consumed()


@pytest.mark.parametrize(
    ("call", "parameter"),
    [
        (lambda t: t.respond(600), "status_code"),
        (lambda t: t.respond(True), "status_code"),
        (lambda t: t.respond(200, json={}, content=b"x"), "json"),
        (lambda t: t.respond(200, content="text"), "content"),
        (lambda t: t.add(200), "response"),
        (lambda t: t.respond(200, times=0), "times"),
        (lambda t: t.drop(times=1.5), "times"),
        (lambda t: t.respond(200, delay=-1), "delay"),
        (lambda t: t.respond(200, delay=float("nan")), "delay"),
        (lambda t: t.hang(method="GET /x"), "method"),
        (lambda t: t.drop(path="api/x"), "path"),
        (lambda t: t.drop(sent="yes"), "sent"),
    ],
)
async def test_bad_arguments_name_the_parameter(call: Any, parameter: str) -> None:
    transport = ScriptedTransport()
    with pytest.raises(fota.InvalidArgumentError) as caught:
        call(transport)
    assert caught.value.parameter == parameter
    assert transport.pending == []


# -- over real HTTP ------------------------------------------------------------------------------------------


async def test_the_same_script_served_over_http() -> None:
    script = ScriptedTransport()
    script.drop()
    script.respond(200, json={"url": URL}, headers={"x-request-id": "req-9"}, path=V2_PATH)
    with serve(script) as base_url:
        async with client_on(fota.HttpxTransport(), base_url) as client:
            response = await client.v2.with_raw_response.list_registered_callbacks(ACCOUNT)
    assert (response.data.url, response.request_id, response.retries_taken) == (URL, "req-9", 1)
    dropped, answered = script.requests
    assert dropped.url == answered.url == f"{base_url}{V2_PATH}"
    assert answered.headers["authorization"] == f"Bearer {STATIC_TOKEN}"
    script.assert_all_consumed()


async def test_over_http_a_drop_before_sending_cannot_be_acted_out_and_says_so() -> None:
    # The server saw the request, so it was sent: rather than a broken connection with request_sent=True (the
    # opposite of what was scripted), the call fails at once with the reason, and so does the end-of-test check.
    script = ScriptedTransport()
    script.drop(sent=False, path=V2_PATH)
    with serve(script) as base_url:
        async with client_on(fota.HttpxTransport(), base_url) as client:
            with pytest.raises(fota.ApiError) as caught:
                await client.v2.list_registered_callbacks(ACCOUNT)
    assert not isinstance(caught.value, fota.ApiConnectionError)
    assert caught.value.status_code == 501
    assert b"drop(sent=False) cannot be acted out over HTTP" in caught.value.body
    assert len(script.requests) == 1  # not retried
    with pytest.raises(AssertionError, match=r"drop\(sent=False\) cannot be acted out over HTTP.*GET " + V2_PATH):
        script.assert_all_consumed()
    script.reset()
    script.assert_all_consumed()


async def test_over_http_a_response_is_sent_chunked_when_it_says_so() -> None:
    script = ScriptedTransport()
    script.respond(200, json={"url": URL})
    script.respond(200, json={"url": URL}, headers={"Transfer-Encoding": "chunked"})
    with serve(script) as base_url:
        async with httpx.AsyncClient() as http:
            declared = await http.get(f"{base_url}{V2_PATH}")
            chunked = await http.get(f"{base_url}{V2_PATH}")
    assert declared.headers["content-length"] == str(len(declared.content))
    assert "transfer-encoding" not in declared.headers
    assert chunked.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in chunked.headers
    assert declared.json() == chunked.json() == {"url": URL}
