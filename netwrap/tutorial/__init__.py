"""The document's network, step by step, as typed objects.

:func:`steps` returns the 22 steps of ``TUTORIAL.md`` in the document's order,
each one object whose create command is the document's own command. Where the
document is wrong (steps 18 and 19) or where ``brctl`` is not used, the step
keeps the document's text in ``original`` and says why in ``note``.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import attrs

from netwrap.command import shell_join
from netwrap.kinds import (
    Address,
    Bridge,
    BridgePort,
    BridgeTool,
    LinkNetns,
    LinkUp,
    Namespace,
    NatRule,
    NetObject,
    Route,
    Sysctl,
    VethPair,
)

CONTAINERS = ("Tdocker0", "Tdocker1")
BRIDGE = "Tbr0"
SUBNET = "172.18.0.0/24"
GATEWAY = "172.18.0.1"
CONTAINER_ADDRESSES = ("172.18.0.2", "172.18.0.3")
PUBLISHED_PORT = 80
STATE_NAME = "tutorial"


@attrs.frozen
class Step:
    """One numbered step of the document."""

    number: int
    obj: NetObject
    purpose: str
    original: str | None = None
    note: str = ""


def steps(bridge_tool: BridgeTool = "brctl") -> tuple[Step, ...]:
    """The document's steps, in its order. ``bridge_tool="ip"`` makes steps 7-9 iproute2's."""
    brctl_note = "brctl (bridge-utils) is not used; this is the iproute2 form"

    def bridge_step(number: int, obj: NetObject, purpose: str, original: str) -> Step:
        if bridge_tool == "brctl":
            return Step(number, obj, purpose)
        return Step(number, obj, purpose, original=original, note=brctl_note)

    route_note = (
        "the document names docker0/veth0/veth2, which it never made, and uses net-tools "
        "`route`; this is the iproute2 form with the document's real names"
    )
    return (
        Step(1, Namespace("Tdocker0"), '"container" 0'),
        Step(2, Namespace("Tdocker1"), '"container" 1'),
        Step(3, VethPair("Tveth0", "Tveth1"), "veth pair 0"),
        Step(4, VethPair("Tveth2", "Tveth3"), "veth pair 1"),
        Step(5, LinkNetns("Tveth0", "Tdocker0"), "one end into container 0"),
        Step(6, LinkNetns("Tveth2", "Tdocker1"), "one end into container 1"),
        bridge_step(7, Bridge(BRIDGE, tool=bridge_tool), 'the bridge ("switch")', "brctl addbr Tbr0"),
        bridge_step(
            8, BridgePort(BRIDGE, "Tveth1", tool=bridge_tool), "plug host end 0 into it", "brctl addif Tbr0 Tveth1"
        ),
        bridge_step(
            9, BridgePort(BRIDGE, "Tveth3", tool=bridge_tool), "plug host end 1 into it", "brctl addif Tbr0 Tveth3"
        ),
        Step(
            10,
            Address("Tveth0", "172.18.0.2/24", netns="Tdocker0"),
            "address in container 0",
            original="ip netns exec Tdocker0 ip a add 172.18.0.2/24 dev Tveth0",
            note="`ip a` is short for `ip addr`; the same command",
        ),
        Step(11, LinkUp("Tveth0", netns="Tdocker0"), "container 0's end up"),
        Step(12, Address("Tveth2", "172.18.0.3/24", netns="Tdocker1"), "address in container 1"),
        Step(13, LinkUp("Tveth2", netns="Tdocker1"), "container 1's end up"),
        Step(14, LinkUp("Tveth1"), "host end 0 up"),
        Step(15, LinkUp("Tveth3"), "host end 1 up"),
        Step(16, Address(BRIDGE, "172.18.0.1/24"), "the bridge becomes the gateway"),
        Step(17, LinkUp(BRIDGE), "the bridge up"),
        Step(
            18,
            Route("default", GATEWAY, "Tveth0", netns="Tdocker0"),
            "default route in container 0",
            original="ip netns exec docker0 route add default gw 172.18.0.1 veth0",
            note=route_note,
        ),
        Step(
            19,
            Route("default", GATEWAY, "Tveth2", netns="Tdocker1"),
            "default route in container 1",
            original="ip netns exec docker1 route add default gw 172.18.0.1 veth2",
            note=route_note,
        ),
        Step(20, Sysctl("net.ipv4.ip_forward", "1"), "let the host route"),
        Step(21, NatRule.masquerade(SUBNET, not_out=BRIDGE), "SNAT: containers reach the outside"),
        Step(
            22,
            NatRule.publish(PUBLISHED_PORT, f"{CONTAINER_ADDRESSES[0]}:{PUBLISHED_PORT}", not_in=BRIDGE),
            f"DNAT: host port {PUBLISHED_PORT} published to container 0",
        ),
    )


def objects(bridge_tool: BridgeTool = "brctl") -> tuple[NetObject, ...]:
    """The steps' objects, in the document's order."""
    return tuple(step.obj for step in steps(bridge_tool))


_HEADER = """\
#!/usr/bin/env bash
# Docker's bridge network, built by hand: the tutorial's commands in its order.
# Printed by `netwrap tutorial script`. Run as root on a host you may change.
# Tear it down with `netwrap tutorial script --down | bash`, or `netwrap tutorial down`.
set -euo pipefail"""

_DOWN_HEADER = """\
#!/usr/bin/env bash
# Removes what the tutorial's commands made, in reverse order: the document's own
# cleanup (bridge down, delbr, the two host veth ends) plus what it leaves behind
# until a reboot (the NAT rules, the namespaces, ip_forward).
# Printed by `netwrap tutorial script --down`. Run as root.
set -uo pipefail"""


def _comment(text: str) -> str:
    return "\n".join(f"#   {line}" for line in textwrap.wrap(text, 76))


def render_script(step_list: Sequence[Step]) -> str:
    """A runnable bash script of the steps' create commands, with the document's numbering."""
    out = [_HEADER]
    for step in step_list:
        out.append(f"\n# {step.number}. {step.purpose}")
        if step.original is not None:
            out.append(f"#   the document writes: {step.original}")
            out.append(_comment(step.note))
        for command in step.obj.create_commands():
            out.append(command.shell())
    return "\n".join(out) + "\n"


def render_down_script(step_list: Sequence[Step]) -> str:
    """A bash script that removes what :func:`render_script` builds, ignoring what is already gone.

    A script cannot know what ``ip_forward`` was before, so it shows the command
    to put it back and leaves it commented out (``netwrap tutorial down`` knows).
    """
    out = [_DOWN_HEADER]
    for step in reversed(step_list):
        obj = step.obj
        if isinstance(obj, Sysctl):
            out.append(f"\n# undo {step.number}. {step.purpose}: only if it was 0 before the tutorial")
            out.extend(f"# {c.shell()}" for c in obj.restore_commands("0"))
            continue
        if isinstance(obj, NatRule | Bridge | VethPair | Namespace):
            commands = obj.delete_commands()
        else:
            continue
        out.append(f"\n# undo {step.number}. {step.purpose}")
        out.extend(f"{shell_join(c.argv)} || true" for c in commands)
    return "\n".join(out) + "\n"
