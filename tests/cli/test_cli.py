"""`fota-callbacks` end to end: every command against `fota-callbacks fake-server` on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from fota_callbacks._version import __version__
from fota_callbacks.cli import main
from tests.support.harness import free_port

SECRET = "SENTINEL-CLI-SECRET"
PASSWORD = "SENTINEL-CLI-PASSWORD"
CALLBACK_PASSWORD = "SENTINEL-CALLBACK-PASSWORD"


@pytest.fixture(scope="module")
def fake_server() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "fota_callbacks", "fake-server", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(base_url + "/", timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("fota-callbacks fake-server did not start") from None
                time.sleep(0.05)
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def env(fake_server: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    variables = {
        "THINGSPACE_BASE_URL": fake_server,
        "THINGSPACE_CLIENT_ID": "cli-client",
        "THINGSPACE_CLIENT_SECRET": SECRET,
        "THINGSPACE_USERNAME": "cli-user",
        "THINGSPACE_PASSWORD": PASSWORD,
    }
    monkeypatch.delenv("THINGSPACE_M2M_TOKEN", raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return {**os.environ, **variables}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    for secret in (SECRET, PASSWORD, CALLBACK_PASSWORD):
        assert secret not in out + err
    assert "Traceback" not in err
    return code, out, err


@pytest.mark.parametrize("version", ["v2", "v3"])
def test_url_callback_lifecycle_as_json(version: str, env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    account = "0000111111-00002" if version == "v2" else "0000111111-00003"
    url = f"https://listener.example.com/{version}"
    assert run(capsys, version, "register", account, "--url", url, "--json")[:2] == (
        0,
        json.dumps({"url": url}, indent=2) + "\n",
    )
    code, out, _ = run(capsys, version, "list", account, "--json")
    assert (code, json.loads(out)) == (0, {"url": url})
    code, out, _ = run(capsys, version, "update", account, "--url", url + "/new", "--json")
    assert (code, json.loads(out)) == (0, {"url": url + "/new"})
    code, out, _ = run(capsys, version, "deregister", account, "--json")
    assert (code, json.loads(out)) == (0, {"success": True})
    code, out, _ = run(capsys, version, "list", account, "--json")
    assert (code, json.loads(out)) == (0, {})


def test_v1_lifecycle_hides_the_callback_password(env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    account = "0000111111-00001"
    url = "http://listener.example.com/v1"
    code, out, _ = run(
        capsys, "v1", "register", account, "--url", url, "--username", "cb", "--password", CALLBACK_PASSWORD, "--json"
    )
    assert (code, json.loads(out)) == (0, {"accountName": account, "serviceName": "Fota"})
    code, out, _ = run(capsys, "v1", "list", account, "--json")
    assert code == 0
    assert json.loads(out) == [{"aname": account, "name": "Fota", "url": url, "username": "cb", "password": "***"}]
    code, out, _ = run(capsys, "v1", "list", account)
    assert code == 0
    assert url in out
    assert "password  ***" in out
    assert run(capsys, "v1", "deregister", account, "--json")[:2] == (0, '{\n  "success": true\n}\n')
    assert run(capsys, "v1", "list", account)[:2] == (0, "(none registered)\n")


def test_table_output_by_default(env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    account = "0000111111-00004"
    code, out, _ = run(capsys, "v2", "register", account, "--url", "https://listener.example.com/t")
    assert (code, out) == (0, "url  https://listener.example.com/t\n")


@pytest.mark.parametrize(
    ("argv", "exit_code", "message"),
    [
        (["v2", "list", "not-an-account"], 2, "account: 'not-an-account' is not an account identifier"),
        (["v2", "register", "0000111111-00005"], 2, "--url: register needs --url"),
        (["v2", "register", "0000111111-00005", "--url", "http://plain.example.com"], 2, "--url: 'http://plain"),
        (["v2", "list", "0000111111-00005", "--url", "https://x.example.com"], 2, "--url: list takes no --url"),
        (["v2", "update", "0000111111-00005", "--url", "https://x.example.com"], 1, "CallbackNotFound"),
        (["v3", "deregister", "0000111111-00005"], 1, "HTTP 400 from DELETE /api/fota/v3/callbacks/0000111111-00005"),
    ],
)
def test_errors_are_one_line_with_an_exit_code(
    argv: list[str], exit_code: int, message: str, env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == exit_code
    assert out == ""
    assert err.startswith("fota-callbacks: error: ")
    assert message in err
    assert err.count("\n") == 1


def test_missing_credentials_exit_3(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for name in list(os.environ):
        if name.startswith("THINGSPACE_"):
            monkeypatch.delenv(name)
    code, _, err = run(capsys, "v2", "list", "0000111111-00006")
    assert code == 3
    assert "THINGSPACE_CLIENT_ID" in err


def test_no_response_exits_4(env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    code, _, err = run(capsys, "v2", "list", "0000111111-00007", "--base-url", closed, "--max-retries", "0")
    assert code == 4
    assert "connection failed" in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["v1", "update", "0000111111-00008"])  # V1 has no update
    assert exit_info.value.code == 2
    assert "invalid choice: 'update'" in capsys.readouterr().err


def test_version_and_help_in_a_real_process() -> None:
    version = subprocess.run(
        [sys.executable, "-m", "fota_callbacks", "--version"], capture_output=True, text=True, check=True
    )
    assert version.stdout == f"fota-callbacks {__version__}\n"
    usage = subprocess.run(
        [sys.executable, "-m", "fota_callbacks", "--help"], capture_output=True, text=True, check=True
    )
    assert "examples:" in usage.stdout
    assert "fota-callbacks v2 register 0000123456-00001 --url https://example.com/fota" in usage.stdout


def test_demo_runs_the_lifecycle_offline() -> None:
    demo = subprocess.run(
        [sys.executable, "-m", "fota_callbacks", "demo"],
        capture_output=True,
        text=True,
        env={key: value for key, value in os.environ.items() if not key.startswith("THINGSPACE_")},
        timeout=60,
    )
    assert demo.returncode == 0, demo.stderr
    for version in ("V1", "V2", "V3"):
        assert f"\n{version}\n" in demo.stdout
    assert "update_callback     -> https://listener.example.com/fota/v3/updated" in demo.stdout
    # After each deregistration the list is empty (V2/V3: ThingSpace's empty body), said in words.
    assert demo.stdout.count("list                -> (none registered)") == 3
    assert "None" not in demo.stdout
    assert "POST /api/ts/v1/oauth2/token" in demo.stdout


def test_json_output_of_a_real_process(env: dict[str, str]) -> None:
    account = "0000111111-00009"
    done = subprocess.run(
        [sys.executable, "-m", "fota_callbacks", "v3", "register", account, "--url", "https://p.example.com", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"url": "https://p.example.com"}


@pytest.mark.parametrize("arguments", [("demo", "-v"), ("-v", "demo")], ids=["after", "before"])
def test_demo_verbose_shows_each_attempt(arguments: tuple[str, str]) -> None:
    demo = subprocess.run(
        [sys.executable, "-m", "fota_callbacks", *arguments],
        capture_output=True,
        text=True,
        env={key: value for key, value in os.environ.items() if not key.startswith("THINGSPACE_")},
        timeout=60,
    )
    assert demo.returncode == 0, demo.stderr
    attempts = demo.stderr.splitlines()
    assert attempts[0] == "fota-callbacks: POST /api/ts/v1/oauth2/token on thingspace.fake.invalid -> 200 (attempt 1)"
    assert (
        "fota-callbacks: GET /api/fota/v3/callbacks/0000123456-00001 on thingspace.fake.invalid -> 200 (attempt 1)"
        in attempts
    )
