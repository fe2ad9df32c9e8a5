"""The sandbox's guard reads which mount is on top at /run, also when /run was a mount point already."""

from __future__ import annotations

from pathlib import Path

from netwrap.host.sandbox import top_mount

FIXTURES = Path(__file__).parent / "fixtures"


def test_the_mount_on_top_is_the_one_no_other_lies_over() -> None:
    """Captured where /run is a tmpfs (as systemd makes it) with the sandbox's own stacked over it."""
    table = (FIXTURES / "mountinfo_run_stacked.txt").read_text()
    assert top_mount(table, "/run") == ("netwrap-sandbox", "tmpfs")
    assert top_mount(table, "/run/netns") == ("host-run", "tmpfs")
    assert top_mount(table, "/nowhere") is None


def test_the_order_of_the_lines_does_not_decide() -> None:
    lines = (FIXTURES / "mountinfo_run_stacked.txt").read_text().splitlines()
    assert top_mount("\n".join(reversed(lines)), "/run") == ("netwrap-sandbox", "tmpfs")


def test_a_host_mount_alone_is_not_the_sandbox() -> None:
    table = "92 71 0:40 / /run rw,relatime - tmpfs host-run rw\nbroken line\n"
    assert top_mount(table, "/run") == ("host-run", "tmpfs")
