"""Read what a host has, in bulk: one read per namespace and kind of fact.

:func:`observe` looks at what a list of objects needs (which namespaces, which
facts) and reads each fact once: ``ip netns list``; per namespace ``ip -d -json
link show``, ``ip -json addr show`` and ``ip -json route show``; ``iptables -t
TABLE -S`` per iptables table; ``sysctl -n`` per setting. The number of processes grows with the
number of namespaces, not of objects. Where ``ip`` has no ``-json`` (old
iproute2), the ``ip -o`` text forms are read instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
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
    FdbEntry,
    IPInterface,
    LinkNetns,
    LinkUp,
    Namespace,
    NetObject,
    Route,
    Rule,
    Sysctl,
    VethPair,
    Vxlan,
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
    fdb: Mapping[str | None, tuple[tuple[str, str, str | None], ...]] = attrs.field(factory=dict)
    rules: Mapping[str, tuple[parse.IptablesRule, ...]] = attrs.field(factory=dict)
    chains: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)
    sysctls: Mapping[tuple[str | None, str], str] = attrs.field(factory=dict)
    _rule_index: dict[str, frozenset[tuple[str, tuple[str, ...]]]] = attrs.field(
        factory=dict, init=False, eq=False, repr=False
    )

    def has_rule(self, table: str, chain: str, words: tuple[str, ...]) -> bool:
        """Whether ``table`` lists ``-A CHAIN WORDS`` (by a set built once per table)."""
        index = self._rule_index.get(table)
        if index is None:
            index = frozenset((rule.chain, rule.words) for rule in self.rules.get(table, ()))
            self._rule_index[table] = index
        return (chain, words) in index

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


_LINK_FACTS = (VethPair, LinkNetns, Bridge, BridgePort, LinkUp, Vxlan)
READERS = 8  # namespaces read at once
_SHOW = {"links": "link show", "addresses": "addr show", "routes": "route show"}


def _json_arrays(text: str) -> list[str]:
    """Split ``[...][...]`` (what ``ip -json -batch`` prints) into one JSON text per command."""
    decoder = json.JSONDecoder()
    found: list[str] = []
    at = 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at >= len(text):
            return found
        start = at
        try:
            _, at = decoder.raw_decode(text, at)
        except json.JSONDecodeError:
            return []
        found.append(text[start:at])


def read_view(runner: Runner, netns: str | None, facts: tuple[str, ...]) -> NetnsView:
    """The facts of one namespace in one process (``ip -d -json [-n NS] -batch -``), or fact by fact
    where ``ip`` has no ``-json``."""
    if not facts:
        return NetnsView()
    where = ("-n", netns) if netns is not None else ()
    batch = Command(
        "ip", ("-d", "-json", *where, "-batch", "-"), mutates=False, input="".join(f"{_SHOW[f]}\n" for f in facts)
    )
    parts: list[str] = []
    try:
        parts = _json_arrays(runner.run(batch).stdout)
    except CommandError as exc:
        if _NO_JSON not in exc.stderr + exc.stdout:
            raise
    if len(parts) == len(facts):
        got = dict(zip(facts, parts, strict=True))
        return NetnsView(
            links=tuple(parse.links(got["links"])) if "links" in got else None,
            addresses=tuple(parse.addresses(got["addresses"])) if "addresses" in got else None,
            routes=tuple(parse.routes(got["routes"])) if "routes" in got else None,
        )
    return NetnsView(
        links=read_links(runner, netns) if "links" in facts else None,
        addresses=read_addresses(runner, netns) if "addresses" in facts else None,
        routes=read_routes(runner, netns) if "routes" in facts else None,
    )


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
    wanted: dict[str | None, tuple[str, ...]] = {}
    for netns in sorted(places, key=lambda p: (p is not None, p or "")):
        if netns is not None and namespaces is not None and netns not in namespaces:
            continue
        wanted[netns] = tuple(
            fact
            for fact, where in (("links", link_places), ("addresses", addr_places), ("routes", route_places))
            if netns in where or all_namespaces
        )
    views: dict[str | None, NetnsView] = {}
    with ThreadPoolExecutor(max_workers=READERS) as pool:
        futures = {netns: pool.submit(read_view, runner, netns, facts) for netns, facts in wanted.items()}
    for netns, future in futures.items():
        try:
            views[netns] = future.result()
        except CommandError as exc:
            if netns is None or _NO_NETNS not in exc.stderr:
                raise
    fdb: dict[str | None, tuple[tuple[str, str, str | None], ...]] = {}
    for netns in sorted({o.netns for o in objects if isinstance(o, FdbEntry)}, key=lambda p: p or ""):
        try:
            fdb[netns] = tuple(parse.fdb_entries(_read(runner, ("-json", "fdb", "show"), netns, tool="bridge")))
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
    return HostState(namespaces, ids, views, fdb, rules, chains, sysctls)
