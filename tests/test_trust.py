"""Records are acted on as root, so only records and state directories of netwrap's own user are trusted.

Issue 12, item 2: in a shared state directory (mode 1777), uid 65534 planted an
unfinished record that "created" a namespace and a bridge of someone else's,
and root's ``netwrap clean`` deleted both. Changing another user's file's owner
needs root, so these tests skip (saying why) without it; CI runs as root.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pytest_subprocess import FakeProcess

from netwrap import Bridge, Namespace, NetwrapError
from netwrap.engine import registry
from netwrap.engine.clean import clean, survey
from netwrap.engine.state import Record, StateFile, Writer, state_files
from netwrap.host.runner import SubprocessRunner

NOBODY = 65534


@pytest.fixture(autouse=True)
def _root() -> None:
    if os.geteuid() != 0:
        pytest.skip("giving a file to another user needs root (CI runs as root)")


def planted(directory: Path, *, owner: int = NOBODY, mode: int = 0o644) -> StateFile:
    """An unfinished record of a dead writer that 'created' someone else's namespace and bridge."""
    store = StateFile(directory / "planted.json")
    store.path.write_text(
        Record([Namespace("victim"), Bridge("victimbr", tool="ip")], writer=Writer(2**22 + 9, 1)).to_text()
    )
    os.chown(store.path, owner, owner)
    store.path.chmod(mode)
    return store


def test_a_shared_state_directory_is_refused_and_nothing_in_it_is_acted_on(
    tmp_path: Path, fp: FakeProcess, runner: SubprocessRunner
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    planted(shared)
    with pytest.raises(NetwrapError, match=r"state directory .*shared may be written by others \(mode 1777\)"):
        clean(runner, shared)
    assert list(fp.calls) == []  # not one command ran
    with pytest.raises(NetwrapError, match="may be written by others"):
        state_files(shared)
    with pytest.raises(NetwrapError, match="may be written by others"):
        StateFile(shared / "mine.json").save(Record())


def test_a_record_of_another_user_is_refused_and_never_acted_on(
    tmp_path: Path, fp: FakeProcess, runner: SubprocessRunner
) -> None:
    store = planted(tmp_path)
    with pytest.raises(NetwrapError, match=rf"record .*planted.json belongs to uid {NOBODY}, not to uid 0"):
        store.load()
    (item,) = survey(tmp_path)
    assert item.status == "unreadable"
    assert clean(runner, tmp_path) == []
    assert list(fp.calls) == []


@pytest.mark.parametrize("mode", [0o666, 0o620, 0o602])
def test_a_record_that_others_may_write_is_refused(tmp_path: Path, mode: int) -> None:
    store = planted(tmp_path, owner=0, mode=mode)
    with pytest.raises(NetwrapError, match=rf"may be written by others \(mode {mode:04o}\)"):
        store.load()


def test_a_record_that_is_a_symbolic_link_is_refused(tmp_path: Path) -> None:
    elsewhere = planted(tmp_path, owner=0, mode=0o600)
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "link.json").symlink_to(elsewhere.path)
    with pytest.raises(NetwrapError, match="is a symbolic link"):
        StateFile(tmp_path / "state" / "link.json").load()


def test_records_netwrap_writes_are_its_own_and_private(tmp_path: Path) -> None:
    store = StateFile(tmp_path / "new" / "t.json")
    store.save(Record([Namespace("a")]))
    assert (store.path.parent.stat().st_mode & 0o777) == 0o700
    assert (store.path.stat().st_mode & 0o777) == 0o600
    assert store.load() is not None


def test_a_listed_state_directory_that_is_not_private_is_passed_over(tmp_path: Path) -> None:
    run, mine, theirs = tmp_path / "run", tmp_path / "mine", tmp_path / "theirs"
    for directory in (mine, theirs):
        directory.mkdir()
        registry.register(run, directory)
    os.chown(theirs, NOBODY, NOBODY)
    assert registry.directories(run) == [mine]
