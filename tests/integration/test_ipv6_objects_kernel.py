"""IPv6 addresses and routes as objects, on the real kernel (the IPv6 issue's first part)."""

from __future__ import annotations

import pytest

from netwrap import (
    Address,
    Bridge,
    BridgePort,
    LinkUp,
    MemoryStore,
    Namespace,
    Route,
    Sandbox,
    VethPair,
    build,
    plan_for,
    teardown,
)
from netwrap.host import snapshot
from netwrap.kinds import NetObject
from netwrap.tutorial.verify import ping

pytestmark = pytest.mark.integration


def _network() -> list[NetObject]:
    objects: list[NetObject] = [Bridge("v6br", tool="ip"), Address("v6br", "fd00:10::1/64"), LinkUp("v6br")]
    for n in (2, 3):
        objects += [
            Namespace(f"c{n}"),
            VethPair(f"v6h{n}", "eth0", peer_netns=f"c{n}"),
            BridgePort("v6br", f"v6h{n}", tool="ip"),
            LinkUp(f"v6h{n}"),
            Address("eth0", f"fd00:10::{n}/64", netns=f"c{n}"),
            LinkUp("eth0", netns=f"c{n}"),
            Route("default", "fd00:10::1", "eth0", netns=f"c{n}"),
            Route("fd00:99::/64", "fd00:10::1", "eth0", netns=f"c{n}"),
        ]
    return objects


def test_ipv6_addresses_answer_at_once_and_routes_are_planned_by_family(sandbox: Sandbox) -> None:
    before = snapshot.take(sandbox.runner)
    store = MemoryStore()
    build(_network(), sandbox.runner, store)
    # usable at once: no duplicate address detection left pending
    assert ping(sandbox.runner, "fd00:10::3", "c2", count=1)
    assert ping(sandbox.runner, "fd00:10::2", None, count=1)
    # a second look finds every object, the IPv6 routes in IPv6's table
    assert plan_for(_network(), sandbox.runner).is_noop
    teardown(sandbox.runner, store)
    assert before.explain(snapshot.take(sandbox.runner)) == []
