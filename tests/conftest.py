"""Shared fixtures: captured tool output, a runner for faked processes, and sandboxes."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from netwrap.command import Command
from netwrap.host.runner import Result, Runner, SubprocessRunner
from netwrap.host.sandbox import Sandbox

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_text(name: str) -> str:
    """Output captured from the real tools by scripts/capture_fixtures.py."""
    return (FIXTURES / name).read_text()


@pytest.fixture
def runner() -> SubprocessRunner:
    """A real SubprocessRunner that keeps bare tool names (for `fp`) and never waits between retries."""
    return SubprocessRunner(resolve=lambda tool: tool, wait=0, run_dir=None)  # no host-wide list of state dirs


NETWORK_TOOLS = frozenset(
    {"ip", "iptables", "iptables-save", "iptables-restore", "iptables-legacy", "ip6tables", "ip6tables-save",
     "ip6tables-restore", "brctl", "bridge", "sysctl",
     "nsenter", "unshare"}
)  # fmt: skip


@pytest.fixture(autouse=True)
def no_network_tools_in_unit_tests(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A unit test never starts a real ip, iptables, brctl, sysctl or sandbox tool: only pytest-subprocess's
    fakes (``fp``) may answer for them. A regression that would change this machine's real network (a usage
    error no longer refused before ``tutorial up``, say) then fails the test instead of touching the host.
    Tests marked ``integration`` drive the real kernel inside their own sandboxes and are not guarded."""
    if request.node.get_closest_marker("integration") is not None:
        return
    real = subprocess.Popen

    def guarded(args: Any, *rest: Any, **kwargs: Any) -> Any:
        argv = [args] if isinstance(args, str | os.PathLike) else list(args)
        if argv and Path(str(argv[0])).name in NETWORK_TOOLS:
            raise RuntimeError(f"a unit test tried to run {argv[0]} for real: fake it with the fp fixture")
        return real(args, *rest, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", guarded)


@pytest.fixture(autouse=True)
def private_host_run(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """This process's idea of the machine's /run (its list of state directories, the host-wide lock) is a
    folder of the test's own: no test writes to the real /run. Sandboxes have their own /run anyway."""
    monkeypatch.setattr("netwrap.host.runner.HOST_RUN", tmp_path_factory.mktemp("run"))


REQUIRE = "NETWRAP_REQUIRE_INTEGRATION"


def require_root() -> None:
    """Skip, saying why, when not root; fail instead when $NETWRAP_REQUIRE_INTEGRATION=1 (CI)."""
    if os.geteuid() == 0:
        return
    reason = "integration tests need root: they make a throwaway network namespace (CI runs them as root)"
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(f"{reason}; {REQUIRE}=1 forbids skipping them")
    pytest.skip(reason)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """A throwaway network namespace with a private /run; skipped, with the reason, without root."""
    require_root()
    with Sandbox() as box:
        yield box


@attrs.define
class Counting:
    """Passes commands on and remembers them (to count processes, or to see what changed)."""

    inner: Runner
    seen: list[Command] = attrs.field(factory=list)

    def run(self, command: Command) -> Result:
        self.seen.append(command)
        return self.inner.run(command)

    @property
    def mutating(self) -> list[Command]:
        return [c for c in self.seen if c.mutates]

    @property
    def mutating_shells(self) -> list[str]:
        return [c.shell() for c in self.mutating]


def count_calls(monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> list[object]:
    """Wrap ``owner.name`` so that each call's first argument is noted (in the list returned) before the call."""
    real = getattr(owner, name)
    calls: list[object] = []

    def counted(first: object, *args: Any, **kwargs: Any) -> Any:
        calls.append(first)
        return real(first, *args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return calls
