"""The package's shape: imports point down the layers, and a new kind needs no change to the engine."""

from __future__ import annotations

import ast
import functools
from pathlib import Path
from typing import ClassVar

import attrs
import pytest

from netwrap import MemoryStore, RecordingRunner, StateFile, build, plan, teardown
from netwrap.command import Command
from netwrap.engine import serial
from netwrap.host.observe import HostState, Need
from netwrap.kinds import KINDS, Assessment, Claim, Kind
from netwrap.kinds.base import Device, missing, present

PACKAGE = Path(__file__).resolve().parent.parent / "netwrap"
# From the bottom up; a module may import from its own layer and those below it, never from above.
LAYERS = {
    "netwrap.errors": 0, "netwrap.validate": 0, "netwrap.command": 0,
    "netwrap.host": 1,
    "netwrap.kinds": 2,
    "netwrap.engine": 3,
    "netwrap.topology": 4, "netwrap.tutorial": 4,
    "netwrap.cli": 5, "netwrap.cni": 5,
    "netwrap": 6,  # the package's own __init__ and __main__: the public face
}  # fmt: skip


def layer(module: str) -> int:
    while module not in LAYERS:
        module = module.rpartition(".")[0]
    return LAYERS[module]


def modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found.append((name if parts[-1] not in ("__init__", "__main__") or len(parts) > 2 else "netwrap", path))
    return found


@pytest.mark.parametrize(("name", "path"), modules(), ids=[name for name, _ in modules()])
def test_imports_point_down_the_layers(name: str, path: Path) -> None:
    mine = layer(name)
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("netwrap"):
            targets = [node.module]
            if node.module == "netwrap":  # `from netwrap import engine`: the subpackage is the target
                targets = [f"netwrap.{alias.name}" for alias in node.names if f"netwrap.{alias.name}" in LAYERS]
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names if alias.name.startswith("netwrap")]
        for target in targets:
            assert layer(target) <= mine, f"{name} (layer {mine}) imports {target} (layer {layer(target)})"


def test_every_kind_is_registered_and_named_uniquely() -> None:
    assert len({cls.__name__ for cls in KINDS}) == len(KINDS)
    assert set(serial.TYPES.values()) == set(KINDS)


@attrs.frozen
class Note(Kind):
    """A kind the engine has never heard of: a file-like note kept by a fake tool, for this test only."""

    restores: ClassVar[bool] = False
    text: str

    @functools.cached_property
    def key(self) -> str:
        return f"note:{self.text}"

    def create_commands(self) -> tuple[Command, ...]:
        return (Command("note", ("add", self.text)),)

    def delete_commands(self) -> tuple[Command, ...]:
        return (Command("note", ("del", self.text)),)

    def check_command(self) -> Command:
        return Command("note", ("list",), mutates=False)

    def needs(self) -> Need:
        return Need(table="filter")  # it reads what it needs through the usual observation

    def assess(self, state: HostState) -> Assessment:
        if ("NOTES", (self.text,)) in {(r.chain, r.words) for r in state.rules.get("filter", ())}:
            return present(f"note {self.text} is there")
        return missing(f"note {self.text} is not there")

    def devices(self) -> frozenset[Device]:
        return frozenset()

    def claims(self) -> tuple[Claim, ...]:
        return (Claim("chain", "notes", self.text),)


def test_a_new_kind_is_planned_built_recorded_and_removed_without_touching_the_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = RecordingRunner()
    assert [item.commands for item in plan([Note("hello")], HostState(rules={"filter": ()})).items] == [
        (Command("note", ("add", "hello")),)
    ]
    store = MemoryStore()
    build([Note("hello")], runner, store)
    assert [c.argv for c in runner.mutating] == [("note", "add", "hello")]
    teardown(runner, store)  # the host (as the fake runner shows it) has no note: nothing to delete
    assert store.load() is None
    # kept in a record on disk: the one line a new kind adds is its place in the registry
    monkeypatch.setitem(serial.TYPES, "Note", Note)
    record = StateFile(tmp_path / "notes.json")
    build([Note("kept")], RecordingRunner(), record)
    loaded = record.load()
    assert loaded is not None
    assert loaded.created == [Note("kept")]
