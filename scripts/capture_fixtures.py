#!/usr/bin/env python3
"""Capture real tool output for the unit tests' fixtures (run as root).

Builds the tutorial inside a throwaway sandbox and saves what the read commands
print, before and after, into tests/fixtures/. Also captures a few conflicting
hosts. Re-run it after a tool upgrade and review the diff.
"""

from __future__ import annotations

import sys
from pathlib import Path

from netwrap import tutorial
from netwrap.build import build
from netwrap.command import Command
from netwrap.runner import Runner
from netwrap.sandbox import Sandbox
from netwrap.state import MemoryStore

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures"


def save(runner: Runner, name: str, tool: str, *args: str, netns: str | None = None) -> None:
    result = runner.run(Command(tool, args, netns=netns, mutates=False, ok_codes=frozenset({0, 1})))
    (OUT / name).write_text(result.stdout)
    print(f"{name}: {len(result.stdout)} bytes", file=sys.stderr)


def ip(runner: Runner, *args: str) -> None:
    runner.run(Command("ip", args))


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    with Sandbox() as sb:
        r = sb.runner
        save(r, "empty_netns_list.txt", "ip", "netns", "list")
        save(r, "empty_links.json", "ip", "-d", "-json", "link", "show")
        save(r, "empty_addr.json", "ip", "-json", "addr", "show")
        save(r, "empty_routes.json", "ip", "-json", "route", "show")
        save(r, "ip_forward_0.txt", "sysctl", "-n", "net.ipv4.ip_forward")
        build(tutorial.objects(), r, MemoryStore())
        save(r, "tutorial_netns_list.txt", "ip", "netns", "list")
        save(r, "tutorial_host_links.json", "ip", "-d", "-json", "link", "show")
        save(r, "tutorial_host_addr.json", "ip", "-json", "addr", "show")
        save(r, "tutorial_docker0_links.json", "ip", "-d", "-json", "link", "show", netns="Tdocker0")
        save(r, "tutorial_docker0_addr.json", "ip", "-json", "addr", "show", netns="Tdocker0")
        save(r, "tutorial_docker0_routes.json", "ip", "-json", "route", "show", netns="Tdocker0")
        save(r, "tutorial_docker1_links.json", "ip", "-d", "-json", "link", "show", netns="Tdocker1")
        save(r, "tutorial_docker1_addr.json", "ip", "-json", "addr", "show", netns="Tdocker1")
        save(r, "tutorial_docker1_routes.json", "ip", "-json", "route", "show", netns="Tdocker1")
        save(r, "ip_forward_1.txt", "sysctl", "-n", "net.ipv4.ip_forward")
        save(r, "tutorial_nat_S.txt", "iptables", "-t", "nat", "-S")
        save(r, "tutorial_brctl_show.txt", "brctl", "show")
    with Sandbox() as sb:
        r = sb.runner
        # Tbr0 is a veth; Tveth1 is a port of another bridge; Tveth0's peer is not Tveth1.
        ip(r, "link", "add", "Tbr0", "type", "veth", "peer", "name", "Tbrx")
        ip(r, "link", "add", "Tother", "type", "bridge")
        ip(r, "link", "add", "Tveth0", "type", "veth", "peer", "name", "Tvethz")
        ip(r, "link", "add", "Tveth1", "type", "veth", "peer", "name", "Tvethy")
        ip(r, "link", "set", "Tveth1", "master", "Tother")
        ip(r, "addr", "add", "172.18.0.1/24", "dev", "Tother")
        save(r, "conflict_links.json", "ip", "-d", "-json", "link", "show")
        save(r, "conflict_addr.json", "ip", "-json", "addr", "show")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
