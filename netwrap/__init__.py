"""netwrap: Linux container networks the way Docker builds them, with the real tools.

Typed objects say the commands that create, check and delete them; a runner
is the one place a process starts; ``ensure``/``remove`` change a host only
where it differs from what is wanted.
"""

from netwrap.build import Outcome, build, plan_for, teardown
from netwrap.command import Command
from netwrap.converge import check, ensure, remove, restore
from netwrap.errors import (
    CommandError,
    CommandTimeoutError,
    ConflictError,
    NetwrapError,
    ParseError,
    PermissionDeniedError,
    SandboxError,
    ToolNotFoundError,
    TransientCommandError,
    ValidationError,
)
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
from netwrap.observe import HostState, observe
from netwrap.plan import Plan, assess, plan
from netwrap.runner import EchoRunner, RecordingRunner, Result, Runner, SubprocessRunner
from netwrap.sandbox import Sandbox
from netwrap.state import MemoryStore, StateFile

__all__ = [
    "Address",
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
    "ParseError",
    "PermissionDeniedError",
    "Plan",
    "RecordingRunner",
    "Result",
    "Route",
    "Runner",
    "Sandbox",
    "SandboxError",
    "StateFile",
    "SubprocessRunner",
    "Sysctl",
    "ToolNotFoundError",
    "TransientCommandError",
    "ValidationError",
    "VethPair",
    "assess",
    "build",
    "check",
    "ensure",
    "observe",
    "plan",
    "plan_for",
    "remove",
    "restore",
    "teardown",
]
