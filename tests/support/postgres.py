"""A private PostgreSQL server on 127.0.0.1 for the tests (and the Postgres benchmark), stopped by its pid.

PostgreSQL refuses to run as root, and CI runs as root: then `initdb` and `postgres` run as the unprivileged user
`nobody`, in a data directory made for them under the system temp directory (pytest's own temp directories are
private to root). The binaries are Debian's (`/usr/lib/postgresql/*/bin`) or those `pg_config --bindir` names.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from tests.support.processes import stop

__all__ = ["PostgresServer", "postgres_bindir"]

UNPRIVILEGED = "nobody"


def postgres_bindir() -> Path | None:
    """Where `initdb` and `postgres` are: the newest Debian install, else what `pg_config --bindir` says."""
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version, reverse=True):
        if os.path.isfile(os.path.join(candidate, "postgres")):
            return Path(candidate)
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False).stdout.strip()
        if found and os.path.isfile(os.path.join(found, "postgres")) and os.path.isfile(os.path.join(found, "initdb")):
            return Path(found)
    return None


def _version(path: str) -> tuple[int, ...]:
    name = path.rstrip("/").split("/")[-2]
    return tuple(int(part) for part in name.split(".") if part.isdigit())


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PostgresServer:
    """`initdb` once, then `postgres` on a free 127.0.0.1 port; `stop()` and `start()` again keep the data.

    `durable=False` (tests) turns fsync off: a killed server process still loses nothing (its writes are in the
    kernel's page cache); only a machine crash would, and no test crashes the machine. The benchmark runs with
    `durable=True`, as a deployment would.
    """

    def __init__(self, bindir: Path, *, durable: bool = False, settings: Sequence[str] = ()) -> None:
        self.bindir, self.durable, self.settings = bindir, durable, list(settings)
        self.port = _free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="fota-postgres-"))
        self.data = self.directory / "data"
        self.user = "postgres"
        self.dsn = f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"
        self.process: subprocess.Popen[bytes] | None = None
        self._user: str | None = None
        self._group: str | None = None
        if os.geteuid() == 0:
            self._user, self._group = UNPRIVILEGED, _group_of(UNPRIVILEGED)
            shutil.chown(self.directory, self._user, self._group)
        log = self.directory / "initdb.log"
        with open(log, "wb") as out:
            initdb = [str(bindir / "initdb"), "-D", str(self.data), "-U", self.user, "--auth=trust", "-E", "UTF8"]
            done = subprocess.run(
                [*initdb, "--no-sync"], stdout=out, stderr=out, check=False, user=self._user, group=self._group
            )
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed ({done.returncode}): {log.read_text(errors='replace')[-2000:]}")

    def start(self) -> PostgresServer:
        command = [
            str(self.bindir / "postgres"),
            "-D", str(self.data),
            "-p", str(self.port),
            "-h", "127.0.0.1",
            "-k", str(self.directory),  # its Unix socket here, not in /var/run/postgresql
            "-c", "max_connections=200",
            "-c", f"fsync={'on' if self.durable else 'off'}",
            "-c", f"full_page_writes={'on' if self.durable else 'off'}",
        ]  # fmt: skip
        for setting in self.settings:
            command += ["-c", setting]
        with open(self.directory / "server.log", "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log, user=self._user, group=self._group)
        self._wait_ready()
        return self

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        ready = [str(self.bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user]
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.process.returncode}: {self.log_tail()}")
            if subprocess.run(ready, check=False).returncode == 0:
                return
            time.sleep(0.05)
        raise RuntimeError(f"postgres did not accept connections on 127.0.0.1:{self.port} in {timeout} s")

    def log_tail(self) -> str:
        try:
            return (self.directory / "server.log").read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGINT) -> None:
        """Stop the server by its pid: SIGINT is PostgreSQL's fast shutdown, SIGKILL a crash (it recovers from
        its WAL at the next start)."""
        process, self.process = self.process, None
        if process is None:
            return
        stop(process, sig, timeout=30)
        if sig == signal.SIGKILL:
            # The postmaster's children notice it is gone and exit; until they have, the port and the shared
            # memory are still theirs and a new postmaster refuses to start.
            self._wait_children_gone()

    def _wait_children_gone(self, timeout: float = 10.0) -> None:
        pid_file = self.data / "postmaster.pid"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _port_open(self.port):
            time.sleep(0.05)
        if pid_file.exists():
            pid_file.unlink()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


def _port_open(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _group_of(user: str) -> str:
    import grp
    import pwd

    return grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name
