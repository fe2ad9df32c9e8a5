"""What several kernel tests share: the simulated outside, and a process in a network namespace of its own."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from netwrap import MemoryStore, Sandbox, build, teardown
from netwrap.tutorial.verify import outside_objects


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
