"""Host-wide claims: what an object takes for itself on a host, so that no two records take the same.

A namespace, a device name, a chain of netwrap's own, a subnet on the host (the
network of an address on a host device, such as a bridge's gateway) and a
published host port belong to one record at a time. Before a build plans
anything, every other record of the same machine is read, and a wanted object
whose claim clashes with what another record created is a conflict that names
that record; nothing is changed. Subnets clash when they overlap; ports when
the protocol and port are the same and the host addresses overlap (no address
means every address). Settings such as ``ip_forward`` are not claims: several
records may need them, and the last to leave gives them back (see
:mod:`netwrap.engine.build`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from netwrap.engine.registry import records_beside
from netwrap.engine.state import StateFile
from netwrap.errors import NetwrapError
from netwrap.host.runner import Runner, run_dir_of
from netwrap.kinds import NetObject


def others(store: object, runner: Runner | None = None) -> list[StateFile]:
    """The other records of the machine ``store`` describes: in its state directory and, where ``runner`` says
    where the host's ``/run`` is, in every other state directory listed there (see :mod:`netwrap.engine.registry`).
    None for a store in memory."""
    if not isinstance(store, StateFile):
        return []
    return records_beside(store, run_dir_of(runner) if runner is not None else None)


def conflicts(objects: Iterable[NetObject], siblings: Sequence[StateFile]) -> list[str]:
    """Each wanted claim that another record's created objects already hold, naming that record."""
    if not siblings:
        return []  # no other record: nothing to clash with (and nothing worked out)
    wanted = [(obj, claim) for obj in objects for claim in obj.claims()]
    if not wanted:
        return []
    found: list[str] = []
    for sibling in siblings:
        try:
            record = sibling.load()
            held = [claim for obj in record.created for claim in obj.claims()] if record is not None else []
        except NetwrapError as exc:
            found.append(f"the record {sibling.name} cannot be read, so what it holds is unknown: {exc}")
            continue
        if record is None:
            continue
        state = "" if record.complete or record.writer.alive() else " (a run that died: `netwrap clean` removes it)"
        for obj, claim in wanted:
            theirs = next((c for c in held if claim.clashes(c)), None)
            if theirs is not None:
                mine = claim.describe()
                also = "" if theirs == claim else f" ({theirs.describe()})"
                found.append(f"{obj.key}: {mine} is already taken by the record {sibling.name}{also}{state}")
    return found
