"""``netwrap-cni`` under real CNI clients, inside a sandbox: Podman 4 (CNI backend) and containerd's ``ctr run
--cni`` call it with a configuration list whose one plugin is ``type: netwrap``, found as ``netwrap`` in the
plugin directory they are given (see ``runtimes.py``).

Podman: two busybox httpd containers publishing ports answer real TCP from a simulated remote machine (the
tutorial's outside namespace, 192.0.2.2, through the host's uplink 192.0.2.1), from the host, on 127.0.0.1 and
from each other; ``podman stop`` and ``rm`` call DEL, and the sandbox's network is then exactly as before (Podman
itself leaves nothing there: see ``test_runtimes_harness_kernel.py``).
containerd: ``ctr run --cni`` calls ADD with ``CNI_NETNS=/proc/PID/ns/net`` and, when the task is gone, DEL with
no ``CNI_NETNS``; a container removed without any DEL is cleaned up by a GC (run here as a runtime would, with
``cni.dev/valid-attachments`` listing no attachment).
Traffic goes only to addresses in namespaces the tests made.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from netwrap import Command, Sandbox
from netwrap.host.snapshot import Snapshot, take
from netwrap.tutorial.verify import HOST_UPLINK_ADDRESS, OUTSIDE, OUTSIDE_ADDRESS, ping
from tests.integration.conftest import stop_helpers
from tests.integration.dockerd import sandbox_processes
from tests.integration.runtimes import Container, Containerd, Podman, addresses, http_get, make_plugin_dir

pytestmark = pytest.mark.integration

PLUGIN = Path(sys.executable).with_name("netwrap-cni")  # the console script; its shebang is this venv's python
DATA_DIR = "/run/cnidata"  # inside the sandbox's own /run
STATE_DIR = "/run/netwrap-cni-state"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
HOST_PATHS = ("/var/lib/netwrap", "/run/netwrap", "/run/cnidata", "/run/netwrap-cni-state", "/run/netns")


def plugin_config(subnet: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "netwrap",
        "subnet": subnet,
        "ipMasq": True,
        "dataDir": DATA_DIR,
        "stateDir": STATE_DIR,
        "capabilities": {"portMappings": True},
    } | extra


def write_conflist(directory: Path, name: str, subnet: str) -> dict[str, Any]:
    """``NAME.conflist`` in ``directory``: one plugin, netwrap; its execution configuration as a runtime passes
    it (with the list's ``cniVersion`` and ``name``, without ``capabilities``)."""
    directory.mkdir(parents=True, exist_ok=True)
    plugin = plugin_config(subnet)
    (directory / f"{name}.conflist").write_text(
        json.dumps({"cniVersion": "1.0.0", "name": name, "plugins": [plugin]}, indent=2)
    )
    execution = {key: value for key, value in plugin.items() if key != "capabilities"}  # a runtime removes it
    return {"cniVersion": "1.0.0", "name": name} | execution


def recording_plugin(directory: Path, log: Path) -> Path:
    """A plugin directory whose ``netwrap`` notes each call's ``CNI_COMMAND CNI_CONTAINERID CNI_NETNS CNI_IFNAME``
    (an empty one as ``-``) in ``log`` and then execs ``netwrap-cni`` (same stdin, stdout and exit)."""
    wrapper = directory.parent / f"{directory.name}-netwrap.sh"
    wrapper.parent.mkdir(parents=True, exist_ok=True)
    wrapper.write_text(
        "#!/bin/sh\n"
        f'printf \'%s %s %s %s\\n\' "$CNI_COMMAND" "${{CNI_CONTAINERID:--}}" "${{CNI_NETNS:--}}" '
        f'"${{CNI_IFNAME:--}}" >> {log}\n'
        f'exec {PLUGIN} "$@"\n'
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return make_plugin_dir(directory, extra={"netwrap": wrapper})


def calls(log: Path) -> list[tuple[str, str, str, str]]:
    if not log.exists():
        return []
    found = [tuple(line.split()) for line in log.read_text().splitlines() if line.strip()]
    return [(c[0], c[1], c[2], c[3]) for c in found if len(c) == 4]


def run_plugin(sandbox: Sandbox, command: str, config: dict[str, Any], **env: str) -> subprocess.CompletedProcess[str]:
    """The plugin run inside the sandbox as a runtime runs it."""
    sandbox.check_alive()
    variables = {"PATH": SYSTEM_PATH, "CNI_COMMAND": command, "CNI_PATH": "/opt/cni/bin"} | env
    return subprocess.run(
        [*sandbox.prefix, str(PLUGIN)],
        input=json.dumps(config),
        env=variables,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def pings_from(sandbox: Sandbox, container: Container, target: str) -> bool:
    """Whether ``target`` answers ICMP echo from inside ``container``'s network namespace."""
    argv = (f"--net={container.netns}", "ping", "-c", "3", "-i", "0.2", "-W", "1", "-q", target)
    return sandbox.runner.run(Command("nsenter", argv, mutates=False, ok_codes=frozenset({0, 1}))).returncode == 0


def neighbour(sandbox: Sandbox, address: str, container: Container | None = None) -> str:
    """``ip neigh show ADDRESS`` on the host, or inside ``container``."""
    argv: tuple[str, ...] = ("ip", "neigh", "show", address)
    if container is not None:
        argv = ("nsenter", f"--net={container.netns}", *argv)
    return sandbox.runner.run(Command(argv[0], argv[1:], mutates=False)).stdout.strip()


def mac(sandbox: Sandbox, container: Container) -> str:
    shown = sandbox.runner.run(
        Command("nsenter", (f"--net={container.netns}", "ip", "-json", "link", "show", "eth0"), mutates=False)
    )
    return str(json.loads(shown.stdout)[0]["address"])


def nat_rules(sandbox: Sandbox) -> str:
    return sandbox.runner.run(Command("iptables-save", ("-t", "nat"), mutates=False)).stdout


def named_namespaces(sandbox: Sandbox) -> set[str]:
    listed = sandbox.runner.run(Command("ip", ("netns", "list"), mutates=False)).stdout
    return {line.split()[0] for line in listed.splitlines() if line.strip()}


def host_links(sandbox: Sandbox) -> dict[str, dict[str, Any]]:
    listed = json.loads(sandbox.runner.run(Command("ip", ("-json", "link", "show"), mutates=False)).stdout)
    return {x["ifname"]: x for x in listed}


def assert_same(before: Snapshot, sandbox: Sandbox) -> None:
    diff = before.explain(take(sandbox.runner))
    assert diff == [], "the sandbox's network is not as it was:\n" + "\n".join(diff)


def assert_nothing_runs(sandbox: Sandbox) -> None:
    """Nothing the runtime started is left; the plugin's warm helper (which stays by design) is stopped by pid
    first, and only it."""
    stop_helpers(os.stat(f"/proc/{sandbox.pid}/ns/net").st_ino)
    left = [str(p) for p in sandbox_processes(sandbox)]
    assert left == [], f"processes left in the sandbox: {left}"


def inode(path: str) -> int:
    return os.stat(path).st_ino


def host_listing() -> list[tuple[str, bool]]:
    return [(path, os.path.lexists(path)) for path in HOST_PATHS]


@pytest.fixture(autouse=True)
def host_untouched() -> Iterator[None]:
    """The plugin writes its leases and records in the sandbox's /run only: nothing appears on the host."""
    before = host_listing()
    yield
    assert host_listing() == before


# Podman ---------------------------------------------------------------------------------------------------------


def test_podman_runs_two_published_httpd_containers_on_a_netwrap_network(
    sandbox: Sandbox, tmp_path: Path, outside: Sandbox
) -> None:
    config_dir = tmp_path / "cni-config"
    write_conflist(config_dir, "nwpod", "10.89.10.0/24")
    plugins = make_plugin_dir(tmp_path / "plugins", extra={"netwrap": PLUGIN})
    before = take(sandbox.runner)
    with Podman(sandbox, tmp_path / "podman", cni_plugin_dir=plugins, cni_config_dir=config_dir) as podman:
        p1 = podman.run_httpd("p1", network="nwpod", publish=["8080:80"])
        p2 = podman.run_httpd("p2", network="nwpod", publish=["8081:80"])
        a1, a2 = podman.address("p1"), podman.address("p2")
        assert a1.startswith("10.89.10.") and a2.startswith("10.89.10.") and a1 != a2, (a1, a2)
        assert addresses(sandbox, p1) == [a1] and addresses(sandbox, p2) == [a2]
        outside_ns = f"/run/netns/{OUTSIDE}"
        for container, port in ((p1, 8080), (p2, 8081)):
            page = container.page
            # a remote machine, through the host's uplink
            assert http_get(sandbox, f"http://{HOST_UPLINK_ADDRESS}:{port}/", netns=outside_ns) == page
            # the host: its own address, its loopback, the container's address
            assert http_get(sandbox, f"http://{HOST_UPLINK_ADDRESS}:{port}/") == page
            assert http_get(sandbox, f"http://127.0.0.1:{port}/") == page
            assert http_get(sandbox, f"http://{podman.address(container.name)}/") == page
        # container to container: directly, and through the other's published port (hairpin on the gateway)
        assert http_get(sandbox, f"http://{a2}/", netns=p1.netns) == "p2"
        assert http_get(sandbox, f"http://{a1}/", netns=p2.netns) == "p1"
        assert http_get(sandbox, "http://10.89.10.1:8081/", netns=p1.netns) == "p2"
        assert http_get(sandbox, f"http://{HOST_UPLINK_ADDRESS}:8080/", netns=p2.netns) == "p1"
        # outbound, masqueraded (the outside has no route back to 10.89.10.0/24)
        assert ping(sandbox.runner, OUTSIDE_ADDRESS, None)
        for container in (p1, p2):
            assert pings_from(sandbox, container, OUTSIDE_ADDRESS), f"{container.name} does not reach the outside"
        podman.stop("p1")  # CNI DEL
        assert not p1.alive()
        assert "--dport 8080" not in nat_rules(sandbox), "p1's published port outlived its DEL"
        assert http_get(sandbox, "http://127.0.0.1:8081/") == "p2", "p1's DEL cut p2 off"
        podman.rm("p1")
        p3 = podman.run_httpd("p3", network="nwpod", publish=["8080:80"])
        assert podman.address("p3") == a1, "p1's address was not freed by its DEL"
        podman.stop("p2")
        podman.rm("p2")
        podman.rm("p3", force=True)  # DEL of the last attachment
        assert podman.cli("ps", "-aq").stdout.split() == []
        assert named_namespaces(sandbox) == {OUTSIDE}
    assert podman.leftovers == []
    assert not any(c.alive() for c in (p1, p2, p3))
    assert_nothing_runs(sandbox)
    assert_same(before, sandbox)  # Podman leaves nothing in the network, and netwrap's last DEL took its all


def test_podman_a_container_that_replaces_a_removed_one_at_its_address_is_reachable_there(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    config_dir = tmp_path / "cni-config"
    write_conflist(config_dir, "nwpod", "10.89.14.0/24")
    plugins = make_plugin_dir(tmp_path / "plugins", extra={"netwrap": PLUGIN})
    before = take(sandbox.runner)
    with Podman(sandbox, tmp_path / "podman", cni_plugin_dir=plugins, cni_config_dir=config_dir) as podman:
        r1 = podman.run_httpd("r1", network="nwpod", publish=["8080:80"])
        r2 = podman.run_httpd("r2", network="nwpod")
        address = podman.address("r1")
        assert http_get(sandbox, f"http://{address}/", netns=r2.netns) == "r1"
        assert http_get(sandbox, "http://127.0.0.1:8080/") == "r1"
        podman.rm("r1", force=True)  # CNI DEL: the address is free again
        assert not r1.alive()
        r3 = podman.run_httpd("r3", network="nwpod", publish=["8080:80"])
        assert podman.address("r3") == address, "the test needs r3 to get the address r1 had"
        # r2 talked to r1 at that address: when `podman run` returns, r2 reaches r3 there, as does the published port
        assert http_get(sandbox, f"http://{address}/", netns=r2.netns) == "r3", (
            f"r2 does not reach r3 at {address} (r1's address before); r2's neighbour entry for it: "
            f"{neighbour(sandbox, address, r2)!r}; r3's eth0: {mac(sandbox, r3)}"
        )
        assert http_get(sandbox, "http://127.0.0.1:8080/") == "r3", (
            f"the published port does not reach r3; the host's neighbour entry for {address}: "
            f"{neighbour(sandbox, address)!r}"
        )
        podman.rm("r3", force=True)
        podman.rm("r2", force=True)
    assert podman.leftovers == []
    assert_nothing_runs(sandbox)
    assert_same(before, sandbox)


def test_podman_runs_a_container_on_two_netwrap_networks(sandbox: Sandbox, tmp_path: Path) -> None:
    config_dir = tmp_path / "cni-config"
    write_conflist(config_dir, "nwfront", "10.89.12.0/24")
    write_conflist(config_dir, "nwback", "10.89.13.0/24")
    plugins = make_plugin_dir(tmp_path / "plugins", extra={"netwrap": PLUGIN})
    before = take(sandbox.runner)
    with Podman(sandbox, tmp_path / "podman", cni_plugin_dir=plugins, cni_config_dir=config_dir) as podman:
        q2 = podman.run_httpd("q2", network="nwback")
        q1 = podman.run_httpd("q1", network="nwfront,nwback")  # an ADD for each network: eth0, then eth1
        found = sorted(addresses(sandbox, q1))
        assert [a.rsplit(".", 1)[0] for a in found] == ["10.89.12", "10.89.13"], found
        front, back = found
        assert http_get(sandbox, f"http://{front}/") == "q1"
        assert http_get(sandbox, f"http://{back}/", netns=q2.netns) == "q1"
        (other,) = addresses(sandbox, q2)
        assert http_get(sandbox, f"http://{other}/", netns=q1.netns) == "q2"
        podman.rm("q1", force=True)
        podman.rm("q2", force=True)
    assert podman.leftovers == []
    assert_nothing_runs(sandbox)
    assert_same(before, sandbox)


# containerd -----------------------------------------------------------------------------------------------------


def _address_in(sandbox: Sandbox, container: Container) -> str:
    (address,) = addresses(sandbox, container)
    return address


def test_containerd_add_by_proc_path_del_without_netns_and_gc_of_a_container_removed_without_del(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    config_dir = tmp_path / "cni-config"
    conf = write_conflist(config_dir, "nwctr", "10.89.11.0/24")
    log = tmp_path / "calls.log"
    plugins = recording_plugin(tmp_path / "plugins", log)
    before = take(sandbox.runner)
    with Containerd(sandbox, tmp_path / "containerd", cni_plugin_dir=plugins, cni_config_dir=config_dir) as ctrd:
        c1 = ctrd.run("c1", cni=True)
        c2 = ctrd.run("c2", cni=True)
        adds = [c for c in calls(log) if c[0] == "ADD"]
        assert ("ADD", "default-c1", c1.netns, "eth0") in adds, adds
        assert ("ADD", "default-c2", c2.netns, "eth0") in adds, adds
        a1, a2 = _address_in(sandbox, c1), _address_in(sandbox, c2)
        assert a1.startswith("10.89.11.") and a2.startswith("10.89.11.") and a1 != a2
        assert http_get(sandbox, f"http://{a1}/") == "c1" and http_get(sandbox, f"http://{a2}/") == "c2"
        assert http_get(sandbox, f"http://{a2}/", netns=c1.netns) == "c2"
        # the name the plugin gave each container's namespace leads to it
        attached = named_namespaces(sandbox)
        assert len(attached) == 2, attached
        assert {inode(f"/proc/{sandbox.pid}/root/run/netns/{n}") for n in attached} == {
            inode(c1.netns),
            inode(c2.netns),
        }
        ports = {n for n, link in host_links(sandbox).items() if link.get("master")}
        assert len(ports) == 2, ports

        # c1: the task ends, ctr run calls DEL without CNI_NETNS
        ctrd.delete("c1")
        dels = [c for c in calls(log) if c[0] == "DEL" and c[1] == "default-c1"]
        assert dels and all(c[2] == "-" for c in dels), calls(log)
        assert len(named_namespaces(sandbox)) == 1, "c1's name outlived its DEL"
        assert len({n for n, link in host_links(sandbox).items() if link.get("master")}) == 1
        assert http_get(sandbox, f"http://{a2}/") == "c2", "c1's DEL cut c2 off"

        # c2: removed without any DEL (its ctr run is killed first, then task and container go)
        runs = ctrd._runs  # the harness's foreground `ctr run` of each container
        runs["c2"].kill()
        runs["c2"].wait()
        ctrd.delete("c2")
        assert not c2.alive()
        assert [c for c in calls(log) if c[0] == "DEL" and c[1] == "default-c2"] == [], calls(log)
        assert len(named_namespaces(sandbox)) == 1, "nothing is left to collect (was DEL called after all?)"

        # GC, as a runtime runs it: no attachment of this network is valid any more
        gc = run_plugin(sandbox, "GC", conf | {"cniVersion": "1.1.0", "cni.dev/valid-attachments": []})
        assert gc.returncode == 0 and gc.stdout == "", (gc.returncode, gc.stdout, gc.stderr)
        assert named_namespaces(sandbox) == set(), "GC left the name the plugin gave c2's namespace"
        # and a later ADD gets the lowest address again: both were freed
        c3 = ctrd.run("c3", cni=True)
        assert _address_in(sandbox, c3) == min(a1, a2, key=lambda a: tuple(map(int, a.split("."))))
        ctrd.delete("c3")
    assert ctrd.leftovers == []
    assert_nothing_runs(sandbox)
    assert_same(before, sandbox)
