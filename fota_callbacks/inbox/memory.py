"""`MemoryInbox`: the inbox in dicts, for tests. Not durable: a restart forgets everything."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import attrs

from ._base import BaseInbox, stale_after
from ._records import Claim, InboxEntry, InboxStats, Outcome, utc

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._base import InboxOptions

__all__ = ["MemoryInbox"]


@attrs.define
class _Record:
    body: bytes
    received_at: float
    due: float
    trace: str | None
    state: Literal["pending", "dead", "done"] = "pending"
    attempts: int = 0
    last_error: str | None = None
    token: str | None = None
    claimed_until: float = 0.0
    renewed_at: float = 0.0
    order_key: str | None = None
    done_at: float = 0.0


class MemoryInbox(BaseInbox):
    """An in-process inbox with the same behaviour as the durable ones, minus durability: for tests.

    `put` takes constant time however much it holds. Options: see `BaseInbox`.
    """

    def __init__(self, **options: Unpack[InboxOptions]) -> None:
        super().__init__(**options)
        self._entries: dict[int, _Record] = {}
        self._pending: dict[int, None] = {}  # ids of the pending entries, oldest first
        self._done: dict[int, None] = {}  # ids of the kept done entries, in the order they were handled
        self._seen: dict[bytes, float] = {}  # dedup key -> until when
        self._expiries: deque[tuple[float, bytes]] = deque()  # (until, key), oldest first
        self._next_id = 1
        self._tokens = 0

    def __repr__(self) -> str:
        return f"MemoryInbox(<{len(self._entries)} entries>)"

    # --- storing ------------------------------------------------------------------------------------------------

    async def _store(self, body: bytes, key: bytes, now: float, trace: str | None) -> bool:
        if self.dedup_window:
            self._forget_expired(now)
            if self._seen.get(key, now) > now:
                return False
            until = now + self.dedup_window
            self._seen[key] = until
            self._expiries.append((until, key))
        self._entries[self._next_id] = _Record(body=body, received_at=now, due=now, trace=trace)
        self._pending[self._next_id] = None
        self._next_id += 1
        return True

    def _forget_expired(self, now: float) -> None:
        while self._expiries and self._expiries[0][0] <= now:
            until, key = self._expiries.popleft()
            if self._seen.get(key) == until:
                del self._seen[key]

    # --- the worker's steps -------------------------------------------------------------------------------------

    def _holding(self, claim: Claim) -> _Record | None:
        record = self._entries.get(claim.id)
        return record if record is not None and record.token == claim.token else None

    async def _exchange(self, outcomes: Sequence[Outcome], now: float, limit: int) -> list[Claim]:
        for outcome in outcomes:
            record = self._holding(outcome.claim)
            if record is not None:
                self._settle(outcome, record)
        claims: list[Claim] = []
        for id in self._pending:
            if len(claims) >= limit:
                break
            record = self._entries[id]
            if record.due > now or self._claimed(record, now) or self._held_back(id, record):
                continue
            self._tokens += 1
            record.token, record.claimed_until, record.renewed_at = str(self._tokens), now + self.claim_idle, now
            claims.append(self._claim_of(id, record))
        return claims

    @staticmethod
    def _claim_of(id: int, record: _Record) -> Claim:
        assert record.token is not None
        return Claim(id, record.body, record.attempts, record.token, record.received_at, record.order_key, record.trace)

    def _settle(self, outcome: Outcome, record: _Record) -> None:
        record.token = None
        id = outcome.claim.id
        if outcome.kind == "release":
            record.due = outcome.at
        elif outcome.kind == "retry":
            record.attempts, record.last_error, record.due = outcome.claim.attempts + 1, outcome.error, outcome.due
        elif outcome.kind == "dead":
            record.attempts, record.last_error, record.state = outcome.claim.attempts + 1, outcome.error, "dead"
            del self._pending[id]
        else:
            del self._pending[id]
            if self.retain_done:
                record.state, record.done_at = "done", outcome.at
                self._done[id] = None
            else:
                del self._entries[id]

    @staticmethod
    def _claimed(record: _Record, now: float) -> bool:
        return record.token is not None and record.claimed_until > now

    def _held_back(self, id: int, record: _Record) -> bool:
        """An older pending entry has the same (known, non-empty) order key."""
        if not record.order_key:
            return False
        return any(self._entries[other].order_key == record.order_key for other in self._older_pending(id))

    def _older_pending(self, id: int) -> list[int]:
        older = []
        for other in self._pending:
            if other >= id:
                break
            older.append(other)
        return older

    async def _hold(self, keyed: Sequence[tuple[Claim, str]], now: float) -> set[int]:
        mine = [(claim, record) for claim, key in keyed if (record := self._holding(claim)) is not None]
        for claim, key in keyed:
            record = self._holding(claim)
            if record is not None:
                record.order_key = key
        held: set[int] = set()
        for claim, record in mine:
            older = [self._entries[other] for other in self._older_pending(claim.id)]
            waits = any(
                (record.order_key and other.order_key == record.order_key)
                or (other.order_key is None and self._claimed(other, now))
                for other in older
            )
            if waits:
                record.token, record.due = None, now
                held.add(claim.id)
        return held

    async def _renew(self, claims: Sequence[Claim], now: float) -> None:
        for claim in claims:
            record = self._holding(claim)
            if record is not None:
                record.claimed_until, record.renewed_at = now + self.claim_idle, now

    async def _purge(self, now: float) -> None:
        self._forget_expired(now)
        cutoff = now - self.retain_done
        while self._done:
            id = next(iter(self._done))
            if self._entries[id].done_at > cutoff:
                break
            del self._done[id], self._entries[id]

    # --- for operators ------------------------------------------------------------------------------------------

    async def _counts(self, now: float) -> InboxStats:
        pending = [self._entries[id] for id in self._pending]
        in_flight = [record for record in pending if self._claimed(record, now)]
        stale = [record for record in in_flight if now - record.renewed_at > stale_after(self.claim_idle)]
        return InboxStats(
            pending=len(pending),
            dead=len(self._entries) - len(pending) - len(self._done),
            done=len(self._done),
            in_flight=len(in_flight),
            oldest_pending_age=max(0.0, now - min(record.received_at for record in pending)) if pending else 0.0,
            stale=len(stale),
            next_takeover=min(record.claimed_until - now for record in stale) if stale else None,
        )

    async def _dead(self) -> list[InboxEntry]:
        return [
            InboxEntry(id, record.body, record.attempts, record.last_error, utc(record.received_at))
            for id, record in self._entries.items()
            if record.state == "dead"
        ]

    async def _revive(self, id: int | None, now: float) -> int:
        chosen = [
            entry_id for entry_id, record in self._entries.items() if record.state == "dead" and id in (None, entry_id)
        ]
        return self._to_pending(chosen, now)

    async def _handled(self, since: float, until: float | None, after: int, limit: int) -> list[tuple[int, bytes]]:
        found = []
        for id in sorted(self._done):
            record = self._entries[id]
            if id > after and record.received_at >= since and (until is None or record.received_at < until):
                found.append((id, record.body))
                if len(found) == limit:
                    break
        return found

    async def _requeue(self, ids: Sequence[int], now: float) -> int:
        chosen = [id for id in ids if id in self._done]
        for id in chosen:
            del self._done[id]
        return self._to_pending(chosen, now)

    def _to_pending(self, ids: list[int], now: float) -> int:
        for id in ids:
            record = self._entries[id]
            record.state, record.attempts, record.due, record.token = "pending", 0, now, None
            self._pending[id] = None
        if ids:
            self._pending = dict.fromkeys(sorted(self._pending))
        return len(ids)

    async def _probe(self) -> None:
        """Memory always takes writes."""

    async def _close(self) -> None:
        """Nothing to release: the entries stay, and a test may run another app or worker on the same object."""
