"""A comparable picture of a host's network, to prove that something left no trace.

Taken before and after (``up`` then ``down``, a test, the demo), two snapshots
compare with ``==``: namespaces, devices with their kind and master, addresses,
routes, the nat table's rules and ``ip_forward``.
"""

from __future__ import annotations

import attrs

from netwrap import parse
from netwrap.command import Command
from netwrap.runner import Runner


@attrs.frozen
class Snapshot:
    """What one network namespace holds (plus the named namespaces it can see)."""

    namespaces: tuple[str, ...]
    links: tuple[tuple[str, str | None, str | None, bool], ...]
    addresses: tuple[tuple[str, str], ...]
    routes: tuple[tuple[str, str | None, str | None], ...]
    nat_rules: tuple[str, ...]
    ip_forward: str

    def differences(self, other: Snapshot) -> list[str]:
        """Human-readable lines for each field that differs."""
        lines = []
        for field in attrs.fields(Snapshot):
            mine, theirs = getattr(self, field.name), getattr(other, field.name)
            if mine != theirs:
                lines.append(f"{field.name}: {mine!r} -> {theirs!r}")
        return lines


def _read(runner: Runner, tool: str, *args: str) -> str:
    return runner.run(Command(tool, args, mutates=False)).stdout


def take(runner: Runner) -> Snapshot:
    """Read the host through ``runner`` (six processes)."""
    return Snapshot(
        namespaces=tuple(sorted(parse.netns_names(_read(runner, "ip", "netns", "list")))),
        links=tuple(
            sorted(
                (link.name, link.kind, link.master, link.up)
                for link in parse.links(_read(runner, "ip", "-d", "-json", "link", "show"))
            )
        ),
        addresses=tuple(
            sorted((dev, str(addr)) for dev, addr in parse.addresses(_read(runner, "ip", "-json", "addr", "show")))
        ),
        routes=tuple(
            sorted(
                (str(r.destination), str(r.gateway) if r.gateway else None, r.device)
                for r in parse.routes(_read(runner, "ip", "-json", "route", "show"))
            )
        ),
        nat_rules=tuple(_read(runner, "iptables", "-t", "nat", "-S").splitlines()),
        ip_forward=parse.sysctl_value(_read(runner, "sysctl", "-n", "net.ipv4.ip_forward")),
    )
