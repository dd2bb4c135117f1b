"""What the tests share: harnesses, servers, wire cases, stress scaling, the sentinel secrets."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
"""The repository's root."""
