"""Make one object true on a host, or gone, running only what is needed.

``ensure`` observes what the object needs (one or two reads), and runs its
create commands only when it is missing. ``remove`` runs the delete commands
only when it is present. Something of the same name but another shape is a
:class:`~netwrap.errors.ConflictError`, and nothing is changed.
"""

from __future__ import annotations

from netwrap.command import Command
from netwrap.engine.check import for_removal
from netwrap.engine.plan import assess
from netwrap.errors import ConflictError
from netwrap.host import parse
from netwrap.host.observe import observe
from netwrap.host.runner import Runner
from netwrap.kinds import NetObject, Sysctl


def check(obj: NetObject, runner: Runner) -> bool:
    """Whether ``obj`` is on the host; a :class:`ConflictError` if its name is taken by another shape."""
    verdict = assess(obj, observe(runner, [obj]))
    if verdict.status == "conflict":
        raise ConflictError(verdict.reason)
    return verdict.status == "present"


def _run_all(commands: tuple[Command, ...], runner: Runner) -> None:
    for command in commands:
        runner.run(command)


def ensure(obj: NetObject, runner: Runner) -> bool:
    """Create ``obj`` if it is missing. Returns whether anything was changed."""
    if check(obj, runner):
        return False
    _run_all(obj.create_commands(), runner)
    return True


def remove(obj: NetObject, runner: Runner) -> bool:
    """Delete ``obj`` if it is present. Returns whether anything was changed.

    Something else under its name (a conflict) is not netwrap's to delete and is
    left alone. A :class:`Sysctl` cannot be removed, only restored: see :func:`restore`.
    """
    if obj.restores:
        raise TypeError(f"a {type(obj).__name__} is not removed but given back: use restore(obj, previous, runner)")
    state = observe(runner, for_removal([obj]), all_namespaces=obj.found_anywhere)
    commands, _ = obj.removal(state, None)
    if not commands:
        return False
    _run_all(commands, runner)
    return True


def read_sysctl(obj: Sysctl, runner: Runner) -> str:
    """The current value of ``obj``'s setting."""
    return parse.sysctl_value(runner.run(obj.check_command()).stdout)


def restore(obj: Sysctl, previous: str, runner: Runner) -> bool:
    """Put ``obj``'s setting back to ``previous``, if it is not already."""
    if read_sysctl(obj, runner) == previous:
        return False
    _run_all(obj.restore_commands(previous), runner)
    return True
