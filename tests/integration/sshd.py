"""A real OpenSSH server inside a sandbox, with a host key and a client key made for the test."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from netwrap import Sandbox
from netwrap.command import Command
from netwrap.errors import CommandError
from netwrap.host.runner import find_tool
from netwrap.host.ssh import SshRunner

PORT = "2222"


def make_keys(sandbox: Sandbox, keys: Path) -> None:
    keys.mkdir(mode=0o700, exist_ok=True)
    for name in ("host_key", "client_key"):
        if not (keys / name).exists():
            sandbox.runner.run(Command("ssh-keygen", ("-q", "-t", "ed25519", "-N", "", "-f", str(keys / name))))
    (keys / "authorized_keys").write_text((keys / "client_key.pub").read_text())


def client_options(keys: Path) -> tuple[str, ...]:
    return ("-p", PORT, "-i", str(keys / "client_key"), "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR")  # fmt: skip


def one_word_options(keys: Path) -> list[str]:
    """The client options as single words (-p2222, -i/key, -oName=value), for --ssh-option=WORD."""
    words, pending = [], ""
    for word in client_options(keys):
        if word in ("-p", "-i", "-o"):
            pending = word
        else:
            words.append(pending + word)
            pending = ""
    return words


@contextmanager
def sshd(sandbox: Sandbox, keys: Path, listen: str, client: Sandbox | None = None) -> Iterator[SshRunner]:
    """Start sshd in ``sandbox`` on ``listen``:2222; yield a runner that reaches it from ``client``."""
    path = find_tool("sshd")
    assert path is not None, "the SSH tests need openssh-server (scripts/test.sh installs it)"
    make_keys(sandbox, keys)
    config = keys / f"sshd_config_{listen}"
    config.write_text(
        f"Port {PORT}\nListenAddress {listen}\nHostKey {keys / 'host_key'}\n"
        f"AuthorizedKeysFile {keys / 'authorized_keys'}\nPermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPidFile none\n"
    )
    sandbox.runner.run(Command("mkdir", ("-p", "/run/sshd")))  # privilege separation, in the sandbox's /run
    daemon = subprocess.Popen(
        [*sandbox.prefix, path, "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    runner = SshRunner(f"root@{listen}", client_options(keys), ssh=(*(client or sandbox).prefix, "ssh"))
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                runner.run(Command("true", (), mutates=False))
                break
            except CommandError:
                if time.monotonic() > deadline or daemon.poll() is not None:
                    raise
                time.sleep(0.1)
        yield runner
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)
