"""Read a topology from TOML (the standard library's ``tomllib``).

::

    name = "lab"                  # names the record in /run/netwrap; default: the file's stem
    style = "docker"              # or "document": only the tutorial's own commands

    [networks.front]
    subnet = "10.10.0.0/24"
    bridge = "lab-front"          # default: TOPOLOGY-NETWORK (shortened to 15 bytes)
    gateway = "10.10.0.1"         # default: the subnet's first address
    nat = true                    # outbound MASQUERADE (false: routed, with the containers' own addresses)
    internal = false              # true: nothing passes between the bridge and the outside (Docker's --internal)
    icc = true                    # containers on this network reach each other
    mtu = 1450                    # of the containers' veths (default: the kernel's)
    bridge_tool = "ip"            # or "brctl"
    subnet6 = "fd00:10::/64"      # IPv6 beside IPv4 (docker style): each container gets an address of each
    gateway6 = "fd00:10::1"       # default: the subnet's ::1

    [containers.web]
    network_mode = "bridge"       # bridge | host | none | container:NAME
    networks = ["front", { network = "back", address = "10.20.0.5", address6 = "fd00:20::5" }]
    ports = ["8080:80/tcp", "127.0.0.1:5353:53/udp"]
    netns = "web"                 # default: the container's name
    loopback = true               # bring lo up inside
    # pid = 4242                  # a running container: attach its namespace (/proc/PID/ns/net) instead of
    # netns_path = "/run/docker/netns/1a2b"   # making one (or any namespace file); destroy gives it back

Every problem is reported at once, each naming the file, the table and the key.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import stat
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

from netwrap import validate as v
from netwrap.errors import TopologyError, ValidationError
from netwrap.kinds.namespace import namespace_file
from netwrap.topology.model import (
    Attachment,
    Container,
    Network,
    Port,
    Problem,
    Topology,
    described,
    short_name,
    show,
    toml_key,
    topology_name,
)

T = TypeVar("T")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_TOP_KEYS = {"name", "style", "networks", "containers"}
_NETWORK_KEYS = {"subnet", "bridge", "gateway", "nat", "icc", "bridge_tool", "internal", "mtu", "subnet6", "gateway6"}
_CONTAINER_KEYS = {"network_mode", "networks", "ports", "netns", "loopback", "pid", "netns_path"}
_ATTACH_KEYS = {"network", "address", "interface", "host_interface", "address6"}
_KINDS: dict[type, str] = {bool: "boolean", int: "integer", float: "float", str: "string", list: "array", dict: "table"}


class Reader:
    """Collects problems while reading, so that all of them are reported together.

    Tables and keys are given as TOML writes them (see :func:`~netwrap.topology.model.toml_key`); types are named
    as TOML names them (string, integer, float, boolean, array, table, datetime); values are shown escaped."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def fail(self, table: str, key: str, message: str) -> None:
        self.problems.append(Problem(table, key, message))

    def get(self, table: str, data: dict[str, Any], key: str, kind: type[T], default: T) -> T:
        """``data[key]`` if it is of ``kind`` (a boolean is no integer), else ``default`` (reported when given)."""
        value = data.get(key, default)
        if value is default or (isinstance(value, kind) and not (isinstance(value, bool) and kind is not bool)):
            return value
        self.fail(table, key, f"must be {_a(_KINDS.get(kind, kind.__name__))}, not {described(value)}")
        return default

    def check(self, table: str, key: str, convert: Callable[[str, Any], T], value: Any, text: bool = True) -> T | None:
        """``convert(key, value)``; None when it refuses the value (reported). ``text``: the value must be a string
        (said in TOML's words before ``convert`` sees it)."""
        if text and not isinstance(value, str):
            self.fail(table, key, f"must be a string, not {described(value)}")
            return None
        try:
            return convert(key, value)
        except ValidationError as exc:
            self.fail(table, key, f"{show(exc.value)}: {exc.reason}")
            return None

    def unknown(self, table: str, data: dict[str, Any], allowed: set[str], within: str = "") -> None:
        """Report each key of ``data`` not ``allowed``; ``within``: the key of an inline table that holds them."""
        for key in sorted(set(data) - allowed, key=str):
            name = f"{within}.{toml_key(key)}" if within else toml_key(key)
            self.fail(table, name, f"unknown key; expected one of {', '.join(sorted(allowed))}")

    def table(self, parent: str, name: str, data: Any, allowed: set[str]) -> dict[str, Any] | None:
        """``[PARENT.NAME]`` as a table, its unknown keys reported; None (reported) when it is not a table."""
        if not isinstance(data, dict):
            self.fail(parent, toml_key(name), f"must be a table, not {described(data)}")
            return None
        self.unknown(f"{parent}.{toml_key(name)}", data, allowed)
        return data


def _a(kind: str) -> str:
    return f"an {kind}" if kind[:1] in "aeiou" else f"a {kind}"


def not_a_table(data: object) -> Problem:
    """What a reader says of parsed data that is not a table (``from_dict(None)``)."""
    return Problem("file", "data", f"must be a table (a dict of TOML data), not {described(data)}")


def object_name(field: str, value: Any) -> str:
    """A network's or a container's name (in a cluster file, a host's too)."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ValidationError(
            field, value, "use 1-63 letters, digits, '_', '.' or '-', starting with a letter or digit"
        )
    return value


def container_name(r: Reader, name: str, netns: bool = True) -> bool:
    """Check a container's name (``[containers.NAME]``), and, when it names its namespace too (``netns``), as a
    namespace name; one message at most. Whether it is good."""
    if r.check("containers", toml_key(name), object_name, name) is None:
        return False
    return not netns or r.check("containers", toml_key(name), v.namespace_name, name) is not None


def default_bridge(topology: str, network: str) -> str:
    """``TOPOLOGY-NETWORK``, shortened with a hash past 15 bytes: two topologies never share a default. A '.' of
    the network's name becomes '-' (with a hash of the name, so that ``a.b`` and ``a-b`` differ): a kernel
    setting of the bridge (``net.ipv4.conf.BRIDGE.route_localnet``) cannot name a device with a '.'."""
    if "." not in network:
        return short_name("", f"{topology}-{network}")
    digest = hashlib.sha256(network.encode()).hexdigest()[:4]
    return f"{topology}-{network.replace('.', '-')}"[:11] + digest


def _bridge_name(field: str, value: Any) -> str:
    name = v.interface_name(field, value)
    if "." in name:
        raise ValidationError(field, value, "contains '.': the bridge's kernel settings could not name it")
    return name


def _network(r: Reader, name: str, data: Any, topology: str | None) -> Network | None:
    """``[networks.NAME]``; ``topology``: the topology's name, None when it is refused (and the default bridge,
    made of it, would only echo that)."""
    table = toml_key("networks", name)
    if r.table("networks", name, data, _NETWORK_KEYS) is None:
        return None
    named = r.check("networks", toml_key(name), object_name, name) is not None
    if "subnet" not in data and "subnet6" not in data:
        r.fail(table, "subnet", 'is required (or subnet6 alone: IPv6 only), like subnet = "10.10.0.0/24"')
        return None
    subnet = r.check(table, "subnet", v.ipv4_network, data["subnet"]) if "subnet" in data else None
    if "bridge" in data:
        bridge = r.check(table, "bridge", _bridge_name, data["bridge"])
    elif topology is not None and named:
        bridge = r.check(table, "bridge", _bridge_name, default_bridge(topology, name))
    else:
        bridge = None  # no default: its name is made of names already refused
    gateway = None
    if subnet is not None:
        default = subnet[1] if subnet.num_addresses > 1 else subnet.network_address
        gateway = r.check(table, "gateway", v.ipv4_address, data.get("gateway", str(default)))
    elif "gateway" in data and "subnet" not in data:
        r.fail(table, "gateway", "needs a subnet to belong to (an IPv6-only network takes gateway6)")
    nat = r.get(table, data, "nat", bool, True)
    icc = r.get(table, data, "icc", bool, True)
    internal = r.get(table, data, "internal", bool, False)
    mtu = r.check(table, "mtu", v.mtu, data["mtu"], text=False) if "mtu" in data else None
    if internal and data.get("nat") is True:
        r.fail(table, "nat", "an internal network sends nothing outside, so it has no outbound NAT; leave nat out")
    tool = r.get(table, data, "bridge_tool", str, "ip")
    if tool not in ("ip", "brctl"):
        r.fail(table, "bridge_tool", f"{show(tool)}: use ip or brctl")
        tool = "ip"
    subnet6 = r.check(table, "subnet6", ipv6_network, data["subnet6"]) if "subnet6" in data else None
    gateway6 = None
    if "gateway6" in data:
        gateway6 = r.check(table, "gateway6", ipv6_address, data["gateway6"])
    elif subnet6 is not None and subnet6.num_addresses > 1:
        gateway6 = subnet6[1]
    if ("subnet" in data and (subnet is None or gateway is None)) or bridge is None:
        return None
    if ("subnet6" in data and subnet6 is None) or (subnet is None and subnet6 is None):
        return None
    tool_name: Literal["brctl", "ip"] = "brctl" if tool == "brctl" else "ip"
    return Network(
        name, subnet, bridge, gateway, nat and not internal, icc, tool_name, internal, mtu, subnet6, gateway6
    )


def ipv6_network(field: str, value: Any) -> ipaddress.IPv6Network:
    """An IPv6 subnet, like ``fd00:10::/64``."""
    network = v.ip_network(field, value)
    if not isinstance(network, ipaddress.IPv6Network):
        raise ValidationError(field, value, "must be an IPv6 network, like fd00:10::/64")
    return network


def ipv6_address(field: str, value: Any) -> ipaddress.IPv6Address:
    """An IPv6 address, like ``fd00:10::5``."""
    address = v.ip_address(field, value)
    if not isinstance(address, ipaddress.IPv6Address):
        raise ValidationError(field, value, "must be an IPv6 address, like fd00:10::5")
    return address


def _attachment(r: Reader, table: str, key: str, item: Any) -> Attachment | None:
    if isinstance(item, str):
        return Attachment(item)
    if not isinstance(item, dict):
        r.fail(
            table, key, f'must be a network name or a table like {{ network = "front", address = "..." }}, not '
            f"{described(item)}",
        )  # fmt: skip
        return None
    r.unknown(table, item, _ATTACH_KEYS, within=key)
    network = item.get("network")
    if network is None:
        r.fail(table, f"{key}.network", "is required: the name of a network")
        return None
    if not isinstance(network, str):
        r.fail(table, f"{key}.network", f"must be a string, the name of a network, not {described(network)}")
        return None
    address = r.check(table, f"{key}.address", v.ipv4_address, item["address"]) if "address" in item else None
    interface = r.check(table, f"{key}.interface", v.interface_name, item["interface"]) if "interface" in item else None
    host_if = (
        r.check(table, f"{key}.host_interface", v.interface_name, item["host_interface"])
        if "host_interface" in item
        else None
    )
    address6 = r.check(table, f"{key}.address6", ipv6_address, item["address6"]) if "address6" in item else None
    return Attachment(network, address, interface, host_if, address6)


def _container(r: Reader, name: str, data: Any) -> Container | None:
    table = toml_key("containers", name)
    if r.table("containers", name, data, _CONTAINER_KEYS) is None:
        return None
    container_name(r, name, netns="netns" not in data)
    mode = r.get(table, data, "network_mode", str, "bridge")
    netns = r.check(table, "netns", v.namespace_name, data["netns"]) if "netns" in data else None
    source = _source(r, table, data)
    loopback = r.get(table, data, "loopback", bool, source is None)
    if source is not None and loopback:
        r.fail(table, "loopback", "a running container's lo is its own: netwrap neither brings it up nor down")
    attachments = []
    for index, item in enumerate(r.get(table, data, "networks", list, [])):
        attachment = _attachment(r, table, f"networks[{index}]", item)
        if attachment is not None:
            attachments.append(attachment)
    ports = []
    for index, item in enumerate(r.get(table, data, "ports", list, [])):
        port = r.check(table, f"ports[{index}]", Port.parse, item, text=False)
        if port is not None:
            ports.append(port)
    return Container(name, mode, tuple(attachments), tuple(ports), netns, loopback, source)


def _source(r: Reader, table: str, data: dict[str, Any]) -> str | None:
    """A running container's namespace file: ``pid`` (its ``/proc/PID/ns/net``) or ``netns_path``."""
    if "pid" in data and "netns_path" in data:
        r.fail(table, "netns_path", "give pid or netns_path, not both")
        return None
    if "pid" in data:
        pid = r.get(table, data, "pid", int, None)
        if pid is None:
            return None
        if not 1 <= pid < 2**22:
            r.fail(table, "pid", f"{show(pid)} is not a process id (1 to 4194303)")
            return None
        return f"/proc/{pid}/ns/net"
    if "netns_path" in data:
        return r.check(table, "netns_path", namespace_file, data["netns_path"])
    return None


def from_dict(data: dict[str, Any], source: str, default_name: str = "netwrap") -> Topology:
    """A checked topology from parsed TOML; every problem at once in a :class:`TopologyError` (data that is not
    a table, too)."""
    if not isinstance(data, dict):
        raise TopologyError(source, [not_a_table(data)])
    r = Reader()
    r.unknown("topology", data, _TOP_KEYS)
    name = r.get("topology", data, "name", str, default_name)
    style = r.get("topology", data, "style", str, "docker")
    if style not in ("docker", "document"):
        r.fail("topology", "style", f"{show(style)}: use docker or document")
        style = "docker"
    named = r.check("topology", "name", topology_name, name) is not None
    if named and name.startswith("cni-"):
        r.fail("topology", "name", f"{show(name)}: names starting with cni- are the CNI plugin's networks' records")
        named = False
    networks, broken = [], set()
    for key, item in r.get("topology", data, "networks", dict, {}).items():
        network = _network(r, key, item, name if named else None)
        if network is None:
            broken.add(key)
        else:
            networks.append(network)
    containers = []
    for key, item in r.get("topology", data, "containers", dict, {}).items():
        container = _container(r, key, item)
        if container is not None:
            containers.append(container)
    topo = Topology(name, tuple(networks), tuple(containers), "document" if style == "document" else "docker")
    # Problems of the whole, less those that only echo what is already reported: a network reported as broken,
    # the topology's name.
    echoes = {f"network {b!r} is not declared" for b in broken}
    problems = r.problems + [
        p for p in topo.problems() if p.message not in echoes and (p.table, p.key) != ("topology", "name")
    ]
    if problems:
        raise TopologyError(source, problems)
    return topo


def parse_toml(text: str, source: str) -> dict[str, Any]:
    """TOML text as data; a syntax error (or text that is no ``str``) is a :class:`TopologyError` naming
    ``source``."""
    if not isinstance(text, str):
        raise TopologyError(source, [Problem("file", "text", f"must be a str of TOML text, not {type(text).__name__}")])
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TopologyError(source, [Problem("file", "syntax", str(exc))]) from None
    except RecursionError:
        raise TopologyError(source, [Problem("file", "syntax", "arrays or tables nested too deeply")]) from None
    except ValueError as exc:  # an integer thousands of digits long
        found = "an integer has more digits than can be read" if "digits" in str(exc) else show(str(exc))
        raise TopologyError(source, [Problem("file", "syntax", found)]) from None


def trusted(file: Path) -> Problem | None:
    """A file netwrap would act on as root is code, as OpenSSH treats its configuration: it, and its directory,
    must belong to the user running netwrap or to root, and nobody else may write them (a directory with the
    sticky bit, such as /tmp, is fine: others cannot replace a file in it). The problem, or None."""
    me = os.geteuid()
    for what, path in (("file", file), ("directory", file.resolve().parent)):
        info = path.stat()
        if info.st_uid not in (me, 0):
            return Problem("file", "owner", f"the {what} {path} belongs to uid {info.st_uid}: refused (see the README)")
        writable = info.st_mode & 0o022 and not (what == "directory" and info.st_mode & stat.S_ISVTX)
        if writable:
            mode = stat.S_IMODE(info.st_mode)
            return Problem("file", "mode", f"others may write the {what} {path} (mode {mode:04o}): refused")
    return None


def names_hosts(data: dict[str, Any]) -> bool:
    """Whether a file's data is a cluster file's (a ``[hosts]`` table), not a topology file's."""
    return "hosts" in data


def read_toml(path: Path | str) -> dict[str, Any]:
    """A TOML file as data; a file that cannot be read or parsed, or that someone else could have written
    (see :func:`trusted`), is a :class:`TopologyError` naming it."""
    if not isinstance(path, str | os.PathLike):
        raise TopologyError(repr(path), [Problem("file", "read", f"{type(path).__name__} is not a path")])
    file = Path(path)
    try:
        problem = trusted(file)
        data = file.read_bytes()
    except OSError as exc:
        raise TopologyError(str(file), [Problem("file", "read", exc.strerror or str(exc))]) from None
    except ValueError as exc:  # a path with a NUL byte
        raise TopologyError(repr(str(file)), [Problem("file", "read", str(exc))]) from None
    if problem is not None:
        raise TopologyError(str(file), [problem])
    return parse_toml(decode(data, str(file)), str(file))


def decode(data: bytes, source: str) -> str:
    """A file's bytes as text (TOML is UTF-8); anything else is a :class:`TopologyError` naming ``source``, the
    line and the column."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line, column = before.count(b"\n") + 1, exc.start - (before.rfind(b"\n") + 1) + 1
        message = f"is not UTF-8 text: byte 0x{data[exc.start]:02x} at line {line}, column {column}"
        raise TopologyError(source, [Problem("file", "encoding", message)]) from None


def loads(text: str, source: str = "<string>", default_name: str = "netwrap") -> Topology:
    """Parse TOML text into a checked topology."""
    return from_dict(parse_toml(text, source), source, default_name)


def load(path: Path | str) -> Topology:
    """Read a topology file; errors name the file, the table and the key."""
    return from_dict(read_toml(path), str(path), default_name=Path(path).stem)
