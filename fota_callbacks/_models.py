"""What every model shares: the attrs settings, redacted secret fields, and the shapes V2 and V3 have in common."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import Enum
from types import MemberDescriptorType
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import attrs

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:

    def dataclass_transform(**_: Any) -> Any:
        return lambda decorated: decorated


__all__ = [
    "CallbackUrl",
    "CallbackUrlRequest",
    "EnsureResult",
    "SuccessResult",
    "WireEnum",
    "instance_maker",
    "model",
    "slot_setters",
    "secret_field",
]

C = TypeVar("C", bound=type[Any])
T = TypeVar("T")


class WireEnum(str, Enum):
    """An enum of the strings ThingSpace sends or takes; a member equals, and prints as, its value."""

    def __str__(self) -> str:
        return str(self.value)


@dataclass_transform(frozen_default=True, kw_only_default=True, field_specifiers=(attrs.field,))
def model(cls: C) -> C:
    """Models are immutable attrs classes with slots and keyword-only arguments."""
    return attrs.frozen(kw_only=True)(cls)


def slot_setters(
    cls: type[Any], names: Sequence[str], *, converted: Sequence[str] = ()
) -> tuple[Callable[[Any, Any], None], ...]:
    """The slot setters of `cls`, a slotted attrs class, for all its fields in the order of `names`: what makes an
    instance without its `__init__` (`object.__new__`, then each setter). A frozen class's `__init__` sets each
    field through `object.__setattr__` (about 0.1 µs a field); a setter is where that ends up. Nothing else may
    differ: a class with a validator, a converter (but on the fields `converted`, which the caller passes as their
    converter would make them), `__attrs_post_init__` or a slot that is not a field is refused (TypeError)."""
    fields = attrs.fields_dict(cls)
    slots = {slot for klass in cls.__mro__ for slot in getattr(klass, "__slots__", ())} - {"__weakref__"}
    if sorted(names) != sorted(fields) or slots != set(fields):
        raise TypeError(f"{cls.__name__}: the maker must set every field, and only its fields")
    skipped = [f for f in fields.values() if f.validator or (f.converter and f.name not in converted)]
    if hasattr(cls, "__attrs_post_init__") or skipped:
        raise TypeError(f"{cls.__name__}: the maker would skip what its __init__ runs")
    descriptors = [getattr(cls, name) for name in names]
    if not all(isinstance(descriptor, MemberDescriptorType) for descriptor in descriptors):
        raise TypeError(f"{cls.__name__}: not a slotted class")
    return tuple(descriptor.__set__ for descriptor in descriptors)


def instance_maker(cls: type[T], names: Sequence[str]) -> Callable[[Sequence[Any]], T]:
    """Makes instances of `cls` from the values of all its fields in the order of `names`, through its
    `slot_setters`: for the receiving path, where each message builds several."""
    setters = slot_setters(cls, names)
    new = object.__new__

    def make(values: Sequence[Any]) -> T:
        instance = new(cls)
        for set_field, value in zip(setters, values):  # noqa: B905 - equal lengths by construction; strict= costs more than setting three fields
            set_field(instance, value)
        return instance

    return make


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
