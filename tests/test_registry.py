"""The list of a host's state directories: registration, and the records it lets claims see."""

from __future__ import annotations

from pathlib import Path

from netwrap.engine import registry
from netwrap.engine.claims import others
from netwrap.engine.state import Record, StateFile
from netwrap.host.runner import DryRunner, EchoRunner, SubprocessRunner, run_dir_of
from netwrap.kinds import Namespace


def _record(directory: Path, name: str) -> StateFile:
    store = StateFile.in_dir(directory, name)
    store.save(Record([Namespace(name.partition("@")[0])], complete=True))
    return store


def test_a_listed_directory_is_seen_once_and_a_gone_one_is_passed_over(tmp_path: Path) -> None:
    run, one, two = tmp_path / "run", tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    for directory in (one, two, one):
        registry.register(run, directory)
    listed = registry.directories(run)
    assert sorted(listed) == sorted([one, two])  # once each
    two.rmdir()
    assert registry.directories(run) == [one]
    assert registry.directories(tmp_path / "nothing") == []


def test_claims_see_the_records_of_every_listed_directory_of_this_machine(tmp_path: Path) -> None:
    run, one, two = tmp_path / "run", tmp_path / "one", tmp_path / "two"
    mine = _record(one, "topology-a")
    theirs = _record(two, "topology-b")
    _record(two, "topology-c@root@lab1")  # another machine's record: never this host's
    runner = SubprocessRunner(run_dir=run)
    assert others(mine, runner) == []  # two is not listed yet
    registry.register(run, two)
    assert others(mine, runner) == [theirs]
    assert others(mine, SubprocessRunner(run_dir=None)) == []  # a host whose /run is not known here
    assert others(mine) == []


def test_a_record_of_another_machine_sees_only_its_own_directory(tmp_path: Path) -> None:
    run = tmp_path / "run"
    remote = _record(tmp_path / "one", "topology-a@root@lab1")
    _record(tmp_path / "two", "topology-b@root@lab1")
    registry.register(run, tmp_path / "two")
    assert others(remote, SubprocessRunner(run_dir=run)) == []


def test_the_host_run_is_found_through_wrapping_runners(tmp_path: Path) -> None:
    inner = SubprocessRunner(run_dir=tmp_path)
    assert run_dir_of(EchoRunner(DryRunner(inner), print)) == tmp_path
    assert run_dir_of(SubprocessRunner(run_dir=None)) is None
