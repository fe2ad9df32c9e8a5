"""The state directories in use on one host, so that two of them are still one host.

Records live in a state directory (``--state-dir``, by default
``/run/netwrap``). Claims, the hand-over of shared settings and the lock must
see every record of a host, whichever directory holds it, so each directory
that holds a record of this machine is listed here: one small file per
directory, named by a digest of its path and holding the path, under
``netwrap.dirs`` in the host's own ``/run`` (a tmpfs: the list goes with a
reboot, as the network it describes does). For a sandbox that is the
sandbox's private ``/run``, reached from outside as ``/proc/HOLDER/root/run``,
so that sandboxes never see each other's directories. A listed directory that
is gone or holds no record is passed over.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from netwrap.engine.state import StateFile, check_private, replace_file, state_files
from netwrap.errors import NetwrapError

FOLDER = "netwrap.dirs"


def folder(run_dir: Path) -> Path:
    """Where the list is kept, and the host-wide lock beside it."""
    return run_dir / FOLDER


def register(run_dir: Path, state_dir: Path) -> None:
    """List ``state_dir`` as one holding this host's records (once; cheap when it already is)."""
    resolved = state_dir.resolve()
    entry = folder(run_dir) / hashlib.sha256(str(resolved).encode()).hexdigest()[:16]
    if entry.is_file():
        return
    entry.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    replace_file(entry, str(resolved), durable=False)


def directories(run_dir: Path) -> list[Path]:
    """Every state directory listed on the host, as it was listed: those gone, and entries or directories that
    are not private (another user's, or writable by others: see :func:`check_private`) are passed over."""
    found = []
    try:
        check_private(folder(run_dir), "list of state directories")
        entries = sorted(p for p in folder(run_dir).iterdir() if p.is_file() and not p.name.startswith("."))
    except FileNotFoundError:
        return []
    for entry in entries:
        try:
            check_private(entry, "state directory entry")
            path = Path(entry.read_text(encoding="utf-8").strip())
            if path.is_absolute() and path.is_dir():
                check_private(path, "state directory")
                found.append(path)
        except (OSError, UnicodeDecodeError, NetwrapError):
            continue
    return found


def records_beside(store: StateFile, run_dir: Path | None) -> list[StateFile]:
    """The other records of ``store``'s machine: in its own directory, and in every other directory listed on
    the host (only for this machine's records, and only where the host's ``/run`` is known)."""
    found = store.siblings()
    if run_dir is None or store.machine:
        return found
    own = store.path.parent.resolve()
    for directory in directories(run_dir):
        if directory != own:
            found += [f for f in state_files(directory) if f.machine == ""]
    return found
