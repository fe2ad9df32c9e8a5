"""A running container's namespace, named by netwrap: the kind, its reads, its checks (issue 13, part 1)."""

from __future__ import annotations

import pytest
from pytest_subprocess import FakeProcess

from netwrap import AttachedNamespace, HostState, SubprocessRunner
from netwrap.errors import ValidationError
from netwrap.host import parse
from netwrap.host.observe import observe

# captured: stat -L --printf '%d:%i %n\n' -- /run/netns/c1 /proc/4242/ns/net /nope (exit 1: /nope is on stderr)
STAT = "4:4026532248 /run/netns/c1\n4:4026532248 /proc/4242/ns/net\n"


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


@pytest.mark.parametrize(
    "source", ["proc/1/ns/net", "/proc/1/ns/../net", "/a b", "/a\nb", "//x", "/x/", 5, None, "/run/netns/other"]
)
def test_a_bad_source_is_refused_naming_the_field(source: object) -> None:
    with pytest.raises(ValidationError, match=r"AttachedNamespace\.source"):
        AttachedNamespace("c1", source)


def _state(listed: bool, files: dict[str, str]) -> HostState:
    return HostState(namespaces=("c1",) if listed else (), files=files)


@pytest.mark.parametrize(
    ("listed", "files", "status", "reason"),
    [
        (False, {"/proc/4242/ns/net": "4:1"}, "missing", "not named"),
        (True, {"/run/netns/c1": "4:1", "/proc/4242/ns/net": "4:1"}, "present", "process 4242's"),
        (True, {"/run/netns/c1": "4:2", "/proc/4242/ns/net": "4:1"}, "conflict", "another namespace"),
        (True, {"/run/netns/c1": "4:2"}, "conflict", "has exited"),
        (False, {}, "conflict", "no namespace to attach"),
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
        ["stat", "-L", "--printf", "%d:%i %n\\n", "--", "/proc/4242/ns/net", "/run/netns/c1"],
        stdout=STAT, stderr="stat: cannot statx '/nope'\n", returncode=0,
    )  # fmt: skip
    state = observe(runner, [AttachedNamespace("c1", "/proc/4242/ns/net")])
    assert state.files["/run/netns/c1"] == state.files["/proc/4242/ns/net"]
    assert AttachedNamespace("c1", "/proc/4242/ns/net").assess(state).status == "present"
