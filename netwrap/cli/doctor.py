"""``netwrap doctor``: what this host has and lacks for netwrap, with the fix for each.

Every check only reads. In particular the legacy iptables backend is looked at
through ``/proc/net/ip_tables_names``, never with ``iptables-legacy -S``, which
would create the legacy nat table as a side effect.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import attrs

from netwrap.command import PACKAGES, Command
from netwrap.errors import CommandError, ToolNotFoundError
from netwrap.host.runner import Runner, find_tool

Status = Literal["ok", "warn", "fail"]
CAP_NET_ADMIN, CAP_SYS_ADMIN = 12, 21


@attrs.frozen
class Check:
    """One line of the report."""

    name: str
    status: Status
    found: str
    fix: str = ""


def _read(runner: Runner, tool: str, *args: str) -> str:
    return runner.run(Command(tool, args, mutates=False, ok_codes=frozenset(range(256)))).stdout


def _tool(name: str, why: str) -> Check:
    path = find_tool(name)
    if path is None:
        return Check(name, "fail", "missing", f"apt-get install {PACKAGES.get(name, name)}  ({why})")
    return Check(name, "ok", path)


def _privileges(runner: Runner) -> Check:
    status = _read(runner, "cat", "/proc/self/status")
    uid = next((line.split()[1] for line in status.splitlines() if line.startswith("Uid:")), "?")
    caps = next((int(line.split()[1], 16) for line in status.splitlines() if line.startswith("CapEff:")), 0)
    have = [
        name for bit, name in ((CAP_NET_ADMIN, "CAP_NET_ADMIN"), (CAP_SYS_ADMIN, "CAP_SYS_ADMIN")) if caps >> bit & 1
    ]
    if len(have) == 2:
        return Check("privileges", "ok", f"uid {uid}, {' and '.join(have)}")
    return Check(
        "privileges",
        "fail",
        f"uid {uid}, capabilities: {', '.join(have) or 'none'}",
        "run as root (netwrap needs CAP_NET_ADMIN for links and rules, CAP_SYS_ADMIN for namespaces)",
    )


def _ip(runner: Runner) -> Check:
    version = _read(runner, "ip", "-V").strip()
    out = _read(runner, "ip", "-json", "link", "show", "lo")
    if out.lstrip().startswith("["):
        return Check("ip -json", "ok", version)
    return Check(
        "ip -json", "warn", f"{version}: no -json", "netwrap reads ip -o text instead; iproute2 >= 4.14 is better"
    )


def _bridge(runner: Runner) -> Check:
    if find_tool("brctl") is None:
        return Check(
            "brctl",
            "warn",
            "missing",
            "bridges are made with iproute2 instead (apt-get install bridge-utils "
            "to run the document's brctl commands)",
        )
    return Check("brctl", "ok", _read(runner, "brctl", "--version").strip() or "present")


def _iptables(runner: Runner) -> list[Check]:
    version = _read(runner, "iptables", "--version").strip()
    backend = "nf_tables" if "nf_tables" in version else "legacy" if "legacy" in version else "unknown"
    checks = [Check("iptables", "ok", f"{version} (backend {backend})")]
    legacy = _read(runner, "cat", "/proc/net/ip_tables_names").split()
    if backend == "nf_tables" and legacy:
        checks.append(
            Check(
                "iptables backends",
                "warn",
                f"legacy tables present too: {', '.join(legacy)}",
                "rules in both backends both apply; list the legacy ones with iptables-legacy-save",
            )
        )
    else:
        checks.append(Check("iptables backends", "ok", "one backend in use"))
    forward = _read(runner, "iptables", "-S", "FORWARD").splitlines()
    policy = forward[0].split()[-1] if forward and forward[0].startswith("-P") else "unknown"
    if policy == "DROP":
        checks.append(
            Check(
                "FORWARD policy",
                "warn",
                "DROP",
                "the tutorial's own commands need ACCEPT (iptables -P FORWARD ACCEPT); docker-style topologies "
                "add their own FORWARD chain and work as they are",
            )
        )
    else:
        checks.append(Check("FORWARD policy", "ok", policy))
    return checks


def _sysctls(runner: Runner) -> list[Check]:
    forward = _read(runner, "sysctl", "-n", "net.ipv4.ip_forward").strip()
    checks = [Check("ip_forward", "ok", f"{forward} (netwrap sets 1 while a network needs it)")]
    bridge_nf = _read(runner, "cat", "/proc/sys/net/bridge/bridge-nf-call-iptables").strip()
    if bridge_nf == "1":
        checks.append(Check("br_netfilter", "ok", "loaded: bridged traffic passes iptables"))
    else:
        checks.append(
            Check(
                "br_netfilter",
                "ok",
                "not loaded: bridged traffic bypasses iptables (icc=false still holds through isolated bridge ports)",
            )
        )
    return checks


def diagnose(runner: Runner) -> list[Check]:
    """Every check, in order; a missing tool makes its own line instead of stopping the report."""
    checks = [
        _tool("ip", "iproute2 builds everything"),
        _tool("iptables", "NAT and filter rules"),
        _tool("sysctl", "ip_forward"),
        _tool("ping", "netwrap tutorial verify"),
        _tool("unshare", "the sandbox of the demo and the tests"),
        _tool("nsenter", "the sandbox of the demo and the tests"),
    ]
    probes: list[Callable[[], Check | list[Check]]] = [
        lambda: _privileges(runner),
        lambda: _ip(runner),
        lambda: _bridge(runner),
        lambda: _iptables(runner),
        lambda: _sysctls(runner),
    ]
    for probe in probes:
        try:
            found = probe()
        except (CommandError, ToolNotFoundError) as exc:
            checks.append(Check(probe.__name__, "fail", str(exc).splitlines()[0]))
            continue
        checks.extend(found if isinstance(found, list) else [found])
    return checks


def render(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        line = f"{c.name:<{width}}  {c.status:<4}  {c.found}"
        lines.append(line + (f"\n{'':<{width}}        fix: {c.fix}" if c.fix else ""))
    failed = sum(c.status == "fail" for c in checks)
    warned = sum(c.status == "warn" for c in checks)
    lines.append(f"{failed} missing, {warned} to know about")
    return "\n".join(lines)
