"""`MemoryInbox`: the inbox in a dict, for tests. Not durable: a restart forgets everything."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from ._base import BaseInbox, Claim, InboxEntry, InboxOptions, InboxStats, utc

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["MemoryInbox"]


@attrs.define
class _Record:
    body: bytes
    received_at: float
    due: float
    attempts: int = 0
    last_error: str | None = None
    dead: bool = False
    claimed: bool = False


class MemoryInbox(BaseInbox):
    """An in-process inbox with the same behaviour as the durable ones, minus durability: for tests.

    Options: see `fota_callbacks.inbox` (`claim_idle` is not used: a claim lasts until its worker lets go).
    """

    def __init__(self, **options: Unpack[InboxOptions]) -> None:
        super().__init__(**options)
        self._records: dict[int, _Record] = {}  # insertion order is arrival order
        self._seen: dict[bytes, float] = {}  # dedup key -> until when
        self._next_id = 1
        self._done = 0

    async def _store(self, body: bytes, key: bytes, now: float) -> bool:
        if self.dedup_window:
            if self._seen.get(key, 0.0) > now:
                return False
            self._seen = {k: until for k, until in self._seen.items() if until > now}
            self._seen[key] = now + self.dedup_window
        self._records[self._next_id] = _Record(body=body, received_at=now, due=now)
        self._next_id += 1
        return True

    async def _claim(self, now: float) -> Claim | None:
        for id, record in self._records.items():
            if not record.dead and not record.claimed and record.due <= now:
                record.claimed = True
                return Claim(id=id, body=record.body, attempts=record.attempts)
        return None

    async def _renew(self, claim: Claim, now: float) -> None:
        pass  # one process: a claim lasts until the worker settles or releases it

    async def _complete(self, claim: Claim) -> None:
        del self._records[claim.id]
        self._done += 1

    async def _reschedule(self, claim: Claim, error: str, due: float) -> None:
        record = self._records[claim.id]
        record.attempts, record.last_error, record.due, record.claimed = claim.attempts + 1, error, due, False

    async def _bury(self, claim: Claim, error: str) -> None:
        record = self._records[claim.id]
        record.attempts, record.last_error, record.dead, record.claimed = claim.attempts + 1, error, True, False

    async def _release(self, claim: Claim) -> None:
        self._records[claim.id].claimed = False

    async def stats(self) -> InboxStats:
        """Counts of pending (waiting, being handled, or waiting for a retry), dead and handled entries."""
        dead = sum(record.dead for record in self._records.values())
        return InboxStats(pending=len(self._records) - dead, dead=dead, done=self._done)

    async def dead_letters(self) -> list[InboxEntry]:
        """The dead letters, oldest first."""
        return [
            InboxEntry(
                id=id,
                body=record.body,
                attempts=record.attempts,
                last_error=record.last_error,
                received_at=utc(record.received_at),
            )
            for id, record in self._records.items()
            if record.dead
        ]

    async def retry_dead(self, id: int | None = None) -> int:
        """Put dead letter `id` (or every one) back in the queue with its attempts reset; how many were."""
        now = self._clock()
        revived = 0
        for entry_id, record in self._records.items():
            if record.dead and id in (None, entry_id):
                record.dead, record.attempts, record.due = False, 0, now
                revived += 1
        if revived:
            self._wake()
        return revived

    async def aclose(self) -> None:
        """Nothing to release; the entries stay readable."""
