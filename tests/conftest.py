from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.scripted_server import ScriptedServer, run_scripted_server


@pytest.fixture(
    params=[
        pytest.param(("asyncio", {}), id="asyncio"),
        pytest.param(("trio", {}), id="trio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, object]]:
    """Every async test runs on asyncio and on trio."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def _scripted_server() -> Iterator[ScriptedServer]:
    yield from run_scripted_server()


@pytest.fixture
def scripted_server(_scripted_server: ScriptedServer) -> Iterator[ScriptedServer]:
    """A real HTTP server on 127.0.0.1 that answers what the test scripts (see tests/scripted_server.py)."""
    _scripted_server.reset()
    yield _scripted_server
    _scripted_server.reset()
