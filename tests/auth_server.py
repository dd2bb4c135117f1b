"""The probes' older address: they live in tests/harness.py."""

from tests.harness import (
    FakeClock,
    LogCapture,
    RecordingSleep,
    assert_no_secret,
    capture_logs,
    json_response,
    resource_warnings,
    wait_until,
)

__all__ = [
    "FakeClock",
    "LogCapture",
    "RecordingSleep",
    "assert_no_secret",
    "capture_logs",
    "json_response",
    "resource_warnings",
    "wait_until",
]
