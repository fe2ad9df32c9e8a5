"""netwrap: Linux container networks the way Docker builds them, with the real tools.

Typed objects say the commands that create, check and delete them; a runner
is the one place a process starts; ``ensure``/``remove`` change a host only
where it differs from what is wanted.

Importing ``netwrap`` loads nothing else: each name of :data:`__all__` is
imported from its module when it is first used, so that the command line and
the CNI plugin (whose start-up time counts) load only what a command needs.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # not typing's: importing typing alone costs more than the rest of this module
if TYPE_CHECKING:
    from typing import Any

    from netwrap.command import Command
    from netwrap.engine.build import Outcome, build, plan_for, teardown
    from netwrap.engine.converge import check, ensure, remove, restore
    from netwrap.engine.plan import Plan, assess, plan
    from netwrap.engine.state import MemoryStore, StateFile
    from netwrap.errors import (
        CommandError,
        CommandTimeoutError,
        ConflictError,
        NetwrapError,
        ParseError,
        PermissionDeniedError,
        SandboxError,
        StepError,
        ToolNotFoundError,
        TopologyError,
        TransientCommandError,
        ValidationError,
    )
    from netwrap.host.observe import HostState, observe
    from netwrap.host.runner import EchoRunner, RecordingRunner, Result, Runner, SubprocessRunner
    from netwrap.host.sandbox import Sandbox
    from netwrap.kinds import (
        Address,
        AttachedNamespace,
        Bridge,
        BridgePort,
        LinkNetns,
        LinkUp,
        Namespace,
        NatRule,
        NetObject,
        OwnedChain,
        Route,
        Rule,
        Sysctl,
        VethPair,
    )
    from netwrap.topology import apply as topology_apply
    from netwrap.topology.files import from_dict as topology_from_dict
    from netwrap.topology.files import load as load_topology
    from netwrap.topology.model import Topology

_WHERE: dict[str, tuple[str, str]] = {
    "Address": ("netwrap.kinds", "Address"),
    "AttachedNamespace": ("netwrap.kinds", "AttachedNamespace"),
    "Bridge": ("netwrap.kinds", "Bridge"),
    "BridgePort": ("netwrap.kinds", "BridgePort"),
    "Command": ("netwrap.command", "Command"),
    "CommandError": ("netwrap.errors", "CommandError"),
    "CommandTimeoutError": ("netwrap.errors", "CommandTimeoutError"),
    "ConflictError": ("netwrap.errors", "ConflictError"),
    "EchoRunner": ("netwrap.host.runner", "EchoRunner"),
    "HostState": ("netwrap.host.observe", "HostState"),
    "LinkNetns": ("netwrap.kinds", "LinkNetns"),
    "LinkUp": ("netwrap.kinds", "LinkUp"),
    "MemoryStore": ("netwrap.engine.state", "MemoryStore"),
    "Namespace": ("netwrap.kinds", "Namespace"),
    "NatRule": ("netwrap.kinds", "NatRule"),
    "NetObject": ("netwrap.kinds", "NetObject"),
    "NetwrapError": ("netwrap.errors", "NetwrapError"),
    "Outcome": ("netwrap.engine.build", "Outcome"),
    "OwnedChain": ("netwrap.kinds", "OwnedChain"),
    "ParseError": ("netwrap.errors", "ParseError"),
    "PermissionDeniedError": ("netwrap.errors", "PermissionDeniedError"),
    "Plan": ("netwrap.engine.plan", "Plan"),
    "RecordingRunner": ("netwrap.host.runner", "RecordingRunner"),
    "Result": ("netwrap.host.runner", "Result"),
    "Route": ("netwrap.kinds", "Route"),
    "Rule": ("netwrap.kinds", "Rule"),
    "Runner": ("netwrap.host.runner", "Runner"),
    "Sandbox": ("netwrap.host.sandbox", "Sandbox"),
    "SandboxError": ("netwrap.errors", "SandboxError"),
    "StateFile": ("netwrap.engine.state", "StateFile"),
    "StepError": ("netwrap.errors", "StepError"),
    "SubprocessRunner": ("netwrap.host.runner", "SubprocessRunner"),
    "Sysctl": ("netwrap.kinds", "Sysctl"),
    "ToolNotFoundError": ("netwrap.errors", "ToolNotFoundError"),
    "Topology": ("netwrap.topology.model", "Topology"),
    "TopologyError": ("netwrap.errors", "TopologyError"),
    "TransientCommandError": ("netwrap.errors", "TransientCommandError"),
    "ValidationError": ("netwrap.errors", "ValidationError"),
    "VethPair": ("netwrap.kinds", "VethPair"),
    "assess": ("netwrap.engine.plan", "assess"),
    "build": ("netwrap.engine.build", "build"),
    "check": ("netwrap.engine.converge", "check"),
    "ensure": ("netwrap.engine.converge", "ensure"),
    "load_topology": ("netwrap.topology.files", "load"),
    "observe": ("netwrap.host.observe", "observe"),
    "plan": ("netwrap.engine.plan", "plan"),
    "plan_for": ("netwrap.engine.build", "plan_for"),
    "remove": ("netwrap.engine.converge", "remove"),
    "restore": ("netwrap.engine.converge", "restore"),
    "teardown": ("netwrap.engine.build", "teardown"),
    "topology_apply": ("netwrap.topology", "apply"),
    "topology_from_dict": ("netwrap.topology.files", "from_dict"),
}

__all__ = [
    "Address",
    "AttachedNamespace",
    "Bridge",
    "BridgePort",
    "Command",
    "CommandError",
    "CommandTimeoutError",
    "ConflictError",
    "EchoRunner",
    "HostState",
    "LinkNetns",
    "LinkUp",
    "MemoryStore",
    "Namespace",
    "NatRule",
    "NetObject",
    "NetwrapError",
    "Outcome",
    "OwnedChain",
    "ParseError",
    "PermissionDeniedError",
    "Plan",
    "RecordingRunner",
    "Result",
    "Route",
    "Rule",
    "Runner",
    "Sandbox",
    "SandboxError",
    "StateFile",
    "StepError",
    "SubprocessRunner",
    "Sysctl",
    "ToolNotFoundError",
    "Topology",
    "TopologyError",
    "TransientCommandError",
    "ValidationError",
    "VethPair",
    "assess",
    "build",
    "check",
    "ensure",
    "load_topology",
    "observe",
    "plan",
    "plan_for",
    "remove",
    "restore",
    "teardown",
    "topology_apply",
    "topology_from_dict",
]


def __getattr__(name: str) -> Any:
    """The public name ``name``, imported from its module on first use (and kept)."""
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'netwrap' has no attribute {name!r}")
    module, attr = where
    found = importlib.import_module(module)
    value = getattr(found, attr) if hasattr(found, attr) else importlib.import_module(f"{module}.{attr}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
