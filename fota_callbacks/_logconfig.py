"""`FOTA_CALLBACKS_LOG=debug|info|warning`: the package's log records on stderr at that level, with no code.

Like `OPENAI_LOG`: set it to see what the SDK does (every attempt at `debug`, retries at `info`) without
configuring logging. A handler is added to the `fota_callbacks` logger only, so other libraries' logging is left as
it was; an application that configures logging itself sets the `fota_callbacks` logger's level instead.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Final

from ._logsafe import printable

__all__ = ["ENVIRONMENT_VARIABLE", "configure_from_environment"]

ENVIRONMENT_VARIABLE: Final = "FOTA_CALLBACKS_LOG"
_LEVELS: Final = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}
_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_from_environment() -> None:
    """Apply `FOTA_CALLBACKS_LOG` (run once, when the package is imported). A value that is not one of the levels
    is reported in one line on stderr and otherwise ignored: a typo in a variable never stops a service."""
    value = os.environ.get(ENVIRONMENT_VARIABLE, "").strip()
    if not value:
        return
    level = _LEVELS.get(value.lower())
    if level is None:
        sys.stderr.write(
            f"fota_callbacks: ignoring {ENVIRONMENT_VARIABLE}={printable(value, 40)!r}: "
            f"expected one of {', '.join(_LEVELS)}\n"
        )
        return
    logger = logging.getLogger("fota_callbacks")
    if not any(handler.get_name() == ENVIRONMENT_VARIABLE for handler in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.set_name(ENVIRONMENT_VARIABLE)  # found again if the package is imported anew: one handler
        handler.setFormatter(logging.Formatter(_FORMAT))
        logger.addHandler(handler)
    logger.setLevel(level)
