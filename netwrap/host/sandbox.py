"""A throwaway sandbox: a fresh network namespace with a private ``/run`` and ``/sys``.

A holder process is started with ``unshare --net --mount --propagation
private``; every command then runs through ``nsenter --target HOLDER --net
--mount``. Inside, ``/run`` is a tmpfs of the sandbox's own (so ``/run/netns``
and the xtables lock are private), ``/sys`` shows the sandbox's devices, and
``lo`` is up, as on any host.
When the holder ends, the kernel frees everything made inside.

The guard is positive: the sandbox refuses to run anything unless the holder is
alive, its network namespace differs from the one this process started in, and
its ``/run`` is the tmpfs the sandbox mounted. Needs root.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from types import TracebackType

import attrs

from netwrap.command import PACKAGES, Command
from netwrap.errors import SandboxError, ToolNotFoundError
from netwrap.host.runner import SYSTEM_PATH, Result, Runner, SubprocessRunner, find_tool

_MARKER = "netwrap-sandbox"


def _netns_inode(path: str) -> int:
    return os.stat(path).st_ino


def _tool(name: str) -> str:
    path = find_tool(name)
    if path is None:
        raise ToolNotFoundError(name, PACKAGES.get(name))
    return path


def top_mount(mountinfo: str, target: str) -> tuple[str, str] | None:
    """``(source, fstype)`` of the mount on top at ``target`` in a ``/proc/PID/mountinfo`` text, or None.

    Mounts stack: on a host where ``/run`` is already a mount point (systemd's
    tmpfs), the sandbox's own tmpfs lies over it and both are listed. The one
    on top is the one no other mount at ``target`` lies over, i.e. whose id is
    no other's parent there.
    """
    found: dict[str, tuple[str, str, str]] = {}  # id -> (parent, source, fstype)
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) < 10 or "-" not in fields[6:]:
            continue
        cut = fields.index("-", 6)
        if len(fields) < cut + 3 or fields[4] != target:
            continue
        found[fields[0]] = (fields[1], fields[cut + 2], fields[cut + 1])
    parents = {parent for parent, _, _ in found.values()}
    tops = [(source, fstype) for mount, (_, source, fstype) in found.items() if mount not in parents]
    return tops[-1] if tops else None


@attrs.define
class SandboxRunner:
    """Runs commands inside a live sandbox; refuses once the sandbox is gone."""

    sandbox: Sandbox
    inner: SubprocessRunner

    def run(self, command: Command) -> Result:
        self.sandbox.check_alive()
        return self.inner.run(command)


class Sandbox:
    """Use as a context manager; :attr:`runner` runs commands inside it."""

    def __init__(self, *, timeout: float = 30.0) -> None:
        self._timeout = timeout
        self._holder: subprocess.Popen[bytes] | None = None
        self._host_inode = _netns_inode("/proc/self/ns/net")
        self.runner: Runner
        self.prefix: tuple[str, ...] = ()

    @property
    def pid(self) -> int:
        if self._holder is None:
            raise SandboxError("the sandbox is not running")
        return self._holder.pid

    def check_alive(self) -> None:
        """Raise unless the holder still runs in a network namespace of its own."""
        if self._holder is None or self._holder.poll() is not None:
            raise SandboxError("the sandbox's holder process is gone; refusing to run anything")
        try:
            inode = _netns_inode(f"/proc/{self._holder.pid}/ns/net")
        except OSError as exc:
            raise SandboxError(f"cannot read the sandbox's network namespace: {exc}") from None
        if inode == self._host_inode:
            raise SandboxError("the sandbox shares this process's network namespace; refusing to run anything")

    def __enter__(self) -> Sandbox:
        if os.geteuid() != 0:
            raise SandboxError("a sandbox needs root (unshare --net --mount); run as root")
        unshare, cat = _tool("unshare"), _tool("cat")
        self._holder = subprocess.Popen(
            [unshare, "--net", "--mount", "--propagation", "private", "--", cat],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={"LC_ALL": "C", "PATH": SYSTEM_PATH},
        )
        try:
            self._wait_unshared()
            self.prefix = (_tool("nsenter"), "--target", str(self._holder.pid), "--net", "--mount", "--")
            # the sandbox's private /run, as this process reaches it
            run = Path(f"/proc/{self._holder.pid}/root/run")
            inner = SubprocessRunner(prefix=self.prefix, timeout=self._timeout, run_dir=run)
            self.runner = SandboxRunner(self, inner)
            self.runner.run(Command("mount", ("-t", "tmpfs", "-o", "mode=755", _MARKER, "/run")))
            self.runner.run(Command("mount", ("-t", "sysfs", _MARKER, "/sys")))
            self._check_private_run()
            self.runner.run(Command("ip", ("link", "set", "lo", "up")))  # as on any host
        except BaseException:
            self.close()
            raise
        return self

    def _wait_unshared(self) -> None:
        if self._holder is None:
            raise SandboxError("the sandbox is not running")
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            if self._holder.poll() is not None:
                err = self._holder.stderr.read().decode(errors="replace") if self._holder.stderr else ""
                raise SandboxError(f"unshare failed: {err.strip() or 'exit ' + str(self._holder.returncode)}")
            try:
                if _netns_inode(f"/proc/{self._holder.pid}/ns/net") != self._host_inode:
                    return
            except OSError:
                pass
            time.sleep(0.005)
        raise SandboxError("unshare did not create a new network namespace within 5 s")

    def _check_private_run(self) -> None:
        if self._holder is None:
            raise SandboxError("the sandbox is not running")
        try:
            table = Path(f"/proc/{self._holder.pid}/mountinfo").read_text()
        except OSError as exc:
            raise SandboxError(f"cannot read the sandbox's mount table: {exc}") from None
        top = top_mount(table, "/run")
        if top != (_MARKER, "tmpfs"):
            raise SandboxError(f"/run in the sandbox is not its own tmpfs: the top mount there is {top!r}")

    def close(self) -> None:
        """End the holder; the kernel frees the namespace and all it holds."""
        holder, self._holder = self._holder, None
        if holder is None:
            return
        if holder.stdin is not None:
            holder.stdin.close()
        try:
            holder.wait(timeout=5)
        except subprocess.TimeoutExpired:
            holder.kill()
            holder.wait()
        if holder.stderr is not None:
            holder.stderr.close()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
