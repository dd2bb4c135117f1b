"""The README's documented local flow with your own app, run as written (on free ports): the shell steps of "A local
loop" (listen, fake-server, register, trigger), then those that put the FastAPI app of "With FastAPI", saved as
listener.py and served by uvicorn, in the listener's place (register it on V1 with its credentials, trigger).

The app's `allowed_ips` lets Verizon's addresses and this machine's through, so the local fake's delivery is
answered 200, not 403.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from tests.support import ROOT
from tests.support.cli_process import ACCOUNT, clean_env
from tests.support.harness import free_port

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _first_block(after: str, language: str) -> str:
    found = re.search(rf"```{language}\n(.*?)```", README[README.index(after) :], re.DOTALL)
    assert found is not None, f"no {language} block after {after!r}"
    return found.group(1)


def _run(script: str, cwd: Path, timeout: float = 60) -> tuple[int | None, str, str]:
    """`script` in bash (`set -e`), in its own process group, stopped with every server it started."""
    bash = subprocess.Popen(
        ["bash", "-c", "set -e\ntrap 'kill $(jobs -p) 2>/dev/null' EXIT\n" + script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env=clean_env({"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}),
        start_new_session=True,
    )
    try:
        out, err = bash.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(bash.pid, signal.SIGTERM)
        out, err = bash.communicate(timeout=30)
        return None, out, err
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(bash.pid, signal.SIGTERM)
    return bash.returncode, out, err


def test_the_readme_app_takes_the_listeners_place_as_written(tmp_path: Path) -> None:
    loop = _first_block("### A local loop: fake-server, listen, trigger", "sh")
    own_app = _first_block("Your own app can take the listener's place", "sh")
    (tmp_path / "listener.py").write_text(_first_block("### With FastAPI", "python"), encoding="utf-8")
    assert "uvicorn listener:app --port 8001" in own_app
    # The app must load before uvicorn can serve it (else the steps would wait for it until the timeout).
    loads = subprocess.run(
        [sys.executable, "-c", "import listener"],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert loads.returncode == 0, f"the README's app does not load:\n{loads.stderr}"
    ports = {"8000": str(free_port()), "8001": str(free_port()), "8080": str(free_port())}
    script = re.sub(r"\b(8000|8001|8080)\b", lambda port: ports[port.group(1)], loop + own_app)

    code, out, err = _run(script, tmp_path)

    assert code == 0, f"exit {code}\nstdout:\n{out}\nstderr:\n{err}"
    lines = out.splitlines()
    # The listener of the first steps, then the app, each answered the fake's delivery with 200.
    assert f"upgradeProgress for {ACCOUNT} (v2) -> http://127.0.0.1:{ports['8000']}/fota/callbacks" in out
    app_url = f"http://127.0.0.1:{ports['8001']}/fota/callbacks"
    assert f"upgradeProgress for {ACCOUNT} (v1) -> {app_url}" in lines
    answers = [line for line in lines if line.startswith("listener answered ")]
    assert answers == ['listener answered 200: {"status":"ok"}'] * 2  # listen and the app: one receiver core
    assert f"upgradeProgress for {ACCOUNT}" in lines  # the app's handler ran
