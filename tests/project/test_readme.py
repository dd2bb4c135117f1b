"""Every Python code block in README.md runs as written, so the documentation cannot rot.

A plain block is a complete program: it is written to a file and run with this interpreter in a subprocess,
with `THINGSPACE_BASE_URL` pointing at a FakeThingSpace served over HTTP and the other `THINGSPACE_*` variables
set, as a reader who followed the README would have them. A block preceded by `<!-- readme-test: pytest -->` is
a test module of its own and runs under pytest in a subprocess; one preceded by `<!-- readme-test: live -->`
needs a service this test cannot start, and is only compiled. The Quickstart's test command is the one .ci/run
runs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import metadata
from pathlib import Path

import pytest

from fota_callbacks.testing import FakeThingSpace, serve
from tests.support import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCK = re.compile(r"(?:<!-- readme-test: (?P<mode>\w+) -->\n)?```(?P<lang>\w*)\n(?P<code>.*?)```", re.DOTALL)
MODES = {None, "pytest", "live"}


def _blocks(mode: str | None) -> list[tuple[int, str]]:
    return [
        (README.count("\n", 0, match.start("code")) + 1, match["code"])
        for match in BLOCK.finditer(README)
        if match["lang"] == "python" and match["mode"] == mode
    ]


PROGRAMS = _blocks(None)
PYTEST = _blocks("pytest")
LIVE = _blocks("live")

# What some programs must show besides exiting 0: (a snippet that picks the block, a text its output contains).
SHOWS = [
    ("logging.basicConfig(", "DEBUG fota_callbacks"),
    ("fota.parse_callback_message(", "u-1"),
    ("middleware=[timing]", "GET http://127.0.0.1:"),
    ("ConsoleSpanExporter()", '"name": "fota.v2.list_registered_callbacks"'),
    ("PrometheusMetricReader()", 'fota_callbacks_received_total{fota_callback_outcome="stored"'),
    ("to=receiver)  # no HTTP", "\n200 2\n"),  # the fake's delivery went into the receiver and its inbox
]


def test_the_readme_has_code_to_test() -> None:
    assert len(PROGRAMS) >= 10
    assert len(PYTEST) >= 1
    assert {match["mode"] for match in BLOCK.finditer(README)} <= MODES


@pytest.mark.parametrize(("snippet", "shown"), SHOWS)
def test_each_expected_output_belongs_to_one_block(snippet: str, shown: str) -> None:
    assert len([code for _, code in PROGRAMS if snippet in code]) == 1


@pytest.fixture
def fake_url() -> Iterator[str]:
    with serve(FakeThingSpace()) as base_url:
        yield base_url


def _environment(base_url: str) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("THINGSPACE_")}
    environment.update(
        THINGSPACE_BASE_URL=base_url,
        THINGSPACE_CLIENT_ID="readme-client",
        THINGSPACE_CLIENT_SECRET="readme-secret",
        THINGSPACE_USERNAME="readme-user",
        THINGSPACE_PASSWORD="readme-password",
    )
    return environment


@pytest.mark.parametrize(("line", "code"), PROGRAMS, ids=[f"README.md:{line}" for line, _ in PROGRAMS])
def test_readme_block_runs_as_a_program(line: int, code: str, tmp_path: Path, fake_url: str) -> None:
    script = tmp_path / f"readme_line_{line}.py"
    script.write_text(code, encoding="utf-8")
    outcome = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=_environment(fake_url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert outcome.returncode == 0, outcome.stdout + outcome.stderr
    for snippet, shown in SHOWS:
        if snippet in code:
            assert shown in outcome.stdout + outcome.stderr


def test_readme_blocks_that_need_a_live_service_compile() -> None:
    for line, code in LIVE:
        compile(code, f"README.md:{line}", "exec")


@pytest.mark.parametrize(("line", "code"), PYTEST, ids=[f"README.md:{line}" for line, _ in PYTEST])
def test_readme_test_module_passes(line: int, code: str, tmp_path: Path) -> None:
    module = tmp_path / f"test_readme_line_{line}.py"
    module.write_text(code, encoding="utf-8")
    outcome = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(module)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert outcome.returncode == 0, outcome.stdout + outcome.stderr
    tests = len(re.findall(r"^async def test_|^def test_", code, re.MULTILINE))
    assert f"{tests} passed" in outcome.stdout


def test_ci_runs_the_quickstart_test_command() -> None:
    quickstart = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```sh\n(.*?)\n```", quickstart, re.DOTALL)
    assert len(commands) == 2
    demo, tests = commands
    assert demo.endswith("fota-callbacks demo")
    ci_script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert tests in ci_script.splitlines()


def _extras_named(text: str) -> set[str]:
    named = re.findall(r"(?:fota-callbacks|\.)\[([\w,-]+)\]", text)
    return {extra for group in named for extra in group.split(",")}


@pytest.mark.parametrize("document", ["README.md", "examples/fastapi_app.py"])
def test_every_extra_named_exists(document: str) -> None:
    named = _extras_named((ROOT / document).read_text(encoding="utf-8"))
    assert named
    assert named <= set(metadata("fota-callbacks").get_all("Provides-Extra") or ())


def test_the_install_section_installs_from_a_clone() -> None:
    """fota-callbacks is not on the package index yet: `pip install fota-callbacks` would fail."""
    install = README.split("\n## Install\n", 1)[1].split("\n## ", 1)[0]
    assert "not on the package index yet" in install
    assert "distribution name will be `fota-callbacks`" in install
    commands = [
        line.split("#")[0].strip() for line in re.findall(r"```sh\n(.*?)```", install, re.DOTALL)[0].split("\n")
    ]
    assert "pip install -e ." in commands
    assert "pip install -e '.[fastapi,server]'" in commands


def test_no_shell_step_installs_from_the_package_index() -> None:
    steps = "\n".join(re.findall(r"```sh\n(.*?)```", README, re.DOTALL))
    targets = re.findall(r"pip install (?:-e )?(\S+)", steps)
    assert len(targets) >= 5
    assert [target for target in targets if not target.strip("'\"").startswith((".", "/"))] == []
