"""The last host-side check that found nothing to do, remembered: an unchanged host is seen in a few reads.

A plan is a pure function of what is wanted, the host as observed and the
record. When ``apply --quick`` finds nothing to do without reading inside any
namespace, it writes down those inputs beside the record: a digest of the
record file, a digest of the topology (and of netwrap's own code), the reads it
made and a digest of what they showed. The next ``apply --quick`` compares
first: the same record, the same topology and code, and the same reads showing
the same host make the same plan, so nothing is to be done, and no object is
rebuilt. Anything else, or a missing or damaged memo, takes the usual path.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

import attrs

from netwrap.engine.check import Checked
from netwrap.engine.state import StateFile, replace_file
from netwrap.host.observe import HostState, Reads, read
from netwrap.host.runner import Runner
from netwrap.topology.model import Topology


@attrs.frozen
class Verified:
    """The inputs of a check that found nothing to do."""

    record: str  # sha256 of the record file
    inputs: str  # sha256 of netwrap's code, the kind of check and the topology
    reads: Reads
    host: str  # sha256 of what the reads showed


def memo_path(store: StateFile) -> Path:
    """Beside the record, hidden (so that ``netwrap clean`` never takes it for one)."""
    return store.path.with_name(f".{store.path.name}.verified")


def fingerprint(state: HostState) -> str:
    """A digest of everything observed (every field of the state, in the order it was read)."""
    return hashlib.sha256(repr(state).encode()).hexdigest()


@functools.cache
def _code() -> str:
    """A digest of netwrap's own modules: another netwrap may plan otherwise."""
    digest = hashlib.sha256()
    for module in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(module.name.encode() + b"\0" + module.read_bytes())
    return digest.hexdigest()


def inputs(topo: Topology, check: str) -> str:
    return hashlib.sha256(f"{_code()}\n{check}\n{topo!r}".encode()).hexdigest()


def _record_digest(store: StateFile) -> str | None:
    try:
        return hashlib.sha256(store.path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def unchanged(topo: Topology, runner: Runner, store: StateFile, check: str) -> bool:
    """Whether the memo holds for this topology and record, and the host still shows what it showed then."""
    try:
        data = json.loads(memo_path(store).read_text(encoding="utf-8"))
        memo = Verified(str(data["record"]), str(data["inputs"]), Reads.from_json(data["reads"]), str(data["host"]))
    except (OSError, ValueError, TypeError, KeyError):
        return False
    if memo.inputs != inputs(topo, check) or memo.record != _record_digest(store):
        return False
    return fingerprint(read(runner, memo.reads)) == memo.host


def remember(topo: Topology, store: StateFile, check: str, checked: Checked) -> None:
    """Write the memo of a check that found nothing to do (only one that read nothing inside a namespace)."""
    record = _record_digest(store)
    if checked.host_reads is None or record is None:
        return
    memo = {
        "record": record,
        "inputs": inputs(topo, check),
        "reads": checked.host_reads.to_json(),
        "host": fingerprint(checked.state),
    }
    # a cache: not made durable; a lost memo only means the longer path
    replace_file(memo_path(store), json.dumps(memo), durable=False)


def forget(store: StateFile) -> None:
    memo_path(store).unlink(missing_ok=True)
