"""netwrap-cni on a dual-stack network, on the real kernel: ADD gives an address and a default route of each
family (in the result and in the namespace), containers reach each other over IPv6, a published port answers
on the host's IPv6 address, and the last DEL leaves the sandbox as it was."""

from __future__ import annotations

import pytest

from netwrap import Sandbox
from netwrap.command import Command
from netwrap.host import snapshot
from netwrap.tutorial.verify import ping, tcp_probe
from tests.integration.test_cni_conformance_kernel import BRIDGE, cni, conf, succeeded
from tests.integration.test_ipv6_topology_kernel import link_local

pytestmark = pytest.mark.integration


def _dual(port: int) -> dict[str, object]:
    mapping = {"hostPort": port, "containerPort": 80, "protocol": "tcp"}
    ranges = [[{"subnet": "10.89.0.0/24"}], [{"subnet": "fd00:89::/64"}]]
    return conf(subnet=None, ipam={"type": "host-local", "ranges": ranges}, runtimeConfig={"portMappings": [mapping]})


def test_a_dual_stack_network_of_the_plugin(sandbox: Sandbox) -> None:
    for name in ("a", "b"):
        sandbox.runner.run(Command("ip", ("netns", "add", name)))
    sandbox.runner.run(Command("ip", ("link", "set", "lo", "up")))
    # a runtime whose namespaces start their devices without IPv6: the plugin turns it on for its own device
    sandbox.runner.run(Command("sysctl", ("-w", "net.ipv6.conf.default.disable_ipv6=1"), netns="b"))
    empty = snapshot.take(sandbox.runner)
    results = {
        name: succeeded(cni(sandbox, "ADD", _dual(port), container=name, netns=f"/run/netns/{name}")).json()
        for name, port in (("a", 8081), ("b", 8082))
    }
    address = link_local(sandbox.runner, BRIDGE)  # the bridge's, usable at once: a published port answers
    assert not address.get("tentative"), address
    a = results["a"]
    assert [ip["address"] for ip in a["ips"]] == ["10.89.0.2/24", "fd00:89::2/64"]
    assert {"dst": "::/0", "gw": "fd00:89::1"} in a["routes"]
    shown = sandbox.runner.run(Command("ip", ("-6", "route", "show", "default"), netns="a", mutates=False)).stdout
    assert "via fd00:89::1" in shown
    assert ping(sandbox.runner, "fd00:89::3", "a")
    sandbox.runner.run(Command("ip", ("addr", "add", "2001:db8::1/64", "dev", "lo")))  # the host's own address
    assert tcp_probe(sandbox.runner, "b", None, "2001:db8::1", 8082, listen_port=80)[0]
    assert tcp_probe(sandbox.runner, "b", "a", "2001:db8::1", 8082, listen_port=80)[0]
    sandbox.runner.run(Command("ip", ("addr", "del", "2001:db8::1/64", "dev", "lo")))
    for name, port in (("a", 8081), ("b", 8082)):
        succeeded(cni(sandbox, "DEL", _dual(port), container=name, netns=f"/run/netns/{name}"))
    after = snapshot.take(sandbox.runner)
    assert after == empty, "\n".join(empty.explain(after))
