"""Serve a fake, a script or any ASGI app on 127.0.0.1 with uvicorn, from a background thread (extra `server`)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Literal

from ._asgi import Receive, Scope, Send
from ._fake import FakeThingSpace
from ._scripted import ScriptedTransport

__all__ = ["AsgiApplication", "serve"]

AsgiApplication = Callable[[Scope, Receive, Send], Awaitable[None]]


@contextlib.contextmanager
def serve(
    app: FakeThingSpace | ScriptedTransport | AsgiApplication,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    startup_timeout: float = 10.0,
    lifespan: Literal["auto", "on", "off"] = "auto",
) -> Iterator[str]:
    """Serve `app` over HTTP with uvicorn (extra `server`) in a daemon thread; yield its base URL
    (`http://127.0.0.1:PORT`).

    `app` is a `FakeThingSpace` or a `ScriptedTransport` (its `asgi_app` is served), or any ASGI application: your
    listener, a FastAPI app. `port=0` picks a free port. The server stops when the block ends. Works from sync and
    async code alike, since the server has its own thread and event loop; the app's ASGI lifespan runs with the
    default `"auto"`::

        with serve(fake) as base_url:
            async with FotaCallbacksClient(base_url=base_url, ...) as client: ...
    """
    try:
        import uvicorn
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise RuntimeError("serving over HTTP needs uvicorn: pip install 'fota-callbacks[server]'") from exc

    served = app.asgi_app if isinstance(app, (FakeThingSpace, ScriptedTransport)) else app
    config = uvicorn.Config(
        served,
        host=host,
        port=port,
        log_level="critical",
        access_log=False,
        lifespan=lifespan,
        timeout_graceful_shutdown=1,
        timeout_keep_alive=30,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{host}:{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"uvicorn did not start on {host}:{port}")
        time.sleep(0.005)
    bound_port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
