"""Every default number the SDK uses, in one place."""

from __future__ import annotations

from ._version import __version__

DEFAULT_TIMEOUT = 30.0
"""Seconds allowed for each attempt as a whole, from sending the request to the last byte of the body."""

DEFAULT_MAX_RETRIES = 2
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
RETRY_JITTER = 0.25
"""Each backoff delay is reduced by up to this fraction, at random, so that many clients do not retry in step."""
MAX_RETRY_AFTER = 60.0
"""A `Retry-After` longer than this is not waited for: the error is raised at once."""
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

LOGOUT_TIMEOUT = 5.0
"""`aclose()` gives the M2M session logout (with `logout_on_close`) at most this many seconds."""

TOKEN_EXPIRY_MARGIN = 60.0
"""An OAuth token is renewed this many seconds before the server says it expires (clock skew, latency)."""

MAX_RESPONSE_BYTES = 10 * 1024 * 1024
"""Bodies longer than this are refused by the bundled transports (bounded memory on a hostile server)."""

USER_AGENT = f"fota-callbacks-python/{__version__}"

SECRET_HEADERS = frozenset({"authorization", "vz-m2m-token", "cookie", "set-cookie", "proxy-authorization"})
"""Header names whose values are never shown in a repr, an error or a log line."""

REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-correlation-id", "vz-request-id")

ENSURE_ROUNDS = 4
"""`ensure_callback` looks and writes at most this many times when other callers keep changing the registration."""

PATH_SEGMENT_CACHE = 1024
"""Percent-encoded path segments (account identifiers) remembered, so a busy account is encoded once."""

MAX_CONNECTIONS = 100
"""Connections the bundled network transports keep open to ThingSpace at most (their pool size)."""
POOL_SHARD_CONNECTIONS = 4
"""An owned httpx/httpx2 pool is split into pools of at most this many connections (their per-request scans are
linear in their size; `HttpxTransport` explains)."""
KEEPALIVE_EXPIRY = 5.0
"""Seconds an idle pooled connection is kept before the bundled network transports close it."""
ACCEPT_ENCODING = "gzip, deflate"
"""The codings the bundled network transports ask for: exactly those they decode within `max_response_bytes`."""
MAX_REQUEST_BODY_BYTES = 1024 * 1024
"""Callback and fake-server request bodies longer than this are refused (413) unless configured otherwise."""

THINGSPACE_DELIVERY_PORTS = frozenset({80, 443, *range(9001, 9007), *range(28200, 28221), *range(50551, 50560)})
"""The ports ThingSpace's Connectivity Management callbacks are published to deliver to (not confirmed for FOTA:
`fota-callbacks doctor` flags another port, it does not fail it)."""
DOCTOR_ANSWER_WITHIN = 5.0
"""Seconds `fota-callbacks doctor` gives a listener to connect, to complete a TLS handshake and to answer."""
CERTIFICATE_RENEWAL_DAYS = 14
"""`fota-callbacks doctor` fails a certificate that expires within this many days (ThingSpace checks the
certificate at the start of every session)."""
