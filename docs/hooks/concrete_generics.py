"""A griffe extension for the API reference: a class that subscripts a generic base (`class V2Controller(
UrlCallbacksController[CallbackSummary, FotaV2CallbackRegistrationRequest, ...])`) is documented with the public
members it inherits from that base, each signature and annotation written with the class's own type arguments
(`body: FotaV2CallbackRegistrationRequest`, `-> FotaV2CallbackRegistrationResult`) instead of the base's type
parameters (`body: RequestT`, `-> ResultT`).

The SDK declares V2 and V3 once, as type arguments of the one shared implementation; without this, the reference
would show the type variables (griffe reads the base's source as written).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator
from typing import Any

import griffe


class ConcreteGenerics(griffe.Extension):
    """Copies the public members a class inherits from a subscripted generic base onto it, type arguments in."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        for cls in _classes(pkg):
            for base in cls.bases:
                if isinstance(base, griffe.ExprSubscript):
                    _specialise(cls, base)


def _classes(module: griffe.Module) -> Iterator[griffe.Class]:
    for member in module.members.values():
        if member.is_alias:
            continue
        if isinstance(member, griffe.Module):
            yield from _classes(member)
        elif isinstance(member, griffe.Class):
            yield member


def _specialise(cls: griffe.Class, base: griffe.ExprSubscript) -> None:
    try:
        generic = cls.modules_collection.get_member(str(getattr(base.left, "canonical_path", base.left)))
    except (KeyError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        return  # a base from outside the package (typing.Generic, a library's class): nothing of ours to copy
    if not isinstance(generic, griffe.Class):
        return
    parameters = _type_parameters(generic)
    arguments = base.slice.elements if isinstance(base.slice, griffe.ExprTuple) else [base.slice]
    if not parameters or len(parameters) != len(arguments):
        return
    bound = dict(zip(parameters, arguments, strict=True))
    for name, member in generic.members.items():
        if name.startswith("_") or name in cls.members or member.is_alias:
            continue
        if isinstance(member, griffe.Function | griffe.Attribute):
            cls.set_member(name, _with_arguments(member, bound))


def _type_parameters(generic: griffe.Class) -> list[str]:
    """The names in the `Generic[...]` the class subscripts."""
    for base in generic.bases:
        if isinstance(base, griffe.ExprSubscript) and str(base.left) in ("Generic", "typing.Generic"):
            elements = base.slice.elements if isinstance(base.slice, griffe.ExprTuple) else [base.slice]
            return [str(element) for element in elements]
    return []


def _with_arguments(member: griffe.Function | griffe.Attribute, bound: dict[str, Any]) -> griffe.Object:
    """A copy of `member` whose annotations name the type arguments, with its own docstring (a copy too)."""
    twin = copy.copy(member)
    twin.members = {}
    if member.docstring is not None:
        twin.docstring = copy.copy(member.docstring)
        twin.docstring.parent = twin
    if isinstance(twin, griffe.Function):
        twin.returns = _substituted(twin.returns, bound)
        twin.parameters = griffe.Parameters(
            *(
                griffe.Parameter(
                    parameter.name,
                    annotation=_substituted(parameter.annotation, bound),
                    kind=parameter.kind,
                    default=parameter.default,
                    docstring=parameter.docstring,
                )
                for parameter in twin.parameters
            )
        )
    else:
        twin.annotation = _substituted(twin.annotation, bound)
    return twin


def _substituted(annotation: Any, bound: dict[str, Any]) -> Any:
    """`annotation` with each name of a type parameter replaced by its argument (a new expression; others kept)."""
    if isinstance(annotation, griffe.ExprName):
        return bound.get(annotation.name, annotation)
    if isinstance(annotation, list):
        return [_substituted(item, bound) for item in annotation]
    if dataclasses.is_dataclass(annotation) and isinstance(annotation, griffe.Expr):
        changes = {
            field.name: _substituted(getattr(annotation, field.name), bound)
            for field in dataclasses.fields(annotation)
            if isinstance(getattr(annotation, field.name), griffe.Expr | list)
        }
        return dataclasses.replace(annotation, **changes)
    return annotation
