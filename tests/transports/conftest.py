"""The fixtures of the transport tests: which transport a test runs on, for each event loop."""

from __future__ import annotations

import pytest

from tests.support.transports import HTTP_KINDS, KINDS, require


@pytest.fixture
def backend(anyio_backend: tuple[str, dict[str, object]]) -> str:
    """The event loop's name: "asyncio" or "trio"."""
    return anyio_backend[0]


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest, backend: str) -> str:
    """Every transport."""
    require(request.param, backend)
    return str(request.param)


@pytest.fixture(params=HTTP_KINDS)
def http_kind(request: pytest.FixtureRequest, backend: str) -> str:
    """Every transport that opens connections."""
    require(request.param, backend)
    return str(request.param)
