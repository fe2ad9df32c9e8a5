"""Pure parsers: tool output in, netwrap's own value types out.

Each function takes the text a read command printed and never starts a
process, so it is tested on output captured from the real tools.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import attrs

from netwrap.errors import ParseError
from netwrap.objects import IPAddress, IPInterface, IPNetwork


@attrs.frozen
class Link:
    """One device as ``ip -d -json link show`` prints it."""

    name: str
    kind: str | None = None
    master: str | None = None
    up: bool = False
    peer: str | None = None  # the peer's name when it lives in the same namespace


@attrs.frozen
class RouteEntry:
    """One route as ``ip -json route show`` prints it."""

    destination: IPNetwork | str
    gateway: IPAddress | None = None
    device: str | None = None


def _json_list(text: str, what: str) -> list[dict[str, Any]]:
    if not text.strip():
        return []
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(f"{what}: expected JSON from `ip -json`, got {text[:80]!r} ({exc})") from None
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise ParseError(f"{what}: expected a JSON list of objects, got {text[:80]!r}")
    return data


def netns_names(text: str) -> list[str]:
    """Names from ``ip netns list``: lines ``NAME`` or ``NAME (id: N)``."""
    names = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        name, _, rest = line.partition(" ")
        if rest and not (rest.startswith("(id:") and rest.endswith(")")):
            raise ParseError(f"ip netns list: cannot read the line {line!r}")
        names.append(name)
    return names


def links(text: str) -> list[Link]:
    """Devices from ``ip [-d] -json link show``."""
    found = []
    for item in _json_list(text, "ip link"):
        name = item.get("ifname")
        if not isinstance(name, str):
            raise ParseError(f"ip link: an entry has no ifname: {item!r}")
        info = item.get("linkinfo")
        kind = info.get("info_kind") if isinstance(info, dict) else None
        flags = item.get("flags", [])
        found.append(
            Link(
                name=name,
                kind=kind if isinstance(kind, str) else None,
                master=item.get("master") if isinstance(item.get("master"), str) else None,
                up=isinstance(flags, list) and "UP" in flags,
                peer=item.get("link") if isinstance(item.get("link"), str) else None,
            )
        )
    return found


def addresses(text: str) -> list[tuple[str, IPInterface]]:
    """``(device, address/prefix)`` pairs from ``ip -json addr show``."""
    found = []
    for item in _json_list(text, "ip addr"):
        name = item.get("ifname")
        for info in item.get("addr_info", []) or []:
            try:
                found.append((str(name), ipaddress.ip_interface(f"{info['local']}/{info['prefixlen']}")))
            except (KeyError, TypeError, ValueError):
                raise ParseError(f"ip addr: cannot read the address {info!r} of {name!r}") from None
    return found


def routes(text: str) -> list[RouteEntry]:
    """Routes from ``ip -json route show``."""
    found = []
    for item in _json_list(text, "ip route"):
        dst = item.get("dst")
        try:
            destination: IPNetwork | str = "default" if dst == "default" else ipaddress.ip_network(str(dst))
            gateway = ipaddress.ip_address(item["gateway"]) if "gateway" in item else None
        except ValueError:
            raise ParseError(f"ip route: cannot read the route {item!r}") from None
        device = item.get("dev")
        found.append(RouteEntry(destination, gateway, device if isinstance(device, str) else None))
    return found


def sysctl_value(text: str) -> str:
    """The value ``sysctl -n KEY`` printed (tabs between numbers folded to spaces)."""
    value = " ".join(text.split())
    if not value:
        raise ParseError("sysctl -n printed nothing")
    return value
