"""The built wheel: what a user installs from PyPI carries the license and says which one it is."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tests.support import ROOT


def test_the_wheel_contains_the_license(tmp_path: Path) -> None:
    # The build backend (hatchling, in the test extra) is used as installed: no build isolation, no index, so
    # this runs offline in a second or two.
    command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index"]
    built = subprocess.run([*command, "--wheel-dir", str(tmp_path), str(ROOT)], capture_output=True, text=True)
    assert built.returncode == 0, built.stdout + built.stderr
    [wheel] = tmp_path.glob("fota_callbacks-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        [license_file] = [name for name in names if name.endswith(".dist-info/licenses/LICENSE")]
        [metadata_file] = [name for name in names if name.endswith(".dist-info/METADATA")]
        license_text = archive.read(license_file).decode("utf-8")
        metadata = archive.read(metadata_file).decode("utf-8").split("\n\n", 1)[0].splitlines()
    assert license_text == (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "License-Expression: MIT" in metadata
    assert "License-File: LICENSE" in metadata
