"""Receive callbacks durably: store each body before acknowledging it, handle it later, retry, keep dead letters.

```python
from fota_callbacks.inbox import SqliteInbox
from fota_callbacks.integrations.fastapi import callback_router, fota_lifespan

inbox = SqliteInbox("fota-inbox.db")
app = FastAPI(lifespan=fota_lifespan(inbox=inbox, handler=on_message))
app.include_router(callback_router(inbox=inbox, username="listener", password="s3cret"))
```

`MemoryInbox` (tests), `SqliteInbox` (one machine, one file), `RedisInbox` (extra `redis`: Redis Streams with a
consumer group, for many replicas; asyncio only), `PostgresInbox` (extra `postgres`: tables in your PostgreSQL,
for many replicas, with handlers whose writes commit exactly once; asyncio only). Each implements `Inbox`, and
each takes these keyword options:
`dedup_window=300` (seconds an identical body is stored once; 0: off), `retry_base=1.0` and `retry_max=300`
(the backoff after a handler failure doubles from one to the other), `claim_idle=60` (seconds after which an
entry held by a stopped worker is handled by another; not used by `MemoryInbox`), `poll_interval=0.5`
(how often idle workers look for entries stored by other processes), `clock=time.time`, and
`tracer_provider` / `meter_provider` (OpenTelemetry; the global providers when not given).
"""

from ._base import BaseInbox, InboxOptions
from ._records import (
    Inbox,
    InboxEntry,
    InboxHandler,
    InboxNotFoundError,
    InboxStats,
    InboxUnavailableError,
    OrderKey,
    Readiness,
)
from .memory import MemoryInbox
from .postgres import PostgresInbox
from .redis import RedisInbox
from .sqlite import SqliteInbox

__all__ = [
    "BaseInbox",
    "Inbox",
    "InboxEntry",
    "InboxHandler",
    "InboxNotFoundError",
    "InboxOptions",
    "InboxStats",
    "InboxUnavailableError",
    "MemoryInbox",
    "OrderKey",
    "PostgresInbox",
    "Readiness",
    "RedisInbox",
    "SqliteInbox",
]
