"""pytest fixtures for code that uses fota_callbacks, loaded through the `pytest11` entry point.

Installing fota-callbacks is all it takes: no `conftest.py` line, no import. Async tests and fixtures run
with anyio's pytest plugin (installed with anyio), on asyncio and on trio:

```python
import fota_callbacks as fota

async def test_my_service_registers(fota_client, fake_thingspace):
    await my_service.start(fota_client)  # your code, given the client
    assert fake_thingspace.callbacks("0000123456-00001").v3 == "https://listener.example/fota"
```

- `fake_thingspace`: a fresh `FakeThingSpace` for the test.
- `fota_client`: an open `FotaCallbacksClient` on that fake (in-process), closed after the test. Its retries do
  not sleep, so a test that injects faults runs at full speed.
- `fake_thingspace_url`: the same fake served over HTTP on 127.0.0.1 (extra `server`: uvicorn); the value is its
  base URL (`http://127.0.0.1:PORT`), for code that makes its own client or runs in another process. The server
  stops after the test.

Each fixture works alone: an `async def` test that requests any of them runs under anyio without a marker, on
each backend anyio's `anyio_backend` fixture names (every installed one with anyio >= 4.12; override
`anyio_backend` in your conftest to pick). A test marked `asyncio` is left to pytest-asyncio. When trio is not
installed, the pytest header says so: the trio runs are skipped, not silently missing.

This module imports pytest; nothing else in fota_callbacks imports this module.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Iterator

import anyio
import anyio.lowlevel
import pytest

from .._client import FotaCallbacksClient
from . import FakeThingSpace, serve

__all__ = ["fake_thingspace", "fake_thingspace_url", "fota_client"]

_FIXTURES = frozenset(__all__)


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Module | pytest.Class, name: str, obj: object) -> None:
    """Run an `async def` test that requests one of these fixtures under anyio, as `@pytest.mark.anyio` would.

    Only `fota_client` is itself async (and so brings `anyio_backend` along); a test using only
    `fake_thingspace` or `fake_thingspace_url` would otherwise fail with "async def functions are not natively
    supported". Tried first, like anyio's own hook: the mark must be on the function before pytest reads it.
    """
    if not collector.istestfunction(obj, name):
        return
    function = getattr(getattr(obj, "hypothesis", None), "inner_test", obj)
    if not inspect.iscoroutinefunction(function):
        return
    marks = list(getattr(obj, "pytestmark", ())) + list(collector.iter_markers())
    if any(mark.name == "asyncio" for mark in marks):
        return  # the user runs this test with pytest-asyncio
    used = set(inspect.signature(function).parameters)
    used.update(fixture for mark in marks if mark.name == "usefixtures" for fixture in mark.args)
    if used & _FIXTURES:
        pytest.mark.usefixtures("anyio_backend")(obj)


def pytest_report_header(config: pytest.Config) -> str | None:
    """One header line when async tests cannot run on trio here, so that its absence is not silent."""
    available = getattr(anyio, "get_available_backends", None)
    if available is None:  # anyio < 4.12: anyio_backend defaults to asyncio alone
        return (
            "fota-callbacks: async tests run on asyncio only (anyio < 4.12); "
            "override anyio_backend to run them on trio too"
        )
    if "trio" not in available():
        return "fota-callbacks: trio is not installed: the trio runs of async tests are skipped (pip install trio)"
    return None


async def _no_sleep(seconds: float) -> None:
    """The retry wait of `fota_client`: none, but still a point where the call can be cancelled."""
    await anyio.lowlevel.checkpoint()


@pytest.fixture
def fake_thingspace() -> FakeThingSpace:
    """A fresh `FakeThingSpace`, shared by `fota_client` and `fake_thingspace_url` within one test."""
    return FakeThingSpace()


@pytest.fixture
async def fota_client(fake_thingspace: FakeThingSpace, anyio_backend: object) -> AsyncIterator[FotaCallbacksClient]:
    """An open `FotaCallbacksClient` on `fake_thingspace` whose retries do not sleep; closed after the test."""
    # Requesting `anyio_backend` is what makes anyio's plugin run this fixture (and the test) on its backend.
    async with fake_thingspace.client(sleep=_no_sleep) as client:
        yield client


@pytest.fixture
def fake_thingspace_url(fake_thingspace: FakeThingSpace) -> Iterator[str]:
    """The base URL of `fake_thingspace` served over HTTP on 127.0.0.1; the server stops after the test."""
    with serve(fake_thingspace) as base_url:
        yield base_url
