"""Between C structs and Python keywords / dicts, by the fields the header declares.

Params structs are filled from keyword arguments field by field, after the library's
``*_default_params()``, so a field added to the header becomes a keyword without a change
here; statistics structs become dicts the same way.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from ._library import ffi

__all__ = ["field_names", "fill", "to_dict", "new_sized"]

# Fields the caller must never set: struct_size is the ABI's version stamp, and reserved
# fields must stay 0 (mst_model_params.reserved0).
_HIDDEN_PREFIXES = ("struct_size", "reserved")


def field_names(ctype: str) -> list[str]:
    """The settable field names of struct ``ctype``, in declaration order."""
    return [name for name, _ in ffi.typeof(ctype).fields if not name.startswith(_HIDDEN_PREFIXES)]


def new_sized(ctype: str) -> Any:
    """A zeroed ``ctype`` with struct_size set (for the structs the library fills)."""
    obj = ffi.new(ctype + " *")
    obj.struct_size = ffi.sizeof(ctype)
    return obj


def fill(obj: Any, ctype: str, values: Mapping[str, Any], keep: list[Any], what: str) -> None:
    """Set the fields of ``obj`` (a ``ctype *``) from ``values``.

    Strings become NUL-terminated buffers appended to ``keep``, which the caller must hold
    until the C call returns (the library borrows strings for the call only).

    Raises:
        TypeError: a name that is not a field (listing the valid ones), or a value of the
            wrong kind for its field.
    """
    fields = dict(ffi.typeof(ctype).fields)
    for name, value in values.items():
        if name.startswith(_HIDDEN_PREFIXES) or name not in fields:
            raise TypeError(f"{what}: unknown option {name!r}; valid: {', '.join(field_names(ctype))}")
        field_type = fields[name].type
        if field_type.kind == "pointer" and field_type.item.cname == "char":
            if value is None:
                setattr(obj, name, ffi.NULL)
                continue
            if not isinstance(value, (str, bytes)):
                raise TypeError(f"{what}: option {name!r} takes a string, not {type(value).__name__}")
            buffer = ffi.new("char[]", value.encode("utf-8") if isinstance(value, str) else value)
            keep.append(buffer)
            setattr(obj, name, buffer)
        elif field_type.kind == "primitive":
            if isinstance(value, bool):
                value = int(value)
            try:
                setattr(obj, name, value)
            except (TypeError, OverflowError) as exc:
                raise TypeError(f"{what}: option {name!r}: {exc}") from exc
        else:
            raise TypeError(f"{what}: option {name!r} of type {field_type.cname} cannot be set from Python")


def to_dict(obj: Any, ctype: str, skip: Iterable[str] = ()) -> dict[str, Any]:
    """A dict of every field of ``obj`` (strings decoded, nested structs as dicts)."""
    skipped = set(skip)
    out: dict[str, Any] = {}
    for name, field in ffi.typeof(ctype).fields:
        if name.startswith(_HIDDEN_PREFIXES) or name in skipped:
            continue
        value = getattr(obj, name)
        kind = field.type.kind
        if kind == "pointer" and field.type.item.cname == "char":
            out[name] = None if value == ffi.NULL else ffi.string(value).decode("utf-8", "replace")
        elif kind == "struct":
            out[name] = to_dict(value, field.type.cname)
        elif kind in ("primitive", "enum"):
            out[name] = value
        # Pointers to callbacks and arrays have no meaning as plain values; left out.
    return out
