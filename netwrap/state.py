"""What netwrap created on a host, kept in a small JSON file.

The record is written *before* each change, so a run that dies in the middle
leaves a record that is true or says a little more than was done (``down``
checks each object before removing it). Sysctls keep the value they had before
netwrap first changed them.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

import attrs

from netwrap.errors import NetwrapError

DEFAULT_STATE_DIR = Path("/run/netwrap")


@attrs.define
class Record:
    """The keys of the objects a run created, and each changed sysctl's earlier value."""

    created: list[str] = attrs.field(factory=list)
    sysctls: dict[str, str] = attrs.field(factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"version": 1, "created": self.created, "sysctls": self.sysctls}

    @classmethod
    def from_json(cls, data: object) -> Record:
        if not isinstance(data, dict) or data.get("version") != 1:
            raise NetwrapError(f"state record has an unknown form: {data!r:.80}")
        created, sysctls = data.get("created"), data.get("sysctls")
        if not isinstance(created, list) or not all(isinstance(k, str) for k in created):
            raise NetwrapError("state record: 'created' is not a list of names")
        if not isinstance(sysctls, dict) or not all(isinstance(v, str) for v in sysctls.values()):
            raise NetwrapError("state record: 'sysctls' is not a table of values")
        return cls(list(created), dict(sysctls))


class Store(Protocol):
    """Where a :class:`Record` is kept."""

    def load(self) -> Record | None: ...

    def save(self, record: Record) -> None: ...

    def clear(self) -> None: ...

    def describe(self) -> str: ...


@attrs.define
class MemoryStore:
    """A record kept only in memory, for work that ends within one process."""

    record: Record | None = None

    def load(self) -> Record | None:
        return self.record

    def save(self, record: Record) -> None:
        self.record = record

    def clear(self) -> None:
        self.record = None

    def describe(self) -> str:
        return "memory"


@attrs.frozen
class StateFile:
    """One record on disk, replaced atomically on every save."""

    path: Path

    @classmethod
    def in_dir(cls, directory: Path | str, name: str) -> StateFile:
        return cls(Path(directory) / f"{name}.json")

    def load(self) -> Record | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            return Record.from_json(json.loads(text))
        except json.JSONDecodeError as exc:
            raise NetwrapError(f"state file {self.path} is not valid JSON: {exc}") from None

    def save(self, record: Record) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(record.to_json(), fh, indent=1)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)

    def describe(self) -> str:
        return str(self.path)
