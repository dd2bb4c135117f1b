"""TLS and redirects: the default `HttpxTransport()` verifies certificates (a self-signed one is refused before
anything is sent), `verify=` trusts a given CA (a bundle path or an `ssl.SSLContext`), and a redirect is never
followed: credentials never reach another host.

The HTTPS servers are raw TLS sockets on 127.0.0.1 (tests/support/raw_server.py) with certificates from a trustme CA.
"""

from __future__ import annotations

import datetime
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import fota_callbacks as fota
from tests.support import figures
from tests.support.harness import ACCOUNT, STATIC_TOKEN, client_on
from tests.support.raw_server import RawServer, answer, http_response, serving

trustme = pytest.importorskip("trustme")

pytestmark = [pytest.mark.anyio, pytest.mark.stress]

OK = http_response(200, b'{"url": "https://listener.example.com/fota"}')


@pytest.fixture(scope="module")
def ca() -> Any:
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_bundle(ca: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tls") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


def server_context(ca: Any, *identities: str, **options: Any) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*(identities or ("127.0.0.1",)), **options).configure_cert(context)
    return context


@pytest.fixture
def https_server(ca: Any) -> Iterator[RawServer]:
    with serving(answer(OK), tls=server_context(ca)) as server:
        yield server


async def test_the_default_transport_refuses_a_self_signed_certificate(https_server: RawServer) -> None:
    async with client_on(fota.HttpxTransport(), https_server.base_url) as client:
        with pytest.raises(fota.ApiConnectionError) as info:
            await client.v2.list_registered_callbacks(ACCOUNT)
    assert type(info.value) is fota.ApiConnectionError
    assert f"(127.0.0.1:{https_server.port})" in str(info.value)
    assert "certificate verify failed: " in str(info.value)
    assert info.value.request_sent is False  # refused during the handshake: safe to retry, and retried
    assert info.value.retries_taken == 2
    assert https_server.connections == 3
    assert https_server.requests == []  # no request (and no token) ever reached the server


async def test_the_default_transport_trusts_certifis_bundle_as_of_its_first_connection(
    https_server: RawServer, ca_bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import certifi

    transport = fota.HttpxTransport()  # made before certifi's bundle is looked at: it is loaded when first needed
    monkeypatch.setattr(certifi, "where", lambda: str(ca_bundle))  # as if certifi shipped the test CA
    async with client_on(transport, https_server.base_url) as client:
        summary = await client.v2.list_registered_callbacks(ACCOUNT)
    assert summary.url == "https://listener.example.com/fota"


@pytest.mark.parametrize("form", ["bundle-path", "ssl-context"])
async def test_verify_trusts_a_given_ca(form: str, https_server: RawServer, ca_bundle: Path) -> None:
    verify: str | ssl.SSLContext = str(ca_bundle)
    if form == "ssl-context":
        verify = ssl.create_default_context(cafile=str(ca_bundle))
    async with client_on(fota.HttpxTransport(verify=verify), https_server.base_url) as client:
        summary = await client.v2.list_registered_callbacks(ACCOUNT)
    assert summary.url == "https://listener.example.com/fota"
    [head] = https_server.requests
    assert head.startswith(b"GET /api/fota/v2/callbacks/0000123456-00001 HTTP/1.1\r\n")
    assert f"Bearer {STATIC_TOKEN}".encode() in head
    figures.add("tls: certificate checks", cases=1)


@pytest.mark.parametrize(
    "case",
    ["other-host-name", "expired", "not-yet-valid"],
)
async def test_a_certificate_the_ca_did_not_issue_for_this_use_is_refused(case: str, ca: Any, ca_bundle: Path) -> None:
    now = datetime.datetime.now(datetime.timezone.utc)
    if case == "other-host-name":
        context = server_context(ca, "thingspace.verizon.com")
    elif case == "expired":
        context = server_context(
            ca, not_before=now - datetime.timedelta(days=10), not_after=now - datetime.timedelta(days=1)
        )
    else:
        context = server_context(
            ca, not_before=now + datetime.timedelta(days=1), not_after=now + datetime.timedelta(days=10)
        )
    with serving(answer(OK), tls=context) as server:
        async with client_on(fota.HttpxTransport(verify=str(ca_bundle)), server.base_url, max_retries=0) as client:
            with pytest.raises(fota.ApiConnectionError) as info:
                await client.v2.list_registered_callbacks(ACCOUNT)
    assert type(info.value) is fota.ApiConnectionError
    assert info.value.request_sent is False
    assert server.requests == []
    figures.add("tls: certificate checks", cases=1)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_a_redirect_is_an_error_and_the_other_host_receives_nothing(
    status: int, ca: Any, ca_bundle: Path
) -> None:
    with serving(answer(OK)) as elsewhere:
        redirect = http_response(
            status, b"", [("Location", f"{elsewhere.base_url}/steal"), ("Content-Length", "0")], reason="Moved"
        )
        with serving(answer(redirect), tls=server_context(ca)) as server:
            transport = fota.HttpxTransport(verify=str(ca_bundle))
            async with client_on(transport, server.base_url, max_retries=0) as client:
                with pytest.raises(fota.ApiError) as info:
                    await client.v2.register_callback(
                        ACCOUNT, fota.FotaV2CallbackRegistrationRequest(url="https://listener.example.com/fota")
                    )
    assert type(info.value) is fota.ApiError
    assert info.value.status_code == status
    assert info.value.headers["Location"] == f"{elsewhere.base_url}/steal"
    assert len(server.requests) == 1
    assert elsewhere.connections == 0  # the bearer and session tokens went nowhere else
    figures.add("tls: redirects refused", cases=1)


@pytest.mark.parametrize("endpoint", ["token", "login"])
async def test_a_redirected_token_or_login_request_sends_no_credentials_elsewhere(
    endpoint: str, ca: Any, ca_bundle: Path
) -> None:
    token = http_response(200, b'{"access_token": "issued-token", "token_type": "bearer", "expires_in": 3600}')
    with serving(answer(OK)) as elsewhere:
        redirect = http_response(302, b"", [("Location", f"{elsewhere.base_url}/steal")], reason="Found")
        step = iter([redirect] if endpoint == "token" else [token, redirect])
        with serving(lambda conn: answer(next(step))(conn), tls=server_context(ca)) as server:
            transport = fota.HttpxTransport(verify=str(ca_bundle))
            async with client_on(
                transport,
                server.base_url,
                max_retries=0,
                client_id="id",
                client_secret="the-client-secret",
                username="user",
                password="the-password",
            ) as client:
                with pytest.raises(fota.AuthenticationError if endpoint == "login" else fota.OAuthError) as info:
                    await client.v1.list_registered_callbacks(ACCOUNT)
    assert info.value.status_code == 302
    assert elsewhere.connections == 0  # neither the Basic credentials nor the password went there


async def test_a_client_you_pass_decides_about_proxies(
    https_server: RawServer, ca_bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The transport's own pool follows HTTPS_PROXY (tests/transports/test_limits.py); a client you pass is used as
    it is: this one ignores the environment, so the proxy sees nothing."""
    with serving(answer(OK)) as proxy:
        for variable in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "ALL_PROXY"):
            monkeypatch.setenv(variable, proxy.base_url)
        http = httpx.AsyncClient(verify=ssl.create_default_context(cafile=str(ca_bundle)), trust_env=False)
        async with http, client_on(fota.HttpxTransport(http), https_server.base_url) as client:
            await client.v2.list_registered_callbacks(ACCOUNT)
    assert proxy.connections == 0
    assert len(https_server.requests) == 1
