"""FastAPI glue (extra `fastapi`): one shared client per app, and a router that receives callback messages.

```python
from fastapi import FastAPI
import fota_callbacks as fota
from fota_callbacks.integrations.fastapi import FotaClient, callback_router, fota_lifespan

async def on_message(message: fota.CallbackMessage) -> None:
    ...

app = FastAPI(lifespan=fota_lifespan())            # a FotaCallbacksClient from the THINGSPACE_* variables
app.include_router(callback_router(on_message, username="listener", password="s3cret", allowed_ips="verizon"))

@app.get("/callback-url")
async def callback_url(client: FotaClient) -> str | None:
    return (await client.v2.list_registered_callbacks("0000123456-00001")).url
```
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any, Final, Literal, TypeVar

try:
    from fastapi import APIRouter, Depends
    from starlette.applications import Starlette
    from starlette.background import BackgroundTask
    from starlette.requests import HTTPConnection, Request
    from starlette.responses import JSONResponse, Response
    from starlette.types import Receive, Scope, Send
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "fota_callbacks.integrations.fastapi needs FastAPI: pip install 'fota-callbacks[fastapi]'"
    ) from exc

from .._client import FotaCallbacksClient
from ..callbacks import VERIZON_CALLBACK_SOURCE_IPS, CallbackMessage, CallbackParseError, parse_callback_message
from ._route import ASGI_ATTRIBUTE, CallbackRoute, receive_body

__all__ = [
    "DEFAULT_CALLBACK_PATH",
    "DEFAULT_MAX_BODY_SIZE",
    "STATE_KEY",
    "CallbackHandler",
    "FotaClient",
    "callback_router",
    "fota_lifespan",
    "get_app_client",
    "get_client",
]

logger = logging.getLogger("fota_callbacks.integrations.fastapi")

STATE_KEY: Final = "fota_client"
"""The `app.state` attribute that holds the shared client while the app runs."""

DEFAULT_CALLBACK_PATH: Final = "/fota/callbacks"
DEFAULT_MAX_BODY_SIZE: Final = 1024 * 1024
"""Larger callback bodies are refused with 413 (the documented messages are a few KiB)."""

AppT = TypeVar("AppT", bound=Starlette)
CallbackHandler = Callable[[CallbackMessage], Awaitable[object]]
"""`async def handler(message: CallbackMessage) -> None`; what it returns is ignored."""


# --- one shared client --------------------------------------------------------------------------------------------


def fota_lifespan(
    client_factory: Callable[[], FotaCallbacksClient] = FotaCallbacksClient,
    *,
    lifespan: Callable[[AppT], AbstractAsyncContextManager[Any]] | None = None,
) -> Callable[[AppT], AbstractAsyncContextManager[Any]]:
    """A lifespan for `FastAPI(lifespan=...)` that makes one client at startup and closes it at shutdown.

    `client_factory()` makes the client (default: `FotaCallbacksClient()`, credentials from the `THINGSPACE_*`
    variables). It is stored as `app.state.fota_client` and handed to endpoints by `get_client` / `FotaClient`.
    The app's own `lifespan` runs inside: after the client exists (so its startup can already call ThingSpace,
    e.g. to register the callback URL) and before the client is closed; what it yields is passed on.
    """

    @contextlib.asynccontextmanager
    async def run(app: AppT) -> AsyncIterator[Any]:
        async with client_factory() as client:
            setattr(app.state, STATE_KEY, client)
            try:
                if lifespan is None:
                    yield None
                else:
                    async with lifespan(app) as state:
                        yield state
            finally:
                delattr(app.state, STATE_KEY)

    return run


def get_app_client(app: Starlette) -> FotaCallbacksClient:
    """The client `fota_lifespan` opened for `app`; `RuntimeError` when it is not running."""
    client = getattr(app.state, STATE_KEY, None)
    if not isinstance(client, FotaCallbacksClient):
        raise RuntimeError(
            "no FotaCallbacksClient for this app: create it with FastAPI(lifespan=fota_lifespan(...)) "
            "and serve it with lifespan events on"
        )
    return client


async def get_client(connection: HTTPConnection) -> FotaCallbacksClient:
    """FastAPI dependency: the app's shared client (see `fota_lifespan`)."""
    return get_app_client(connection.app)


FotaClient = Annotated[FotaCallbacksClient, Depends(get_client)]
"""Annotate an endpoint parameter with it to receive the shared client: `async def f(client: FotaClient)`."""


# --- receiving callback messages ------------------------------------------------------------------------------------

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(allowed_ips: Literal["verizon"] | Iterable[str] | None) -> tuple[_Network, ...] | None:
    if allowed_ips is None:
        return None
    if isinstance(allowed_ips, str):
        if allowed_ips != "verizon":
            raise ValueError(f"allowed_ips: expected 'verizon' or an iterable of addresses, got {allowed_ips!r}")
        allowed_ips = sorted(VERIZON_CALLBACK_SOURCE_IPS)
    try:
        return tuple(ipaddress.ip_network(entry, strict=False) for entry in allowed_ips)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"allowed_ips: {exc}") from None


def _source_allowed(host: str | None, networks: tuple[_Network, ...]) -> bool:
    if host is None:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # a dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d
    return any(address in network for network in networks)


def _secret_bytes(value: str | None) -> bytes:
    # surrogatepass: a JSON "\ud800" escape is a valid str that strict UTF-8 cannot encode.
    return (value or "").encode("utf-8", "surrogatepass")


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks = bytearray()
    async for chunk in request.stream():
        chunks += chunk
        if len(chunks) > limit:
            return None
    return bytes(chunks)


def _error(status_code: int, error: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status_code)


_OK_BODY: Final = b'{"status":"ok"}'


def _ok() -> Response:
    return Response(_OK_BODY, media_type="application/json")


async def _send_ok(send: Send) -> None:
    # The common answer, rendered once; fresh message dicts each time (middleware may edit them in place).
    headers = [(b"content-length", b"%d" % len(_OK_BODY)), (b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": _OK_BODY})


def callback_router(
    handler: CallbackHandler,
    *,
    path: str = DEFAULT_CALLBACK_PATH,
    username: str | None = None,
    password: str | None = None,
    allowed_ips: Literal["verizon"] | Iterable[str] | None = None,
    background: bool = False,
    max_body_size: int = DEFAULT_MAX_BODY_SIZE,
) -> APIRouter:
    """An `APIRouter` with one `POST path` endpoint that receives ThingSpace callback messages.

    For each request, in this order:
    - `allowed_ips`: when given, the peer address must be in it, else 403. `"verizon"` is the published list
      (`VERIZON_CALLBACK_SOURCE_IPS`); or pass addresses and CIDR networks. The peer is the ASGI client
      address: behind a reverse proxy, let the server rewrite it from trusted headers
      (uvicorn `--proxy-headers --forwarded-allow-ips=...`); `X-Forwarded-For` is never read here.
    - a body larger than `max_body_size` bytes: 413.
    - `parse_callback_message`: a body that is not a JSON object gives 400 with a JSON error; the handler is
      not called.
    - `username` / `password`: each one given must equal the value echoed in the message (V1 registration
      credentials), compared in constant time, else 401.
    - `await handler(message)`, then 200 `{"status": "ok"}`. If the handler raises, 500
      `{"error": "internal_error"}` (the exception is logged, never sent). With `background=True` the answer
      is 202 at once and the handler runs after it is sent (its failures are only logged): use it when the
      handler is slow.
    The password is never logged.
    """
    networks = _networks(allowed_ips)
    if username == "" or password == "":
        raise ValueError("username/password: an empty value would accept messages without credentials")
    expected_username, expected_password = _secret_bytes(username), _secret_bytes(password)
    if isinstance(max_body_size, bool) or not isinstance(max_body_size, int) or max_body_size < 1:
        raise ValueError(f"max_body_size: expected a positive int, got {max_body_size!r}")

    async def run_handler(message: CallbackMessage) -> None:
        try:
            await handler(message)
        except Exception:
            logger.exception("the FOTA callback handler failed on a %s message", message.type)

    def refuse_source(host: str | None) -> Response | None:
        if networks is not None and not _source_allowed(host, networks):
            logger.warning("refused a FOTA callback from %s: address not allowed", host or "unknown")
            return _error(403, "forbidden", "this address may not send callback messages")
        return None

    async def answer(host: str | None, body: bytes | None) -> Response | None:
        """The answer to a callback request with this body from this peer; None: 200 {"status": "ok"}."""
        peer = host or "unknown"
        if body is None:
            return _error(413, "too_large", f"callback bodies are limited to {max_body_size} bytes")
        try:
            message = parse_callback_message(body)
        except CallbackParseError as exc:
            logger.warning("refused a FOTA callback from %s: %s", peer, exc)
            return _error(400, "malformed_callback", str(exc))
        if username is not None or password is not None:
            # Both configured comparisons always run: which one failed must not show in the timing.
            username_ok = username is None or hmac.compare_digest(_secret_bytes(message.username), expected_username)
            password_ok = password is None or hmac.compare_digest(_secret_bytes(message.password), expected_password)
            if not (username_ok and password_ok):
                logger.warning("refused a FOTA callback from %s: wrong username or password", peer)
                return _error(401, "unauthorized", "wrong or missing username/password in the message")
        if background:
            return JSONResponse(
                {"status": "accepted"}, status_code=202, background=BackgroundTask(run_handler, message)
            )
        try:
            await handler(message)
        except Exception:
            logger.exception("the FOTA callback handler failed on a %s message", message.type)
            return _error(500, "internal_error", "the callback could not be processed")
        return None

    async def receive_callback(request: Request) -> Response:
        host = request.client.host if request.client is not None else None
        response = refuse_source(host) or await answer(host, await _read_body(request, max_body_size))
        return _ok() if response is None else response

    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        # The direct path (see CallbackRoute): the same checks and answers, read straight from ASGI.
        client = scope.get("client")
        host = client[0] if client else None
        response = refuse_source(host) or await answer(host, await receive_body(scope, receive, max_body_size))
        if response is None:
            await _send_ok(send)
        else:
            await response(scope, receive, send)

    setattr(receive_callback, ASGI_ATTRIBUTE, serve)
    router = APIRouter()
    router.add_api_route(
        path,
        receive_callback,
        route_class_override=CallbackRoute,
        methods=["POST"],
        summary="Receive a ThingSpace FOTA callback message",
        response_class=JSONResponse,
        responses={
            400: {"description": "The body is not a JSON object"},
            401: {"description": "Wrong username/password echoed in the message"},
            403: {"description": "The source address is not allowed"},
            413: {"description": "The body is too large"},
            500: {"description": "The handler failed"},
        },
    )
    return router
