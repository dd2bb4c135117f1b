"""FakeThingSpace through the SDK: the lifecycle on each version, in-process and over HTTP, state inspection and
seeding, recording, and many concurrent tasks."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import anyio
import attrs
import httpx
import pytest

import fota_callbacks as fota
from fota_callbacks.testing import AccountCallbacks, FakeThingSpace, Fault, serve
from tests.support.fakes import Call, Connected, http_client

pytestmark = pytest.mark.anyio

ACCOUNT = "0000123456-00001"
OTHER_ACCOUNT = "0000654321-00002"
FOTA = fota.CallbackService.FOTA

# -- the lifecycle on each version -----------------------------------------------------------------------------


async def test_v1_lifecycle() -> None:
    fake = FakeThingSpace()
    listener = fota.RegisteredCallbacks(
        aname=ACCOUNT, name="Fota", url="http://listener.example:8080/fota", username="ts", password="s3cret"
    )
    async with fake.client() as client:
        assert await client.v1.list_registered_callbacks(ACCOUNT) == []

        registered = await client.v1.register_callback(
            ACCOUNT,
            fota.FotaV1CallbackRegistrationRequest(
                name=FOTA, url="http://listener.example:8080/fota", username="ts", password="s3cret"
            ),
        )
        assert registered == fota.FotaV1CallbackRegistrationResult(account_name=ACCOUNT, service_name="Fota")
        assert await client.v1.list_registered_callbacks(ACCOUNT) == [listener]
        assert fake.callbacks(ACCOUNT) == AccountCallbacks(v1={"Fota": listener})

        # Registering the same name again replaces the registration.
        await client.v1.register_callback(
            ACCOUNT, fota.FotaV1CallbackRegistrationRequest(name=FOTA, url="https://listener.example/v2")
        )
        replaced = fota.RegisteredCallbacks(aname=ACCOUNT, name="Fota", url="https://listener.example/v2")
        assert await client.v1.list_registered_callbacks(ACCOUNT) == [replaced]

        assert await client.v1.deregister_callback(ACCOUNT) == fota.FotaV1SuccessResult(success=True)
        assert await client.v1.list_registered_callbacks(ACCOUNT) == []
        assert fake.callbacks(ACCOUNT) == AccountCallbacks()


URL_VERSIONS: dict[str, tuple[Any, ...]] = {
    "v2": (
        fota.FotaV2CallbackRegistrationRequest,
        fota.CallbackSummary,
        fota.FotaV2CallbackRegistrationResult,
        fota.FotaV2SuccessResult,
    ),
    "v3": (
        fota.FotaV3CallbackRegistrationRequest,
        fota.FotaV3CallbackSummary,
        fota.FotaV3CallbackRegistrationResult,
        fota.FotaV3SuccessResult,
    ),
}


@pytest.mark.parametrize("version", ["v2", "v3"])
async def test_url_version_lifecycle(version: str) -> None:
    request_model, summary, result, success = URL_VERSIONS[version]
    fake = FakeThingSpace()
    async with fake.client() as client:
        api = getattr(client, version)
        assert await api.list_registered_callbacks(ACCOUNT) == summary(url=None)

        assert await api.register_callback(ACCOUNT, request_model(url="https://listener.example/a")) == result(
            url="https://listener.example/a"
        )
        assert await api.list_registered_callbacks(ACCOUNT) == summary(url="https://listener.example/a")
        assert getattr(fake.callbacks(ACCOUNT), version) == "https://listener.example/a"

        assert await api.update_callback(ACCOUNT, request_model(url="https://listener.example/b")) == result(
            url="https://listener.example/b"
        )
        assert await api.list_registered_callbacks(ACCOUNT) == summary(url="https://listener.example/b")

        # Register again replaces, too.
        await api.register_callback(ACCOUNT, request_model(url="https://listener.example/c"))
        assert getattr(fake.callbacks(ACCOUNT), version) == "https://listener.example/c"

        assert await api.deregister_callback(ACCOUNT) == success(success=True)
        assert await api.list_registered_callbacks(ACCOUNT) == summary(url=None)
        assert fake.callbacks(ACCOUNT) == AccountCallbacks()


async def test_versions_and_accounts_are_separate() -> None:
    fake = FakeThingSpace()
    async with fake.client() as client:
        await client.v2.register_callback(ACCOUNT, fota.FotaV2CallbackRegistrationRequest(url="https://a.example/v2"))
        await client.v3.register_callback(ACCOUNT, fota.FotaV3CallbackRegistrationRequest(url="https://a.example/v3"))
        await client.v3.register_callback(
            OTHER_ACCOUNT, fota.FotaV3CallbackRegistrationRequest(url="https://b.example/v3")
        )
        await client.v2.deregister_callback(ACCOUNT)
        assert await client.v3.list_registered_callbacks(ACCOUNT) == fota.FotaV3CallbackSummary(
            url="https://a.example/v3"
        )
        assert await client.v1.list_registered_callbacks(ACCOUNT) == []
    assert fake.callbacks(ACCOUNT) == AccountCallbacks(v3="https://a.example/v3")
    assert fake.callbacks(OTHER_ACCOUNT) == AccountCallbacks(v3="https://b.example/v3")


# -- the same script, in-process and over HTTP ---------------------------------------------------------------


async def lifecycle_script(client: fota.FotaCallbacksClient) -> list[object]:
    """Every operation of every version, successes and refusals; what each call gave, as a user sees it."""
    outcomes: list[object] = []

    async def run(call: Awaitable[object]) -> None:
        try:
            outcomes.append(await call)
        except fota.FotaResultException as exc:
            outcomes.append((type(exc).__name__, exc.status_code, exc.error_code))

    v1_request = fota.FotaV1CallbackRegistrationRequest(name=FOTA, url="http://l.example/1", username="u")
    await run(client.v1.list_registered_callbacks(ACCOUNT))
    await run(client.v1.register_callback(ACCOUNT, v1_request))
    await run(client.v1.list_registered_callbacks(ACCOUNT))
    await run(client.v1.deregister_callback(ACCOUNT))
    await run(client.v1.deregister_callback(ACCOUNT))
    await run(client.v2.list_registered_callbacks(ACCOUNT))
    await run(client.v2.update_callback(ACCOUNT, fota.FotaV2CallbackRegistrationRequest(url="https://l.example/2")))
    await run(client.v2.register_callback(ACCOUNT, fota.FotaV2CallbackRegistrationRequest(url="https://l.example/2")))
    await run(client.v2.update_callback(ACCOUNT, fota.FotaV2CallbackRegistrationRequest(url="https://l.example/3")))
    await run(client.v2.list_registered_callbacks(ACCOUNT))
    await run(client.v3.register_callback(ACCOUNT, fota.FotaV3CallbackRegistrationRequest(url="https://l.example/4")))
    await run(client.v3.deregister_callback(ACCOUNT))
    await run(client.v3.deregister_callback(ACCOUNT))
    await run(client.v3.list_registered_callbacks(ACCOUNT))
    raw = await client.v2.with_raw_response.list_registered_callbacks(ACCOUNT)
    outcomes.append((raw.status_code, raw.headers.get("content-type"), raw.data, raw.retries_taken))
    return outcomes


EXPECTED_SCRIPT_OUTCOMES: list[object] = [
    [],
    fota.FotaV1CallbackRegistrationResult(account_name=ACCOUNT, service_name="Fota"),
    [fota.RegisteredCallbacks(aname=ACCOUNT, name="Fota", url="http://l.example/1", username="u")],
    fota.FotaV1SuccessResult(success=True),
    ("FotaV1ResultException", 400, "CallbackNotFound"),
    fota.CallbackSummary(url=None),
    ("FotaV2ResultException", 400, "CallbackNotFound"),
    fota.FotaV2CallbackRegistrationResult(url="https://l.example/2"),
    fota.FotaV2CallbackRegistrationResult(url="https://l.example/3"),
    fota.CallbackSummary(url="https://l.example/3"),
    fota.FotaV3CallbackRegistrationResult(url="https://l.example/4"),
    fota.FotaV3SuccessResult(success=True),
    ("FotaV3ResultException", 400, "CallbackNotFound"),
    fota.FotaV3CallbackSummary(url=None),
    (200, "application/json", fota.CallbackSummary(url="https://l.example/3"), 0),
]


@pytest.mark.parametrize("mode", ["in-process", "http"])
async def test_same_script_same_results_in_process_and_over_http(mode: str) -> None:
    fake = FakeThingSpace()
    if mode == "in-process":
        async with fake.client() as client:
            assert await lifecycle_script(client) == EXPECTED_SCRIPT_OUTCOMES
    else:
        with serve(fake) as base_url:
            async with http_client(base_url) as client:
                assert await lifecycle_script(client) == EXPECTED_SCRIPT_OUTCOMES
    assert fake.callbacks(ACCOUNT) == AccountCallbacks(v2="https://l.example/3")
    seen = [(r.method, r.path, r.version, r.operation) for r in fake.requests]
    assert seen[:3] == [
        ("POST", "/api/ts/v1/oauth2/token", "oauth", "token"),
        ("POST", "/api/m2m/v1/session/login", "m2m", "login"),
        ("GET", f"/api/fota/v1/callbacks/{ACCOUNT}", "v1", "list_registered_callbacks"),
    ]
    assert ("DELETE", f"/api/fota/v1/callbacks/{ACCOUNT}/name/Fota", "v1", "deregister_callback") in seen
    assert len(seen) == 2 + len(EXPECTED_SCRIPT_OUTCOMES)


@pytest.mark.parametrize(
    ("call", "error"),
    [
        pytest.param(lambda client: client.v1.deregister_callback(ACCOUNT), fota.FotaV1ResultException, id="v1"),
        pytest.param(
            lambda client: client.v2.update_callback(ACCOUNT, fota.FotaV2CallbackRegistrationRequest(url="https://l")),
            fota.FotaV2ResultException,
            id="v2-update",
        ),
        pytest.param(lambda client: client.v2.deregister_callback(ACCOUNT), fota.FotaV2ResultException, id="v2"),
        pytest.param(
            lambda client: client.v3.update_callback(ACCOUNT, fota.FotaV3CallbackRegistrationRequest(url="https://l")),
            fota.FotaV3ResultException,
            id="v3-update",
        ),
        pytest.param(lambda client: client.v3.deregister_callback(ACCOUNT), fota.FotaV3ResultException, id="v3"),
    ],
)
async def test_changing_nothing_is_the_versions_result_exception(
    connected: Connected, call: Call, error: type[fota.FotaResultException]
) -> None:
    async with connected.client() as client:
        with pytest.raises(error) as info:
            await call(client)
    assert info.value.status_code == 400
    assert info.value.error_code == "CallbackNotFound"
    assert info.value.error_message


# -- inspection, seeding, reset ----------------------------------------------------------------------------


async def test_seeded_state_is_what_the_api_lists() -> None:
    fake = FakeThingSpace()
    fake.seed(
        ACCOUNT,
        v1=[fota.FotaV1CallbackRegistrationRequest(name=FOTA, url="https://l.example/1", password="pw")],
        v2="https://l.example/2",
        v3="https://l.example/3",
    )
    async with fake.client() as client:
        assert await client.v1.list_registered_callbacks(ACCOUNT) == [
            fota.RegisteredCallbacks(aname=ACCOUNT, name="Fota", url="https://l.example/1", password="pw")
        ]
        assert await client.v2.list_registered_callbacks(ACCOUNT) == fota.CallbackSummary(url="https://l.example/2")
        assert await client.v3.list_registered_callbacks(ACCOUNT) == fota.FotaV3CallbackSummary(
            url="https://l.example/3"
        )

    # A snapshot of one fake seeds another.
    copy = FakeThingSpace()
    snapshot = fake.callbacks(ACCOUNT)
    copy.seed(ACCOUNT, v1=snapshot.v1, v2=snapshot.v2, v3=snapshot.v3)
    assert copy.callbacks(ACCOUNT) == snapshot


def test_snapshots_are_immutable_and_detached() -> None:
    fake = FakeThingSpace()
    fake.seed(ACCOUNT, v2="https://l.example/2")
    snapshot = fake.callbacks(ACCOUNT)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        snapshot.v2 = "https://elsewhere.example"  # type: ignore[misc]
    with pytest.raises(TypeError):
        snapshot.v1["Fota"] = fota.RegisteredCallbacks()  # type: ignore[index]
    fake.seed(ACCOUNT, v1=[fota.RegisteredCallbacks(name="Fota", url="http://l.example")], v2="https://l.example/b")
    assert snapshot == AccountCallbacks(v2="https://l.example/2")
    assert fake.callbacks(ACCOUNT).v1["Fota"] == fota.RegisteredCallbacks(
        aname=ACCOUNT, name="Fota", url="http://l.example"
    )


@pytest.mark.parametrize(
    "seed",
    [
        {"v2": "http://not-https.example"},
        {"v3": "https://"},
        {"v1": [fota.FotaV1CallbackRegistrationRequest(name=FOTA, url="ftp://l.example")]},
        {"v1": [fota.RegisteredCallbacks(url="https://l.example")]},  # no service name
    ],
)
def test_seed_refuses_what_the_api_would(seed: dict[str, Any]) -> None:
    fake = FakeThingSpace()
    with pytest.raises(fota.InvalidArgumentError):
        fake.seed(ACCOUNT, **seed)
    assert fake.callbacks(ACCOUNT) == AccountCallbacks()


def test_bad_account_is_refused_by_inspection() -> None:
    fake = FakeThingSpace()
    with pytest.raises(fota.InvalidArgumentError):
        fake.callbacks("12345")
    with pytest.raises(fota.InvalidArgumentError):
        fake.seed("0000123456-0001", v2="https://l.example")


async def test_reset_forgets_state_tokens_faults_and_recordings() -> None:
    fake = FakeThingSpace()
    fake.seed(ACCOUNT, v2="https://l.example/2")
    access_token, session = fake.issue_tokens()
    fake.inject(Fault.status(503), times=5)
    fake.reset()

    assert fake.callbacks(ACCOUNT) == AccountCallbacks()
    assert fake.requests == []
    assert fake.pending_faults() == []
    async with fake.client(access_token=access_token, m2m_token=session) as client:
        with pytest.raises(fota.AuthenticationError):
            await client.v2.list_registered_callbacks(ACCOUNT)
    async with fake.client() as client:
        assert await client.v2.list_registered_callbacks(ACCOUNT) == fota.CallbackSummary(url=None)


# -- recording -----------------------------------------------------------------------------------------------


async def test_requests_are_recorded_with_what_was_sent() -> None:
    fake = FakeThingSpace()
    async with fake.client() as client:
        await client.v2.register_callback(ACCOUNT, fota.FotaV2CallbackRegistrationRequest(url="https://l.example"))
        await client.v2.list_registered_callbacks(ACCOUNT)

    token, login, register, listing = fake.requests
    assert token.form == {"grant_type": "client_credentials"}
    assert token.json is None
    assert token.headers["content-type"] == "application/x-www-form-urlencoded"
    assert token.headers["authorization"].startswith("Basic ")
    assert login.json == {"username": "fake-username", "password": "fake-password"}
    assert login.form is None
    assert (register.method, register.version, register.operation, register.account) == (
        "POST",
        "v2",
        "register_callback",
        ACCOUNT,
    )
    assert register.json == {"url": "https://l.example"}
    assert register.content == b'{"url":"https://l.example"}'
    assert register.headers["content-type"] == "application/json"
    assert register.headers["authorization"].startswith("Bearer ")
    assert "vz-m2m-token" in register.headers
    assert listing.content == b""
    assert listing.json is None

    assert fake.requests_for(version="v2") == [register, listing]
    assert fake.requests_for(operation="login") == [login]
    assert fake.requests_for(version="v2", operation="list_registered_callbacks") == [listing]
    assert fake.requests_for(version="v3") == []
    with pytest.raises(ValueError, match="operation"):
        fake.requests_for(operation="list")  # type: ignore[arg-type]

    fake.clear_requests()
    assert fake.requests == []


async def test_recording_can_be_turned_off() -> None:
    fake = FakeThingSpace(record_requests=False)
    async with fake.client() as client:
        await client.v2.list_registered_callbacks(ACCOUNT)
    assert fake.requests == []


async def test_each_record_is_cleared_on_its_own() -> None:
    """`clear_requests`, `clear_faults` and `clear_deliveries` each forget their own record, and nothing else."""
    posted: list[bytes] = []

    def listener(request: httpx.Request) -> httpx.Response:
        posted.append(request.content)
        return httpx.Response(200, json={"ok": True})

    async with httpx.AsyncClient(transport=httpx.MockTransport(listener)) as http:
        fake = FakeThingSpace(delivery_client=http)
        async with fake.client() as client:
            await client.v2.register_callback(ACCOUNT, fota.FotaV2CallbackRegistrationRequest(url="https://l.example"))
        delivery = await fake.emit_upgrade_event(ACCOUNT, "upgradeFinished", version="v2")
        fake.inject(Fault.status(503), times=2)
        assert (fake.deliveries, len(fake.requests), len(fake.pending_faults())) == ([delivery], 3, 1)

        fake.clear_deliveries()
        assert (fake.deliveries, len(fake.requests), len(fake.pending_faults())) == ([], 3, 1)
        fake.clear_faults()
        assert (len(fake.requests), fake.pending_faults()) == (3, [])
        fake.clear_requests()
        assert fake.requests == []
        assert fake.callbacks(ACCOUNT).v2 == "https://l.example"  # the state is not a record: kept
        again = await fake.emit_upgrade_event(ACCOUNT, "upgradeFinished", version="v2")
    assert fake.deliveries == [again]
    assert len(posted) == 2


# -- many tasks at once --------------------------------------------------------------------------------------

CALLS_PER_TASK = 20
# 1,000 calls in-process; fewer over HTTP, where each call costs milliseconds on a small machine.
TASKS = {"in-process": 50, "http": 10}


async def test_concurrent_tasks_leave_consistent_state(connected: Connected) -> None:
    fake = connected.fake
    tasks_count = TASKS[connected.mode]
    clients = [connected.client() for _ in range(5)]

    async def worker(index: int) -> None:
        client = clients[index % len(clients)]
        own = f"{index:010d}-00001"
        for call in range(CALLS_PER_TASK // 4):
            url = f"https://listener.example/{index}/{call}"
            await client.v2.register_callback(own, fota.FotaV2CallbackRegistrationRequest(url=url))
            assert await client.v2.list_registered_callbacks(own) == fota.CallbackSummary(url=url)
            await client.v1.register_callback(
                ACCOUNT, fota.FotaV1CallbackRegistrationRequest(name=FOTA, url=f"http://shared.example/{index}")
            )
            listed = await client.v1.list_registered_callbacks(ACCOUNT)
            assert len(listed) == 1

    async with anyio.create_task_group() as tasks:
        for index in range(tasks_count):
            tasks.start_soon(worker, index)
    for client in clients:
        await client.aclose()

    for index in range(tasks_count):
        expected = f"https://listener.example/{index}/{CALLS_PER_TASK // 4 - 1}"
        assert fake.callbacks(f"{index:010d}-00001") == AccountCallbacks(v2=expected)
    # The shared account holds the registration the last register request made.
    last_v1 = fake.requests_for(version="v1", operation="register_callback")[-1]
    [shared] = fake.callbacks(ACCOUNT).v1.values()
    assert shared.url == last_v1.json["url"]
    assert len(fake.requests_for(version="v1")) + len(fake.requests_for(version="v2")) == tasks_count * CALLS_PER_TASK
    # Each client asked for one token and one session, however many of its tasks needed them at once.
    assert len(fake.requests_for(operation="token")) == len(clients)
    assert len(fake.requests_for(operation="login")) == len(clients)
