"""Real container runtimes inside a sandbox: Podman, Docker and containerd running busybox httpd containers.

For tests that attach netwrap to *running* containers of real runtimes (by pid or by network namespace
path) and for the ``netwrap-cni`` plugin. Each runtime is a context manager that starts it inside a
:class:`~netwrap.Sandbox` (through ``nsenter`` into its network and mount namespaces) and, on the way out,
removes its containers, stops it, kills whatever outlived that (and lists it in ``leftovers``, which a
clean stop leaves empty) and removes its cgroups:

* :class:`Podman`: Debian's podman with crun, ``cgroups = "disabled"``, and its CNI backend pointed at
  a plugin directory and a configuration directory the test may supply; it calls the plugins' VERSION,
  ADD when a container starts and DEL when it stops. Its configuration is the sandbox's own
  ``/etc/containers``, so a bare ``podman`` run inside the sandbox (by netwrap, say) sees the same.
* :class:`Docker`: Debian's dockerd, through ``dockerd.py``.
* :class:`Containerd`: a containerd of its own, on the sandbox's ``/run/containerd/containerd.sock`` (so
  a bare ``ctr`` inside the sandbox reaches it), and ``ctr run``; with ``cni=True`` ctr calls the CNI
  plugins of the sandbox's ``/opt/cni/bin`` with the first configuration in its ``/etc/cni/net.d`` (both
  bound to directories the test may supply), ADD with ``CNI_NETNS=/proc/PID/ns/net``.

Every container runs busybox's httpd on port 80 in its own network namespace, serving a page that is its
own name, so tests can make real TCP connections (:func:`http_get`, from the sandbox's host or from
inside any network namespace). The runtimes write nothing on the host outside the test's scratch
directory: every host directory they would write is made the sandbox's own (``dockerd.hide``), their
data roots are tmpfs inside the sandbox, and their cgroups are removed. No registry is reached: the image
is a busybox-static root file system, imported.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import platform
import re
import resource
import signal
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self

import attrs
import pytest

from netwrap import Command, Result, Sandbox
from tests.integration import dockerd
from tests.integration.dockerd import (
    ANY,
    BUSYBOX,
    SYSTEM_ENV,
    Proc,
    detail,
    end_processes,
    make_rootfs,
    read_proc,
    sandbox_processes,
)

PODMAN = "/usr/bin/podman"
CRUN = "/usr/bin/crun"
CONMON = "/usr/bin/conmon"
CONTAINERD = "/usr/bin/containerd"
CTR = "/usr/bin/ctr"
SHIM = "/usr/bin/containerd-shim-runc-v2"
RUNC = "/usr/sbin/runc"
NSENTER = "/usr/bin/nsenter"
REFERENCE_PLUGINS = Path("/usr/lib/cni")  # containernetworking-plugins: bridge, host-local, portmap, loopback...
NEEDED: Mapping[str, Mapping[str, str]] = {  # runtime -> {path: Debian package}
    "podman": {
        PODMAN: "podman",
        CRUN: "crun",
        CONMON: "conmon",
        str(REFERENCE_PLUGINS / "bridge"): "containernetworking-plugins",
        BUSYBOX: "busybox-static",
    },
    "docker": dockerd.NEEDED,
    "containerd": {
        CONTAINERD: "containerd",
        CTR: "containerd",
        SHIM: "containerd",
        RUNC: "runc",
        str(REFERENCE_PLUGINS / "bridge"): "containernetworking-plugins",
        BUSYBOX: "busybox-static",
    },
}
CONTAINERS_CONFIG = ("containers.conf", "storage.conf", "policy.json")  # Podman's, in the sandbox's /etc/containers
IMAGE = "localhost/netwrap-busybox:test"  # Podman's and containerd's name for the busybox image
READY_WITHIN = 20.0
STOP_WITHIN = 10.0
_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{1,62}")  # Docker wants two characters or more


def require_runtime(name: str) -> None:
    """Skip, saying which Debian packages are missing, unless runtime ``name`` ("podman", "docker" or
    "containerd") can run here; fail instead under $NETWRAP_REQUIRE_INTEGRATION=1 (CI)."""
    needed = NEEDED[name]
    missing = sorted({package for path, package in needed.items() if not Path(path).exists()})
    if not missing:
        return
    reason = f"the tests with {name} need Debian's {' '.join(missing)} (scripts/setup.sh installs them)"
    if os.environ.get("NETWRAP_REQUIRE_INTEGRATION") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


# Containers and what every runtime shares ------------------------------------------------------------------


@attrs.frozen
class Container:
    """A running container: the name its runtime knows it by and its httpd's pid, as this process sees it."""

    runtime: str
    name: str
    pid: int
    start: int  # the process's start time (clock ticks after boot): tells it from a later process of its pid

    @property
    def netns(self) -> str:
        """Its network namespace as a path, good here and inside the sandbox (``CNI_NETNS``, ``nsenter --net=``)."""
        return f"/proc/{self.pid}/ns/net"

    @property
    def page(self) -> str:
        """What its httpd serves at ``/``: its name."""
        return self.name

    @property
    def proc(self) -> Proc:
        return Proc(self.pid, 0, self.start, "", "")

    def alive(self) -> bool:
        """Whether its httpd (this very process) still runs."""
        return self.proc.alive()


def _httpd(name: str) -> tuple[str, ...]:
    """The command of every container: write its name as the page, then serve it on port 80."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"container name {name!r}: 2 to 63 letters, digits, '_', '.', '-'")
    return ("/bin/sh", "-c", f"printf %s {name} > /www/index.html && exec httpd -f -p 80 -h /www")


def wait_listening(pid: int, port: int = 80, within: float = 10.0) -> None:
    """Wait until a TCP socket listens on ``port`` in the network namespace of process ``pid`` (read from
    /proc/PID/net/tcp: no traffic); raise if the process ends or nothing listens within ``within`` s."""
    local = f":{port:04X}"
    deadline = time.monotonic() + within
    while True:
        for table in ("tcp", "tcp6"):
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                    fields = line.split()
                    if fields[1].endswith(local) and fields[3] == "0A":  # 0A: LISTEN
                        return
        if read_proc(pid) is None:
            raise AssertionError(f"process {pid} ended before listening on port {port}")
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing listens on port {port} in the network namespace of {pid}")
        time.sleep(0.05)


def _container(runtime: str, name: str, pid: int) -> Container:
    proc = read_proc(pid)
    assert proc is not None, f"{runtime} container {name}: its process {pid} is gone"
    wait_listening(pid)
    return Container(runtime, name, pid, proc.start)


# An HTTP GET with a 2 s timeout (busybox 1.35's static wget crashes when a connection is refused).
_GET = "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode(), end='')"


def http_get(sandbox: Sandbox, url: str, *, netns: str | None = None, within: float = 4.0) -> str | None:
    """The page at ``url``, fetched over a real TCP connection from the sandbox's host, or from inside the
    network namespace at path ``netns`` (a container's :attr:`Container.netns`, ``/run/netns/NAME``);
    retried until ``within`` s have passed; None if it never answers."""
    argv: tuple[str, ...] = (sys.executable, "-c", _GET, url)
    if netns is not None:
        argv = (NSENTER, f"--net={netns}", *argv)
    deadline = time.monotonic() + within
    while True:
        got = sandbox.runner.run(Command(argv[0], argv[1:], mutates=False, ok_codes=ANY))
        if got.returncode == 0:
            return got.stdout
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.2)


def addresses(sandbox: Sandbox, container: Container) -> list[str]:
    """The IPv4 addresses (without prefix length) of a container's interfaces other than lo."""
    shown = sandbox.runner.run(
        Command(NSENTER, (f"--net={container.netns}", "ip", "-4", "-o", "addr", "show"), mutates=False)
    ).stdout
    return [fields[3].split("/")[0] for fields in map(str.split, shown.splitlines()) if fields[1] != "lo"]


def make_plugin_dir(directory: Path, extra: Mapping[str, Path] | None = None, *, reference: bool = True) -> Path:
    """A CNI plugin directory for ``cni_plugin_dir``: symbolic links to every reference plugin of /usr/lib/cni
    (unless not ``reference``) and to each ``extra`` executable under its plugin name (``{"netwrap-cni":
    PATH}``), which wins over a reference plugin of the same name."""
    directory.mkdir(parents=True, exist_ok=True)
    plugins = {p.name: p for p in sorted(REFERENCE_PLUGINS.iterdir())} if reference else {}
    plugins |= {name: Path(path).absolute() for name, path in (extra or {}).items()}
    for name, target in plugins.items():
        link = directory / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target)
    return directory


def _check(result: Result, what: str) -> Result:
    assert result.returncode == 0, f"{what}: " + detail(result)
    return result


class _Runtime:
    """What the runtimes share: the context manager protocol, the sandbox, the scratch directory, the
    containers started, and ``leftovers``."""

    kind: ClassVar[str]

    def __init__(self, sandbox: Sandbox, scratch: Path) -> None:
        self.sandbox = sandbox
        self.scratch = scratch
        self.containers: dict[str, Container] = {}  # by name, those run through this object
        self.leftovers: list[str] = []  # processes that outlived the orderly stop and had to be killed

    def __enter__(self) -> Self:
        require_runtime(self.kind)
        self.scratch.mkdir(parents=True, exist_ok=True)
        try:
            self._start()
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop()

    def _start(self) -> None:
        raise NotImplementedError

    def _stop(self) -> None:
        raise NotImplementedError

    def _tool(self, tool: str, args: Sequence[str], check: bool) -> Result:
        result = self.sandbox.runner.run(Command(tool, tuple(args), ok_codes=ANY))
        if check:
            _check(result, f"{Path(tool).name} {' '.join(args)}")
        return result


def _write(sandbox: Sandbox, path: str, text: str) -> None:
    """Write a file at ``path`` as the sandbox's mount namespace shows it (a directory of the sandbox's own)."""
    Path(f"/proc/{sandbox.pid}/root{path}").write_text(text)


def _toml_list(items: Sequence[str]) -> str:
    return "[" + ", ".join(json.dumps(item) for item in items) + "]"


def _limit(kind: int, cap: int) -> int:
    """This process's hard limit (root lacks CAP_SYS_RESOURCE here, so a container may not get more), capped."""
    hard = resource.getrlimit(kind)[1]
    return cap if hard == resource.RLIM_INFINITY else min(hard, cap)


# Podman ------------------------------------------------------------------------------------------------------


class Podman(_Runtime):
    """Podman in ``sandbox``: ``with Podman(sandbox, scratch) as podman: podman.run_httpd("p1")``.

    Its storage is a tmpfs (inside the sandbox) on ``scratch/storage``. Its CNI backend finds plugins in
    ``cni_plugin_dir`` (default: the reference plugins of /usr/lib/cni) and network configurations
    (``NAME.conflist``, run with ``network=NAME``) in ``cni_config_dir`` (default: an empty
    ``scratch/cni-config``). No netavark: CNI is its only backend here.
    """

    kind = "podman"

    def __init__(
        self, sandbox: Sandbox, scratch: Path, *, cni_plugin_dir: Path | None = None, cni_config_dir: Path | None = None
    ) -> None:
        super().__init__(sandbox, scratch)
        self.cni_plugin_dir = cni_plugin_dir or REFERENCE_PLUGINS
        self.cni_config_dir = cni_config_dir or scratch / "cni-config"
        self.graphroot = scratch / "storage"
        self._configured = False  # whether the sandbox's /etc/containers is this Podman's

    def cli(self, *args: str, check: bool = True) -> Result:
        """``podman ARGS`` inside the sandbox; any exit is returned unless ``check``."""
        return self._tool(PODMAN, args, check)

    def _start(self) -> None:
        dockerd.prepare(self.sandbox)  # also makes /etc/containers, /var/lib/containers, /dev/shm... its own
        if Path(f"/proc/{self.sandbox.pid}/root/etc/containers/storage.conf").exists():
            raise AssertionError("a Podman already runs in this sandbox (/etc/containers/storage.conf)")
        self._configured = True
        dockerd.private_dir(self.sandbox, self.graphroot, 0o700)
        self.cni_config_dir.mkdir(parents=True, exist_ok=True)
        nofile, nproc = _limit(resource.RLIMIT_NOFILE, 1 << 20), _limit(resource.RLIMIT_NPROC, 4096)
        _write(
            self.sandbox,
            "/etc/containers/containers.conf",
            f"""[containers]
cgroups = "disabled"
default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]
log_driver = "k8s-file"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "crun"

[network]
network_backend = "cni"
cni_plugin_dirs = {_toml_list([str(self.cni_plugin_dir)])}
network_config_dir = {json.dumps(str(self.cni_config_dir))}
""",
        )
        _write(
            self.sandbox,
            "/etc/containers/storage.conf",
            f"""[storage]
driver = "overlay"
graphroot = {json.dumps(str(self.graphroot))}
runroot = "/run/containers/storage"
""",
        )
        _write(self.sandbox, "/etc/containers/policy.json", '{"default": [{"type": "insecureAcceptAnything"}]}\n')
        self.cli("import", str(make_rootfs(self.scratch, "podman-busybox")), IMAGE)

    def run_httpd(self, name: str, network: str = "none", publish: Sequence[str] = ()) -> Container:
        """``podman run -d`` busybox's httpd as ``name``, on ``--network`` ``network`` ("none", or the name of a
        CNI network of the configuration directory), publishing each ``publish`` ("8080:80"); running and
        listening when this returns."""
        ports = [arg for mapping in publish for arg in ("-p", mapping)]
        self.cli("run", "-d", "--pull=never", "--name", name, "--network", network, *ports, IMAGE, *_httpd(name))
        container = _container(self.kind, name, self.pid(name))
        self.containers[name] = container
        return container

    def pid(self, name: str) -> int:
        """The pid of a running container's first process."""
        shown = self.cli("inspect", "-f", "{{.State.Pid}}", name).stdout.strip()
        assert shown.isdigit() and int(shown) > 0, f"podman container {name} has no pid: {shown!r}"
        return int(shown)

    def address(self, name: str) -> str:
        """A container's address on its (first) CNI network."""
        shown = self.cli("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", name)
        words = shown.stdout.split()
        assert words, f"podman container {name} has no address"
        return words[0]

    def stop(self, name: str, timeout: int = 0) -> None:
        """``podman stop``: SIGTERM, SIGKILL after ``timeout`` s (httpd as pid 1 ignores SIGTERM); CNI DEL."""
        self.cli("stop", "-t", str(timeout), name)

    def rm(self, name: str, force: bool = False) -> None:
        """``podman rm`` (``-f``: also a running one)."""
        self.cli("rm", *(("-f", "-t", "0") if force else ()), name)
        self.containers.pop(name, None)

    def _stop(self) -> None:
        if not self._configured:  # refused (another Podman's configuration), or failed before: nothing of ours
            return
        try:
            if self.cli("ps", "-aq", check=False).stdout.split():
                self.cli("rm", "-f", "-t", "0", "--all", check=False)
        finally:
            # conmon and `podman container cleanup` name the storage; containers are their children
            found = sandbox_processes(self.sandbox, (str(self.graphroot),), [c.proc for c in self.containers.values()])
            self.leftovers += end_processes(found, within=STOP_WITHIN)
            for name in CONTAINERS_CONFIG:  # a later Podman in this sandbox may configure its own
                Path(f"/proc/{self.sandbox.pid}/root/etc/containers/{name}").unlink(missing_ok=True)


# Docker ------------------------------------------------------------------------------------------------------


class Docker(_Runtime):
    """dockerd in ``sandbox`` (see ``dockerd.py``: docker0, its iptables chains, the image ``netwrap-busybox``);
    :attr:`daemon` is its :class:`dockerd.Docker` (``cli``, ``shell``, ``log``, ``run_httpd(name, port)``)."""

    kind = "docker"

    def __init__(self, sandbox: Sandbox, scratch: Path, page: str = "docker-busybox") -> None:
        super().__init__(sandbox, scratch)
        self._page = page
        self._stack = contextlib.ExitStack()
        self._daemon: dockerd.Docker | None = None

    @property
    def daemon(self) -> dockerd.Docker:
        assert self._daemon is not None, "dockerd is not running"
        return self._daemon

    def cli(self, *args: str, check: bool = True) -> Result:
        """``docker ARGS`` against this dockerd; any exit is returned unless ``check``."""
        return self.daemon.cli(*args, check=check)

    def _start(self) -> None:
        self._daemon = self._stack.enter_context(dockerd.dockerd(self.sandbox, self.scratch, page=self._page))

    def run_httpd(self, name: str, network: str = "none", publish: Sequence[str] = ()) -> Container:
        """``docker run -d`` busybox's httpd as ``name`` on ``--network`` ``network`` ("none", "bridge", a
        network's name), publishing each ``publish`` ("8080:80"); running and listening when this returns."""
        ports = [arg for mapping in publish for arg in ("-p", mapping)]
        self.cli("run", "-d", "--name", name, "--network", network, *ports, dockerd.IMAGE, *_httpd(name))
        container = _container(self.kind, name, self.daemon.pid(name))
        self.containers[name] = container
        return container

    def pid(self, name: str) -> int:
        """The pid of a running container's first process."""
        return self.daemon.pid(name)

    def stop(self, name: str, timeout: int = 0) -> None:
        """``docker stop``: SIGTERM, SIGKILL after ``timeout`` s (httpd as pid 1 ignores SIGTERM)."""
        self.cli("stop", "-t", str(timeout), name)

    def rm(self, name: str, force: bool = False) -> None:
        """``docker rm`` (``-f``: also a running one)."""
        self.cli("rm", *(("-f",) if force else ()), name)
        self.containers.pop(name, None)

    def _stop(self) -> None:
        try:
            self._stack.close()  # removes the containers, stops dockerd, sweeps, removes its cgroups
        finally:
            if self._daemon is not None:
                self.leftovers += self._daemon.leftovers
            self.leftovers += end_processes([c.proc for c in self.containers.values()], within=0)


# containerd --------------------------------------------------------------------------------------------------


def make_oci_image(scratch: Path, rootfs: Path, reference: str) -> Path:
    """An OCI image layout tar (what ``ctr image import`` reads) of one uncompressed layer, the tar ``rootfs``,
    named ``reference`` for containerd, for this machine's architecture."""

    def digest(blob: bytes) -> str:
        return "sha256:" + hashlib.sha256(blob).hexdigest()

    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    layer = rootfs.read_bytes()
    config = json.dumps(
        {
            "architecture": arch,
            "os": "linux",
            "config": {"Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": [digest(layer)]},
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": digest(config),
                "size": len(config),
            },
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest(layer), "size": len(layer)}
            ],
        }
    ).encode()
    index = json.dumps(
        {
            "schemaVersion": 2,
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": digest(manifest),
                    "size": len(manifest),
                    "annotations": {"io.containerd.image.name": reference, "org.opencontainers.image.ref.name": "test"},
                }
            ],
        }
    ).encode()
    tar = scratch / "busybox-oci.tar"
    with tarfile.open(tar, "w") as archive:
        for name, data in (
            ("oci-layout", b'{"imageLayoutVersion": "1.0.0"}'),
            ("index.json", index),
            *((f"blobs/sha256/{digest(blob)[7:]}", blob) for blob in (layer, config, manifest)),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return tar


class Containerd(_Runtime):
    """containerd of its own in ``sandbox`` and ``ctr run``: ``with Containerd(sandbox, scratch) as c: c.run("c1")``.

    Its root is a tmpfs (inside the sandbox) on ``scratch/root``, its state and socket the sandbox's
    ``/run/containerd`` (one containerd per sandbox), its CRI plugin off. For ``ctr run --cni`` the sandbox's
    ``/etc/cni/net.d`` is ``cni_config_dir`` (default: empty) and its ``/opt/cni/bin`` is ``cni_plugin_dir``
    (default: /usr/lib/cni), both bound read-only. Containers' cgroups lie under a parent of the test's own.

    Each container runs under a ``ctr run --rm`` that stays in the foreground, not ``ctr run -d``: when the
    task ends, that ctr calls CNI DEL and removes task and container (ctr 1.6 calls DEL for no detached task,
    neither on ``task kill`` nor on ``task delete``). Its DEL comes without ``CNI_NETNS`` (the task is gone):
    the reference bridge plugin then releases the address but leaves its ``ipMasq`` rule behind.
    """

    kind = "containerd"
    socket = "/run/containerd/containerd.sock"

    def __init__(
        self, sandbox: Sandbox, scratch: Path, *, cni_plugin_dir: Path | None = None, cni_config_dir: Path | None = None
    ) -> None:
        super().__init__(sandbox, scratch)
        self.cni_plugin_dir = cni_plugin_dir or REFERENCE_PLUGINS
        self.cni_config_dir = cni_config_dir
        self.root = scratch / "root"
        self.config = scratch / "containerd.toml"
        self.cgroup_parent = f"netwrap-test-{uuid.uuid4().hex[:12]}"
        self.process: subprocess.Popen[bytes] | None = None
        self._runs: dict[str, subprocess.Popen[bytes]] = {}  # the foreground `ctr run` of each container

    def ctr(self, *args: str, check: bool = True) -> Result:
        """``ctr ARGS`` inside the sandbox (its default socket is this containerd's); any exit is returned unless
        ``check``."""
        return self._tool(CTR, args, check)

    def log(self) -> str:
        path = self.scratch / "containerd.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else "(no log)"

    def _bind(self, source: Path, target: str) -> None:
        dockerd.hide(self.sandbox, target)
        self._tool("mount", ("--bind", str(source), target), check=True)
        self._tool("mount", ("-o", "remount,bind,ro", target), check=True)

    def _start(self) -> None:
        sandbox = self.sandbox
        if Path(f"/proc/{sandbox.pid}/root{self.socket}").exists():
            raise AssertionError(f"a containerd already runs in this sandbox ({self.socket})")
        dockerd.prepare(sandbox)
        dockerd.hide(sandbox, "/etc/cni/net.d")
        if self.cni_config_dir is not None:
            self._bind(self.cni_config_dir, "/etc/cni/net.d")
        self._bind(self.cni_plugin_dir, "/opt/cni/bin")
        dockerd.private_dir(sandbox, self.root)
        temp = self.root / "temp"
        self._tool("mkdir", ("-p", str(temp)), check=True)
        self.config.write_text(
            f"""version = 2
root = {json.dumps(str(self.root))}
state = "/run/containerd"
temp = {json.dumps(str(temp))}
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = {json.dumps(self.socket)}

[plugins."io.containerd.internal.v1.opt"]
  path = {json.dumps(f"{self.root}/opt")}
"""
        )
        with (self.scratch / "containerd.log").open("wb") as log:
            self.process = subprocess.Popen(
                [*sandbox.prefix, CONTAINERD, "--config", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=SYSTEM_ENV,
            )
        deadline = time.monotonic() + READY_WITHIN
        while self.ctr("version", check=False).returncode != 0:
            if self.process.poll() is not None:
                raise AssertionError(f"containerd exited with {self.process.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"containerd did not answer within {READY_WITHIN:.0f} s:\n{self.log()}")
            time.sleep(0.1)
        oci = make_oci_image(self.scratch, make_rootfs(self.scratch, "containerd-busybox"), IMAGE)
        self.ctr("image", "import", str(oci))

    def tasks(self) -> dict[str, tuple[int, str]]:
        """``ctr task ls``: each task's pid and status ("RUNNING", "STOPPED"...), by container name."""
        shown = self.ctr("task", "ls").stdout.splitlines()[1:]
        return {fields[0]: (int(fields[1]), fields[2]) for fields in map(str.split, shown) if len(fields) >= 3}

    def run(self, name: str, cni: bool = False, netns: str | None = None) -> Container:
        """``ctr run --rm`` busybox's httpd as container ``name``: in a network namespace of its own (only lo),
        set up by the CNI plugins with ``cni`` (``ctr run --cni``: ADD with ``CNI_CONTAINERID`` ``default-NAME``,
        ``CNI_IFNAME`` eth0, ``CNI_NETNS`` /proc/PID/ns/net), or joining the existing one at path ``netns``
        (``--with-ns network:PATH``). Running and listening when this returns."""
        argv = [CTR, "run", "--rm", "--null-io", "--cgroup", f"/{self.cgroup_parent}/{name}"]
        argv += ["--cni"] if cni else []
        argv += ["--with-ns", f"network:{netns}"] if netns is not None else []
        log = self.scratch / f"ctr-run-{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [*self.sandbox.prefix, *argv, IMAGE, name, *_httpd(name)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=SYSTEM_ENV,
            )
        self._runs[name] = process
        deadline = time.monotonic() + READY_WITHIN
        while (task := self.tasks().get(name)) is None or task[1] != "RUNNING":
            if process.poll() is not None or time.monotonic() > deadline:
                text = log.read_text(errors="replace")
                raise AssertionError(f"ctr run {name} did not start (exit {process.poll()}):\n{text}\n{self.log()}")
            time.sleep(0.05)
        container = _container(self.kind, name, task[0])
        self.containers[name] = container
        return container

    def pid(self, name: str) -> int:
        """The pid of a running container's task."""
        task = self.tasks().get(name)
        assert task is not None, f"containerd has no task {name}"
        return task[0]

    def delete(self, name: str) -> None:
        """Kill the task (SIGKILL) and wait for its ``ctr run`` to call CNI DEL (if ``--cni``) and to remove the
        task and the container; a container not run by :meth:`run` is removed with ``ctr`` alone."""
        self.ctr("task", "kill", "-s", "SIGKILL", name, check=False)
        process = self._runs.pop(name, None)
        if process is not None:
            try:
                process.wait(timeout=STOP_WITHIN)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                self.leftovers.append(f"{process.pid} ctr run {name} (did not end after its task was killed)")
        if name in self.tasks():
            self.ctr("task", "delete", "-f", name, check=False)
        if name in self.ctr("container", "ls", "-q").stdout.split():
            self.ctr("container", "delete", name)
        self.containers.pop(name, None)

    def _stop(self) -> None:
        process = self.process
        if process is None:  # never started (another containerd's socket, or a failure before): nothing of ours
            return
        try:
            if process.poll() is None:
                listed = self.ctr("container", "ls", "-q", check=False).stdout.split()
                for name in dict.fromkeys([*self._runs, *listed]):
                    self.delete(name)
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=STOP_WITHIN)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            for run in self._runs.values():  # only if containerd died under them
                run.kill()
                run.wait()
            marks = (self.socket, str(self.config))  # containerd and its shims (`-address SOCKET`): ours alone
            found = sandbox_processes(self.sandbox, marks, [c.proc for c in self.containers.values()])
            self.leftovers += end_processes(found, within=STOP_WITHIN)
            dockerd.remove_cgroups(self.sandbox, self.cgroup_parent)
