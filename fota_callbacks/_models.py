"""What every model shares: the attrs settings, redacted secret fields, and the shapes V2 and V3 have in common."""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import attrs

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:

    def dataclass_transform(**_: Any) -> Any:
        return lambda decorated: decorated


__all__ = ["CallbackUrl", "CallbackUrlRequest", "EnsureResult", "SuccessResult", "WireEnum", "model", "secret_field"]

C = TypeVar("C", bound=type[Any])


class WireEnum(str, Enum):
    """An enum of the strings ThingSpace sends or takes; a member equals, and prints as, its value."""

    def __str__(self) -> str:
        return str(self.value)


@dataclass_transform(frozen_default=True, kw_only_default=True, field_specifiers=(attrs.field,))
def model(cls: C) -> C:
    """Models are immutable attrs classes with slots and keyword-only arguments."""
    return attrs.frozen(kw_only=True)(cls)


def _redact(value: object) -> str:
    return "None" if value is None else "'***'"


def secret_field() -> Any:
    """An optional str field whose value `repr()` never shows."""
    return attrs.field(default=None, repr=_redact)


@model
class CallbackUrlRequest:
    """Base of the V2/V3 registration requests: the HTTPS address ThingSpace will POST messages to."""

    url: str


@model
class CallbackUrl:
    """Base of the V2/V3 responses that carry the registered callback address."""

    url: str | None = None


@model
class SuccessResult:
    """Base of the V2/V3 deregistration results."""

    success: bool


@attrs.frozen
class EnsureResult:
    """What `ensure_callback` did: `action` is "registered", "updated" or "unchanged"; `url` is now registered."""

    action: Literal["registered", "updated", "unchanged"]
    url: str
