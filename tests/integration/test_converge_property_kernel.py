"""Property, on the real kernel: applying A and then an edit B of it reaches what applying B alone reaches.

Hypothesis makes small docker-style topologies (1-3 networks with distinct /24
subnets in 10.x, 1-3 containers on 1-2 networks each, published tcp/udp ports,
``icc``, ``nat``, ``loopback``, a bridge name or the default one) and one or two
edits of them (a network or a container added or removed, a port, a protocol, a
bridge name, ``icc``, ``nat``, ``loopback`` or an attachment changed). For each
example, sandbox 1 applies A then B, sandbox 2 applies B alone: their normalised
snapshots (devices, addresses, routes, the nat and filter tables with each
chain's rules in order, the forwarding and ``route_localnet`` settings) must be
equal, and a plan of B in sandbox 1 must find nothing to do.

Every address is fixed in the file (container ``cN`` is ``10.K.0.1N`` on the
network ``10.K.0.0/24``): IPAM keeps a container's address across re-applies
and gives the lowest free one on a fresh apply, so with allocated addresses A
then B legitimately differs from B alone whenever a container before another
one leaves or joins. Every other name (namespaces, devices, chains) comes from
the file and is the same in both sandboxes, so nothing else is normalised.

``NETWRAP_PROPERTY_EXAMPLES`` sets the number of examples (default 20); on a
failure Hypothesis prints the shrunk example and a ``@reproduce_failure`` blob.
"""

from __future__ import annotations

import copy
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netwrap import Sandbox, topology_apply, topology_from_dict
from netwrap.host import snapshot
from tests.conftest import require_root

pytestmark = pytest.mark.integration

Spec = dict[str, Any]  # a topology as topology_from_dict takes it
Edit = Callable[[st.DrawFn, Spec], str]

NETWORKS = ("n1", "n2", "n3", "n4")
OCTETS = (31, 32, 33, 34, 35, 36)
BRIDGES = ("brx", "bry", "brz", "brw")
CONTAINERS = ("c1", "c2", "c3", "c4")
HOST_PORTS = (8080, 8081, 9000, 9001, 9002)
CONTAINER_PORTS = (80, 81)
PROTOCOLS = ("tcp", "udp")


def octet(spec: Spec, network: str) -> int:
    return int(spec["networks"][network]["subnet"].split(".")[1])


def address(spec: Spec, network: str, container: str) -> str:
    """The fixed address of ``container`` on ``network`` (see the module's docstring)."""
    return f"10.{octet(spec, network)}.0.{10 + int(container[1:])}"


def attachment(spec: Spec, network: str, container: str) -> dict[str, str]:
    return {"network": network, "address": address(spec, network, container)}


def used_ports(spec: Spec) -> set[int]:
    """Host ports published anywhere in ``spec`` (kept unique whatever the protocol)."""
    return {int(p.split(":")[0]) for c in spec["containers"].values() for p in c["ports"]}


def used_bridges(spec: Spec) -> set[str]:
    return {n["bridge"] for n in spec["networks"].values() if "bridge" in n}


def port(host: int, container: int, protocol: str) -> str:
    return f"{host}:{container}/{protocol}"


def draw_network(draw: st.DrawFn, spec: Spec, name: str, number: int) -> None:
    net: dict[str, Any] = {"subnet": f"10.{number}.0.0/24", "icc": draw(st.booleans()), "nat": draw(st.booleans())}
    free = [b for b in BRIDGES if b not in used_bridges(spec)]
    bridge = draw(st.one_of(st.none(), st.sampled_from(free)))
    if bridge is not None:
        net["bridge"] = bridge
    spec["networks"][name] = net


def draw_ports(draw: st.DrawFn, spec: Spec) -> list[str]:
    free = [p for p in HOST_PORTS if p not in used_ports(spec)]
    hosts = draw(st.lists(st.sampled_from(free), max_size=2, unique=True)) if free else []
    return [port(h, draw(st.sampled_from(CONTAINER_PORTS)), draw(st.sampled_from(PROTOCOLS))) for h in hosts]


def draw_container(draw: st.DrawFn, spec: Spec, name: str) -> None:
    nets = sorted(spec["networks"])
    chosen = draw(st.lists(st.sampled_from(nets), min_size=1, max_size=min(2, len(nets)), unique=True))
    spec["containers"][name] = {
        "networks": [attachment(spec, n, name) for n in chosen],
        "ports": draw_ports(draw, spec),
        "loopback": draw(st.booleans()),
    }


@st.composite
def topologies(draw: st.DrawFn) -> Spec:
    spec: Spec = {"name": "prop", "networks": {}, "containers": {}}
    count = draw(st.integers(1, 3))
    names = draw(st.lists(st.sampled_from(NETWORKS), min_size=count, max_size=count, unique=True))
    numbers = draw(st.lists(st.sampled_from(OCTETS), min_size=count, max_size=count, unique=True))
    for name, number in zip(names, numbers, strict=True):
        draw_network(draw, spec, name, number)
    for name in CONTAINERS[: draw(st.integers(1, 3))]:
        draw_container(draw, spec, name)
    return spec


def applicable(spec: Spec) -> list[str]:
    """The edits that can change ``spec`` (and leave it valid)."""
    nets, containers = spec["networks"], spec["containers"]
    ports = [p for c in containers.values() for p in c["ports"]]
    can = {
        "add network": len(nets) < len(NETWORKS) and len(nets) < len(OCTETS),
        "remove network": len(nets) > 1,
        "add container": len(containers) < len(CONTAINERS),
        "remove container": bool(containers),
        "change port": bool(ports),
        "change protocol": bool(ports),
        "change bridge": True,
        "toggle icc": True,
        "toggle nat": True,
        "toggle loopback": bool(containers),
        "change attachments": bool(containers),
    }
    return [edit for edit in EDITS if can[edit]]


def add_network(draw: st.DrawFn, spec: Spec) -> str:
    nets, containers = spec["networks"], spec["containers"]
    name = draw(st.sampled_from([n for n in NETWORKS if n not in nets]))
    taken = {octet(spec, n) for n in nets}
    draw_network(draw, spec, name, draw(st.sampled_from([o for o in OCTETS if o not in taken])))
    joiners = draw(st.lists(st.sampled_from(sorted(containers)), unique=True)) if containers else []
    for joiner in joiners:
        if len(containers[joiner]["networks"]) < 2:
            containers[joiner]["networks"].append(attachment(spec, name, joiner))
    return f"add network {name}, joined by {joiners}"


def remove_network(draw: st.DrawFn, spec: Spec) -> str:
    nets = spec["networks"]
    name = draw(st.sampled_from(sorted(nets)))
    del nets[name]
    for cname, container in spec["containers"].items():
        container["networks"] = [a for a in container["networks"] if a["network"] != name]
        if not container["networks"]:  # a container in bridge mode needs a network: it moves to another one
            container["networks"] = [attachment(spec, sorted(nets)[0], cname)]
    return f"remove network {name}"


def add_container(draw: st.DrawFn, spec: Spec) -> str:
    name = draw(st.sampled_from([c for c in CONTAINERS if c not in spec["containers"]]))
    draw_container(draw, spec, name)
    return f"add container {name}"


def remove_container(draw: st.DrawFn, spec: Spec) -> str:
    name = draw(st.sampled_from(sorted(spec["containers"])))
    del spec["containers"][name]
    return f"remove container {name}"


def _a_port(draw: st.DrawFn, spec: Spec) -> tuple[list[str], int, int, int, str]:
    containers = spec["containers"]
    owner = draw(st.sampled_from(sorted(c for c in containers if containers[c]["ports"])))
    ports: list[str] = containers[owner]["ports"]
    index = draw(st.integers(0, len(ports) - 1))
    numbers, protocol = ports[index].split("/")
    host, inner = (int(x) for x in numbers.split(":"))
    return ports, index, host, inner, protocol


def change_port(draw: st.DrawFn, spec: Spec) -> str:
    ports, index, host, inner, protocol = _a_port(draw, spec)
    old = ports[index]
    free = [p for p in HOST_PORTS if p not in used_ports(spec)]
    if not free or draw(st.booleans()):
        ports[index] = port(host, next(p for p in CONTAINER_PORTS if p != inner), protocol)
    else:
        ports[index] = port(draw(st.sampled_from(free)), inner, protocol)
    return f"port {old} -> {ports[index]}"


def change_protocol(draw: st.DrawFn, spec: Spec) -> str:
    ports, index, host, inner, protocol = _a_port(draw, spec)
    old = ports[index]
    ports[index] = port(host, inner, "udp" if protocol == "tcp" else "tcp")
    return f"port {old} -> {ports[index]}"


def change_bridge(draw: st.DrawFn, spec: Spec) -> str:
    nets = spec["networks"]
    name = draw(st.sampled_from(sorted(nets)))
    current = nets[name].get("bridge")
    choices: list[str | None] = [b for b in BRIDGES if b not in used_bridges(spec)]
    if current is not None:
        choices.append(None)  # back to the default nw-NAME
    new = draw(st.sampled_from(choices))
    if new is None:
        del nets[name]["bridge"]
    else:
        nets[name]["bridge"] = new
    return f"bridge of {name}: {current} -> {new}"


def toggle(key: str) -> Edit:
    def flip(draw: st.DrawFn, spec: Spec) -> str:
        name = draw(st.sampled_from(sorted(spec["networks"])))
        spec["networks"][name][key] = not spec["networks"][name][key]
        return f"{key} of {name} -> {spec['networks'][name][key]}"

    return flip


def toggle_loopback(draw: st.DrawFn, spec: Spec) -> str:
    name = draw(st.sampled_from(sorted(spec["containers"])))
    container = spec["containers"][name]
    container["loopback"] = not container["loopback"]
    return f"loopback of {name} -> {container['loopback']}"


def change_attachments(draw: st.DrawFn, spec: Spec) -> str:
    nets = spec["networks"]
    name = draw(st.sampled_from(sorted(spec["containers"])))
    container = spec["containers"][name]
    joined = [a["network"] for a in container["networks"]]
    ways = ["swap", "leave"] if len(joined) == 2 else []
    ways += ["join"] if len(joined) == 1 and len(nets) > 1 else []
    ways += ["move"] if len(nets) > len(joined) else []
    if not ways:  # one network in the whole topology, joined already: nothing else to change
        return toggle_loopback(draw, spec)
    way = draw(st.sampled_from(ways))
    others = sorted(n for n in nets if n not in joined)
    if way == "swap":  # eth0 and eth1 trade networks; published ports follow the first one
        container["networks"].reverse()
    elif way == "leave":
        del container["networks"][draw(st.integers(0, 1))]
    elif way == "join":
        container["networks"].append(attachment(spec, draw(st.sampled_from(others)), name))
    else:
        index = draw(st.integers(0, len(joined) - 1))
        container["networks"][index] = attachment(spec, draw(st.sampled_from(others)), name)
    return f"{way} networks of {name}: {joined} -> {[a['network'] for a in container['networks']]}"


EDITS: dict[str, Edit] = {
    "add network": add_network,
    "remove network": remove_network,
    "add container": add_container,
    "remove container": remove_container,
    "change port": change_port,
    "change protocol": change_protocol,
    "change bridge": change_bridge,
    "toggle icc": toggle("icc"),
    "toggle nat": toggle("nat"),
    "toggle loopback": toggle_loopback,
    "change attachments": change_attachments,
}


def edit_once(draw: st.DrawFn, spec: Spec) -> str:
    """Change ``spec`` in place with one applicable edit; say what was done."""
    return EDITS[draw(st.sampled_from(applicable(spec)))](draw, spec)


@st.composite
def edited(draw: st.DrawFn) -> tuple[Spec, Spec, list[str]]:
    """A topology, an edit of it (one or two changes) and what the changes were."""
    first = draw(topologies())
    second = copy.deepcopy(first)
    done = [edit_once(draw, second) for _ in range(draw(st.integers(1, 2)))]
    return first, second, done


@settings(
    max_examples=int(os.environ.get("NETWRAP_PROPERTY_EXAMPLES", "20")),
    deadline=None,
    derandomize=False,
    print_blob=True,
)
@given(case=edited())
def test_applying_a_then_its_edit_reaches_what_the_edit_alone_reaches(case: tuple[Spec, Spec, list[str]]) -> None:
    require_root()
    first, second, done = case
    a, b = topology_from_dict(first, source="A"), topology_from_dict(second, source="B")
    with tempfile.TemporaryDirectory(prefix="netwrap-property-") as state, Sandbox() as edits, Sandbox() as fresh:
        store = topology_apply.store_for(a, Path(state) / "edited")
        topology_apply.apply(a, edits.runner, store)
        topology_apply.apply(b, edits.runner, store)
        topology_apply.apply(b, fresh.runner, topology_apply.store_for(b, Path(state) / "fresh"))
        diff = snapshot.take(edits.runner).explain(snapshot.take(fresh.runner))
        assert not diff, f"after {done}, A then B differs from B alone (- A then B, + B alone):\n" + "\n".join(diff)
        planned = topology_apply.plan_topology(b, edits.runner, store)
        left = [c.shell() for c in planned.commands] + [f"conflict: {c}" for c in planned.conflicts]
        assert planned.is_noop, f"after {done}, a plan of B after A then B is not a no-op:\n" + "\n".join(left)
