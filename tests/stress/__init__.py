"""Helpers for the reliability tests (test_properties, test_hostile, test_soak, test_secrets, test_tls).

Each of those tests runs in a bounded form inside the normal `python -m pytest -q`, and in a full form when the
environment variable `FOTA_STRESS=1` is set (`nox -s stress`); the figures they measure are printed at the end of
the run (see `figures`).
"""
