"""netwrap: Linux container networks the way Docker builds them, with the real tools.

Typed objects say the commands that create, check and delete them; a runner
is the one place a process starts; ``ensure``/``remove`` change a host only
where it differs from what is wanted.
"""

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
