"""A real Docker daemon (Debian's docker.io) inside a sandbox, for tests of netwrap beside a runtime's own rules.

dockerd runs through ``nsenter`` into the sandbox's network and mount namespaces, so its bridge
(docker0), its iptables chains and its containers' namespaces are the sandbox's. Everything it
writes stays inside: a tmpfs is mounted (in the sandbox's mount namespace only) on
``/sys/fs/cgroup`` with the cgroup v1 hierarchies it needs, on each host directory a runtime
would write (:data:`HIDDEN`: ``/etc/docker``, ``/opt`` where containerd makes ``/opt/containerd``,
``/var/lib/docker``, ``/var/lib/containerd``, and those of Podman and CNI), and on its data root in
the test's scratch directory. Its containers' cgroups live under a cgroup parent of the test's own,
removed on the way out; their processes are killed by pid if any outlived their daemon. No
registry is reachable: the image is imported from a tar of ``busybox-static``.

The sandbox plumbing here (:func:`prepare`, :func:`hide`, :func:`make_rootfs`, the process
sweep) is shared with the other runtimes in ``runtimes.py``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tarfile
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import attrs
import pytest

from netwrap import Command, Result, Sandbox
from netwrap.host.sandbox import top_mount

DOCKERD = "/usr/sbin/dockerd"
DOCKER = "/usr/bin/docker"  # Debian's client, the daemon's own version (not a newer one in /usr/local/bin)
BUSYBOX = "/bin/busybox"
NEEDED = {DOCKERD: "docker.io", DOCKER: "docker.io", "/usr/bin/containerd": "containerd", BUSYBOX: "busybox-static"}
CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids")
HIERARCHIES = (*((c, c) for c in CONTROLLERS), ("systemd", "none,name=systemd"))
# Host paths a runtime would write (Docker, containerd, Podman, CNI plugins and their IPAM and cache): each is
# an empty directory of the sandbox's own inside it (see hide()).
HIDDEN = (
    "/etc/docker",
    "/etc/containerd",
    "/etc/containers",
    "/etc/cni",
    "/opt",
    "/var/lib/docker",
    "/var/lib/containerd",
    "/var/lib/containers",
    "/var/lib/cni",
    "/var/tmp",  # noqa: S108 (hidden from the runtimes, not used here)
    "/dev/shm",  # noqa: S108 (Podman's lock memory, libpod_lock, is shared by every Podman of the machine)
)
HIDE = "netwrap-hide"  # the source name of every mount that hides a host path
CGROUP_TMPFS = "netwrap-cgroup"
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
    leftovers: list[str] = attrs.field(factory=list)  # processes that outlived dockerd and were killed

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

    def pid(self, container: str) -> int:
        """The pid (as this process sees it) of a running container's first process."""
        shown = self.cli("inspect", "-f", "{{.State.Pid}}", container).stdout.strip()
        assert shown.isdigit() and int(shown) > 0, f"container {container} has no pid: {shown!r}"
        return int(shown)

    def shell(self, container: str, *argv: str) -> Result:
        """A command inside a container; any exit code is returned."""
        return self.cli("exec", container, *argv, check=False)


def _run(sandbox: Sandbox, tool: str, *args: str) -> Result:
    return sandbox.runner.run(Command(tool, args))


def _mountinfo(sandbox: Sandbox) -> str:
    return Path(f"/proc/{sandbox.pid}/mountinfo").read_text()


def _inside(sandbox: Sandbox, path: str) -> str:
    """``path`` as the sandbox's mount namespace shows it, from here (no symbolic links are followed on the way:
    an absolute one would lead back to this process's own root)."""
    parts = Path(path).parts
    for depth in range(2, len(parts) + 1):
        step = "/".join(("", *parts[1:depth]))
        if os.path.islink(f"/proc/{sandbox.pid}/root{step}"):
            raise AssertionError(f"cannot hide {path}: {step} is a symbolic link in the sandbox")
    return f"/proc/{sandbox.pid}/root{path}"


def _mount_points(mountinfo: str) -> list[str]:
    return [fields[4] for fields in (line.split() for line in mountinfo.splitlines()) if len(fields) > 4]


def _covering(mountinfo: str, path: str) -> tuple[str, str] | None:
    """``(source, fstype)`` of the mount that holds ``path`` (the top one at its deepest mount point)."""
    points = [p for p in _mount_points(mountinfo) if path == p or path.startswith(p.rstrip("/") + "/")]
    return top_mount(mountinfo, max(points, key=len)) if points else None


def _overlay(sandbox: Sandbox, directory: str) -> None:
    """An overlay over ``directory`` whose upper layer is in the sandbox's own /run: the host's files stay
    visible, and whatever is written there (a subdirectory the host lacks) never reaches the host's disk."""
    below = [p for p in _mount_points(_mountinfo(sandbox)) if p.startswith(directory.rstrip("/") + "/")]
    if directory == "/" or below:
        raise AssertionError(f"will not lay an overlay over {directory} (mounts under it: {below})")
    store = "/run/netwrap-hide/" + directory.strip("/").replace("/", "-")
    _run(sandbox, "mkdir", "-p", f"{store}/upper", f"{store}/work")
    options = f"lowerdir={directory},upperdir={store}/upper,workdir={store}/work"
    _run(sandbox, "mount", "-t", "overlay", "-o", options, HIDE, directory)


def _overlay_needed(sandbox: Sandbox, path: str) -> str | None:
    """The nearest existing parent of ``path`` that needs an overlay before ``path`` can be made there without
    writing to the host's disk; None if ``path`` exists or that parent is already the sandbox's own."""
    seen = _inside(sandbox, path)
    if os.path.isdir(seen):
        return None
    if os.path.lexists(seen):
        raise AssertionError(f"cannot hide {path}: it is not a directory")
    parent = os.path.dirname(path)
    while not os.path.isdir(_inside(sandbox, parent)):
        parent = os.path.dirname(parent)
    return None if _ours(sandbox, parent) else parent


def _ours(sandbox: Sandbox, directory: str) -> bool:
    """Whether ``directory`` lies on a mount that hides the host (a tmpfs or an overlay of :func:`hide`)."""
    owner = _covering(_mountinfo(sandbox), directory)
    return owner is not None and owner[0] == HIDE


def hide(sandbox: Sandbox, path: str) -> None:
    """Make ``path`` an empty directory of the sandbox's own (in its mount namespace only), so that what a runtime
    writes there stays in a tmpfs that ends with the sandbox. A directory the host has is covered by a tmpfs of
    the same mode; one it lacks is first made in an overlay over its nearest existing parent (unless that
    parent is already the sandbox's own), so that not even the empty directory is made on the host's disk.
    Hiding a path twice does nothing. (An overlay would hide the mounts below its directory: :func:`prepare`
    lays all of its overlays first; here a parent with mounts below it is refused.)"""
    if top_mount(_mountinfo(sandbox), path) == (HIDE, "tmpfs"):
        return
    parent = _overlay_needed(sandbox, path)
    if parent is not None:
        _overlay(sandbox, parent)
    seen = _inside(sandbox, path)
    mode = os.stat(seen).st_mode & 0o7777 if os.path.isdir(seen) else 0o755
    _run(sandbox, "mkdir", "-p", path)
    _run(sandbox, "mount", "-t", "tmpfs", "-o", f"mode={mode:o}", HIDE, path)


def mount_cgroups(sandbox: Sandbox) -> None:
    """The cgroup v1 hierarchies runtimes need, on a tmpfs over the sandbox's /sys/fs/cgroup (its fresh sysfs
    has none). No cgroup2: crun refuses a hybrid layout. Mounting them twice does nothing. The hierarchies
    themselves are the kernel's, shared with the host: a runtime's cgroups must be removed after it."""
    if top_mount(_mountinfo(sandbox), "/sys/fs/cgroup") == (CGROUP_TMPFS, "tmpfs"):
        return
    _run(sandbox, "mount", "-t", "tmpfs", "-o", "mode=755", CGROUP_TMPFS, "/sys/fs/cgroup")
    for directory, options in HIERARCHIES:
        _run(sandbox, "mkdir", f"/sys/fs/cgroup/{directory}")
        _run(sandbox, "mount", "-t", "cgroup", "-o", options, "cgroup", f"/sys/fs/cgroup/{directory}")


def prepare(sandbox: Sandbox, paths: Sequence[str] = HIDDEN) -> None:
    """cgroups, and every path of ``paths`` (host paths runtimes write) made the sandbox's own; idempotent, for
    any runtime. The overlays the missing ones need come first, so that none lies over a tmpfs of another."""
    mount_cgroups(sandbox)
    for parent in dict.fromkeys(filter(None, (_overlay_needed(sandbox, path) for path in paths))):
        if not _ours(sandbox, parent):  # not under an overlay laid just now
            _overlay(sandbox, parent)
    for path in paths:
        hide(sandbox, path)


def private_dir(sandbox: Sandbox, directory: Path, mode: int = 0o711) -> None:
    """``directory`` (made here if missing) covered by a tmpfs inside the sandbox only: a runtime's data root.
    What the runtime writes there (layers, overlay mounts) ends with the sandbox; the host keeps an empty
    directory in the test's scratch space."""
    directory.mkdir(parents=True, exist_ok=True)
    if top_mount(_mountinfo(sandbox), str(directory)) != (HIDE, "tmpfs"):
        _run(sandbox, "mount", "-t", "tmpfs", "-o", f"mode={mode:o}", HIDE, str(directory))


def _prepare(sandbox: Sandbox, data_root: Path) -> None:
    """Inside the sandbox's mount namespace only: cgroup v1 hierarchies and tmpfs over what dockerd writes."""
    prepare(sandbox)
    private_dir(sandbox, data_root)


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


def remove_cgroups(sandbox: Sandbox, parent: str) -> None:
    """Kill what still runs in the cgroups under ``parent`` (in every hierarchy), then remove them."""
    dirs = _cgroup_dirs(sandbox, parent)
    for pid in _leftover_pids(dirs):  # processes of our containers that outlived their runtime
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while _leftover_pids(dirs) and time.monotonic() < deadline:
        time.sleep(0.05)
    for directory in dirs:
        inside = "/" + str(directory.relative_to(f"/proc/{sandbox.pid}/root"))
        sandbox.runner.run(Command("rmdir", (inside,), ok_codes=ANY))


def cgroups_left(sandbox: Sandbox, parent: str) -> list[str]:
    """The cgroup directories still under ``parent``, as the sandbox names them (none after a clean stop)."""
    return ["/" + str(d.relative_to(f"/proc/{sandbox.pid}/root")) for d in _cgroup_dirs(sandbox, parent)]


# Processes: what a runtime left running in the sandbox --------------------------------------------------------


@attrs.frozen
class Proc:
    """One process as /proc shows it; ``start`` (clock ticks after boot) tells it from a later one of its pid."""

    pid: int
    ppid: int
    start: int
    state: str
    cmdline: str

    def alive(self) -> bool:
        """Whether this very process still runs (a zombie has ended)."""
        now = read_proc(self.pid)
        return now is not None and now.start == self.start and now.state != "Z"

    def __str__(self) -> str:
        return f"{self.pid} {self.cmdline[:200]}"


def read_proc(pid: int) -> Proc | None:
    """The process ``pid``, or None if there is none."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "; comm may hold spaces and parentheses
    words = cmdline.decode(errors="replace").split("\0")
    return Proc(pid, int(fields[1]), int(fields[19]), fields[0], " ".join(w for w in words if w))


def _namespace(pid: int, kind: str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/{kind}")
    except OSError:
        return None


def sandbox_processes(sandbox: Sandbox, marks: Sequence[str] = (), roots: Iterable[Proc] = ()) -> list[Proc]:
    """Live processes of the sandbox other than its holder, with all their descendants (a container's processes
    are children of its conmon or shim): those in its mount namespace whose command line holds one of ``marks``
    (any, when ``marks`` is empty), and those of ``roots`` still running (wherever they are)."""
    table = {p.pid: p for p in map(read_proc, _pids()) if p is not None and p.state != "Z"}
    mount = _namespace(sandbox.pid, "mnt")
    chosen = {root.pid for root in roots if root.pid in table and table[root.pid].start == root.start}
    chosen |= {
        pid
        for pid, proc in table.items()
        if _namespace(pid, "mnt") == mount and (not marks or any(mark in proc.cmdline for mark in marks))
    }
    chosen.discard(sandbox.pid)
    children: dict[int, list[int]] = {}
    for proc in table.values():
        children.setdefault(proc.ppid, []).append(proc.pid)
    todo = list(chosen)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in chosen and child != sandbox.pid:
                chosen.add(child)
                todo.append(child)
    return [table[pid] for pid in sorted(chosen)]


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def end_processes(procs: Iterable[Proc], within: float = 5.0) -> list[str]:
    """Give ``procs`` ``within`` seconds to end by themselves, then SIGKILL those still running (each the very
    process found, not a later one of its pid); the ones that had to be killed, described."""
    procs = list(procs)
    deadline = time.monotonic() + within
    while any(p.alive() for p in procs) and time.monotonic() < deadline:
        time.sleep(0.05)
    killed = [p for p in procs if p.alive()]
    for proc in killed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while any(p.alive() for p in killed) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [str(p) for p in killed]


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
        # its containerd, shims and their containers, if any outlived dockerd
        marks = (str(docker.scratch / "data-root"), "/run/docker/containerd")
        docker.leftovers += end_processes(sandbox_processes(sandbox, marks), within=STOP_WITHIN)
        remove_cgroups(sandbox, docker.cgroup_parent)


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
