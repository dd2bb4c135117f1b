"""Cold start: import + first client construction, each in a fresh interpreter, SDK vs httpx.

Every sample is a new `python -c` process (bytecode caches and the OS page cache warm, as on a server that
restarts); the snippet times itself (process CPU time, the primary figure because other processes share
these cores, and wall time) from before its first import to after the client exists, so the interpreter's
own start-up is left out (it is reported separately, as the whole process's wall time).
The variants run interleaved, sample by sample (order reversed every other sample), after one discarded run
each. The "dependency floor" row (httpx, attrs, cattrs, anyio imported, an httpx client made) is what any
SDK on these dependencies pays before its own code.

Bytecode: an editable install under PYTHONDONTWRITEBYTECODE=1 (as on these machines) would compile the SDK
from source in every process while httpx's wheel ships compiled files, which is not what users run. The
children therefore run with PYTHONDONTWRITEBYTECODE unset and PYTHONPYCACHEPREFIX set to a directory under
the temp dir, for both variants alike: the discarded first run compiles, the measured runs read caches.
The repository tree is not written to.

Standalone: `python -m benchmarks.coldstart [--samples N]`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from ._common import cpu_layout, median, pin_to_cpu, render_table

__all__ = ["VARIANTS", "ColdStartResult", "format_coldstart", "main", "measure"]

COLD_START_TARGET = 0.8
"""`import fota_callbacks` + a client over `import httpx` + `httpx.AsyncClient()`, CPU (issue 25; 1.25x, issue 17)."""

_TIMED = """\
import time
_c0, _t0 = time.process_time(), time.perf_counter()
{body}
_c1, _t1 = time.process_time(), time.perf_counter()
print(repr(_c1 - _c0), repr(_t1 - _t0))
"""

VARIANTS: dict[str, str] = {
    "sdk": 'import fota_callbacks\nclient = fota_callbacks.FotaCallbacksClient(access_token="x", m2m_token="y")',
    "httpx": "import httpx\nclient = httpx.AsyncClient()",
    "dependency floor": "import httpx, attrs, cattrs, anyio\nclient = httpx.AsyncClient()",
    "sdk import only": "import fota_callbacks",
    "httpx import only": "import httpx",
    "python -c pass": "pass",
}
_LABELS = {
    "sdk": "import fota_callbacks + FotaCallbacksClient(access_token=, m2m_token=)",
    "httpx": "import httpx + httpx.AsyncClient()",
    "dependency floor": "import httpx, attrs, cattrs, anyio + httpx.AsyncClient()",
    "sdk import only": "import fota_callbacks",
    "httpx import only": "import httpx",
    "python -c pass": "interpreter alone (python -c pass)",
}


@dataclass
class ColdStartResult:
    """Per variant: the child's CPU and wall seconds from first import to client built, and the whole process's
    wall seconds as seen by the parent."""

    samples: int
    cpu_s: dict[str, list[float]] = field(default_factory=dict)
    wall_s: dict[str, list[float]] = field(default_factory=dict)
    process_wall_s: dict[str, list[float]] = field(default_factory=dict)

    def ratio(self, metric: str = "cpu") -> float:
        values = self.cpu_s if metric == "cpu" else self.wall_s
        return median(values["sdk"]) / median(values["httpx"])

    def summary(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "median_cpu_ms": {k: median(v) * 1e3 for k, v in self.cpu_s.items()},
            "median_wall_ms": {k: median(v) * 1e3 for k, v in self.wall_s.items()},
            "median_process_wall_ms": {k: median(v) * 1e3 for k, v in self.process_wall_s.items()},
            "sdk_over_httpx_cpu": self.ratio("cpu"),
            "sdk_over_httpx_wall": self.ratio("wall"),
        }


PYCACHE_PREFIX = os.path.join(tempfile.gettempdir(), "fota-callbacks-bench-pycache")


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = PYCACHE_PREFIX
    return env


def _one(body: str) -> tuple[float, float, float]:
    """(child CPU s, child wall s, whole process wall s) of one fresh interpreter running `body`."""
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", _TIMED.format(body=body)],
        check=True,
        capture_output=True,
        text=True,
        env=_child_env(),
    ).stdout
    process_wall = time.perf_counter() - started
    cpu, wall = (float(v) for v in out.strip().splitlines()[-1].split())
    return cpu, wall, process_wall


def measure(samples: int, variants: dict[str, str] | None = None) -> ColdStartResult:
    chosen = VARIANTS if variants is None else variants
    result = ColdStartResult(
        samples,
        cpu_s={name: [] for name in chosen},
        wall_s={name: [] for name in chosen},
        process_wall_s={name: [] for name in chosen},
    )
    for body in chosen.values():
        _one(body)  # discarded: compiles bytecode into the cache prefix, fills the page cache
    for sample in range(samples):
        order = list(chosen.items())
        for name, body in order if sample % 2 == 0 else reversed(order):
            cpu, wall, process_wall = _one(body)
            result.cpu_s[name].append(cpu)
            result.wall_s[name].append(wall)
            result.process_wall_s[name].append(process_wall)
    return result


def format_coldstart(result: ColdStartResult) -> str:
    rows = []
    for name, values in result.cpu_s.items():
        rows.append(
            [
                _LABELS.get(name, name),
                f"{median(values) * 1e3:.1f}",
                f"{min(values) * 1e3:.1f}-{max(values) * 1e3:.1f}",
                f"{median(result.wall_s[name]) * 1e3:.1f}",
                f"{median(result.process_wall_s[name]) * 1e3:.1f}",
            ]
        )
    ratio = result.ratio("cpu")
    verdict = "ok" if ratio <= COLD_START_TARGET else "MISS"
    table = render_table(
        ["fresh interpreter, from first import", "CPU ms", "CPU min-max", "wall ms", "whole process wall ms"],
        rows,
        f"Cold start: medians of {result.samples} fresh subprocesses per variant, interleaved; bytecode cached "
        f"(PYTHONPYCACHEPREFIX={PYCACHE_PREFIX})",
    )
    floor = ""
    if "dependency floor" in result.cpu_s:
        floor_ratio = median(result.cpu_s["dependency floor"]) / median(result.cpu_s["httpx"])
        floor = f"; the dependency floor alone (no SDK code): {floor_ratio:.2f}x"
    return (
        f"{table}\nSDK / httpx, import + construction: CPU {ratio:.2f}x (target <= {COLD_START_TARGET:.2f}x: "
        f"{verdict}), wall {result.ratio('wall'):.2f}x{floor}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    layout = cpu_layout()
    pin_to_cpu(None if layout is None else layout[1])
    result = measure(args.samples)
    print(json.dumps(result.summary(), indent=2) if args.json else format_coldstart(result))


if __name__ == "__main__":
    main()
