"""A test run's output stays short: the reliability figures are printed only by `nox -s stress` (`FOTA_STRESS=1`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT

MODULE = """
from tests.support import figures

def test_measures_something():
    figures.report("soak: a figure", calls=20000)
"""


@pytest.mark.parametrize(("stress", "shown"), [("", False), ("1", True)])
def test_reliability_figures_are_printed_only_under_fota_stress(stress: str, shown: bool, tmp_path: Path) -> None:
    module = tmp_path / "test_probe.py"
    module.write_text(MODULE, encoding="utf-8")
    outcome = subprocess.run(  # with the suite's conftest, which prints the figures at the end of a run
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest", str(module)],
        cwd=ROOT,
        env={**os.environ, "FOTA_STRESS": stress},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert outcome.returncode == 0, outcome.stdout + outcome.stderr
    assert ("soak: a figure: calls=20,000" in outcome.stdout) is shown
    assert ("reliability figures" in outcome.stdout) is shown
