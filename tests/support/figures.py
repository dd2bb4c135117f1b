"""Figures the reliability tests measure (load held, faults injected, inputs tried, nothing lost), printed in
the terminal summary of the run by tests/conftest.py under `FOTA_STRESS=1` (`nox -s stress`) only: the bounded
form in every `pytest -q` keeps its output to the test results."""

from __future__ import annotations

import threading

from tests.support.scale import STRESS

__all__ = ["add", "lines", "report"]

_lock = threading.Lock()
_figures: dict[str, dict[str, object]] = {}


def report(name: str, **values: object) -> None:
    """Set the figures of `name` (a test, or a test and its parameters)."""
    with _lock:
        _figures.setdefault(name, {}).update(values)


def add(name: str, **counts: int) -> None:
    """Add `counts` to the figures of `name` (e.g. the inputs tried by each example of a property)."""
    with _lock:
        row = _figures.setdefault(name, {})
        for key, value in counts.items():
            previous = row.get(key, 0)
            row[key] = (previous if isinstance(previous, int) else 0) + value


def lines() -> list[str]:
    """One line per name, in the order first reported; none outside the full form."""
    if not STRESS:
        return []
    with _lock:
        return [
            f"{name}: " + ", ".join(f"{key}={_shown(value)}" for key, value in row.items())
            for name, row in _figures.items()
        ]


def _shown(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)
