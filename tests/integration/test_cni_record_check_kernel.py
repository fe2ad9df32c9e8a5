"""An ADD reads only what it adds or changes and what makes the devices it relies on (engine.check's record
check): on the real kernel that still mends what the new attachment relies on (a bridge deleted by hand comes
back with every port on it) and never touches another attachment."""

from __future__ import annotations

import json

import pytest

from netwrap import Sandbox
from netwrap.cni.plugin import container_name
from netwrap.command import Command
from netwrap.tutorial.verify import ping
from tests.integration.test_cni_conformance_kernel import BRIDGE, NETWORK, STATE_DIR, cni, published, succeeded

pytestmark = pytest.mark.integration


def _ports(sandbox: Sandbox) -> set[str]:
    out = sandbox.runner.run(Command("ip", ("-json", "link", "show", "master", BRIDGE), mutates=False)).stdout
    return {link["ifname"] for link in json.loads(out or "[]")}


def _two_added(sandbox: Sandbox) -> dict[str, str]:
    """Containers a and b added (publishing 8081 and 8082), c's namespace made; a's and b's addresses."""
    for name in ("a", "b", "c"):
        sandbox.runner.run(Command("ip", ("netns", "add", name)))
    added = {}
    for name, port in (("a", 8081), ("b", 8082)):
        call = cni(sandbox, "ADD", published(port), container=name, netns=f"/run/netns/{name}")
        added[name] = succeeded(call).json()["ips"][0]["address"].split("/")[0]
    return added


def test_an_add_beside_a_bridge_deleted_by_hand_brings_it_back_with_every_port(sandbox: Sandbox) -> None:
    added = _two_added(sandbox)
    before = _ports(sandbox)
    assert len(before) == 2
    sandbox.runner.run(Command("ip", ("link", "del", BRIDGE)))
    succeeded(cni(sandbox, "ADD", published(8083), container="c", netns="/run/netns/c"))
    after = _ports(sandbox)
    assert before < after and len(after) == 3  # the two older ports plugged back in, and the new one
    assert ping(sandbox.runner, added["a"], "c") and ping(sandbox.runner, added["b"], "c")


def test_an_add_leaves_another_attachments_insides_alone(sandbox: Sandbox) -> None:
    for name in ("a", "b"):
        sandbox.runner.run(Command("ip", ("netns", "add", name)))
    first = succeeded(cni(sandbox, "ADD", published(8081), container="a", netns="/run/netns/a")).json()
    sandbox.runner.run(Command("ip", ("route", "flush", "default"), netns="a"))  # a's own business, say
    succeeded(cni(sandbox, "ADD", published(8082), container="b", netns="/run/netns/b"))
    routes = sandbox.runner.run(Command("ip", ("route", "show", "default"), netns="a", mutates=False)).stdout
    assert routes.strip() == ""  # not read, not changed: only CHECK and a repeated ADD look inside it
    assert first["ips"]
    check = cni(sandbox, "CHECK", published(8081), container="a", netns="/run/netns/a")
    assert check.returncode != 0 and "route" in check.stdout  # and CHECK does see it


def test_an_add_beside_a_container_whose_veth_was_deleted_by_hand_leaves_it_to_its_own_calls(
    sandbox: Sandbox,
) -> None:
    """Another container's trouble is not this ADD's: it reads the bridge the new port joins, not the other
    ports on it, so it neither fails on a port whose veth is gone (deleted inside its container) nor rebuilds
    it behind that container's back. CHECK of that container says so; its DEL and ADD make it whole."""
    added = _two_added(sandbox)
    sandbox.runner.run(Command("ip", ("link", "del", "eth0"), netns="a"))
    assert len(_ports(sandbox)) == 1
    succeeded(cni(sandbox, "ADD", published(8083), container="c", netns="/run/netns/c"))
    assert len(_ports(sandbox)) == 2  # b's and c's
    assert ping(sandbox.runner, added["b"], "c")
    check = cni(sandbox, "CHECK", published(8081), container="a", netns="/run/netns/a")
    assert check.returncode != 0 and "veth" in check.stdout
    succeeded(cni(sandbox, "DEL", published(8081), container="a", netns="/run/netns/a"))  # gone: taken for done
    again = succeeded(cni(sandbox, "ADD", published(8081), container="a", netns="/run/netns/a")).json()
    assert len(_ports(sandbox)) == 3
    assert ping(sandbox.runner, again["ips"][0]["address"].split("/")[0], "c")
    succeeded(cni(sandbox, "CHECK", published(8081), container="a", netns="/run/netns/a"))


def test_a_del_after_netwraps_name_for_the_namespace_was_removed_by_hand_still_removes_the_interface(
    sandbox: Sandbox,
) -> None:
    """Someone ran `ip netns del` on netwrap's name while the container lives: the DEL cannot enter it, looks,
    and removes the veth through its host end (netwrap's by its MAC and link group), so that the address it
    frees is on no interface any more."""
    from netwrap.cni.plugin import container_name  # noqa: PLC0415

    added = _two_added(sandbox)
    sandbox.runner.run(Command("ip", ("netns", "del", container_name("a", "eth0"))))
    succeeded(cni(sandbox, "DEL", published(8081), container="a", netns="/run/netns/a"))
    assert len(_ports(sandbox)) == 1  # b's
    inside = sandbox.runner.run(Command("ip", ("-o", "addr", "show"), netns="a", mutates=False)).stdout
    assert added["a"] not in inside  # nor is the address left on the container's side
    assert ping(sandbox.runner, added["b"], None)


def test_a_link_that_leads_nowhere_under_netwraps_name_for_a_new_attachment_is_a_conflict(sandbox: Sandbox) -> None:
    """Another tool's symbolic link where netwrap would name the new container's namespace: a name, as `ip netns
    list` lists it, and not netwrap's; the ADD changes nothing, follows nothing, and says so."""
    _two_added(sandbox)
    name = container_name("c", "eth0")
    sandbox.runner.run(Command("mkdir", ("-p", "/run/elsewhere")))
    sandbox.runner.run(Command("ln", ("-s", "/run/elsewhere/x", f"/run/netns/{name}")))
    before = _ports(sandbox)
    call = cni(sandbox, "ADD", published(8083), container="c", netns="/run/netns/c")
    assert call.returncode != 0 and name in call.stdout, call.show()
    assert _ports(sandbox) == before
    listed = sandbox.runner.run(Command("ls", ("-A", "/run/elsewhere"), mutates=False)).stdout
    assert listed.strip() == ""  # nothing made at the link's end, nothing mounted there
    link = sandbox.runner.run(Command("readlink", (f"/run/netns/{name}",), mutates=False)).stdout
    assert link.strip() == "/run/elsewhere/x"  # and the link is left as it was


def test_an_add_after_a_record_from_before_its_del_was_put_back_builds_the_attachment(sandbox: Sandbox) -> None:
    """A record restored by hand from before a container's DEL says its objects were made: a new lease's ADD
    does not trust that, reads everything, and builds the container whole."""
    _two_added(sandbox)
    succeeded(cni(sandbox, "ADD", published(8083), container="c", netns="/run/netns/c"))
    record = f"{STATE_DIR}/topology-cni-{NETWORK}.json"
    sandbox.runner.run(Command("cp", ("-p", record, "/run/record.old")))
    succeeded(cni(sandbox, "DEL", published(8083), container="c", netns="/run/netns/c"))
    sandbox.runner.run(Command("cp", ("-p", "/run/record.old", record)))
    added = succeeded(cni(sandbox, "ADD", published(8083), container="c", netns="/run/netns/c")).json()
    succeeded(cni(sandbox, "CHECK", published(8083), container="c", netns="/run/netns/c"))
    assert ping(sandbox.runner, added["ips"][0]["address"].split("/")[0], "a")


def test_a_plain_file_under_netwraps_name_for_a_new_attachment_is_a_conflict_that_names_it(sandbox: Sandbox) -> None:
    _two_added(sandbox)
    name = container_name("c", "eth0")
    sandbox.runner.run(Command("touch", (f"/run/netns/{name}",)))
    before = _ports(sandbox)
    call = cni(sandbox, "ADD", published(8083), container="c", netns="/run/netns/c")
    assert call.returncode != 0 and f"{name} names another namespace" in call.stdout, call.show()
    assert "reassociate" not in call.stdout  # the conflict, not the tool's words
    assert _ports(sandbox) == before
