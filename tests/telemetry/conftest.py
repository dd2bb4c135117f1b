"""The `otel` fixture: an OpenTelemetry SDK reporting to memory, shut down after the test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.telemetry import Otel


@pytest.fixture
def otel() -> Iterator[Otel]:
    reported = Otel()
    yield reported
    reported.shutdown()
