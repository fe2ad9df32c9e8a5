"""A network configuration edited between calls (a runtime hands each call the configuration as it is then):
once the next call is over, the host is what the new configuration makes from the start, snapshot for snapshot,
for the attachments added before the edit too."""

from __future__ import annotations

import json
from typing import Any

import pytest

from netwrap import Sandbox
from netwrap.command import Command
from netwrap.host import snapshot
from tests.integration.test_cni_conformance_kernel import cni, published, succeeded

pytestmark = pytest.mark.integration

CONTAINERS = (("a", 8081), ("b", 8082), ("c", 8083))


def _config(port: int, *changes: dict[str, Any]) -> dict[str, Any]:
    """The configuration publishing ``port``, with ``changes`` made in turn (a key set to None: taken out)."""
    config = published(port)
    for change in changes:
        config |= change
    return {key: value for key, value in config.items() if value is not None}


def _added(
    sandbox: Sandbox, edit: dict[str, Any], edited_from: int, only: int = len(CONTAINERS), before: Any = None
) -> tuple[snapshot.Snapshot, dict[str, Any]]:
    """The namespaces a, b and c made, the first ``only`` of them added in turn with the configuration ``before``
    changes, edited from the ``edited_from``-th call on; the host after, and its devices (see :func:`_devices`)."""
    for name, _ in CONTAINERS:
        sandbox.runner.run(Command("ip", ("netns", "add", name)))
    for number, (name, port) in enumerate(CONTAINERS[:only]):
        config = _config(port, before or {}, edit if number >= edited_from else {})
        succeeded(cni(sandbox, "ADD", config, container=name, netns=f"/run/netns/{name}"))
    return snapshot.take(sandbox.runner), _devices(sandbox)


def _devices(sandbox: Sandbox) -> dict[str, Any]:
    """Each device's MTU and MAC (which a snapshot leaves out), by namespace."""
    devices = {}
    for netns in (None, *(name for name, _ in CONTAINERS)):
        shown = sandbox.runner.run(Command("ip", ("-json", "link", "show"), netns=netns, mutates=False)).stdout
        devices[netns or ""] = sorted((x["ifname"], x["mtu"], x.get("address")) for x in json.loads(shown))
    return devices


V6 = {"subnet6": "fd00:89::/64"}


@pytest.mark.parametrize(
    ("before", "edit"),
    [
        pytest.param({}, {"mtu": 1400}, id="mtu"),
        pytest.param({}, {"ipMasq": False}, id="ipMasq-off"),
        pytest.param({}, {"mtu": 1280, "ipMasq": False, "hairpinMode": True}, id="several"),
        pytest.param({}, V6, id="ipv6-added"),  # the attachments of before take IPv6 addresses, in their order
        pytest.param(V6, {"subnet6": None}, id="ipv6-taken-away"),
        pytest.param({}, {"subnet": "10.89.7.0/24"}, id="subnet-moved"),  # the attachments of before move with it
        pytest.param({"mtu": 1400}, {"mtu": None}, id="mtu-taken-away"),
    ],
)
def test_an_add_after_an_edit_leaves_the_host_as_the_new_configuration_makes_it(
    sandbox: Sandbox, before: dict[str, Any], edit: dict[str, Any]
) -> None:
    edited, its_devices = _added(sandbox, edit, edited_from=2, before=before)
    with Sandbox() as fresh:
        made, devices = _added(fresh, edit, edited_from=0, before=before)
    assert edited.explain(made) == []
    assert its_devices == devices


def test_a_del_after_an_edit_leaves_the_host_as_the_new_configuration_makes_the_rest(sandbox: Sandbox) -> None:
    edit = {"mtu": 1400, "ipMasq": False}
    _added(sandbox, {}, edited_from=3)
    succeeded(cni(sandbox, "DEL", published(8083) | edit, container="c", netns="/run/netns/c"))
    after = snapshot.take(sandbox.runner), _devices(sandbox)
    with Sandbox() as fresh:
        _added(fresh, edit, edited_from=0, only=2)
        made = snapshot.take(fresh.runner), _devices(fresh)
    assert after[0].explain(made[0]) == []
    assert after[1] == made[1]
