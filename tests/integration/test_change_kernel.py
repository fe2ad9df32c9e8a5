"""Changing what is applied, on the real kernel: the acceptance tests of the engine's convergence.

Each test has its own sandbox (and, to compare with a fresh apply, a second one).
An edited file must reach exactly what applying it fresh reaches; what several
topologies share (``ip_forward``) is reference counted; what a host can hold only
once (a published port, an address range, a bridge, a namespace) is claimed by
one topology, and another asking for it is refused; ``status`` says when what
was applied is no longer all there. The simulated outside is verify's
(namespace Toutside, 192.0.2.2, the host 192.0.2.1 on the uplink).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from netwrap import Sandbox, StateFile, topology_apply, topology_from_dict
from netwrap.command import Command
from netwrap.engine.state import Writer
from netwrap.host import snapshot
from netwrap.host.runner import Result
from netwrap.tutorial.verify import OUTSIDE_ADDRESS, ping
from tests.conftest import require_root

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "two-networks.toml"
TWO_NETWORKS = EXAMPLE.read_text()
CONV = TWO_NETWORKS.replace('name = "twonets"', 'name = "conv"', 1)
DEAD_WRITER = Writer(2**22 + 7, 1)  # a process that is not running (pids stop below 2**22)
EXIT_DEGRADED = 3


def cli(sandbox: Sandbox, *args: str) -> Result:
    """``python -m netwrap ARGS`` inside the sandbox; any exit code is returned, not raised."""
    return sandbox.runner.run(Command(sys.executable, ("-m", "netwrap", *args), ok_codes=frozenset(range(256))))


def sh(sandbox: Sandbox, tool: str, *args: str) -> str:
    return sandbox.runner.run(Command(tool, args)).stdout


def read(sandbox: Sandbox, tool: str, *args: str, netns: str | None = None) -> str:
    return sandbox.runner.run(Command(tool, args, netns=netns, mutates=False)).stdout


def sysctl(sandbox: Sandbox, key: str) -> str:
    """A setting's value; a key naming a device is given in the slash form (``net/ipv4/conf/DEV/...``)."""
    return read(sandbox, "sysctl", "-n", key).strip()


def detail(result: Result) -> str:
    return f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"


def applied_ok(sandbox: Sandbox, file: Path, state: Path, *extra: str) -> Result:
    result = cli(sandbox, "apply", "-f", str(file), "--state-dir", str(state), *extra)
    assert result.returncode == 0, detail(result)
    return result


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def fresh_snapshot(text: str, tmp_path: Path, name: str = "conv.toml") -> snapshot.Snapshot:
    """What applying ``text`` to a new sandbox, with no record, reaches."""
    with Sandbox() as fresh:
        applied_ok(fresh, write(tmp_path / "fresh" / name, text), tmp_path / "fresh-state")
        return snapshot.take(fresh.runner)


def assert_converged(sandbox: Sandbox, file: Path, state: Path, text: str, tmp_path: Path) -> None:
    """The edited sandbox equals a fresh apply of ``text``, and plan finds nothing left to do."""
    edited = snapshot.take(sandbox.runner)
    fresh = fresh_snapshot(text, tmp_path, file.name)
    diff = edited.explain(fresh)
    assert not diff, "applying A then B differs from applying B alone (- edited, + fresh):\n" + "\n".join(diff)
    planned = cli(sandbox, "plan", "-f", str(file), "--state-dir", str(state))
    assert planned.returncode == 0, "plan after the edit is not a no-op: " + detail(planned)


# 1. An edited file converges to what the file alone gives -------------------------------------------------

SIDE = '\n[networks.side]\nsubnet = "10.30.0.0/24"\n\n[containers.x]\nnetworks = ["side"]\n'
FRONT = '[networks.front]\nsubnet = "10.10.0.0/24"'
X_ADDRESS, WEB, API, DB = "10.30.0.2", "10.10.0.2", "10.10.0.3", "10.20.0.2"

EDITS: dict[str, tuple[str, str]] = {
    "a network and a container added": (CONV, CONV + SIDE),
    "a published port's container port changed": (CONV, CONV.replace('"8080:80/tcp"', '"8080:81/tcp"')),
    "a network's bridge renamed": (CONV, CONV.replace(FRONT, FRONT + '\nbridge = "brfront"')),
    "a port's protocol changed from tcp to udp": (CONV, CONV.replace('"8080:80/tcp"', '"8080:80/udp"')),
    "a network with nat added": (CONV, CONV + '\n[networks.extra]\nsubnet = "10.40.0.0/24"\n'),
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_an_edited_file_converges_to_the_fresh_result(sandbox: Sandbox, tmp_path: Path, edit: str) -> None:
    first, second = EDITS[edit]
    assert first != second  # the edit changed the file
    state = tmp_path / "state"
    file = write(tmp_path / "conv.toml", first)
    applied_ok(sandbox, file, state)
    write(file, second)
    applied_ok(sandbox, file, state)
    if edit == "a network and a container added":
        r = sandbox.runner
        assert ping(r, "10.30.0.1", "x"), "x does not reach its own gateway"
        assert not ping(r, X_ADDRESS, "web", count=1), "web reaches x across networks"
        assert not ping(r, X_ADDRESS, "db", count=1), "db reaches x across networks"
        assert not ping(r, WEB, "x", count=1), "x reaches web across networks"
    assert_converged(sandbox, file, state, second, tmp_path)


# 2. What topologies share is reference counted ------------------------------------------------------------


def test_tutorial_down_keeps_ip_forward_for_a_topology_in_the_same_state_dir(outside: Sandbox, tmp_path: Path) -> None:
    sandbox = outside
    state = str(tmp_path / "state")
    before = sysctl(sandbox, "net.ipv4.ip_forward")
    up = cli(sandbox, "tutorial", "up", "--state-dir", state)
    assert up.returncode == 0, detail(up)
    applied_ok(sandbox, EXAMPLE, tmp_path / "state")
    assert ping(sandbox.runner, OUTSIDE_ADDRESS, "web")
    down = cli(sandbox, "tutorial", "down", "--state-dir", state)
    assert down.returncode == 0, detail(down)
    assert "Tdocker0" not in read(sandbox, "ip", "netns", "list").split()  # down did remove the tutorial
    assert sysctl(sandbox, "net.ipv4.ip_forward") == "1", "tutorial down turned ip_forward off under a topology"
    assert ping(sandbox.runner, OUTSIDE_ADDRESS, "web"), "the topology lost the outside after tutorial down"
    destroyed = cli(sandbox, "destroy", "-f", str(EXAMPLE), "--state-dir", state)
    assert destroyed.returncode == 0, detail(destroyed)
    assert sysctl(sandbox, "net.ipv4.ip_forward") == before  # the last user gives back the first value


TOPOLOGY_X = 'name = "X"\n[networks.xa]\nsubnet = "10.61.0.0/24"\n[containers.xc]\nnetworks = ["xa"]\n'
TOPOLOGY_W = 'name = "W"\n[networks.wa]\nsubnet = "10.62.0.0/24"\n[containers.wc]\nnetworks = ["wa"]\n'


def crash(state: Path, stem: str) -> None:
    """Make a finished record look like what a killed apply leaves: incomplete, its writer gone."""
    store = StateFile.in_dir(state, stem)
    record = store.load()
    assert record is not None, f"no record {stem} in {state}"
    record.complete = False
    record.writer = DEAD_WRITER
    store.save(record)


def test_clean_of_a_crashed_apply_keeps_what_a_finished_one_uses(outside: Sandbox, tmp_path: Path) -> None:
    sandbox = outside
    state = tmp_path / "state"
    applied_ok(sandbox, write(tmp_path / "x.toml", TOPOLOGY_X), state)  # X turns ip_forward on
    crash(state, "topology-X")
    applied_ok(sandbox, write(tmp_path / "w.toml", TOPOLOGY_W), state)  # W finds it on and uses it
    cleaned = cli(sandbox, "clean", "--state-dir", str(state))
    assert cleaned.returncode == 0, detail(cleaned)
    assert "xc" not in read(sandbox, "ip", "netns", "list").split()  # clean did remove the crashed run
    assert sysctl(sandbox, "net.ipv4.ip_forward") == "1", "clean turned ip_forward off under topology W"
    assert ping(sandbox.runner, "10.62.0.1", "wc")
    assert ping(sandbox.runner, OUTSIDE_ADDRESS, "wc"), "W lost the outside after clean"


# 3. Two topologies with networks of the same name ---------------------------------------------------------

SAME_NAMES = {
    "X": 'name = "X"\n[networks.xn]\nsubnet = "10.101.0.0/24"\n'
    '[containers.x1]\nnetworks = ["xn"]\n[containers.x2]\nnetworks = ["xn"]\n',
    "W": 'name = "W"\n[networks.xn]\nsubnet = "10.103.0.0/24"\n'
    '[containers.w1]\nnetworks = ["xn"]\n[containers.w2]\nnetworks = ["xn"]\n',
}
PAIRS = {"X": ("x1", "10.101.0.3"), "W": ("w1", "10.103.0.3")}  # a container and its neighbour's address


def bridges(sandbox: Sandbox) -> set[str]:
    return {link["ifname"] for link in json.loads(read(sandbox, "ip", "-json", "link", "show", "type", "bridge"))}


@pytest.mark.parametrize("destroyed", ["X", "W"])
def test_networks_of_the_same_name_in_two_topologies_stay_apart(
    outside: Sandbox, tmp_path: Path, destroyed: str
) -> None:
    sandbox = outside
    r = sandbox.runner
    state = tmp_path / "state"
    files = {name: write(tmp_path / f"{name}.toml", text) for name, text in SAME_NAMES.items()}
    applied_ok(sandbox, files["X"], state)
    applied_ok(sandbox, files["W"], state)
    assert len(bridges(sandbox)) == 2, f"both topologies' xn share a bridge: {sorted(bridges(sandbox))}"
    for container, neighbour in PAIRS.values():
        assert ping(r, neighbour, container), f"{container} does not reach {neighbour}"
    assert not ping(r, "10.101.0.2", "w1", count=1), "W's container reaches X's"
    assert not ping(r, "10.103.0.2", "x1", count=1), "X's container reaches W's"
    gone = cli(sandbox, "destroy", "-f", str(files[destroyed]), "--state-dir", str(state))
    assert gone.returncode == 0, detail(gone)
    (kept,) = set(SAME_NAMES) - {destroyed}
    container, neighbour = PAIRS[kept]
    assert ping(r, neighbour, container), f"{kept} lost its own network when {destroyed} was destroyed"
    assert ping(r, OUTSIDE_ADDRESS, container), f"{kept} lost the outside when {destroyed} was destroyed"
    planned = cli(sandbox, "plan", "-f", str(files[kept]), "--state-dir", str(state))
    assert planned.returncode == 0, detail(planned)


# 4. What a host holds only once is claimed by one topology ------------------------------------------------

CLAIMS: dict[str, tuple[str, str]] = {
    "a published host port": (
        'name = "X"\n[networks.xa]\nsubnet = "10.51.0.0/24"\n[containers.xc]\nnetworks = ["xa"]\nports = ["8080:80"]\n',
        'name = "Y"\n[networks.ya]\nsubnet = "10.52.0.0/24"\n[containers.yc]\nnetworks = ["ya"]\nports = ["8080:80"]\n',
    ),
    "an overlapping subnet": (
        'name = "X"\n[networks.xa]\nsubnet = "10.50.0.0/24"\n[containers.xc]\nnetworks = ["xa"]\n',
        # another gateway than X's: the overlap itself, not a taken address, is what must be refused
        'name = "Y"\n[networks.ya]\nsubnet = "10.50.0.0/16"\ngateway = "10.50.9.1"\n'
        '[containers.yc]\nnetworks = [{ network = "ya", address = "10.50.9.2" }]\n',
    ),
    "an explicitly equal bridge name": (
        'name = "X"\n[networks.xa]\nsubnet = "10.53.0.0/24"\nbridge = "shared0"\n[containers.xc]\nnetworks = ["xa"]\n',
        'name = "Y"\n[networks.ya]\nsubnet = "10.54.0.0/24"\nbridge = "shared0"\n[containers.yc]\nnetworks = ["ya"]\n',
    ),
    "another topology's namespace": (
        'name = "X"\n[networks.xa]\nsubnet = "10.55.0.0/24"\n[containers.xc]\nnetworks = ["xa"]\n',
        'name = "Y"\n[networks.ya]\nsubnet = "10.56.0.0/24"\n[containers.yc]\nnetworks = ["ya"]\nnetns = "xc"\n',
    ),
}  # fmt: skip


@pytest.mark.parametrize("claim", list(CLAIMS))
def test_what_another_topology_holds_is_refused(sandbox: Sandbox, tmp_path: Path, claim: str) -> None:
    first, second = CLAIMS[claim]
    state = tmp_path / "state"
    applied_ok(sandbox, write(tmp_path / "x.toml", first), state)
    before = snapshot.take(sandbox.runner)
    refused = cli(sandbox, "apply", "-f", str(write(tmp_path / "y.toml", second)), "--state-dir", str(state))
    assert refused.returncode == 1, detail(refused)
    assert "Traceback" not in refused.stderr
    assert "topology-X" in refused.stderr, "the refusal does not name the record that holds it: " + refused.stderr
    changed = before.explain(snapshot.take(sandbox.runner))
    assert not changed, "the refused apply changed the host:\n" + "\n".join(changed)


# 5. Settings and links a file no longer wants are given back ----------------------------------------------

PUBLISHER = """
name = "local"

[networks.pub]
subnet = "10.57.0.0/24"

[containers.a]
networks = ["pub"]
ports = ["8080:80"]

[containers.b]
networks = ["pub"]
"""


def bridge_of(sandbox: Sandbox, file: Path, state: Path, network: str) -> str:
    """The bridge of ``network`` as ``status --json`` shows it (default names are the engine's to choose)."""
    shown = cli(sandbox, "status", "--json", "-f", str(file), "--state-dir", str(state))
    assert shown.returncode == 0, detail(shown)
    rows = json.loads(shown.stdout)["containers"]
    found: set[str] = {net["bridge"] for row in rows for net in row["networks"] if net["network"] == network}
    assert len(found) == 1, f"network {network}: bridges {found}"
    return found.pop()


def test_removing_the_last_published_port_turns_route_localnet_off(sandbox: Sandbox, tmp_path: Path) -> None:
    state = tmp_path / "state"
    file = write(tmp_path / "local.toml", PUBLISHER)
    applied_ok(sandbox, file, state)
    setting = f"net/ipv4/conf/{bridge_of(sandbox, file, state, 'pub')}/route_localnet"
    assert sysctl(sandbox, setting) == "1"
    unpublished = PUBLISHER.replace('ports = ["8080:80"]\n', "")
    write(file, unpublished)
    applied_ok(sandbox, file, state)
    assert sysctl(sandbox, setting) == "0", "route_localnet is still on"
    assert_converged(sandbox, file, state, unpublished, tmp_path)


def lo_is_up(sandbox: Sandbox, netns: str) -> bool:
    (lo,) = json.loads(read(sandbox, "ip", "-json", "link", "show", "lo", netns=netns))
    return "UP" in lo["flags"]


def test_loopback_turned_off_leaves_lo_down(sandbox: Sandbox, tmp_path: Path) -> None:
    state = tmp_path / "state"
    file = write(tmp_path / "local.toml", PUBLISHER)
    applied_ok(sandbox, file, state)
    assert lo_is_up(sandbox, "b")
    quiet = PUBLISHER.replace(
        '[containers.b]\nnetworks = ["pub"]\n', '[containers.b]\nnetworks = ["pub"]\nloopback = false\n'
    )
    assert quiet != PUBLISHER
    write(file, quiet)
    applied_ok(sandbox, file, state)
    assert not lo_is_up(sandbox, "b"), "lo is still up in b after loopback = false"
    assert_converged(sandbox, file, state, quiet, tmp_path)


# 6. status tells the truth --------------------------------------------------------------------------------


def ports_chain(sandbox: Sandbox) -> str:
    """The topology's nat chain of published ports: the NETWRAP- chain that holds the DNAT rules."""
    rules = read(sandbox, "iptables", "-t", "nat", "-S").splitlines()
    chains = {line.split()[1] for line in rules if line.startswith("-A NETWRAP-") and "-j DNAT" in line}
    assert len(chains) == 1, rules
    return chains.pop()


# what is broken: (the containers it affects, which must say degraded; containers it surely leaves alone,
# which must still say up: only where the path is plainly separate, as another network's bridge)
DAMAGE: dict[str, tuple[set[str], set[str]]] = {
    "the bridge deleted": ({"web", "api"}, {"db"}),  # front's bridge; db is only on back
    "the nat chain flushed": ({"web"}, {"api", "db"}),  # web's published port, which the others do not use
    "ip_forward turned off": ({"web", "api"}, set()),  # front has outbound nat
}


def damage(sandbox: Sandbox, what: str, state: Path) -> None:
    if what == "the bridge deleted":
        sh(sandbox, "ip", "link", "del", bridge_of(sandbox, EXAMPLE, state, "front"))
    elif what == "the nat chain flushed":
        sh(sandbox, "iptables", "-t", "nat", "-F", ports_chain(sandbox))
    else:
        sh(sandbox, "sysctl", "-w", "net.ipv4.ip_forward=0")


def states(sandbox: Sandbox, args: tuple[str, ...]) -> dict[str, str]:
    shown = cli(sandbox, "status", "--json", *args)
    assert shown.returncode == 0, detail(shown)
    return {row["name"]: row["state"] for row in json.loads(shown.stdout)["containers"]}


def test_status_check_passes_when_everything_is_as_applied(sandbox: Sandbox, tmp_path: Path) -> None:
    args = ("-f", str(EXAMPLE), "--state-dir", str(tmp_path / "state"))
    applied_ok(sandbox, EXAMPLE, tmp_path / "state")
    assert states(sandbox, args) == dict.fromkeys(["web", "api", "db"], "up")
    for quick in ((), ("--quick",)):
        checked = cli(sandbox, "status", "--check", *args, *quick)
        assert checked.returncode == 0, f"status --check {' '.join(quick)}: " + detail(checked)


@pytest.mark.parametrize("what", list(DAMAGE))
def test_status_says_degraded_when_what_was_applied_is_broken(sandbox: Sandbox, tmp_path: Path, what: str) -> None:
    args = ("-f", str(EXAMPLE), "--state-dir", str(tmp_path / "state"))
    applied_ok(sandbox, EXAMPLE, tmp_path / "state")
    assert states(sandbox, args) == dict.fromkeys(["web", "api", "db"], "up")
    damage(sandbox, what, tmp_path / "state")
    shown = states(sandbox, args)
    affected, unaffected = DAMAGE[what]
    assert {name: shown[name] for name in affected} == dict.fromkeys(affected, "degraded"), shown
    assert {name: shown[name] for name in unaffected} == dict.fromkeys(unaffected, "up"), shown
    for quick in ((), ("--quick",)):
        checked = cli(sandbox, "status", "--check", *args, *quick)
        assert checked.returncode == EXIT_DEGRADED, f"status --check {' '.join(quick)}: " + detail(checked)


# 7. A host whose eth0 is a veth ---------------------------------------------------------------------------


def test_a_host_whose_eth0_is_a_veth(sandbox: Sandbox, tmp_path: Path) -> None:
    sh(sandbox, "ip", "netns", "add", "other")
    sh(sandbox, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "up1", "netns", "other")
    before = snapshot.take(sandbox.runner)
    applied_ok(sandbox, EXAMPLE, tmp_path / "state")
    r = sandbox.runner
    assert ping(r, WEB, "api")
    assert ping(r, DB, "api")
    assert ping(r, API, "web")
    host_eth0 = json.loads(read(sandbox, "ip", "-d", "-json", "link", "show", "eth0"))
    assert host_eth0[0]["linkinfo"]["info_kind"] == "veth"
    assert "up1" in read(sandbox, "ip", "-o", "link", "show", netns="other")
    destroyed = cli(sandbox, "destroy", "-f", str(EXAMPLE), "--state-dir", str(tmp_path / "state"))
    assert destroyed.returncode == 0, detail(destroyed)
    left = before.explain(snapshot.take(sandbox.runner))
    assert not left, "destroy did not give the host back as it was:\n" + "\n".join(left)


# 8. A damaged record is an error, not "nothing to do" -----------------------------------------------------


def damage_record(path: Path) -> None:
    """Make one created object invalid (a namespace named ``../etc``), its key left as it was."""
    data: dict[str, Any] = json.loads(path.read_text())
    namespace = next(obj for obj in data["created"] if obj.get("type") == "Namespace")
    namespace["name"] = "../etc"
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("quick", [(), ("--quick",)], ids=["apply", "apply --quick"])
def test_apply_with_a_damaged_record_fails_clearly(sandbox: Sandbox, tmp_path: Path, quick: tuple[str, ...]) -> None:
    state = tmp_path / "state"
    applied_ok(sandbox, EXAMPLE, state, *quick)
    applied_ok(sandbox, EXAMPLE, state, *quick)  # with --quick: a no-op, remembered
    damage_record(state / "topology-twonets.json")
    result = cli(sandbox, "apply", "-f", str(EXAMPLE), "--state-dir", str(state), *quick)
    assert result.returncode == 1, detail(result)
    assert "Traceback" not in result.stderr
    assert "nothing to do" not in result.stderr
    assert "netwrap: error:" in result.stderr and "damaged" in result.stderr, result.stderr


def test_a_container_moved_to_another_network_while_its_neighbour_leaves(tmp_path: Path) -> None:
    """The property test's find: c1 and c2 on n1, then only c2, on n2; c2's old default route stayed."""
    require_root()
    a = {"name": "prop", "networks": {"n1": {"subnet": "10.31.0.0/24"}, "n2": {"subnet": "10.32.0.0/24"}},
         "containers": {"c1": {"networks": [{"network": "n1", "address": "10.31.0.11"}]},
                        "c2": {"networks": [{"network": "n1", "address": "10.31.0.12"}]}}}  # fmt: skip
    b = {"name": "prop", "networks": {"n2": {"subnet": "10.32.0.0/24"}},
         "containers": {"c2": {"networks": [{"network": "n2", "address": "10.32.0.12"}]}}}  # fmt: skip
    pictures: list[snapshot.Snapshot] = []
    for steps in ((a, b), (b,)):
        state = tmp_path / f"state{len(pictures)}"
        with Sandbox() as sandbox:
            for data in steps:
                topo = topology_from_dict(data, source="prop")
                topology_apply.apply(topo, sandbox.runner, topology_apply.store_for(topo, state))
            assert topology_apply.plan_topology(topo, sandbox.runner, topology_apply.store_for(topo, state)).is_noop
            pictures.append(snapshot.take(sandbox.runner))
    assert pictures[0].explain(pictures[1]) == []
