"""Each adapter imports only its framework: without it, a clear ImportError naming the extra to install; the plain
ASGI adapter and the receiver core need none. Run in fresh interpreters where the frameworks cannot be imported."""

from __future__ import annotations

import subprocess
import sys

import pytest

FRAMEWORKS = ("fastapi", "starlette", "aiohttp", "django", "uvicorn")


def _import_without_frameworks(module: str) -> subprocess.CompletedProcess[str]:
    hide = "; ".join(f"sys.modules[{name!r}] = None" for name in FRAMEWORKS)  # `import name` then raises
    code = f"import sys; {hide}; import {module}; print('imported')"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("module", "framework", "extra"),
    [
        ("fota_callbacks.integrations.fastapi", "FastAPI", "fastapi"),
        ("fota_callbacks.integrations.aiohttp", "aiohttp", "aiohttp"),
        ("fota_callbacks.integrations.django", "Django", "django"),
    ],
)
def test_an_adapter_without_its_framework_names_the_extra(module: str, framework: str, extra: str) -> None:
    outcome = _import_without_frameworks(module)
    assert outcome.returncode != 0
    last = outcome.stderr.strip().splitlines()[-1]
    assert last == f"ImportError: {module} needs {framework}: pip install 'fota-callbacks[{extra}]'"


@pytest.mark.parametrize("module", ["fota_callbacks.integrations.asgi", "fota_callbacks.receiver"])
def test_the_asgi_adapter_and_the_core_need_no_framework(module: str) -> None:
    outcome = _import_without_frameworks(module)
    assert (outcome.returncode, outcome.stdout) == (0, "imported\n"), outcome.stderr
