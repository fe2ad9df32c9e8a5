"""Hardening II on the real kernel: each a defect found as a new user or an attacker would, now refused or fixed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netwrap import MemoryStore, Sandbox, build, teardown
from netwrap.command import Command
from netwrap.host import snapshot
from netwrap.host.runner import Result
from netwrap.kinds import Route
from netwrap.tutorial.verify import HOST_UPLINK_ADDRESS, OUTSIDE, OUTSIDE_ADDRESS, outside_objects, ping, tcp_probe
from tests.conftest import require_root

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "two-networks.toml"


def cli(sandbox: Sandbox, *args: str) -> Result:
    return sandbox.runner.run(Command(sys.executable, ("-m", "netwrap", *args), ok_codes=frozenset(range(256))))


def test_clean_removes_what_a_killed_writer_left_while_it_waits_to_be_reaped(sandbox: Sandbox, tmp_path: Path) -> None:
    """kill -9 of an apply whose parent has not waited for it yet: a zombie is dead, and clean cleans (15)."""
    before = snapshot.take(sandbox.runner)
    argv = [*sandbox.prefix, sys.executable, "-m", "netwrap", "apply", "--verbatim", "-f", str(EXAMPLE),
            "--state-dir", str(tmp_path)]  # fmt: skip
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    try:
        done = 0
        for line in process.stdout:
            done += line.startswith("+ ")
            if done == 12:
                os.kill(process.pid, signal.SIGKILL)
                break
        deadline = time.monotonic() + 10
        while Path(f"/proc/{process.pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
            assert time.monotonic() < deadline, "the killed apply did not end"
            time.sleep(0.01)
        survey = cli(sandbox, "clean", "--dry-run", "--state-dir", str(tmp_path))
        assert "crashed" in survey.stdout + survey.stderr, survey.stdout + survey.stderr
        cleaned = cli(sandbox, "clean", "--state-dir", str(tmp_path))
        assert cleaned.returncode == 0, cleaned.stderr
        assert before.explain(snapshot.take(sandbox.runner)) == []
    finally:
        process.stdout.close()
        process.wait(timeout=30)


PUBLISHED = """
name = "every"

[networks.n]
subnet = "10.60.0.0/24"

[containers.web]
networks = ["n"]
ports = ["{port}"]
"""


def test_0_0_0_0_publishes_on_every_address_as_with_docker(tmp_path: Path) -> None:
    """``0.0.0.0:8080:80`` builds exactly what ``8080:80`` builds, and answers from another machine (3)."""
    require_root()
    pictures: list[snapshot.Snapshot] = []
    for port in ("0.0.0.0:8080:80", "8080:80"):
        topo = tmp_path / f"{len(pictures)}.toml"
        topo.write_text(PUBLISHED.format(port=port))
        with Sandbox() as sandbox:
            store = MemoryStore()
            build(outside_objects(), sandbox.runner, store)
            applied = cli(sandbox, "apply", "-f", str(topo), "--state-dir", str(tmp_path / f"state{len(pictures)}"))
            assert applied.returncode == 0, applied.stderr
            ok, detail = tcp_probe(sandbox.runner, "web", OUTSIDE, HOST_UPLINK_ADDRESS, 8080, listen_port=80)
            assert ok, f"{port}: {detail}"
            pictures.append(snapshot.take(sandbox.runner))
            teardown(sandbox.runner, store)
    assert pictures[0].explain(pictures[1]) == []


def test_containers_whose_shortened_device_names_clash_are_built(sandbox: Sandbox, tmp_path: Path) -> None:
    """service-00353 and service-00535 both shortened to one host device name; apply failed half-way (6)."""
    topo = tmp_path / "clash.toml"
    topo.write_text(
        'name = "clash"\n[networks.n]\nsubnet = "10.61.0.0/24"\n'
        + "".join(f'[containers.service-{n}]\nnetworks = ["n"]\n' for n in ("00353", "00535"))
    )
    before = snapshot.take(sandbox.runner)
    applied = cli(sandbox, "apply", "-f", str(topo), "--state-dir", str(tmp_path / "state"))
    assert applied.returncode == 0, applied.stderr
    shown = cli(sandbox, "status", "--check", "-f", str(topo), "--state-dir", str(tmp_path / "state"))
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert ping(sandbox.runner, "10.61.0.3", "service-00353")
    destroyed = cli(sandbox, "destroy", "-f", str(topo), "--state-dir", str(tmp_path / "state"))
    assert destroyed.returncode == 0, destroyed.stderr
    assert before.explain(snapshot.take(sandbox.runner)) == []


def test_a_network_named_with_a_dot_is_built_with_its_published_port(sandbox: Sandbox, tmp_path: Path) -> None:
    """Its bridge's route_localnet (for the published port) was set through a name with a '.' and failed (7)."""
    topo = tmp_path / "dotted.toml"
    web = '[containers.web]\nnetworks = ["my.net"]\nports = ["8080:80"]\n'
    topo.write_text('name = "dot"\n[networks."my.net"]\nsubnet = "10.62.0.0/24"\n' + web)
    applied = cli(sandbox, "apply", "-f", str(topo), "--state-dir", str(tmp_path / "state"))
    assert applied.returncode == 0, applied.stderr
    checked = cli(sandbox, "status", "--check", "-f", str(topo), "--state-dir", str(tmp_path / "state"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    planned = cli(sandbox, "plan", "-f", str(topo), "--state-dir", str(tmp_path / "state"))
    assert planned.returncode == 0, planned.stdout + planned.stderr


OUTER_RUN = "mount -t tmpfs -o mode=755 host-run /run && mkdir /run/netns && mount --bind /run/netns /run/netns && "


def _on_a_host_whose_run_is_a_mount_point(*argv: str) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` where ``/run`` is already a mount point (as systemd makes it), in a throwaway namespace."""
    require_root()
    script = OUTER_RUN + 'exec "$@"'
    return subprocess.run(
        ["unshare", "--net", "--mount", "--propagation", "private", "--", "sh", "-c", script, "sh", *argv],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_the_sandbox_starts_where_run_is_already_a_mount_point() -> None:
    """On a systemd host /run is a tmpfs already; the sandbox stacks its own and uses it (8)."""
    code = (
        "from netwrap import Sandbox\n"
        "from netwrap.command import Command\n"
        "with Sandbox() as box:\n"
        "    box.runner.run(Command('ip', ('netns', 'add', 'inner')))\n"
        "    print(box.runner.run(Command('ip', ('netns', 'list'), mutates=False)).stdout.split())\n"
        "import os\n"
        "print(sorted(os.listdir('/run/netns')))\n"
    )
    done = _on_a_host_whose_run_is_a_mount_point(sys.executable, "-c", code)
    assert done.returncode == 0, done.stderr
    # the sandbox had its namespace in its own /run; the host's /run/netns never saw it
    assert done.stdout.splitlines() == ["['inner']", "[]"]


def test_the_readmes_main_command_works_where_run_is_already_a_mount_point() -> None:
    """``netwrap tutorial`` (up, verify, down in a sandbox) on a host like a standard Debian with systemd (8)."""
    done = _on_a_host_whose_run_is_a_mount_point(sys.executable, "-m", "netwrap", "tutorial")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS" in done.stdout.upper(), done.stdout


PORTS_EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "published-ports.toml"


def test_a_container_reaches_its_own_published_port_and_icc_false_still_holds(sandbox: Sandbox, tmp_path: Path) -> None:
    """Hairpin mode on the bridge ports, as Docker sets it: web -> 192.0.2.1:8080 -> web timed out (4)."""
    store = MemoryStore()
    build(outside_objects(), sandbox.runner, store)
    before = snapshot.take(sandbox.runner)
    topo, state = tmp_path / "ports.toml", str(tmp_path / "state")
    topo.write_text(PORTS_EXAMPLE.read_text())
    applied = cli(sandbox, "apply", "-f", str(topo), "--state-dir", state)
    assert applied.returncode == 0, applied.stderr
    for address in (HOST_UPLINK_ADDRESS, "10.40.0.1"):  # the host's address, and its address on the bridge
        ok, detail = tcp_probe(sandbox.runner, "web", "web", address, 8080, listen_port=80)
        assert ok, detail
    ok, detail = tcp_probe(sandbox.runner, "web", "dns", HOST_UPLINK_ADDRESS, 8080, listen_port=80)
    assert ok, detail
    assert not ping(sandbox.runner, "10.50.0.3", "worker1", count=2)  # icc = false: workers stay apart
    assert ping(sandbox.runner, "192.0.2.2", "worker1")  # and reach the outside
    assert cli(sandbox, "plan", "-f", str(topo), "--state-dir", state).returncode == 0
    # an edit of icc is a change in place, not a conflict
    topo.write_text(PORTS_EXAMPLE.read_text().replace("icc = false", "icc = true"))
    planned = cli(sandbox, "plan", "-f", str(topo), "--state-dir", state)
    assert planned.returncode == 2, planned.stdout + planned.stderr
    assert cli(sandbox, "apply", "-f", str(topo), "--state-dir", state).returncode == 0
    # worker1 asked for worker2's address in vain just before: its neighbour entry may need a moment to retry
    assert ping(sandbox.runner, "10.50.0.3", "worker1", count=8)
    assert cli(sandbox, "plan", "-f", str(topo), "--state-dir", state).returncode == 0
    assert cli(sandbox, "destroy", "-f", str(topo), "--state-dir", state).returncode == 0
    assert before.explain(snapshot.take(sandbox.runner)) == []
    teardown(sandbox.runner, store)


INTERNAL = (Path(__file__).resolve().parents[2] / "examples" / "internal-networks.toml").read_text()


def _reaches(sandbox: Sandbox, target: str, netns: str) -> bool:
    """Whether ``target`` answers ping from ``netns``; no route to it (ping's exit 2) is a no."""
    args = ("-c", "2", "-i", "0.2", "-W", "1", "-q", target)
    done = sandbox.runner.run(Command("ping", args, netns=netns, mutates=False, ok_codes=frozenset({0, 1, 2})))
    return done.returncode == 0


def test_internal_networks_keep_to_themselves_and_nat_false_only_stops_masquerading(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """internal = true: nothing between the bridge and the outside, even with a route back; nat = false: routed,
    not masqueraded, and still closed to new connections from outside (5)."""
    outside = MemoryStore()
    build(outside_objects(), sandbox.runner, outside)
    before = snapshot.take(sandbox.runner)
    topo, state = tmp_path / "inner.toml", str(tmp_path / "state")
    topo.write_text(INTERNAL)
    applied = cli(sandbox, "apply", "-f", str(topo), "--state-dir", state)
    assert applied.returncode == 0, applied.stderr
    # the simulated outside knows the way back to both networks, as a router upstream would
    routes = MemoryStore()
    build([Route(net, HOST_UPLINK_ADDRESS, netns=OUTSIDE) for net in ("10.71.0.0/24", "10.72.0.0/24")],
          sandbox.runner, routes)  # fmt: skip
    assert ping(sandbox.runner, "10.71.0.6", "web")  # inside the internal network: open
    assert ping(sandbox.runner, "10.71.0.6", None)  # the host reaches it through its gateway
    # nothing out: db has no default route, and one of its own making does not help it
    assert not _reaches(sandbox, OUTSIDE_ADDRESS, "db")
    own = MemoryStore()
    build([Route("default", "10.71.0.1", netns="db")], sandbox.runner, own)
    assert not ping(sandbox.runner, OUTSIDE_ADDRESS, "db", count=2)
    teardown(sandbox.runner, own)
    assert not ping(sandbox.runner, "10.71.0.6", OUTSIDE, count=2)  # nothing in, route back or not
    assert not ping(sandbox.runner, "10.71.0.5", OUTSIDE, count=2)  # web's internal address neither
    assert ping(sandbox.runner, OUTSIDE_ADDRESS, "web")  # web goes out through front, its default route
    assert not ping(sandbox.runner, "10.72.0.7", OUTSIDE, count=2)  # nat = false lets nothing new in
    assert ping(sandbox.runner, OUTSIDE_ADDRESS, "app")  # routed out, answered over the route back...
    teardown(sandbox.runner, routes)
    assert not ping(sandbox.runner, OUTSIDE_ADDRESS, "app", count=2)  # ...and only over it: not masqueraded
    assert ping(sandbox.runner, OUTSIDE_ADDRESS, "web")  # front is masqueraded: no route back needed
    assert cli(sandbox, "plan", "-f", str(topo), "--state-dir", state).returncode == 0
    assert cli(sandbox, "destroy", "-f", str(topo), "--state-dir", state).returncode == 0
    assert before.explain(snapshot.take(sandbox.runner)) == []
    teardown(sandbox.runner, outside)


def _mtu(sandbox: Sandbox, device: str, netns: str | None = None) -> int:
    shown = sandbox.runner.run(Command("ip", ("-o", "link", "show", "dev", device), netns=netns, mutates=False))
    words = shown.stdout.split()
    return int(words[words.index("mtu") + 1])


def test_a_networks_mtu_is_set_and_an_edit_of_it_converges_in_place(sandbox: Sandbox, tmp_path: Path) -> None:
    """mtu was neither checked nor compared, so a change never reached the devices (11)."""
    topo, state = tmp_path / "mtu.toml", str(tmp_path / "state")
    text = 'name = "mtu"\n[networks.n]\nsubnet = "10.63.0.0/24"\nmtu = {mtu}\n[containers.c]\nnetworks = ["n"]\n'
    topo.write_text(text.format(mtu=1400))
    assert cli(sandbox, "apply", "-f", str(topo), "--state-dir", state).returncode == 0
    assert (_mtu(sandbox, "v0-c"), _mtu(sandbox, "eth0", "c"), _mtu(sandbox, "mtu-n")) == (1400, 1400, 1400)
    topo.write_text(text.format(mtu=1300))
    assert cli(sandbox, "plan", "-f", str(topo), "--state-dir", state).returncode == 2
    assert cli(sandbox, "apply", "-f", str(topo), "--state-dir", state).returncode == 0
    assert (_mtu(sandbox, "v0-c"), _mtu(sandbox, "eth0", "c"), _mtu(sandbox, "mtu-n")) == (1300, 1300, 1300)
    assert cli(sandbox, "plan", "-f", str(topo), "--state-dir", state).returncode == 0
    assert cli(sandbox, "destroy", "-f", str(topo), "--state-dir", state).returncode == 0


def _mac(sandbox: Sandbox, netns: str) -> str:
    shown = sandbox.runner.run(Command("ip", ("-o", "link", "show", "dev", "eth0"), netns=netns, mutates=False))
    words = shown.stdout.split()
    return words[words.index("link/ether") + 1]


def test_containers_that_swap_addresses_swap_macs_and_answer_at_once(sandbox: Sandbox, tmp_path: Path) -> None:
    """A container's MAC is made of its address; after an edit it follows the address, so that a neighbour
    that knew the address finds the container that has it now (the review's finding 10)."""
    topo, state = tmp_path / "swap.toml", str(tmp_path / "state")
    text = ('name = "swap"\n[networks.n]\nsubnet = "10.64.0.0/24"\n'
            '[containers.a]\nnetworks = [{{ network = "n", address = "{a}" }}]\n'
            '[containers.b]\nnetworks = [{{ network = "n", address = "{b}" }}]\n'
            '[containers.c]\nnetworks = [{{ network = "n", address = "10.64.0.9" }}]\n')  # fmt: skip
    topo.write_text(text.format(a="10.64.0.2", b="10.64.0.3"))
    assert cli(sandbox, "apply", "-f", str(topo), "--state-dir", state).returncode == 0
    assert ping(sandbox.runner, "10.64.0.2", "c", count=1)  # c learns a's MAC for 10.64.0.2
    topo.write_text(text.format(a="10.64.0.3", b="10.64.0.2"))
    assert cli(sandbox, "apply", "-f", str(topo), "--state-dir", state).returncode == 0
    assert (_mac(sandbox, "a"), _mac(sandbox, "b")) == ("02:6e:0a:40:00:03", "02:6e:0a:40:00:02")
    assert ping(sandbox.runner, "10.64.0.2", "c", count=1)  # b has it now, and the MAC c remembers
    assert cli(sandbox, "plan", "-f", str(topo), "--state-dir", state).returncode == 0
    assert cli(sandbox, "destroy", "-f", str(topo), "--state-dir", state).returncode == 0


def _links(sandbox: Sandbox, *args: str) -> list[dict[str, object]]:
    shown = sandbox.runner.run(Command("ip", ("-json", "link", "show", *args), mutates=False))
    return list(json.loads(shown.stdout))


def test_macs_changed_by_hand_or_by_an_older_netwrap_converge_in_place(sandbox: Sandbox, tmp_path: Path) -> None:
    """The bridge's MAC (made of its gateway's address) and each host end's (of its container's) are set again
    by the next apply, in place, and the apply after that has nothing to do; the containers keep their gateway."""
    topo, state = tmp_path / "macs.toml", str(tmp_path / "state")
    topo.write_text('name = "macs"\n[networks.n]\nsubnet = "10.65.0.0/24"\n'
                    '[containers.a]\nnetworks = ["n"]\n[containers.b]\nnetworks = ["n"]\n')  # fmt: skip
    assert cli(sandbox, "apply", "-f", str(topo), "--state-dir", state).returncode == 0
    (bridge,) = _links(sandbox, "type", "bridge")
    name = str(bridge["ifname"])
    ends = {str(x["ifname"]): str(x["address"]) for x in _links(sandbox, "master", name)}
    assert bridge["address"] == "02:6e:0a:41:00:01"  # the gateway 10.65.0.1
    assert sorted(ends.values()) == ["02:6f:0a:41:00:02", "02:6f:0a:41:00:03"]
    end = sorted(ends)[0]
    for device, mac in ((name, "02:00:00:00:00:01"), (end, "02:00:00:00:00:02")):  # as an older netwrap left them
        sandbox.runner.run(Command("ip", ("link", "set", "dev", device, "address", mac)))
    planned = cli(sandbox, "plan", "-f", str(topo), "--state-dir", state)
    assert planned.returncode == 2, planned.stdout + planned.stderr
    lines = [line for line in planned.stdout.splitlines() if line.startswith("link ")]
    assert sorted(lines) == sorted([f"link set dev {end} address {ends[end]}",
                                    f"link set dev {name} address 02:6e:0a:41:00:01"]), planned.stdout  # fmt: skip
    assert cli(sandbox, "apply", "-f", str(topo), "--state-dir", state).returncode == 0
    assert _links(sandbox, "dev", name)[0]["address"] == "02:6e:0a:41:00:01"
    assert _links(sandbox, "dev", end)[0]["address"] == ends[end]
    assert _links(sandbox, "master", name) and len(_links(sandbox, "master", name)) == 2  # still plugged in
    assert cli(sandbox, "plan", "-f", str(topo), "--state-dir", state).returncode == 0  # nothing left to do
    assert ping(sandbox.runner, "10.65.0.1", "a", count=1) and ping(sandbox.runner, "10.65.0.2", "b", count=1)
    assert cli(sandbox, "destroy", "-f", str(topo), "--state-dir", state).returncode == 0
