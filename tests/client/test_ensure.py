"""`ensure_callback` (API.md "Keeping a registration in place"), against FakeThingSpace: the action it reports,
the exact requests it sends, and convergence when many callers run it at once."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import fota_callbacks as fota
from fota_callbacks.testing import FakeThingSpace, Fault
from tests.support.harness import no_wait

pytestmark = pytest.mark.anyio

ACCOUNT = "0000123456-00001"
URL = "https://listener.example.com/fota"
OTHER = "https://old.example.com/fota"
URL_VERSIONS = ["v2", "v3"]


def url_body(version: str, url: str = URL) -> Any:
    return (fota.FotaV2CallbackRegistrationRequest if version == "v2" else fota.FotaV3CallbackRegistrationRequest)(
        url=url
    )


def v1_body(url: str = URL, username: str | None = "listener") -> fota.FotaV1CallbackRegistrationRequest:
    return fota.FotaV1CallbackRegistrationRequest(
        name=fota.CallbackService.FOTA, url=url, username=username, password="s3cret"
    )


def sent(fake: FakeThingSpace, version: str) -> list[tuple[str, str | None]]:
    """The callbacks requests of `version` the fake received, as (method, operation)."""
    return [(r.method, r.operation) for r in fake.requests if r.version == version]


LIST = ("GET", "list_registered_callbacks")
REGISTER = ("POST", "register_callback")
UPDATE = ("PUT", "update_callback")


def seed_url(fake: FakeThingSpace, version: str, url: str) -> None:
    if version == "v2":
        fake.seed(ACCOUNT, v2=url)
    else:
        fake.seed(ACCOUNT, v3=url)


def registered(fake: FakeThingSpace, version: str) -> str | None:
    held = fake.callbacks(ACCOUNT)
    return held.v2 if version == "v2" else held.v3


@pytest.mark.parametrize("version", URL_VERSIONS)
async def test_url_versions_register_then_leave_alone_then_update(version: str) -> None:
    fake = FakeThingSpace()
    async with fake.client(sleep=no_wait) as client:
        controller = getattr(client, version)

        first = await controller.ensure_callback(ACCOUNT, url_body(version))
        assert first == fota.EnsureResult("registered", URL)
        assert sent(fake, version) == [LIST, REGISTER]

        fake.clear_requests()
        again = await controller.ensure_callback(ACCOUNT, url_body(version))
        assert again == fota.EnsureResult(action="unchanged", url=URL)
        assert sent(fake, version) == [LIST]  # no write

        seed_url(fake, version, OTHER)
        fake.clear_requests()
        moved = await controller.ensure_callback(ACCOUNT, url_body(version))
        assert (moved.action, moved.url) == ("updated", URL)
        assert sent(fake, version) == [LIST, UPDATE]
    assert registered(fake, version) == URL


async def test_v1_registers_when_missing_or_different_and_force_always_registers() -> None:
    fake = FakeThingSpace()
    async with fake.client(sleep=no_wait) as client:
        assert (await client.v1.ensure_callback(ACCOUNT, v1_body())).action == "registered"
        assert sent(fake, "v1") == [LIST, REGISTER]

        fake.clear_requests()
        assert (await client.v1.ensure_callback(ACCOUNT, v1_body())).action == "unchanged"
        assert sent(fake, "v1") == [LIST]

        fake.clear_requests()
        assert (await client.v1.ensure_callback(ACCOUNT, v1_body(username="other"))).action == "updated"
        assert sent(fake, "v1") == [LIST, REGISTER]
        assert fake.callbacks(ACCOUNT).v1["Fota"].username == "other"

        fake.clear_requests()
        assert (await client.v1.ensure_callback(ACCOUNT, v1_body(OTHER, "other"))).action == "updated"
        assert fake.callbacks(ACCOUNT).v1["Fota"].url == OTHER

        # The password is not listed back: a password change needs force, which registers without looking.
        fake.clear_requests()
        forced = await client.v1.ensure_callback(ACCOUNT, v1_body(OTHER, "other"), force=True)
        assert forced == fota.EnsureResult("registered", OTHER)
        assert sent(fake, "v1") == [REGISTER]


class StrictRegister:
    """FakeThingSpace behind a server that refuses a register when a URL is already there (400, as ThingSpace
    may), and that holds the first `hold` list requests until all of them arrived, so every caller sees the
    account empty and the registers race."""

    def __init__(self, fake: FakeThingSpace, version: str, hold: int = 0) -> None:
        self.fake, self.version, self.hold = fake, version, hold
        self.arrived = 0
        self.all_arrived = anyio.Event()

    async def __call__(self, request: fota.Request) -> fota.Response:
        path = f"/api/fota/{self.version}/callbacks/"
        if request.method == "POST" and path in request.url and registered(self.fake, self.version) is not None:
            body = b'{"errorCode":"CallbackAlreadyRegistered","errorMessage":"a callback is registered"}'
            return fota.Response(400, {"Content-Type": "application/json"}, body)
        response = await self.fake.handle(request)
        if request.method == "GET" and path in request.url and self.arrived < self.hold:
            self.arrived += 1  # answered (with nothing registered), but not handed back until all are
            if self.arrived == self.hold:
                self.all_arrived.set()
            await self.all_arrived.wait()
        return response


@pytest.mark.parametrize("version", URL_VERSIONS)
async def test_n_concurrent_callers_all_succeed_and_the_account_ends_with_the_url(version: str) -> None:
    callers = 12
    fake = FakeThingSpace()
    server = StrictRegister(fake, version, hold=callers)
    actions: list[str] = []
    async with fake.client(transport=fota.InMemoryTransport(server), sleep=no_wait) as client:
        controller = getattr(client, version)

        async def ensure() -> None:
            actions.append((await controller.ensure_callback(ACCOUNT, url_body(version))).action)

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                for _ in range(callers):
                    tg.start_soon(ensure)
    assert sorted(actions) == ["registered"] + ["unchanged"] * (callers - 1)
    assert registered(fake, version) == URL
    # Everyone listed and registered; the losers' refused register sent them to list once more.
    requests = sent(fake, version)
    assert requests.count(REGISTER) == 1  # the refused ones were answered before reaching the fake
    assert requests.count(LIST) == 2 * callers - 1


@pytest.mark.parametrize("version", URL_VERSIONS)
async def test_a_register_refused_because_another_url_arrived_meanwhile_ends_in_an_update(version: str) -> None:
    fake = FakeThingSpace()

    async def racing(request: fota.Request) -> fota.Response:
        if request.method == "POST" and f"/{version}/callbacks/" in request.url:
            seed_url(fake, version, OTHER)  # another replica, with another URL, got there first
            return fota.Response(400, {"Content-Type": "application/json"}, b'{"errorCode":"Exists"}')
        return await fake.handle(request)

    async with fake.client(transport=fota.InMemoryTransport(racing), sleep=no_wait) as client:
        result = await getattr(client, version).ensure_callback(ACCOUNT, url_body(version))
    assert result == fota.EnsureResult("updated", URL)
    assert sent(fake, version) == [LIST, LIST, UPDATE]  # the refused POST never reached the fake
    assert registered(fake, version) == URL


@pytest.mark.parametrize("version", URL_VERSIONS)
async def test_a_refusal_with_nothing_changed_is_raised(version: str) -> None:
    fake = FakeThingSpace()
    fake.inject(Fault.status(400), version=version, operation="register_callback")  # type: ignore[arg-type]
    async with fake.client(sleep=no_wait) as client:
        with pytest.raises(fota.FotaResultException) as caught:
            await getattr(client, version).ensure_callback(ACCOUNT, url_body(version))
    assert type(caught.value).__name__ == f"Fota{version.upper()}ResultException"
    assert caught.value.error_code == "InjectedFault"
    assert sent(fake, version) == [LIST, REGISTER, LIST]
    assert registered(fake, version) is None


@pytest.mark.parametrize(
    ("version", "account", "body", "parameter"),
    [
        ("v2", "12345", url_body("v2"), "account"),
        ("v3", ACCOUNT, url_body("v3", "http://listener.example.com/fota"), "body.url"),
        ("v3", ACCOUNT, url_body("v2"), "body"),
        ("v1", ACCOUNT, v1_body("ftp://listener.example.com/fota"), "body.url"),
    ],
)
async def test_input_is_checked_before_anything_is_sent(version: str, account: str, body: Any, parameter: str) -> None:
    fake = FakeThingSpace()
    async with fake.client(sleep=no_wait) as client:
        with pytest.raises(fota.InvalidArgumentError) as caught:
            await getattr(client, version).ensure_callback(account, body)
    assert caught.value.parameter == parameter
    assert fake.requests == []
