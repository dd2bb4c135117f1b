"""FastAPI glue (extra `fastapi`): one shared client per app, and a router that receives callback messages.

```python
from fastapi import FastAPI
import fota_callbacks as fota
from fota_callbacks.inbox import SqliteInbox
from fota_callbacks.integrations.fastapi import FotaClient, callback_router, fota_lifespan

async def on_message(message: fota.CallbackMessage) -> None:
    ...

inbox = SqliteInbox("fota-inbox.db")               # each message stored before it is acknowledged
app = FastAPI(lifespan=fota_lifespan(inbox=inbox, handler=on_message))  # + a client from THINGSPACE_*
app.include_router(callback_router(inbox=inbox, username="listener", password="s3cret", allowed_ips="verizon"))

@app.get("/callback-url")
async def callback_url(client: FotaClient) -> str | None:
    return (await client.v2.list_registered_callbacks("0000123456-00001")).url
```
"""

from __future__ import annotations

import contextlib
import functools
import hmac
import ipaddress
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any, Final, Literal, TypeVar

import anyio

try:
    from fastapi import APIRouter, Depends
    from starlette.applications import Starlette
    from starlette.background import BackgroundTask
    from starlette.requests import ClientDisconnect, HTTPConnection, Request
    from starlette.responses import JSONResponse, Response
    from starlette.types import Receive, Scope, Send
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "fota_callbacks.integrations.fastapi needs FastAPI: pip install 'fota-callbacks[fastapi]'"
    ) from exc

from .._asgi import ClientGone, read_asgi_body
from .._client import FotaCallbacksClient
from .._constants import MAX_REQUEST_BODY_BYTES
from .._errors import InvalidArgumentError
from .._logsafe import printable
from .._validation import positive_int
from ..callbacks import VERIZON_CALLBACK_SOURCE_IPS, CallbackMessage, CallbackParseError, parse_callback_message
from ..inbox import Inbox
from ..transport._common import BodyTooLarge, read_body
from ._route import ASGI_ATTRIBUTE, CallbackRoute

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
DEFAULT_MAX_BODY_SIZE: Final = MAX_REQUEST_BODY_BYTES
"""Larger callback bodies are refused with 413 (the documented messages are a few KiB)."""

AppT = TypeVar("AppT", bound=Starlette)
CallbackHandler = Callable[[CallbackMessage], Awaitable[object]]
"""`async def handler(message: CallbackMessage) -> None`; what it returns is ignored."""


# --- one shared client --------------------------------------------------------------------------------------------


def fota_lifespan(
    client_factory: Callable[[], FotaCallbacksClient] = FotaCallbacksClient,
    *,
    lifespan: Callable[[AppT], AbstractAsyncContextManager[Any]] | None = None,
    inbox: Inbox | None = None,
    handler: CallbackHandler | None = None,
    workers: int = 1,
    max_attempts: int = 10,
) -> Callable[[AppT], AbstractAsyncContextManager[Any]]:
    """A lifespan for `FastAPI(lifespan=...)` that makes one client at startup and closes it at shutdown.

    `client_factory()` makes the client (default: `FotaCallbacksClient()`, credentials from the `THINGSPACE_*`
    variables). It is stored as `app.state.fota_client` and handed to endpoints by `get_client` / `FotaClient`.
    The app's own `lifespan` runs inside: after the client exists (so its startup can already call ThingSpace,
    e.g. to register the callback URL) and before the client is closed; what it yields is passed on.

    With `inbox` and `handler`: `inbox.run(handler, concurrency=workers, max_attempts=max_attempts)` runs for the
    app's lifetime, with the client open: up to `workers` messages are handled at once, and a message whose
    handling failed `max_attempts` times becomes a dead letter. At shutdown the worker is cancelled and awaited
    (what was being handled goes back to the inbox and is handled again after the restart), then the inbox is
    closed. With `inbox` alone the app only stores (another process runs the worker) and the inbox is closed at
    shutdown.
    """
    if handler is not None and inbox is None:
        raise InvalidArgumentError("handler", "a handler here runs an inbox's worker: pass inbox= too")
    if inbox is not None and not isinstance(inbox, Inbox):
        raise InvalidArgumentError("inbox", f"expected an Inbox (MemoryInbox, SqliteInbox, RedisInbox), got {inbox!r}")
    positive_int(workers, "workers")
    positive_int(max_attempts, "max_attempts")

    @contextlib.asynccontextmanager
    async def run(app: AppT) -> AsyncIterator[Any]:
        async with client_factory() as client, contextlib.AsyncExitStack() as stack:
            if inbox is not None:
                stack.push_async_callback(inbox.aclose)
                if handler is not None:
                    await stack.enter_async_context(_worker(inbox, handler, workers, max_attempts))
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


@contextlib.asynccontextmanager
async def _worker(inbox: Inbox, handler: CallbackHandler, workers: int, max_attempts: int) -> AsyncIterator[None]:
    """Runs the inbox's worker while the block runs; cancels and awaits it after."""
    failure: BaseException | None = None
    async with anyio.create_task_group() as worker:
        worker.start_soon(functools.partial(inbox.run, handler, concurrency=workers, max_attempts=max_attempts))
        try:
            yield
        except BaseException as exc:  # the app's own error, re-raised as it is once the worker stopped
            failure = exc
        worker.cancel_scope.cancel()
    if failure is not None:
        raise failure


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
            raise InvalidArgumentError(
                "allowed_ips", f"expected 'verizon' or an iterable of addresses, got {allowed_ips!r}"
            )
        allowed_ips = sorted(VERIZON_CALLBACK_SOURCE_IPS)
    try:
        return tuple(ipaddress.ip_network(entry, strict=False) for entry in allowed_ips)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError("allowed_ips", str(exc)) from None


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


def _peer(host: str | None) -> str:
    """The peer's address for a log line (only refusals are logged: nothing is spent on it otherwise)."""
    return printable(host or "unknown")


def _secret_bytes(value: str | None) -> bytes:
    # surrogatepass: a JSON "\ud800" escape is a valid str that strict UTF-8 cannot encode.
    return (value or "").encode("utf-8", "surrogatepass")


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The request body (FastAPI's path), or None as soon as it is known to exceed `limit` bytes."""
    try:
        return await read_body(request.stream(), limit, declared=request.headers.get("content-length"))
    except BodyTooLarge:
        return None


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
    handler: CallbackHandler | None = None,
    *,
    inbox: Inbox | None = None,
    path: str = DEFAULT_CALLBACK_PATH,
    username: str | None = None,
    password: str | None = None,
    allowed_ips: Literal["verizon"] | Iterable[str] | None = None,
    background: bool = False,
    max_body_size: int = DEFAULT_MAX_BODY_SIZE,
) -> APIRouter:
    """An `APIRouter` with one `POST path` endpoint that receives ThingSpace callback messages.

    Pass exactly one of `handler` (handled inline) and `inbox` (stored, handled by the inbox's worker: see
    `fota_lifespan`). For each request, in this order:
    - `allowed_ips`: when given, the peer address must be in it, else 403. `"verizon"` is the published list
      (`VERIZON_CALLBACK_SOURCE_IPS`); or pass addresses and CIDR networks. The peer is the ASGI client
      address: behind a reverse proxy, let the server rewrite it from trusted headers
      (uvicorn `--proxy-headers --forwarded-allow-ips=...`); `X-Forwarded-For` is never read here.
    - a body larger than `max_body_size` bytes: 413.
    - `parse_callback_message`: a body that is not a JSON object gives 400 with a JSON error; nothing is
      handled or stored.
    - `username` / `password`: each one given must equal the value echoed in the message (V1 registration
      credentials), compared in constant time, else 401.
    - with `inbox`: `await inbox.put(body)`, then 200 `{"status": "ok"}` (also for a duplicate the inbox
      already holds); 503 `{"error": "unavailable"}` when it cannot store the body, so the sender retries.
      Nothing acknowledged is lost.
    - with `handler`: `await handler(message)`, then 200 `{"status": "ok"}`. If the handler raises, 500
      `{"error": "internal_error"}` (the exception is logged, never sent). `background=True` answers 202 at
      once and runs the handler after the answer is sent: at-most-once, since a failure, a restart or a crash
      loses the message (it is only logged). Prefer an inbox for slow handlers.
    The password is never logged, and what the sender controls is logged escaped.
    """
    if (handler is None) == (inbox is None):
        raise InvalidArgumentError("handler", "pass exactly one of handler (inline) and inbox= (stored first)")
    if inbox is not None and background:
        raise InvalidArgumentError("background", "an inbox already answers at once; background=True is for handler")
    if inbox is not None and not isinstance(inbox, Inbox):
        raise InvalidArgumentError("inbox", f"expected an Inbox (MemoryInbox, SqliteInbox, RedisInbox), got {inbox!r}")
    networks = _networks(allowed_ips)
    for name, value in (("username", username), ("password", password)):
        if value == "":
            raise InvalidArgumentError(name, "an empty value would accept messages without credentials")
    expected_username, expected_password = _secret_bytes(username), _secret_bytes(password)
    positive_int(max_body_size, "max_body_size")

    async def run_handler(message: CallbackMessage) -> None:
        assert handler is not None
        try:
            await handler(message)
        except Exception:
            logger.exception("the FOTA callback handler failed on a %s message", printable(message.type))

    async def deliver(message: CallbackMessage, body: bytes) -> Response | None:
        if inbox is not None:
            try:
                await inbox.put(body)
            except Exception as exc:
                logger.error(
                    "could not store a FOTA callback, answered 503: %s", printable(f"{type(exc).__name__}: {exc}")
                )
                return _error(503, "unavailable", "the callback could not be stored; retry later")
            return None
        if background:
            return JSONResponse(
                {"status": "accepted"}, status_code=202, background=BackgroundTask(run_handler, message)
            )
        assert handler is not None
        try:
            await handler(message)
        except Exception:
            logger.exception("the FOTA callback handler failed on a %s message", printable(message.type))
            return _error(500, "internal_error", "the callback could not be processed")
        return None

    def refuse_source(host: str | None) -> Response | None:
        if networks is not None and not _source_allowed(host, networks):
            logger.warning("refused a FOTA callback from %s: address not allowed", _peer(host))
            return _error(403, "forbidden", "this address may not send callback messages")
        return None

    async def answer(host: str | None, body: bytes | None) -> Response | None:
        """The answer to a callback request with this body from this peer; None: 200 {"status": "ok"}."""
        if body is None:
            return _error(413, "too_large", f"callback bodies are limited to {max_body_size} bytes")
        try:
            message = parse_callback_message(body)
        except CallbackParseError as exc:
            logger.warning("refused a FOTA callback from %s: %s", _peer(host), printable(exc))
            return _error(400, "malformed_callback", str(exc))
        if username is not None or password is not None:
            # Both configured comparisons always run: which one failed must not show in the timing.
            username_ok = username is None or hmac.compare_digest(_secret_bytes(message.username), expected_username)
            password_ok = password is None or hmac.compare_digest(_secret_bytes(message.password), expected_password)
            if not (username_ok and password_ok):
                logger.warning("refused a FOTA callback from %s: wrong username or password", _peer(host))
                return _error(401, "unauthorized", "wrong or missing username/password in the message")
        return await deliver(message, body)

    async def receive_callback(request: Request) -> Response:
        host = request.client.host if request.client is not None else None
        response = refuse_source(host) or await answer(host, await _read_body(request, max_body_size))
        return _ok() if response is None else response

    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        # The direct path (see CallbackRoute): the same checks and answers, read straight from ASGI.
        client = scope.get("client")
        host = client[0] if client else None
        response = refuse_source(host)
        if response is None:
            try:
                body = await read_asgi_body(receive, max_body_size, scope["headers"])
            except ClientGone:
                raise ClientDisconnect() from None  # as Request.stream() does: the client went away mid-body
            response = await answer(host, body)
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
            503: {"description": "The inbox could not store the message: retry later"},
        },
    )
    return router
