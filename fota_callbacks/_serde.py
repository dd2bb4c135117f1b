"""JSON <-> attrs models, through one cattrs converter.

Field names are snake_case in Python and camelCase on the wire; the renames are generated once per class by
a hook factory. Unset optional fields (None) are left out of request bodies. Responses are read strictly:
a string field must hold a JSON string and a boolean a JSON boolean (the generated SDKs coerce or drop them),
while unknown keys are ignored.

cattrs is imported, and the converter built, on the first encode or decode: a process that makes a client and no
call (or only in-memory calls without bodies) does not pay for it, about 10 ms of a 140 ms cold start.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from ._errors import ResponseValidationError

if TYPE_CHECKING:
    import cattrs

__all__ = ["decoder", "encode", "shared_converter", "to_camel"]

T = TypeVar("T")


def to_camel(name: str) -> str:
    """`account_name` -> `accountName`."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _strict(expected: type[Any], *, optional: bool = False) -> Callable[[Any, type[Any]], Any]:
    def structure(value: Any, _: type[Any]) -> Any:
        # bool is an int subclass, and a JSON true must never become a str or an int silently.
        if type(value) is not expected and not (optional and value is None):
            raise TypeError(f"expected {expected.__name__}, got {type(value).__name__}")
        return value

    return structure


def _is(expected: object) -> Callable[[Any], bool]:
    return lambda target: bool(target == expected)


def _renames(cls: type[Any]) -> dict[str, Any]:
    from cattrs.gen import override

    return {field.name: override(rename=to_camel(field.name)) for field in attrs.fields(cls)}


def _make_converter() -> cattrs.Converter:
    import cattrs
    from cattrs.cols import is_sequence, list_structure_factory
    from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn

    conv = cattrs.Converter(forbid_extra_keys=False, detailed_validation=True)
    for primitive in (str, bool, int):
        conv.register_structure_hook(primitive, _strict(primitive))
        # `str | None` in one step (cattrs' own optional hook dispatches again per value: a third of a V1 list).
        conv.register_structure_hook_func(_is(primitive | None), _strict(primitive, optional=True))

    def unstructure_factory(cls: type[Any]) -> Callable[[Any], dict[str, Any]]:
        return make_dict_unstructure_fn(cls, conv, _cattrs_omit_if_default=True, **_renames(cls))

    def structure_factory(cls: type[Any]) -> Callable[[Any, type[Any]], Any]:
        structure_fields = make_dict_structure_fn(cls, conv, **_renames(cls))

        def structure(value: Any, target: type[Any]) -> Any:
            if not isinstance(value, dict):
                raise TypeError(f"expected a JSON object, got {type(value).__name__}")
            return structure_fields(value, target)

        return structure

    def sequence_factory(target: Any) -> Callable[[Any, type[Any]], Any]:
        structure_items = list_structure_factory(target, conv)

        def structure(value: Any, target: type[Any]) -> Any:
            # cattrs would iterate any iterable: a JSON object or string is not an array.
            if type(value) is not list:
                raise TypeError(f"expected a JSON array, got {type(value).__name__}")
            return structure_items(value, target)

        return structure

    conv.register_structure_hook_factory(is_sequence, sequence_factory)
    conv.register_unstructure_hook_factory(attrs.has, unstructure_factory)
    conv.register_structure_hook_factory(attrs.has, structure_factory)
    return conv


_converter: cattrs.Converter | None = None


def shared_converter() -> cattrs.Converter:
    """The one converter, built on first use."""
    global _converter
    if _converter is None:
        _converter = _make_converter()
    return _converter


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)  # json.dumps would make one per call


def encode(model: object) -> bytes:
    """A request model as compact UTF-8 JSON."""
    return _ENCODER.encode(shared_converter().unstructure(model)).encode()


def _format_error(exc: BaseException, _type: type[Any] | None) -> str:
    if isinstance(exc, KeyError):
        return "required field missing"
    return str(exc) if isinstance(exc, (TypeError, ValueError)) and str(exc) else repr(exc)


def _json_path(error: str) -> str:
    """cattrs names attributes in its paths (`$.account_name`); users read JSON keys (`$.accountName`)."""
    message, at, path = error.rpartition(" @ ")
    if not at:
        return error
    return f"{message} @ " + ".".join(to_camel(part) for part in path.split("."))


_JSON = json.JSONDecoder()  # what json.loads uses, without its two whitespace regex matches and three frames
_JSON_WHITESPACE = " \t\n\r"


def _loads(body: bytes) -> Any:
    """`json.loads(body)`, the same value or error, in a quarter of its time for the usual body: one that opens
    with `{` or `[` followed by no NUL (no BOM, not UTF-16/32) is UTF-8, decoded with surrogatepass as `json.loads`
    would after its encoding detection, and parsed by the same decoder's `raw_decode`. Any other body is left to
    `json.loads` as it is."""
    if body[:1] not in (b"{", b"[") or body[1:2] == b"\x00":
        return json.loads(body)
    text = body.decode("utf-8", "surrogatepass")
    data, end = _JSON.raw_decode(text)
    if end != len(text):
        rest = text[end:]
        trailing = rest.lstrip(_JSON_WHITESPACE)
        if trailing:
            raise json.JSONDecodeError("Extra data", text, end + len(rest) - len(trailing))
    return data


def decoder(target: Any, *, empty: Callable[[], Any] | None = None) -> Callable[[bytes, int], Any]:
    """Build, once, the function that turns a 2xx body into `target` or raises `ResponseValidationError`.

    `empty` gives the value of an empty body, where the API documents one (list: nothing registered).
    """
    import cattrs

    structure = shared_converter().get_structure_hook(target)

    def decode(body: bytes, status_code: int) -> Any:
        if empty is not None and not body.strip():
            return empty()
        try:
            data = _loads(body)
        except (ValueError, RecursionError) as exc:
            raise ResponseValidationError(
                status_code=status_code, body=body, errors=[f"body is not JSON ({type(exc).__name__}) @ $"]
            ) from None
        try:
            return structure(data, target)
        except Exception as exc:  # cattrs' validation errors, and whatever else a hostile shape provokes
            errors = [_json_path(e) for e in cattrs.transform_error(exc, path="$", format_exception=_format_error)]
            raise ResponseValidationError(status_code=status_code, body=body, errors=errors) from exc

    return decode
