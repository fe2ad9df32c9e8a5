"""The memo of a host-side check that found nothing to do: when it holds, and everything that voids it."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_subprocess import FakeProcess

from netwrap import StateFile
from netwrap import topology_apply as apply_
from netwrap.engine import state
from netwrap.engine.state import state_files
from netwrap.host.runner import SubprocessRunner
from netwrap.topology import files as topofile
from netwrap.topology import verified
from netwrap.topology.model import Topology
from tests.test_tutorial import NAT, NETNS, SYSCTL, Answers, batch_read, built_host, fake, seen

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
HOST_READS = sorted([NETNS, batch_read(None), NAT, SYSCTL])


def tutorial_file() -> Topology:
    return topofile.load(EXAMPLES / "tutorial.toml")


def settled(fp: FakeProcess, runner: SubprocessRunner, tmp_path: Path, answers: Answers) -> StateFile:
    """A record of an apply, then a --quick apply that found nothing to do (and wrote the memo)."""
    fake(fp, answers, [])
    store = StateFile(tmp_path / "topology-tutorial.json")
    assert apply_.apply(tutorial_file(), runner, store).changed == ()
    assert apply_.apply(tutorial_file(), runner, store, check="host").changed == ()
    assert verified.memo_path(store).exists()
    fp.calls.clear()
    return store


class FullPath(Exception):
    """Raised where the full path starts: rebuilding the wanted objects."""


def no_full_path(*args: object) -> None:
    raise FullPath


def test_a_memo_that_holds_settles_the_check_in_the_host_reads_alone(
    fp: FakeProcess, runner: SubprocessRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = settled(fp, runner, tmp_path, built_host())
    monkeypatch.setattr("netwrap.topology.apply.desired", no_full_path)
    assert apply_.apply(tutorial_file(), runner, store, check="host").changed == ()
    assert sorted(seen(fp)) == HOST_READS


def test_a_host_that_changed_voids_the_memo(
    fp: FakeProcess, runner: SubprocessRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = settled(fp, runner, tmp_path, built_host())
    monkeypatch.setattr("netwrap.topology.apply.desired", no_full_path)
    changed = built_host()
    changed[SYSCTL] = (0, "0\n")  # ip_forward was turned off meanwhile
    with fp.context() as after:
        fake(after, changed, [])
        with pytest.raises(FullPath):
            apply_.apply(tutorial_file(), runner, store, check="host")


@pytest.mark.parametrize("what", ["record", "topology", "memo", "check"])
def test_anything_else_that_changed_takes_the_full_path(
    fp: FakeProcess, runner: SubprocessRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, what: str
) -> None:
    store = settled(fp, runner, tmp_path, built_host())
    monkeypatch.setattr("netwrap.topology.apply.desired", no_full_path)
    topo, check = tutorial_file(), "host"
    if what == "record":
        record = store.load()
        assert record is not None
        record.action = "edited"
        store.save(record)
    elif what == "topology":
        topo = topofile.loads((EXAMPLES / "tutorial.toml").read_text().replace("Tbr0", "Tbr9"), "edited.toml")
    elif what == "memo":
        verified.memo_path(store).write_text('{"record": "damaged"')
    else:
        check = "all"
    with pytest.raises(FullPath):
        apply_.apply(topo, runner, store, check=check)  # type: ignore[arg-type]


def test_the_memo_is_not_a_record_and_goes_with_destroy(
    fp: FakeProcess, runner: SubprocessRunner, tmp_path: Path
) -> None:
    store = settled(fp, runner, tmp_path, built_host())
    assert [f.path for f in state_files(tmp_path)] == [store.path]
    fake(fp, built_host(), [])
    apply_.destroy(runner, store)
    assert not verified.memo_path(store).exists()


def test_a_reapply_with_nothing_to_do_rebuilds_no_recorded_object(
    fp: FakeProcess, runner: SubprocessRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake(fp, built_host(), [])
    store = StateFile(tmp_path / "topology-tutorial.json")
    apply_.apply(tutorial_file(), runner, store)
    state._LOADED.clear()  # as a new process: the record is read from the file

    def no_rebuild(*args: object) -> None:
        raise AssertionError("a no-op needs the recorded keys, not the objects")

    monkeypatch.setattr("netwrap.engine.state._rebuild", no_rebuild)
    for check in ("all", "host"):
        assert apply_.apply(tutorial_file(), runner, store, check=check).changed == ()
