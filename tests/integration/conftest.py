"""What several kernel tests share: the simulated outside, and a process in a network namespace of its own."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from netwrap import MemoryStore, Sandbox, build, teardown
from netwrap.tutorial.verify import outside_objects


def helpers() -> dict[int, int]:
    """The warm CNI helpers running on this machine (see netwrap.cni.helper), and their copies: pid, network
    namespace inode."""
    return {pid: netns for pid, (netns, helper) in _processes().items() if helper}


def _processes() -> dict[int, tuple[int, bool]]:
    """Every process this one can see: pid, (network namespace inode, whether it is a CNI helper)."""
    found: dict[int, tuple[int, bool]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            helper = b"netwrap.cni.helper" in (entry / "cmdline").read_bytes()
            found[int(entry.name)] = ((entry / "ns" / "net").stat().st_ino, helper)
    return found


def stop_helpers(netns: int | None = None) -> list[int]:
    """Stop, by pid, the warm helpers (and their copies) in network namespace ``netns`` (an inode); without
    one, those whose namespace nothing else holds any more: a sandbox that ended, its helper the last thing
    in it. A helper in this machine's own namespace, or in a sandbox still in use (another test run's, say),
    is never touched. The pids stopped."""
    own = Path("/proc/self/ns/net").stat().st_ino
    processes = _processes()
    held = {where for where, helper in processes.values() if not helper}
    stopped = []
    for pid, (where, helper) in processes.items():
        if not helper or where == own or (netns is not None and where != netns):
            continue
        if netns is None and where in held:
            continue
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            stopped.append(pid)
    deadline = time.monotonic() + 5
    while any(Path(f"/proc/{pid}").exists() for pid in stopped) and time.monotonic() < deadline:
        time.sleep(0.01)
    return stopped


@pytest.fixture(autouse=True)
def no_helper_left() -> Iterator[None]:
    """A test whose plugin calls started a warm helper in a sandbox stops it by pid once the sandbox is over."""
    yield
    stop_helpers()


@pytest.fixture
def outside(sandbox: Sandbox) -> Iterator[Sandbox]:
    """The tutorial verifier's simulated outside (namespace Toutside at 192.0.2.2, behind the host's uplink at
    192.0.2.1), removed afterwards; gives the sandbox."""
    store = MemoryStore()
    build(outside_objects(), sandbox.runner, store)
    try:
        yield sandbox
    finally:
        teardown(sandbox.runner, store)


def wait_unshared(sandbox: Sandbox, pid: int, within: float = 5.0) -> None:
    """Wait until process ``pid`` (started in the sandbox) is in a network namespace of its own."""
    deadline = time.monotonic() + within
    while Path(f"/proc/{pid}/ns/net").stat().st_ino == Path(f"/proc/{sandbox.pid}/ns/net").stat().st_ino:
        if time.monotonic() > deadline:
            raise AssertionError(f"process {pid} did not get a network namespace of its own")
        time.sleep(0.01)


@pytest.fixture
def container(sandbox: Sandbox) -> Iterator[subprocess.Popen[bytes]]:
    """A process in a network namespace of its own, as a container started with ``--network none`` is."""
    process = subprocess.Popen([*sandbox.prefix, "unshare", "--net", "sleep", "300"])
    try:
        wait_unshared(sandbox, process.pid)
        yield process
    finally:
        process.kill()
        process.wait()
