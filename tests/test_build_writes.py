"""What a build writes and starts that nobody needs: one record write before the first change (the claims, with
the record marked unfinished), and no reader threads when there is nothing to read."""

from __future__ import annotations

import attrs
import pytest

from netwrap import Namespace
from netwrap.command import Command
from netwrap.engine.batch import Mode
from netwrap.engine.build import build
from netwrap.engine.state import MemoryStore, Record
from netwrap.host import observe
from netwrap.host.observe import HostState, Reads
from netwrap.host.runner import Result


@attrs.define
class Store(MemoryStore):
    """Notes, per write, whether the host had been changed yet and what the record said."""

    runner: Recording | None = None
    writes: list[tuple[int, bool, list[str]]] = attrs.field(factory=list)

    def save(self, record: Record) -> None:
        changes = self.runner.changes if self.runner is not None else 0
        self.writes.append((changes, record.complete, list(record.keys())))
        super().save(record)


@attrs.define
class Recording:
    changes: int = 0

    def run(self, command: Command) -> Result:
        if command.mutates:
            self.changes += 1
        return Result(command, 0, "", "")


@pytest.mark.parametrize(("mode", "before_first"), [("batch", 1), ("verbatim", 2)])
def test_one_write_before_the_first_change_when_batched(mode: Mode, before_first: int) -> None:
    runner = Recording()
    store = Store(runner=runner)
    wanted = [Namespace("a"), Namespace("b")]
    build(wanted, runner, store, mode=mode)
    ahead = [w for w in store.writes if w[0] == 0]
    assert len(ahead) == before_first  # verbatim: the record marked unfinished, then each claim before its change
    assert ahead[-1][1] is False  # unfinished while it changes the host
    assert ahead[-1][2] == ([wanted[0].key, wanted[1].key] if mode == "batch" else [wanted[0].key])
    assert store.writes[-1][1] is True and store.writes[-1][2] == [o.key for o in wanted]


def test_nothing_to_read_starts_no_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_threads(*args: object, **kwargs: object) -> None:
        raise AssertionError("a reader pool was started for nothing")

    monkeypatch.setattr(observe, "ThreadPoolExecutor", no_threads)
    assert observe.read(Recording(), Reads()) == HostState()
