"""Chains of netwrap's own in an iptables table: one made by hand, or one written whole."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Self

import attrs

from netwrap.command import Command
from netwrap.errors import ValidationError
from netwrap.host.observe import HostState, Need
from netwrap.kinds.base import Assessment, Claim, Gone, Kind, NetObject, missing, present
from netwrap.kinds.rules import BUILTIN_CHAINS, InTable, Rule, check_chain_name, check_table
from netwrap.validate import IPAddress


@attrs.frozen
class Chain(Kind):
    """A chain of netwrap's own in an iptables table: ``iptables -t filter -N NAME`` (its rules are objects of
    their own; what netwrap makes now is an :class:`OwnedChain`, and this is kept for the records of before)."""

    name: str
    table: str = attrs.field(default="filter", validator=check_table)

    def __attrs_post_init__(self) -> None:
        check_chain_name("Chain.name", self.name, self.table)
        if self.name in BUILTIN_CHAINS:
            raise ValidationError("Chain.name", self.name, "is a built-in chain")

    @functools.cached_property
    def key(self) -> str:
        return f"chain:{self.table}:{self.name}"

    def create_commands(self) -> tuple[Command, ...]:
        return (Command("iptables", ("-t", self.table, "-N", self.name)),)

    def delete_commands(self) -> tuple[Command, ...]:
        """Flush, then delete: a chain must be empty (and unreferenced) to go."""
        return (
            Command("iptables", ("-t", self.table, "-F", self.name)),
            Command("iptables", ("-t", self.table, "-X", self.name)),
        )

    def check_command(self) -> Command:
        return Command("iptables", ("-t", self.table, "-S"), mutates=False)

    def needs(self) -> Need:
        return Need(table=self.table)

    def assess(self, state: HostState) -> Assessment:
        if self.name in state.chains.get(self.table, ()):
            return present(f"chain {self.name} exists in {self.table}")
        return missing(f"chain {self.name} does not exist in {self.table}")

    def claims(self) -> tuple[Claim, ...]:
        return (Claim("chain", self.table, self.name),)

    def shared(self) -> bool:
        return True

    def takes_along(self) -> Gone:
        return Gone(chains=frozenset({(self.table, self.name)}))


def _to_rules(value: Sequence[Rule]) -> tuple[Rule, ...]:
    if isinstance(value, list | tuple):
        return tuple(value)
    return value  # type: ignore[return-value]  # anything else is refused, naming the field, after construction


def _restore_rule(rule: Rule, verb: str = "-A", position: int | None = None) -> str:
    """One rule as an ``iptables-restore`` line: words split on white space, so a comment is quoted."""
    where = (verb, rule.chain) if position is None else (verb, rule.chain, str(position))
    return " ".join((*where, *(f'"{w}"' if " " in w else w for w in rule.body())))


def _common(listed: list[tuple[str, ...]], wanted: list[tuple[str, ...]]) -> dict[int, int]:
    """A longest common subsequence of the two, as ``{index in listed: index in wanted}``: the common start
    and end first (an edit usually touches one place), then the classic table over what is left between."""
    start = 0
    while start < min(len(listed), len(wanted)) and listed[start] == wanted[start]:
        start += 1
    end = 0
    while end < min(len(listed), len(wanted)) - start and listed[-1 - end] == wanted[-1 - end]:
        end += 1
    pairs = {i: i for i in range(start)}
    pairs |= {len(listed) - 1 - k: len(wanted) - 1 - k for k in range(end)}
    a, b = listed[start : len(listed) - end], wanted[start : len(wanted) - end]
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) - 1, -1, -1):
        for j in range(len(b) - 1, -1, -1):
            table[i][j] = table[i + 1][j + 1] + 1 if a[i] == b[j] else max(table[i + 1][j], table[i][j + 1])
    i = j = 0
    while i < len(a) and j < len(b):
        if a[i] == b[j]:
            pairs[start + i] = start + j
            i, j = i + 1, j + 1
        elif table[i + 1][j] >= table[i][j + 1]:
            i += 1
        else:
            j += 1
    return pairs


def edit_lines(chain: str, listed: Sequence[tuple[str, ...]], wanted: Sequence[Rule]) -> list[str]:
    """The fewest ``iptables-restore`` lines that turn a chain listing ``listed`` into ``wanted``, in order:
    the rules to go deleted by position, highest first, then the rules to come inserted at their place, lowest
    first. Nothing that stays is touched (no flush): adding a container's rules deletes nothing, and a
    transaction that deletes nothing is several times cheaper for the kernel (no wait for a grace period)."""
    bodies = [rule.body() for rule in wanted]
    kept = _common(list(listed), bodies)
    doomed = [i for i in range(len(listed)) if i not in kept]
    staying = set(kept.values())
    coming = [j for j in range(len(bodies)) if j not in staying]
    if not doomed and not coming:
        return []
    lines = [f"-D {chain} {i + 1}" for i in sorted(doomed, reverse=True)]
    length = len(listed) - len(doomed)
    for j in coming:  # ascending: every rule before j is in place when j goes in
        lines.append(_restore_rule(wanted[j]) if j == length else _restore_rule(wanted[j], "-I", j + 1))
        length += 1
    return lines


@attrs.frozen
class OwnedChain(InTable, Kind):
    """A chain of netwrap's own and its whole, ordered list of rules: one object.

    The host either lists exactly these rules in this order, or one atomic
    ``iptables-restore --noflush`` transaction makes it so: a chain not there
    is written whole (``:NAME - [0:0]`` creates it, then its rules follow), as
    kube-proxy does with its chains; one that differs is edited in place, the
    rules to go deleted and the rules to come inserted at their place (see
    :func:`edit_lines`). Appending one rule to an ordered chain is how an edit
    silently breaks isolation; this cannot.
    """

    written_whole: ClassVar[bool] = True  # see plan_commands: a table not read means the chain is written whole
    made: ClassVar[bool] = True

    name: str
    table: str = attrs.field(default="filter", validator=check_table)
    rules: tuple[Rule, ...] = attrs.field(default=(), converter=_to_rules)
    family: int | None = attrs.field(default=4, kw_only=True)  # 4: iptables; 6: ip6tables (its rules IPv6's)

    def __attrs_post_init__(self) -> None:
        check_chain_name("OwnedChain.name", self.name, self.table)
        if self.family not in (4, 6):
            raise ValidationError("OwnedChain.family", self.family, "must be 4 (iptables) or 6 (ip6tables)")
        if self.name in BUILTIN_CHAINS:
            raise ValidationError("OwnedChain.name", self.name, "is a built-in chain")
        if not isinstance(self.rules, tuple):
            raise ValidationError("OwnedChain.rules", self.rules, "must be a list of Rule objects")
        for number, rule in enumerate(self.rules):
            if not isinstance(rule, Rule):
                raise ValidationError(f"OwnedChain.rules[{number}]", rule, "is not a Rule")
            if rule.chain != self.name or rule.table != self.table:
                raise ValidationError(
                    f"OwnedChain.rules[{number}]",
                    rule.key,
                    f"belongs to {rule.table} {rule.chain}, not {self.table} {self.name}",
                )
            if rule.family != self.family:
                raise ValidationError(
                    f"OwnedChain.rules[{number}]", rule.key, f"is an IPv{rule.family} rule in an IPv{self.family} chain"
                )

    @functools.cached_property
    def key(self) -> str:
        return f"chain:{self.where}:{self.name}"

    def bodies(self) -> tuple[tuple[str, ...], ...]:
        """The rules' bodies, in order: what ``iptables -S`` must list for this chain."""
        return tuple(rule.body() for rule in self.rules)

    def restore_text(self) -> str:
        """The ``iptables-restore --noflush`` input that makes the chain exactly this."""
        lines = [f"*{self.table}", f":{self.name} - [0:0]", *(_restore_rule(rule) for rule in self.rules), "COMMIT"]
        return "\n".join(lines) + "\n"

    def create_commands(self) -> tuple[Command, ...]:
        """One transaction: the chain made or flushed, and every rule in order (create and rewrite alike)."""
        return (Command(f"{self.tool}-restore", ("--noflush",), input=self.restore_text()),)

    def plan_commands(self, state: HostState) -> tuple[Command, ...]:
        """A chain that is there but differs is edited in one transaction (see :func:`edit_lines`), a rule
        deleted or inserted at its place; one that is not there, or with rules of our rules' chain read
        nowhere, is written whole."""
        where = self.where
        if where not in state.rules or self.name not in state.chains.get(where, ()) or not self.rules:
            return self.create_commands()
        listed = [rule.words for rule in state.rules[where] if rule.chain == self.name]
        lines = edit_lines(self.name, listed, self.rules)
        if not lines:
            return self.create_commands()
        text = "\n".join([f"*{self.table}", *lines, "COMMIT"]) + "\n"
        return (Command(f"{self.tool}-restore", ("--noflush",), input=text),)

    def delete_commands(self) -> tuple[Command, ...]:
        """Flush, then delete: a chain must be empty (and unreferenced) to go."""
        return (
            Command(self.tool, ("-t", self.table, "-F", self.name)),
            Command(self.tool, ("-t", self.table, "-X", self.name)),
        )

    def check_command(self) -> Command:
        return Command(self.tool, ("-t", self.table, "-S", self.name), mutates=False)

    def needs(self) -> Need:
        return Need(table=self.where)

    def assess(self, state: HostState) -> Assessment:
        """Present only when the chain lists exactly the wanted rules, in order; anything else mends it."""
        where = self.where
        if where not in state.rules:
            return missing(f"the {where} table was not read")
        if self.name not in state.chains.get(where, ()):
            return missing(f"chain {self.name} does not exist in {where}")
        listed = tuple(rule.words for rule in state.rules[where] if rule.chain == self.name)
        wanted = self.bodies()
        if listed == wanted:
            return present(f"chain {self.name} in {where} holds its {len(wanted)} rule(s) in order")
        known, asked = set(listed), set(wanted)  # a hundred rules each: looked up, not searched
        extra = [" ".join(w) for w in listed if w not in asked]
        lacking = [" ".join(w) for w in wanted if w not in known]
        if extra or lacking:
            detail = "; ".join(
                part
                for part in (
                    f"{len(lacking)} missing (first: {lacking[0]})" if lacking else "",
                    f"{len(extra)} not wanted (first: {extra[0]})" if extra else "",
                )
                if part
            )
        else:
            detail = "its rules are in another order"
        return missing(f"chain {self.name} in {where} differs: {detail}; it is edited in place")

    def exists(self, state: HostState) -> bool:
        """There in any form: a chain that differs is still ours to remove."""
        return self.name in state.chains.get(self.where, ())

    def removal(self, state: HostState, previous: str | None) -> tuple[tuple[Command, ...], str | None]:
        return (self.delete_commands() if self.exists(state) else ()), None

    def concerns(self, devices: frozenset[str], addresses: frozenset[IPAddress]) -> bool:
        """When one of its rules does."""
        return any(rule.concerns(devices, addresses) for rule in self.rules)

    def claims(self) -> tuple[Claim, ...]:
        """Its name, and the host ports its DNAT rules publish."""
        return (Claim("chain", self.where, self.name), *(c for rule in self.rules for c in rule.claims()))

    def shared(self) -> bool:
        return True

    def takes_along(self) -> Gone:
        return Gone(chains=frozenset({(self.where, self.name)}))

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any], rebuild: Callable[[object], NetObject]) -> Self:
        """Its rules are described in full in a record, each rebuilt (and validated) on its own."""
        described = dict(fields)
        if isinstance(described.get("rules"), list):
            described["rules"] = tuple(rebuild(rule) for rule in described["rules"])  # each checked: a Rule
        return cls(**described)
