"""CNI attachments seen and repaired by the command line, and a netwrap CNI network beside the reference plugins'."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from netwrap import Command, Sandbox
from netwrap.cni.plugin import container_name
from netwrap.host import snapshot
from netwrap.host.runner import Result
from netwrap.tutorial.verify import ping

pytestmark = pytest.mark.integration

PLUGIN = str(Path(sys.executable).parent / "netwrap-cni")
REFERENCE = Path("/usr/lib/cni")
ANY = frozenset(range(256))


def _conf(tmp: Path) -> dict[str, Any]:
    return {"cniVersion": "1.0.0", "name": "lab", "type": "netwrap", "subnet": "10.91.0.0/24", "ipMasq": True,
            "dataDir": str(tmp / "data"), "stateDir": str(tmp / "state")}  # fmt: skip


def cni(sandbox: Sandbox, program: str, command: str, cid: str, netns: str, conf: dict[str, Any]) -> Result:
    env = (f"CNI_COMMAND={command}", f"CNI_CONTAINERID={cid}", f"CNI_NETNS={netns}", "CNI_IFNAME=eth0",
           f"CNI_PATH={REFERENCE}")  # fmt: skip
    return sandbox.runner.run(Command("env", (*env, program), input=json.dumps(conf), ok_codes=ANY))


def netwrap(sandbox: Sandbox, *args: str) -> Result:
    return sandbox.runner.run(Command(sys.executable, ("-m", "netwrap", *args), ok_codes=ANY))


def test_status_plan_and_apply_take_a_cni_networks_configuration(sandbox: Sandbox, tmp_path: Path) -> None:
    conf = _conf(tmp_path)
    config = tmp_path / "lab.conflist"
    config.write_text(json.dumps({"cniVersion": "1.0.0", "name": "lab", "plugins": [conf]}))
    before = snapshot.take(sandbox.runner)
    for name in ("a", "b"):
        sandbox.runner.run(Command("ip", ("netns", "add", name)))
        added = cni(sandbox, PLUGIN, "ADD", f"ctr-{name}", f"/run/netns/{name}", conf)
        assert added.returncode == 0, added.stdout
    state = ("-f", str(config), "--state-dir", str(tmp_path / "state"))
    shown = netwrap(sandbox, "status", "--check", *state)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert netwrap(sandbox, "plan", *state).returncode == 0
    # someone removes an address inside a container: status sees it, CHECK reports it, apply repairs it
    sandbox.runner.run(Command("ip", ("-n", "a", "addr", "flush", "dev", "eth0")))
    assert netwrap(sandbox, "status", "--check", *state).returncode == 3
    checked = cni(sandbox, PLUGIN, "CHECK", "ctr-a", "/run/netns/a", conf)
    assert checked.returncode == 1
    assert json.loads(checked.stdout)["code"] == 100
    repaired = netwrap(sandbox, "apply", *state)
    assert repaired.returncode == 0, repaired.stderr
    assert cni(sandbox, PLUGIN, "CHECK", "ctr-a", "/run/netns/a", conf).returncode == 0
    assert ping(sandbox.runner, "10.91.0.3", "a")
    for name in ("a", "b"):
        assert cni(sandbox, PLUGIN, "DEL", f"ctr-{name}", f"/run/netns/{name}", conf).returncode == 0
        sandbox.runner.run(Command("ip", ("netns", "del", name)))
    assert before.explain(snapshot.take(sandbox.runner)) == []


def test_a_netwrap_network_beside_the_reference_plugins_network(sandbox: Sandbox, tmp_path: Path) -> None:
    """Both work side by side; each one's DEL leaves the other's working, and netwrap's leaves nothing."""
    ours = _conf(tmp_path)
    bridge = {"cniVersion": "1.0.0", "name": "ref", "type": "bridge", "bridge": "cni-ref", "isGateway": True,
              "ipMasq": True, "ipam": {"type": "host-local", "subnet": "10.92.0.0/24", "routes": [{"dst": "0.0.0.0/0"}],
                                       "dataDir": str(tmp_path / "ref")}}  # fmt: skip
    for name in ("n1", "n2", "r1", "r2"):
        sandbox.runner.run(Command("ip", ("netns", "add", name)))
    for name in ("r1", "r2"):
        assert cni(sandbox, str(REFERENCE / "bridge"), "ADD", name, f"/run/netns/{name}", bridge).returncode == 0
    with_reference = snapshot.take(sandbox.runner)
    for name in ("n1", "n2"):
        added = cni(sandbox, PLUGIN, "ADD", name, f"/run/netns/{name}", ours)
        assert added.returncode == 0, added.stdout
    assert ping(sandbox.runner, "10.91.0.3", "n1")  # netwrap's containers reach each other
    assert ping(sandbox.runner, "10.92.0.3", "r1")  # and so do the reference plugin's
    # netwrap keeps others out of its network (as Docker's isolation does), the reference network included
    assert not ping(sandbox.runner, "10.91.0.2", "r1", count=2)
    assert cni(sandbox, str(REFERENCE / "bridge"), "DEL", "r2", "/run/netns/r2", bridge).returncode == 0
    assert ping(sandbox.runner, "10.91.0.3", "n1")
    for name in ("n1", "n2"):
        assert cni(sandbox, PLUGIN, "DEL", name, f"/run/netns/{name}", ours).returncode == 0
    assert ping(sandbox.runner, "10.92.0.1", "r1")  # the reference network still works
    after = snapshot.take(sandbox.runner)
    # what netwrap made is gone; the reference plugin's first network is as it was, less r2 (its own DEL)
    gone_with_r2 = ("r2", "10.92.0.3", "'veth', 'cni-ref'")  # its namespace, address and (randomly named) veth
    assert [line for line in with_reference.explain(after) if not any(x in line for x in gone_with_r2)] == []


def test_a_del_never_fails_because_of_another_containers_trouble(sandbox: Sandbox, tmp_path: Path) -> None:
    """Another tool's object in the network's way makes rebuilding it a conflict: a DEL still removes its own
    attachment and succeeds (the review's finding 2), and leaves the other tool's object alone."""
    conf = _conf(tmp_path)
    host_ends = {}
    for name in ("a", "b"):
        sandbox.runner.run(Command("ip", ("netns", "add", name)))
        added = cni(sandbox, PLUGIN, "ADD", f"ctr-{name}", f"/run/netns/{name}", conf)
        assert added.returncode == 0, added.stdout
        host_ends[name] = json.loads(added.stdout)["interfaces"][1]["name"]
    # b's veth on the host is replaced by another tool's device of the same name (a bridge): b cannot be rebuilt
    sandbox.runner.run(Command("ip", ("link", "del", host_ends["b"])))
    sandbox.runner.run(Command("ip", ("link", "add", host_ends["b"], "type", "bridge")))
    config = _config(tmp_path, conf)
    planned = netwrap(sandbox, "plan", "-f", str(config), "--state-dir", str(tmp_path / "state"))
    assert planned.returncode == 1, planned.stdout + planned.stderr  # a conflict: the network cannot be rebuilt
    deleted = cni(sandbox, PLUGIN, "DEL", "ctr-a", "/run/netns/a", conf)
    assert deleted.returncode == 0, deleted.stdout
    inside = sandbox.runner.run(Command("ip", ("-o", "link", "show"), netns="a", mutates=False)).stdout
    assert "eth0" not in inside  # a's own attachment is gone
    listed = sandbox.runner.run(Command("ip", ("netns", "list"), mutates=False)).stdout
    assert container_name("ctr-a", "eth0") not in listed  # and the name netwrap gave its namespace
    kinds = sandbox.runner.run(Command("ip", ("-d", "-o", "link", "show", "dev", host_ends["b"]), mutates=False))
    assert " bridge " in kinds.stdout  # the other tool's device is left alone
    assert cni(sandbox, PLUGIN, "DEL", "ctr-a", "/run/netns/a", conf).returncode == 0  # and again


def _config(tmp: Path, conf: dict[str, Any]) -> Path:
    config = tmp / "lab.conflist"
    config.write_text(json.dumps({"cniVersion": "1.0.0", "name": "lab", "plugins": [conf]}))
    return config
