"""Build an ordered list of objects on a host, and take it down again.

``build`` ensures each object in order and records what it created (before
creating it) in a :class:`~netwrap.state.Store`; ``teardown`` walks the
list backwards and removes only what the record says netwrap created, skipping
what goes away by itself with its owner (an address on a deleted veth, anything
inside a deleted namespace), and restores every sysctl it changed.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from netwrap import converge
from netwrap.objects import (
    Address,
    Bridge,
    BridgePort,
    LinkNetns,
    LinkUp,
    Namespace,
    NetObject,
    Route,
    Sysctl,
    VethPair,
)
from netwrap.runner import Runner
from netwrap.state import Record, Store


@attrs.frozen
class Outcome:
    """What a build or teardown did: the keys it changed and anything worth telling."""

    changed: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def build(objects: Sequence[NetObject], runner: Runner, store: Store) -> Outcome:
    """Ensure each object in order; record ownership before each change."""
    record = store.load() or Record()
    changed: list[str] = []
    for obj in objects:
        if isinstance(obj, Sysctl):
            current = converge.read_sysctl(obj, runner)
            if current == obj.value:
                continue
            record.sysctls.setdefault(obj.key, current)
            store.save(record)
            for command in obj.create_commands():
                runner.run(command)
        else:
            if converge.check(obj, runner):
                continue
            if obj.key not in record.created:
                record.created.append(obj.key)
                store.save(record)
            for command in obj.create_commands():
                runner.run(command)
        changed.append(obj.key)
    return Outcome(tuple(changed))


def _goes_with_owner(obj: NetObject, links: set[str], namespaces: set[str]) -> bool:
    netns = getattr(obj, "netns", None)
    if netns is not None and netns in namespaces:
        return True
    match obj:
        case Address() | LinkUp() | LinkNetns():
            return obj.device in links or (isinstance(obj, LinkNetns) and obj.netns in namespaces)
        case Route():
            return obj.device is not None and obj.device in links
        case BridgePort():
            return obj.port in links or obj.bridge in links
    return False


def teardown(objects: Sequence[NetObject], runner: Runner, store: Store) -> Outcome:
    """Remove, in reverse order, what ``build`` created; restore changed sysctls.

    With no record (the state file is gone), every listed object found on the
    host is taken as netwrap's, and sysctls are left as they are.
    """
    record = store.load()
    notes: list[str] = []
    if record is None:
        owned = {obj.key for obj in objects}
        notes.append(f"no record of an earlier build in {store.describe()}; removing every listed object found")
    else:
        owned = set(record.created)
    links: set[str] = set()
    namespaces: set[str] = set()
    for obj in objects:
        if obj.key not in owned:
            continue
        match obj:
            case VethPair():
                links |= {obj.name, obj.peer}
            case Bridge():
                links.add(obj.name)
            case Namespace():
                namespaces.add(obj.name)
    changed: list[str] = []
    for obj in reversed(objects):
        if isinstance(obj, Sysctl):
            if record is not None and obj.key in record.sysctls:
                if converge.restore(obj, record.sysctls[obj.key], runner):
                    changed.append(obj.key)
            elif record is None:
                notes.append(f"{obj.name} left as it is: its earlier value was not recorded")
            continue
        if obj.key not in owned or _goes_with_owner(obj, links, namespaces):
            continue
        if isinstance(obj, LinkNetns):
            continue  # the device is not ours to delete; its namespace or pair takes it
        if converge.remove(obj, runner):
            changed.append(obj.key)
    store.clear()
    return Outcome(tuple(changed), tuple(notes))
