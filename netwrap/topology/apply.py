"""Apply, plan, destroy and inspect a topology on a host.

A topology's record lives in the state directory as ``topology-NAME.json``; it
keeps what was created and the addresses IPAM gave, so that a re-apply changes
nothing, keeps every address, and removes what the file no longer has.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

from netwrap.command import Command
from netwrap.engine import claims
from netwrap.engine.batch import Mode
from netwrap.engine.build import Outcome, Progress, build, made_by_others, teardown
from netwrap.engine.check import Check, Checked, observe_for
from netwrap.engine.plan import Plan, plan
from netwrap.engine.state import MemoryStore, StateFile, Store
from netwrap.host.observe import HostState
from netwrap.host.runner import DryRunner, Runner
from netwrap.kinds import Claim, NetObject
from netwrap.kinds.base import Device
from netwrap.topology import compose, verified
from netwrap.topology.model import Container, Topology


def store_for(topo: Topology, state_dir: Path | str, host: str = "") -> StateFile:
    """Where a topology's record is kept (``host``: ``@[user@]machine`` for another machine's)."""
    return StateFile.in_dir(state_dir, f"topology-{topo.name}{host}")


def desired(topo: Topology, store: Store) -> tuple[tuple[NetObject, ...], compose.Addresses]:
    """The objects ``topo`` wants, with addresses (of both families) kept from the last apply."""
    record = store.load()
    allocations = compose.assign(topo, record.allocations if record else None)
    objects = compose.objects(topo, allocations)
    if record is None or not any(obj.recalls for obj in objects):
        return objects, allocations
    made = record.made_as()  # what netwrap made them as (an MTU the file no longer sets is given back)
    return tuple(
        obj.as_after(made[obj.key]) if obj.recalls and obj.key in made else obj for obj in objects
    ), allocations


@attrs.frozen
class TopologyPlan:
    """What ``apply`` would do: each wanted object's standing, and the exact commands it would run."""

    plan: Plan
    commands: tuple[Command, ...]
    conflicts: tuple[str, ...]

    @property
    def is_noop(self) -> bool:
        return not self.commands and not self.conflicts


def plan_topology(
    topo: Topology, runner: Runner, store: StateFile, mode: Mode = "batch", check: Check = "all"
) -> TopologyPlan:
    """Observe the host and work out what ``apply`` would run, running only reads.

    The apply itself is run against a :class:`~netwrap.host.runner.DryRunner` and a
    copy of the record, so the commands listed are exactly those apply would run
    (removals of what the file no longer has included).
    """
    judged = judge(topo, runner, store, check)
    current = judged.plan
    conflicts = (*judged.taken, *(item.assessment.reason for item in current.conflicts))
    if conflicts:
        return TopologyPlan(current, (), conflicts)
    record = store.load()
    copy = MemoryStore(record.copy() if record is not None else None)
    dry = DryRunner(runner)
    apply(topo, dry, copy, mode=mode, check=check)
    return TopologyPlan(current, tuple(dry.changes), ())


@attrs.frozen
class Judged:
    """What :func:`judge` found: what is taken (claims of other records, objects another tool made under a
    wanted name that apply would have to change), each wanted object's standing, and the host as read."""

    taken: tuple[str, ...]
    plan: Plan
    state: HostState
    allocations: compose.Addresses  # the addresses the objects were composed with (the last apply's kept)


def judge(
    topo: Topology,
    runner: Runner,
    store: StateFile,
    check: Check = "all",
    adjust: Callable[[Sequence[NetObject]], Sequence[NetObject]] | None = None,
) -> Judged:
    """What stands in the way of ``topo`` besides objects of another shape (its plan's conflicts), and each
    wanted object's standing, running only reads. ``adjust`` changes the wanted objects before they are judged
    (what CHECK expects of an interface a later plugin of a chain changed)."""
    wanted, allocations = desired(topo, store)
    objects: Sequence[NetObject] = wanted
    if adjust is not None:
        objects = adjust(objects)
    taken = claims.conflicts(objects, claims.others(store, runner))
    record = store.load()
    checked = observe_for(runner, objects, record, check)
    current = plan(objects, checked.state, checked.trusted)
    return Judged((*taken, *made_by_others(current, checked.state, record)), current, checked.state, allocations)


def apply(
    topo: Topology,
    runner: Runner,
    store: Store,
    progress: Progress | None = None,
    *,
    mode: Mode = "batch",
    check: Check = "all",
    preflight: Callable[[Sequence[NetObject]], None] | None = None,
) -> Outcome:
    """Make the host match ``topo``: remove what it no longer has, create what is missing.

    ``mode="batch"`` (the default) regroups the commands into a few processes;
    ``"verbatim"`` runs them one by one. Both reach the same state.
    ``check="host"`` trusts the insides of namespaces whose host side is as the
    last apply left it, instead of reading each (see :mod:`netwrap.engine.check`); when
    the last such check found nothing to do and nothing it depended on changed,
    a few reads of the host settle it (see :mod:`netwrap.topology.verified`).
    ``preflight`` sees the wanted objects before anything is read or changed
    (to stop early, say, when a tool is missing).
    """
    memo = store if check == "host" and isinstance(store, StateFile) else None
    if memo is not None and verified.unchanged(topo, runner, memo, check):
        return Outcome()
    objects, allocations = desired(topo, store)
    if preflight is not None:
        preflight(objects)
    keys = allocations.recorded()
    checks: list[Checked] = []
    outcome = build(
        objects,
        runner,
        store,
        action="apply",
        prune=True,
        allocations=keys,
        progress=progress,
        mode=mode,
        check=check,
        on_checked=checks.append,
    )
    if memo is not None and checks and not outcome.changed and not outcome.notes:
        verified.remember(topo, memo, check, checks[0])
    return outcome


def destroy(runner: Runner, store: StateFile, mode: Mode = "batch") -> Outcome:
    """Remove what the topology's record lists (handing over what another record still uses)."""
    verified.forget(store)
    return teardown(runner, store, mode=mode)


@attrs.frozen
class ContainerStatus:
    """One row of ``netwrap status``: ``up`` only when the container's whole path is as applied.

    ``missing`` says, for a ``degraded`` (or ``missing``) container, each part of
    its path that is not as applied, with the reason.
    """

    name: str
    mode: str
    namespace: str | None
    networks: tuple[dict[str, str], ...]
    ports: tuple[str, ...]
    state: str
    missing: tuple[str, ...] = ()

    @property
    def up(self) -> bool:
        return self.state == "up"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "mode": self.mode,
            "namespace": self.namespace,
            "networks": list(self.networks),
            "ports": list(self.ports),
            "state": self.state,
            "missing": list(self.missing),
        }


def status(
    topo: Topology,
    runner: Runner,
    store: StateFile,
    check: Check = "all",
    wanted: Sequence[NetObject] | None = None,
) -> list[ContainerStatus]:
    """Each container with its networks and addresses, and whether the host has its whole path.

    A container's path is its own objects (namespace, veths, addresses, routes,
    links up), those of its networks (bridge, gateway address, bridge up,
    settings of the bridge) and the shared objects that concern it: the jumps
    into the topology's chains and ``ip_forward`` for every container, a chain
    when one of its rules names the container's devices or addresses. ``up`` when all of it is
    present, ``missing`` when none of its own objects is, ``conflict`` when
    something of another shape holds a name, else ``degraded``. ``wanted``
    replaces the objects the topology alone would build (a cluster machine's
    part adds its own rules and routes).
    """
    objects, allocations = desired(topo, store)
    if wanted is not None:
        objects = tuple(wanted)
    checked = observe_for(runner, objects, store.load(), check)
    items = {item.obj.key: item for item in plan(objects, checked.state, checked.trusted).items}
    attached = compose.links(topo, allocations)
    rows = []
    for container in topo.containers:
        namespace = topo.namespace_of(container.name)
        mine, path = container_path(container, attached, objects)
        lacking = [items[obj.key] for obj in path if items[obj.key].status != "present"]
        missing = tuple(f"{item.obj.key}: {item.assessment.reason}" for item in lacking)
        if container.mode == "host":
            condition, missing = "up", ()
        elif container.joins is not None:
            there = namespace is None or namespace in (checked.state.namespaces or ())
            condition, missing = ("up", ()) if there else ("missing", (f"namespace {namespace} does not exist",))
        elif any(item.status == "conflict" for item in lacking):
            condition = "conflict"
        elif mine and all(items[obj.key].status != "present" for obj in mine):
            condition = "missing"
        else:
            condition = "degraded" if lacking else "up"
        networks = tuple(
            {
                "network": link.network.name,
                "interface": link.interface,
                "host_interface": link.host_interface,
                "address": f"{link.address}/{link.network.prefix}" if link.address is not None else "-",
                "bridge": link.network.bridge,
            }
            | ({"address6": f"{link.address6}/{link.network.prefix6}"} if link.address6 is not None else {})
            for link in attached
            if link.container is container
        )
        ports = tuple(str(p) for p in container.ports)
        rows.append(ContainerStatus(container.name, container.mode, namespace, networks, ports, condition, missing))
    return rows


def container_path(
    container: Container, attached: Sequence[compose.Link], objects: Sequence[NetObject]
) -> tuple[list[NetObject], list[NetObject]]:
    """A container's own objects, and its whole path: those, its networks' (bridge, gateway address, bridge
    up, the bridge's settings) and the shared objects that concern it (see :func:`status`)."""
    own: set[Device] = {(None, x.host_interface) for x in attached if x.container is container}
    mine = [obj for obj in objects if container.owns_namespace and _belongs(obj, container.namespace, own)]
    bridges: set[Device] = {(None, x.network.bridge) for x in attached if x.container is container}
    path = [*mine, *(o for o in objects if o.location is None and o.devices() & bridges and o not in mine)]
    names, addresses = concerning(container, attached)
    path += [o for o in objects if o.shared() and o.concerns(names, addresses)] if bridges else []
    return mine, path


def concerning(
    container: Container, attached: Sequence[compose.Link]
) -> tuple[frozenset[str], frozenset[ipaddress.IPv4Address | ipaddress.IPv6Address]]:
    """The device names (host ends, bridges) and addresses by which a shared object (a rule) concerns a
    container."""
    links = [x for x in attached if x.container is container]
    names = frozenset(name for x in links for name in (x.host_interface, x.network.bridge))
    return names, frozenset(a for x in links for a in (x.address, x.address6) if a is not None)


def _belongs(obj: NetObject, namespace: str, own: set[Device]) -> bool:
    """A container's own objects: its namespace, what lives in it, and what names its host-side devices."""
    if obj.location == namespace:
        return True
    return obj.devices() & own != set() or Claim("namespace", "", namespace) in obj.claims()


def render_status(rows: list[ContainerStatus]) -> str:
    """A plain-text table."""
    header = ("container", "mode", "namespace", "network", "interface", "address", "ports", "state")
    lines: list[tuple[str, ...]] = [header]
    for row in rows:
        nets = row.networks or ({"network": "-", "interface": "-", "address": "-"},)
        for i, net in enumerate(nets):
            first = i == 0
            lines.append(
                (
                    row.name if first else "",
                    row.mode if first else "",
                    (row.namespace or "(host)") if first else "",
                    net["network"],
                    net["interface"],
                    " ".join(a for a in (net["address"], net.get("address6", "")) if a and a != "-") or "-",
                    (", ".join(row.ports) or "-") if first else "",
                    row.state if first else "",
                )
            )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    table = [("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()) for line in lines]
    for row in rows:
        if row.missing:
            table.append(f"{row.name}: {row.state}, not as applied:")
            table += [f"  - {what}" for what in row.missing]
    return "\n".join(table)
