"""Running `python -m fota_callbacks ...` as a real process in tests: long-running servers read line by line."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress

ACCOUNT = "0000123456-00001"


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test process's environment without any THINGSPACE_* variable, plus `extra`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("THINGSPACE_")}
    return {**env, **(extra or {})}


def cli(
    *argv: str, env: Mapping[str, str] | None = None, timeout: float = 60, cwd: str | os.PathLike[str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run one command to its end (in `cwd`, when given)."""
    return subprocess.run(
        [sys.executable, "-m", "fota_callbacks", *argv],
        capture_output=True,
        text=True,
        env=dict(env) if env is not None else clean_env(),
        timeout=timeout,
        cwd=cwd,
    )


class Running:
    """A command left running; its stdout and stderr lines are collected as they come."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], cwd: str | os.PathLike[str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "fota_callbacks", *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(env),
            cwd=cwd,
        )
        self.lines: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self._new: queue.Queue[None] = queue.Queue()
        self._pumps = [threading.Thread(target=self._pump, args=(name,), daemon=True) for name in self.lines]
        for pump in self._pumps:
            pump.start()

    def _pump(self, name: str) -> None:
        stream = getattr(self.process, name)
        for line in stream:
            self.lines[name].append(line.rstrip("\n"))
            self._new.put(None)
        self._new.put(None)

    @property
    def stdout(self) -> str:
        return "\n".join(self.lines["stdout"])

    @property
    def stderr(self) -> str:
        return "\n".join(self.lines["stderr"])

    def wait_for(self, name: str, found: Callable[[str], bool], timeout: float = 20) -> str:
        """The first line of `name` for which `found` is true, waiting for it to be printed."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            lines = self.lines[name]
            for line in lines[seen:]:
                if found(line):
                    return line
            seen = len(lines)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no such line on {name} in {timeout} s: {lines!r}; stderr {self.stderr!r}")
            if self.process.poll() is not None and self._new.empty():
                time.sleep(0.05)  # let the pumps finish reading what the process wrote before it ended
                if len(self.lines[name]) == seen:
                    raise AssertionError(f"the process ended ({self.process.returncode}): {self.stderr!r}")
            with suppress(queue.Empty):
                self._new.get(timeout=min(remaining, 0.5))

    def stop(self) -> int:
        """Terminate the process (by its id) unless it ended; read the rest of its output; close the pipes."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            code = self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(timeout=10)
        for pump in self._pumps:
            pump.join(timeout=10)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        return code


@contextmanager
def running(
    *argv: str, env: Mapping[str, str] | None = None, cwd: str | os.PathLike[str] | None = None
) -> Iterator[Running]:
    """Start a command (in `cwd`, when given), and stop it by its process id when the block ends."""
    process = Running(argv, env if env is not None else clean_env(), cwd)
    try:
        yield process
    finally:
        process.stop()


@contextmanager
def fake_server(*options: str) -> Iterator[tuple[Running, dict[str, str]]]:
    """`fota-callbacks fake-server --port 0 ...` and the environment its printed exports make."""
    with running("fake-server", "--port", "0", *options) as server:
        server.wait_for("stdout", lambda line: line.startswith("# then:"))
        exports = dict(re.findall(r"^export (\w+)=(\S+)$", server.stdout, flags=re.MULTILINE))
        yield server, clean_env(exports)


@contextmanager
def listener(*options: str) -> Iterator[tuple[Running, str]]:
    """`fota-callbacks listen --port 0 ...` and the URL it prints."""
    with running("listen", "--port", "0", *options) as process:
        banner = process.wait_for("stderr", lambda line: "listening on" in line)
        match = re.search(r"listening on (http://[^\s;]+)", banner)
        assert match is not None, banner
        yield process, match.group(1)
