"""Benchmarks of fota_callbacks against raw httpx: `python -m benchmarks.run` (see benchmarks/README.md)."""
