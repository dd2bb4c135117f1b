"""The records every inbox hands out or passes between its worker and its store, and the protocol they serve."""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Literal, Protocol, TypeVar, runtime_checkable

import attrs

from .._errors import FotaError
from ..callbacks import CallbackMessage

__all__ = [
    "Claim",
    "Inbox",
    "InboxEntry",
    "InboxHandler",
    "InboxNotFoundError",
    "InboxStats",
    "InboxUnavailableError",
    "OrderKey",
    "Outcome",
    "Readiness",
    "utc",
]

InboxHandler = Callable[[CallbackMessage], Awaitable[object]]
"""`async def handler(message: CallbackMessage) -> None`; what it returns is ignored."""

OrderKey = Callable[[CallbackMessage], "str | None"]
"""`def order_key(message) -> str | None`: messages with the same key are handled one at a time, in order."""

_InboxT = TypeVar("_InboxT", bound="Inbox")


class InboxUnavailableError(FotaError):
    """The inbox could not store or read entries (a read-only file, a full disk, an unreachable Redis).

    The callback receiver answers 503 to the sender when `put` raises it, so the sender retries.
    """


class InboxNotFoundError(InboxUnavailableError):
    """An inbox made with `create=False` found no inbox where it was pointed (a missing or foreign file, a stream
    or table that does not exist), and changed nothing there."""


@attrs.frozen
class InboxStats:
    """What an inbox holds, as `inbox.stats()` counts it.

    - `pending`: every entry not yet done or dead: waiting, waiting for a retry, or being handled.
    - `dead`: the dead letters (`dead_letters()`).
    - `done`: handled entries still kept (for `replay`, until `retain_done` seconds have passed).
    - `in_flight`: the pending entries a worker has claimed: being handled now, or held by a worker that stopped,
      until its claim lapses (`claim_idle` seconds after its last renewal).
    - `oldest_pending_age`: seconds since the oldest pending entry was received; 0.0 when none is pending.
    - `stale`: in-flight entries whose worker has not renewed its claim for more than half of `claim_idle`:
      that worker has most likely stopped (killed, cut off), and the entries go back to the queue when their
      claims lapse.
    - `next_takeover`: seconds until the first stale entry goes back to the queue; None when none is stale.
    """

    pending: int
    dead: int
    done: int
    in_flight: int
    oldest_pending_age: float
    stale: int = 0
    next_takeover: float | None = None


@attrs.frozen
class Readiness:
    """`await inbox.ready()`: whether the inbox can take messages now (`ok`), and if not, why (`reason`)."""

    ok: bool
    reason: str | None = None


@attrs.frozen
class InboxEntry:
    """A stored callback body, as `dead_letters()` lists them.

    `attempts` counts the failed handlings; `last_error` is the last failure as printable ASCII
    (`"KeyError: 'x'"`); `received_at` is when `put` stored it (UTC, on the inbox's clock).
    """

    id: int
    body: bytes = attrs.field(repr=lambda body: f"<{len(body)} bytes>")  # may echo a V1 password
    attempts: int
    last_error: str | None
    received_at: datetime.datetime


@attrs.frozen
class Claim:
    """An entry a worker took to handle. `token` tells this claim from a later one of the same entry.

    `order_key` is the key stored with the entry: None when no worker has computed it yet, `""` for a message
    without one. `trace` is the W3C `traceparent` of the request that stored it, when it was traced.
    """

    id: int
    body: bytes = attrs.field(repr=lambda body: f"<{len(body)} bytes>")
    attempts: int
    token: str
    received_at: float
    order_key: str | None = None
    trace: str | None = None


OutcomeKind = Literal["done", "retry", "dead", "release"]


@attrs.frozen
class Outcome:
    """What became of a claim, for the store to record (only while the claim still holds).

    - `done`: handled at `at`; kept until `at + retain_done`, or deleted at once when `retain_done` is 0.
    - `retry`: one more failed attempt (`error`), due again at `due`.
    - `dead`: one more failed attempt (`error`), and the last: a dead letter.
    - `release`: handling was cut short, or held back for an earlier message of its order key: due again now,
      no attempt counted.
    """

    claim: Claim
    kind: OutcomeKind
    at: float
    error: str | None = None
    due: float = 0.0


def utc(timestamp: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc)


@runtime_checkable
class Inbox(Protocol):
    """Stores callback bodies durably and hands them to a handler: `MemoryInbox`, `SqliteInbox`, `RedisInbox`,
    `PostgresInbox`."""

    async def put(self, body: bytes) -> bool:
        """Store `body` durably; False when the same body was stored within the dedup window."""
        ...

    async def run(
        self,
        handler: InboxHandler,
        *,
        concurrency: int = 1,
        max_attempts: int = 10,
        order_key: OrderKey | None = None,
    ) -> None:
        """Hand stored messages to `handler` until cancelled; retry failures, bury after `max_attempts`."""
        ...

    async def stats(self) -> InboxStats:
        """What the inbox holds: pending, dead, done, in flight, and how old the oldest pending entry is."""
        ...

    async def dead_letters(self) -> list[InboxEntry]:
        """The entries that failed `max_attempts` times (or could not be parsed), oldest first."""
        ...

    async def retry_dead(self, id: int | None = None) -> int:
        """Put one dead letter (or all) back in the queue; how many were."""
        ...

    async def replay(
        self,
        *,
        since: datetime.datetime | float,
        until: datetime.datetime | float | None = None,
        type: str | None = None,
        account: str | None = None,
    ) -> int:
        """Put the handled entries received in [since, until) back in the queue; how many were."""
        ...

    async def ready(self) -> Readiness:
        """Whether the inbox takes writes now and, when a worker runs on it in this process, that it is alive."""
        ...

    async def aclose(self) -> None:
        """Release connections and files."""
        ...

    async def __aenter__(self: _InboxT) -> _InboxT: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None: ...
