"""ip6tables on the real kernel: an IPv6 chain and jumps beside IPv4's, built, found as built, edited in place
and removed, leaving the sandbox as it was (ip6tables tables in the snapshot)."""

from __future__ import annotations

import pytest

from netwrap import MemoryStore, OwnedChain, Rule, Sandbox, build, teardown
from netwrap.engine.plan import plan
from netwrap.host import snapshot
from netwrap.host.observe import observe
from netwrap.kinds import NatRule, NetObject

pytestmark = pytest.mark.integration


def _objects(ports: tuple[int, ...]) -> list[NetObject]:
    dnat6 = [
        Rule("NETWRAP-T6", "DNAT", protocol="tcp", dport=p, to=f"[fd00:10::{p % 100 + 2:x}]:80", table="nat")
        for p in ports
    ]
    dnat4 = [Rule("NETWRAP-T6", "DNAT", protocol="tcp", dport=p, to=f"10.0.0.{p % 100 + 2}:80", table="nat")
             for p in ports]  # fmt: skip
    return [
        OwnedChain("NETWRAP-T6", "nat", dnat6, family=6),
        OwnedChain("NETWRAP-T6", "nat", dnat4),
        NatRule("PREROUTING", "NETWRAP-T6", dst_type="LOCAL", insert=True, family=6),
        NatRule("PREROUTING", "NETWRAP-T6", dst_type="LOCAL", insert=True),
        NatRule.masquerade("fd00:10::/64", not_out="br6"),
        Rule("FORWARD", "DROP", source="fd00:10::/64", destination="fd00:20::/64"),
    ]


def test_ipv6_rules_beside_ipv4_ones_build_edit_and_go(sandbox: Sandbox) -> None:
    empty = snapshot.take(sandbox.runner)
    store = MemoryStore()
    build(_objects((8080, 8081)), sandbox.runner, store, mode="batch")
    taken = snapshot.take(sandbox.runner)
    assert any("[fd00:10::52]:80" in " ".join(rules) for _, _, rules in taken.nat6_table)
    assert plan(_objects((8080, 8081)), observe(sandbox.runner, _objects((8080, 8081)))).is_noop
    build(_objects((8080, 8082, 8081)), sandbox.runner, store, mode="batch")  # a port in between: edited
    now = _objects((8080, 8082, 8081))
    assert plan(now, observe(sandbox.runner, now)).is_noop
    teardown(sandbox.runner, store, mode="batch")
    assert snapshot.take(sandbox.runner) == empty, "\n".join(empty.explain(snapshot.take(sandbox.runner)))
