"""The bounded form (the normal test run) or the full form (`FOTA_STRESS=1`) of the reliability tests."""

from __future__ import annotations

import os
from typing import TypeVar

__all__ = ["MODE", "STRESS", "scaled"]

STRESS = os.environ.get("FOTA_STRESS", "").strip().lower() not in ("", "0", "false", "no")
"""True when `FOTA_STRESS` asks for the full form."""

MODE = "full (FOTA_STRESS=1)" if STRESS else "bounded"


N = TypeVar("N", int, float)


def scaled(bounded: N, full: N) -> N:
    """A count for the bounded form, or for the full one under `FOTA_STRESS=1`."""
    return full if STRESS else bounded
