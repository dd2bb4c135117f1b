"""Glue for web frameworks over `fota_callbacks.receiver`: `fastapi` (extra `[fastapi]`), `asgi` (any ASGI server or
framework, nothing to install), `aiohttp` (extra `[aiohttp]`) and `django` (extra `[django]`)."""
