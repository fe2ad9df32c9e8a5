"""Read what a host has, in bulk: one read per namespace and kind of fact.

:func:`observe` looks at what a list of objects needs (which namespaces, which
facts) and reads each fact once: ``ip netns list``; per namespace ``ip -d -json
link show``, ``ip -json addr show`` and ``ip -json route show``; ``iptables -t
TABLE -S`` per iptables table; ``sysctl -n`` per setting. The number of processes grows with the
number of namespaces, not of objects. Where ``ip`` has no ``-json`` (old
iproute2), the ``ip -o`` text forms are read instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

import attrs

from netwrap import parse
from netwrap.command import Command
from netwrap.errors import CommandError
from netwrap.objects import (
    Address,
    Bridge,
    BridgePort,
    Chain,
    IPInterface,
    LinkNetns,
    LinkUp,
    Namespace,
    NetObject,
    Route,
    Rule,
    Sysctl,
    VethPair,
)
from netwrap.runner import Runner

T = TypeVar("T")
HOST: str | None = None
_NO_JSON = 'Option "-json" is unknown'
_NO_NETNS = "Cannot open network namespace"
_NO_SETTING = "cannot stat /proc/sys/"


@attrs.frozen
class NetnsView:
    """What one network namespace holds; ``None`` for a fact that was not read."""

    links: tuple[parse.Link, ...] | None = None
    addresses: tuple[tuple[str, IPInterface], ...] | None = None
    routes: tuple[parse.RouteEntry, ...] | None = None

    def link(self, name: str) -> parse.Link | None:
        return next((link for link in self.links or () if link.name == name), None)


@attrs.frozen
class HostState:
    """A host as observed: named namespaces, a view per namespace read, iptables tables, sysctls.

    ``rules`` and ``chains`` hold, per table read, its rules and its user chains.

    ``namespaces`` is None when it was not read (then every namespace an object
    names is assumed to exist, and a missing one reads as empty).
    """

    namespaces: tuple[str, ...] | None = None
    netns_ids: Mapping[int, str] = attrs.field(factory=dict)
    views: Mapping[str | None, NetnsView] = attrs.field(factory=dict)
    rules: Mapping[str, tuple[parse.IptablesRule, ...]] = attrs.field(factory=dict)
    chains: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)
    sysctls: Mapping[tuple[str | None, str], str] = attrs.field(factory=dict)

    def has_netns(self, name: str) -> bool:
        return self.namespaces is None or name in self.namespaces

    def view(self, netns: str | None) -> NetnsView:
        return self.views.get(netns, NetnsView())

    def peer_name(self, link: parse.Link, netns: str | None) -> tuple[str | None, str] | None:
        """Where a veth's peer is and its name, when the observation can tell."""
        if link.peer is not None:
            return netns, link.peer
        if link.peer_index is None:
            return None
        where = link.peer_netns
        if where is None and link.peer_netnsid is not None:
            where = self.netns_ids.get(link.peer_netnsid)
        if where is None or where not in self.views:
            return None
        match = next((x for x in self.views[where].links or () if x.index == link.peer_index), None)
        return (where, match.name) if match is not None else None


def _read(runner: Runner, args: tuple[str, ...], netns: str | None, tool: str = "ip") -> str:
    return runner.run(Command(tool, args, netns=netns, mutates=False)).stdout


def _ip(
    runner: Runner,
    netns: str | None,
    *,
    json_args: tuple[str, ...],
    text_args: tuple[str, ...],
    from_json: Callable[[str], list[T]],
    from_text: Callable[[str], list[T]],
) -> tuple[T, ...]:
    """Read with ``ip -json``; fall back to the text form where ``-json`` is unknown or ignored."""
    try:
        out = _read(runner, json_args, netns)
    except CommandError as exc:
        if _NO_JSON not in exc.stderr + exc.stdout:
            raise
        return tuple(from_text(_read(runner, text_args, netns)))
    if out.strip() and not out.lstrip().startswith("["):
        return tuple(from_text(_read(runner, text_args, netns)))
    return tuple(from_json(out))


def read_links(runner: Runner, netns: str | None) -> tuple[parse.Link, ...]:
    return _ip(
        runner,
        netns,
        json_args=("-d", "-json", "link", "show"),
        text_args=("-o", "-d", "link", "show"),
        from_json=parse.links,
        from_text=parse.links_text,
    )


def read_addresses(runner: Runner, netns: str | None) -> tuple[tuple[str, IPInterface], ...]:
    return _ip(
        runner,
        netns,
        json_args=("-json", "addr", "show"),
        text_args=("-o", "addr", "show"),
        from_json=parse.addresses,
        from_text=parse.addresses_text,
    )


def read_routes(runner: Runner, netns: str | None) -> tuple[parse.RouteEntry, ...]:
    return _ip(
        runner,
        netns,
        json_args=("-json", "route", "show"),
        text_args=("route", "show"),
        from_json=parse.routes,
        from_text=parse.routes_text,
    )


_LINK_FACTS = (VethPair, LinkNetns, Bridge, BridgePort, LinkUp)


def observe(runner: Runner, objects: Sequence[NetObject], *, all_namespaces: bool = False) -> HostState:
    """Read, once each, the facts that ``objects`` need (everything, in every namespace, with ``all_namespaces``)."""
    link_places = {o.netns for o in objects if isinstance(o, _LINK_FACTS)}
    addr_places = {o.netns for o in objects if isinstance(o, Address)}
    route_places = {o.netns for o in objects if isinstance(o, Route)}
    namespaces: tuple[str, ...] | None = None
    ids: dict[int, str] = {}
    if all_namespaces or any(isinstance(o, Namespace | VethPair) for o in objects):
        listing = _read(runner, ("netns", "list"), None)
        namespaces = tuple(parse.netns_names(listing))
        ids = parse.netns_ids(listing)
    places = link_places | addr_places | route_places
    if all_namespaces:
        places |= {HOST, *(namespaces or ())}
    views: dict[str | None, NetnsView] = {}
    for netns in sorted(places, key=lambda p: (p is not None, p or "")):
        if netns is not None and namespaces is not None and netns not in namespaces:
            continue
        try:
            views[netns] = NetnsView(
                links=read_links(runner, netns) if netns in link_places or all_namespaces else None,
                addresses=read_addresses(runner, netns) if netns in addr_places or all_namespaces else None,
                routes=read_routes(runner, netns) if netns in route_places or all_namespaces else None,
            )
        except CommandError as exc:
            if netns is None or _NO_NETNS not in exc.stderr:
                raise
    rules: dict[str, tuple[parse.IptablesRule, ...]] = {}
    chains: dict[str, tuple[str, ...]] = {}
    for table in sorted({o.table for o in objects if isinstance(o, Rule | Chain)}):
        listing = _read(runner, ("-t", table, "-S"), None, tool="iptables")
        rules[table] = tuple(parse.iptables_rules(listing))
        chains[table] = tuple(parse.iptables_chains(listing))
    sysctls: dict[tuple[str | None, str], str] = {}
    for obj in objects:
        if isinstance(obj, Sysctl) and (obj.netns, obj.name) not in sysctls:
            if obj.netns is not None and namespaces is not None and obj.netns not in namespaces:
                continue
            try:
                out = _read(runner, ("-n", obj.name), obj.netns, tool="sysctl")
            except CommandError as exc:
                # a setting of a device (net.ipv4.conf.DEV.x) does not exist before the device does
                if _NO_SETTING not in exc.stderr and (obj.netns is None or _NO_NETNS not in exc.stderr):
                    raise
                continue
            sysctls[(obj.netns, obj.name)] = parse.sysctl_value(out)
    return HostState(namespaces, ids, views, rules, chains, sysctls)
