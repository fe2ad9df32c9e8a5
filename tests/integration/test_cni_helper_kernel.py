"""The warm helper on the real kernel, in a sandbox: the first call starts it, the next ones run in its
copies and build exactly what a call of its own would, and a caller that sees the machine otherwise (another
mount namespace) is not taken and runs the call itself."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from netwrap import Sandbox
from netwrap.command import Command
from netwrap.host import snapshot
from tests.integration.test_cni_conformance_kernel import PLUGIN, SYSTEM_PATH, cni, conf, published, succeeded

pytestmark = pytest.mark.integration

ROOT = str(Path(__file__).resolve().parents[2])
PYTHON = PLUGIN.read_text().splitlines()[0][2:].split()[0]  # the console script's interpreter: its helper's key
THROUGH = (  # what the client does first: hand the call to the helper; prints the outcome
    f"import sys; sys.path.insert(0, {ROOT!r}); from netwrap.cni import client; print(client.through_helper())"
)


def helper_pid(sandbox: Sandbox, within: float = 20.0) -> int:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        done = subprocess.run(
            [*sandbox.prefix, str(PLUGIN), "--helper-pid"], capture_output=True, text=True, check=False
        )
        if done.returncode == 0:
            return int(done.stdout)
        time.sleep(0.05)
    raise AssertionError("no helper started within the time allowed")


def _through(sandbox: Sandbox, *before: str) -> int:
    env = {"PATH": SYSTEM_PATH, "CNI_COMMAND": "VERSION"}
    done = subprocess.run(
        [*sandbox.prefix, *before, PYTHON, "-I", "-S", "-c", THROUGH],
        input='{"cniVersion": "1.0.0"}', env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return int(done.stdout.strip().splitlines()[-1])


def _add_two(sandbox: Sandbox, env: dict[str, str]) -> list[dict[str, object]]:
    return [
        succeeded(cni(sandbox, "ADD", published(port), container=name, netns=f"/run/netns/{name}", env=env)).json()
        for name, port in (("a", 8081), ("b", 8082))
    ]


def test_calls_through_the_helper_build_what_calls_of_their_own_build(sandbox: Sandbox) -> None:
    for name in ("a", "b"):
        sandbox.runner.run(Command("ip", ("netns", "add", name)))
    empty = snapshot.take(sandbox.runner)
    helped = _add_two(sandbox, {})  # the first runs itself and starts the helper
    pid = helper_pid(sandbox)
    assert _through(sandbox) == 0  # the helper takes calls (VERSION answered, exit 0)
    succeeded(cni(sandbox, "DEL", published(8082), container="b", netns="/run/netns/b"))
    helped[1] = succeeded(
        cni(sandbox, "ADD", published(8082), container="b", netns="/run/netns/b")
    ).json()  # this one through the helper
    with_helper = snapshot.take(sandbox.runner)
    for name in ("a", "b"):
        succeeded(cni(sandbox, "DEL", published(), container=name, netns=f"/run/netns/{name}"))
    assert snapshot.take(sandbox.runner) == empty
    subprocess.run(["kill", str(pid)], check=True)
    alone = _add_two(sandbox, {"NETWRAP_CNI_HELPER": "off"})  # each call in its own process
    assert snapshot.take(sandbox.runner) == with_helper
    assert [r["ips"] for r in alone] == [r["ips"] for r in helped]
    assert [r["routes"] for r in alone] == [r["routes"] for r in helped]


def test_a_caller_in_another_mount_namespace_is_not_taken(sandbox: Sandbox) -> None:
    succeeded(cni(sandbox, "STATUS", conf()))
    helper_pid(sandbox)
    assert _through(sandbox) == 0
    assert _through(sandbox, "unshare", "--mount", "--propagation", "private", "--") == -2  # NOT_TAKEN
    assert _through(sandbox) == 0  # the helper goes on for the others
