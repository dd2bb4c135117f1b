"""`fota-callbacks doctor URL` against servers on 127.0.0.1: TLS servers with trustme certificates (a private CA
given with --ca, a self-signed certificate, one expiring within 14 days, a wrong name, an unknown CA), a silent
port, a closed port, a name that does not resolve, plain http:// for each version, and a real callback receiver
that must neither store nor handle what doctor sends. Nothing reaches the internet: every URL is 127.0.0.1, and
the name that does not resolve is refused by a stand-in resolver before any DNS query.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import socket
import ssl
from pathlib import Path
from typing import Any

import anyio
import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi import FastAPI

import fota_callbacks as fota
from fota_callbacks.cli import main
from fota_callbacks.inbox import MemoryInbox
from fota_callbacks.integrations.fastapi import callback_router
from fota_callbacks.testing import serve
from tests.support.cli_process import cli
from tests.support.harness import free_port
from tests.support.raw_server import RawServer, answer, http_response, never_read, serving

NOW = datetime.datetime.now(datetime.timezone.utc)
DAY = datetime.timedelta(days=1)
METHOD_NOT_ALLOWED = http_response(405, b'{"detail":"Method Not Allowed"}', reason="Method Not Allowed")


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("doctor") / "private-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def issued(
    ca: trustme.CA,
    *names: str,
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
) -> ssl.SSLContext:
    """A server context with a certificate from `ca` for `names` (default 127.0.0.1)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate = ca.issue_cert(*(names or ("127.0.0.1",)), not_before=not_before, not_after=not_after)
    certificate.configure_cert(context)
    return context


def self_signed(tmp_path: Path) -> ssl.SSLContext:
    """A server context with a certificate for 127.0.0.1 that signs itself (no CA at all)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "listener.self-signed.test")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(days=1))
        .not_valid_after(NOW + datetime.timedelta(days=365))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "self-signed.pem", tmp_path / "self-signed.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert_path), str(key_path))
    return context


def doctor(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    """Run `fota-callbacks doctor ... --json`; its exit code and the checks by name (the JSON as printed)."""
    code = main(["doctor", *argv, "--json"])
    out, err = capsys.readouterr()
    assert err == ""
    assert out.count("\n") == 1
    report = json.loads(out)
    assert report["ok"] is (code == 0)
    names = [check["name"] for check in report["checks"]]
    assert len(names) == len(set(names))
    report["by_name"] = {check["name"]: check for check in report["checks"]}
    return code, report


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {check["name"]: check["status"] for check in report["checks"]}


def url_of(server: RawServer, path: str = "/fota/callbacks") -> str:
    return server.base_url + path


# --- certificates ---------------------------------------------------------------------------------------------


def test_a_good_certificate_from_a_ca_given_with_ca_passes(
    ca: trustme.CA, ca_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with serving(answer(METHOD_NOT_ALLOWED), tls=issued(ca)) as server:
        code, report = doctor(capsys, url_of(server), "--ca", ca_file)
    assert code == 0
    assert statuses(report) == {
        "url": "pass",
        "scheme": "pass",
        "port": "flag",  # a free port, not one ThingSpace delivers to
        "resolve": "pass",
        "address": "flag",  # loopback
        "connect": "pass",
        "tls": "pass",
        "certificate": "pass",
        "hostname": "pass",
        "expiry": "pass",
        "answer": "pass",
    }
    checks = report["by_name"]
    assert "127.0.0.1 is a loopback address" in checks["address"]["detail"]
    assert checks["port"]["detail"].startswith(f"{server.port} is not among the ports ThingSpace is published to")
    assert checks["answer"]["detail"].startswith("HTTP 405 Method Not Allowed to GET /fota/callbacks in ")
    assert checks["hostname"]["detail"] == "valid for 127.0.0.1"
    # Only one HTTP request reached the server: a GET without a body, nothing a listener would act on.
    [request] = server.requests
    lines = request.decode("ascii").split("\r\n")
    assert lines[0] == "GET /fota/callbacks HTTP/1.1"
    headers = {line.split(":", 1)[0].lower() for line in lines[1:]}
    assert headers == {"host", "user-agent", "accept", "connection"}
    assert f"Host: 127.0.0.1:{server.port}" in lines


def test_the_text_output_is_one_line_per_check(ca: trustme.CA, ca_file: str) -> None:
    with serving(answer(METHOD_NOT_ALLOWED), tls=issued(ca)) as server:
        done = cli("doctor", url_of(server), "--ca", ca_file)
    assert (done.returncode, done.stderr) == (0, "")
    lines = done.stdout.splitlines()
    assert [line.split()[:2] for line in lines[:-1]] == [
        ["pass", "url"],
        ["pass", "scheme"],
        ["flag", "port"],
        ["pass", "resolve"],
        ["flag", "address"],
        ["pass", "connect"],
        ["pass", "tls"],
        ["pass", "certificate"],
        ["pass", "hostname"],
        ["pass", "expiry"],
        ["pass", "answer"],
    ]
    assert lines[-1] == "none failed, 2 flagged (port, address): fine for tests; fix them for ThingSpace"


def test_a_self_signed_certificate_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with serving(answer(METHOD_NOT_ALLOWED), tls=self_signed(tmp_path)) as server:
        code, report = doctor(capsys, url_of(server))
    assert code == 1
    checks = report["by_name"]
    assert checks["certificate"]["status"] == "fail"
    assert checks["certificate"]["detail"].startswith("self-signed: ThingSpace refuses self-signed certificates")
    # Each point is judged on its own: this certificate's name and dates are fine.
    assert (checks["hostname"]["status"], checks["expiry"]["status"]) == ("pass", "pass")
    assert checks["answer"]["status"] == "pass"


def test_a_certificate_expiring_within_14_days_fails(
    ca: trustme.CA, ca_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    soon = NOW + datetime.timedelta(days=5, hours=12)
    with serving(answer(METHOD_NOT_ALLOWED), tls=issued(ca, not_after=soon)) as server:
        code, report = doctor(capsys, url_of(server), "--ca", ca_file)
    assert code == 1
    expiry = report["by_name"]["expiry"]
    assert expiry["status"] == "fail"
    assert expiry["detail"].startswith(f"expires in 5 days ({soon.date().isoformat()}): renew it now")
    assert [name for name, status in statuses(report).items() if status == "fail"] == ["expiry"]


def test_an_expired_certificate_for_another_name_fails_both(
    ca: trustme.CA, ca_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    expired = issued(ca, "other.example", not_before=NOW - datetime.timedelta(days=30), not_after=NOW - DAY)
    with serving(answer(METHOD_NOT_ALLOWED), tls=expired) as server:
        code, report = doctor(capsys, url_of(server), "--ca", ca_file)
    assert code == 1
    checks = report["by_name"]
    # Two problems at once, each reported, though OpenSSL stops at the first (the name).
    assert [name for name, status in statuses(report).items() if status == "fail"] == ["hostname", "expiry"]
    assert checks["certificate"]["status"] == "pass"
    assert checks["expiry"]["detail"] == "certificate has expired: renew the certificate"


def test_a_certificate_for_another_name_fails(ca: trustme.CA, ca_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    with serving(answer(METHOD_NOT_ALLOWED), tls=issued(ca, "listener.example.com")) as server:
        code, report = doctor(capsys, url_of(server), "--ca", ca_file)
    assert code == 1
    checks = report["by_name"]
    assert checks["hostname"]["status"] == "fail"
    assert checks["hostname"]["detail"] == "not valid for 127.0.0.1: get a certificate that names 127.0.0.1"
    assert (checks["certificate"]["status"], checks["expiry"]["status"]) == ("pass", "pass")


def test_a_certificate_from_an_unknown_ca_fails_without_ca(ca: trustme.CA, capsys: pytest.CaptureFixture[str]) -> None:
    with serving(answer(METHOD_NOT_ALLOWED), tls=issued(ca)) as server:
        code, report = doctor(capsys, url_of(server))
    assert code == 1
    certificate = report["by_name"]["certificate"]
    assert certificate["status"] == "fail"
    assert certificate["detail"].startswith("does not chain to a public CA (unable to get local issuer certificate)")
    assert [name for name, status in statuses(report).items() if status == "fail"] == ["certificate"]


def test_a_ca_file_that_cannot_be_read_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["doctor", "https://127.0.0.1:8443/fota", "--ca", str(tmp_path / "missing.pem")])
    _, err = capsys.readouterr()
    assert code == 2
    assert err.startswith("fota-callbacks: error: --ca: cannot load ")
    assert err.count("\n") == 1


# --- reaching the listener ------------------------------------------------------------------------------------


def test_a_silent_port_fails_the_5_s_answer_check(
    ca: trustme.CA, ca_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The TLS handshake completes, then the server never answers: the answer check gives up after 5 s."""
    with serving(never_read(), tls=issued(ca)) as server:
        code, report = doctor(capsys, url_of(server), "--ca", ca_file)
    assert code == 1
    answer_check = report["by_name"]["answer"]
    assert answer_check["status"] == "fail"
    assert answer_check["detail"].startswith("no answer to GET /fota/callbacks within 5 s")
    assert report["by_name"]["certificate"]["status"] == "pass"


def test_a_port_that_never_speaks_tls_fails_the_handshake(capsys: pytest.CaptureFixture[str]) -> None:
    with serving(never_read()) as server:
        code, report = doctor(capsys, f"https://127.0.0.1:{server.port}/fota")
    assert code == 1
    assert report["checks"][-1] == {
        "name": "tls",
        "status": "fail",
        "detail": f"no TLS handshake with 127.0.0.1:{server.port} (nothing within 5 s): serve TLS on this port",
    }


def test_a_closed_port_fails_the_connection(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    code, report = doctor(capsys, f"https://127.0.0.1:{port}/fota")
    assert code == 1
    assert report["checks"][-1] == {
        "name": "connect",
        "status": "fail",
        "detail": f"no connection to 127.0.0.1:{port} (connection refused: nothing listens there): start the "
        f"listener, or open port {port} to it",
    }


@pytest.fixture
def resolver_without_invalid(monkeypatch: pytest.MonkeyPatch) -> None:
    """The system resolver, except that names under .invalid (RFC 6761: never resolve) fail at once, without a
    DNS query leaving the machine."""
    system = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return system(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.mark.usefixtures("resolver_without_invalid")
def test_a_name_that_does_not_resolve_fails(capsys: pytest.CaptureFixture[str]) -> None:
    code, report = doctor(capsys, "https://listener.doctor.invalid/fota")
    assert code == 1
    assert statuses(report) == {"url": "pass", "scheme": "pass", "port": "pass", "resolve": "fail"}
    assert report["by_name"]["resolve"]["detail"] == (
        "listener.doctor.invalid does not resolve (Name or service not known): publish a DNS record for it, "
        "ThingSpace looks it up"
    )


@pytest.mark.parametrize(("version", "code", "scheme"), [("1", 0, "pass"), ("2", 1, "fail"), ("3", 1, "fail")])
def test_http_is_for_v1_only(version: str, code: int, scheme: str, capsys: pytest.CaptureFixture[str]) -> None:
    with serving(answer(http_response(200, b'{"status":"ok"}'))) as server:
        exit_code, report = doctor(capsys, url_of(server), "--version", version)
    assert exit_code == code
    checks = report["by_name"]
    assert checks["scheme"]["status"] == scheme
    if scheme == "fail":
        assert checks["scheme"]["detail"].startswith(f"V{version} registers only https:// URLs")
    assert "tls" not in checks  # plain http: no handshake to check
    assert checks["answer"]["detail"].startswith("HTTP 200 OK to GET /fota/callbacks in ")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("listener.example.com/fota", "must be an absolute http:// or https:// URL"),
        ("https:///fota", "has no host"),
        ("https://listener.example.com/a b", "contains whitespace"),
        ("https://listener.example.com:0/fota", "port 0 is not a port a listener can be reached on"),
        ("https://listener.example.com:99999/fota", "is not a valid URL (malformed host or port)"),
    ],
)
def test_a_url_that_is_not_absolute_fails_first(url: str, problem: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = doctor(capsys, url)
    assert code == 1
    [check] = report["checks"]
    assert (check["name"], check["status"]) == ("url", "fail")
    assert problem in check["detail"]


def test_a_password_in_the_url_is_not_printed_back(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"https://listener:SENTINEL-DOCTOR-PASSWORD@127.0.0.1:{free_port()}/fota"
    code, report = doctor(capsys, url)
    assert code == 1
    assert report["url"] == url.replace("listener:SENTINEL-DOCTOR-PASSWORD", "***")
    assert "SENTINEL-DOCTOR-PASSWORD" not in json.dumps(report)
    main(["doctor", url])
    assert "SENTINEL-DOCTOR-PASSWORD" not in capsys.readouterr().out


def test_what_a_server_sends_is_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    forged = http_response(200, b"", reason="OK\x1b[2J\x1b]0;owned\x07")
    with serving(answer(forged)) as server:
        code = main(["doctor", url_of(server), "--version", "1"])
    out, _ = capsys.readouterr()
    assert code == 0
    assert "\x1b" not in out
    assert "\x07" not in out
    assert "HTTP 200 OK\\x1b[2J\\x1b]0;owned\\x07 to GET" in out


# --- what doctor sends is nothing a receiver acts on ----------------------------------------------------------


def test_a_callback_receiver_neither_stores_nor_handles_what_doctor_sends(capsys: pytest.CaptureFixture[str]) -> None:
    handled: list[fota.CallbackMessage] = []

    async def on_message(message: fota.CallbackMessage) -> None:
        handled.append(message)

    inbox = MemoryInbox()
    app = FastAPI()
    app.include_router(callback_router(on_message))
    app.include_router(callback_router(inbox=inbox), prefix="/stored")
    with serve(app) as base_url:
        code, inline = doctor(capsys, f"{base_url}/fota/callbacks", "--version", "1")
        _, stored = doctor(capsys, f"{base_url}/stored/fota/callbacks", "--version", "1")
    assert code == 0
    assert inline["by_name"]["answer"]["detail"].startswith("HTTP 405 Method Not Allowed to GET /fota/callbacks")
    assert stored["by_name"]["answer"]["detail"].startswith("HTTP 405 Method Not Allowed to GET /stored/fota")
    assert handled == []
    stats = anyio.run(inbox.stats)
    assert (stats.pending, stats.done, stats.dead) == (0, 0, 0)
