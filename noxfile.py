"""nox sessions: lint, types, tests (every installed Python 3.10-3.13), demo, bench, stress, docs."""

from __future__ import annotations

import glob
import os

import nox

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]

# pyenv installs interpreters it does not put on PATH unless they are "global"; let nox find them anyway.
for bin_dir in sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[0-3]*/bin"))):
    os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")

nox.options.sessions = ["lint", "types", "tests", "demo"]
nox.options.error_on_missing_interpreters = False
nox.options.reuse_existing_virtualenvs = True


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def types(session: nox.Session) -> None:
    session.install("-e", ".[dev]")
    session.run("mypy")


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", "-q", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    session.install(".")
    session.run("fota-callbacks", "demo")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks (benchmarks/README.md): `nox -s bench` (~7 min), or `nox -s bench -- --quick` (~1.5 min)."""
    # The receiver section serves FastAPI, Starlette, aiohttp and Django apps (uvicorn on httptools), its inbox apps
    # need redis-py and asyncpg; the OpenTelemetry rows need its SDK; the verizon section measures Verizon's sync SDK
    # here, and its async SDK (same import name) in a venv it makes itself.
    session.install(
        "-e",
        ".[aiohttp,httpx2,fastapi,server,django,postgres,otel]",
        "httptools",
        "redis",
        "sdksio-verizon-apis-sdk==2.0.0",
    )
    session.run("python", "-m", "benchmarks.run", *session.posargs)


@nox.session
def stress(session: nox.Session) -> None:
    """The reliability tests in full (FOTA_STRESS=1): 20,000-call soak with faults from 200 tasks on asyncio and
    trio, 2,000 examples per property, hostile servers, secrets, TLS. Prints the figures measured (~8 min)."""
    session.install("-e", ".[test]")
    session.run(
        "python",
        "-m",
        "pytest",
        "-q",
        "tests/reliability/test_soak.py",
        "tests/reliability/test_properties.py",
        "tests/reliability/test_hostile.py",
        "tests/reliability/test_secrets.py",
        "tests/transports/test_tls.py",
        *session.posargs,
        env={"FOTA_STRESS": "1"},
    )


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site (mkdocs-material; guides from README.md, API reference from the docstrings) built
    into site/ with --strict: a broken link or anchor fails. `nox -s docs -- serve` previews it instead."""
    session.install("-e", ".[docs]")
    env = {"NO_MKDOCS_2_WARNING": "1"}
    if session.posargs[:1] == ["serve"]:
        session.run("mkdocs", "serve", "--strict", *session.posargs[1:], env=env)
    else:
        session.run("mkdocs", "build", "--strict", *session.posargs, env=env)
