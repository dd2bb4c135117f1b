"""Which failures are retried, and how long to wait before the next attempt."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import attrs

from ._checks import parse_retry_after
from ._constants import (
    DEFAULT_MAX_RETRIES,
    INITIAL_RETRY_DELAY,
    MAX_RETRY_AFTER,
    MAX_RETRY_DELAY,
    RETRY_JITTER,
    RETRY_STATUSES,
)
from ._errors import ApiConnectionError, InvalidArgumentError
from ._validation import non_negative_int
from .transport.base import Response

__all__ = ["RetryPolicy"]


def _count(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    non_negative_int(value, attribute.name)


def _seconds(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise InvalidArgumentError(attribute.name, f"expected a number of seconds >= 0, got {value!r}")


def _fraction(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise InvalidArgumentError(attribute.name, f"expected a fraction from 0 to 1, got {value!r}")


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How the client retries.

    Every operation of the callbacks APIs is idempotent (register and update set the account's callback,
    deregister removes it), so every operation is retried, including after a failure in which the request
    may have reached the server (`retry_maybe_processed`).

    The n-th retry (n = 0, 1, ...) waits `min(initial_delay * 2**n, max_delay)`, reduced at random by up to
    `jitter` of itself. A `Retry-After` (or `retry-after-ms`) header replaces that wait when it is at most
    `max_retry_after`; a longer one is not waited for and the error is raised at once.
    """

    max_retries: int = attrs.field(default=DEFAULT_MAX_RETRIES, validator=_count)
    initial_delay: float = attrs.field(default=INITIAL_RETRY_DELAY, validator=_seconds)
    max_delay: float = attrs.field(default=MAX_RETRY_DELAY, validator=_seconds)
    jitter: float = attrs.field(default=RETRY_JITTER, validator=_fraction)
    max_retry_after: float = attrs.field(default=MAX_RETRY_AFTER, validator=_seconds)
    retry_statuses: frozenset[int] = RETRY_STATUSES
    retry_maybe_processed: bool = True

    def should_retry_status(self, status_code: int) -> bool:
        """Whether a response with this status is retried."""
        return status_code in self.retry_statuses

    def should_retry_failure(self, error: ApiConnectionError) -> bool:
        """Whether a failure without a response is retried (every one, unless `retry_maybe_processed` is off
        and the request may have reached the server)."""
        return self.retry_maybe_processed or not error.request_sent

    def next_delay(
        self, retries_taken: int, outcome: Response | ApiConnectionError, remaining: float | None = None
    ) -> float | None:
        """Seconds to wait before retrying after `outcome` (a response with any status, or a failure with
        none), or None to give up and return or raise it.

        `retries_taken` counts the retries already made; `remaining` is what is left of the call's deadline.
        A response that is not retried is returned, as is one whose Retry-After exceeds `max_retry_after`,
        and a wait that would end past the deadline is not started.
        """
        if retries_taken >= self.max_retries:
            return None
        if isinstance(outcome, BaseException):
            if not self.should_retry_failure(outcome):
                return None
            delay = self.backoff(retries_taken)
        elif outcome.status_code < 400 or not self.should_retry_status(outcome.status_code):
            return None
        else:
            retry_after = parse_retry_after(outcome.headers)
            if retry_after is None:
                delay = self.backoff(retries_taken)
            elif retry_after <= self.max_retry_after:
                delay = retry_after
            else:
                return None  # the server asks for longer than we wait: give up now
        if remaining is not None and delay >= remaining:
            return None
        return delay

    def backoff(self, retries_taken: int, rand: Callable[[], float] = random.random) -> float:
        """The wait before retry number `retries_taken` (0-based), when the server did not say."""
        delay: float = min(self.initial_delay * 2.0**retries_taken, self.max_delay)
        return delay * (1.0 - self.jitter * rand()) if self.jitter else delay
