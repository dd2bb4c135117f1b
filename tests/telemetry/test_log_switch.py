"""`FOTA_CALLBACKS_LOG=debug|info|warning`: the package logs to stderr at that level with no code; a bad value is
one warning line naming the variable, never a crash. Each case is a fresh process, as a user would run it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support import ROOT

# A program that configures no logging: one call retried once (a 503 first), one refused callback.
PROGRAM = """
import anyio
import fota_callbacks as fota
from fota_callbacks.inbox import MemoryInbox
from fota_callbacks.receiver import CallbackReceiver
from fota_callbacks.testing import FakeThingSpace, Fault


async def no_wait(seconds):
    pass


async def main():
    fake = FakeThingSpace()
    fake.inject(Fault.status(503), version="v2")
    async with fake.client(sleep=no_wait) as client:
        await client.v2.list_registered_callbacks("0000123456-00001")
    refused = await CallbackReceiver(inbox=MemoryInbox()).receive(b"[1]", peer="127.0.0.1")
    print("done", refused.status)


anyio.run(main)
"""

ATTEMPT = "DEBUG fota_callbacks: GET /api/fota/v2/callbacks/0000123456-00001 -> 503 (attempt 1)"
RETRY = "INFO fota_callbacks: GET /api/fota/v2/callbacks/0000123456-00001 failed (HTTP 503); retry 1 of 2"
REFUSAL = "WARNING fota_callbacks.receiver: refused a FOTA callback from 127.0.0.1: callback body is an array"


def run(value: str | None) -> subprocess.CompletedProcess[str]:
    env = {key: item for key, item in os.environ.items() if key != "FOTA_CALLBACKS_LOG"}
    if value is not None:
        env["FOTA_CALLBACKS_LOG"] = value
    return subprocess.run(
        [sys.executable, "-c", PROGRAM], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize(
    ("value", "shown", "hidden"),
    [
        ("debug", [ATTEMPT, RETRY, REFUSAL], []),
        ("info", [RETRY, REFUSAL], [ATTEMPT]),
        ("WARNING", [REFUSAL], [ATTEMPT, RETRY]),  # any case
        (None, [], [ATTEMPT, RETRY, REFUSAL]),  # unset: nothing configured, nothing shown but what Python shows
    ],
)
def test_the_variable_sets_what_the_package_logs_to_stderr(
    value: str | None, shown: list[str], hidden: list[str]
) -> None:
    outcome = run(value)
    assert (outcome.returncode, outcome.stdout) == (0, "done 400\n"), outcome.stderr
    for text in shown:
        assert text in outcome.stderr, outcome.stderr
    for text in hidden:
        assert text not in outcome.stderr, outcome.stderr
    lines = outcome.stderr.splitlines()
    if value is None:  # Python's last-resort handler: the bare message of a warning, nothing more
        assert lines == ["refused a FOTA callback from 127.0.0.1: callback body is an array, not a JSON object"]
    else:  # each record one line with its time: "2026-12-06 16:52:24,327 DEBUG fota_callbacks: ..."
        assert all(line[:4].isdigit() for line in lines)
        assert len(lines) == {"debug": 8, "info": 2, "WARNING": 1}[value]


@pytest.mark.parametrize("value", ["verbose", "debug\n\x1b[31mCRITICAL root: forged"])
def test_a_bad_value_is_one_warning_line_naming_the_variable_and_nothing_else_changes(value: str) -> None:
    outcome = run(value)
    assert (outcome.returncode, outcome.stdout) == (0, "done 400\n")
    line, *rest = outcome.stderr.splitlines()
    assert rest == run(None).stderr.splitlines()  # logging left as it was
    assert line.startswith("fota_callbacks: ignoring FOTA_CALLBACKS_LOG=")
    assert line.endswith("expected one of debug, info, warning")
    assert "\x1b" not in line  # what the variable holds is shown escaped
