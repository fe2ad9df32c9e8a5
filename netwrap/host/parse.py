"""Pure parsers: tool output in, netwrap's own value types out.

Each function takes the text a read command printed and never starts a
process, so it is tested on output captured from the real tools.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shlex
from typing import Any

import attrs

from netwrap.errors import ParseError
from netwrap.validate import IPAddress, IPInterface, IPNetwork


@attrs.frozen
class Link:
    """One device as ``ip -d link show`` prints it.

    A veth names its peer directly (``peer``) when both ends share a namespace;
    otherwise it gives the peer's index (``peer_index``) in the namespace that
    ``peer_netns`` names (text output) or ``peer_netnsid`` numbers (JSON output;
    ``ip netns list`` maps the ids to names).
    """

    name: str
    kind: str | None = None
    master: str | None = None
    up: bool = False
    peer: str | None = None
    index: int | None = None
    peer_index: int | None = None
    peer_netnsid: int | None = None
    peer_netns: str | None = None
    isolated: bool = False
    hairpin: bool = False
    mtu: int | None = None
    mac: str | None = None
    group: int | None = None


@attrs.frozen
class RouteEntry:
    """One route as ``ip -json route show`` prints it."""

    destination: IPNetwork | str
    gateway: IPAddress | None = None
    device: str | None = None


JsonOutput = str | list[Any]  # what `ip -json` printed, or that text already decoded


def _json_list(output: JsonOutput, what: str) -> list[dict[str, Any]]:
    if isinstance(output, str):
        if not output.strip():
            return []
        try:
            data = json.loads(output)
        except json.JSONDecodeError as exc:
            raise ParseError(f"{what}: expected JSON from `ip -json`, got {output[:80]!r} ({exc})") from None
    else:
        data = output
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise ParseError(f"{what}: expected a JSON list of objects, got {str(output)[:80]!r}")
    return data


_NETNS_LINE = re.compile(r"^(\S+)(?: \(id: (\d+)\))?$")


def _netns_entries(text: str) -> list[tuple[str, int | None]]:
    entries = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        match = _NETNS_LINE.match(line)
        if match is None:
            raise ParseError(f"ip netns list: cannot read the line {line!r}")
        entries.append((match[1], int(match[2]) if match[2] is not None else None))
    return entries


def netns_names(text: str) -> list[str]:
    """Names from ``ip netns list``: lines ``NAME`` or ``NAME (id: N)``."""
    return [name for name, _ in _netns_entries(text)]


def netns_ids(text: str) -> dict[int, str]:
    """The ids ``ip netns list`` shows, mapped to names (ids are what ``link_netnsid`` refers to); where one
    namespace has several names (a running container's, attached), the first listed."""
    found: dict[int, str] = {}
    for name, nsid in _netns_entries(text):
        if nsid is not None:
            found.setdefault(nsid, name)
    return found


def netns_name_ids(text: str) -> dict[str, int]:
    """Each name ``ip netns list`` shows with an id, and that id: two names with one id name one namespace."""
    return {name: nsid for name, nsid in _netns_entries(text) if nsid is not None}


def links(text: JsonOutput) -> list[Link]:
    """Devices from ``ip [-d] -json link show``."""
    found = []
    for item in _json_list(text, "ip link"):
        name = item.get("ifname")
        if not isinstance(name, str):
            raise ParseError(f"ip link: an entry has no ifname: {item!r}")
        info = item.get("linkinfo")
        kind = info.get("info_kind") if isinstance(info, dict) else None
        port = info.get("info_slave_data") if isinstance(info, dict) else None
        flags = item.get("flags", [])
        found.append(
            Link(
                name=name,
                kind=kind if isinstance(kind, str) else None,
                master=_str(item.get("master")),
                up=isinstance(flags, list) and "UP" in flags,
                peer=_str(item.get("link")),
                index=_int(item.get("ifindex")),
                peer_index=_int(item.get("link_index")),
                peer_netnsid=_int(item.get("link_netnsid")),
                isolated=isinstance(port, dict) and port.get("isolated") is True,
                hairpin=isinstance(port, dict) and port.get("hairpin") is True,
                mtu=_int(item.get("mtu")),
                mac=_str(item.get("address")),
                group=_int_or_none(_str(item.get("group"))),
            )
        )
    return found


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


_LINK_LINE = re.compile(r"^(\d+): ([^:@\s]+)(?:@(\S+?))?: <([^>]*)>(.*)$")


def links_text(text: str) -> list[Link]:
    """Devices from ``ip -o -d link show`` (the fallback where ``-json`` is missing)."""
    found = []
    for line in text.splitlines():
        if not line.strip():
            continue
        match = _LINK_LINE.match(line)
        if match is None:
            raise ParseError(f"ip -o link: cannot read the line {line[:80]!r}")
        index, name, at, flags, rest = match.groups()
        segments = [seg.strip() for seg in rest.split("\\")]
        words = " ".join(segments[:2]).split()
        peer = peer_index = None
        if at is not None:
            if at.startswith("if") and at[2:].isascii() and at[2:].isdigit():
                peer_index = int(at[2:])
            elif at != "NONE":
                peer = at
        kind = segments[2].split()[0] if len(segments) > 2 and segments[2] else None
        found.append(
            Link(
                name=name,
                kind=kind,
                master=_after(words, "master"),
                up="UP" in flags.split(","),
                peer=peer,
                index=int(index),
                peer_index=peer_index,
                peer_netnsid=_int_or_none(_after(words, "link-netnsid")),
                peer_netns=_after(words, "link-netns"),
                isolated=any(seg.startswith("bridge_slave") and " isolated on" in seg for seg in segments),
                hairpin=any(seg.startswith("bridge_slave") and " hairpin on" in seg for seg in segments),
                mtu=_int_or_none(_after(words, "mtu")),
                mac=_after(words, "link/ether"),
                group=_int_or_none(_after(words, "group")),
            )
        )
    return found


def _after(words: list[str], key: str) -> str | None:
    try:
        return words[words.index(key) + 1]
    except (ValueError, IndexError):
        return None


def _int_or_none(text: str | None) -> int | None:
    return int(text) if text is not None and text.isascii() and text.isdigit() else None


def addresses(text: JsonOutput) -> list[tuple[str, IPInterface]]:
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


_ADDR_LINE = re.compile(r"^\d+:\s+(\S+)\s+inet6?\s+(\S+)")


def addresses_text(text: str) -> list[tuple[str, IPInterface]]:
    """``(device, address/prefix)`` pairs from ``ip -o addr show``."""
    found = []
    for line in text.splitlines():
        if not line.strip():
            continue
        match = _ADDR_LINE.match(line)
        if match is None:
            raise ParseError(f"ip -o addr: cannot read the line {line[:80]!r}")
        try:
            found.append((match[1], ipaddress.ip_interface(match[2])))
        except ValueError:
            raise ParseError(f"ip -o addr: cannot read the address {match[2]!r}") from None
    return found


def routes_text(text: str) -> list[RouteEntry]:
    """Routes from plain ``ip route show``."""
    found = []
    for line in text.splitlines():
        words = line.split()
        if not words:
            continue
        if words[0] in ("unreachable", "blackhole", "prohibit", "throw", "local", "broadcast", "unicast"):
            words = words[1:]
        try:
            destination: IPNetwork | str = "default" if words[0] == "default" else ipaddress.ip_network(words[0])
            via = _after(words, "via")
            gateway = ipaddress.ip_address(via) if via is not None else None
        except (ValueError, IndexError):
            raise ParseError(f"ip route: cannot read the line {line[:80]!r}") from None
        found.append(RouteEntry(destination, gateway, _after(words, "dev")))
    return found


def routes(text: JsonOutput) -> list[RouteEntry]:
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


@attrs.frozen
class IptablesRule:
    """One ``-A CHAIN ...`` line of ``iptables -S`` or ``iptables-save``: the chain and the words after it."""

    chain: str
    words: tuple[str, ...]

    def option(self, name: str) -> str | None:
        """The value after option ``name`` (``--dport``), or None."""
        return _after(list(self.words), name)

    def negated(self, name: str) -> bool:
        """Whether option ``name`` is preceded by ``!``."""
        try:
            at = self.words.index(name)
        except ValueError:
            return False
        return at > 0 and self.words[at - 1] == "!"


def iptables_rules(text: str) -> list[IptablesRule]:
    """The rules (``-A`` lines) of ``iptables -S`` or ``iptables-save`` output; policies and comments skipped."""
    found = []
    for line in text.splitlines():
        if not line.startswith("-A "):
            continue
        try:
            # iptables quotes only what holds spaces or quotes (comments): plain lines split fast
            words = shlex.split(line) if '"' in line or "'" in line or "\\" in line else line.split()
        except ValueError:
            raise ParseError(f"iptables: cannot read the rule {line[:80]!r}") from None
        if len(words) < 2:
            raise ParseError(f"iptables: a rule with no chain: {line[:80]!r}")
        found.append(IptablesRule(words[1], tuple(words[2:])))
    return found


def iptables_chains(text: str) -> list[str]:
    """The user-defined chains (``-N`` lines) of ``iptables -S`` output."""
    return [line.split()[1] for line in text.splitlines() if line.startswith("-N ") and len(line.split()) == 2]


def iptables_save(text: str) -> dict[str, tuple[list[IptablesRule], list[str]]]:
    """Per table in ``iptables-save`` output (``*TABLE`` ... ``COMMIT``): its rules and its user chains
    (``:NAME - [0:0]``; a built-in chain has a policy instead of ``-``)."""
    tables: dict[str, tuple[list[IptablesRule], list[str]]] = {}
    rules: list[str] = []
    chains: list[str] = []
    table: str | None = None
    for line in text.splitlines():
        if line.startswith("*"):
            table, rules, chains = line[1:].strip(), [], []
        elif table is None or line.startswith("#") or not line.strip():
            continue
        elif line.startswith(":"):
            words = line[1:].split()
            if len(words) >= 2 and words[1] == "-":
                chains.append(words[0])
        elif line.strip() == "COMMIT":
            tables[table] = (iptables_rules("\n".join(rules)), chains)
            table = None
        else:
            rules.append(line)
    if table is not None:
        raise ParseError(f"iptables-save: table {table} has no COMMIT")
    return tables


def brctl_ports(text: str) -> dict[str, list[str]]:
    """Each bridge's ports from ``brctl show``."""
    bridges: dict[str, list[str]] = {}
    current: str | None = None
    for number, line in enumerate(text.splitlines()):
        if number == 0 or not line.strip():
            continue
        fields = line.split("\t")
        if fields[0]:
            parts = line.split()
            if len(parts) < 3:
                raise ParseError(f"brctl show: cannot read the line {line!r}")
            current = parts[0]
            bridges[current] = parts[3:4]
        elif current is not None:
            bridges[current].append(line.strip())
        else:
            raise ParseError(f"brctl show: a port line before any bridge: {line!r}")
    return bridges


def fdb_entries(text: str) -> list[tuple[str, str, str | None]]:
    """``(device, mac, dst)`` from ``bridge -json fdb show`` (``dst`` for VXLAN peers, else None)."""
    found = []
    for item in _json_list(text, "bridge fdb"):
        device, mac = item.get("ifname"), item.get("mac")
        if not isinstance(device, str) or not isinstance(mac, str):
            continue
        found.append((device, mac, _str(item.get("dst"))))
    return found


def sysctl_value(text: str) -> str:
    """The value ``sysctl -n KEY`` printed (tabs between numbers folded to spaces)."""
    value = " ".join(text.split())
    if not value:
        raise ParseError("sysctl -n printed nothing")
    return value


def sysctl_values(text: str) -> dict[str, str]:
    """What ``sysctl KEY...`` printed, ``key = value`` per line, as a table (a key with ``/`` read as ``.``)."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(" = ")
        if not sep or not key.strip():
            raise ParseError(f"sysctl printed a line that is not 'key = value': {line!r}")
        found[key.strip().replace("/", ".")] = " ".join(value.split())
    return found


def identities(text: str) -> dict[str, str]:
    """``{path: "DEVICE:INODE"}`` from ``stat -L --printf '%d:%i %n\\n' PATH...`` (lines it could not stat are
    on stderr, not here)."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        identity, _, path = line.partition(" ")
        device, _, inode = identity.partition(":")
        if path and device.isdigit() and inode.isdigit():
            found[path] = identity
    return found
