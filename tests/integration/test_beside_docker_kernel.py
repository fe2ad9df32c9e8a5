"""netwrap beside a real Docker daemon and its own rules, on the real kernel.

Each test starts Debian's dockerd inside its own sandbox (see ``dockerd.py``): docker0 on
172.17.0.0/16, the DOCKER, DOCKER-USER and DOCKER-ISOLATION-STAGE-1/2 chains, FORWARD's policy
DROP, and a busybox httpd container ``d1`` published on 8081. Then a netwrap topology of two
networks (10.71.0.0/24 with a published port, 10.72.0.0/24) is applied beside it with
``python -m netwrap`` inside the sandbox. Packets come from a simulated outside: a namespace
``outside`` (192.0.2.2) joined to the sandbox's host (192.0.2.1) by a veth uplink.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from netwrap import Address, Command, LinkNetns, LinkUp, MemoryStore, Namespace, Result, Sandbox, VethPair, build
from netwrap import teardown as undo
from tests.integration.dockerd import ANY, BUSYBOX, IMAGE, Docker, detail, dockerd

pytestmark = pytest.mark.integration

TOPOLOGY = """\
name = "beside"

[networks.front]
subnet = "10.71.0.0/24"

[networks.back]
subnet = "10.72.0.0/24"

[containers.web]
networks = [{ network = "front", address = "10.71.0.2" }]
ports = ["8080:80/tcp"]

[containers.peer]
networks = [{ network = "front", address = "10.71.0.3" }]

[containers.db]
networks = [{ network = "back", address = "10.72.0.2" }]
"""
WEB, PEER, DB, FRONT_GATEWAY = "10.71.0.2", "10.71.0.3", "10.72.0.2", "10.71.0.1"
HOST_UPLINK, OUTSIDE = "192.0.2.1", "192.0.2.2"
DOCKER_PAGE, WEB_PAGE = "docker-d1-page", "netwrap-web-page"
NETWRAP_JUMPS = ("-A FORWARD -j NETWRAP-beside-ISO", "-A FORWARD -j NETWRAP-beside")


# Running things in the sandbox -----------------------------------------------------------------------------


def cli(sandbox: Sandbox, *args: str) -> Result:
    """``python -m netwrap ARGS`` inside the sandbox; any exit code is returned."""
    return sandbox.runner.run(Command(sys.executable, ("-m", "netwrap", *args), ok_codes=ANY))


def read(sandbox: Sandbox, tool: str, *args: str) -> str:
    return sandbox.runner.run(Command(tool, args, mutates=False)).stdout


def ping(sandbox: Sandbox, target: str, netns: str, count: int = 3) -> bool:
    args = ("-c", str(count), "-i", "0.2", "-W", "1", "-q", target)
    return sandbox.runner.run(Command("ping", args, netns=netns, mutates=False, ok_codes=ANY)).returncode == 0


# An HTTP GET with a 2 s timeout (busybox 1.35's static wget crashes when a connection is refused).
_GET = "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode(), end='')"


def fetch(sandbox: Sandbox, netns: str, url: str, *, within: float = 4.0) -> str | None:
    """The page at ``url`` fetched from ``netns``, retried until ``within`` s; None if it never answers."""
    deadline = time.monotonic() + within
    while True:
        args = ("-c", _GET, url)
        got = sandbox.runner.run(Command(sys.executable, args, netns=netns, mutates=False, ok_codes=ANY))
        if got.returncode == 0:
            return got.stdout
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.2)


def in_docker_reaches(docker: Docker, container: str, address: str) -> bool:
    """Whether ``container`` (Docker's) gets an answer from ``address`` by ping or by HTTP on port 80."""
    if docker.shell(container, "ping", "-c", "1", "-W", "1", address).returncode == 0:
        return True
    return docker.shell(container, "wget", "-q", "-O", "-", "-T", "2", f"http://{address}/").returncode == 0


def iptables(sandbox: Sandbox) -> str:
    """filter and nat as ``iptables-save`` lists them, without comments and counters, for comparison."""
    lines = []
    for table in ("filter", "nat"):
        for line in read(sandbox, "iptables-save", "-t", table).splitlines():
            if not line.startswith("#"):
                lines.append(re.sub(r" \[\d+:\d+\]$", "", line))
    return "\n".join(lines)


def forward_rules(sandbox: Sandbox) -> list[str]:
    return [line for line in read(sandbox, "iptables", "-S", "FORWARD").splitlines() if line.startswith("-A")]


# The world around netwrap: Docker, an outside, a server in netwrap's web container ------------------------


def outside_objects() -> tuple[Address | LinkNetns | LinkUp | Namespace | VethPair, ...]:
    return (
        Namespace("outside"),
        VethPair("uplink1", "uplink0"),
        LinkNetns("uplink1", "outside"),
        Address("uplink0", f"{HOST_UPLINK}/24"),
        LinkUp("uplink0"),
        Address("uplink1", f"{OUTSIDE}/24", netns="outside"),
        LinkUp("uplink1", netns="outside"),
        LinkUp("lo", netns="outside"),
    )


@attrs.define
class World:
    sandbox: Sandbox
    docker: Docker
    file: Path
    state: Path
    www: Path

    def netwrap(self, verb: str) -> Result:
        return cli(self.sandbox, verb, "-f", str(self.file), "--state-dir", str(self.state))

    def apply(self) -> None:
        applied = self.netwrap("apply")
        assert applied.returncode == 0, detail(applied)

    def plan(self) -> Result:
        return self.netwrap("plan")


@pytest.fixture
def world(sandbox: Sandbox, tmp_path: Path) -> Iterator[World]:
    """dockerd running ``d1`` (httpd published on 8081), the outside, and netwrap's file (not yet applied)."""
    outside = MemoryStore()
    build(outside_objects(), sandbox.runner, outside)
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text(WEB_PAGE)
    file = tmp_path / "beside.toml"
    file.write_text(TOPOLOGY)
    try:
        with dockerd(sandbox, tmp_path / "docker", page=DOCKER_PAGE) as docker:
            docker.run_httpd("d1", 8081)
            assert fetch(sandbox, "outside", f"http://{HOST_UPLINK}:8081/") == DOCKER_PAGE, docker.log()
            yield World(sandbox, docker, file, tmp_path / "state", www)
    finally:
        undo(sandbox.runner, outside)


@pytest.fixture
def serving(world: World) -> Iterator[World]:
    """netwrap's topology applied, and busybox httpd serving WEB_PAGE on port 80 in its ``web`` container."""
    world.apply()
    command = [*world.sandbox.prefix, "ip", "netns", "exec", "web", BUSYBOX, "httpd", "-f", "-p", "80", "-h"]
    server = subprocess.Popen([*command, str(world.www)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield world
    finally:
        server.terminate()
        server.wait(timeout=5)


# 1. Both work, each isolated from the other -----------------------------------------------------------------


def test_netwrap_and_docker_both_work_side_by_side(serving: World) -> None:
    world, sandbox = serving, serving.sandbox
    # netwrap: within a network, not across networks, out to the outside, a published port from the outside
    assert ping(sandbox, PEER, "web"), "web does not reach peer on its own network"
    assert ping(sandbox, WEB, "peer"), "peer does not reach web on its own network"
    assert not ping(sandbox, DB, "web", count=1), "web reaches db across networks"
    assert not ping(sandbox, WEB, "db", count=1), "db reaches web across networks"
    assert ping(sandbox, OUTSIDE, "web"), "web does not reach the outside"
    assert ping(sandbox, OUTSIDE, "db"), "db does not reach the outside"
    assert fetch(sandbox, "outside", f"http://{HOST_UPLINK}:8080/") == WEB_PAGE, "netwrap's 8080 does not answer"
    # docker: its published port still answers the outside, and its container still reaches the outside
    assert fetch(sandbox, "outside", f"http://{HOST_UPLINK}:8081/") == DOCKER_PAGE, "docker's 8081 stopped answering"
    assert world.docker.shell("d1", "ping", "-c", "1", "-W", "2", OUTSIDE).returncode == 0, "d1 lost the outside"
    # docker's container does not reach netwrap's containers directly
    assert not in_docker_reaches(world.docker, "d1", WEB), "docker's d1 reaches netwrap's web at its own address"
    assert not in_docker_reaches(world.docker, "d1", DB), "docker's d1 reaches netwrap's db at its own address"


@pytest.mark.xfail(
    strict=True,
    reason="known limitation: netwrap's outbound ACCEPT (first in FORWARD) also accepts new connections into "
    "another runtime's bridge that only FORWARD's DROP policy protects (Docker 20.10's docker0); netwrap cannot "
    "tell such a bridge from the host's own uplink bridge without guessing by name",
)
def test_netwrap_containers_do_not_reach_dockers_container(serving: World) -> None:
    """Docker lets into docker0 only replies and published ports (FORWARD -o docker0 -j DOCKER, policy DROP):
    netwrap's rules, placed first in FORWARD, must not accept what Docker would drop."""
    world, sandbox = serving, serving.sandbox
    d1 = world.docker.address("d1")
    assert ping(sandbox, OUTSIDE, "web")  # web does reach beyond its bridge: the refusal below is isolation
    assert fetch(sandbox, "web", f"http://{d1}/", within=0) is None, f"netwrap's web gets d1's page from {d1}:80"
    assert not ping(sandbox, d1, "web", count=1), f"netwrap's web reaches docker's d1 at {d1}"
    assert not ping(sandbox, d1, "db", count=1), f"netwrap's db reaches docker's d1 at {d1}"


# 2. Re-applying beside Docker is a no-op, also after Docker changes its own rules ---------------------------


def test_a_second_apply_is_a_no_op_also_after_another_docker_run(serving: World) -> None:
    world, sandbox = serving, serving.sandbox
    planned = world.plan()
    assert planned.returncode == 0, "plan right after apply is not a no-op: " + detail(planned)
    assert forward_rules(sandbox)[:2] == list(NETWRAP_JUMPS), forward_rules(sandbox)
    world.docker.run_httpd("d2", 8082)
    assert forward_rules(sandbox)[:2] == list(NETWRAP_JUMPS), "docker run moved netwrap's FORWARD jumps"
    planned = world.plan()
    assert planned.returncode == 0, "plan after another docker run is not a no-op: " + detail(planned)
    assert fetch(sandbox, "outside", f"http://{HOST_UPLINK}:8082/") == DOCKER_PAGE, "docker's d2 does not answer"
    assert fetch(sandbox, "outside", f"http://{HOST_UPLINK}:8080/") == WEB_PAGE, "netwrap's 8080 stopped answering"


def test_a_new_docker_network_displaces_netwraps_jumps_and_apply_restores_them(serving: World) -> None:
    """``docker network create`` inserts its bridge's rules and re-inserts DOCKER-USER and
    DOCKER-ISOLATION-STAGE-1 at the top of FORWARD (and a MASQUERADE at the top of POSTROUTING): plan
    must see netwrap's jumps below them, apply put them back, and then plan is empty again and stays so."""
    world, sandbox, docker = serving, serving.sandbox, serving.docker
    docker.cli("network", "create", "--subnet", "172.30.0.0/24", "dnet")
    docker.cli("run", "-d", "--name", "d3", "--network", "dnet", "-p", "8083:80", IMAGE,
               BUSYBOX, "httpd", "-f", "-p", "80", "-h", "/www")  # fmt: skip
    assert forward_rules(sandbox)[:2] != list(NETWRAP_JUMPS), "docker left netwrap's jumps first this time"
    planned = world.plan()
    assert planned.returncode == 2, "plan does not see its displaced jumps: " + detail(planned)
    assert "-I FORWARD 1 -j NETWRAP-beside-ISO" in planned.stdout, detail(planned)
    world.apply()
    assert forward_rules(sandbox)[:2] == list(NETWRAP_JUMPS), forward_rules(sandbox)
    planned = world.plan()
    assert planned.returncode == 0, "plan after the re-apply is not a no-op: " + detail(planned)
    assert not in_docker_reaches(docker, "d3", WEB), "docker's d3 (on dnet) reaches netwrap's web"
    docker.run_httpd("d4", 8084)  # an ordinary run again leaves the jumps alone
    planned = world.plan()
    assert planned.returncode == 0, "plan after docker run on the restored host is not a no-op: " + detail(planned)
    for port in (8081, 8083, 8084):
        assert fetch(sandbox, "outside", f"http://{HOST_UPLINK}:{port}/") == DOCKER_PAGE, f"docker's {port} is gone"
    assert fetch(sandbox, "outside", f"http://{HOST_UPLINK}:8080/") == WEB_PAGE, "netwrap's 8080 stopped answering"


# 3. destroy gives Docker's rules back exactly ---------------------------------------------------------------


def test_destroy_leaves_dockers_rules_exactly_as_before(world: World) -> None:
    sandbox = world.sandbox
    before = iptables(sandbox)
    world.apply()
    assert ping(sandbox, OUTSIDE, "web")  # used, so conntrack and counters moved
    destroyed = world.netwrap("destroy")
    assert destroyed.returncode == 0, detail(destroyed)
    after = iptables(sandbox)
    assert after == before, f"docker's rules changed:\n--- before\n{before}\n--- after\n{after}"
    assert read(sandbox, "sysctl", "-n", "net.ipv4.ip_forward").strip() == "1", "destroy turned docker's forwarding off"
    assert fetch(sandbox, "outside", f"http://{HOST_UPLINK}:8081/") == DOCKER_PAGE, "docker's 8081 stopped answering"
    assert world.docker.shell("d1", "ping", "-c", "1", "-W", "2", OUTSIDE).returncode == 0, "d1 lost the outside"
