"""Make one object true on a host, or gone, running only what is needed.

``ensure`` runs the object's read command, parses what the host has, and runs
the create commands only when the object is missing. ``remove`` runs the delete
commands only when it is present. Something of the same name but another shape
is a :class:`~netwrap.errors.ConflictError`, and nothing is changed.
"""

from __future__ import annotations

from netwrap import parse
from netwrap.command import Command
from netwrap.errors import CommandError, ConflictError
from netwrap.objects import (
    Address,
    Bridge,
    BridgePort,
    LinkNetns,
    LinkUp,
    Namespace,
    NatRule,
    NetObject,
    Route,
    Sysctl,
    VethPair,
)
from netwrap.runner import Result, Runner

_NO_NETNS = "Cannot open network namespace"


def _find(links: list[parse.Link], name: str) -> parse.Link | None:
    return next((link for link in links if link.name == name), None)


def _where(netns: str | None) -> str:
    return f" in namespace {netns}" if netns else " on the host"


def _veth_ends(obj: VethPair, found: list[parse.Link]) -> list[parse.Link]:
    ends = [link for link in found if link.name in (obj.name, obj.peer)]
    for end in ends:
        if end.kind != "veth":
            raise ConflictError(
                f"{end.name} exists{_where(obj.netns)} but is a {end.kind or 'device of another kind'}, not a veth"
            )
        other = obj.peer if end.name == obj.name else obj.name
        if end.peer is not None and end.peer != other:
            raise ConflictError(f"{end.name} exists{_where(obj.netns)} but its peer is {end.peer}, not {other}")
    return ends


def is_present(obj: NetObject, result: Result) -> bool:
    """Whether ``obj`` is on the host, judged from the output of its check command."""
    out = result.stdout
    match obj:
        case Namespace():
            return obj.name in parse.netns_names(out)
        case VethPair():
            return bool(_veth_ends(obj, parse.links(out)))
        case LinkNetns():
            return _find(parse.links(out), obj.device) is not None
        case Bridge():
            link = _find(parse.links(out), obj.name)
            if link is not None and link.kind != "bridge":
                kind = link.kind or "device of another kind"
                raise ConflictError(f"{obj.name} exists{_where(obj.netns)} but is a {kind}, not a bridge")
            return link is not None
        case BridgePort():
            link = _find(parse.links(out), obj.port)
            if link is not None and link.master not in (None, obj.bridge):
                raise ConflictError(f"{obj.port} is already a port of {link.master}, not of {obj.bridge}")
            return link is not None and link.master == obj.bridge
        case LinkUp():
            link = _find(parse.links(out), obj.device)
            return link is not None and link.up
        case Address():
            owners = [dev for dev, addr in parse.addresses(out) if addr.ip == obj.address.ip]
            if any(dev != obj.device for dev in owners):
                other = next(dev for dev in owners if dev != obj.device)
                raise ConflictError(f"{obj.address.ip} is already on {other}{_where(obj.netns)}, not on {obj.device}")
            return (obj.device, obj.address) in parse.addresses(out)
        case Route():
            return any(
                str(entry.destination) == str(obj.destination)
                and (obj.gateway is None or entry.gateway == obj.gateway)
                and (obj.device is None or entry.device == obj.device)
                for entry in parse.routes(out)
            )
        case Sysctl():
            return parse.sysctl_value(out) == obj.value
        case NatRule():
            return result.returncode == 0
    raise TypeError(f"netwrap does not know how to check {type(obj).__name__}")


def check(obj: NetObject, runner: Runner) -> bool:
    """Run ``obj``'s check; a namespace that does not exist holds nothing."""
    netns = getattr(obj, "netns", None)
    try:
        result = runner.run(obj.check_command())
    except CommandError as exc:
        if netns is not None and _NO_NETNS in exc.stderr:
            return False
        raise
    return is_present(obj, result)


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

    A veth pair is deleted through whichever end is still where it was made.
    A :class:`Sysctl` cannot be removed, only restored: see :func:`restore`.
    """
    if isinstance(obj, Sysctl):
        raise TypeError("a Sysctl is not removed but restored: use restore(sysctl, previous, runner)")
    if isinstance(obj, VethPair):
        try:
            ends = _veth_ends(obj, parse.links(runner.run(obj.check_command()).stdout))
        except CommandError as exc:
            if obj.netns is not None and _NO_NETNS in exc.stderr:
                return False
            raise
        if not ends:
            return False
        names = {end.name for end in ends}
        target = obj.peer if obj.peer in names else obj.name
        _run_all(obj.delete_commands(target), runner)
        return True
    if not check(obj, runner):
        return False
    _run_all(obj.delete_commands(), runner)
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
