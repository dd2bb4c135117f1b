"""Sentinel secrets, and the guard that fails a test when one shows in a log record or in captured output.

The sentinels are random for each run, so that no fixed string in the code base can match them by chance.
tests/reliability/test_secrets.py drives the whole client surface with them; tests/conftest.py installs `GUARD` for the
session (a logging handler on the root logger and on the loggers of the SDK, httpx, httpcore and uvicorn, which
do not all propagate) and checks each test's captured output and the records logged during it. Spans and metrics
are swept too (`telemetry_leaks`): besides the secrets, they must not hold a body (`SENTINEL_BODY_FIELD`) or an
authorization header.

The guard is cheap: it sees only the records that the loggers' levels let through (tests that want DEBUG set
it), and a check is a handful of substring searches.
"""

from __future__ import annotations

import base64
import logging
import secrets
import threading
import traceback
from collections.abc import Iterable

__all__ = [
    "GUARD",
    "GUARDED_LOGGERS",
    "SENTINELS",
    "SENTINEL_ACCESS_TOKEN",
    "SENTINEL_BODY_FIELD",
    "SENTINEL_CALLBACK_PASSWORD",
    "SENTINEL_CLIENT_ID",
    "SENTINEL_CLIENT_SECRET",
    "SENTINEL_M2M_TOKEN",
    "SENTINEL_PASSWORD",
    "SENTINEL_WRONG_PASSWORD",
    "SENTINEL_WRONG_SECRET",
    "SecretGuard",
    "telemetry_leaks",
]

_RUN = secrets.token_hex(6)

SENTINEL_CLIENT_ID = f"sentinel-client-id-{_RUN}"
"""Not a secret (client ids show in `repr`); part of the Basic credentials, whose encoding is one."""
SENTINEL_CLIENT_SECRET = f"sentinel-client-secret-{_RUN}"
SENTINEL_WRONG_SECRET = f"sentinel-wrong-secret-{_RUN}"
SENTINEL_PASSWORD = f"sentinel-password-{_RUN}"
SENTINEL_WRONG_PASSWORD = f"sentinel-wrong-password-{_RUN}"
SENTINEL_ACCESS_TOKEN = f"sentinel-access-token-{_RUN}"
SENTINEL_M2M_TOKEN = f"sentinel-m2m-token-{_RUN}"
SENTINEL_CALLBACK_PASSWORD = f"sentinel-callback-password-{_RUN}"
SENTINEL_BODY_FIELD = f"sentinel-body-field-{_RUN}"
"""Not a secret: a value that exists only inside bodies (a callback's field), to tell a body that was recorded."""


def _basic(client_id: str, client_secret: str) -> str:
    return base64.b64encode(f"{client_id}:{client_secret}".encode()).decode("ascii")


SENTINELS: dict[str, str] = {
    "client secret": SENTINEL_CLIENT_SECRET,
    "wrong client secret": SENTINEL_WRONG_SECRET,
    "M2M password": SENTINEL_PASSWORD,
    "wrong M2M password": SENTINEL_WRONG_PASSWORD,
    "static access token": SENTINEL_ACCESS_TOKEN,
    "static M2M token": SENTINEL_M2M_TOKEN,
    "V1 callback password": SENTINEL_CALLBACK_PASSWORD,
    "Basic credentials": _basic(SENTINEL_CLIENT_ID, SENTINEL_CLIENT_SECRET),
    "wrong Basic credentials": _basic(SENTINEL_CLIENT_ID, SENTINEL_WRONG_SECRET),
}
"""What the secret is -> its value. Never print a value: name it."""

GUARDED_LOGGERS = ("", "fota_callbacks", "httpx", "httpcore", "uvicorn", "uvicorn.error", "uvicorn.access")
"""The root logger, and those that may not propagate to it (uvicorn's own configuration stops propagation)."""

_STANDARD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class SecretGuard(logging.Handler):
    """Remembers every log record that contains a watched secret, and scans text for them."""

    def __init__(self, watched: dict[str, str]) -> None:
        super().__init__(level=logging.DEBUG)
        self._watched = dict(watched)
        self._leaks: list[str] = []
        self._leaks_lock = threading.Lock()
        self._installed = False
        self._last: logging.LogRecord | None = None

    # -- what is watched ---------------------------------------------------------------------------------------

    def watch(self, name: str, *values: str) -> None:
        """Watch more secrets, e.g. the tokens a fake issued during a test. Values shorter than 8 characters
        would match by chance and are not watched."""
        for value in values:
            if len(value) >= 8 and value not in self._watched.values():
                self._watched[f"{name} #{len(self._watched)}"] = value

    @property
    def watched(self) -> dict[str, str]:
        return dict(self._watched)

    def found_in(self, text: str) -> list[str]:
        """The names of the watched secrets in `text`."""
        return [name for name, value in self._watched.items() if value in text]

    def found_in_any(self, texts: Iterable[str]) -> list[str]:
        names: list[str] = []
        for text in texts:
            names.extend(name for name in self.found_in(text) if name not in names)
        return names

    # -- log records -------------------------------------------------------------------------------------------

    def emit(self, record: logging.LogRecord) -> None:
        if record is self._last:  # attached to a logger and to its parent: the same record comes twice
            return
        self._last = record
        names = self.found_in_any(_record_texts(record))
        if names:
            with self._leaks_lock:
                self._leaks.append(f"{', '.join(names)} in a {record.levelname} record of logger {record.name!r}")

    def take_leaks(self) -> list[str]:
        """The leaks seen since the last call (each names the secret and the logger), forgotten here."""
        with self._leaks_lock:
            leaks, self._leaks = self._leaks, []
        return leaks

    def install(self) -> None:
        self._installed = True
        self.ensure_attached()

    def ensure_attached(self) -> None:
        """(Re)attach to the guarded loggers: `logging.config.dictConfig` (which uvicorn runs when a server is
        configured) removes the handlers of the loggers it configures."""
        if not self._installed:
            return
        for name in GUARDED_LOGGERS:
            logger = logging.getLogger(name)
            if self not in logger.handlers:
                logger.addHandler(self)

    def uninstall(self) -> None:
        self._installed = False
        for name in GUARDED_LOGGERS:
            logging.getLogger(name).removeHandler(self)


def _record_texts(record: logging.LogRecord) -> list[str]:
    """All that a formatter or a structured-logging handler could show of `record`."""
    try:
        texts = [record.getMessage()]
    except Exception:  # a malformed record: what it holds is checked below anyway
        texts = [str(record.msg)]
    if record.args:
        texts.append(repr(record.args))
    for key, value in record.__dict__.items():
        if key not in _STANDARD_ATTRIBUTES and value is not None:
            texts.append(repr(value))
    if record.exc_info and record.exc_info[1] is not None:
        texts.append("".join(traceback.format_exception(record.exc_info[1])))
    if record.stack_info:
        texts.append(record.stack_info)
    return texts


GUARD = SecretGuard(SENTINELS)
"""The one guard of the test session."""


def telemetry_leaks(texts: Iterable[str], guard: SecretGuard = GUARD) -> list[str]:
    """What the exported spans and metrics (as text, e.g. their JSON) show that they never may: a watched secret,
    a body (its sentinel field), or an authorization header (a `Basic`/`Bearer` credential)."""
    texts = list(texts)
    leaks = guard.found_in_any(texts)
    if any(SENTINEL_BODY_FIELD in text for text in texts):
        leaks.append("a body (its sentinel field)")
    if any(marker in text.lower() for text in texts for marker in ("authorization", "bearer ", "basic ")):
        leaks.append("an authorization header")
    return leaks
