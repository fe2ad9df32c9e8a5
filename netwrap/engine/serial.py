"""Objects to plain JSON-able dicts and back, for the record of what netwrap created.

Loading goes through the objects' own constructors, so a damaged or edited
record is refused with the same validation errors as bad input.
"""

from __future__ import annotations

import ipaddress
from typing import Any, cast

import attrs

from netwrap.errors import NetwrapError, ValidationError
from netwrap.objects import (
    Address,
    Bridge,
    BridgePort,
    Chain,
    FdbEntry,
    LinkNetns,
    LinkUp,
    Namespace,
    NatRule,
    NetObject,
    OwnedChain,
    Route,
    Rule,
    Sysctl,
    VethPair,
    Vxlan,
)

TYPES: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in (
        Namespace,
        VethPair,
        LinkNetns,
        Bridge,
        BridgePort,
        Address,
        LinkUp,
        Route,
        Sysctl,
        Rule,
        NatRule,
        Chain,
        OwnedChain,
        Vxlan,
        FdbEntry,
    )
}

_IP_TYPES = (
    ipaddress.IPv4Address, ipaddress.IPv6Address, ipaddress.IPv4Interface,
    ipaddress.IPv6Interface, ipaddress.IPv4Network, ipaddress.IPv6Network,
)  # fmt: skip


def _plain(value: object) -> object:
    if isinstance(value, _IP_TYPES):
        return str(value)
    if isinstance(value, tuple) and value and isinstance(value[0], Rule):
        return [to_dict(rule) for rule in value]  # an OwnedChain's rules, each described in full
    return value


def to_dict(obj: NetObject) -> dict[str, object]:
    """``{"type": "Namespace", "name": "Tdocker0"}`` and so on."""
    data: dict[str, object] = {"type": type(obj).__name__}
    for field in attrs.fields(cast("type[attrs.AttrsInstance]", type(obj))):
        data[field.name] = _plain(getattr(obj, field.name))
    return data


def from_dict(data: object) -> NetObject:
    """The object :func:`to_dict` described; a :class:`NetwrapError` if it cannot be rebuilt."""
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise NetwrapError(f"not an object description: {data!r:.100}")
    cls = TYPES.get(data["type"])
    if cls is None:
        raise NetwrapError(f"unknown object type {data['type']!r}")
    fields = {k: v for k, v in data.items() if k != "type"}
    if cls is OwnedChain and isinstance(fields.get("rules"), list):
        fields["rules"] = tuple(from_dict(rule) for rule in fields["rules"])
    try:
        obj: NetObject = cls(**fields)
    except ValidationError:
        raise
    except (TypeError, ValueError) as exc:
        raise NetwrapError(f"cannot rebuild {data['type']} from {fields!r:.100}: {exc}") from None
    return obj
