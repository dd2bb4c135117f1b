"""What a newcomer hit on the command line, run as a user runs it (a `python -m fota_callbacks` process):

- what a server sends (an `errorMessage`, an OAuth `error_description`, a listed URL) reaches the terminal as one
  escaped line: a CR/LF cannot forge a second `error:` line, terminal escape sequences are shown, not obeyed;
  `--json` keeps the text exact, inside one JSON line;
- the "still waiting" notice comes 3 s after the command started, even when every attempt is shorter;
- a usage error names the help of the subcommand it was made on, and `--url` errors name `--url`;
- `demo --help` says what the demo does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Literal

import pytest

from fota_callbacks.testing import FakeThingSpace, Fault, serve
from tests.support.cli_process import ACCOUNT, clean_env, cli
from tests.support.harness import Scripted

CREDENTIALS = {
    "THINGSPACE_CLIENT_ID": "id",
    "THINGSPACE_CLIENT_SECRET": "secret",
    "THINGSPACE_USERNAME": "user",
    "THINGSPACE_PASSWORD": "password",
}
FORGED = "denied\r\nfota-callbacks: error: forged line\n\x1b[2J\x1b]0;pwned\x07\x9b31m\u202egnp.exe"
"""A CR/LF and a forged error line, a clear-screen, a title change (OSC ... BEL), a C1 CSI, a right-to-left override."""
TERMINAL_CONTROLS = ("\r", "\x1b", "\x07", "\x9b", "\u202e")


@pytest.fixture
def fake() -> Iterator[tuple[FakeThingSpace, dict[str, str]]]:
    """A FakeThingSpace over HTTP on 127.0.0.1, and the environment a CLI process needs to reach it."""
    thingspace = FakeThingSpace()
    with serve(thingspace) as base_url:
        yield thingspace, clean_env({**CREDENTIALS, "THINGSPACE_BASE_URL": base_url})


def assert_one_escaped_error_line(stderr: str) -> str:
    assert stderr.count("\n") == 1, stderr
    assert stderr.startswith("fota-callbacks: error: "), stderr
    for control in TERMINAL_CONTROLS:
        assert control not in stderr
    return stderr


FaultedOperation = Literal["register_callback", "token"]

SERVER_TEXTS: dict[str, tuple[FaultedOperation, int, bytes, int]] = {
    # (operation the fault answers, its status, its body, the exit code)
    "errorMessage": (
        "register_callback",
        400,
        json.dumps({"errorCode": "Refused", "errorMessage": FORGED}).encode(),
        1,
    ),
    "error_description": (
        "token",
        401,
        json.dumps({"error": "invalid_client", "error_description": FORGED}).encode(),
        1,
    ),
}


@pytest.mark.parametrize(("operation", "status", "body", "code"), SERVER_TEXTS.values(), ids=list(SERVER_TEXTS))
def test_a_servers_message_is_one_escaped_error_line(
    fake: tuple[FakeThingSpace, dict[str, str]], operation: FaultedOperation, status: int, body: bytes, code: int
) -> None:
    thingspace, env = fake
    thingspace.inject(Fault.status(status, body=body), operation=operation, times=2)
    done = cli("v2", "register", ACCOUNT, "--url", "https://listener.example.com/fota", env=env)
    assert done.returncode == code
    assert done.stdout == ""
    line = assert_one_escaped_error_line(done.stderr)
    assert "denied\\r\\nfota-callbacks: error: forged line\\n\\x1b[2J\\x1b]0;pwned\\x07\\x9b31m\\u202egnp.exe" in line

    as_json = cli("v2", "register", ACCOUNT, "--url", "https://listener.example.com/fota", "--json", env=env)
    assert as_json.returncode == code
    assert as_json.stderr.count("\n") == 1
    for control in TERMINAL_CONTROLS:
        assert control not in as_json.stderr
    assert FORGED in json.loads(as_json.stderr)["error"]  # exact, once decoded


def test_a_listed_url_is_printed_escaped(fake: tuple[FakeThingSpace, dict[str, str]]) -> None:
    thingspace, env = fake
    answer = json.dumps({"url": "https://listener.example.com/" + FORGED}).encode()
    thingspace.inject(Fault.status(200, body=answer), operation="list_registered_callbacks", times=2)
    table = cli("v3", "list", ACCOUNT, env=env)
    assert (table.returncode, table.stderr) == (0, "")
    assert table.stdout.count("\n") == 1
    for control in TERMINAL_CONTROLS:
        assert control not in table.stdout
    assert table.stdout.startswith("url  https://listener.example.com/denied\\r\\nfota-callbacks: error: forged")

    as_json = cli("v3", "list", ACCOUNT, "--json", env=env)
    assert json.loads(as_json.stdout) == {"url": "https://listener.example.com/" + FORGED}
    for control in TERMINAL_CONTROLS:
        assert control not in as_json.stdout


def test_the_waiting_notice_comes_3_s_after_the_start_even_with_short_attempts(served_script: Scripted) -> None:
    """Two attempts of 2 s and a retry wait between them: no single wait reaches 3 s, the command does."""
    served_script.script.hang(times=None)
    host = served_script.base_url.removeprefix("http://")
    env = clean_env({**CREDENTIALS, "THINGSPACE_BASE_URL": served_script.base_url})
    done = cli("v2", "list", ACCOUNT, "--timeout", "2", "--max-retries", "1", env=env)
    assert done.returncode == 4
    *notices, error = done.stderr.splitlines()
    assert len(notices) == 1, done.stderr
    assert notices[0].startswith("fota-callbacks: still waiting for ")
    assert f"POST /api/ts/v1/oauth2/token from {host}" in notices[0]
    assert notices[0].endswith(" s so far; Ctrl-C to give up)")
    assert error.startswith("fota-callbacks: error: timed out")
    assert served_script.attempts == 2


@pytest.mark.parametrize("json_errors", [False, True], ids=["text", "json"])
def test_an_unknown_option_names_the_subcommands_help(json_errors: bool) -> None:
    done = cli("v2", "list", ACCOUNT, "--username", "someone", *(["--json"] if json_errors else []))
    assert (done.returncode, done.stdout) == (2, "")
    message = json.loads(done.stderr)["error"] if json_errors else assert_one_escaped_error_line(done.stderr)
    assert "unrecognized arguments: --username someone (see fota-callbacks v2 --help)" in message
    assert "see fota-callbacks --help" not in message


def test_the_subcommands_help_lists_its_options() -> None:
    # The help the error points to is where the user finds that --username belongs to v1 register.
    assert "--username" not in cli("v2", "--help").stdout
    assert "--username USERNAME" in cli("v1", "--help").stdout


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["v2", "register", ACCOUNT, "--url", "http://plain.example.com"], "must be an absolute https:// URL"),
        (["v3", "update", ACCOUNT, "--url", "https://a b.example.com"], "contains whitespace"),
        (["v1", "register", ACCOUNT, "--url", "ftp://files.example.com"], "must be an absolute http:// or https://"),
        (["v2", "register", ACCOUNT, "--url", "https:///no-host"], "has no host"),
    ],
    ids=["v2-http", "v3-space", "v1-ftp", "no-host"],
)
def test_url_errors_name_the_option(argv: list[str], problem: str) -> None:
    done = cli(*argv, env=clean_env(CREDENTIALS))  # refused before any credentials are used or anything is sent
    assert done.returncode == 2
    line = assert_one_escaped_error_line(done.stderr)
    assert line.startswith("fota-callbacks: error: --url: '")
    assert problem in line
    assert "body.url" not in line


def test_demo_help_says_what_it_does() -> None:
    shown = cli("demo", "--help")
    assert shown.returncode == 0
    description = shown.stdout.split("\n\n")[1]
    assert "V1, V2 and V3 against FakeThingSpace" in " ".join(description.split())
    assert "no credentials, no network" in " ".join(description.split())
