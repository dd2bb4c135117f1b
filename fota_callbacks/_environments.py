"""Where ThingSpace lives, and the paths of its servers under a root."""

from __future__ import annotations

from urllib.parse import urlsplit

from ._errors import InvalidArgumentError
from ._models import WireEnum

__all__ = ["Environment", "M2M_LOGIN_PATH", "M2M_LOGOUT_PATH", "OAUTH_TOKEN_PATH", "resolve_root"]

OAUTH_TOKEN_PATH = "/api/ts/v1/oauth2/token"
M2M_LOGIN_PATH = "/api/m2m/v1/session/login"
M2M_LOGOUT_PATH = "/api/m2m/v1/session/logout"


class Environment(WireEnum):
    """A ThingSpace deployment. Its `root` is the URL every API path hangs off."""

    PRODUCTION = "production"
    STAGING = "staging"
    MOCK = "mock"

    @property
    def root(self) -> str:
        """The URL every API path of this deployment hangs off."""
        return _ROOTS[self]


_ROOTS = {
    Environment.PRODUCTION: "https://thingspace.verizon.com",
    Environment.STAGING: "https://staging.thingspace.verizon.com",
    Environment.MOCK: "https://mock-staging.thingspace.verizon.com",
}


def resolve_root(environment: Environment | str, base_url: str | None) -> str:
    """The root URL (no trailing slash): `base_url` when given, else the environment's."""
    if base_url is None:
        try:
            return Environment(environment).root
        except ValueError:
            allowed = ", ".join(repr(env.value) for env in Environment)
            raise InvalidArgumentError("environment", f"{environment!r} is not one of {allowed}") from None
    if not isinstance(base_url, str):
        raise InvalidArgumentError("base_url", f"expected a str, got {type(base_url).__name__}")
    # Printable ASCII only: every request URL is this root plus a path, so nothing else may hide in it.
    if not base_url.isascii() or any(not 0x20 < ord(ch) < 0x7F for ch in base_url):
        raise InvalidArgumentError("base_url", "contains whitespace, control or non-ASCII characters")
    if "?" in base_url or "#" in base_url or "@" in base_url:
        raise InvalidArgumentError("base_url", "must not carry credentials, a query or a fragment")
    try:
        parts = urlsplit(base_url)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number in range
    except ValueError:
        raise InvalidArgumentError("base_url", f"{base_url!r} is not a valid URL (malformed host or port)") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgumentError("base_url", f"{base_url!r} must be an absolute http:// or https:// URL")
    return base_url.rstrip("/")
