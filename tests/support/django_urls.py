"""The URLconf of the tests' Django project (tests/support/receiving.py): each test module adds its patterns."""

from __future__ import annotations

from typing import Any

urlpatterns: list[Any] = []
