"""The developer's loop from a shell, each command a real process on 127.0.0.1: `fake-server`, `listen`, `trigger`,
and what every command shows while it works (`-v`, the waiting notice, errors naming the host, JSON errors)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from tests.support import ROOT
from tests.support.cli_process import ACCOUNT, clean_env, cli, fake_server, listener, running
from tests.support.harness import Scripted, free_port

CALLBACK_PASSWORD = "cb-password-never-printed"
PUBLIC_URL = "https://listener.example.com/fota"


def one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr
    assert stderr.count("\n") == 1, stderr
    assert stderr.startswith("fota-callbacks: error: "), stderr
    return stderr


# --- the whole loop -----------------------------------------------------------------------------------------------


def test_register_trigger_and_listen_through_a_redirect() -> None:
    with listener("--json") as (listen, listen_url):
        redirect = f"{PUBLIC_URL}={listen_url}"
        with fake_server("--redirect", redirect) as (server, env):
            assert server.lines["stdout"][0].startswith(f"# FakeThingSpace on {env['THINGSPACE_BASE_URL']};")
            assert {"THINGSPACE_CLIENT_ID", "THINGSPACE_CLIENT_SECRET", "THINGSPACE_USERNAME"} <= env.keys()
            assert "unset THINGSPACE_M2M_TOKEN" in server.stdout

            registered = cli("v2", "register", ACCOUNT, "--url", PUBLIC_URL, env=env)
            assert (registered.returncode, registered.stdout) == (0, f"url  {PUBLIC_URL}\n"), registered.stderr

            triggered = cli(
                "trigger",
                "upgradeProgress",
                "--account",
                ACCOUNT,
                "--set",
                "status=InProgress",
                "--set",
                "upgradeId=u-7",
                "--set",
                "deviceCount=3",
                "--set",
                'detail.counts={"ok": 2}',
                env=env,
            )
            assert triggered.returncode == 0, triggered.stderr
            assert triggered.stdout.splitlines() == [
                f"upgradeProgress for {ACCOUNT} (v2) -> {listen_url} (registered as {PUBLIC_URL})",
                'listener answered 200: {"status":"ok"}',
            ]

            printed = json.loads(listen.wait_for("stdout", lambda line: line.startswith("{")))
            server.wait_for("stderr", lambda line: line.endswith("POST /_fake/trigger 200"))

    assert printed["type"] == "upgradeProgress"
    assert printed["account"] == ACCOUNT
    message = printed["message"]
    assert message["status"] == "InProgress"
    assert message["deviceCount"] == 3
    assert message["detail"] == {"counts": {"ok": 2}}
    assert message["upgradeScheduled"]["upgradeId"] == "u-7"
    log = server.lines["stderr"]
    assert any(line.endswith(f"POST /api/fota/v2/callbacks/{ACCOUNT} 200") for line in log)
    assert any(f"delivered upgradeProgress for {ACCOUNT} to {listen_url}: 200" in line for line in log)


def test_v1_credentials_are_checked_and_never_printed() -> None:
    with (
        listener("--username", "cb", "--password", CALLBACK_PASSWORD) as (listen, listen_url),
        fake_server() as (server, env),
    ):
        register = ["v1", "register", ACCOUNT, "--url", listen_url, "--username", "cb"]
        assert cli(*register, "--password", CALLBACK_PASSWORD, env=env).returncode == 0
        listed = cli("v1", "list", ACCOUNT, "--json", env=env)
        assert json.loads(listed.stdout)[0]["password"] == "***"

        accepted = cli("trigger", "firmwareList", "--account", ACCOUNT, "--set", "toVersion=2.0", env=env)
        assert accepted.returncode == 0, accepted.stderr
        listen.wait_for("stdout", lambda line: line.endswith(f"firmwareList for {ACCOUNT} from 127.0.0.1"))
        listen.wait_for("stdout", lambda line: line.split() == ["password", "***"])
        listen.wait_for("stdout", lambda line: line.split()[0] == "firmwareList" and '"toVersion": "2.0"' in line)

        assert cli(*register, "--password", "wrong", env=env).returncode == 0
        refused = cli("trigger", "upgradeScheduled", "--account", ACCOUNT, "--version", "1", env=env)
        assert refused.returncode == 1
        assert "listener answered 401" in refused.stdout
        listen.wait_for("stderr", lambda line: line.endswith("wrong or missing username/password in the message (401)"))
    for process in (listen, server):
        assert CALLBACK_PASSWORD not in process.stdout + process.stderr


def test_listener_answers_what_it_cannot_take_and_keeps_running() -> None:
    with listener() as (listen, listen_url):
        base = listen_url.rsplit("/fota/callbacks", 1)[0]
        assert httpx.post(listen_url, content=b"not json").status_code == 400
        assert httpx.post(base + "/elsewhere", json={}).status_code == 404
        assert httpx.get(listen_url).status_code == 405
        answer = httpx.post(listen_url, json={"type": "upgradeFinished", "accountName": ACCOUNT, "x\u001b[2J": 1})
        assert answer.json() == {"status": "ok"}
        listen.wait_for("stdout", lambda line: "upgradeFinished for" in line)
        listen.wait_for("stdout", lambda line: line.split() == ["x\\x1b[2J", "1"])  # escaped: no terminal control
        listen.wait_for("stderr", lambda line: "refused a callback from 127.0.0.1" in line and "(400)" in line)


def test_listener_stops_quietly_when_its_reader_goes_away() -> None:
    """`fota-callbacks listen --json | head -n 1`: the listener ends once its output is closed."""
    port = free_port()
    listen = subprocess.Popen(
        [sys.executable, "-m", "fota_callbacks", "listen", "--port", str(port), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean_env(),
    )
    try:
        url = f"http://127.0.0.1:{port}/fota/callbacks"
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.post(url, json={"type": "upgradeFinished", "n": 1})
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the listener did not start"
                time.sleep(0.05)
        assert listen.stdout is not None
        assert json.loads(listen.stdout.readline())["message"]["n"] == 1
        listen.stdout.close()  # as `head -n 1` does
        httpx.post(url, json={"type": "upgradeFinished", "n": 2})
        assert listen.wait(timeout=20) == 0
        assert listen.stderr is not None
        assert b"Traceback" not in listen.stderr.read()
    finally:
        if listen.poll() is None:
            listen.terminate()
        listen.wait(timeout=10)
        for stream in (listen.stdout, listen.stderr):
            if stream is not None:
                stream.close()


# --- trigger's errors ---------------------------------------------------------------------------------------------


def test_trigger_errors_say_what_is_wrong() -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    nothing = cli("trigger", "upgradeProgress", "--account", ACCOUNT, "--base-url", closed)
    assert nothing.returncode == 4
    assert f"no fake-server answering at {closed}" in one_error_line(nothing.stderr)

    with fake_server() as (_, env), listener() as (_, listen_url):
        unregistered = cli("trigger", "upgradeProgress", "--account", ACCOUNT, env=env)
        assert unregistered.returncode == 1
        assert f"no callback is registered for account {ACCOUNT} (register one first" in unregistered.stderr

        cli("v1", "register", ACCOUNT, "--url", f"http://127.0.0.1:{free_port()}/gone", env=env)
        no_listener = cli("trigger", "upgradeProgress", "--account", ACCOUNT, env=env)
        assert no_listener.returncode == 1
        assert "the listener did not answer" in one_error_line(no_listener.stderr)

        cli("v3", "register", ACCOUNT, "--url", "https://v3.example.com/fota", env=env)
        ambiguous = cli("trigger", "upgradeProgress", "--account", ACCOUNT, "--json", env=env)
        assert ambiguous.returncode == 2
        assert json.loads(ambiguous.stderr)["error"].startswith(f"account {ACCOUNT} has callbacks on v1 and v3")

        bad_firmware = cli(
            "trigger", "firmwareList", "--account", ACCOUNT, "--version", "3", "--set", "firmwareList=[1]", env=env
        )
        assert bad_firmware.returncode == 2
        assert "firmware: expected Firmware models or JSON objects, got int" in one_error_line(bad_firmware.stderr)

        not_a_fake = cli("trigger", "firmwareList", "--account", ACCOUNT, "--base-url", listen_url.rsplit("/f", 1)[0])
        assert not_a_fake.returncode == 1
        assert "is not a fota-callbacks fake-server (POST /_fake/trigger answered 404)" in not_a_fake.stderr

    bad_set = cli("trigger", "firmwareList", "--account", ACCOUNT, "--set", "novalue")
    assert bad_set.returncode == 2
    assert "--set: expected KEY=VALUE" in one_error_line(bad_set.stderr)
    bad_account = cli("trigger", "firmwareList", "--account", "123")
    assert (bad_account.returncode, "--account: '123' is not an account identifier" in bad_account.stderr) == (2, True)


# --- servers: ports, --quiet, Ctrl-C, missing extras --------------------------------------------------------------


@pytest.mark.parametrize("command", ["fake-server", "listen"])
def test_a_bad_or_busy_port_is_one_line_and_exit_2(command: str) -> None:
    too_big = cli(command, "--port", "70000")
    assert too_big.returncode == 2
    assert "--port: expected a port number 0-65535 (0 picks a free one), got '70000'" in one_error_line(too_big.stderr)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        taken = cli(command, "--port", str(port))
    assert taken.returncode == 2
    assert f"127.0.0.1:{port}: address already in use" in one_error_line(taken.stderr)


def test_quiet_fake_server_logs_no_requests() -> None:
    with fake_server("--quiet") as (server, env):
        assert cli("v3", "list", ACCOUNT, env=env).stdout == "(none registered)\n"
        assert cli("v1", "list", ACCOUNT, env=env).stdout == "(none registered)\n"
        assert server.process.poll() is None
    assert server.stderr == ""


def test_ctrl_c_stops_quietly_with_130() -> None:
    with fake_server() as (server, _):
        server.process.send_signal(signal.SIGINT)
        assert server.process.wait(timeout=10) == 130
    assert "Traceback" not in server.stderr


def test_a_missing_extra_is_named_in_one_line() -> None:
    hide_uvicorn = "import sys; sys.modules['uvicorn'] = None; from fota_callbacks.cli import main; sys.exit(main())"
    done = subprocess.run(
        [sys.executable, "-c", hide_uvicorn, "listen", "--port", "0"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "listen needs uvicorn: pip install 'fota-callbacks[server]'" in one_error_line(done.stderr)


# --- never waiting blind -----------------------------------------------------------------------------------------

CREDENTIALS = {
    "THINGSPACE_CLIENT_ID": "id",
    "THINGSPACE_CLIENT_SECRET": "secret",
    "THINGSPACE_USERNAME": "user",
    "THINGSPACE_PASSWORD": "password",
}


def test_verbose_shows_each_attempt_and_retry_with_the_host(served_script: Scripted) -> None:
    host = served_script.base_url.removeprefix("http://")
    served_script.script.respond(503, json={})
    served_script.script.respond(400, json={"error": "invalid_client"})
    env = clean_env({**CREDENTIALS, "THINGSPACE_BASE_URL": served_script.base_url})
    done = cli("v2", "list", ACCOUNT, "-v", "--max-retries", "1", env=env)
    lines = done.stderr.splitlines()
    assert done.returncode == 1
    assert lines[0] == f"fota-callbacks: POST /api/ts/v1/oauth2/token on {host} -> 503 (attempt 1)"
    assert lines[1].startswith(f"fota-callbacks: POST /api/ts/v1/oauth2/token on {host} failed (HTTP 503); retry 1 in")
    assert lines[2] == f"fota-callbacks: POST /api/ts/v1/oauth2/token on {host} -> 400 (attempt 2)"
    assert lines[-1].startswith("fota-callbacks: error: ")
    assert lines[-1].endswith(f"(host {host})")


def test_a_slow_answer_is_announced(served_script: Scripted) -> None:
    served_script.script.hang()
    env = clean_env({**CREDENTIALS, "THINGSPACE_BASE_URL": served_script.base_url})
    host = served_script.base_url.removeprefix("http://")
    done = cli("v2", "list", ACCOUNT, "--timeout", "4", "--max-retries", "0", env=env)
    notice, error = done.stderr.splitlines()
    assert notice.startswith(f"fota-callbacks: still waiting for an answer to POST /api/ts/v1/oauth2/token from {host}")
    expected = f"fota-callbacks: error: timed out ({host}): no complete response within timeout=4.0 s"
    assert (done.returncode, error) == (4, expected)


def test_errors_name_the_host_and_are_json_with_json() -> None:
    closed = f"127.0.0.1:{free_port()}"
    env = clean_env({**CREDENTIALS, "THINGSPACE_BASE_URL": f"http://{closed}"})
    done = cli("v2", "list", ACCOUNT, "--max-retries", "0", "--json", env=env)
    assert done.returncode == 4
    error = json.loads(done.stderr)
    assert (error["exit_code"], error["host"]) == (4, closed)
    assert error["error"].startswith("connection failed")

    usage = cli("v2", "list", "not-an-account", "--json")
    assert usage.returncode == 2
    assert json.loads(usage.stderr)["error"].startswith("account: 'not-an-account' is not an account identifier")


def test_option_errors_are_exact() -> None:
    timeout = cli("v2", "list", ACCOUNT, "--timeout", "0")
    assert timeout.returncode == 2
    assert "argument --timeout: expected a positive number of seconds, got '0'" in one_error_line(timeout.stderr)
    assert "None" not in timeout.stderr
    v1_help = cli("v1", "--help")
    assert v1_help.returncode == 0
    assert "update" not in v1_help.stdout
    assert "{list,register,deregister}" in v1_help.stdout
    v1_update = cli("v1", "update", ACCOUNT)
    assert v1_update.returncode == 2
    assert "invalid choice: 'update'" in one_error_line(v1_update.stderr)


def test_an_interrupted_call_exits_130_quietly(served_script: Scripted) -> None:
    served_script.script.hang()
    env = clean_env({**CREDENTIALS, "THINGSPACE_BASE_URL": served_script.base_url})
    with running("v2", "list", ACCOUNT, env=env) as call:
        deadline = time.monotonic() + 20
        while not served_script.script.requests:  # the CLI is waiting for the answer
            assert time.monotonic() < deadline, "the CLI sent nothing"
            time.sleep(0.02)
        call.process.send_signal(signal.SIGINT)
        assert call.process.wait(timeout=10) == 130
    assert call.stderr == ""


# --- the README's shell steps, as written (on free ports) -----------------------------------------------------


def test_the_readme_shell_loop_runs_as_written() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### A local loop: fake-server, listen, trigger") :]
    script = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert script is not None
    steps = script.group(1).replace("8000", str(free_port())).replace("8080", str(free_port()))
    bash = subprocess.Popen(
        ["bash", "-c", "set -e\ntrap 'kill $(jobs -p) 2>/dev/null' EXIT\n" + steps],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tempfile.mkdtemp(),
        env=clean_env({"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}),
        start_new_session=True,  # its own process group: the servers it starts are stopped with it below
    )
    try:
        out, err = bash.communicate(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(bash.pid, signal.SIGTERM)
    assert bash.returncode == 0, err
    assert "listener answered 200" in out
    assert f"upgradeProgress for {ACCOUNT} from 127.0.0.1" in out
    assert re.search(r"^  status +InProgress$", out, re.MULTILINE), out


@pytest.mark.parametrize(
    ("variables", "error"),
    [
        ({}, "no OAuth credentials: set THINGSPACE_CLIENT_ID and THINGSPACE_CLIENT_SECRET;"),
        ({"THINGSPACE_CLIENT_ID": "id"}, "THINGSPACE_CLIENT_SECRET is not set;"),
        (
            {"THINGSPACE_CLIENT_ID": "id", "THINGSPACE_CLIENT_SECRET": "s"},
            "no M2M session credentials: set THINGSPACE_USERNAME and THINGSPACE_PASSWORD (or THINGSPACE_M2M_TOKEN);",
        ),
    ],
)
def test_missing_credentials_name_the_variables(variables: dict[str, str], error: str) -> None:
    done = cli("v2", "list", ACCOUNT, env=clean_env(variables))
    assert done.returncode == 3
    line = one_error_line(done.stderr)
    assert line.startswith(f"fota-callbacks: error: {error}")
    assert line.endswith("for a local fake, export what `fota-callbacks fake-server` prints\n")


def test_a_bad_base_url_names_the_option_and_the_variable() -> None:
    for argv, env in (
        (["--base-url", "http://[::1"], clean_env()),
        ([], clean_env({"THINGSPACE_BASE_URL": "http://[::1"})),
    ):
        for command in (["v2", "list", ACCOUNT], ["trigger", "upgradeProgress", "--account", ACCOUNT]):
            done = cli(*command, *argv, env=env)
            assert done.returncode == 2
            assert one_error_line(done.stderr) == (
                "fota-callbacks: error: --base-url (or THINGSPACE_BASE_URL): "
                "'http://[::1' is not a valid URL (malformed host or port)\n"
            )
