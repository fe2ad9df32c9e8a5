"""Find and remove what runs that died left behind, and only that.

Every build writes a record in the state directory before each change (see
:mod:`netwrap.engine.state`). A record that is not complete and whose writer is gone
is a crashed run's; ``clean`` tears it down like ``down`` would, so it removes
only what that run created. Finished builds (``tutorial up``) and runs still
going are listed and left alone, and so is a netwrap-cni network whose call
died: its record holds every container of the network, not that call's alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import attrs

from netwrap.engine.build import Outcome, teardown
from netwrap.engine.state import Record, StateFile, state_files
from netwrap.errors import NetwrapError
from netwrap.host.runner import Runner

Status = Literal["crashed", "running", "kept", "unreadable", "interrupted"]
CNI_RECORDS = "topology-cni-"  # a netwrap-cni network's record (topology names starting with cni- are its own)


@attrs.frozen
class Leftover:
    """One record in the state directory and what clean makes of it."""

    file: StateFile
    record: Record | None
    status: Status
    detail: str

    def describe(self) -> str:
        count = f", {len(self.record.created)} object(s)" if self.record is not None else ""
        return f"{self.file.name}: {self.status}{count}: {self.detail}"


def survey(state_dir: Path | str) -> list[Leftover]:
    """Every record in ``state_dir``, classified."""
    found = []
    for file in state_files(state_dir):
        try:
            record = file.load()
            if record is not None:
                _ = record.created  # rebuilt here, so that a damaged object makes the record unreadable
        except NetwrapError as exc:
            found.append(Leftover(file, None, "unreadable", f"{exc}; left as it is"))
            continue
        if record is None:
            continue
        who = f"{record.action or 'a run'} by pid {record.writer.pid}"
        if record.complete:
            found.append(Leftover(file, record, "kept", f"{who} finished; {_undo(file, record)} removes it"))
        elif record.writer.alive():
            found.append(Leftover(file, record, "running", f"{who} is still running"))
        elif file.name.startswith(CNI_RECORDS):
            # one call of many: tearing the record down would cut off every container of the network, which
            # their runtime never adds again; the network's next call finishes what this one began
            found.append(Leftover(file, record, "interrupted", f"a netwrap-cni call (pid {record.writer.pid}) "
                                  "ended before finishing; the network's next CNI call finishes it, or `netwrap "
                                  "apply -f CONFIG` now; left as it is"))  # fmt: skip
        else:
            found.append(Leftover(file, record, "crashed", f"{who} ended before finishing"))
    return found


def _undo(file: StateFile, record: Record) -> str:
    """The command that removes what a finished record lists: a topology's or a cluster's `destroy`, the
    tutorial's `down`."""
    if record.action == "apply" or file.name.startswith("cluster-"):
        return "`netwrap destroy -f FILE`"
    return "`netwrap tutorial down`"


def clean(runner: Runner, state_dir: Path | str, host: str = "") -> list[tuple[Leftover, Outcome]]:
    """Tear down every crashed run's record of this machine (``host`` ``""``) or of ``@[user@]machine``.

    A record's name ends with ``@[user@]machine`` when it describes another machine; only the records of
    the machine ``runner`` reaches are torn down.
    """
    return [
        (item, teardown(runner, item.file))
        for item in survey(state_dir)
        if item.status == "crashed" and item.file.machine == host
    ]
