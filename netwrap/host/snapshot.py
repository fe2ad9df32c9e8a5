"""A comparable picture of a host's network, to prove that something left no trace.

Taken before and after (``up`` then ``down``, a test, the demo), two snapshots
compare with ``==``: namespaces and, in the host and in each of them, devices
with their kind, master and state, addresses and routes; the nat and filter
tables (as ``iptables -S`` prints them, and as ``iptables-save`` does, per
chain with the rules in their order); ``ip_forward`` and the other forwarding
settings, and each bridge's ``route_localnet``. MAC addresses, interface
indexes and packet counters are left out, so two hosts built the same way
compare equal.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TypeVar

import attrs

from netwrap.command import Command
from netwrap.errors import ParseError
from netwrap.host import parse
from netwrap.host.runner import Runner

T = TypeVar("T")
Links = tuple[tuple[str, str | None, str | None, bool, bool, bool], ...]
# One table as iptables-save prints it: (chain, policy, rules in order) for each chain, chains sorted by
# name. The order of the rules in a chain matters and is kept; the order in which iptables lists the
# chains is only the order they were created in (two hosts built by different histories differ there),
# so it is normalised away.
Table = tuple[tuple[str, str, tuple[str, ...]], ...]

# The host-wide settings that decide forwarding and loopback routing; each bridge's own follow.
HOST_SYSCTLS = (
    "net.ipv4.ip_forward",
    "net.ipv4.conf.all.forwarding",
    "net.ipv4.conf.default.forwarding",
    "net.ipv4.conf.all.route_localnet",
    "net.ipv4.conf.default.route_localnet",
    "net.ipv6.conf.all.forwarding",
    "net.ipv6.conf.default.forwarding",
    "net.ipv6.conf.all.disable_ipv6",
    "net.ipv6.conf.default.disable_ipv6",
)
BRIDGE_SYSCTLS = ("forwarding", "route_localnet")

_COUNTERS = re.compile(r"^\[\d+:\d+\]\s*")
_CHAIN = re.compile(r"^:(\S+)\s+(\S+)(?:\s+\[\d+:\d+\])?\s*$")


@attrs.frozen
class NetnsPicture:
    links: Links
    addresses: tuple[tuple[str, str], ...]
    routes: tuple[tuple[str, str | None, str | None], ...]
    routes6: tuple[tuple[str, str | None, str | None], ...] = ()  # IPv6's, but link-local and multicast


@attrs.frozen
class Snapshot:
    """What a host holds, namespaces included."""

    namespaces: tuple[str, ...]
    views: tuple[tuple[str, NetnsPicture], ...]
    nat_rules: tuple[str, ...]
    filter_rules: tuple[str, ...]
    ip_forward: str
    nat_table: Table = ()
    filter_table: Table = ()
    sysctls: tuple[tuple[str, str], ...] = ()
    nat6_table: Table = ()  # ip6tables-save's
    filter6_table: Table = ()

    def differences(self, other: Snapshot) -> list[str]:
        """Human-readable lines for each field that differs."""
        lines = []
        for field in attrs.fields(Snapshot):
            mine, theirs = getattr(self, field.name), getattr(other, field.name)
            if mine != theirs:
                lines.append(f"{field.name}: {mine!r} -> {theirs!r}")
        return lines

    def explain(self, other: Snapshot) -> list[str]:
        """Like :meth:`differences`, item by item: ``-`` only here, ``+`` only in ``other``, or the same
        items in another order (namespaces by name, chains by name with their rules in order)."""
        lines: list[str] = []
        raw = {"nat_rules": "nat_table", "filter_rules": "filter_table"}  # -S says again what the table says
        for field in attrs.fields(Snapshot):
            mine, theirs = getattr(self, field.name), getattr(other, field.name)
            if mine == theirs or (
                field.name in raw and getattr(self, raw[field.name]) != getattr(other, raw[field.name])
            ):
                continue
            if field.name == "views":
                _views(dict(mine), dict(theirs), lines)
            elif field.name in ("nat_table", "filter_table", "nat6_table", "filter6_table"):
                _tables(field.name, mine, theirs, lines)
            elif isinstance(mine, tuple):
                _items(field.name, mine, theirs, lines)
            else:
                lines.append(f"{field.name}: {mine!r} -> {theirs!r}")
        return lines

    def sysctl(self, key: str) -> str | None:
        """A setting as taken (``net.ipv4.conf.BRIDGE.route_localnet`` for each bridge), None if not taken."""
        return dict(self.sysctls).get(key)


def _items(name: str, mine: Sequence[object], theirs: Sequence[object], lines: list[str]) -> None:
    if mine == theirs:
        return
    gone = [f"{name}: - {item!r}" for item in mine if item not in theirs]
    new = [f"{name}: + {item!r}" for item in theirs if item not in mine]
    lines += gone + new
    if not gone and not new:
        lines.append(f"{name}: the same items in another order: {list(mine)!r} -> {list(theirs)!r}")


def _by_name(
    name: str,
    mine: dict[str, T],
    theirs: dict[str, T],
    whole: str,
    *,
    lines: list[str],
    compare: Callable[[str, T, T], None],
) -> None:
    """Each name only on one side as a whole ``-``/``+`` line; each on both compared by ``compare``."""
    for key in sorted(mine.keys() | theirs.keys()):
        where = f"{name}[{key or '(host)'}]"
        if key not in theirs:
            lines.append(f"{where}: - the whole {whole} {mine[key]!r}")
        elif key not in mine:
            lines.append(f"{where}: + the whole {whole} {theirs[key]!r}")
        else:
            compare(where, mine[key], theirs[key])


def _views(mine: dict[str, NetnsPicture], theirs: dict[str, NetnsPicture], lines: list[str]) -> None:
    def compare(where: str, a: NetnsPicture, b: NetnsPicture) -> None:
        for field in attrs.fields(NetnsPicture):
            _items(f"{where}.{field.name}", getattr(a, field.name), getattr(b, field.name), lines)

    _by_name("views", mine, theirs, "namespace", lines=lines, compare=compare)


def _tables(name: str, mine: Table, theirs: Table, lines: list[str]) -> None:
    def compare(where: str, a: tuple[str, tuple[str, ...]], b: tuple[str, tuple[str, ...]]) -> None:
        if a[0] != b[0]:
            lines.append(f"{where}: policy {a[0]} -> {b[0]}")
        _items(where, a[1], b[1], lines)

    chains = {chain: (policy, rules) for chain, policy, rules in mine}
    _by_name(
        name, chains, {chain: (policy, rules) for chain, policy, rules in theirs}, "chain", lines=lines, compare=compare
    )


def _read(runner: Runner, tool: str, *args: str, netns: str | None = None) -> str:
    return runner.run(Command(tool, args, netns=netns, mutates=False)).stdout


def _picture(runner: Runner, netns: str | None) -> NetnsPicture:
    links = parse.links(_read(runner, "ip", "-d", "-json", "link", "show", netns=netns))
    return NetnsPicture(
        links=tuple(sorted((x.name, x.kind, x.master, x.up, x.isolated, x.hairpin) for x in links)),
        addresses=tuple(
            sorted(
                (dev, str(addr))
                for dev, addr in parse.addresses(_read(runner, "ip", "-json", "addr", "show", netns=netns))
                if not addr.is_link_local  # derived from the MAC address
            )
        ),
        routes=_routes(runner, netns),
        routes6=_routes(runner, netns, "-6"),
    )


def _routes(runner: Runner, netns: str | None, *family: str) -> tuple[tuple[str, str | None, str | None], ...]:
    """The main table's routes; in IPv6's, not those the kernel makes per device itself (link-local, multicast)."""
    listed = parse.routes(_read(runner, "ip", *family, "-json", "route", "show", netns=netns))
    return tuple(
        sorted(
            (str(r.destination), str(r.gateway) if r.gateway else None, r.device)
            for r in listed
            if not family
            or isinstance(r.destination, str)
            or not (r.destination.is_link_local or r.destination.is_multicast)
        )
    )


def table(text: str) -> Table:
    """``iptables-save -t TABLE`` output, normalised: comments and counters dropped, chains sorted by
    name, each chain's rules in their order."""
    policies: dict[str, str] = {}
    rules: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = _COUNTERS.sub("", raw.strip())
        if not line or line.startswith(("#", "*")) or line == "COMMIT":
            continue
        chain = _CHAIN.match(line)
        if chain is not None:
            policies[chain.group(1)] = chain.group(2)
            rules.setdefault(chain.group(1), [])
            continue
        parts = line.split(maxsplit=2)
        if len(parts) >= 2 and parts[0] == "-A":
            rules.setdefault(parts[1], []).append(line)
            continue
        raise ParseError(f"iptables-save printed a line that is neither a chain nor a rule: {raw!r}")
    return tuple((name, policies.get(name, "-"), tuple(rules[name])) for name in sorted(rules))


def _sysctls(runner: Runner, host: NetnsPicture) -> tuple[tuple[str, str], ...]:
    bridges = sorted(name for name, kind, *_ in host.links if kind == "bridge")
    # asked for in the slash form: a device name may hold a '.', which sysctl would read as a separator
    parts = [k.split(".") for k in HOST_SYSCTLS]
    parts += [["net", "ipv4", "conf", b, setting] for b in bridges for setting in BRIDGE_SYSCTLS]
    keys = [".".join(p) for p in parts]
    slashed = ["/".join(p) for p in parts]
    values = _read(runner, "sysctl", "-n", *slashed).splitlines()
    if len(values) != len(keys):
        raise ParseError(f"sysctl printed {len(values)} value(s) for {len(keys)} setting(s)")
    return tuple(zip(keys, (" ".join(v.split()) for v in values), strict=True))


def take(runner: Runner) -> Snapshot:
    """Read the host through ``runner``: a few processes, and four more per namespace."""
    namespaces = tuple(sorted(parse.netns_names(_read(runner, "ip", "netns", "list"))))
    views = (("", _picture(runner, None)), *((ns, _picture(runner, ns)) for ns in namespaces))
    sysctls = _sysctls(runner, views[0][1])
    return Snapshot(
        namespaces=namespaces,
        views=views,
        nat_rules=tuple(_read(runner, "iptables", "-t", "nat", "-S").splitlines()),
        filter_rules=tuple(_read(runner, "iptables", "-t", "filter", "-S").splitlines()),
        ip_forward=dict(sysctls)["net.ipv4.ip_forward"],
        nat_table=table(_read(runner, "iptables-save", "-t", "nat")),
        filter_table=table(_read(runner, "iptables-save", "-t", "filter")),
        sysctls=sysctls,
        nat6_table=table(_read(runner, "ip6tables-save", "-t", "nat")),
        filter6_table=table(_read(runner, "ip6tables-save", "-t", "filter")),
    )
