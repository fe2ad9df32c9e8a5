"""Objects to plain JSON-able dicts and back, for the record of what netwrap created.

Loading goes through the objects' own constructors, so a damaged or edited
record is refused with the same validation errors as bad input.
"""

from __future__ import annotations

import functools
import ipaddress
import weakref
from typing import cast

import attrs

from netwrap.errors import NetwrapError, ValidationError
from netwrap.kinds import KINDS, Kind, NetObject

TYPES: dict[str, type[Kind]] = {cls.__name__: cls for cls in KINDS}

_IP_TYPES = (
    ipaddress.IPv4Address, ipaddress.IPv6Address, ipaddress.IPv4Interface,
    ipaddress.IPv6Interface, ipaddress.IPv4Network, ipaddress.IPv6Network,
)  # fmt: skip


def _plain(value: object) -> object:
    """A field's value as JSON holds it (a tuple as a list), so that a description equals its own round trip
    through a record file: the record check compares the two to tell what changed."""
    if value is None or type(value) in _AS_IS:
        return value
    if isinstance(value, _IP_TYPES):
        return str(value)
    if isinstance(value, tuple):
        if value and isinstance(value[0], Kind):
            return [to_dict(item) for item in value]  # objects within an object (a chain's rules), each in full
        return [_plain(item) for item in value]
    return value


_AS_IS = frozenset({str, int, bool, float})  # held by JSON as they are


def to_dict(obj: NetObject) -> dict[str, object]:
    """``{"type": "Namespace", "name": "Tdocker0"}`` and so on.

    An object is described once while it lives (a build compares each wanted object's description with the
    record's, then writes the record): the same dict is handed out again, so it is never to be changed.
    """
    key = id(obj)
    known = _DESCRIBED.get(key)
    if known is not None and known[0]() is obj:
        return known[1]
    cls = type(obj)
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in attrs.fields(cast("type[attrs.AttrsInstance]", cls)))
    data: dict[str, object] = {"type": cls.__name__}
    for name in names:
        data[name] = _plain(getattr(obj, name))
    _DESCRIBED[key] = (weakref.ref(obj, functools.partial(_forget, key)), data)
    return data


_FIELDS: dict[type, tuple[str, ...]] = {}  # each kind's field names, in order


def _forget(key: int, _: object) -> None:
    _DESCRIBED.pop(key, None)


# Descriptions by the id of the object described, each forgotten when its object goes (so an id used again
# never finds another object's).
_DESCRIBED: dict[int, tuple[weakref.ref[NetObject], dict[str, object]]] = {}


def from_dict(data: object) -> NetObject:
    """The object :func:`to_dict` described; a :class:`NetwrapError` if it cannot be rebuilt."""
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise NetwrapError(f"not an object description: {data!r:.100}")
    cls = TYPES.get(data["type"])
    if cls is None:
        raise NetwrapError(f"unknown object type {data['type']!r}")
    fields = {k: v for k, v in data.items() if k != "type"}
    try:
        obj: NetObject = cls.from_fields(fields, from_dict)
    except ValidationError:
        raise
    except (TypeError, ValueError) as exc:
        raise NetwrapError(f"cannot rebuild {data['type']} from {fields!r:.100}: {exc}") from None
    return obj
