"""Compare what is wanted with what a host has: pure, no process is started.

:func:`assess` judges one object against a :class:`~netwrap.host.observe.HostState`:
present, missing, or in conflict (the name is taken by something of another
shape). :func:`plan` does it for an ordered list and yields, per object, the
commands still needed or the reason nothing is.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Sequence

import attrs

from netwrap.command import Command
from netwrap.host.observe import HostState
from netwrap.kinds import Assessment, NetObject, Status


def assess(obj: NetObject, state: HostState) -> Assessment:
    """Whether ``obj`` is on the host as observed, and why (its kind judges: see :mod:`netwrap.kinds`)."""
    return obj.assess(state)


_TRUSTED = Assessment("present", "not read: made by the last apply, and its namespace's host side is as then")


@attrs.frozen
class PlanItem:
    """One object: what it is, where it stands, and the commands still needed (none when present)."""

    obj: NetObject
    assessment: Assessment
    commands: tuple[Command, ...] = ()

    @property
    def status(self) -> Status:
        return self.assessment.status


@attrs.frozen
class Plan:
    """Per object, in order: a change to make, "no change" with its reason, or a conflict."""

    items: tuple[PlanItem, ...]

    @functools.cached_property
    def conflicts(self) -> tuple[PlanItem, ...]:
        return tuple(i for i in self.items if i.status == "conflict")

    @functools.cached_property
    def changes(self) -> tuple[PlanItem, ...]:
        # worked out once: a build asks for them several times, of a plan of a thousand objects
        return tuple(i for i in self.items if i.status == "missing")

    @property
    def commands(self) -> tuple[Command, ...]:
        return tuple(c for i in self.changes for c in i.commands)

    @property
    def is_noop(self) -> bool:
        return not self.changes and not self.conflicts

    def describe(self) -> list[str]:
        """One line per object: ``+ create``, ``= no change``, ``! conflict``, with the reason."""
        marks = {"missing": "create", "present": "ok", "conflict": "CONFLICT"}
        return [f"{marks[i.status]:<8} {i.obj.key}: {i.assessment.reason}" for i in self.items]


def plan(wanted: Sequence[NetObject], state: HostState, trusted: Collection[str] = frozenset()) -> Plan:
    """The commands still needed to make ``wanted`` true on a host observed as ``state``.

    An object whose key is in ``trusted`` is taken as present without a look
    (see :mod:`netwrap.engine.check`: the insides of a namespace whose host side is as
    the last apply left it).
    """
    items = []
    for obj in wanted:
        verdict = _TRUSTED if obj.key in trusted else assess(obj, state)
        commands = obj.plan_commands(state) if verdict.status == "missing" else ()
        items.append(PlanItem(obj, verdict, commands))
    return Plan(tuple(items))
