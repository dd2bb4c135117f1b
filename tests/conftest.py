from __future__ import annotations

from collections.abc import Generator, Iterator

import pytest

from fota_callbacks.testing import ScriptedTransport
from tests.support import figures
from tests.support.harness import Scripted, Switchboard, run_switchboard
from tests.support.scale import MODE
from tests.support.sentinels import GUARD


@pytest.fixture(
    params=[
        pytest.param(("asyncio", {}), id="asyncio"),
        pytest.param(("trio", {}), id="trio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, object]]:
    """Every async test runs on asyncio and on trio."""
    return request.param  # type: ignore[no-any-return]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """AiohttpTransport runs on asyncio only: its trio combinations are not run (its refusal of trio has a test of
    its own), rather than reported as dozens of skips."""
    keep: list[pytest.Item] = []
    impossible: list[pytest.Item] = []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        backend = params.get("anyio_backend", ("asyncio", {}))[0]
        transport = params.get("kind", params.get("http_kind"))
        (impossible if backend == "trio" and transport == "aiohttp" else keep).append(item)
    if impossible:
        config.hook.pytest_deselected(items=impossible)
        items[:] = keep


@pytest.fixture(scope="session")
def _switchboard() -> Iterator[tuple[Switchboard, str]]:
    yield from run_switchboard()


@pytest.fixture
def served_script(_switchboard: tuple[Switchboard, str]) -> Scripted:
    """A fresh `ScriptedTransport` served over real HTTP on 127.0.0.1 (see tests/support/harness.py)."""
    board, base_url = _switchboard
    served = Scripted("http", ScriptedTransport(), base_url)
    board.app = served.script.asgi_app
    return served


@pytest.fixture(params=["memory", "http"])
def scripted(request: pytest.FixtureRequest) -> Scripted:
    """A fresh `ScriptedTransport`, reached in-process and (a second run of the test) over real HTTP."""
    if request.param == "http":
        served: Scripted = request.getfixturevalue("served_script")
        return served
    return Scripted("memory")


ENV_NAMES = (
    "THINGSPACE_CLIENT_ID",
    "THINGSPACE_CLIENT_SECRET",
    "THINGSPACE_M2M_TOKEN",
    "THINGSPACE_USERNAME",
    "THINGSPACE_PASSWORD",
    "THINGSPACE_BASE_URL",
)
"""Every environment variable the client reads."""


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No `THINGSPACE_*` variable set for the test (whatever the shell running pytest exports)."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


# --- no secret in any log record or captured output (tests/support/sentinels.py, reliability/test_secrets.py) ---


@pytest.fixture(scope="session", autouse=True)
def _no_secret_leaks() -> Iterator[None]:
    """Watches every log record (root, fota_callbacks, httpx, httpcore, uvicorn loggers) for the sentinel secrets
    for the whole session; `pytest_runtest_makereport` below fails the test during which one showed, and checks
    its captured stdout, stderr and log too."""
    GUARD.install()
    yield
    GUARD.uninstall()
    leaks = GUARD.take_leaks()
    if leaks:
        pytest.fail("sentinel secret leaked after the last test: " + "; ".join(leaks), pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report: pytest.TestReport = yield
    GUARD.ensure_attached()
    leaks = GUARD.take_leaks()
    for title, content in report.sections:
        if not title.endswith(report.when):  # sections of earlier phases were checked then
            continue
        names = GUARD.found_in(content)
        if names:
            leaks.append(f"{', '.join(names)} in {title!r}")
    if leaks:
        report.outcome = "failed"
        report.longrepr = f"sentinel secret leaked ({report.when}): " + "; ".join(leaks)
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    rows = figures.lines()
    if rows:
        terminalreporter.section(f"reliability figures, {MODE} form")
        for row in rows:
            terminalreporter.write_line(row)
