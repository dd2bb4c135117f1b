"""The ASGI apps the receiver benchmark serves under uvicorn, one per child process.

`python -m benchmarks.receiver_apps APP [--cpu N] [--profile PATH] [--sqlite PATH] [--redis-url URL]
[--postgres-dsn DSN]` binds
127.0.0.1 on a free port, prints `PORT <n>`, and serves APP until SIGTERM or SIGINT: with uvicorn (httptools,
the asyncio loop, no access log, keep-alive held for an hour so connections survive the pauses between slices),
or, for the `aiohttp*` apps, with aiohttp.web's own server (the asyncio loop, no access log, the same keep-alive).
With `--profile` the whole serve runs under cProfile and the stats are written to PATH on exit.

Every app answers `POST /fota/callbacks` with 200 `{"status":"ok"}` for a JSON object whose `username` and
`password` are the expected ones, and 401 otherwise. Each SDK adapter has a bare endpoint of its framework doing
the same checks beside it (`REFERENCES`):

- `asgi`: a raw ASGI callable (receive events, `json.loads`, two `hmac.compare_digest`, two send events):
  uvicorn's own floor, for reference;
- `starlette`: the brief's reference, a bare Starlette endpoint: `await request.body()`, `json.loads`, the V1
  credential check, `JSONResponse`;
- `fastapi_plain`: the same endpoint as an `APIRoute` in a FastAPI app (FastAPI's route wrapper, no SDK);
- `fastapi_route`: the same endpoint as a plain Starlette `Route` in a FastAPI app: what a FastAPI app costs per
  request before any route of it runs (its telemetry check, its router), which `router` pays too;
- `router`: FastAPI + `callback_router(handler)` with V1 credentials and a handler that does nothing;
- `callback_app`: `callback_app(CallbackReceiver(handler, ...))` served alone (the plain ASGI adapter);
- `aiohttp_bare` / `aiohttp`: an aiohttp.web handler doing the checks (`await request.read()`, `json.loads`, the
  credentials, `web.Response`) / `callback_handler(CallbackReceiver(handler, ...))`, each under aiohttp.web;
- `django_bare` / `django`: a Django async view doing the checks (`request.body`, `json.loads`, the credentials,
  `HttpResponse`) / `callback_view(CallbackReceiver(handler, ...))`, each in a Django project with no
  middleware, under uvicorn through Django's ASGI handler;
- `sqlite` / `redis`: FastAPI + `callback_router(inbox=SqliteInbox(...) | RedisInbox(...))`: the
  acknowledgement path (the message stored before the 200), no worker in the process;
- `sqlite_worker` / `redis_worker`: the same with `fota_lifespan(inbox=..., handler=..., workers=4)` running the
  worker (a handler that does nothing, four at once) in the server process, as a one-process deployment would;
- `postgres` / `postgres_worker`: the same with `PostgresInbox`.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import hmac
import json
import logging
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, Literal

from starlette.types import Receive, Scope, Send

from fota_callbacks import FotaCallbacksClient

from ._common import pin_to_cpu

if TYPE_CHECKING:
    from fota_callbacks.inbox import Inbox

__all__ = ["APPS", "CALLBACK_PASSWORD", "CALLBACK_PATH", "CALLBACK_USERNAME", "build_app", "main"]

CALLBACK_PATH = "/fota/callbacks"
CALLBACK_USERNAME = "listener"
CALLBACK_PASSWORD = "bench-callback-password-0123456789"
WORKERS = 4
"""Messages the `*_worker` apps handle at once (`fota_lifespan(workers=...)`)."""

APPS: dict[str, str] = {
    "asgi": "raw ASGI callable (uvicorn's floor)",
    "starlette": "bare Starlette endpoint: body, json.loads, credentials",
    "fastapi_plain": "the same endpoint as a FastAPI APIRoute",
    "fastapi_route": "the same endpoint as a Starlette Route in a FastAPI app",
    "router": "FastAPI + callback_router(handler)",
    "callback_app": "callback_app(receiver): the plain ASGI adapter, alone",
    "aiohttp_bare": "bare aiohttp.web handler: read, json.loads, credentials",
    "aiohttp": "aiohttp.web + callback_handler(receiver)",
    "django_bare": "bare Django async view: body, json.loads, credentials",
    "django": "Django + callback_view(receiver)",
    "sqlite": "FastAPI + callback_router(inbox=SqliteInbox)",
    "redis": "FastAPI + callback_router(inbox=RedisInbox)",
    "sqlite_worker": "SqliteInbox + its worker in the same process",
    "redis_worker": "RedisInbox + its worker in the same process",
    "postgres": "FastAPI + callback_router(inbox=PostgresInbox)",
    "postgres_worker": "PostgresInbox + its worker (workers=4) in the same process",
}


STORE_APPS = ("sqlite", "redis", "sqlite_worker", "redis_worker", "postgres", "postgres_worker")
"""The apps that store each message in an inbox (they need a store server or a file)."""
STORELESS_APPS = tuple(app for app in APPS if app not in STORE_APPS)
"""The adapters and the bare endpoints they are compared with."""

REFERENCES: dict[str, str] = {"callback_app": "asgi", "aiohttp": "aiohttp_bare", "django": "django_bare"}
"""The bare endpoint of each adapter's own framework (the others are compared with `starlette`)."""
AIOHTTP_APPS = ("aiohttp_bare", "aiohttp")
DJANGO_APPS = ("django_bare", "django")

_USERNAME = CALLBACK_USERNAME.encode()
_PASSWORD = CALLBACK_PASSWORD.encode()
_OK = b'{"status":"ok"}'
_UNAUTHORIZED = b'{"error":"unauthorized"}'


def _credentials_ok(data: object) -> bool:
    if not isinstance(data, dict):
        return False
    username = str(data.get("username") or "").encode("utf-8", "surrogatepass")
    password = str(data.get("password") or "").encode("utf-8", "surrogatepass")
    # Both comparisons always run, as in callback_router.
    return hmac.compare_digest(username, _USERNAME) & hmac.compare_digest(password, _PASSWORD)


async def _asgi_app(scope: Scope, receive: Receive, send: Send) -> None:
    # Served with lifespan="off": only http scopes come here.
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    ok = _credentials_ok(json.loads(body))
    await send(
        {
            "type": "http.response.start",
            "status": 200 if ok else 401,
            "headers": [
                (b"content-length", b"15" if ok else b"24"),
                (b"content-type", b"application/json"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": _OK if ok else _UNAUTHORIZED})


def _starlette_endpoint() -> Callable[[Any], Awaitable[Any]]:
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response

    async def receive_callback(request: Request) -> Response:
        """FastAPI reads the annotation (set below: a string here) to pass the request."""
        if not _credentials_ok(json.loads(await request.body())):
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        return JSONResponse({"status": "ok"})

    receive_callback.__annotations__ = {"request": Request, "return": Response}
    return receive_callback


async def _ignore(message: object) -> None:
    return None


def _inbox(app: str, sqlite_path: str | None, redis_url: str | None, postgres_dsn: str | None) -> Inbox:
    from fota_callbacks.inbox import PostgresInbox, RedisInbox, SqliteInbox

    if app.startswith("postgres"):
        if postgres_dsn is None:
            raise SystemExit(f"{app}: --postgres-dsn DSN is required")
        return PostgresInbox(postgres_dsn)
    if app.startswith("sqlite"):
        if sqlite_path is None:
            raise SystemExit(f"{app}: --sqlite PATH is required")
        return SqliteInbox(sqlite_path)
    if redis_url is None:
        raise SystemExit(f"{app}: --redis-url URL is required")
    return RedisInbox(redis_url)


def _receiver() -> Any:
    from fota_callbacks.receiver import CallbackReceiver

    return CallbackReceiver(_ignore, username=CALLBACK_USERNAME, password=CALLBACK_PASSWORD)


def _callback_app() -> Any:
    from fota_callbacks.integrations.asgi import callback_app

    return callback_app(_receiver())


def _aiohttp_app(bare: bool) -> Any:
    from aiohttp import web

    async def bare_handler(request: web.Request) -> web.StreamResponse:
        if not _credentials_ok(json.loads(await request.read())):
            return web.Response(body=_UNAUTHORIZED, status=401, content_type="application/json")
        return web.Response(body=_OK, content_type="application/json")

    if bare:
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]] = bare_handler
    else:
        from fota_callbacks.integrations.aiohttp import callback_handler

        handler = callback_handler(_receiver())
    app = web.Application()
    app.router.add_post(CALLBACK_PATH, handler)
    return app


def _django_app(bare: bool) -> Any:
    import django
    from django.conf import settings
    from django.core.asgi import get_asgi_application
    from django.http import HttpRequest, HttpResponse
    from django.urls import path

    from . import _django_urls

    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-only-" + "x" * 40,
        ALLOWED_HOSTS=["127.0.0.1"],
        ROOT_URLCONF="benchmarks._django_urls",
        INSTALLED_APPS=[],
        MIDDLEWARE=[],  # the view's own cost, nothing around it
        LOGGING_CONFIG=None,
    )
    django.setup(set_prefix=False)

    def answer(status: int, body: bytes) -> HttpResponse:
        # With its length, as callback_view answers: else uvicorn sends it chunked.
        return HttpResponse(body, status=status, content_type="application/json", headers={"Content-Length": len(body)})

    async def bare_view(request: HttpRequest) -> HttpResponse:
        if request.method != "POST":
            return answer(405, b"{}")
        return answer(200, _OK) if _credentials_ok(json.loads(request.body)) else answer(401, _UNAUTHORIZED)

    if bare:
        view: Any = bare_view
    else:
        from fota_callbacks.integrations.django import callback_view

        view = callback_view(_receiver())
    _django_urls.urlpatterns[:] = [path(CALLBACK_PATH.lstrip("/"), view)]
    return get_asgi_application()


_ADAPTER_APPS: dict[str, Callable[[], Any]] = {
    "callback_app": _callback_app,
    "aiohttp_bare": lambda: _aiohttp_app(bare=True),
    "aiohttp": lambda: _aiohttp_app(bare=False),
    "django_bare": lambda: _django_app(bare=True),
    "django": lambda: _django_app(bare=False),
}


def build_app(
    app: str, *, sqlite_path: str | None = None, redis_url: str | None = None, postgres_dsn: str | None = None
) -> Any:
    """The app called `app` (a key of `APPS`): an ASGI app, or an aiohttp.web Application (`AIOHTTP_APPS`)."""
    if app == "asgi":
        return _asgi_app
    if app in _ADAPTER_APPS:
        return _ADAPTER_APPS[app]()
    if app == "starlette":
        from starlette.applications import Starlette
        from starlette.routing import Route

        return Starlette(routes=[Route(CALLBACK_PATH, _starlette_endpoint(), methods=["POST"])])
    from fastapi import FastAPI

    if app == "fastapi_plain":
        fastapi_app = FastAPI()
        fastapi_app.add_api_route(CALLBACK_PATH, _starlette_endpoint(), methods=["POST"])
        return fastapi_app
    if app == "fastapi_route":
        fastapi_app = FastAPI()
        fastapi_app.add_route(CALLBACK_PATH, _starlette_endpoint(), methods=["POST"])
        return fastapi_app

    from fota_callbacks.integrations.fastapi import callback_router

    if app == "router":
        fastapi_app = FastAPI()
        fastapi_app.include_router(callback_router(_ignore, username=CALLBACK_USERNAME, password=CALLBACK_PASSWORD))
        return fastapi_app
    if app not in APPS:
        raise SystemExit(f"unknown app {app!r}; choose from {', '.join(APPS)}")
    store = _inbox(app, sqlite_path, redis_url, postgres_dsn)
    lifespan: Callable[[FastAPI], contextlib.AbstractAsyncContextManager[Any]]
    if app.endswith("_worker"):
        from fota_callbacks.integrations.fastapi import fota_lifespan

        # The worker needs no ThingSpace client; the factory is never asked for credentials it lacks.
        lifespan = fota_lifespan(_offline_client, inbox=store, handler=_ignore, workers=WORKERS)
    else:

        @contextlib.asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[None]:
            async with store:
                yield

    fastapi_app = FastAPI(lifespan=lifespan)
    fastapi_app.include_router(callback_router(inbox=store, username=CALLBACK_USERNAME, password=CALLBACK_PASSWORD))
    return fastapi_app


def _offline_client() -> FotaCallbacksClient:
    return FotaCallbacksClient(access_token="unused", m2m_token="unused", base_url="http://127.0.0.1:9")


def _listening_socket() -> socket.socket:
    # proto IPPROTO_TCP, as `uvicorn --port` gets it from getaddrinfo: asyncio sets TCP_NODELAY on accepted
    # sockets only when it sees that protocol; with proto 0, Nagle holds each response body ~40 ms.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)  # connections made before the server has started wait in the backlog
    return sock


@contextlib.contextmanager
def _profiled(profile_path: str | None) -> Iterator[None]:
    profiler = None if profile_path is None else cProfile.Profile()
    if profiler is not None:
        profiler.enable()
    try:
        yield
    except KeyboardInterrupt:
        pass  # the servers re-raise the SIGINT they shut down on
    finally:
        if profiler is not None and profile_path is not None:
            profiler.disable()
            profiler.dump_stats(profile_path)


def serve(app: Any, profile_path: str | None, *, lifespan: Literal["on", "off"] = "on") -> None:
    import uvicorn

    sock = _listening_socket()
    config = uvicorn.Config(
        app,
        http="httptools",
        loop="asyncio",
        lifespan=lifespan,
        access_log=False,
        log_level="warning",
        timeout_keep_alive=3600,
    )
    server = uvicorn.Server(config)
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    with _profiled(profile_path):
        server.run(sockets=[sock])


def serve_aiohttp(app: Any, profile_path: str | None) -> None:
    """aiohttp.web's own server (its C HTTP parser, the asyncio loop) on the same kind of socket."""
    from aiohttp import web

    sock = _listening_socket()
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    with _profiled(profile_path):
        web.run_app(app, sock=sock, access_log=None, print=None, keepalive_timeout=3600, shutdown_timeout=1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("app", choices=sorted(APPS))
    parser.add_argument("--cpu", type=int, default=None, help="pin the server process to this CPU")
    parser.add_argument("--profile", metavar="PATH", help="run under cProfile, write the stats to PATH on exit")
    parser.add_argument("--sqlite", metavar="PATH", help="the SqliteInbox file (sqlite apps)")
    parser.add_argument("--redis-url", metavar="URL", help="the RedisInbox URL (redis apps)")
    parser.add_argument("--postgres-dsn", metavar="DSN", help="the PostgresInbox database (postgres apps)")
    args = parser.parse_args(argv)
    pin_to_cpu(args.cpu)
    # The 401 of the check before the rounds is logged by the receiver (and Django): not on the run's output.
    logging.getLogger().addHandler(logging.NullHandler())
    app = build_app(args.app, sqlite_path=args.sqlite, redis_url=args.redis_url, postgres_dsn=args.postgres_dsn)
    if args.app in AIOHTTP_APPS:
        serve_aiohttp(app, args.profile)
    else:  # Django's ASGI handler takes no lifespan events
        serve(app, args.profile, lifespan="off" if args.app in ("asgi", *DJANGO_APPS) else "on")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
