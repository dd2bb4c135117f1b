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
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Annotated, Any, Final, TypeVar

import anyio

try:
    from fastapi import APIRouter, Depends
    from starlette.applications import Starlette
    from starlette.background import BackgroundTask
    from starlette.requests import HTTPConnection, Request
    from starlette.responses import JSONResponse, Response
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "fota_callbacks.integrations.fastapi needs FastAPI: pip install 'fota-callbacks[fastapi]'"
    ) from exc

from .._client import FotaCallbacksClient
from .._errors import InvalidArgumentError
from .._logsafe import printable
from .._validation import positive_int
from ..inbox import BaseInbox, Inbox, InboxHandler, OrderKey
from ..receiver import DEFAULT_MAX_BODY_SIZE, AllowedIps, CallbackReceiver, health_answer, readiness_answer
from ._route import ASGI_ATTRIBUTE, CallbackRoute

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

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
    "health_router",
]

logger = logging.getLogger("fota_callbacks.integrations.fastapi")

STATE_KEY: Final = "fota_client"
"""The `app.state` attribute that holds the shared client while the app runs."""

DEFAULT_CALLBACK_PATH: Final = "/fota/callbacks"

AppT = TypeVar("AppT", bound=Starlette)
CallbackHandler = InboxHandler
"""`async def handler(message: CallbackMessage) -> None`; what it returns is ignored."""

WORKER_RESTART_DELAY: Final = 1.0
WORKER_RESTART_DELAY_MAX: Final = 30.0


# --- one shared client --------------------------------------------------------------------------------------------


def fota_lifespan(
    client_factory: Callable[[], FotaCallbacksClient] = FotaCallbacksClient,
    *,
    lifespan: Callable[[AppT], AbstractAsyncContextManager[Any]] | None = None,
    inbox: Inbox | None = None,
    handler: CallbackHandler | None = None,
    workers: int = 1,
    max_attempts: int = 10,
    order_key: OrderKey | None = None,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> Callable[[AppT], AbstractAsyncContextManager[Any]]:
    """A lifespan for `FastAPI(lifespan=...)` that makes one client at startup and closes it at shutdown.

    `client_factory()` makes the client (default: `FotaCallbacksClient()`, credentials from the `THINGSPACE_*`
    variables). It is stored as `app.state.fota_client` and handed to endpoints by `get_client` / `FotaClient`.
    The app's own `lifespan` runs inside, with the client open; what it yields is passed on.

    With `inbox` and `handler`: `inbox.run(handler, concurrency=workers, max_attempts=max_attempts,
    order_key=order_key)` runs for the app's lifetime, with the client open. Nothing a handler does stops it; if
    the worker ends for any other reason but shutdown it is logged at ERROR and restarted with a backoff, and
    while it is down the receiver answers 503 and `/readyz` (`health_router`) says why. At shutdown the worker
    is cancelled: what it was handling goes back to the inbox at once and is handled again after the restart;
    then the inbox is closed. With `inbox` alone the app only stores (another process runs the worker, e.g.
    `fota-callbacks inbox work`) and the inbox is closed at shutdown. A closed inbox opens again when used: the
    app may start again (a `TestClient(app)` per test). The worker reports its telemetry through `tracer_provider`
    / `meter_provider` when given (else the inbox's own, or the global ones).
    """
    if handler is not None and inbox is None:
        raise InvalidArgumentError("handler", "a handler here runs an inbox's worker: pass inbox= too")
    if inbox is not None and not isinstance(inbox, Inbox):
        raise InvalidArgumentError("inbox", f"expected an Inbox (MemoryInbox, SqliteInbox, ...), got {inbox!r}")
    run_worker = functools.partial(
        _keep_working,
        inbox,
        handler,
        concurrency=positive_int(workers, "workers"),
        max_attempts=positive_int(max_attempts, "max_attempts"),
        order_key=order_key,
        **_providers(inbox, tracer_provider=tracer_provider, meter_provider=meter_provider),
    )

    @contextlib.asynccontextmanager
    async def run(app: AppT) -> AsyncIterator[Any]:
        async with client_factory() as client, contextlib.AsyncExitStack() as stack:
            if inbox is not None:
                stack.push_async_callback(inbox.aclose)
                if handler is not None:
                    await stack.enter_async_context(_running(run_worker))
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


def _providers(inbox: Inbox | None, **given: Any) -> dict[str, Any]:
    """The providers to hand to `inbox.run`: only those given, and only to an inbox whose `run` takes them."""
    given = {name: value for name, value in given.items() if value is not None}
    if given and not isinstance(inbox, BaseInbox):
        raise InvalidArgumentError(
            next(iter(given)), "the worker reports through it only on the SDK's inboxes (BaseInbox); pass inbox= one"
        )
    return given


async def _keep_working(inbox: Any, handler: CallbackHandler | None, **options: Any) -> None:
    """`inbox.run(handler, ...)`, started again whenever it ends (a `BaseInbox` restarts its own worker; an
    `Inbox` of your own may end): logged at ERROR, with a backoff."""
    delay = WORKER_RESTART_DELAY
    while True:
        try:
            await inbox.run(handler, **options)
            reason = "it returned"
        except Exception as exc:
            reason = printable(f"{type(exc).__name__}: {exc}")
        logger.error("the FOTA inbox worker stopped: %s; restarting in %.3g s", reason, delay)
        await anyio.sleep(delay)
        delay = min(delay * 2, WORKER_RESTART_DELAY_MAX)


@contextlib.asynccontextmanager
async def _running(work: Callable[[], Any]) -> AsyncIterator[None]:
    """Runs `work` while the block runs; cancels and awaits it after."""
    failure: BaseException | None = None
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(work)
        try:
            yield
        except BaseException as exc:  # the app's own error, re-raised as it is once the worker stopped
            failure = exc
        tasks.cancel_scope.cancel()
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

_ANSWERS: Final[dict[int | str, dict[str, Any]]] = {
    400: {"description": "The body is not a JSON object"},
    401: {"description": "Wrong username/password echoed in the message"},
    403: {"description": "The source address is not allowed"},
    413: {"description": "The body is too large"},
    500: {"description": "The handler failed"},
    503: {"description": "The inbox could not store the message, or its worker is down: retry later"},
}


def callback_router(
    handler: CallbackHandler | CallbackReceiver | None = None,
    *,
    inbox: Inbox | None = None,
    path: str = DEFAULT_CALLBACK_PATH,
    username: str | None = None,
    password: str | None = None,
    allowed_ips: AllowedIps = None,
    background: bool = False,
    max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> APIRouter:
    """An `APIRouter` with one `POST path` endpoint that receives ThingSpace callback messages.

    The checks and answers are `fota_callbacks.receiver.CallbackReceiver`'s (read it for the details): pass its
    options here (exactly one of `handler` and `inbox`, and `username`, `password`, `allowed_ips`,
    `max_body_size`, `background`, `tracer_provider`, `meter_provider`), or a `CallbackReceiver` you made as the
    first argument. With `inbox`, run its worker with `fota_lifespan(inbox=..., handler=...)`. `background=True`
    runs the handler after the 202 answer is sent (at-most-once: prefer an inbox).
    """
    receiver = _receiver_of(
        handler,
        inbox=inbox,
        username=username,
        password=password,
        allowed_ips=allowed_ips,
        background=background,
        max_body_size=max_body_size,
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
    )

    async def receive_callback(request: Request) -> Response:
        # FastAPI's standard handling: taken when a dependency applies to the route (see CallbackRoute).
        host = request.client.host if request.client is not None else None
        length = request.headers.get("content-length")
        reception = await receiver.receive_stream(request.stream(), peer=host, content_length=length)
        # Through a coroutine function: BackgroundTask runs any other callable in a thread, where the coroutine
        # `after` returns would never be awaited.
        task = BackgroundTask(_await, reception.after) if reception.after is not None else None
        return Response(reception.body, reception.status, media_type="application/json", background=task)

    setattr(receive_callback, ASGI_ATTRIBUTE, receiver.serve_asgi)
    router = APIRouter()
    router.add_api_route(
        path,
        receive_callback,
        route_class_override=CallbackRoute,
        methods=["POST"],
        summary="Receive a ThingSpace FOTA callback message",
        response_class=JSONResponse,
        responses=_ANSWERS,
    )
    return router


async def _await(after: Callable[[], Awaitable[None]]) -> None:
    await after()


def _receiver_of(handler: CallbackHandler | CallbackReceiver | None, **options: Any) -> CallbackReceiver:
    if not isinstance(handler, CallbackReceiver):
        return CallbackReceiver(handler, **options)
    defaults = {
        "inbox": None,
        "username": None,
        "password": None,
        "allowed_ips": None,
        "background": False,
        "max_body_size": DEFAULT_MAX_BODY_SIZE,
        "tracer_provider": None,
        "meter_provider": None,
    }
    changed = [name for name, value in options.items() if value != defaults[name]]
    if changed:
        raise InvalidArgumentError(changed[0], "set it on the CallbackReceiver passed as the first argument")
    return handler


def health_router(inbox: Inbox | None = None) -> APIRouter:
    """An `APIRouter` with `GET /healthz` (200 `{"status":"ok"}` while the process serves: a liveness probe) and
    `GET /readyz` (200 `{"status":"ready"}`, or 503 `{"status":"unavailable","reason":"..."}` while `inbox` cannot
    take messages: its store refuses writes, or the worker `fota_lifespan` runs on it is down: a readiness probe).
    """
    if inbox is not None and not isinstance(inbox, Inbox):
        raise InvalidArgumentError("inbox", f"expected an Inbox (MemoryInbox, SqliteInbox, ...), got {inbox!r}")

    async def healthz() -> Response:
        status, body = health_answer()
        return Response(body, status, media_type="application/json")

    async def readyz() -> Response:
        status, body = await readiness_answer(inbox)
        return Response(body, status, media_type="application/json")

    router = APIRouter()
    router.add_api_route("/healthz", healthz, methods=["GET"], summary="Liveness: the process serves requests")
    router.add_api_route(
        "/readyz",
        readyz,
        methods=["GET"],
        summary="Readiness: callbacks can be stored and will be handled",
        responses={503: {"description": "Not ready; the reason is in the body"}},
    )
    return router
