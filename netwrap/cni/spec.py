"""The CNI specification's side of the plugin: environment, network configuration, results and errors.

Pure: no process is started, and bad input is refused before the rest of
netwrap is loaded.
Specification: https://www.cni.dev/docs/spec/ (1.0.0; GC and STATUS from 1.1.0).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from typing import Any

import attrs

from netwrap.errors import NetwrapError
from netwrap.kinds.namespace import namespace_file

SUPPORTED = ("1.0.0", "1.1.0")
COMMANDS = ("ADD", "DEL", "CHECK", "VERSION", "GC", "STATUS")

# the specification's error codes (1-99 are its own; 100 and up are the plugin's)
INCOMPATIBLE_VERSION = 1
UNSUPPORTED_FIELD = 2
UNKNOWN_CONTAINER = 3
INVALID_ENVIRONMENT = 4
IO_FAILURE = 5
DECODE_FAILURE = 6
INVALID_CONFIG = 7
TRY_AGAIN_LATER = 11
NOT_AVAILABLE = 50
NOT_READY = 51
NOT_AS_WANTED = 100  # CHECK: an interface, address, route or rule is not as ADD left it
FAILED = 101  # a command failed, or a conflict with what another tool made

# each matched whole (fullmatch): with "$", a value ending in a newline would pass
_IFNAME = re.compile(r"[^/\s:%@]{1,15}")
_NETWORK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_CONTAINER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
DEFAULT_DATA_DIR = "/var/lib/netwrap/cni"


class CniError(NetwrapError):
    """An error as the specification writes it: ``{cniVersion, code, msg, details}`` on stdout, exit non-zero."""

    def __init__(self, code: int, msg: str, details: str = "") -> None:
        super().__init__(msg)
        self.code, self.msg, self.details = code, msg, details

    def to_json(self, version: str) -> dict[str, Any]:
        out: dict[str, Any] = {"cniVersion": version, "code": self.code, "msg": self.msg}
        if self.details:
            out["details"] = self.details
        return out


@attrs.frozen
class Env:
    """The ``CNI_*`` variables a runtime sets."""

    command: str
    container_id: str = ""
    netns: str = ""
    ifname: str = ""
    args: str = ""
    path: str = ""

    @classmethod
    def read(cls, environ: Mapping[str, str]) -> Env:
        command = environ.get("CNI_COMMAND", "")
        if command not in COMMANDS:
            raise CniError(INVALID_ENVIRONMENT, f"CNI_COMMAND {command!r} is not one of {', '.join(COMMANDS)}")
        env = cls(
            command,
            environ.get("CNI_CONTAINERID", ""),
            environ.get("CNI_NETNS", ""),
            environ.get("CNI_IFNAME", ""),
            environ.get("CNI_ARGS", ""),
            environ.get("CNI_PATH", ""),
        )
        if command in ("ADD", "DEL", "CHECK"):
            if not _CONTAINER_ID.fullmatch(env.container_id):
                raise CniError(INVALID_ENVIRONMENT, f"CNI_CONTAINERID {env.container_id!r} is not a container id")
            if not _IFNAME.fullmatch(env.ifname) or env.ifname in (".", ".."):
                raise CniError(INVALID_ENVIRONMENT, f"CNI_IFNAME {env.ifname!r} is not an interface name")
        if command in ("ADD", "CHECK"):  # DEL goes by the container id (its CNI_NETNS may be gone or empty)
            try:
                namespace_file("CNI_NETNS", env.netns)
            except NetwrapError as exc:
                raise CniError(INVALID_ENVIRONMENT, f"CNI_NETNS {env.netns!r} is not the path of a network namespace",
                               str(exc)) from None  # fmt: skip
        return env


@attrs.frozen(cache_hash=True)  # part of a lease's hash: hashed once
class PortMapping:
    host_port: int
    container_port: int
    protocol: str = "tcp"
    host_ip: str = ""


@attrs.frozen
class NetConf:
    """A network configuration of ``type: netwrap``: what the reference ``bridge`` + ``host-local`` + ``portmap``
    chain is told, in one plugin."""

    version: str
    name: str
    bridge: str
    subnet: ipaddress.IPv4Network
    gateway: ipaddress.IPv4Address
    ip_masq: bool = False
    subnet6: ipaddress.IPv6Network | None = None  # dual stack: each attachment gets an IPv6 address too
    gateway6: ipaddress.IPv6Address | None = None
    mtu: int | None = None
    data_dir: str = DEFAULT_DATA_DIR
    state_dir: str = ""
    port_mappings: tuple[PortMapping, ...] = ()
    dns: Mapping[str, Any] = attrs.field(factory=dict)
    valid_attachments: tuple[tuple[str, str], ...] | None = None  # GC: (container id, ifname); None: not given
    default_route: bool | None = None  # isDefaultGateway: every attachment's, or none; None: eth0's only
    requested: tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...] = ()  # static addresses asked for
    resolv_conf: str = ""  # ipam.resolvConf: a resolv.conf whose settings are the result's dns when none is given
    prev_result: Mapping[str, Any] | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict)


def version_of(data: object) -> str:
    """The configuration's ``cniVersion``, refused (code 1) unless this plugin speaks it."""
    version = data.get("cniVersion") if isinstance(data, dict) else None
    if not isinstance(version, str) or version not in SUPPORTED:
        raise CniError(
            INCOMPATIBLE_VERSION, f"cniVersion {version!r} is not supported", f"supported: {', '.join(SUPPORTED)}"
        )
    return version


def decode(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CniError(DECODE_FAILURE, "the network configuration on stdin is not JSON", str(exc)) from None
    if not isinstance(data, dict):
        raise CniError(DECODE_FAILURE, "the network configuration on stdin is not a JSON object")
    return data


def _invalid(key: str, value: object, why: str) -> CniError:
    return CniError(INVALID_CONFIG, f"{key}: {value!r} {why}")


def _get(data: Mapping[str, Any], key: str, kind: type, default: Any) -> Any:
    value = data.get(key, default)
    if value is default:
        return value
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise _invalid(key, value, "must be an integer")
    if not isinstance(value, kind):
        raise _invalid(key, value, f"must be a {'boolean' if kind is bool else kind.__name__}")
    return value


def _subnet_and_gateway(data: Mapping[str, Any]) -> tuple[str, str | None, str | None, str | None]:
    """``subnet``/``gateway`` (and ``subnet6``/``gateway6``) at the top, or in ``ipam`` as host-local writes
    them (``subnet``, or ``ranges``: one range set per family, one subnet each)."""
    subnet, gateway = data.get("subnet"), data.get("gateway")
    subnet6, gateway6 = data.get("subnet6"), data.get("gateway6")
    ipam = data.get("ipam")
    if subnet is None and isinstance(ipam, dict):
        subnet, gateway = ipam.get("subnet"), ipam.get("gateway", gateway)
        ranges = ipam.get("ranges")
        if subnet is None and isinstance(ranges, list) and ranges:
            if len(ranges) > 2 or not all(isinstance(r, list) and len(r) == 1 for r in ranges):
                raise _unsupported("ipam.ranges", ranges, "one range set per family, of one subnet each")
            seen: set[bool] = set()
            for number, (first,) in enumerate(ranges):
                if not isinstance(first, dict):
                    raise _invalid(f"ipam.ranges[{number}][0]", first, "must be an object with a subnet")
                _no_range_options(first, f"ipam.ranges[{number}][0]")
                six = isinstance(first.get("subnet"), str) and ":" in first["subnet"]
                if six in seen:
                    raise _unsupported("ipam.ranges", ranges, "one range set per family, of one subnet each")
                seen.add(six)
                if six:
                    subnet6, gateway6 = first.get("subnet"), first.get("gateway", gateway6)
                else:
                    subnet, gateway = first.get("subnet"), first.get("gateway", gateway)
    if isinstance(ipam, dict):
        _no_range_options(ipam, "ipam")
    if not isinstance(subnet, str):
        raise _invalid("subnet", subnet, "must be an IPv4 network such as 10.88.0.0/16")
    for key, value in (("gateway", gateway), ("subnet6", subnet6), ("gateway6", gateway6)):
        if value is not None and not isinstance(value, str):
            raise _invalid(key, value, "must be a string")
    return subnet, gateway, subnet6, gateway6


def _ipv6_side(
    text: str | None, gateway_text: str | None
) -> tuple[ipaddress.IPv6Network | None, ipaddress.IPv6Address | None]:
    """The IPv6 subnet and gateway (its ``::1`` unless given), checked as a topology file's are."""
    if text is None:
        if gateway_text is not None:
            raise _invalid("gateway6", gateway_text, "needs a subnet6")
        return None, None
    try:
        subnet6 = ipaddress.IPv6Network(text)
    except ValueError as exc:
        raise _invalid("subnet6", text, f"is not an IPv6 network ({exc})") from None
    if subnet6.is_link_local or subnet6.is_multicast or subnet6.is_loopback or "%" in text:
        raise _invalid("subnet6", text, "must be a unicast prefix, like fd00:88::/64")
    if subnet6.prefixlen > 124:
        raise _invalid("subnet6", text, "is too small for a gateway and containers (/124 at most)")
    try:
        gateway6 = ipaddress.IPv6Address(gateway_text) if gateway_text is not None else subnet6[1]
    except ValueError:
        raise _invalid("gateway6", gateway_text, "is not an IPv6 address") from None
    if gateway6 not in subnet6 or gateway6 == subnet6.network_address:
        raise _invalid("gateway6", str(gateway6), f"is not a host address of {subnet6}")
    return subnet6, gateway6


def _no_range_options(where: Mapping[str, Any], key: str) -> None:
    """host-local's ways of narrowing a range are refused, not dropped: an address outside them could be given."""
    for option in ("rangeStart", "rangeEnd", "exclude"):
        if option in where:
            raise _unsupported(f"{key}.{option}", where[option], "netwrap gives the whole subnet")


def _unsupported(key: str, value: object, why: str) -> CniError:
    """Code 2, with the key and its value, as the specification asks."""
    return CniError(UNSUPPORTED_FIELD, f"{key}: {_shown(value)} is not supported: {why}")


def _address(text: str) -> str:
    """``text`` as ``ipaddress`` writes the address, or itself when it is none."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text


def _shown(value: object) -> str:
    text = json.dumps(value, default=repr)
    return text if len(text) <= 200 else f"{text[:197]}..."


def _bridge_options(data: Mapping[str, Any]) -> None:
    """The reference bridge plugin's switches that netwrap cannot turn: refused when set the other way, never
    dropped (a network that silently does otherwise than its file says is worse than an error)."""
    for key, why in (
        ("isGateway", "netwrap always gives the bridge the gateway address"),
        ("hairpinMode", "netwrap always turns hairpin on, so that a container reaches its own published ports"),
    ):
        value = _get(data, key, bool, None)
        if value is False:
            raise _unsupported(key, value, why)
    for key in ("ipMasqBackend", "vlan", "vlanTrunk", "macspoofchk", "disableContainerInterface"):
        if data.get(key) not in (None, False, "", "iptables", []):
            raise _unsupported(key, data[key], "not an option of netwrap's")


def _ipam_routes(ipam: object, gateways: set[str]) -> None:
    """``ipam.routes``: default routes through the gateway are what netwrap makes anyway (the first interface's,
    see ``isDefaultGateway``); any other is refused, code 2, never dropped."""
    routes = ipam.get("routes") if isinstance(ipam, dict) else None
    if routes is None:
        return
    if not isinstance(routes, list):
        raise _invalid("ipam.routes", routes, "must be a list of routes")
    for number, route in enumerate(routes):
        if not isinstance(route, dict) or not isinstance(route.get("dst"), str):
            raise _invalid(f"ipam.routes[{number}]", route, "must be an object with a dst")
        try:
            dst = ipaddress.ip_network(route["dst"])
        except ValueError:
            raise _invalid(f"ipam.routes[{number}].dst", route["dst"], "is not a network") from None
        gateway = route.get("gw")
        if dst.prefixlen != 0 or not (gateway is None or (isinstance(gateway, str) and _address(gateway) in gateways)):
            raise _unsupported(f"ipam.routes[{number}]", route, "netwrap makes the default route through the "
                               "gateway, and no other")  # fmt: skip


def cni_args(text: str) -> dict[str, str]:
    """``CNI_ARGS``: ``KEY=VALUE`` pairs separated by ``;`` (a pair without ``=`` is refused, code 4)."""
    found: dict[str, str] = {}
    for pair in text.split(";"):
        if not pair:
            continue
        key, equals, value = pair.partition("=")
        if not equals or not key:
            raise CniError(INVALID_ENVIRONMENT, f"CNI_ARGS: {pair!r} is not KEY=VALUE")
        found[key] = value
    return found


def _requested(data: Mapping[str, Any], runtime: Mapping[str, Any], args: Mapping[str, str]) -> tuple[Any, ...]:
    """The static addresses asked for, at most one per family: ``runtimeConfig.ips`` (the ``ips`` capability),
    ``args.cni.ips`` or ``CNI_ARGS`` ``IP`` (comma-separated, as podman passes ``--ip``); each with or without its
    prefix length. A MAC asked for is refused: netwrap makes a container's MAC of its address."""
    cni = data.get("args", {}).get("cni", {}) if isinstance(data.get("args"), dict) else {}
    cni = cni if isinstance(cni, dict) else {}
    for key, value in (("runtimeConfig.mac", runtime.get("mac")), ("args.cni.mac", cni.get("mac")),
                       ("CNI_ARGS MAC", args.get("MAC"))):  # fmt: skip
        if value:
            raise _unsupported(key, value, "netwrap makes a container's MAC of its address")
    asked: list[tuple[str, object]] = []
    for key, listed in (("runtimeConfig.ips", runtime.get("ips")), ("args.cni.ips", cni.get("ips"))):
        if listed is None:
            continue
        if not isinstance(listed, list):
            raise _invalid(key, listed, "must be a list of addresses")
        asked += [(f"{key}[{n}]", item) for n, item in enumerate(listed)]
    if args.get("IP"):
        asked += [("CNI_ARGS IP", item) for item in args["IP"].split(",")]
    found: dict[int, ipaddress.IPv4Address | ipaddress.IPv6Address] = {}
    for key, item in asked:
        try:
            address = ipaddress.ip_interface(item.strip()).ip if isinstance(item, str) else None
        except ValueError:
            address = None
        if address is None:
            raise _invalid(key, item, "is not an IP address")
        if found.get(address.version, address) != address:
            raise _unsupported(key, item, f"one address per family: {found[address.version]} is asked for too")
        found[address.version] = address
    return tuple(found[v] for v in sorted(found))


def netconf(data: dict[str, Any], command: str, args: str = "") -> NetConf:
    """The configuration (and ``CNI_ARGS``, ``args``), checked (code 7, naming the key, for anything wrong)."""
    version = version_of(data)
    name = data.get("name")
    if not isinstance(name, str) or not _NETWORK_NAME.fullmatch(name):
        raise _invalid("name", name, "must be a network name: letters, digits, '_', '.' or '-', at most 63")
    if data.get("type") != "netwrap":
        raise _invalid("type", data.get("type"), "must be 'netwrap' for this plugin")
    ipam = data.get("ipam")
    adding = command == "ADD"  # what netwrap cannot make is refused when asked to make it: a DEL, CHECK or GC
    # of a network an earlier netwrap made (which took these and ignored them) still goes by the rest
    if adding and isinstance(ipam, dict) and ipam.get("type", "host-local") != "host-local":
        raise _unsupported("ipam.type", ipam.get("type"), "netwrap gives the addresses itself, as host-local does")
    if adding:
        _bridge_options(data)
    text, gateway_text, text6, gateway6_text = _subnet_and_gateway(data)
    subnet6, gateway6 = _ipv6_side(text6, gateway6_text)
    try:
        subnet = ipaddress.IPv4Network(text)
    except ValueError as exc:
        raise _invalid("subnet", text, f"is not an IPv4 network ({exc})") from None
    if subnet.num_addresses < 4:
        raise _invalid("subnet", text, "is too small for a gateway and a container")
    try:
        gateway = ipaddress.IPv4Address(gateway_text) if gateway_text is not None else subnet[1]
    except ValueError:
        raise _invalid("gateway", gateway_text, "is not an IPv4 address") from None
    if gateway not in subnet or gateway in (subnet.network_address, subnet.broadcast_address):
        raise _invalid("gateway", str(gateway), f"is not a host address of {subnet}")
    bridge = _get(data, "bridge", str, "")
    mtu = _get(data, "mtu", int, None)
    if mtu is not None and not 68 <= mtu <= 65535:
        raise _invalid("mtu", mtu, "must be from 68 to 65535")
    runtime = _get(data, "runtimeConfig", dict, {})
    requested = _requested(data, runtime, cni_args(args)) if command == "ADD" else ()
    for address in requested:
        within = subnet if address.version == 4 else subnet6
        if (
            within is None
            or address not in within
            or address in (within.network_address, gateway, gateway6)
            or (address.version == 4 and address == subnet.broadcast_address)
        ):
            where = within or subnet
            raise _invalid("the address asked for", str(address), f"is no host address of {where}, or is its gateway")
    mappings = tuple(_port(i, m) for i, m in enumerate(_get(runtime, "portMappings", list, [])))
    dns = _get(data, "dns", dict, {})
    valid = None
    # the key as libcni sends it; the specification of 1.1.0 named it cni.dev/attachments (libcni sends both)
    key = next((k for k in ("cni.dev/valid-attachments", "cni.dev/attachments") if k in data), None)
    if command == "GC" and key is not None:  # absent: nothing said, nothing collected
        listed = data[key]
        if listed is not None and not isinstance(listed, list):  # null: an empty list, as Go encodes a nil slice
            raise _invalid(key, listed, "must be a list")
        valid = tuple(_attachment(key, i, a) for i, a in enumerate(listed or []))
    ipam_options = ipam if isinstance(ipam, dict) else {}
    if adding:
        _ipam_routes(ipam, {str(gateway), str(gateway6)})
    return NetConf(
        version=version,
        name=name,
        bridge=bridge,
        subnet=subnet,
        gateway=gateway,
        ip_masq=_get(data, "ipMasq", bool, False),
        subnet6=subnet6,
        gateway6=gateway6,
        mtu=mtu,
        data_dir=_get(data, "dataDir", str, DEFAULT_DATA_DIR),  # never ipam.dataDir: host-local's, not netwrap's
        state_dir=_get(data, "stateDir", str, ""),
        port_mappings=mappings,
        dns=dns,
        valid_attachments=valid,
        default_route=_get(data, "isDefaultGateway", bool, None),
        requested=requested,
        resolv_conf=_get(ipam_options, "resolvConf", str, ""),
        prev_result=_get(data, "prevResult", dict, None),
        raw=data,
    )


def _port(index: int, item: object) -> PortMapping:
    key = f"runtimeConfig.portMappings[{index}]"
    if not isinstance(item, dict):
        raise _invalid(key, item, "must be an object")
    host, inside = item.get("hostPort"), item.get("containerPort")
    for what, value in (("hostPort", host), ("containerPort", inside)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
            raise _invalid(f"{key}.{what}", value, "must be a port from 1 to 65535")
    protocol = item.get("protocol", "tcp")
    if isinstance(protocol, str) and protocol.lower() == "sctp":  # a protocol portmap knows; netwrap does not
        raise _unsupported(f"{key}.protocol", protocol, "netwrap publishes tcp and udp ports")
    if not isinstance(protocol, str) or protocol.lower() not in ("tcp", "udp"):
        raise _invalid(f"{key}.protocol", protocol, "must be tcp or udp")
    host_ip = item.get("hostIP", "")
    if not isinstance(host_ip, str):
        raise _invalid(f"{key}.hostIP", host_ip, "must be an IP address")
    if host_ip:
        try:
            address = ipaddress.ip_address(host_ip)
        except ValueError:
            raise _invalid(f"{key}.hostIP", host_ip, "is not an IP address") from None
        if address.version == 6 and (address.is_link_local or address.is_multicast):
            raise _invalid(f"{key}.hostIP", host_ip, "is not an address to publish on")
    return PortMapping(int(host), int(inside), protocol.lower(), host_ip)  # type: ignore[arg-type]  # checked


def _attachment(name: str, index: int, item: object) -> tuple[str, str]:
    """One still valid attachment; one without both its keys is refused (read as another attachment, it would
    let a live one be collected)."""
    key = f"{name}[{index}]"
    if not isinstance(item, dict) or not isinstance(item.get("containerID"), str):
        raise _invalid(key, item, "must be an object with containerID and ifname")
    ifname = item.get("ifname")
    if not isinstance(ifname, str):
        raise _invalid(f"{key}.ifname", ifname, "must be the attachment's interface name")
    return item["containerID"], ifname


def version_result(requested: str) -> dict[str, Any]:
    """VERSION's answer: the version asked about, echoed, and the ones this plugin speaks."""
    return {"cniVersion": requested, "supportedVersions": list(SUPPORTED)}


def stated_version(stdin: str) -> str:
    """The configuration's ``cniVersion``, as errors must carry it, found however broken the rest is."""
    try:
        data = json.loads(stdin)
    except ValueError:
        return SUPPORTED[-1]
    version = data.get("cniVersion") if isinstance(data, dict) else None
    return version if isinstance(version, str) and version else SUPPORTED[-1]
