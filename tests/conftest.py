"""Shared fixtures: captured tool output, a runner for faked processes, and sandboxes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

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
