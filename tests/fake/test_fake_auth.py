"""FakeThingSpace checks credentials like ThingSpace: what an SDK user sees when they are missing, wrong,
expired, revoked or restricted."""

from __future__ import annotations

import pytest

import fota_callbacks as fota
from fota_callbacks.testing import FakeThingSpace

pytestmark = pytest.mark.anyio

ACCOUNT = "0000123456-00001"
PATH = f"/api/fota/v2/callbacks/{ACCOUNT}"


async def list_with(fake: FakeThingSpace, headers: dict[str, str]) -> fota.Response:
    return await fake.handle(fota.Request("GET", f"https://thingspace.verizon.com{PATH}", headers))


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Basic abc", "bearer unknown-token", "Bearer fake-at-not-issued"],
)
async def test_missing_or_unknown_bearer_token_is_401(authorization: str | None) -> None:
    fake = FakeThingSpace()
    _, session = fake.issue_tokens()
    headers = {"VZ-M2M-Token": session}
    if authorization is not None:
        headers["Authorization"] = authorization
    response = await list_with(fake, headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json"
    assert b'"error":"invalid_token"' in response.content  # the bearer token error of RFC 6750
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("session", [None, "", "fake-session-not-issued"])
async def test_missing_or_unknown_session_is_401(session: str | None) -> None:
    fake = FakeThingSpace()
    access_token, _ = fake.issue_tokens()
    headers = {"Authorization": f"Bearer {access_token}"}
    if session is not None:
        headers["VZ-M2M-Token"] = session
    response = await list_with(fake, headers)
    assert response.status_code == 401
    assert b'"errorCode":"UnauthorizedSession"' in response.content


async def test_static_tokens_from_issue_tokens_work_until_they_expire() -> None:
    fake = FakeThingSpace(token_lifetime=600)
    access_token, session = fake.issue_tokens()
    async with fake.client(access_token=access_token, m2m_token=session) as client:
        assert await client.v2.list_registered_callbacks(ACCOUNT) == fota.CallbackSummary(url=None)
        fake.advance(599)
        assert await client.v2.list_registered_callbacks(ACCOUNT) == fota.CallbackSummary(url=None)
        fake.advance(1)
        # A static token cannot be renewed: the 401 reaches the caller.
        with pytest.raises(fota.AuthenticationError) as info:
            await client.v2.list_registered_callbacks(ACCOUNT)
    assert info.value.status_code == 401
    assert info.value.json()["error"] == "invalid_token"
    assert "expired" in info.value.json()["error_description"]


async def test_unknown_static_session_is_authentication_error() -> None:
    fake = FakeThingSpace()
    access_token, _ = fake.issue_tokens()
    async with fake.client(access_token=access_token, m2m_token="made-up") as client:
        with pytest.raises(fota.AuthenticationError) as info:
            await client.v3.list_registered_callbacks(ACCOUNT)
    assert info.value.json()["errorCode"] == "UnauthorizedSession"


async def test_expired_token_is_renewed_by_the_client() -> None:
    fake = FakeThingSpace(token_lifetime=3600)
    async with fake.client() as client:
        await client.v2.list_registered_callbacks(ACCOUNT)
        fake.advance(3600)  # the fake's token expired; the client's own clock has not moved
        assert await client.v2.list_registered_callbacks(ACCOUNT) == fota.CallbackSummary(url=None)
    listings = fake.requests_for(operation="list_registered_callbacks")
    assert len(listings) == 3  # the first call, the refused one, its retry with a new token
    assert len(fake.requests_for(operation="token")) == 2


async def test_revoked_tokens_are_renewed_by_the_client() -> None:
    fake = FakeThingSpace()
    async with fake.client() as client:
        await client.v2.register_callback(ACCOUNT, fota.FotaV2CallbackRegistrationRequest(url="https://l.example"))
        fake.revoke_tokens()
        assert await client.v2.list_registered_callbacks(ACCOUNT) == fota.CallbackSummary(url="https://l.example")
    assert [r.operation for r in fake.requests] == [
        "token",
        "login",
        "register_callback",
        "list_registered_callbacks",  # refused: 401
        "token",
        "login",
        "list_registered_callbacks",
    ]
    first, second = fake.requests_for(operation="list_registered_callbacks")
    assert first.headers["authorization"] != second.headers["authorization"]
    assert first.headers["vz-m2m-token"] != second.headers["vz-m2m-token"]


async def test_revoked_static_tokens_are_final() -> None:
    fake = FakeThingSpace()
    access_token, session = fake.issue_tokens()
    fake.revoke_tokens()
    async with fake.client(access_token=access_token, m2m_token=session) as client:
        with pytest.raises(fota.AuthenticationError):
            await client.v1.list_registered_callbacks(ACCOUNT)


async def test_any_credentials_are_accepted_by_default() -> None:
    fake = FakeThingSpace()
    async with fake.client(client_id="anyone", client_secret="anything", username="who", password="ever") as client:
        assert await client.v1.list_registered_callbacks(ACCOUNT) == []


async def test_accept_only_refuses_wrong_client_credentials() -> None:
    fake = FakeThingSpace()
    fake.accept_only(client_id="my-app", client_secret="right")
    async with fake.client(client_secret="wrong") as client:
        with pytest.raises(fota.OAuthError) as info:
            await client.v2.list_registered_callbacks(ACCOUNT)
    assert info.value.error == "invalid_client"
    assert info.value.status_code == 401
    assert fake.requests_for(version="v2") == []  # nothing was sent without a token

    async with fake.client(client_id="someone-else", client_secret="right") as client:
        with pytest.raises(fota.OAuthError):
            await client.v2.list_registered_callbacks(ACCOUNT)

    # fake.client() logs in with the accepted credentials.
    async with fake.client() as client:
        assert await client.v2.list_registered_callbacks(ACCOUNT) == fota.CallbackSummary(url=None)
    assert fake.requests_for(operation="token")[-1].headers["authorization"] == "Basic bXktYXBwOnJpZ2h0"


async def test_accept_only_refuses_wrong_login() -> None:
    fake = FakeThingSpace()
    fake.accept_only(username="alice", password="right")
    async with fake.client(username="alice", password="wrong") as client:
        with pytest.raises(fota.SessionLoginError) as info:
            await client.v3.list_registered_callbacks(ACCOUNT)
    assert info.value.status_code == 400
    assert info.value.error_code == "InvalidCredentials"

    async with fake.client() as client:
        assert await client.v3.list_registered_callbacks(ACCOUNT) == fota.FotaV3CallbackSummary(url=None)
    assert fake.requests_for(operation="login")[-1].json == {"username": "alice", "password": "right"}


async def test_accept_only_scopes() -> None:
    fake = FakeThingSpace()
    fake.accept_only(scopes=["callbacks"])
    async with fake.client(scopes=["callbacks", "admin"]) as client:
        with pytest.raises(fota.OAuthError) as info:
            await client.v1.list_registered_callbacks(ACCOUNT)
    assert info.value.error == "invalid_scope"
    async with fake.client(scopes=["callbacks"]) as client:
        assert await client.v1.list_registered_callbacks(ACCOUNT) == []


async def test_accept_only_without_arguments_lifts_restrictions() -> None:
    fake = FakeThingSpace()
    fake.accept_only(client_id="a", client_secret="b", username="c", password="d")
    fake.accept_only()
    async with fake.client(client_id="x", client_secret="y", username="z", password="w") as client:
        assert await client.v2.list_registered_callbacks(ACCOUNT) == fota.CallbackSummary(url=None)


async def test_logout_on_close_ends_the_session() -> None:
    fake = FakeThingSpace()
    async with fake.client(logout_on_close=True) as client:
        await client.v2.list_registered_callbacks(ACCOUNT)
    [listing] = fake.requests_for(operation="list_registered_callbacks")
    [logout] = fake.requests_for(operation="logout")
    assert logout.headers["vz-m2m-token"] == listing.headers["vz-m2m-token"]
    response = await fake.handle(fota.Request("GET", f"https://thingspace.verizon.com{PATH}", listing.headers, b""))
    assert response.status_code == 401
    assert b"UnauthorizedSession" in response.content


def test_clock_and_lifetime_arguments() -> None:
    now = [100.0]
    fake = FakeThingSpace(clock=lambda: now[0])
    assert fake.now() == 100.0
    fake.advance(5)
    now[0] = 200.0
    assert fake.now() == 205.0
    assert FakeThingSpace().now() == 0.0
    with pytest.raises(ValueError, match="seconds"):
        fake.advance(-1)
    with pytest.raises(ValueError, match="token_lifetime"):
        FakeThingSpace(token_lifetime=0)
