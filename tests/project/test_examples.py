"""examples/fastapi_app.py, run as its docstring says: under uvicorn, against `fota-callbacks fake-server`, each a
process of its own on a free port of 127.0.0.1, stopped by its process id."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import fota_callbacks as fota
from tests.support import ROOT
from tests.support.harness import free_port

ACCOUNT = "0000123456-00001"
USERNAME = "listener"
PASSWORD = "example-app-password"


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float = 30.0) -> None:
    """Until something accepts connections on `port` (uvicorn listens only once the app's startup is done)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"exited with {process.returncode}:\n{log.read_text(errors='replace')}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listening on {port} after {timeout} s:\n{log.read_text(errors='replace')}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def _start(command: list[str], env: dict[str, str], log: Path, port: int) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        _wait_for_port(port, process, log)
    except BaseException:
        _stop(process)
        raise
    return process


def _environment(**values: str) -> dict[str, str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("THINGSPACE_", "FOTA_LISTENER_", "FOTA_ACCOUNT", "FOTA_INBOX", "FOTA_ALLOWED"))
    }
    environment.update(values)
    return environment


@pytest.fixture
def fake_server(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    command = [sys.executable, "-m", "fota_callbacks", "fake-server", "--host", "127.0.0.1", "--port", str(port)]
    process = _start(command, _environment(), tmp_path / "fake-server.log", port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(process)


def _thingspace(base_url: str) -> dict[str, str]:
    """What fake-server says to export (it accepts any credentials)."""
    return {
        "THINGSPACE_BASE_URL": base_url,
        "THINGSPACE_CLIENT_ID": "example-client",
        "THINGSPACE_CLIENT_SECRET": "example-secret",
        "THINGSPACE_USERNAME": "example-user",
        "THINGSPACE_PASSWORD": "example-password",
    }


def _message(username: str, password: str) -> dict[str, object]:
    return {
        "type": "upgradeProgress",
        "accountName": ACCOUNT,
        "username": username,
        "password": password,
        "firmwareList": [],
    }


def _wait_for_line(log: Path, text: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace"):
        assert time.monotonic() < deadline, f"{text!r} not logged:\n{log.read_text(errors='replace')}"
        time.sleep(0.05)


def test_the_example_app_registers_itself_and_accepts_only_its_credentials(fake_server: str, tmp_path: Path) -> None:
    port = free_port()
    listener_url = f"http://127.0.0.1:{port}/fota/callbacks"
    env = _environment(
        **_thingspace(fake_server),
        FOTA_LISTENER_USERNAME=USERNAME,
        FOTA_LISTENER_PASSWORD=PASSWORD,
        FOTA_LISTENER_URL=listener_url,
        FOTA_INBOX=str(tmp_path / "inbox.db"),
    )
    log = tmp_path / "app.log"
    command = [sys.executable, "-m", "uvicorn", "examples.fastapi_app:app", "--host", "127.0.0.1", "--port", str(port)]
    app = _start(command, env, log, port)
    try:
        # Startup registered this listener, with its credentials, on the fake ThingSpace.
        async def registered() -> list[fota.RegisteredCallbacks]:
            async with fota.FotaCallbacksClient(
                base_url=fake_server, client_id="test", client_secret="test", username="test", password="test"
            ) as client:
                return await client.v1.list_registered_callbacks(ACCOUNT)

        [callback] = anyio.run(registered)
        assert (callback.url, callback.username) == (listener_url, USERNAME)
        assert "callback for 0000123456-00001 registered" in log.read_text()

        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
            wrong = http.post("/fota/callbacks", content=json.dumps(_message(USERNAME, "guessed")))
            assert wrong.status_code == 401
            assert "upgradeProgress message" not in log.read_text()

            right = http.post("/fota/callbacks", content=json.dumps(_message(USERNAME, PASSWORD)))
            assert right.status_code == 200
            _wait_for_line(log, f"upgradeProgress message for account {ACCOUNT}")

            assert http.get("/registration").json() == {"account": ACCOUNT, "urls": [listener_url]}

        # The newcomer's loop: the fake delivers to the URL registered at startup, echoing its credentials.
        trigger = subprocess.run(
            [
                sys.executable,
                "-m",
                "fota_callbacks",
                "trigger",
                "firmwareList",
                "--account",
                ACCOUNT,
                "--set",
                "toVersion=9.9",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert trigger.returncode == 0, trigger.stdout + trigger.stderr
        assert "listener answered 200" in trigger.stdout
        _wait_for_line(log, f"firmwareList message for account {ACCOUNT}")
        _wait_for_line(log, "-> 9.9")  # the handler's line for each firmware offered
    finally:
        _stop(app)
    assert PASSWORD not in log.read_text()


def _run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_the_example_app_refuses_to_start_without_credentials(tmp_path: Path) -> None:
    env = _environment(**_thingspace("http://127.0.0.1:9"), FOTA_INBOX=str(tmp_path / "inbox.db"))
    outcome = _run_python("import examples.fastapi_app", env)
    assert outcome.returncode == 1
    assert "set FOTA_LISTENER_USERNAME and FOTA_LISTENER_PASSWORD" in outcome.stderr
    assert "Traceback" not in outcome.stderr
    assert not (tmp_path / "inbox.db").exists()


def test_the_example_app_starts_without_credentials_only_when_told_it_is_insecure(tmp_path: Path) -> None:
    env = _environment(FOTA_LISTENER_INSECURE="1", FOTA_INBOX=str(tmp_path / "inbox.db"))
    outcome = _run_python("import examples.fastapi_app as example; print(example.USERNAME, example.PASSWORD)", env)
    assert outcome.returncode == 0, outcome.stderr
    assert outcome.stdout.split() == ["None", "None"]


def _scrape(http: httpx.Client) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """`GET /metrics`, parsed as Prometheus parses it: (sample name, labels) -> value."""
    answer = http.get("/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            labels = frozenset((key, value) for key, value in sample.labels.items() if not key.startswith("otel_"))
            samples[(sample.name, labels)] = sample.value
    return samples


def _total(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include these."""
    wanted = set(labels.items())
    return sum(value for (found, have), value in samples.items() if found == name and wanted <= have)


def test_the_example_app_serves_prometheus_metrics_while_callbacks_flow(fake_server: str, tmp_path: Path) -> None:
    port = free_port()
    env = _environment(
        **_thingspace(fake_server),
        FOTA_LISTENER_USERNAME=USERNAME,
        FOTA_LISTENER_PASSWORD=PASSWORD,
        FOTA_LISTENER_URL=f"http://127.0.0.1:{port}/fota/callbacks",
        FOTA_INBOX=str(tmp_path / "inbox.db"),
    )
    log = tmp_path / "app.log"
    command = [sys.executable, "-m", "uvicorn", "examples.fastapi_app:app", "--host", "127.0.0.1", "--port", str(port)]
    app = _start(command, env, log, port)
    sent = 40
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            scrapes = []
            for n in range(sent):  # a scrape between callbacks, every tenth one
                answer = http.post("/fota/callbacks", content=json.dumps({**_message(USERNAME, PASSWORD), "n": n}))
                assert answer.status_code == 200
                if n % 10 == 0:
                    scrapes.append(_scrape(http))
            assert http.post("/fota/callbacks", content=b"[]").status_code == 400
            deadline = time.monotonic() + 30
            while _total(samples := _scrape(http), "fota_inbox_handled_total", fota_inbox_outcome="done") < sent:
                assert time.monotonic() < deadline, "the worker did not handle every callback in 30 s"
                time.sleep(0.2)
            text = http.get("/metrics").text
            assert http.get("/readyz").json() == {"status": "ready"}
    finally:
        _stop(app)

    stored = [_total(scrape, "fota_callbacks_received_total", fota_callback_outcome="stored") for scrape in scrapes]
    assert stored == sorted(stored)
    assert stored[0] < stored[-1]  # counted as they came
    assert _total(samples, "fota_callbacks_received_total", fota_callback_outcome="stored") == sent
    assert _total(samples, "fota_callbacks_received_total", fota_callback_outcome="refused") == 1
    assert _total(samples, "fota_inbox_handled_total", fota_callback_type="upgradeProgress") == sent
    assert _total(samples, "fota_inbox_handle_duration_seconds_count", fota_inbox_outcome="done") == sent
    # The registration at startup: ThingSpace calls (and the token and session requests), by template.
    assert _total(
        samples, "http_client_request_duration_seconds_count", url_template="/api/fota/v1/callbacks/{account}"
    )
    assert _total(samples, "http_client_request_duration_seconds_count", url_template="/api/ts/v1/oauth2/token") == 1
    # The gauges: the worker's housekeeping took the inbox's stats at least once.
    for gauge in (
        "fota_inbox_pending",
        "fota_inbox_in_flight",
        "fota_inbox_dead",
        "fota_inbox_oldest_pending_age_seconds",
    ):
        assert (gauge, frozenset()) in samples, gauge
    assert PASSWORD not in text
    assert ACCOUNT not in text  # templates, never the account


def test_the_example_app_runs_without_the_prometheus_exporter_and_then_serves_no_metrics(tmp_path: Path) -> None:
    env = _environment(FOTA_LISTENER_INSECURE="1", FOTA_INBOX=str(tmp_path / "inbox.db"))
    code = (
        "import sys\n"
        "sys.modules['opentelemetry.exporter.prometheus'] = None  # as if it were not installed\n"
        "import examples.fastapi_app as example\n"
        "from fastapi.testclient import TestClient\n"
        "http = TestClient(example.app)  # no lifespan: nothing is registered or run\n"
        "print(http.get('/metrics').status_code, http.get('/healthz').status_code)\n"
    )
    outcome = _run_python(code, env)
    assert outcome.returncode == 0, outcome.stderr
    assert outcome.stdout.split() == ["404", "200"]
    assert "no /metrics: pip install opentelemetry-sdk opentelemetry-exporter-prometheus" in outcome.stderr
