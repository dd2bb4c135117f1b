"""Receive ThingSpace callback messages in any framework: one receiver, thin adapters.

```python
from fota_callbacks.inbox import SqliteInbox
from fota_callbacks.receiver import CallbackReceiver

receiver = CallbackReceiver(inbox=SqliteInbox("fota-inbox.db"), username="listener", password="s3cret")
reception = await receiver.receive(body, peer="3.87.163.45")  # what your framework read
reception.status, reception.body  # answer with these (JSON)
```

`CallbackReceiver` checks a POST (source address, size, JSON object, echoed credentials), stores or handles the
message, and says what to answer (`Reception`). The adapters carry it into a framework:
`fota_callbacks.integrations.fastapi.callback_router`, `.asgi.callback_app` (Starlette, Litestar, Quart, or
served alone), `.aiohttp.callback_handler`, `.django.callback_view`. `health_answer()` and
`readiness_answer(inbox)` are the answers of `/healthz` and `/readyz`; `method_not_allowed_answer()` and
`not_found_answer(path)` those of the adapters' routing, so every framework answers alike.
"""

from ._health import health_answer, readiness_answer
from ._receiver import DEFAULT_MAX_BODY_SIZE, CallbackReceiver, Reception, ReceptionOutcome
from ._routing import method_not_allowed_answer, not_found_answer
from ._sources import AllowedIps

__all__ = [
    "DEFAULT_MAX_BODY_SIZE",
    "AllowedIps",
    "CallbackReceiver",
    "Reception",
    "ReceptionOutcome",
    "health_answer",
    "method_not_allowed_answer",
    "not_found_answer",
    "readiness_answer",
]
