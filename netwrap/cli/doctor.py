"""``netwrap doctor``: what this host (or, with ``--ssh``, another) has and lacks for netwrap, with the fix for each.

Every check only reads. In particular the legacy iptables backend is looked at
through ``/proc/net/ip_tables_names``, never with ``iptables-legacy -S``, which
would create the legacy nat table as a side effect.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import attrs

from netwrap.command import PACKAGES, Command
from netwrap.errors import CommandError, NetwrapError, ToolNotFoundError
from netwrap.host.runner import Runner, find_tool
from netwrap.host.ssh import SSH_FAILED

Status = Literal["ok", "warn", "fail"]
CAP_NET_ADMIN, CAP_SYS_ADMIN = 12, 21
# A read's exit code is part of what it found, except 127 (the tool is missing: over ssh, `env` says so) and
# 255 (ssh could not reach the machine): those raise, and make the probe's own failed line.
READABLE = frozenset(range(256)) - {127, SSH_FAILED}
VERSION_FLAG = {"ip": "-V", "ping": "-V"}


@attrs.frozen
class Check:
    """One line of the report."""

    name: str
    status: Status
    found: str
    fix: str = ""


@attrs.frozen
class Host:
    """The machine diagnosed: this one, or (``remote``, ``[user@]host``) the one ``runner`` reaches over ssh.

    ``locate`` finds a tool there: its path here, what its version flag prints there; None when it is missing.
    """

    runner: Runner
    locate: Callable[[str], str | None]
    remote: str | None = None


def _read(host: Host, tool: str, *args: str) -> str:
    return host.runner.run(Command(tool, args, mutates=False, ok_codes=READABLE)).stdout


def _locate_over(runner: Runner) -> Callable[[str], str | None]:
    """Find a tool on the far side by running it with its version flag (a missing one is ToolNotFoundError)."""

    def locate(tool: str) -> str | None:
        try:
            result = runner.run(Command(tool, (VERSION_FLAG.get(tool, "--version"),), mutates=False, ok_codes=READABLE))
        except ToolNotFoundError:
            return None
        shown = (result.stdout or result.stderr).strip().splitlines()
        return shown[0] if shown else "present"

    return locate


def _tool(host: Host, name: str, why: str) -> Check:
    path = host.locate(name)
    if path is None:
        where = f" on {host.remote}" if host.remote is not None else ""
        return Check(name, "fail", "missing", f"apt-get install {PACKAGES.get(name, name)}{where}  ({why})")
    return Check(name, "ok", path)


def _ssh(runner: Runner, remote: str) -> Check:
    """Whether ssh reaches the machine at all (in batch mode: no password prompt)."""
    fix = f"make `ssh {remote} true` work without a prompt (netwrap runs ssh in batch mode: a key, not a password)"
    try:
        runner.run(Command("true", (), mutates=False))
    except CommandError as exc:
        detail = exc.stderr.strip().splitlines()
        return Check("ssh", "fail", exc.message + (f": {detail[-1]}" if detail else ""), fix)
    except ToolNotFoundError as exc:
        return Check("ssh", "fail", str(exc), fix if exc.tool != "ssh" else "apt-get install openssh-client")
    return Check("ssh", "ok", f"{remote} answers")


def _privileges(host: Host) -> Check:
    status = _read(host, "cat", "/proc/self/status")
    uid = next((line.split()[1] for line in status.splitlines() if line.startswith("Uid:")), "?")
    caps = next((int(line.split()[1], 16) for line in status.splitlines() if line.startswith("CapEff:")), 0)
    have = [
        name for bit, name in ((CAP_NET_ADMIN, "CAP_NET_ADMIN"), (CAP_SYS_ADMIN, "CAP_SYS_ADMIN")) if caps >> bit & 1
    ]
    if len(have) == 2:
        return Check("privileges", "ok", f"uid {uid}, {' and '.join(have)}")
    how = "log in as root there, or add --ssh-sudo" if host.remote is not None else "run as root"
    return Check(
        "privileges",
        "fail",
        f"uid {uid}, capabilities: {', '.join(have) or 'none'}",
        f"{how} (netwrap needs CAP_NET_ADMIN for links and rules, CAP_SYS_ADMIN for namespaces)",
    )


def _ip(host: Host) -> Check:
    version = _read(host, "ip", "-V").strip()
    out = _read(host, "ip", "-json", "link", "show", "lo")
    if out.lstrip().startswith("["):
        return Check("ip -json", "ok", version)
    return Check(
        "ip -json", "warn", f"{version}: no -json", "netwrap reads ip -o text instead; iproute2 >= 4.14 is better"
    )


def _bridge(host: Host) -> Check:
    if host.locate("brctl") is None:
        return Check(
            "brctl",
            "warn",
            "missing",
            "bridges are made with iproute2 instead (apt-get install bridge-utils "
            "to run the document's brctl commands)",
        )
    return Check("brctl", "ok", _read(host, "brctl", "--version").strip() or "present")


def _iptables(host: Host) -> list[Check]:
    version = _read(host, "iptables", "--version").strip()
    backend = "nf_tables" if "nf_tables" in version else "legacy" if "legacy" in version else "unknown"
    checks = [Check("iptables", "ok", f"{version} (backend {backend})")]
    legacy = _read(host, "cat", "/proc/net/ip_tables_names").split()
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
    return checks


def _forward_policy(host: Host) -> Check:
    forward = _read(host, "iptables", "-S", "FORWARD").splitlines()
    policy = forward[0].split()[-1] if forward and forward[0].startswith("-P") else "unknown"
    if policy == "DROP":
        return Check(
            "FORWARD policy",
            "warn",
            "DROP",
            "the tutorial's own commands need ACCEPT (iptables -P FORWARD ACCEPT); docker-style topologies "
            "add their own FORWARD chain and work as they are",
        )
    return Check("FORWARD policy", "ok", policy)


def _ip_forward(host: Host) -> Check:
    forward = _read(host, "sysctl", "-n", "net.ipv4.ip_forward").strip()
    return Check("ip_forward", "ok", f"{forward} (netwrap sets 1 while a network needs it)")


def _br_netfilter(host: Host) -> Check:
    bridge_nf = _read(host, "cat", "/proc/sys/net/bridge/bridge-nf-call-iptables").strip()
    if bridge_nf == "1":
        return Check("br_netfilter", "ok", "loaded: bridged traffic passes iptables")
    return Check(
        "br_netfilter",
        "ok",
        "not loaded: bridged traffic bypasses iptables (icc=false still holds through isolated bridge ports)",
    )


LOCAL_TOOLS = (
    ("ip", "iproute2 builds everything"),
    ("iptables", "NAT and filter rules"),
    ("sysctl", "ip_forward"),
    ("ping", "netwrap tutorial verify"),
    ("unshare", "the sandbox of the demo and the tests"),
    ("nsenter", "the sandbox of the demo and the tests"),
)
REMOTE_TOOLS = (
    ("ip", "iproute2 builds everything"),
    ("iptables", "NAT and filter rules"),
    ("sysctl", "ip_forward"),
    ("ping", "netwrap tutorial verify"),
    ("python3", "netwrap tutorial verify's probes over ssh"),
)
# Each probe with the label of its line when it fails (a missing tool, a read that failed).
PROBES: tuple[tuple[str, Callable[[Host], Check | list[Check]]], ...] = (
    ("privileges", _privileges),
    ("ip -json", _ip),
    ("brctl", _bridge),
    ("iptables", _iptables),
    ("FORWARD policy", _forward_policy),
    ("ip_forward", _ip_forward),
    ("br_netfilter", _br_netfilter),
)


def diagnose(runner: Runner, remote: str | None = None) -> list[Check]:
    """Every check, in order; a missing tool or a failed read makes its own line instead of stopping the report.

    With ``remote`` (``[user@]host``, which ``runner`` reaches through ssh), the machine diagnosed is that
    one: first whether ssh reaches it at all (if not, that is the whole report), then its tools, found through
    ssh, and the same probes; the sandbox's tools (``unshare``, ``nsenter``) are only ever this machine's.
    """
    if remote is None:
        host = Host(runner, find_tool)
        checks = [_tool(host, name, why) for name, why in LOCAL_TOOLS]
    else:
        reached = _ssh(runner, remote)
        if reached.status == "fail":
            return [reached]
        host = Host(runner, _locate_over(runner), remote)
        checks = [reached, *(_tool(host, name, why) for name, why in REMOTE_TOOLS)]
    for label, probe in PROBES:
        try:
            found = probe(host)
        except (NetwrapError, ValueError, IndexError) as exc:  # a tool missing, a read failed or unreadable
            checks.append(Check(label, "fail", (str(exc).splitlines() or [type(exc).__name__])[0]))
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
