"""A real OpenSSH server as the far side: the tutorial applied, verified and removed through it.

sshd runs inside the test's sandbox, listening on the sandbox's own 127.0.0.1,
with a host key and a client key made for the test; the client runs inside the
sandbox too. Nothing listens on, or connects to, the machine's own network.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from netwrap import MemoryStore, Sandbox, build, teardown, tutorial
from netwrap.command import Command
from netwrap.host import snapshot
from netwrap.host.ssh import SshRunner
from netwrap.tutorial.verify import verify
from tests.integration.sshd import one_word_options, sshd
from tests.integration.test_tutorial_kernel import plus_lines
from tests.test_tutorial import DOCUMENT

pytestmark = pytest.mark.integration


@attrs.frozen
class Server:
    sandbox: Sandbox
    keys: Path
    remote: SshRunner


@pytest.fixture
def server(sandbox: Sandbox, tmp_path: Path) -> Iterator[Server]:
    with sshd(sandbox, tmp_path / "ssh", "127.0.0.1") as remote:
        yield Server(sandbox, tmp_path / "ssh", remote)


def test_the_tutorial_through_ssh(server: Server) -> None:
    local = server.sandbox.runner
    before = snapshot.take(local)
    remote = server.remote
    store = MemoryStore()
    build(tutorial.objects("ip"), remote, store, mode="batch")
    assert build(tutorial.objects("ip"), remote, store).changed == ()
    results = verify(remote, python="python3")
    assert all(r.passed for r in results), results
    teardown(remote, store, mode="batch")
    assert before.differences(snapshot.take(local)) == []


def test_the_command_line_through_ssh(server: Server, tmp_path: Path) -> None:
    before = snapshot.take(server.sandbox.runner)
    ssh = ["--ssh", "root@127.0.0.1", *(f"--ssh-option={word}" for word in one_word_options(server.keys))]
    state = ["--state-dir", str(tmp_path / "state")]

    def netwrap(*args: str) -> str:
        result = server.sandbox.runner.run(Command(sys.executable, ("-m", "netwrap", *args, *ssh, *state)))
        return result.stdout

    assert plus_lines(netwrap("tutorial", "up", "--bridge-tool", "brctl")) == DOCUMENT
    assert plus_lines(netwrap("tutorial", "up")) == []
    assert "4 of 4 scenarios passed" in netwrap("tutorial", "verify")
    assert (tmp_path / "state" / "tutorial@root@127.0.0.1.json").exists()  # the record stays on this side
    netwrap("tutorial", "down")
    assert before.differences(snapshot.take(server.sandbox.runner)) == []
