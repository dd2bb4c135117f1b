"""Faults injected into FakeThingSpace, as an SDK user sees them, in-process and over HTTP."""

from __future__ import annotations

import json

import anyio
import pytest

import fota_callbacks as fota
from fota_callbacks.testing import FakeThingSpace, Fault
from tests.support.fakes import Call, Connected
from tests.support.harness import no_wait

pytestmark = pytest.mark.anyio

ACCOUNT = "0000123456-00001"


async def test_503_is_server_error(connected: Connected) -> None:
    connected.fake.inject(Fault.status(503), version="v2")
    async with connected.client(max_retries=0) as client:
        with pytest.raises(fota.ServerError) as info:
            await client.v2.list_registered_callbacks(ACCOUNT)
        assert info.value.status_code == 503
        assert info.value.json() == {
            "errorCode": "InjectedFault",
            "errorMessage": "injected HTTP 503 Service Unavailable",
        }
        # Used up: the next call is answered.
        assert await client.v2.list_registered_callbacks(ACCOUNT) == fota.CallbackSummary(url=None)


async def test_429_with_retry_after_is_rate_limit_error(connected: Connected) -> None:
    connected.fake.inject(
        Fault.status(429, headers={"Retry-After": "7"}, body=b"slow down"), operation="register_callback"
    )
    async with connected.client(max_retries=0) as client:
        with pytest.raises(fota.RateLimitError) as info:
            await client.v3.register_callback(ACCOUNT, fota.FotaV3CallbackRegistrationRequest(url="https://l.example"))
    assert info.value.retry_after == 7
    assert info.value.body == b"slow down"
    assert connected.fake.callbacks(ACCOUNT).v3 is None


async def test_drop_is_connection_error(connected: Connected) -> None:
    connected.fake.inject(Fault.drop(), version="v1")
    async with connected.client(max_retries=0) as client:
        with pytest.raises(fota.ApiConnectionError) as info:
            await client.v1.list_registered_callbacks(ACCOUNT)
        assert not isinstance(info.value, fota.ApiTimeoutError)
        assert info.value.request_sent
        assert await client.v1.list_registered_callbacks(ACCOUNT) == []


async def test_delay_beyond_the_timeout_is_timeout_error(connected: Connected) -> None:
    connected.fake.inject(Fault.delay(1.0), operation="list_registered_callbacks")
    async with connected.client(max_retries=0, timeout=0.1) as client:
        # The token and login are not delayed; the listing is.
        with pytest.raises(fota.ApiTimeoutError):
            await client.v2.list_registered_callbacks(ACCOUNT)


async def test_delay_within_the_timeout_answers_normally(connected: Connected) -> None:
    connected.fake.seed(ACCOUNT, v2="https://l.example")
    connected.fake.inject(Fault.delay(0.05))
    async with connected.client(max_retries=0, timeout=5) as client:
        started = anyio.current_time()
        assert await client.v2.list_registered_callbacks(ACCOUNT) == fota.CallbackSummary(url="https://l.example")
        assert anyio.current_time() - started >= 0.05


@pytest.mark.parametrize(
    ("fault", "call"),
    [
        pytest.param(Fault.malformed(), lambda client: client.v2.list_registered_callbacks(ACCOUNT), id="not-json"),
        pytest.param(
            Fault.malformed(b'{"url": 42}'), lambda client: client.v3.list_registered_callbacks(ACCOUNT), id="url-type"
        ),
        pytest.param(
            Fault.malformed(b'{"success": "yes"}'), lambda client: client.v2.deregister_callback(ACCOUNT), id="bool"
        ),
        pytest.param(
            Fault.malformed(b"[1, 2]", status=201),
            lambda client: client.v1.list_registered_callbacks(ACCOUNT),
            id="v1-array-of-numbers",
        ),
    ],
)
async def test_malformed_is_response_validation_error(connected: Connected, fault: Fault, call: Call) -> None:
    async with connected.client(max_retries=0) as client:
        await client.v2.list_registered_callbacks(ACCOUNT)  # logged in: the fault is for the call below
        connected.fake.inject(fault)
        with pytest.raises(fota.ResponseValidationError) as info:
            await call(client)
    assert info.value.status_code == fault.status_code
    assert info.value.body == fault.body


@pytest.mark.parametrize("fault", [Fault.status(503), Fault.status(429, headers={"Retry-After": "0"}), Fault.drop()])
async def test_faults_within_the_retry_budget_are_retried_to_success(connected: Connected, fault: Fault) -> None:
    connected.fake.seed(ACCOUNT, v2="https://l.example")
    connected.fake.inject(fault, times=2, version="v2")
    async with connected.client(max_retries=2, sleep=no_wait) as client:
        raw = await client.v2.with_raw_response.list_registered_callbacks(ACCOUNT)
    assert raw.data == fota.CallbackSummary(url="https://l.example")
    assert raw.retries_taken == 2
    assert len(connected.fake.requests_for(version="v2")) == 3
    assert connected.fake.pending_faults() == []


async def test_faults_beyond_the_retry_budget_reach_the_caller() -> None:
    fake = FakeThingSpace()
    fake.inject(Fault.status(502), times=3, version="v2")
    async with fake.client(max_retries=2, sleep=no_wait) as client:
        with pytest.raises(fota.ServerError) as info:
            await client.v2.list_registered_callbacks(ACCOUNT)
    assert info.value.retries_taken == 2


async def test_faults_apply_before_auth_and_routing() -> None:
    fake = FakeThingSpace()
    fake.inject(Fault.status(503), times=2)
    unsigned = fota.Request("GET", f"https://h/api/fota/v2/callbacks/{ACCOUNT}")
    assert (await fake.handle(unsigned)).status_code == 503
    assert (await fake.handle(fota.Request("GET", "https://h/nowhere"))).status_code == 503
    assert (await fake.handle(unsigned)).status_code == 401
    assert [(r.version, r.operation) for r in fake.requests] == [
        ("v2", "list_registered_callbacks"),
        (None, None),
        ("v2", "list_registered_callbacks"),
    ]


async def test_faults_match_version_and_operation() -> None:
    fake = FakeThingSpace()
    fake.inject(Fault.status(500), version="v3", operation="deregister_callback")
    fake.inject(Fault.status(504), operation="token")
    async with fake.client(max_retries=0) as client:
        with pytest.raises(fota.OAuthError) as token_error:
            await client.v3.list_registered_callbacks(ACCOUNT)
        assert token_error.value.status_code == 504
        assert await client.v3.list_registered_callbacks(ACCOUNT) == fota.FotaV3CallbackSummary(url=None)
        await client.v2.register_callback(ACCOUNT, fota.FotaV2CallbackRegistrationRequest(url="https://l.example"))
        assert await client.v2.deregister_callback(ACCOUNT) == fota.FotaV2SuccessResult(success=True)  # not V3
        with pytest.raises(fota.ServerError) as info:
            await client.v3.deregister_callback(ACCOUNT)
        assert info.value.status_code == 500


async def test_earliest_matching_fault_goes_first() -> None:
    fake = FakeThingSpace()
    fake.inject(Fault.status(500))
    fake.inject(Fault.status(501), times=2)
    statuses = [(await fake.handle(fota.Request("GET", "https://h/x"))).status_code for _ in range(4)]
    assert statuses == [500, 501, 501, 404]


async def test_concurrent_requests_consume_each_fault_exactly_times() -> None:
    # Twenty requests in flight at once: five take the delay fault (an hour: still waiting at the end), five the
    # 503, ten are answered. A fault counted when its request ends instead of when it is taken, counted twice,
    # or handed to a request it does not match, changes these numbers (or leaves fewer than 15 answered).
    fake = FakeThingSpace()
    fake.seed(ACCOUNT, v2="https://l.example")
    access_token, session = fake.issue_tokens()
    fake.inject(Fault.delay(3600), times=5, version="v2")
    fake.inject(Fault.status(503), times=5, operation="list_registered_callbacks")
    fake.inject(Fault.status(500), times=5, version="v3")
    request = fota.Request(
        "GET",
        f"https://h/api/fota/v2/callbacks/{ACCOUNT}",
        {"Authorization": f"Bearer {access_token}", "VZ-M2M-Token": session},
    )
    answered: list[int] = []
    fifteen_answered = anyio.Event()

    async def call() -> None:
        answered.append((await fake.handle(request)).status_code)
        if len(answered) == 15:
            fifteen_answered.set()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tasks:
            for _ in range(20):
                tasks.start_soon(call)
            await fifteen_answered.wait()
            await anyio.wait_all_tasks_blocked()
            assert sorted(answered) == [200] * 10 + [503] * 5
            assert [(fault.kind, left) for fault, left in fake.pending_faults()] == [("status", 5)]  # the v3 one
            tasks.cancel_scope.cancel()
    assert len(fake.requests) == 20


async def test_drop_in_process_raises_connection_error_from_handle() -> None:
    fake = FakeThingSpace()
    fake.inject(Fault.drop())
    request = fota.Request("GET", f"https://h/api/fota/v2/callbacks/{ACCOUNT}")
    with pytest.raises(fota.ApiConnectionError) as info:
        await fake.handle(request)
    assert info.value.request_sent
    assert info.value.request is request
    assert len(fake.requests) == 1


async def test_clear_faults_and_pending_faults() -> None:
    fake = FakeThingSpace()
    fault = Fault.delay(3)
    fake.inject(fault, times=4, version="m2m")
    assert fake.pending_faults() == [(fault, 4)]
    fake.clear_faults()
    assert fake.pending_faults() == []


def test_fault_constructors_check_their_arguments() -> None:
    with pytest.raises(ValueError, match="status_code"):
        Fault.status(42)
    with pytest.raises(ValueError, match="seconds"):
        Fault.delay(-1)
    with pytest.raises(ValueError, match="status_code"):
        Fault.malformed(status=True)
    fake = FakeThingSpace()
    with pytest.raises(ValueError, match="times"):
        fake.inject(Fault.drop(), times=0)
    with pytest.raises(ValueError, match="version"):
        fake.inject(Fault.drop(), version="v4")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="operation"):
        fake.inject(Fault.drop(), operation="delete")  # type: ignore[arg-type]
    with pytest.raises(fota.InvalidArgumentError, match=r"^fault: expected a Fault"):
        fake.inject("drop")  # type: ignore[arg-type]


def test_status_fault_defaults_and_overrides() -> None:
    default = Fault.status(503).response()
    assert default.headers["content-type"] == "application/json"
    custom = Fault.status(500, headers={"Content-Type": "text/html", "X-Trace": "1"}, body=b"<h1>oops</h1>").response()
    assert (custom.status_code, custom.content) == (500, b"<h1>oops</h1>")
    assert custom.headers == {"Content-Type": "text/html", "X-Trace": "1"}
    assert json.loads(Fault.status(599).response().content) == {
        "errorCode": "InjectedFault",
        "errorMessage": "injected HTTP 599",
    }
