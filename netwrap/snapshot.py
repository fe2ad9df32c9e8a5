"""A comparable picture of a host's network, to prove that something left no trace.

Taken before and after (``up`` then ``down``, a test, the demo), two snapshots
compare with ``==``: namespaces and, in the host and in each of them, devices
with their kind, master and state, addresses and routes; the nat and filter
tables; ``ip_forward``. MAC addresses and interface indexes are left out, so
two hosts built the same way compare equal.
"""

from __future__ import annotations

import attrs

from netwrap import parse
from netwrap.command import Command
from netwrap.runner import Runner

Links = tuple[tuple[str, str | None, str | None, bool, bool], ...]


@attrs.frozen
class NetnsPicture:
    links: Links
    addresses: tuple[tuple[str, str], ...]
    routes: tuple[tuple[str, str | None, str | None], ...]


@attrs.frozen
class Snapshot:
    """What a host holds, namespaces included."""

    namespaces: tuple[str, ...]
    views: tuple[tuple[str, NetnsPicture], ...]
    nat_rules: tuple[str, ...]
    filter_rules: tuple[str, ...]
    ip_forward: str

    def differences(self, other: Snapshot) -> list[str]:
        """Human-readable lines for each field that differs."""
        lines = []
        for field in attrs.fields(Snapshot):
            mine, theirs = getattr(self, field.name), getattr(other, field.name)
            if mine != theirs:
                lines.append(f"{field.name}: {mine!r} -> {theirs!r}")
        return lines


def _read(runner: Runner, tool: str, *args: str, netns: str | None = None) -> str:
    return runner.run(Command(tool, args, netns=netns, mutates=False)).stdout


def _picture(runner: Runner, netns: str | None) -> NetnsPicture:
    links = parse.links(_read(runner, "ip", "-d", "-json", "link", "show", netns=netns))
    return NetnsPicture(
        links=tuple(sorted((x.name, x.kind, x.master, x.up, x.isolated) for x in links)),
        addresses=tuple(
            sorted(
                (dev, str(addr))
                for dev, addr in parse.addresses(_read(runner, "ip", "-json", "addr", "show", netns=netns))
                if not addr.is_link_local  # derived from the MAC address
            )
        ),
        routes=tuple(
            sorted(
                (str(r.destination), str(r.gateway) if r.gateway else None, r.device)
                for r in parse.routes(_read(runner, "ip", "-json", "route", "show", netns=netns))
            )
        ),
    )


def take(runner: Runner) -> Snapshot:
    """Read the host through ``runner``: a few processes, and three more per namespace."""
    namespaces = tuple(sorted(parse.netns_names(_read(runner, "ip", "netns", "list"))))
    views = (("", _picture(runner, None)), *((ns, _picture(runner, ns)) for ns in namespaces))
    return Snapshot(
        namespaces=namespaces,
        views=views,
        nat_rules=tuple(_read(runner, "iptables", "-t", "nat", "-S").splitlines()),
        filter_rules=tuple(_read(runner, "iptables", "-t", "filter", "-S").splitlines()),
        ip_forward=parse.sysctl_value(_read(runner, "sysctl", "-n", "net.ipv4.ip_forward")),
    )
