"""Read a topology from TOML (the standard library's ``tomllib``).

::

    name = "lab"                  # names the record in /run/netwrap; default: the file's stem
    style = "docker"              # or "document": only the tutorial's own commands

    [networks.front]
    subnet = "10.10.0.0/24"
    bridge = "lab-front"          # default: TOPOLOGY-NETWORK (shortened to 15 bytes)
    gateway = "10.10.0.1"         # default: the subnet's first address
    nat = true                    # outbound MASQUERADE
    icc = true                    # containers on this network reach each other
    bridge_tool = "ip"            # or "brctl"

    [containers.web]
    network_mode = "bridge"       # bridge | host | none | container:NAME
    networks = ["front", { network = "back", address = "10.20.0.5" }]
    ports = ["8080:80/tcp", "127.0.0.1:5353:53/udp"]
    netns = "web"                 # default: the container's name
    loopback = true               # bring lo up inside

Every problem is reported at once, each naming the file, the table and the key.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from netwrap import validate as v
from netwrap.errors import TopologyError, ValidationError
from netwrap.topology.model import Attachment, Container, Network, Port, Problem, Topology, short_name

T = TypeVar("T")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_TOP_KEYS = {"name", "style", "networks", "containers"}
_NETWORK_KEYS = {"subnet", "bridge", "gateway", "nat", "icc", "bridge_tool"}
_CONTAINER_KEYS = {"network_mode", "networks", "ports", "netns", "loopback"}
_ATTACH_KEYS = {"network", "address", "interface", "host_interface"}


class Reader:
    """Collects problems while reading, so that all of them are reported together."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def fail(self, table: str, key: str, message: str) -> None:
        self.problems.append(Problem(table, key, message))

    def get(self, table: str, data: dict[str, Any], key: str, kind: type[T], default: T) -> T:
        value = data.get(key, default)
        if isinstance(value, bool) and kind is not bool:
            self.fail(table, key, f"must be a {kind.__name__}, not {value!r}")
            return default
        if not isinstance(value, kind):
            self.fail(table, key, f"must be a {kind.__name__}, not {type(value).__name__} {value!r}")
            return default
        return value

    def check(self, table: str, key: str, convert: Callable[[str, Any], T], value: Any) -> T | None:
        try:
            return convert(key, value)
        except ValidationError as exc:
            self.fail(table, key, f"{exc.value!r}: {exc.reason}")
            return None

    def unknown(self, table: str, data: dict[str, Any], allowed: set[str]) -> None:
        for key in sorted(set(data) - allowed):
            self.fail(table, key, f"unknown key; expected one of {', '.join(sorted(allowed))}")

    def table(self, parent: str, name: str, data: Any, allowed: set[str]) -> dict[str, Any] | None:
        """``[PARENT.NAME]`` as a table, its unknown keys reported; None (reported) when it is not a table."""
        if not isinstance(data, dict):
            self.fail(parent, name, "must be a table")
            return None
        self.unknown(f"{parent}.{name}", data, allowed)
        return data


def _name(field: str, value: Any) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise ValidationError(
            field, value, "use 1-63 letters, digits, '_', '.' or '-', starting with a letter or digit"
        )
    return value


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


def _network(r: Reader, name: str, data: Any, topology: str) -> Network | None:
    table = f"networks.{name}"
    if r.table("networks", name, data, _NETWORK_KEYS) is None:
        return None
    r.check("networks", name, _name, name)
    if "subnet" not in data:
        r.fail(table, "subnet", 'is required, like subnet = "10.10.0.0/24"')
        return None
    subnet = r.check(table, "subnet", v.ipv4_network, data["subnet"])
    bridge = r.check(table, "bridge", _bridge_name, data.get("bridge", default_bridge(topology, name)))
    gateway = None
    if subnet is not None:
        gateway = r.check(table, "gateway", v.ipv4_address, data.get("gateway", str(subnet.network_address + 1)))
    nat = r.get(table, data, "nat", bool, True)
    icc = r.get(table, data, "icc", bool, True)
    tool = r.get(table, data, "bridge_tool", str, "ip")
    if tool not in ("ip", "brctl"):
        r.fail(table, "bridge_tool", f"{tool!r}: use ip or brctl")
        tool = "ip"
    if subnet is None or bridge is None or gateway is None:
        return None
    return Network(name, subnet, bridge, gateway, nat, icc, "brctl" if tool == "brctl" else "ip")


def _attachment(r: Reader, table: str, key: str, item: Any) -> Attachment | None:
    if isinstance(item, str):
        return Attachment(item)
    if not isinstance(item, dict):
        r.fail(table, key, 'must be a network name or a table like { network = "front", address = "..." }')
        return None
    r.unknown(f"{table}.{key}", item, _ATTACH_KEYS)
    network = item.get("network")
    if not isinstance(network, str):
        r.fail(table, f"{key}.network", "is required: the name of a network")
        return None
    address = r.check(table, f"{key}.address", v.ipv4_address, item["address"]) if "address" in item else None
    interface = r.check(table, f"{key}.interface", v.interface_name, item["interface"]) if "interface" in item else None
    host_if = (
        r.check(table, f"{key}.host_interface", v.interface_name, item["host_interface"])
        if "host_interface" in item
        else None
    )
    return Attachment(network, address, interface, host_if)


def _container(r: Reader, name: str, data: Any) -> Container | None:
    table = f"containers.{name}"
    if r.table("containers", name, data, _CONTAINER_KEYS) is None:
        return None
    r.check("containers", name, _name, name)
    mode = r.get(table, data, "network_mode", str, "bridge")
    netns = r.check(table, "netns", v.namespace_name, data["netns"]) if "netns" in data else None
    if netns is None and "netns" not in data:
        r.check("containers", name, v.namespace_name, name)
    loopback = r.get(table, data, "loopback", bool, True)
    attachments = []
    for index, item in enumerate(r.get(table, data, "networks", list, [])):
        attachment = _attachment(r, table, f"networks[{index}]", item)
        if attachment is not None:
            attachments.append(attachment)
    ports = []
    for index, item in enumerate(r.get(table, data, "ports", list, [])):
        port = r.check(table, f"ports[{index}]", Port.parse, item)
        if port is not None:
            ports.append(port)
    return Container(name, mode, tuple(attachments), tuple(ports), netns, loopback)


def from_dict(data: dict[str, Any], source: str, default_name: str = "netwrap") -> Topology:
    """A checked topology from parsed TOML; every problem at once in a :class:`TopologyError`."""
    r = Reader()
    r.unknown("topology", data, _TOP_KEYS)
    name = r.get("topology", data, "name", str, default_name)
    style = r.get("topology", data, "style", str, "docker")
    if style not in ("docker", "document"):
        r.fail("topology", "style", f"{style!r}: use docker or document")
        style = "docker"
    networks, broken = [], set()
    for key, item in r.get("topology", data, "networks", dict, {}).items():
        network = _network(r, key, item, name)
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
    # Problems of the whole, less those that only echo a network already reported as broken.
    echoes = {f"network {b!r} is not declared" for b in broken}
    problems = r.problems + [p for p in topo.problems() if p.message not in echoes]
    if problems:
        raise TopologyError(source, problems)
    return topo


def parse_toml(text: str, source: str) -> dict[str, Any]:
    """TOML text as data; a syntax error is a :class:`TopologyError` naming ``source``."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TopologyError(source, [Problem("file", "syntax", str(exc))]) from None


def _trusted(file: Path) -> Problem | None:
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


def read_toml(path: Path | str) -> dict[str, Any]:
    """A TOML file as data; a file that cannot be read or parsed, or that someone else could have written
    (see :func:`_trusted`), is a :class:`TopologyError` naming it."""
    file = Path(path)
    try:
        problem = _trusted(file)
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise TopologyError(str(file), [Problem("file", "read", exc.strerror or str(exc))]) from None
    if problem is not None:
        raise TopologyError(str(file), [problem])
    return parse_toml(text, str(file))


def loads(text: str, source: str = "<string>", default_name: str = "netwrap") -> Topology:
    """Parse TOML text into a checked topology."""
    return from_dict(parse_toml(text, source), source, default_name)


def load(path: Path | str) -> Topology:
    """Read a topology file; errors name the file, the table and the key."""
    return from_dict(read_toml(path), str(path), default_name=Path(path).stem)
