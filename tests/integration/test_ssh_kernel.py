"""A real OpenSSH server as the far side: the tutorial applied, verified and removed through it.

sshd runs inside the test's sandbox, listening on the sandbox's own 127.0.0.1,
with a host key and a client key made for the test; the client runs inside the
sandbox too. Nothing listens on, or connects to, the machine's own network.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from netwrap import MemoryStore, Sandbox, build, snapshot, teardown, tutorial
from netwrap.command import Command
from netwrap.errors import CommandError
from netwrap.runner import find_tool
from netwrap.ssh import SshRunner
from netwrap.verify import verify
from tests.integration.test_tutorial_kernel import plus_lines
from tests.test_tutorial import DOCUMENT

pytestmark = pytest.mark.integration
PORT = "2222"


@attrs.frozen
class Server:
    sandbox: Sandbox
    options: tuple[str, ...]

    def runner(self) -> SshRunner:
        return SshRunner("root@127.0.0.1", self.options, ssh=(*self.sandbox.prefix, "ssh"))


@pytest.fixture
def sshd(sandbox: Sandbox, tmp_path: Path) -> Iterator[Server]:
    sshd_path = find_tool("sshd")
    assert sshd_path is not None, "the SSH tests need openssh-server (scripts/test.sh installs it)"
    keys = tmp_path / "ssh"
    keys.mkdir(mode=0o700)
    for name in ("host_key", "client_key"):
        sandbox.runner.run(Command("ssh-keygen", ("-q", "-t", "ed25519", "-N", "", "-f", str(keys / name))))
    (keys / "authorized_keys").write_text((keys / "client_key.pub").read_text())
    config = keys / "sshd_config"
    config.write_text(
        f"Port {PORT}\nListenAddress 127.0.0.1\nHostKey {keys / 'host_key'}\n"
        f"AuthorizedKeysFile {keys / 'authorized_keys'}\nPermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPidFile none\n"
    )
    sandbox.runner.run(Command("mkdir", ("-p", "/run/sshd")))  # privilege separation, in the sandbox's /run
    daemon = subprocess.Popen(
        [*sandbox.prefix, sshd_path, "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    options = ("-p", PORT, "-i", str(keys / "client_key"), "-o", "StrictHostKeyChecking=no",
               "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR")  # fmt: skip
    server = Server(sandbox, options)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                server.runner().run(Command("true", (), mutates=False))
                break
            except CommandError:
                if time.monotonic() > deadline or daemon.poll() is not None:
                    raise
                time.sleep(0.1)
        yield server
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)
        if daemon.stderr is not None:
            daemon.stderr.close()


def test_the_tutorial_through_ssh(sshd: Server) -> None:
    local = sshd.sandbox.runner
    before = snapshot.take(local)
    remote = sshd.runner()
    store = MemoryStore()
    build(tutorial.objects("ip"), remote, store, mode="batch")
    assert build(tutorial.objects("ip"), remote, store).changed == ()
    results = verify(remote, python="python3")
    assert all(r.passed for r in results), results
    teardown(remote, store, mode="batch")
    assert before.differences(snapshot.take(local)) == []


def test_the_command_line_through_ssh(sshd: Server, tmp_path: Path) -> None:
    before = snapshot.take(sshd.sandbox.runner)
    ssh = ["--ssh", "root@127.0.0.1", *(f"--ssh-option={word}" for word in _joined(sshd.options))]
    state = ["--state-dir", str(tmp_path / "state")]

    def netwrap(*args: str) -> str:
        result = sshd.sandbox.runner.run(Command(sys.executable, ("-m", "netwrap", *args, *ssh, *state)))
        return result.stdout

    assert plus_lines(netwrap("tutorial", "up", "--bridge-tool", "brctl")) == DOCUMENT
    assert plus_lines(netwrap("tutorial", "up")) == []
    assert "4 of 4 scenarios passed" in netwrap("tutorial", "verify")
    assert (tmp_path / "state" / "tutorial@root@127.0.0.1.json").exists()  # the record stays on this side
    netwrap("tutorial", "down")
    assert before.differences(snapshot.take(sshd.sandbox.runner)) == []


def _joined(options: tuple[str, ...]) -> list[str]:
    """ssh's options as single words (-p2222, -i/key, -oName=value), for --ssh-option=WORD."""
    words, pending = [], ""
    for word in options:
        if word in ("-p", "-i", "-o"):
            pending = word
        else:
            words.append(pending + word)
            pending = ""
    return words
