"""Build an ordered list of objects on a host, and take it down again.

``build`` observes the host once, plans, and stops with every conflict before
changing anything. Then it creates what is missing, in order, recording each
object in the :class:`~netwrap.state.Store` *before* creating it (and each
sysctl's earlier value before changing it). ``teardown`` reads that record and
walks it backwards: it removes only what the record says netwrap created,
skips what goes away with its owner (an address on a deleted veth, anything
inside a deleted namespace), restores each sysctl, and takes "already gone"
for success.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from netwrap import converge
from netwrap.errors import CommandError, ConflictError
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
from netwrap.observe import observe
from netwrap.plan import Plan, assess, plan
from netwrap.runner import Runner
from netwrap.state import Record, Store, Writer

# What the tools say when the thing to delete is already gone.
_GONE = (
    "Cannot find device",
    "does not exist",
    "No such device",
    "No such process",
    "No such file or directory",
    "Cannot assign requested address",
    "does a matching rule exist",
    "Cannot open network namespace",
)


@attrs.frozen
class Outcome:
    """What a build or teardown did: the keys it changed and anything worth telling."""

    changed: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def plan_for(objects: Sequence[NetObject], runner: Runner) -> Plan:
    """Observe the host (in bulk) and plan ``objects`` against it; runs only reads."""
    return plan(objects, observe(runner, objects))


def _conflict_error(conflicts: Sequence[str]) -> ConflictError:
    lines = "\n".join(f"  - {c}" for c in conflicts)
    return ConflictError(f"nothing was changed; the host has conflicting objects:\n{lines}")


def build(
    objects: Sequence[NetObject], runner: Runner, store: Store, *, action: str = "up", finish: bool = True
) -> Outcome:
    """Create what is missing of ``objects``, in order; conflicts stop it before any change.

    ``finish`` marks the record complete at the end (a network meant to stay);
    without it the record stays "in progress" until :func:`teardown`, so that
    ``netwrap clean`` removes it if this process dies first.
    """
    state = observe(runner, objects)
    current = plan(objects, state)
    if current.conflicts:
        raise _conflict_error([item.assessment.reason for item in current.conflicts])
    record = store.load()
    if not current.changes and (record is None or record.complete == finish):
        return Outcome()
    record = record or Record()
    record.complete, record.writer, record.action = False, Writer.current(), action
    store.save(record)
    changed: list[str] = []
    for item in current.changes:
        obj = item.obj
        if isinstance(obj, Sysctl):
            seen = state.sysctls.get((obj.netns, obj.name))
            record.add_sysctl(obj, seen if seen is not None else converge.read_sysctl(obj, runner))
        else:
            record.add(obj)
        store.save(record)
        for command in item.commands:
            runner.run(command)
        changed.append(obj.key)
    if finish:
        record.complete = True
        store.save(record)
    return Outcome(tuple(changed))


def _goes_with_owner(obj: NetObject, links: set[str], namespaces: set[str]) -> bool:
    netns = getattr(obj, "netns", None)
    if netns is not None and netns in namespaces:
        return True
    match obj:
        case Address() | LinkUp():
            return obj.device in links
        case LinkNetns():
            return obj.device in links or obj.netns in namespaces
        case Route():
            return obj.device is not None and obj.device in links
        case BridgePort():
            return obj.port in links or obj.bridge in links
    return False


def _already_gone(exc: CommandError) -> bool:
    return any(marker in exc.stderr for marker in _GONE)


def teardown(runner: Runner, store: Store) -> Outcome:
    """Undo, in reverse order, what the record in ``store`` says was created; then drop the record.

    With no record nothing is removed: netwrap never deletes what it cannot
    show it made.
    """
    record = store.load()
    if record is None:
        return Outcome((), (f"no record of what netwrap created in {store.describe()}; nothing removed",))
    record.complete, record.writer, record.action = False, Writer.current(), "down"
    store.save(record)
    links: set[str] = set()
    namespaces: set[str] = set()
    for obj in record.created:
        match obj:
            case VethPair():
                links |= {obj.name, obj.peer}
            case Bridge():
                links.add(obj.name)
            case Namespace():
                namespaces.add(obj.name)
    state = observe(runner, record.created, all_namespaces=True)
    changed: list[str] = []
    notes: list[str] = []
    for obj in reversed(record.created):
        if _goes_with_owner(obj, links, namespaces) or isinstance(obj, LinkNetns):
            continue
        if isinstance(obj, Sysctl):
            previous = record.previous.get(obj.key)
            if previous is not None and state.sysctls.get((obj.netns, obj.name)) != previous:
                for command in obj.restore_commands(previous):
                    runner.run(command)
                changed.append(obj.key)
            continue
        verdict = assess(obj, state)
        if verdict.status == "conflict":
            notes.append(f"{obj.key} left alone: {verdict.reason}")
        if verdict.status != "present":
            continue
        try:
            for command in converge.delete_commands(obj, state):
                runner.run(command)
        except CommandError as exc:
            if not _already_gone(exc):
                raise
        changed.append(obj.key)
    store.clear()
    return Outcome(tuple(changed), tuple(notes))
