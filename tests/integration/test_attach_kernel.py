"""Running containers' namespaces, attached by pid or by a namespace file, on the real kernel (issue 13, part 1)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from netwrap import AttachedNamespace, Command, MemoryStore, Sandbox, build, plan_for, teardown
from netwrap.errors import ConflictError
from netwrap.host import snapshot
from netwrap.host.runner import Result
from netwrap.kinds import Address, LinkUp, VethPair
from tests.integration.conftest import wait_unshared

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


def test_the_hosts_own_namespace_or_a_file_that_is_none_is_never_attached(sandbox: Sandbox, tmp_path: Path) -> None:
    """What netwrap would build in the host's own namespace lands among the host's devices and routes (a default
    route into the bridge), and could not be taken back; a file that is no network namespace fails half way."""
    before = snapshot.take(sandbox.runner)
    state = str(tmp_path / "state")
    topo = tmp_path / "own.toml"
    topo.write_text('name = "own"\n\n[networks.apps]\nsubnet = "10.86.0.0/24"\nnat = true\n')
    host_process = subprocess.Popen([*sandbox.prefix, "sleep", "300"])  # in the sandbox's host namespace
    sandbox.runner.run(Command("touch", ("/run/plain",)))
    try:
        for args, words in (
            (("--pid", str(host_process.pid)), "host's own"),
            (("--netns-path", "/proc/self/ns/net", "--name", "me"), "host's own"),
            (("--netns-path", "/run/plain", "--name", "plain"), "not a namespace file"),
            (("--netns-path", f"/proc/{host_process.pid}/ns/mnt", "--name", "mnt"), "another kind"),
        ):
            done = cli(sandbox, "attach", "-f", str(topo), "--state-dir", state, *args, "--network", "apps")
            assert done.returncode != 0 and words in done.stderr, (args, done.stderr)
            assert "nothing was changed" in done.stderr, done.stderr
        # named in a file: the check of the attached namespace refuses it before any change
        named = tmp_path / "named.toml"
        named.write_text(topo.read_text() + f'\n[containers.me]\nnetworks = ["apps"]\npid = {host_process.pid}\n')
        done = cli(sandbox, "apply", "-f", str(named), "--state-dir", state)
        assert done.returncode != 0 and "host's own" in done.stderr, done.stderr
        done = cli(sandbox, "destroy", "-f", str(named), "--state-dir", state)
        assert done.returncode == 0, done.stderr
        # a namespace of another kind named in a file: the kernel is asked before anything runs
        other = tmp_path / "other.toml"
        other.write_text(
            topo.read_text()
            + f'\n[containers.uts]\nnetworks = ["apps"]\nnetns_path = "/proc/{host_process.pid}/ns/uts"\n'
        )
        done = cli(sandbox, "apply", "-f", str(other), "--state-dir", state)
        assert done.returncode != 0 and "another kind" in done.stderr and "nothing was changed" in done.stderr, (
            done.stderr
        )
    finally:
        host_process.kill()
        host_process.wait()
    sandbox.runner.run(Command("rm", ("/run/plain",)))
    assert before.explain(snapshot.take(sandbox.runner)) == []


def cli(sandbox: Sandbox, *args: str) -> Result:
    return sandbox.runner.run(Command(sys.executable, ("-m", "netwrap", *args), ok_codes=frozenset(range(256))))


def test_an_attach_that_fails_half_way_says_it_was_given_back_and_a_detach_says_what_the_file_lacks(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """The container has an eth0 of its own: the veth cannot be made; attach removes what it had made and says
    so (not "run again"). Then the file loses the network two attached containers use: detach says why."""
    before = snapshot.take(sandbox.runner)
    state = str(tmp_path / "state")
    topo = tmp_path / "two.toml"
    text = 'name = "two"\n\n[networks.apps]\nsubnet = "10.87.0.0/24"\n\n[networks.more]\nsubnet = "10.88.0.0/24"\n'
    topo.write_text(text)
    owning = subprocess.Popen([*sandbox.prefix, "unshare", "--net", "sh", "-c",
                               "ip link add eth0 type veth peer name own0 && exec sleep 300"])  # fmt: skip
    plain = [subprocess.Popen([*sandbox.prefix, "unshare", "--net", "sleep", "300"]) for _ in range(2)]
    try:
        for process in (owning, *plain):
            wait_unshared(sandbox, process.pid)
        deadline = time.monotonic() + 5
        while Path(f"/proc/{owning.pid}/comm").read_text().strip() != "sleep" and time.monotonic() < deadline:
            time.sleep(0.02)  # its eth0 made (the shell then becomes sleep)
        done = cli(sandbox, "attach", "-f", str(topo), "--state-dir", state, "--pid", str(owning.pid),
                   "--network", "apps")  # fmt: skip
        assert done.returncode != 0 and "attach removed what it had made again" in done.stderr, done.stderr
        assert "run again" not in done.stderr
        assert "eth0" in _inside(owning.pid, "link")  # its own, untouched
        for process in plain:
            done = cli(sandbox, "attach", "-f", str(topo), "--state-dir", state, "--pid", str(process.pid),
                       "--network", "more")  # fmt: skip
            assert done.returncode == 0, done.stderr
        topo.write_text(
            text.split("\n\n[networks.more]", maxsplit=1)[0] + "\n"
        )  # the network they use is gone from the file
        done = cli(sandbox, "detach", "-f", str(topo), "--state-dir", state, "--name", f"pid-{plain[0].pid}")
        assert done.returncode != 0 and "does not fit the containers that stay attached" in done.stderr, done.stderr
        topo.write_text(text)
        for process in plain:
            done = cli(sandbox, "detach", "-f", str(topo), "--state-dir", state, "--name", f"pid-{process.pid}")
            assert done.returncode == 0, done.stderr
        assert cli(sandbox, "destroy", "-f", str(topo), "--state-dir", state).returncode == 0
    finally:
        for process in (owning, *plain):
            process.kill()
            process.wait()
    assert before.explain(snapshot.take(sandbox.runner)) == []
