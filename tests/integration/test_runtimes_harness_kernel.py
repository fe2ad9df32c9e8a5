"""The runtime harness (``runtimes.py``) on the real kernel: Podman, Docker and containerd each start in a
sandbox and run busybox httpd containers in network namespaces of their own, whose pages answer over real
TCP; and each leaves nothing behind. In the sandbox: its network as a snapshot takes it (what a runtime
itself leaves there, such as a CNI bridge, is spelled out), no process, no cgroup. On the host: nothing in
the directories runtimes write (the autouse fixture below lists them before and after each test).
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from netwrap import Command, Sandbox
from netwrap.host.snapshot import Snapshot, take
from tests.integration.dockerd import cgroups_left, sandbox_processes
from tests.integration.runtimes import (
    REFERENCE_PLUGINS,
    Container,
    Containerd,
    Docker,
    Podman,
    addresses,
    http_get,
    make_plugin_dir,
)

pytestmark = pytest.mark.integration

# Where a runtime, its CNI plugins or its tools would write on the host if the harness let them.
HOST_PATHS = (
    "/etc/cni",
    "/etc/containers",
    "/etc/containerd",
    "/etc/docker",
    "/opt/cni",
    "/opt/containerd",
    "/var/lib/cni",
    "/var/lib/containers",
    "/var/lib/containerd",
    "/var/lib/docker",
    "/var/tmp",  # noqa: S108 (only listed)
    "/dev/shm/libpod_lock",  # noqa: S108 (only listed)
    "/run/netns",
    "/run/cni",
    "/run/containerd",
    "/run/containers",
    "/run/libpod",
    "/run/crun",
    "/run/runc",
    "/run/docker",
)


def host_listing() -> list[tuple[str, str, int, int]]:
    """Each path under :data:`HOST_PATHS` on the real host: (path, kind, size, modification time)."""
    entries: list[tuple[str, str, int, int]] = []
    for top in HOST_PATHS:
        if not os.path.lexists(top):
            entries.append((top, "absent", 0, 0))
            continue
        paths = [top]
        if os.path.isdir(top) and not os.path.islink(top):
            for directory, dirs, files in os.walk(top):
                paths += [os.path.join(directory, name) for name in sorted(dirs + files)]
        for path in paths:
            info = os.lstat(path)
            kind = "dir" if stat.S_ISDIR(info.st_mode) else "link" if stat.S_ISLNK(info.st_mode) else "file"
            entries.append((path, kind, info.st_size if kind == "file" else 0, info.st_mtime_ns))
    return entries


@pytest.fixture(autouse=True)
def host_untouched() -> Iterator[None]:
    """Nothing changes on the real host where runtimes write: every test here leaves it as it found it."""
    before = host_listing()
    yield
    after = host_listing()
    gone, new = sorted(set(before) - set(after)), sorted(set(after) - set(before))
    assert not gone and not new, f"the host changed: gone {gone}, new or changed {new}"


# Checks -------------------------------------------------------------------------------------------------------


def inode(path: str) -> int:
    return os.stat(path).st_ino


def assert_own_namespace(sandbox: Sandbox, container: Container) -> None:
    """The container's network namespace is neither the sandbox's nor this process's."""
    assert container.alive()
    theirs = inode(container.netns)
    assert theirs != inode(f"/proc/{sandbox.pid}/ns/net"), f"{container.name} is in the sandbox's network namespace"
    assert theirs != inode("/proc/self/ns/net"), f"{container.name} is in the host's network namespace"


def assert_serves_inside(sandbox: Sandbox, container: Container) -> None:
    """Its httpd answers a real TCP connection from inside its own network namespace with its name."""
    got = http_get(sandbox, "http://127.0.0.1/", netns=container.netns)
    assert got == container.page, f"{container.name}'s page from inside: {got!r}"


def assert_swept(sandbox: Sandbox, container: Container) -> None:
    """The sweep that finds what a runtime leaves running sees this container (so it is no empty check)."""
    assert container.pid in {p.pid for p in sandbox_processes(sandbox)}, f"{container.name} is not seen"


def assert_nothing_runs(sandbox: Sandbox) -> None:
    """No process is left in the sandbox's mount namespace (but its holder), nor any child of one."""
    left = [str(p) for p in sandbox_processes(sandbox)]
    assert left == [], f"processes left in the sandbox: {left}"


def assert_same(before: Snapshot, after: Snapshot) -> None:
    assert before == after, "the sandbox's network changed:\n" + "\n".join(before.explain(after))


def residue(before: Snapshot, after: Snapshot, allowed: Sequence[str]) -> list[str]:
    """The differences (as :meth:`Snapshot.explain` words them) that match none of the ``allowed`` patterns."""
    return [line for line in before.explain(after) if not any(re.fullmatch(p, line) for p in allowed)]


def sandbox_path(sandbox: Sandbox, path: str) -> Path:
    return Path(f"/proc/{sandbox.pid}/root{path}")


def write_conflist(directory: Path, name: str, bridge: str, subnet: str, *, masquerade: bool) -> Path:
    """A CNI configuration list for the reference plugins: ``bridge`` (with host-local IPAM) and ``portmap``."""
    prefix = subnet.rsplit(".", 1)[0]
    plugins = [
        {
            "type": "bridge",
            "bridge": bridge,
            "isGateway": True,
            "ipMasq": masquerade,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": subnet, "gateway": f"{prefix}.1"}]],
                "routes": [{"dst": "0.0.0.0/0"}],
            },
        },
        {"type": "portmap", "capabilities": {"portMappings": True}},
    ]
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"10-{name}.conflist"
    path.write_text(json.dumps({"cniVersion": "0.4.0", "name": name, "plugins": plugins}, indent=2))
    return path


def forwarding(device: str) -> str:
    """Forwarding switched on, for the host and for ``device`` (with its route_localnet)."""
    key = rf"net\.ipv4\.(ip_forward|conf\.(all|default|{device})\.(forwarding|route_localnet))"
    return rf"ip_forward: '0' -> '1'|sysctls: [-+] \('{key}', '[01]'\)"


def bridge(device: str) -> str:
    """A bridge with its address and the route of its subnet."""
    host = r"views\[\(host\)\]"
    return rf"{host}\.(links|addresses): \+ \('{device}', .*\)|{host}\.routes: \+ \('[0-9./]+', None, '{device}'\)"


def cni_residue(device: str) -> tuple[str, ...]:
    """What the reference plugins leave in the sandbox after the last DEL, by design: the bridge, forwarding on,
    portmap's shared chains (DNAT empty again) and the jumps to them. Nothing of any one container."""
    return (
        bridge(device),
        forwarding(device),
        r"nat_table\[CNI-HOSTPORT-DNAT\]: \+ the whole chain \('-', \(\)\)",
        r"nat_table\[CNI-HOSTPORT-(MASQ|SETMARK)\]: \+ the whole chain \('-', \('[^']*0x2000/0x2000[^']*',\)\)",
        r"nat_table\[(OUTPUT|PREROUTING|POSTROUTING)\]: \+ '-A \w+ [^']*-j CNI-HOSTPORT-(DNAT|MASQ)'",
    )


# What dockerd leaves after it stopped: docker0, forwarding, its chains and the jumps to them, FORWARD's policy.
# (That a container leaves nothing is checked exactly, against a snapshot taken once dockerd was up.)
DOCKER_RESIDUE = (
    bridge("docker0"),
    forwarding("docker0"),
    r"(nat|filter)_table\[DOCKER[-A-Z0-9]*\]: \+ the whole chain .*",
    r"(nat|filter)_table\[(PREROUTING|OUTPUT|POSTROUTING|FORWARD)\]: \+ '-A \w+ .*(-j DOCKER|docker0).*'",
    r"filter_table\[FORWARD\]: policy ACCEPT -> DROP",
)


# Podman -------------------------------------------------------------------------------------------------------


def test_podman_runs_httpd_with_no_network_and_leaves_nothing(sandbox: Sandbox, tmp_path: Path) -> None:
    before = take(sandbox.runner)
    with Podman(sandbox, tmp_path / "podman") as podman:
        container = podman.run_httpd("p1")
        assert container.pid == podman.pid("p1")
        assert_own_namespace(sandbox, container)
        assert_swept(sandbox, container)
        assert addresses(sandbox, container) == [], "--network none has more than lo"
        assert_serves_inside(sandbox, container)
        assert_same(before, take(sandbox.runner))  # --network none: the sandbox's network is untouched
        podman.stop("p1")
        assert not container.alive(), "podman stop left the httpd running"
        podman.rm("p1")
        assert podman.cli("ps", "-aq").stdout.split() == []
        running = podman.run_httpd("p1-left-running")  # removed on the way out
    assert not running.alive()
    assert podman.leftovers == []
    assert_nothing_runs(sandbox)
    assert_same(before, take(sandbox.runner))


def test_podman_on_a_cni_network_publishes_a_port_and_deletes_its_network(sandbox: Sandbox, tmp_path: Path) -> None:
    config = tmp_path / "cni-config"
    write_conflist(config, "harness", "nwh0", "10.89.71.0/24", masquerade=True)
    before = take(sandbox.runner)
    with Podman(sandbox, tmp_path / "podman", cni_plugin_dir=REFERENCE_PLUGINS, cni_config_dir=config) as podman:
        container = podman.run_httpd("p2", network="harness", publish=["8080:80"])
        assert_own_namespace(sandbox, container)
        address = podman.address("p2")
        assert address.startswith("10.89.71."), address
        assert addresses(sandbox, container) == [address]
        assert_serves_inside(sandbox, container)
        # from the sandbox's host: the container's address, the published port (DNAT) on the bridge and on lo
        for url in (f"http://{address}/", "http://10.89.71.1:8080/", "http://127.0.0.1:8080/"):
            assert http_get(sandbox, url) == "p2", f"no page at {url}"
        reserved = sandbox_path(sandbox, f"/var/lib/cni/networks/harness/{address}")
        assert reserved.exists(), "host-local holds no reservation (was ADD called?)"
        podman.stop("p2")  # CNI DEL
        assert not container.alive()
        assert not reserved.exists(), "podman stop did not release the address (was DEL called?)"
        assert "8080" not in sandbox.runner.run(Command("iptables-save", ("-t", "nat"), mutates=False)).stdout
        podman.rm("p2")
        running = podman.run_httpd("p3", network="harness")  # removed (CNI DEL) on the way out
    assert not running.alive()
    assert not any(sandbox_path(sandbox, "/var/lib/cni/networks/harness").glob("10.*")), "an address is still held"
    assert podman.leftovers == []
    assert_nothing_runs(sandbox)
    unexpected = residue(before, take(sandbox.runner), cni_residue("nwh0"))
    assert unexpected == [], "left in the sandbox beyond the reference plugins' own residue:\n" + "\n".join(unexpected)


# Docker -------------------------------------------------------------------------------------------------------


def test_docker_runs_httpd_with_no_network_and_leaves_nothing(sandbox: Sandbox, tmp_path: Path) -> None:
    before = take(sandbox.runner)
    with Docker(sandbox, tmp_path / "docker") as docker:
        started = take(sandbox.runner)  # with docker0 and its chains
        container = docker.run_httpd("d1")
        assert container.pid == docker.pid("d1")
        assert_own_namespace(sandbox, container)
        assert_swept(sandbox, container)
        assert addresses(sandbox, container) == []
        assert_serves_inside(sandbox, container)
        docker.stop("d1")
        assert not container.alive()
        docker.rm("d1")
        assert docker.cli("ps", "-aq").stdout.split() == []
        assert_same(started, take(sandbox.runner))  # the container came and went without a trace
        parent = docker.daemon.cgroup_parent
        running = docker.run_httpd("d1-left-running")  # removed on the way out
    assert not running.alive()
    assert docker.leftovers == []
    assert_nothing_runs(sandbox)
    assert cgroups_left(sandbox, parent) == []
    unexpected = residue(before, take(sandbox.runner), DOCKER_RESIDUE)
    assert unexpected == [], "left in the sandbox beyond dockerd's own network:\n" + "\n".join(unexpected)


# containerd ---------------------------------------------------------------------------------------------------


def test_containerd_runs_tasks_in_new_and_existing_namespaces_and_leaves_nothing(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    before = take(sandbox.runner)
    with Containerd(sandbox, tmp_path / "containerd") as containerd:
        container = containerd.run("c1")
        assert container.pid == containerd.pid("c1")
        assert_own_namespace(sandbox, container)
        assert_swept(sandbox, container)
        assert addresses(sandbox, container) == []
        assert_serves_inside(sandbox, container)
        # a task joining a network namespace that exists already (ctr run --with-ns network:PATH)
        sandbox.runner.run(Command("ip", ("netns", "add", "joined")))
        sandbox.runner.run(Command("ip", ("link", "set", "lo", "up"), netns="joined"))
        joined = containerd.run("c2", netns="/run/netns/joined")
        assert inode(joined.netns) == inode(str(sandbox_path(sandbox, "/run/netns/joined")))
        assert http_get(sandbox, "http://127.0.0.1/", netns="/run/netns/joined") == "c2"
        for name, each in (("c1", container), ("c2", joined)):
            containerd.delete(name)
            assert not each.alive(), f"{name} still runs after delete"
        assert containerd.tasks() == {}
        assert containerd.ctr("container", "ls", "-q").stdout.split() == []
        sandbox.runner.run(Command("ip", ("netns", "delete", "joined")))
        parent = containerd.cgroup_parent
        running = containerd.run("c1-left-running")  # removed on the way out
    assert not running.alive()
    assert containerd.leftovers == []
    assert_nothing_runs(sandbox)
    assert cgroups_left(sandbox, parent) == []
    assert_same(before, take(sandbox.runner))


def test_containerd_cni_task_gets_add_and_del_from_ctr(sandbox: Sandbox, tmp_path: Path) -> None:
    # ipMasq off: ctr's DEL comes without CNI_NETNS and the bridge plugin then keeps its masquerade rule
    config = tmp_path / "cni-config"
    write_conflist(config, "ctrnet", "nwh1", "10.89.72.0/24", masquerade=False)
    before = take(sandbox.runner)
    plugins = make_plugin_dir(tmp_path / "plugins")  # what a test of its own plugin would pass
    with Containerd(sandbox, tmp_path / "containerd", cni_plugin_dir=plugins, cni_config_dir=config) as containerd:
        container = containerd.run("c3", cni=True)
        assert_own_namespace(sandbox, container)
        (address,) = addresses(sandbox, container)
        assert address.startswith("10.89.72."), address
        assert_serves_inside(sandbox, container)
        assert http_get(sandbox, f"http://{address}/") == "c3", "the sandbox's host does not reach the task"
        reserved = sandbox_path(sandbox, f"/var/lib/cni/networks/ctrnet/{address}")
        cached = sandbox_path(sandbox, "/var/lib/cni/results/ctrnet-default-c3-eth0")
        assert reserved.exists(), "host-local holds no reservation (was ADD called?)"
        assert cached.exists(), "no cached ADD result for the task (CNI_CONTAINERID is NAMESPACE-NAME)"
        containerd.delete("c3")
        assert not container.alive()
        assert not reserved.exists(), "the address was not released (was DEL called?)"
        assert not cached.exists()
        parent = containerd.cgroup_parent
        running = containerd.run("c4", cni=True)  # deleted (CNI DEL) on the way out
    assert not running.alive()
    assert not any(sandbox_path(sandbox, "/var/lib/cni/networks/ctrnet").glob("10.*")), "an address is still held"
    assert containerd.leftovers == []
    assert_nothing_runs(sandbox)
    assert cgroups_left(sandbox, parent) == []
    unexpected = residue(before, take(sandbox.runner), cni_residue("nwh1"))
    assert unexpected == [], "left in the sandbox beyond the reference plugins' own residue:\n" + "\n".join(unexpected)


# All three in one sandbox --------------------------------------------------------------------------------------


def test_the_three_runtimes_run_side_by_side_in_one_sandbox(sandbox: Sandbox, tmp_path: Path) -> None:
    with (
        Docker(sandbox, tmp_path / "docker") as docker,
        Podman(sandbox, tmp_path / "podman") as podman,
        Containerd(sandbox, tmp_path / "containerd") as containerd,
    ):
        started = [docker.run_httpd("d1"), podman.run_httpd("p1"), containerd.run("c1")]
        assert len({inode(c.netns) for c in started}) == 3, "two containers share a network namespace"
        for container in started:
            assert_serves_inside(sandbox, container)
        with pytest.raises(AssertionError, match="already runs"), Containerd(sandbox, tmp_path / "second"):
            pass
        with pytest.raises(AssertionError, match="already runs"), Podman(sandbox, tmp_path / "second"):
            pass
        assert all(c.alive() for c in started), "the refused second containerd stopped something"
        assert_serves_inside(sandbox, started[2])
    assert not any(c.alive() for c in started)
    assert docker.leftovers == podman.leftovers == containerd.leftovers == []
    assert_nothing_runs(sandbox)
    with Podman(sandbox, tmp_path / "podman-again") as podman, Containerd(sandbox, tmp_path / "again") as containerd:
        again = [podman.run_httpd("p2"), containerd.run("c2")]  # one after the other in a sandbox: fine
        for container in again:
            assert_serves_inside(sandbox, container)
    assert_nothing_runs(sandbox)
