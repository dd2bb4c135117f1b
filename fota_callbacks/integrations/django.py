"""Django glue (extra `django`): an async view that receives ThingSpace callback messages, and the health views.

```python
# urls.py
from django.urls import path

from fota_callbacks.inbox import SqliteInbox
from fota_callbacks.integrations.django import callback_view, health_urls
from fota_callbacks.receiver import CallbackReceiver

inbox = SqliteInbox("fota-inbox.db")
receiver = CallbackReceiver(inbox=inbox, username="listener", password="s3cret")
urlpatterns = [path("fota/callbacks", callback_view(receiver)), *health_urls(inbox)]
```
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final

try:
    from django.http import HttpRequest, HttpResponse
    from django.urls import URLPattern, path
    from django.views.decorators.csrf import csrf_exempt
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError("fota_callbacks.integrations.django needs Django: pip install 'fota-callbacks[django]'") from exc

from .._errors import InvalidArgumentError
from ..inbox import Inbox
from ..receiver import CallbackReceiver, health_answer, method_not_allowed_answer, readiness_answer

__all__ = ["View", "callback_view", "health_urls"]

View = Callable[[HttpRequest], Awaitable[HttpResponse]]
"""A Django async view."""

_JSON: Final = "application/json"


def _answer(status: int, body: bytes, allow: str | None = None) -> HttpResponse:
    # With its length, as CommonMiddleware would set it: else an ASGI server sends the few bytes chunked.
    headers = {"Content-Length": str(len(body))}
    if allow is not None:
        headers["Allow"] = allow
    return HttpResponse(body, status=status, content_type=_JSON, headers=headers)


async def _body(request: HttpRequest, limit: int) -> AsyncIterator[bytes]:
    # read(), not request.body: the receiver's limit applies, not DATA_UPLOAD_MAX_MEMORY_SIZE (which would answer
    # a body within the receiver's limit with Django's own 400 page); one byte past the limit tells it is over.
    yield request.read(limit + 1)


def callback_view(receiver: CallbackReceiver) -> View:
    """A Django async view (CSRF-exempt) that answers a callback POST with `receiver` (every check and answer is
    the receiver's): `path("fota/callbacks", callback_view(receiver))` in your URLconf.

    The peer is `REMOTE_ADDR`; a Content-Length over the receiver's `max_body_size` is answered 413 before the
    view reads the body (under ASGI, Django's handler has received it already), and the receiver's limit applies,
    not `DATA_UPLOAD_MAX_MEMORY_SIZE`. Other methods get the receiver's 405 JSON answer with `Allow: POST`.
    Django cannot run work after a view's answer, so a receiver with `background=True` is refused
    (`InvalidArgumentError` naming `receiver`): give it an inbox instead, whose worker runs in its own process.
    """
    if not isinstance(receiver, CallbackReceiver):
        raise InvalidArgumentError("receiver", f"expected a CallbackReceiver, got {receiver!r}")
    if receiver.background:
        raise InvalidArgumentError(
            "receiver", "Django cannot run the handler after the answer (background=True): use an inbox"
        )
    limit = receiver.max_body_size

    async def receive_callback(request: HttpRequest) -> HttpResponse:
        if request.method != "POST":
            return _answer(*method_not_allowed_answer(), allow="POST")
        reception = await receiver.receive_stream(
            _body(request, limit),
            peer=request.META.get("REMOTE_ADDR"),
            content_length=request.META.get("CONTENT_LENGTH"),
        )
        return _answer(reception.status, reception.body)

    view: View = csrf_exempt(receive_callback)
    return view


def health_urls(inbox: Inbox | None = None) -> list[URLPattern]:
    """URL patterns for `GET healthz` (200 `{"status":"ok"}` while the process serves: a liveness probe) and
    `GET readyz` (200 `{"status":"ready"}`, or 503 `{"status":"unavailable","reason":"..."}` while `inbox` cannot
    take messages: a readiness probe): `urlpatterns += health_urls(inbox)`, or under a prefix with
    `path("probes/", include(health_urls(inbox)))`."""
    if inbox is not None and not isinstance(inbox, Inbox):
        raise InvalidArgumentError("inbox", f"expected an Inbox (MemoryInbox, SqliteInbox, ...), got {inbox!r}")

    async def healthz(request: HttpRequest) -> HttpResponse:
        if request.method != "GET":
            return _answer(*method_not_allowed_answer("GET"), allow="GET")
        return _answer(*health_answer())

    async def readyz(request: HttpRequest) -> HttpResponse:
        if request.method != "GET":
            return _answer(*method_not_allowed_answer("GET"), allow="GET")
        return _answer(*await readiness_answer(inbox))

    # CSRF-exempt too: another method gets the 405 every adapter gives, not the CSRF middleware's 403 page.
    return [
        path("healthz", csrf_exempt(healthz), name="fota-healthz"),
        path("readyz", csrf_exempt(readyz), name="fota-readyz"),
    ]
