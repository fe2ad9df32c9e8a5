"""A running container's namespace, named by netwrap: the kind, its reads, its checks (issue 13, part 1)."""

from __future__ import annotations

import re
from pathlib import Path

import attrs
import pytest
from pytest_subprocess import FakeProcess

from netwrap import AttachedNamespace, HostState, MemoryStore, Namespace, StateFile, SubprocessRunner, teardown
from netwrap.cli import main as cli_main
from netwrap.engine.state import Record
from netwrap.errors import NetwrapError, TopologyError, ValidationError
from netwrap.host import parse
from netwrap.host.observe import observe
from netwrap.kinds import LinkUp
from netwrap.topology import attached, compose
from netwrap.topology import files as topofile
from netwrap.topology.model import Attachment, Container, Port
from tests.test_tutorial import seen

# captured: stat -L --printf '%d:%i %n\n' -- /run/netns/c1 /proc/4242/ns/net /nope (exit 1: /nope is on stderr)
STAT = "4:4026532248 /run/netns/c1\n4:4026532248 /proc/4242/ns/net\n"
HOSTS = "4:4026531840 /proc/self/ns/net\n4:4026531840 /proc/1/ns/net\n"  # the host's own, as stat shows them


def test_identities_are_read_from_stat() -> None:
    assert parse.identities(STAT) == {"/run/netns/c1": "4:4026532248", "/proc/4242/ns/net": "4:4026532248"}
    assert parse.identities("garbage\n:1 /x\n4: /y\n") == {}


def test_a_pid_is_attached_with_ip_netns_attach_and_a_file_with_a_bind_mount() -> None:
    by_pid = AttachedNamespace("c1", "/proc/4242/ns/net")
    assert by_pid.pid == 4242
    assert [c.shell() for c in by_pid.create_commands()] == ["ip netns attach c1 4242"]
    by_file = AttachedNamespace("c1", "/run/docker/netns/abc")
    assert [c.shell() for c in by_file.create_commands()] == [
        "mkdir -p /run/netns",
        "touch /run/netns/c1",
        "mount --bind /run/docker/netns/abc /run/netns/c1",
    ]
    # detaching takes the name away; the namespace stays with its processes, and nothing goes along
    assert [c.shell() for c in by_file.delete_commands()] == ["ip netns del c1"]
    assert by_file.takes_along().namespaces == frozenset()


@pytest.mark.parametrize("source", ["proc/1/ns/net", "/proc/1/ns/../net", "/a b", "/a\nb", "//x", "/x/", 5, None])
def test_a_bad_source_is_refused_naming_the_field(source: object) -> None:
    with pytest.raises(ValidationError, match=r"AttachedNamespace\.source"):
        AttachedNamespace("c1", source)


HOST_IDS = {"/proc/self/ns/net": "4:99", "/proc/1/ns/net": "4:99"}  # the host's own namespace, as stat shows it


def _state(listed: bool, files: dict[str, str]) -> HostState:
    """The host's namespace read as well, unless ``files`` says otherwise about it (``"-"``: it was not read)."""
    given = {k: v for k, v in files.items() if k != "-"}
    if not any(path in files for path in (*HOST_IDS, "-")):
        given = {**HOST_IDS, **given}
    return HostState(namespaces=("c1",) if listed else (), files=given)


@pytest.mark.parametrize(
    ("listed", "files", "status", "reason"),
    [
        (False, {"/proc/4242/ns/net": "4:1"}, "missing", "not named"),
        (True, {"/run/netns/c1": "4:1", "/proc/4242/ns/net": "4:1"}, "present", "process 4242's"),
        (True, {"/run/netns/c1": "4:2", "/proc/4242/ns/net": "4:1"}, "conflict", "another namespace"),
        (True, {"/run/netns/c1": "4:2"}, "conflict", "has exited"),
        (False, {}, "conflict", "no namespace to attach"),
        # the host's own namespace (pid 1's, or the reader's), and a file that is no namespace: never attached
        (False, {"/proc/4242/ns/net": "4:9", "/proc/self/ns/net": "4:9"}, "conflict", "host's own"),
        (True, {"/run/netns/c1": "4:9", "/proc/4242/ns/net": "4:9", "/proc/1/ns/net": "4:9"}, "conflict", "host's"),
        (False, {"/proc/4242/ns/net": "2049:77", "/proc/self/ns/net": "4:9"}, "conflict", "not a namespace file"),
        # a pid reused by a host process after the container exited: the restart is what to tell
        (
            True,
            {"/run/netns/c1": "4:2", "/proc/4242/ns/net": "4:9", "/proc/self/ns/net": "4:9"},
            "conflict",
            "restarted?",
        ),
        # the host's own namespace not read (no /proc): never attached unchecked
        (False, {"/proc/4242/ns/net": "4:1", "-": ""}, "conflict", "could not be read"),
    ],
)
def test_assessed_by_what_the_name_and_the_process_lead_to(
    listed: bool, files: dict[str, str], status: str, reason: str
) -> None:
    verdict = AttachedNamespace("c1", "/proc/4242/ns/net").assess(_state(listed, files))
    assert (verdict.status, reason in verdict.reason) == (status, True), verdict.reason


def test_a_removal_goes_by_the_name_alone() -> None:
    gone = AttachedNamespace("c1", "/proc/4242/ns/net")
    assert gone.exists(_state(True, {"/run/netns/c1": "4:2"}))  # the process has exited: still detached
    assert not gone.exists(_state(False, {}))


def test_observe_reads_both_identities_in_one_stat(fp: FakeProcess, runner: SubprocessRunner) -> None:
    fp.register(["ip", "netns", "list"], stdout="c1\n")
    fp.register(
        ["stat", "-L", "--printf", "%d:%i %n\\n", "--", "/proc/1/ns/net", "/proc/4242/ns/net", "/proc/self/ns/net",
         "/run/netns/c1"],
        stdout=STAT + HOSTS, stderr="stat: cannot statx '/nope'\n", returncode=0,
    )  # fmt: skip
    state = observe(runner, [AttachedNamespace("c1", "/proc/4242/ns/net")])
    assert state.files["/run/netns/c1"] == state.files["/proc/4242/ns/net"]
    assert AttachedNamespace("c1", "/proc/4242/ns/net").assess(state).status == "present"


def test_removing_it_reads_the_listing_alone(fp: FakeProcess, runner: SubprocessRunner) -> None:
    """No stat: the name goes whatever it leads to, so a removal (a CNI DEL's) waits for no identity read."""
    gone = AttachedNamespace("c1", "/proc/4242/ns/net")
    store = MemoryStore()
    store.save(Record(created=[gone], complete=True, uses=[gone.key]))
    fp.register(["ip", "netns", "list"], stdout="c1\n")
    fp.register(["ip", "netns", "del", "c1"])
    teardown(runner, store)
    assert seen(fp) == [("ip", "netns", "list"), ("ip", "netns", "del", "c1")]


# --- in topology files, and from the command line ---------------------------------------------------------------

BASE = '[networks.n]\nsubnet = "10.1.0.0/24"\n'


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('[containers.a]\nnetworks=["n"]\npid = "x"\n', "[containers.a] pid: must be an integer"),
        ('[containers.a]\nnetworks=["n"]\npid = 0\n', "[containers.a] pid: 0 is not a process id"),
        ('[containers.a]\nnetworks=["n"]\npid = 4\nnetns_path="/x"\n', "give pid or netns_path, not both"),
        ('[containers.a]\nnetworks=["n"]\nnetns_path="x y"\n', "[containers.a] netns_path: 'x y'"),
        ('[containers.a]\nnetworks=["n"]\npid = 4\nloopback=true\n', "a running container's lo is its own"),
        ('[containers.a]\nnetwork_mode="host"\npid = 4\n', "no namespace of its own to attach"),
        ('[containers.a]\nnetworks=["n"]\npid = 4\n[containers.b]\nnetworks=["n"]\npid = 4\n',
         "interface 'eth0' is also container 'a''s, in the same namespace /proc/4/ns/net"),
    ],
)  # fmt: skip
def test_a_running_container_in_a_file_is_checked_when_read(extra: str, message: str) -> None:
    with pytest.raises(TopologyError, match=re.escape(message)):
        topofile.loads(BASE + extra, "t.toml")


def test_a_running_container_in_a_file_is_attached_not_made() -> None:
    topo = topofile.loads(BASE + '[containers.a]\nnetworks=["n"]\npid = 4242\n', "t.toml")
    (container,) = topo.containers
    assert (container.source, container.loopback) == ("/proc/4242/ns/net", False)
    objects = compose.objects(topo, compose.allocate(topo))
    assert AttachedNamespace("a", "/proc/4242/ns/net") in objects
    assert not any(isinstance(o, Namespace) for o in objects)
    assert not any(isinstance(o, LinkUp) and o.device == "lo" for o in objects)  # its lo is its own


def test_attached_containers_are_kept_beside_the_record(tmp_path: Path) -> None:
    store = StateFile.in_dir(tmp_path, "topology-t")
    topo = topofile.loads(BASE + '[containers.a]\nnetworks=["n"]\n', "t.toml")
    web = Container("web", networks=(Attachment("n"),), ports=(Port.parse("p", "8080:80"),), loopback=False,
                    source="/proc/7/ns/net")  # fmt: skip
    assert attached.load(store) == ()
    attached.save(store, [web])
    assert attached.load(store) == (web,)
    assert attached.path_for(store).stat().st_mode & 0o777 == 0o600
    merged = attached.merged(topo, attached.load(store), "t.toml")
    assert [c.name for c in merged.containers] == ["a", "web"]
    clash = attrs.evolve(web, name="a")
    with pytest.raises(TopologyError, match="declared twice"):
        attached.merged(topo, [clash], "t.toml")
    attached.save(store, [])
    assert not attached.path_for(store).exists()


def test_a_list_others_may_write_is_refused(tmp_path: Path) -> None:
    store = StateFile.in_dir(tmp_path, "topology-t")
    attached.path_for(store).write_text('{"format": 1, "containers": []}')
    attached.path_for(store).chmod(0o666)
    with pytest.raises(NetwrapError, match="may be written by others"):
        attached.load(store)


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["attach", "-f", "t.toml", "--network", "n"], "one of the arguments --pid --netns-path is required"),
        (["attach", "-f", "t.toml", "--pid", "0", "--network", "n"], "is not a process id"),
        (["attach", "-f", "t.toml", "--pid", "12", "--netns-path", "/x", "--network", "n"], "not allowed with"),
        (["attach", "-f", "t.toml", "--netns-path", "rel", "--network", "n"], "must be an absolute path"),
        (["attach", "-f", "t.toml", "--pid", "12"], "--network"),
        (["attach", "-f", "t.toml", "--pid", "12", "--network", "n", "-p", "80"], "80:80"),
        (["detach", "-f", "t.toml"], "--name"),
    ],
)
def test_attach_and_detach_refuse_what_they_cannot_read(
    argv: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        cli_main.parse(argv)
    assert caught.value.code == 64
    assert words in capsys.readouterr().err


def test_run_netns_is_made_only_where_no_namespace_is_listed_yet() -> None:
    by_file = AttachedNamespace("c1", "/run/docker/netns/abc")
    assert by_file.plan_commands(HostState(namespaces=()))[0].shell() == "mkdir -p /run/netns"
    assert [c.shell() for c in by_file.plan_commands(HostState(namespaces=("x",)))] == [
        "touch /run/netns/c1",
        "mount --bind /run/docker/netns/abc /run/netns/c1",
    ]
