"""Every Python code block in README.md runs, so the documentation cannot rot.

Blocks run against FakeThingSpace (in-process as `client`, and over HTTP as `THINGSPACE_BASE_URL` for blocks
that make their own client), with `fota`, `client`, `account` and `fake` defined. A block preceded by
`<!-- readme-test: pytest -->` is a test module of its own and runs under pytest in a subprocess.
The Quickstart's test command is the one .ci/run runs.
"""

from __future__ import annotations

import ast
import inspect
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import fota_callbacks as fota
from fota_callbacks.testing import FakeThingSpace, serve

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCK = re.compile(r"(?:<!-- readme-test: (?P<mode>\w+) -->\n)?```(?P<lang>\w*)\n(?P<code>.*?)```", re.DOTALL)


def _blocks(mode: str | None) -> list[tuple[int, str]]:
    return [
        (README.count("\n", 0, match.start("code")) + 1, match["code"])
        for match in BLOCK.finditer(README)
        if match["lang"] == "python" and match["mode"] == mode
    ]


PLAIN = _blocks(None)
PYTEST = _blocks("pytest")


def test_the_readme_has_code_to_test() -> None:
    assert len(PLAIN) >= 8
    assert len(PYTEST) >= 1


@pytest.fixture(scope="module")
def served_fake() -> Iterator[tuple[FakeThingSpace, str]]:
    fake = FakeThingSpace()
    with serve(fake) as base_url:
        yield fake, base_url


@pytest.mark.anyio
@pytest.mark.parametrize(("line", "code"), PLAIN, ids=[f"README.md:{line}" for line, _ in PLAIN])
async def test_readme_block_runs(
    line: int, code: str, served_fake: tuple[FakeThingSpace, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, base_url = served_fake
    monkeypatch.setenv("THINGSPACE_BASE_URL", base_url)
    monkeypatch.delenv("THINGSPACE_M2M_TOKEN", raising=False)
    monkeypatch.setenv("THINGSPACE_CLIENT_ID", "readme-client")
    monkeypatch.setenv("THINGSPACE_CLIENT_SECRET", "readme-secret")
    monkeypatch.setenv("THINGSPACE_USERNAME", "readme-user")
    monkeypatch.setenv("THINGSPACE_PASSWORD", "readme-password")
    compiled = compile(code, f"README.md:{line}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    async with fake.client() as client:
        namespace = {"fota": fota, "client": client, "account": "0000123456-00001", "fake": fake}
        result = eval(compiled, namespace)
        if inspect.iscoroutine(result):
            await result


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
