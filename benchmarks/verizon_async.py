"""Verizon's async SDK (`vz-apimatic-v-4-sdk` 0.0.1, `AsyncVerizonClient` on httpx2) as a driver of this process's
benchmark, run in a child process with a venv of its own.

Its import package is `verizon`, as is that of Verizon's sync SDK (`sdksio-verizon-apis-sdk`) measured beside it:
the two cannot share a venv. The child (`benchmarks.verizon_async_child`) runs in a venv made here on first use
(under `$FOTA_BENCH_VENVS`, by default `~/.cache/fota-callbacks-bench`), holding the SDK and, pinned to the
versions of this process, the HTTP stack it shares with the SDK's `Httpx2Transport` (httpx2, httpcore2, h11,
anyio, sniffio, ...), so that both measure the same stack; `FOTA_BENCH_VERIZON_ASYNC_PYTHON` names an
interpreter that has the SDK instead. The child inherits this process's CPU pinning, keeps its event loop and
pools between commands, and runs one slice per command while this process waits on the pipe: the slice's CPU is
read in the child (getrusage around it, all its threads), as every other driver's is read in its own process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from ._common import Sample, stop_process

__all__ = ["PACKAGE", "AsyncVerizonChild", "child_python"]

PACKAGE = "vz-apimatic-v-4-sdk==0.0.1"
# What the child's HTTP stack is made of, pinned to this process's versions where installed here.
SHARED_STACK = ("httpx2", "httpcore2", "h11", "anyio", "sniffio", "idna", "certifi", "truststore", "typing-extensions")
ROOT = Path(__file__).resolve().parent.parent


def _pins() -> list[str]:
    installed = {dist.metadata["Name"].lower().replace("_", "-"): dist.version for dist in metadata.distributions()}
    return [f"{name}=={installed[name]}" for name in SHARED_STACK if name in installed]


def _has_sdk(python: Path) -> bool:
    probe = [str(python), "-c", "import verizon.async_client, httpx2"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


def child_python() -> tuple[Path | None, str]:
    """The interpreter to run the child with (making its venv when needed), or None and why not."""
    given = os.environ.get("FOTA_BENCH_VERIZON_ASYNC_PYTHON")
    if given:
        python = Path(given)
        return (python, f"given: {python}") if _has_sdk(python) else (None, f"{python} cannot import verizon")
    base = Path(os.environ.get("FOTA_BENCH_VENVS", Path.home() / ".cache" / "fota-callbacks-bench"))
    venv = base / f"verizon-async-0.0.1-py{sys.version_info[0]}{sys.version_info[1]}"
    python = venv / "bin" / "python"
    if python.exists() and _has_sdk(python):
        return python, f"venv {venv}"
    made = subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], capture_output=True, text=True)
    if made.returncode != 0:
        return None, f"could not make a venv at {venv}: {made.stderr.strip()[-200:]}"
    install = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", PACKAGE, *_pins()]
    installed = subprocess.run(install, capture_output=True, text=True)
    if installed.returncode != 0 or not _has_sdk(python):
        return None, f"could not install {PACKAGE} into {venv}: {installed.stderr.strip()[-300:]}"
    return python, f"venv {venv} (made now)"


class AsyncVerizonChild:
    """The child process for one concurrency, its drivers `shipped` and `tuned` (see the child's docstring)."""

    def __init__(self, python: Path, base_url: str, concurrency: int) -> None:
        command = [str(python), "-m", "benchmarks.verizon_async_child", "--base-url", base_url]
        self._process = subprocess.Popen(
            [*command, "--concurrency", str(concurrency)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def _ask(self, **command: Any) -> dict[str, Any]:
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        self._process.stdin.write(json.dumps(command) + "\n")
        self._process.stdin.flush()
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(f"the Verizon async SDK's driver ended (exit code {self._process.wait()})")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"the Verizon async SDK's driver: {answer['error']}")
        return answer

    def check(self) -> None:
        """Each driver's answer is the server's V2 list."""
        self._ask(op="check")

    def warm(self, driver: str, calls: int) -> None:
        self._ask(op="warm", driver=driver, calls=calls)

    def slice(self, driver: str, seconds: float) -> Sample:
        answer = self._ask(op="slice", driver=driver, seconds=seconds)
        return Sample(int(answer["calls"]), float(answer["wall_s"]), float(answer["cpu_s"]))

    def close(self) -> None:
        """Ask the child to close its clients and end; stop it if it does not."""
        assert self._process.stdin is not None
        try:
            if self._process.poll() is None:
                self._process.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self._process.stdin.close()
                self._process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            pass
        finally:
            stop_process(self._process)
