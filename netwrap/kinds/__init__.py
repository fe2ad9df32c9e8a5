"""The kinds of object netwrap makes, each in its own module, and the registry of them.

Every object is a frozen, validated value whose kind says its commands, what
it reads, how it judges itself against a host, where it lives, what it claims
and how it goes away (see :mod:`netwrap.kinds.base`). The engine loops over
objects without naming a kind; adding one is a module and a line in
:data:`KINDS`, which is also how a record names the kinds it may hold.
"""

from netwrap.kinds.address import Address
from netwrap.kinds.base import (
    Assessment,
    BridgeTool,
    Claim,
    Gone,
    Kind,
    NetObject,
    Status,
)
from netwrap.kinds.bridge import Bridge, BridgePort
from netwrap.kinds.chains import Chain, OwnedChain
from netwrap.kinds.link import LinkNetns, LinkUp
from netwrap.kinds.namespace import AttachedNamespace, Namespace
from netwrap.kinds.route import Route
from netwrap.kinds.rules import (
    ADDRESS_TYPES,
    BUILTIN_CHAINS,
    CONNTRACK_STATES,
    ISOLATION_SUFFIX,
    OWN_PREFIX,
    TABLE_CHAINS,
    TARGETS,
    NatRule,
    Rule,
)
from netwrap.kinds.sysctl import Sysctl
from netwrap.kinds.veth import VethPair
from netwrap.kinds.vxlan import FdbEntry, Vxlan
from netwrap.validate import IPAddress, IPInterface, IPNetwork

KINDS: tuple[type[Kind], ...] = (
    Namespace,
    AttachedNamespace,
    VethPair,
    LinkNetns,
    Bridge,
    BridgePort,
    Address,
    LinkUp,
    Route,
    Sysctl,
    Rule,
    NatRule,
    Chain,
    OwnedChain,
    Vxlan,
    FdbEntry,
)

__all__ = [
    "ADDRESS_TYPES",
    "BUILTIN_CHAINS",
    "CONNTRACK_STATES",
    "ISOLATION_SUFFIX",
    "KINDS",
    "OWN_PREFIX",
    "TABLE_CHAINS",
    "TARGETS",
    "Address",
    "Assessment",
    "AttachedNamespace",
    "Bridge",
    "BridgePort",
    "BridgeTool",
    "Chain",
    "Claim",
    "FdbEntry",
    "Gone",
    "IPAddress",
    "IPInterface",
    "IPNetwork",
    "Kind",
    "LinkNetns",
    "LinkUp",
    "Namespace",
    "NatRule",
    "NetObject",
    "OwnedChain",
    "Route",
    "Rule",
    "Status",
    "Sysctl",
    "VethPair",
    "Vxlan",
]
