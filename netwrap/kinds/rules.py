"""iptables rules: written as iptables -S prints them, one body for -A, -I, -C and -D."""

from __future__ import annotations

import functools
import ipaddress
import re
from typing import Literal, cast

import attrs

from netwrap import validate as v
from netwrap.command import Command
from netwrap.errors import ValidationError
from netwrap.host.observe import HostState, Need
from netwrap.host.parse import IptablesRule
from netwrap.kinds.base import FLAG, OPT_NAME, Assessment, Claim, Gone, Kind, conflict, missing, present
from netwrap.validate import IPAddress


def _dnat_target(field: str, value: object) -> str:
    """``IP``, ``IP:PORT``, ``IPV6`` or ``[IPV6]:PORT``, normalised as ``iptables -S`` / ``ip6tables -S`` print
    them."""
    if not isinstance(value, str):
        raise ValidationError(field, value, "must be a string like 172.18.0.2:80 or [fd00::2]:80")
    if value.startswith("["):
        host, close, rest = value[1:].partition("]")
        if not close or (rest and not rest.startswith(":")):
            raise ValidationError(field, value, "must be [IPV6] or [IPV6]:PORT")
        port_text = rest[1:]
        if rest and not port_text:
            raise ValidationError(field, value, "the port after ':' is missing")
    elif value.count(":") > 1:
        host, port_text = value, ""  # a bare IPv6 address
    else:
        host, sep, port_text = value.rpartition(":")
        if not sep:
            host, port_text = value, ""
    address = v.ip_address(field, host)
    if isinstance(address, ipaddress.IPv6Address) and not value.startswith("[") and port_text:
        raise ValidationError(field, value, "write an IPv6 target with a port as [IPV6]:PORT")
    shown = f"[{address}]" if isinstance(address, ipaddress.IPv6Address) else str(address)
    if port_text:
        if not (port_text.isascii() and port_text.isdigit()):
            raise ValidationError(field, value, "the port must be a number")
        v.port(field, int(port_text))
        return f"{shown}:{int(port_text)}"
    return str(address)


def _target_address(target: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The address of a normalised DNAT/SNAT target."""
    if target.startswith("["):
        return ipaddress.IPv6Address(target[1:].partition("]")[0])
    if target.count(":") > 1:
        return ipaddress.IPv6Address(target)
    return ipaddress.IPv4Address(target.partition(":")[0])


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


# Converters normalise what they can and pass anything else through unchanged; the
# validators (which know the class and the field) then refuse it with the reason.
def _to_net(value: str | Network | None) -> Network | None:
    if isinstance(value, str):
        try:
            return ipaddress.ip_network(value)
        except ValueError:
            pass
    return cast("Network | None", value)


def _to_target(value: str | None) -> str | None:
    try:
        return _dnat_target("to", value) if value is not None else None
    except ValidationError:
        return value


def _to_words(value: tuple[str, ...] | list[str] | str) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(value.split(","))
    if isinstance(value, list | tuple):
        return tuple(value)
    return value  # anything else is refused, naming the field, after construction


def table_of(table: str, family: int | None) -> str:
    """A table as a host's state keys it: ``nat`` (iptables), ``ip6:nat`` (ip6tables)."""
    return f"ip6:{table}" if family == 6 else table


class InTable:
    """What lives in one family's iptables table (a rule, a chain): ``table`` and ``family`` are its fields."""

    __slots__ = ()
    table: str
    family: int | None

    @property
    def where(self) -> str:
        """Its table as a host's state keeps it: ``nat`` for iptables, ``ip6:nat`` for ip6tables."""
        return table_of(self.table, self.family)

    @property
    def tool(self) -> str:
        return "ip6tables" if self.family == 6 else "iptables"


TABLE_CHAINS: dict[str, tuple[str, ...]] = {
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
    "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
    "raw": ("PREROUTING", "OUTPUT"),
}
BUILTIN_CHAINS = frozenset(c for chains in TABLE_CHAINS.values() for c in chains)
TARGETS = frozenset({"ACCEPT", "DROP", "REJECT", "RETURN", "MASQUERADE", "DNAT", "SNAT", "LOG"})
ADDRESS_TYPES = frozenset({"LOCAL", "UNICAST", "BROADCAST", "MULTICAST", "ANYCAST", "BLACKHOLE", "UNREACHABLE"})
CONNTRACK_STATES = frozenset({"NEW", "ESTABLISHED", "RELATED", "INVALID", "UNTRACKED", "SNAT", "DNAT"})
OWN_PREFIX = "NETWRAP-"  # the chains netwrap owns; their jumps stand first in the built-in chains
ISOLATION_SUFFIX = "-ISO"  # a topology's isolation chain: its jump stands before every other netwrap jump
_CHAIN_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,27}")  # whole: fullmatch (a "$" lets a final newline in)


def check_table(instance: object, attribute: attrs.Attribute[str], value: object) -> None:
    if not isinstance(value, str) or value not in TABLE_CHAINS:
        field = f"{type(instance).__name__}.{attribute.name}"
        raise ValidationError(field, value, f"must be one of {sorted(TABLE_CHAINS)}")


def check_chain_name(field: str, value: object, table: str) -> str:
    if not isinstance(value, str) or not _CHAIN_NAME.fullmatch(value):
        raise ValidationError(field, value, "is not a chain name (letters, digits, '_' or '-', at most 28)")
    if value in BUILTIN_CHAINS and value not in TABLE_CHAINS.get(table, ()):
        raise ValidationError(field, value, f"is not a chain of the {table} table")
    return value


def _check_comment(field: str, value: object) -> None:
    """An iptables comment that cannot break out of its argument, in a command or an iptables-restore file."""
    if not isinstance(value, str):
        raise ValidationError(field, value, "must be a string")
    if len(value.encode()) > 255:
        raise ValidationError(field, value, f"is {len(value.encode())} bytes; iptables allows at most 255")
    for ch in value:
        if ch in "\"'\\`$" or not ch.isprintable() or (ch.isspace() and ch != " "):
            raise ValidationError(field, value, f"contains {ch!r}; use printable text without quotes or backslashes")
    if not value.strip():
        raise ValidationError(field, value, "must not be empty")


@attrs.frozen
class Rule(InTable, Kind):
    """One iptables rule, written the way ``iptables -S`` prints it.

    ``/32`` on single addresses, ``-m tcp`` after ``-p tcp``, ``!`` before the
    option it negates, and matches in one fixed order, so that what is wanted
    equals what the host lists. The same body serves ``-A`` (or ``-I CHAIN 1``
    with ``insert``), ``-C`` and ``-D``.
    """

    chain: str
    jump: str
    source: Network | None = attrs.field(default=None, converter=_to_net)
    destination: Network | None = attrs.field(default=None, converter=_to_net)
    in_interface: str | None = attrs.field(default=None, validator=OPT_NAME)
    in_negated: bool = attrs.field(default=False, validator=FLAG)
    out_interface: str | None = attrs.field(default=None, validator=OPT_NAME)
    out_negated: bool = attrs.field(default=False, validator=FLAG)
    protocol: Literal["tcp", "udp"] | None = attrs.field(
        default=None, validator=v.optional_validator(v.one_of("tcp", "udp"))
    )
    dport: int | None = attrs.field(default=None, validator=v.optional_validator(v.port))
    to: str | None = attrs.field(default=None, converter=_to_target)
    source_negated: bool = attrs.field(default=False, kw_only=True, validator=FLAG)
    destination_negated: bool = attrs.field(default=False, kw_only=True, validator=FLAG)
    src_type: str | None = attrs.field(default=None, kw_only=True)
    dst_type: str | None = attrs.field(default=None, kw_only=True)
    ctstate: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=_to_words)
    table: str = attrs.field(default="filter", kw_only=True, validator=check_table)
    insert: bool = attrs.field(default=False, kw_only=True, validator=FLAG)
    comment: str | None = attrs.field(default=None, kw_only=True)
    # 4 (iptables) or 6 (ip6tables); None: the family of its addresses, else 4 (a jump names none: say 6)
    family: int | None = attrs.field(default=None, kw_only=True)

    def __attrs_post_init__(self) -> None:
        name = type(self).__name__
        if self.comment is not None:
            _check_comment(f"{name}.comment", self.comment)
        check_chain_name(f"{name}.chain", self.chain, self.table)
        if not isinstance(self.jump, str) or self.jump not in TARGETS:
            check_chain_name(f"{name}.jump", self.jump, self.table)
            if self.jump in BUILTIN_CHAINS:
                raise ValidationError(f"{name}.jump", self.jump, "cannot jump to a built-in chain")
        versions: dict[str, int] = {}
        for field in ("source", "destination"):
            value = getattr(self, field)
            if value is not None and not isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
                v.ip_network(f"{name}.{field}", value)  # says what is wrong with it (host bits, ...)
                raise ValidationError(f"{name}.{field}", value, "is not an IP network")
            if value is not None:
                v.plain(f"{name}.{field}", value, value.network_address)
                versions[field] = value.version
        if self.to is not None:
            _dnat_target(f"{name}.to", self.to)
            versions["to"] = _target_address(self.to).version
        if self.family is not None and self.family not in (4, 6):
            raise ValidationError(f"{name}.family", self.family, "must be 4 (iptables) or 6 (ip6tables)")
        if self.family is not None:
            versions.setdefault("family", self.family)
        if len(set(versions.values())) > 1:
            shown = ", ".join(f"{field} IPv{version}" for field, version in versions.items())
            first = next(iter(versions))
            raise ValidationError(f"{name}.{first}", getattr(self, first), f"mixes families ({shown})")
        object.__setattr__(self, "family", next(iter(versions.values()), 4))
        for field in ("src_type", "dst_type"):
            value = getattr(self, field)
            if value is not None and (not isinstance(value, str) or value not in ADDRESS_TYPES):
                raise ValidationError(f"{name}.{field}", value, f"must be one of {sorted(ADDRESS_TYPES)}")
        if not isinstance(self.ctstate, tuple):
            raise ValidationError(f"{name}.ctstate", self.ctstate, "must be states, e.g. 'RELATED,ESTABLISHED'")
        for state in self.ctstate:
            if state not in CONNTRACK_STATES:
                raise ValidationError(f"{name}.ctstate", state, f"must be among {sorted(CONNTRACK_STATES)}")
        if self.dport is not None and self.protocol is None:
            raise ValidationError(f"{name}.dport", self.dport, "a port needs a protocol (tcp or udp)")
        if self.jump in ("DNAT", "SNAT") and self.to is None:
            raise ValidationError(f"{name}.to", None, f"{self.jump} needs a target address")
        if self.jump not in ("DNAT", "SNAT") and self.to is not None:
            raise ValidationError(f"{name}.to", self.to, f"{self.jump} takes no target address")
        if self.jump in ("DNAT", "SNAT", "MASQUERADE") and self.table != "nat":
            raise ValidationError(f"{name}.jump", self.jump, "belongs in the nat table")
        if self.jump in ("DROP", "REJECT") and self.table == "nat":
            raise ValidationError(f"{name}.jump", self.jump, "the nat table is not for filtering")
        for field, iface in (("in_negated", self.in_interface), ("out_negated", self.out_interface)):
            if getattr(self, field) and iface is None:
                raise ValidationError(f"{name}.{field}", True, "negates nothing: the interface is not set")
        for field, value in (("source_negated", self.source), ("destination_negated", self.destination)):
            if getattr(self, field) and value is None:
                raise ValidationError(f"{name}.{field}", True, "negates nothing: the address is not set")

    @functools.cached_property
    def key(self) -> str:
        return f"{self.where}:{self.chain}:{' '.join(self.body())}"

    def body(self) -> tuple[str, ...]:
        """The rule's matches and target, in ``iptables -S`` order."""
        return self._body

    @functools.cached_property
    def _body(self) -> tuple[str, ...]:
        # worked out once per rule: a plan compares and keys every rule, and a topology has hundreds
        words: list[str] = []

        def opt(negated: bool, flag: str, value: object) -> None:
            if value is not None:
                words.extend((["!"] if negated else []) + [flag, str(value)])

        opt(self.source_negated, "-s", self.source)
        opt(self.destination_negated, "-d", self.destination)
        opt(self.in_negated, "-i", self.in_interface)
        opt(self.out_negated, "-o", self.out_interface)
        if self.protocol is not None:
            words += ["-p", self.protocol]
            if self.dport is not None:
                words += ["-m", self.protocol, "--dport", str(self.dport)]
        if self.src_type is not None or self.dst_type is not None:
            words += ["-m", "addrtype"]
            words += ["--src-type", self.src_type] if self.src_type is not None else []
            words += ["--dst-type", self.dst_type] if self.dst_type is not None else []
        if self.ctstate:
            words += ["-m", "conntrack", "--ctstate", ",".join(self.ctstate)]
        if self.comment is not None:
            words += ["-m", "comment", "--comment", self.comment]
        words += ["-j", self.jump]
        if self.jump == "DNAT" and self.to is not None:
            words += ["--to-destination", self.to]
        elif self.jump == "SNAT" and self.to is not None:
            words += ["--to-source", self.to]
        return tuple(words)

    def _verb(self, *verb: str, mutates: bool, ok: frozenset[int] = frozenset({0})) -> Command:
        args = ("-t", self.table, verb[0], self.chain, *verb[1:], *self.body())
        return Command(self.tool, args, mutates=mutates, ok_codes=ok)

    def create_commands(self) -> tuple[Command, ...]:
        if self.insert:
            return self.insert_commands(1)
        return (self._verb("-A", mutates=True),)

    def insert_commands(self, position: int) -> tuple[Command, ...]:
        """``iptables -t TABLE -I CHAIN POSITION ...``: the rule placed at ``position`` (from 1)."""
        return (self._verb("-I", str(position), mutates=True),)

    def delete_commands(self) -> tuple[Command, ...]:
        return (self._verb("-D", mutates=True),)

    def check_command(self) -> Command:
        """``iptables -t TABLE -C ...``: exit 0 present, exit 1 absent."""
        return self._verb("-C", mutates=False, ok=frozenset({0, 1}))

    def needs(self) -> Need:
        return Need(table=self.where)

    def assess(self, state: HostState) -> Assessment:
        """Present when the table lists it (a jump ``insert``-ed: also in its place); a DNAT of the same port
        to somewhere else is a conflict."""
        listed = state.rules.get(self.where)
        if listed is None:
            return missing(f"the {self.where} table was not read")
        if self.insert and state.has_rule(self.where, self.chain, self.body()):
            return self._placed(listed)
        if state.has_rule(self.where, self.chain, self.body()):
            return present(f"the rule is in {self.where} {self.chain}")
        if self.jump == "DNAT":
            for rule in listed:
                if self._same_port(rule) and rule.option("--to-destination") != self.to:
                    elsewhere = rule.option("--to-destination")
                    return conflict(
                        f"{self.protocol} port {self.dport} is already published to {elsewhere} "
                        f"(nat {rule.chain}: {' '.join(rule.words)}), not to {self.to}"
                    )
        return missing(f"the rule is not in {self.where} {self.chain}")

    def _placed(self, listed: tuple[IptablesRule, ...]) -> Assessment:
        """A jump placed first: present only while nothing but netwrap's jumps stands before it (nothing but
        isolation jumps, for an isolation jump: every topology's isolation comes before any accepts)."""
        allowed = _isolates if self.jump.endswith(ISOLATION_SUFFIX) else _leads
        before: list[IptablesRule] = []
        for rule in listed:
            if rule.chain != self.chain:
                continue
            if rule.words == self.body():
                intruder = next((r for r in before if not allowed(r)), None)
                if intruder is None:
                    return present(f"the jump is among the first rules of {self.where} {self.chain}")
                below = " ".join(intruder.words)
                return missing(
                    f"the jump is in {self.where} {self.chain} but below {below}: it is moved back to the top"
                )
            before.append(rule)
        return missing(f"the rule is not in {self.where} {self.chain}")

    def _same_port(self, rule: IptablesRule) -> bool:
        """Whether ``rule`` is a DNAT of this rule's chain for the same protocol, port and an overlapping address."""
        if rule.chain != self.chain or rule.option("-j") != "DNAT" or self.protocol is None:
            return False
        if rule.option("-p") != self.protocol or rule.option("--dport") != str(self.dport):
            return False
        if rule.negated("-d") or rule.negated("--dport"):
            return False
        theirs = rule.option("-d")
        if theirs is None or self.destination is None:
            return True
        try:
            return ipaddress.ip_network(theirs, strict=False).overlaps(self.destination)
        except ValueError:
            return True

    def exists(self, state: HostState) -> bool:
        """Listed anywhere in its chain (in another place too): still ours to remove."""
        return state.has_rule(self.where, self.chain, self.body())

    def plan_commands(self, state: HostState) -> tuple[Command, ...]:
        """Appended; or, a jump, placed first (below the isolation jumps, unless it is one), a misplaced one taken
        out before it is put back."""
        if not self.insert:
            return self.create_commands()
        listed = [r for r in state.rules.get(self.where, ()) if r.chain == self.chain and r.words != self.body()]
        position = 1
        if not self.jump.endswith(ISOLATION_SUFFIX):
            while position <= len(listed) and _isolates(listed[position - 1]):
                position += 1
        place = self.insert_commands(position)
        if state.has_rule(self.where, self.chain, self.body()):
            return (*self.delete_commands(), *place)
        return place

    def removal(self, state: HostState, previous: str | None) -> tuple[tuple[Command, ...], str | None]:
        return (self.delete_commands() if self.exists(state) else ()), None

    def claims(self) -> tuple[Claim, ...]:
        """A DNAT publishes a host port: no other record may publish it too."""
        if self.jump != "DNAT" or self.protocol is None or self.dport is None or self.destination_negated:
            return ()
        return (Claim.port(self.protocol, self.destination, self.dport, self.family or 4),)

    def shared(self) -> bool:
        return True

    def concerns(self, devices: frozenset[str], addresses: frozenset[IPAddress]) -> bool:
        """A jump into netwrap's chains concerns every container; another rule, those whose devices or addresses
        it names."""
        if self.jump.startswith(OWN_PREFIX):
            return True
        if self.in_interface in devices or self.out_interface in devices:
            return True
        networks = [n for n in (self.source, self.destination) if n is not None and n.prefixlen == n.max_prefixlen]
        target = _target_address(self.to) if self.to is not None else None
        return any(a in n for a in addresses for n in networks) or any(a == target for a in addresses)

    def goes_with(self, gone: Gone) -> bool:
        return (self.where, self.chain) in gone.chains  # flushed with its chain


def _leads(rule: IptablesRule) -> bool:
    """Whether ``rule`` is a jump into one of netwrap's chains (they stand first in a built-in chain)."""
    return (rule.option("-j") or "").startswith(OWN_PREFIX)


def _isolates(rule: IptablesRule) -> bool:
    """Whether ``rule`` is a jump into a topology's isolation chain (they stand before every other jump)."""
    return _leads(rule) and (rule.option("-j") or "").endswith(ISOLATION_SUFFIX)


def _nat_table(instance: object, attribute: attrs.Attribute[str], value: object) -> None:
    if value != "nat":
        raise ValidationError(f"{type(instance).__name__}.{attribute.name}", value, "a NatRule is in the nat table")


@attrs.frozen
class NatRule(Rule):
    """A :class:`Rule` of iptables' ``nat`` table (the tutorial's steps 21 and 22)."""

    table: str = attrs.field(default="nat", kw_only=True, validator=_nat_table)

    @classmethod
    def masquerade(cls, source: str, *, not_out: str | None = None, out: str | None = None) -> NatRule:
        """``-s SOURCE ! -o NOT_OUT -j MASQUERADE`` in POSTROUTING (step 21 of the tutorial)."""
        if not_out is not None and out is not None:
            raise ValidationError("NatRule.out_interface", out, "give either out or not_out, not both")
        return cls(
            "POSTROUTING",
            "MASQUERADE",
            source=source,
            out_interface=not_out if not_out is not None else out,
            out_negated=not_out is not None,
        )

    @classmethod
    def publish(
        cls,
        port: int,
        to: str,
        *,
        protocol: Literal["tcp", "udp"] = "tcp",
        not_in: str | None = None,
        chain: str = "PREROUTING",
    ) -> NatRule:
        """``! -i NOT_IN -p PROTO -m PROTO --dport PORT -j DNAT --to-destination TO`` (step 22)."""
        return cls(
            chain,
            "DNAT",
            in_interface=not_in,
            in_negated=not_in is not None,
            protocol=protocol,
            dport=port,
            to=to,
        )
