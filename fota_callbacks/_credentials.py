"""Deciding, from arguments and the environment, where a client's two credentials come from."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence

from ._auth import Auth, StaticToken, TokenSource, _OAuthToken, _SessionLogin
from ._environments import M2M_LOGIN_PATH, M2M_LOGOUT_PATH, OAUTH_TOKEN_PATH
from ._errors import InvalidArgumentError, MissingCredentialsError

__all__ = ["env", "resolve_credentials"]


def env(name: str) -> str | None:
    """An environment variable; an empty one counts as unset."""
    return os.environ.get(name) or None


def _token_source(value: object, parameter: str) -> TokenSource:
    if isinstance(value, str):
        return StaticToken(value, parameter=parameter)
    if isinstance(value, TokenSource):
        return value
    raise InvalidArgumentError(parameter, f"expected a str or a TokenSource, got {type(value).__name__}")


def _pair(first: tuple[str, str | None, str], second: tuple[str, str | None, str]) -> tuple[str, str] | None:
    """A credential pair, each half from its argument or else its environment variable; None if neither half
    is anywhere. `first`/`second` are (parameter, argument, variable)."""
    (first_name, first_arg, first_var), (second_name, second_arg, second_var) = first, second
    first_value = first_arg if first_arg is not None else env(first_var)
    second_value = second_arg if second_arg is not None else env(second_var)
    if first_value is None and second_value is None:
        return None
    if first_value is None or second_value is None:
        missing, variable = (first_name, first_var) if first_value is None else (second_name, second_var)
        given = second_name if first_value is None else first_name
        raise MissingCredentialsError(
            missing, f"{given} is set but {missing} is not (pass {missing}= or set {variable})"
        )
    return first_value, second_value


def resolve_credentials(
    root: str,
    *,
    client_id: str | None,
    client_secret: str | None,
    access_token: str | TokenSource | None,
    m2m_token: str | TokenSource | None,
    username: str | None,
    password: str | None,
    scopes: Sequence[str],
    clock: Callable[[], float] = time.monotonic,
) -> Auth:
    """The client's credentials: arguments first, then the environment. Raises before anything exists that
    would need closing, naming what is missing or contradictory."""
    if access_token is not None:
        if client_id is not None or client_secret is not None:
            raise InvalidArgumentError("access_token", "pass either access_token or client_id/client_secret")
        bearer: TokenSource | _OAuthToken = _token_source(access_token, "access_token")
    else:
        oauth = _pair(
            ("client_id", client_id, "THINGSPACE_CLIENT_ID"),
            ("client_secret", client_secret, "THINGSPACE_CLIENT_SECRET"),
        )
        if oauth is None:
            raise MissingCredentialsError(
                "client_id",
                "no OAuth credentials: pass client_id and client_secret (or set THINGSPACE_CLIENT_ID and "
                "THINGSPACE_CLIENT_SECRET), or pass access_token",
            )
        bearer = _OAuthToken(*oauth, scopes=scopes, token_url=root + OAUTH_TOKEN_PATH, clock=clock)
    if m2m_token is not None:
        if username is not None or password is not None:
            raise InvalidArgumentError("m2m_token", "pass either m2m_token or username/password")
        return Auth(bearer, _token_source(m2m_token, "m2m_token"))
    # A static token from the environment only when no login half was passed; then a login from the environment.
    from_env = env("THINGSPACE_M2M_TOKEN") if username is None and password is None else None
    if from_env is not None:
        return Auth(bearer, _token_source(from_env, "m2m_token"))
    login = _pair(("username", username, "THINGSPACE_USERNAME"), ("password", password, "THINGSPACE_PASSWORD"))
    if login is None:
        raise MissingCredentialsError(
            "m2m_token",
            "no M2M session credentials: pass m2m_token (or set THINGSPACE_M2M_TOKEN), or username and "
            "password (or set THINGSPACE_USERNAME and THINGSPACE_PASSWORD)",
        )
    session = _SessionLogin(
        *login, bearer=bearer, login_url=root + M2M_LOGIN_PATH, logout_url=root + M2M_LOGOUT_PATH, clock=clock
    )
    return Auth(bearer, session)
