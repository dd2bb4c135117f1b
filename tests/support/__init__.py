"""What the tests share, each defined once: the harness (scripted servers, `client_on`, `list_once`, `Recorder`,
`make_transport`, probes such as `no_wait`), the transports by kind, how the fake's tests reach it, servers, wire
cases, stress scaling, the sentinel secrets."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
"""The repository's root."""
