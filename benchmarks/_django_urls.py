"""The URLconf of the receiver benchmark's Django apps (`benchmarks.receiver_apps`), filled when one is built."""

from __future__ import annotations

from typing import Any

urlpatterns: list[Any] = []
