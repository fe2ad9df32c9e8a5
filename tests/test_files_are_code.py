"""Topology and cluster files are code: netwrap acts on them as root (issue 12, item 1).

A cluster file could name a local program as its ssh client, or give ssh
options that run one (ProxyCommand, LocalCommand, ...), and ``plan`` ran it as
root. Such settings are refused in a file (the command line may still give
them), and a file, or its directory, that someone else could have written is
refused, as OpenSSH treats its configuration.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pytest_subprocess import FakeProcess

from netwrap.cli import main as cli
from netwrap.errors import TopologyError
from netwrap.host.ssh import SshRunner, local_program_option
from netwrap.topology import files as topofile

CLUSTER = Path(__file__).resolve().parent.parent / "examples" / "cluster" / "three-machines.toml"
TOPOLOGY = 'name = "t"\n[networks.n]\nsubnet = "10.1.0.0/24"\n'


@pytest.mark.parametrize(
    "words",
    [
        ["-oProxyCommand=touch /tmp/pwned"],
        ["-o", "ProxyCommand=touch /tmp/pwned"],
        ["-o", "proxycommand touch /tmp/pwned"],
        ["-oLocalCommand=id", "-oPermitLocalCommand=yes"],
        ["-oKnownHostsCommand=/bin/true"],
        ["-oMatch=exec true"],
        ["-oInclude=/srv/other.conf"],
        ["-I", "/srv/evil.so"],
        ["-oPKCS11Provider=/srv/evil.so"],
    ],
)
def test_ssh_options_that_run_local_programs_are_found(words: list[str]) -> None:
    assert local_program_option(words) is not None


@pytest.mark.parametrize(
    "words", [["-p2222"], ["-oStrictHostKeyChecking=no"], ["-i", "/root/.ssh/lab"], ["-J", "jump"]]
)
def test_ordinary_ssh_options_pass(words: list[str]) -> None:
    assert local_program_option(words) is None


def evil(tmp_path: Path, line: str) -> Path:
    text = CLUSTER.read_text().replace('ssh_options = ["-p2222"]', line)
    path = tmp_path / "evil.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ('ssh_command = ["sh", "-c", "touch /tmp/pwned", "x"]', "ssh_command"),
        ('ssh_options = ["-oProxyCommand=touch /tmp/pwned"]', "ssh_options"),
        ('ssh_command = ["ssh", "-o", "LocalCommand=id", "-oPermitLocalCommand=yes"]', "ssh_command"),
    ],
)
def test_a_cluster_file_that_would_run_a_local_program_is_refused_before_anything_runs(
    tmp_path: Path, fp: FakeProcess, capsys: pytest.CaptureFixture[str], line: str, field: str
) -> None:
    code = cli.main(["plan", "-f", str(evil(tmp_path, line)), "--state-dir", str(tmp_path / "state")])
    err = capsys.readouterr().err
    assert code == 1
    assert f"[hosts.c] {field}" in err
    assert "runs a local program" in err or "is not an ssh client" in err
    assert list(fp.calls) == []  # nothing was started


def test_the_command_line_may_still_give_such_options() -> None:
    runner = SshRunner("root@lab1", ("-oProxyCommand=ssh -W %h:%p bastion",))
    assert runner.options == ("-oProxyCommand=ssh -W %h:%p bastion",)


def test_a_file_or_directory_others_may_write_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "lab.toml"
    file.write_text(TOPOLOGY)
    assert topofile.load(file).name == "t"
    file.chmod(0o666)
    with pytest.raises(TopologyError, match=r"\[file\] mode: others may write the file .*lab.toml \(mode 0666\)"):
        topofile.load(file)
    file.chmod(0o644)
    tmp_path.chmod(0o777)
    try:
        with pytest.raises(TopologyError, match=r"others may write the directory .* \(mode 0777\)"):
            topofile.load(file)
        tmp_path.chmod(0o1777)  # sticky, as /tmp: others cannot replace the file
        assert topofile.load(file).name == "t"
    finally:
        tmp_path.chmod(0o700)


def test_a_file_of_another_user_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("giving a file to another user needs root (CI runs as root)")
    file = tmp_path / "lab.toml"
    file.write_text(TOPOLOGY)
    os.chown(file, 65534, 65534)
    with pytest.raises(TopologyError, match=r"\[file\] owner: the file .*lab.toml belongs to uid 65534"):
        topofile.load(file)
