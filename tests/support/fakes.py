"""How the fake's tests reach a `FakeThingSpace`: in-process, or over real HTTP with a plain client."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import attrs

import fota_callbacks as fota
from fota_callbacks.testing import FakeThingSpace

__all__ = ["Call", "Connected", "http_client"]

Call = Callable[[fota.FotaCallbacksClient], Awaitable[object]]
"""One SDK call a parametrized test makes."""


@attrs.frozen
class Connected:
    """A fake, and how to make an SDK client that reaches it (in-process, or over HTTP): the `connected` fixture
    (tests/fake/conftest.py)."""

    fake: FakeThingSpace
    client: Callable[..., fota.FotaCallbacksClient]
    mode: str


def http_client(base_url: str, **kwargs: Any) -> fota.FotaCallbacksClient:
    """A plain client (default transport: httpx) for a fake served at `base_url`, with credentials the fake takes."""
    credentials = {"client_id": "id", "client_secret": "secret", "username": "user", "password": "pw"}
    return fota.FotaCallbacksClient(base_url=base_url, **{**credentials, **kwargs})
