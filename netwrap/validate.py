"""Validators and normalisers for the values netwrap puts on a command line.

Each function takes the field name for its error message, checks one value and
returns it normalised, or raises :class:`~netwrap.errors.ValidationError` that
names the field and the value. Nothing here starts a process.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import unicodedata
from collections.abc import Callable
from typing import Any

from netwrap.errors import ValidationError

IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

IFNAMSIZ = 16  # the kernel's buffer, including the terminating NUL
NAME_MAX = 255

# Words `ip link` reads as keywords when they stand where a device name goes.
# iproute2 compares some of them by prefix (`matches()`), so `a` means `address`.
_IP_PREFIX_KEYWORDS = (
    "address", "broadcast", "dynamic", "help", "link", "master",
    "nomaster", "txqlen", "txqueuelen", "type", "vrf",
)  # fmt: skip
_IP_EXACT_KEYWORDS = frozenset(
    {
        "all", "allmulticast", "alias", "arp", "brd", "default", "dev", "down",
        "group", "index", "mode", "mtu", "multicast", "name", "netns",
        "numrxqueues", "numtxqueues", "off", "on", "peer", "promisc", "qlen",
        "state", "trailers", "up", "vf",
    }
)  # fmt: skip


def _is_ip_keyword(name: str) -> str | None:
    if name in _IP_EXACT_KEYWORDS:
        return name
    for keyword in _IP_PREFIX_KEYWORDS:
        if keyword.startswith(name):
            return keyword
    return None


def _bad_character(value: str) -> str | None:
    for ch in value:
        if ch in "/:%@\\'\"`$;&|<>(){}[]*?!#~,=":
            return ch
        if ch.isspace() or unicodedata.category(ch).startswith("C"):
            return ch
    return None


def _require_str(field: str, value: object) -> str:
    if not isinstance(value, str):
        raise ValidationError(field, value, f"must be a string, not {type(value).__name__}")
    if not value:
        raise ValidationError(field, value, "must not be empty")
    return value


def _judged(field: str, value: object, judge: Callable[[str], str | None]) -> str:
    name = _require_str(field, value)
    problem = judge(name)
    if problem is not None:
        raise ValidationError(field, value, problem)
    return name


def interface_name(field: str, value: object) -> str:
    """A network device name the kernel keeps as written and `ip` reads as a name."""
    return _judged(field, value, _interface_problem)


# The checks of a name depend on the name alone: a topology names each bridge, namespace and
# device many times over (and a record rebuilds thousands of objects), so each name is judged once.
@functools.lru_cache(maxsize=4096)
def _interface_problem(name: str) -> str | None:
    size = len(name.encode("utf-8"))
    if size >= IFNAMSIZ:
        return f"is {size} bytes long; the kernel allows at most {IFNAMSIZ - 1}"
    if name in (".", ".."):
        return "is not a valid device name"
    if name.startswith("-"):
        return "must not start with '-' (it would read as an option)"
    bad = _bad_character(name)
    if bad is not None:
        return f"contains the character {bad!r}"
    if not name.isascii():
        return "must be ASCII"
    keyword = _is_ip_keyword(name)
    if keyword is not None:
        return f"`ip` would read it as the keyword {keyword!r}; choose another name"
    return None


def namespace_name(field: str, value: object) -> str:
    """A name for `ip netns`: a single file name under /run/netns."""
    return _judged(field, value, _namespace_problem)


@functools.lru_cache(maxsize=4096)
def _namespace_problem(name: str) -> str | None:
    if len(name.encode("utf-8")) > NAME_MAX:
        return f"is longer than {NAME_MAX} bytes"
    if name in (".", ".."):
        return "is a path component, not a name"
    if name == "all":
        return "`ip netns` reads 'all' as every namespace"
    if name.startswith("-"):
        return "must not start with '-' (it would read as an option)"
    bad = _bad_character(name)
    if bad is not None:
        return f"contains the character {bad!r}"
    if not name.isascii():
        return "must be ASCII"
    return None


_SPACE = re.compile(r"\s")  # for ASCII text, what str.isspace() calls white space


def _ascii_text(field: str, value: object) -> str:
    text = _require_str(field, value)
    if not text.isascii() or _SPACE.search(text):
        raise ValidationError(field, value, "must be ASCII with no white space")
    return text


# Parsed addresses are immutable values; the same ones recur across a topology's objects.
_parse_address = functools.lru_cache(maxsize=8192)(ipaddress.ip_address)
_parse_interface = functools.lru_cache(maxsize=8192)(ipaddress.ip_interface)


@functools.lru_cache(maxsize=4096)
def _parse_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text, strict=True)


def plain(field: str, value: object, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    """Refuse what an IPv6 address may carry but a network of netwrap's has no use for: a zone id
    (``%eth0``, meaningful only for link-local addresses on one link) and an IPv4-mapped address
    (``::ffff:10.0.0.1``, which is IPv4 in disguise)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id is not None:
            raise ValidationError(field, value, "has a zone id (%...): leave it out")
        if address.ipv4_mapped is not None:
            raise ValidationError(field, value, f"is an IPv4-mapped IPv6 address: write {address.ipv4_mapped}")


def ip_address(field: str, value: object) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """A single IP address written as numbers (never a host name or a list)."""
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        plain(field, value, value)
        return value
    text = _ascii_text(field, value)
    try:
        address = _parse_address(text)
    except ValueError:
        raise ValidationError(field, value, "is not an IP address") from None
    plain(field, value, address)
    return address


def ip_interface(field: str, value: object) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    """An address with its prefix length, like ``172.18.0.2/24``."""
    if isinstance(value, ipaddress.IPv4Interface | ipaddress.IPv6Interface):
        plain(field, value, value.ip)
        return value
    text = _ascii_text(field, value)
    if "/" not in text:
        raise ValidationError(field, value, "needs a prefix length, like 172.18.0.2/24")
    try:
        interface = _parse_interface(text)
    except ValueError:
        raise ValidationError(field, value, "is not an address with a prefix length") from None
    plain(field, value, interface.ip)
    return interface


def ip_network(field: str, value: object) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """A network with no host bits set, like ``172.18.0.0/24``; a bare address is a /32."""
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        plain(field, value, value.network_address)
        return value
    text = _ascii_text(field, value)
    try:
        network = _parse_network(text)
    except ValueError as exc:
        reason = str(exc) if "host bits" in str(exc) else "is not a network like 172.18.0.0/24"
        raise ValidationError(field, value, reason) from None
    plain(field, value, network.network_address)
    return network


def ipv4_address(field: str, value: object) -> ipaddress.IPv4Address:
    """:func:`ip_address`, IPv4 only."""
    address = ip_address(field, value)
    if not isinstance(address, ipaddress.IPv4Address):
        raise ValidationError(field, value, "must be an IPv4 address")
    return address


def ipv4_network(field: str, value: object) -> ipaddress.IPv4Network:
    """:func:`ip_network`, IPv4 only."""
    network = ip_network(field, value)
    if not isinstance(network, ipaddress.IPv4Network):
        raise ValidationError(field, value, "must be an IPv4 network")
    return network


def port(field: str, value: object) -> int:
    """A TCP or UDP port number, 1..65535."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, value, "must be an integer")
    if not 1 <= value <= 65535:
        raise ValidationError(field, value, "must be between 1 and 65535")
    return value


def mtu(field: str, value: object) -> int:
    """A device's MTU: an integer from 68 (IPv4's least) to 65535."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, value, "must be an integer")
    if not 68 <= value <= 65535:
        raise ValidationError(field, value, "must be from 68 to 65535")
    return value


_MAC = re.compile(r"[0-9a-f][02468ace](?::[0-9a-f]{2}){5}")  # whole: fullmatch


def mac_address(field: str, value: object) -> str:
    """A unicast MAC address, lower case: ``02:6e:0a:59:00:02``."""
    if not isinstance(value, str) or not _MAC.fullmatch(value):
        raise ValidationError(field, value, "must be a unicast MAC address such as 02:6e:0a:59:00:02 (lower case)")
    return value


def flag(field: str, value: object) -> bool:
    """``True`` or ``False``, nothing that merely looks like one."""
    if not isinstance(value, bool):
        raise ValidationError(field, value, "must be True or False")
    return value


def one_of(*options: str) -> Callable[[str, object], str]:
    """A check that takes only one of ``options``."""

    def check(field: str, value: object) -> str:
        if not isinstance(value, str) or value not in options:
            raise ValidationError(field, value, f"must be one of {', '.join(map(repr, options))}")
        return value

    return check


def sysctl_key(field: str, value: object) -> str:
    """A dotted sysctl key like ``net.ipv4.ip_forward``."""
    key = _require_str(field, value)
    parts = key.split(".")
    if len(parts) < 2 or not all(p and all(c.isalnum() or c in "_-" for c in p) for p in parts):
        raise ValidationError(field, value, "is not a dotted sysctl key like net.ipv4.ip_forward")
    if not key.isascii() or key.startswith("-"):
        raise ValidationError(field, value, "is not a dotted sysctl key like net.ipv4.ip_forward")
    return key


def sysctl_value(field: str, value: object) -> str:
    """A sysctl value: a short printable word (numbers are turned into text)."""
    if isinstance(value, bool):
        raise ValidationError(field, value, "must be a number or a word, not a bool")
    if isinstance(value, int):
        value = str(value)
    text = _require_str(field, value)
    if not all(c.isalnum() or c in "._-" for c in text) or text.startswith("-"):
        raise ValidationError(field, value, "must be a plain number or word")
    return text


def validator(check: Any) -> Any:
    """An attrs validator that runs ``check("Class.field", value)``."""

    def _validate(instance: object, attribute: Any, value: object) -> None:
        check(f"{type(instance).__name__}.{attribute.name}", value)

    return _validate


def optional_validator(check: Any) -> Any:
    """Like :func:`validator`, letting ``None`` through."""

    def _validate(instance: object, attribute: Any, value: object) -> None:
        if value is not None:
            check(f"{type(instance).__name__}.{attribute.name}", value)

    return _validate
