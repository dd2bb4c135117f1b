"""Glue for web frameworks, each behind its own extra: `fota_callbacks.integrations.fastapi` (`[fastapi]`)."""
