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
  not sleep, so a test that injects faults runs at full speed. It depends on anyio's `anyio_backend` fixture, so
  a test that uses it runs under anyio without a marker, on each backend `anyio_backend` names (by default every
  installed one; override `anyio_backend` in your conftest to pick).
- `fake_thingspace_url`: the same fake served over HTTP on 127.0.0.1 (extra `server`: uvicorn); the value is its
  base URL (`http://127.0.0.1:PORT`), for code that makes its own client or runs in another process. The server
  stops after the test.

This module imports pytest; nothing else in fota_callbacks imports this module.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import anyio.lowlevel
import pytest

from .._client import FotaCallbacksClient
from . import FakeThingSpace, serve

__all__ = ["fake_thingspace", "fake_thingspace_url", "fota_client"]


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
