"""Running containers' namespaces, attached by pid or by a namespace file, on the real kernel (issue 13, part 1)."""

from __future__ import annotations

import subprocess

import pytest

from netwrap import AttachedNamespace, Command, MemoryStore, Sandbox, build, plan_for, teardown
from netwrap.errors import ConflictError
from netwrap.host import snapshot
from netwrap.kinds import Address, LinkUp, VethPair

pytestmark = pytest.mark.integration


def _inside(pid: int, what: str = "addr") -> str:
    """What the container itself sees of its devices (``addr`` or ``link``)."""
    done = subprocess.run(["nsenter", "--target", str(pid), "--net", "ip", "-o", what, "show"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return done.stdout


def _objects(source: str) -> list[object]:
    return [
        AttachedNamespace("c1", source),
        VethPair("v0-c1", "eth0", peer_netns="c1"),
        Address("eth0", "10.80.0.2/24", netns="c1"),
        LinkUp("eth0", netns="c1"),
        LinkUp("v0-c1"),
    ]


def test_a_running_containers_namespace_is_named_wired_and_given_back(
    sandbox: Sandbox, container: subprocess.Popen[bytes]
) -> None:
    before = snapshot.take(sandbox.runner)
    objects = _objects(f"/proc/{container.pid}/ns/net")
    store = MemoryStore()
    build(objects, sandbox.runner, store)  # type: ignore[arg-type]
    assert "10.80.0.2/24" in _inside(container.pid)  # in the container's own namespace
    assert plan_for(objects, sandbox.runner).is_noop  # type: ignore[arg-type]
    teardown(sandbox.runner, store)
    assert container.poll() is None  # the container lives on...
    assert "eth0" not in _inside(container.pid)  # ...without what netwrap added, and with its lo
    assert _inside(container.pid, "link").startswith("1: lo: ")
    assert before.explain(snapshot.take(sandbox.runner)) == []


def test_a_namespace_file_is_attached_by_a_bind_mount(sandbox: Sandbox) -> None:
    sandbox.runner.run(Command("mkdir", ("-p", "/run/holder")))
    sandbox.runner.run(Command("touch", ("/run/holder/ns",)))
    sandbox.runner.run(Command("unshare", ("--net=/run/holder/ns", "true")))
    before = snapshot.take(sandbox.runner)
    store = MemoryStore()
    build(_objects("/run/holder/ns"), sandbox.runner, store)  # type: ignore[arg-type]
    listed = sandbox.runner.run(Command("ip", ("-n", "c1", "-o", "addr", "show"), mutates=False)).stdout
    assert "10.80.0.2/24" in listed
    teardown(sandbox.runner, store)
    assert before.explain(snapshot.take(sandbox.runner)) == []
    # the namespace file is the owner's, untouched
    kept = sandbox.runner.run(Command("nsenter", ("--net=/run/holder/ns", "ip", "-o", "link"), mutates=False))
    assert kept.stdout.startswith("1: lo: ")


def test_when_the_container_has_exited_destroy_removes_what_is_left(
    sandbox: Sandbox, container: subprocess.Popen[bytes]
) -> None:
    before = snapshot.take(sandbox.runner)
    objects = _objects(f"/proc/{container.pid}/ns/net")
    store = MemoryStore()
    build(objects, sandbox.runner, store)  # type: ignore[arg-type]
    container.kill()
    container.wait()
    # the name netwrap gave keeps the namespace, and the host end of the veth, until destroy
    with pytest.raises(ConflictError, match="has exited"):
        build(objects, sandbox.runner, MemoryStore())  # type: ignore[arg-type]
    teardown(sandbox.runner, store)
    assert before.explain(snapshot.take(sandbox.runner)) == []


def test_a_name_that_leads_elsewhere_is_a_conflict(sandbox: Sandbox, container: subprocess.Popen[bytes]) -> None:
    sandbox.runner.run(Command("ip", ("netns", "add", "c1")))
    with pytest.raises(ConflictError, match="another namespace"):
        build([AttachedNamespace("c1", f"/proc/{container.pid}/ns/net")], sandbox.runner, MemoryStore())
