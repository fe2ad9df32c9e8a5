"""Shared fixtures: captured tool output, a runner for faked processes, and sandboxes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from netwrap.runner import SubprocessRunner
from netwrap.sandbox import Sandbox

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_text(name: str) -> str:
    """Output captured from the real tools by scripts/capture_fixtures.py."""
    return (FIXTURES / name).read_text()


@pytest.fixture
def runner() -> SubprocessRunner:
    """A real SubprocessRunner that keeps bare tool names (for `fp`) and never waits between retries."""
    return SubprocessRunner(resolve=lambda tool: tool, wait=0)


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
