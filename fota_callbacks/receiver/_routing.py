"""The answers of an adapter's routing, the same in every framework: a method the path does not take, a path the
adapter does not serve."""

from __future__ import annotations

import json

__all__ = ["method_not_allowed_answer", "not_found_answer"]


def _json(data: dict[str, str]) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


_USE_POST = _json({"error": "method_not_allowed", "detail": "use POST"})


def method_not_allowed_answer(allow: str = "POST") -> tuple[int, bytes]:
    """405 `{"error":"method_not_allowed","detail":"use POST"}` for another method on the callback path (send it
    with `Allow: POST`); `allow="GET"` for the health paths."""
    if allow == "POST":
        return 405, _USE_POST
    return 405, _json({"error": "method_not_allowed", "detail": f"use {allow}"})


def not_found_answer(path: str) -> tuple[int, bytes]:
    """404 `{"error":"not_found","detail":"callbacks are received on PATH"}` for a path the adapter does not serve."""
    return 404, _json({"error": "not_found", "detail": f"callbacks are received on {path}"})
