"""A real Docker daemon (Debian's docker.io) inside a sandbox, for tests of netwrap beside a runtime's own rules.

dockerd runs through ``nsenter`` into the sandbox's network and mount namespaces, so its bridge
(docker0), its iptables chains and its containers' namespaces are the sandbox's. Everything it
writes stays inside: a tmpfs is mounted (in the sandbox's mount namespace only) on
``/sys/fs/cgroup`` with the cgroup v1 hierarchies it needs, on each host directory it or its
containerd would write (``/etc/docker``, ``/opt`` where containerd makes ``/opt/containerd``,
``/var/lib/docker``, ``/var/lib/containerd``), and on its data root in the test's scratch directory.
Its containers' cgroups live under a cgroup parent of the test's own, removed on the way out;
their processes are killed by pid if any outlived their daemon. No registry is reachable: the
image is imported from a tar of ``busybox-static``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from netwrap import Command, Result, Sandbox

DOCKERD = "/usr/sbin/dockerd"
DOCKER = "/usr/bin/docker"  # Debian's client, the daemon's own version (not a newer one in /usr/local/bin)
BUSYBOX = "/bin/busybox"
NEEDED = {DOCKERD: "docker.io", DOCKER: "docker.io", "/usr/bin/containerd": "containerd", BUSYBOX: "busybox-static"}
CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids")
HIERARCHIES = (*((c, c) for c in CONTROLLERS), ("systemd", "none,name=systemd"))
HIDDEN = ("/etc/docker", "/opt", "/var/lib/docker", "/var/lib/containerd")  # host paths dockerd would write
IMAGE = "netwrap-busybox:test"
READY_WITHIN = 20.0
STOP_WITHIN = 20.0
ANY = frozenset(range(-64, 256))  # any exit, also death by a signal
SYSTEM_ENV = {"LC_ALL": "C", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}


def require_docker() -> None:
    """Skip, saying what is missing, unless Docker and busybox are installed (fail under CI's require flag)."""
    missing = sorted({package for path, package in NEEDED.items() if not os.access(path, os.X_OK)})
    if not missing:
        return
    reason = f"the tests beside Docker need Debian's {' '.join(missing)} (scripts/setup.sh installs them)"
    if os.environ.get("NETWRAP_REQUIRE_INTEGRATION") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def detail(result: Result) -> str:
    return f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"


@attrs.define
class Docker:
    """A running dockerd in ``sandbox``; :meth:`cli` runs Debian's docker client against it."""

    sandbox: Sandbox
    scratch: Path
    process: subprocess.Popen[bytes]
    cgroup_parent: str

    def cli(self, *args: str, check: bool = True) -> Result:
        config = str(self.scratch / "client")  # the client's config here, not in root's home
        result = self.sandbox.runner.run(Command(DOCKER, ("--config", config, *args), ok_codes=ANY))
        if check:
            assert result.returncode == 0, f"docker {' '.join(args)}: " + detail(result)
        return result

    def log(self) -> str:
        path = self.scratch / "dockerd.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else "(no log)"

    def address(self, container: str) -> str:
        shown = self.cli("inspect", "-f", "{{.NetworkSettings.IPAddress}}", container).stdout.strip()
        assert shown, f"container {container} has no address"
        return shown

    def run_httpd(self, name: str, host_port: int) -> str:
        """``docker run -d`` busybox's httpd publishing ``host_port``; the container's address."""
        self.cli(
            "run",
            "-d",
            "--name",
            name,
            "-p",
            f"{host_port}:80",
            IMAGE,
            BUSYBOX,
            "httpd",
            "-f",
            "-p",
            "80",
            "-h",
            "/www",
        )
        return self.address(name)

    def shell(self, container: str, *argv: str) -> Result:
        """A command inside a container; any exit code is returned."""
        return self.cli("exec", container, *argv, check=False)


def _run(sandbox: Sandbox, tool: str, *args: str) -> Result:
    return sandbox.runner.run(Command(tool, args))


def _prepare(sandbox: Sandbox, data_root: Path) -> None:
    """Inside the sandbox's mount namespace only: cgroup v1 hierarchies and tmpfs over what dockerd writes."""
    _run(sandbox, "mount", "-t", "tmpfs", "-o", "mode=755", "netwrap-cgroup", "/sys/fs/cgroup")
    for directory, options in HIERARCHIES:
        _run(sandbox, "mkdir", f"/sys/fs/cgroup/{directory}")
        _run(sandbox, "mount", "-t", "cgroup", "-o", options, "cgroup", f"/sys/fs/cgroup/{directory}")
    for path in HIDDEN:
        if os.path.isdir(path):
            _run(sandbox, "mount", "-t", "tmpfs", "-o", "mode=755", "netwrap-docker", path)
    data_root.mkdir(parents=True, exist_ok=True)
    _run(sandbox, "mount", "-t", "tmpfs", "-o", "mode=711", "netwrap-docker", str(data_root))


def make_rootfs(scratch: Path, page: str) -> Path:
    """A tar of a busybox root file system whose httpd serves ``page`` from /www/index.html."""
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True, env=SYSTEM_ENV)
    tar = scratch / "busybox-rootfs.tar"
    index = scratch / "index.html"
    index.write_text(page)
    with tarfile.open(tar, "w") as archive:
        for directory in ("bin", "proc", "sys", "dev", "tmp", "etc", "www"):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if directory == "tmp" else 0o755
            archive.addfile(info)
        archive.add(BUSYBOX, arcname="bin/busybox")
        archive.add(index, arcname="www/index.html")
        for applet in applets.stdout.split():
            if applet != "busybox":
                link = tarfile.TarInfo(f"bin/{applet}")
                link.type, link.linkname = tarfile.SYMTYPE, "busybox"
                archive.addfile(link)
    return tar


def _wait_ready(docker: Docker) -> None:
    deadline = time.monotonic() + READY_WITHIN
    while time.monotonic() < deadline:
        if docker.process.poll() is not None:
            raise AssertionError(f"dockerd exited with {docker.process.returncode}:\n{docker.log()}")
        if docker.cli("info", check=False).returncode == 0:
            return
        time.sleep(0.2)
    raise AssertionError(f"dockerd did not answer `docker info` within {READY_WITHIN:.0f} s:\n{docker.log()}")


def _cgroup_dirs(sandbox: Sandbox, parent: str) -> list[Path]:
    """Every cgroup directory under ``parent``, deepest first, seen through the sandbox's mount namespace."""
    root = Path(f"/proc/{sandbox.pid}/root/sys/fs/cgroup")
    found: list[Path] = []
    for directory, _ in HIERARCHIES:
        top = root / directory / parent
        if top.is_dir():
            found += [Path(p) for p, _, _ in os.walk(top)]
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def _leftover_pids(dirs: list[Path]) -> set[int]:
    pids: set[int] = set()
    for directory in dirs:
        with contextlib.suppress(OSError):
            pids |= {int(word) for word in (directory / "cgroup.procs").read_text().split()}
    return pids


def _stop(docker: Docker) -> None:
    """Remove the containers, stop dockerd by its pid, kill what outlived it, remove its cgroups."""
    sandbox = docker.sandbox
    try:
        if docker.process.poll() is None:
            listed = docker.cli("ps", "-aq", check=False).stdout.split()
            if listed:
                docker.cli("rm", "-f", *listed, check=False)
    finally:
        if docker.process.poll() is None:
            docker.process.send_signal(signal.SIGTERM)
            try:
                docker.process.wait(timeout=STOP_WITHIN)
            except subprocess.TimeoutExpired:
                docker.process.kill()
                docker.process.wait()
        dirs = _cgroup_dirs(sandbox, docker.cgroup_parent)
        for pid in _leftover_pids(dirs):  # processes of our containers that outlived the daemon
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5.0
        while _leftover_pids(dirs) and time.monotonic() < deadline:
            time.sleep(0.05)
        for directory in dirs:
            inside = "/" + str(directory.relative_to(f"/proc/{sandbox.pid}/root"))
            sandbox.runner.run(Command("rmdir", (inside,), ok_codes=ANY))


@contextlib.contextmanager
def dockerd(sandbox: Sandbox, scratch: Path, page: str = "docker-busybox") -> Iterator[Docker]:
    """Start dockerd in ``sandbox`` (ready, with the busybox image imported); stop it and clean up after."""
    require_docker()
    scratch.mkdir(parents=True, exist_ok=True)
    data_root = scratch / "data-root"
    _prepare(sandbox, data_root)
    parent = f"netwrap-test-{uuid.uuid4().hex[:12]}"
    dockerd_args = ("--data-root", str(data_root), "--iptables=true", f"--cgroup-parent={parent}")
    with (scratch / "dockerd.log").open("wb") as log:
        process = subprocess.Popen(
            [*sandbox.prefix, DOCKERD, *dockerd_args], stdout=log, stderr=subprocess.STDOUT, env=SYSTEM_ENV
        )
    docker = Docker(sandbox, scratch, process, parent)
    try:
        _wait_ready(docker)
        docker.cli("import", str(make_rootfs(scratch, page)), IMAGE)
        yield docker
    finally:
        _stop(docker)
