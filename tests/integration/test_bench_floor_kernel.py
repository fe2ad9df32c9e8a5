"""The benchmark's floor (scripts/netlink_floor.py) builds the network netwrap builds, so the ratio is fair."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from netwrap import Sandbox
from netwrap import topology_apply as apply_
from netwrap.command import Command
from netwrap.engine.batch import Step, batches
from netwrap.engine.state import StateFile
from netwrap.host import snapshot
from netwrap.topology import compose

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
sys.path.insert(0, str(SCRIPTS))
import bench  # noqa: E402

pytestmark = pytest.mark.integration


def _floor(sandbox: Sandbox, n: int, step: str, plan: Path) -> None:
    argv = (str(SCRIPTS / "bench.py"), "--floor", str(n), step, str(plan))
    sandbox.runner.run(Command(sys.executable, argv, mutates=False))


def test_the_floor_builds_what_netwrap_builds_and_removes_it_all(tmp_path: Path) -> None:
    n = 4
    topo = bench.topology(n)
    objects = compose.objects(topo, compose.allocate(topo))
    creates = [c for o in objects for c in o.create_commands()]
    up = [b.command for b in batches([Step(1, c) for c in creates])]
    removes = bench.grouped_teardown(objects, bench.teardown_commands(objects))
    down = [b.command for b in batches([Step(1, c) for c in removes], removing=True)]
    plan = tmp_path / "floor.json"
    plan.write_text(json.dumps(bench.floor_plan(objects, up, down)))
    with Sandbox() as sandbox:
        apply_.apply(topo, sandbox.runner, StateFile.in_dir(tmp_path / "state", "bench"))
        by_netwrap = snapshot.take(sandbox.runner)
    with Sandbox() as sandbox:
        empty = snapshot.take(sandbox.runner)
        _floor(sandbox, n, "setup", plan)
        by_floor = snapshot.take(sandbox.runner)
        _floor(sandbox, n, "no-op", plan)
        assert snapshot.take(sandbox.runner) == by_floor  # reading changes nothing
        _floor(sandbox, n, "teardown", plan)
        after = snapshot.take(sandbox.runner)
    assert by_floor.explain(by_netwrap) == []
    assert by_floor.namespaces == tuple(f"c{i}" for i in range(n))
    assert after.explain(empty) == []
