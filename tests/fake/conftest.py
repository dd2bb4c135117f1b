"""The fixture of the fake's tests: a `FakeThingSpace` reached in-process and, in a second run of each test, over
real HTTP (the session's one server, tests/conftest.py)."""

from __future__ import annotations

import functools

import pytest

from fota_callbacks.testing import FakeThingSpace
from tests.support.fakes import Connected, http_client
from tests.support.harness import Switchboard


@pytest.fixture(params=["in-process", "http"])
def connected(request: pytest.FixtureRequest, _switchboard: tuple[Switchboard, str]) -> Connected:
    """Each test using it runs twice: with `fake.client()`, and with a plain client over real HTTP."""
    fake = FakeThingSpace()
    if request.param == "in-process":
        return Connected(fake, fake.client, request.param)
    board, base_url = _switchboard
    board.app = fake.asgi_app
    return Connected(fake, functools.partial(http_client, base_url), request.param)
