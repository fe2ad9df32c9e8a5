#!/usr/bin/env python3
"""Benchmark: N containers on one bridge, each with a published port, plus outbound NAT.

Everything runs inside throwaway sandboxes (run as root). For each N it times,
side by side in the same run:

- netwrap: ``apply`` (batched), a no-op re-``apply``, ``destroy``;
- a shell script with one command per step, as the tutorial does;
- a hand-batched shell script (``ip -batch`` per namespace, one
  ``iptables-restore``), the same commands netwrap batches;

and prints the median of several runs, the ratios against netwrap, and the
number of processes netwrap started. Figures only: nothing here asserts a time.

    sudo .venv/bin/python scripts/bench.py [--sizes 10 50 200] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import attrs

from netwrap import compose, state, topofile
from netwrap import topology_apply as apply_
from netwrap.batch import Step, batches
from netwrap.command import Command
from netwrap.objects import NetObject, Rule, Sysctl
from netwrap.runner import Result, Runner, SubprocessRunner
from netwrap.sandbox import Sandbox
from netwrap.state import StateFile
from netwrap.topology import Topology


@attrs.define
class Counting:
    inner: Runner
    processes: int = 0

    def run(self, command: Command) -> Result:
        self.processes += 1
        return self.inner.run(command)


def topology(n: int) -> Topology:
    text = '[networks.net]\nsubnet = "10.0.0.0/16"\n' + "".join(
        f'[containers.c{i}]\nnetworks = ["net"]\nports = ["{10000 + i}:80"]\n' for i in range(n)
    )
    return topofile.loads(text, f"bench-{n}", default_name="bench")


def teardown_commands(objects: tuple[NetObject, ...]) -> list[Command]:
    """What a careful script removes, in reverse: rules, ip_forward, veths, the bridge, the namespaces."""
    out: list[Command] = []
    for obj in reversed(objects):
        if isinstance(obj, Sysctl):
            if obj.name == "net.ipv4.ip_forward":
                out += obj.restore_commands("0")
        elif isinstance(obj, Rule) or type(obj).__name__ in ("Chain", "VethPair", "Bridge", "Namespace"):
            out += obj.delete_commands()
    return out


def script(commands: list[Command]) -> str:
    return "set -e\n" + "\n".join(c.shell() for c in commands) + "\n"


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def run_script(sandbox: Sandbox, text: str, folder: Path) -> None:
    path = folder / "script.sh"
    path.write_text(text)
    sandbox.runner.run(Command("bash", (str(path),)))


def netwrap_run(n: int) -> dict[str, float]:
    """Apply, re-apply and destroy in a fresh sandbox: seconds and processes of each.

    netwrap runs *inside* the sandbox (this script, started there once with
    ``--inside``), so that its commands start as they would on a host, without
    an ``nsenter`` in front of each; the shell scripts run the same way.
    """
    with Sandbox(timeout=300) as sandbox:
        result = sandbox.runner.run(
            Command(sys.executable, (str(Path(__file__).resolve()), "--inside", str(n)), mutates=False)
        )
    figures: dict[str, float] = json.loads(result.stdout)
    return figures


def inside(n: int) -> dict[str, float]:
    """The netwrap figures, measured from within a sandbox (refuses to run anywhere else)."""
    found = subprocess.run(
        ["findmnt", "-n", "-o", "SOURCE", "/run"], capture_output=True, text=True, check=False
    ).stdout.split()
    if found != ["netwrap-sandbox"]:
        raise SystemExit("--inside runs only inside a netwrap sandbox (its /run is not the sandbox's tmpfs)")
    topo = topology(n)
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="netwrap-bench-") as folder:
        store = StateFile.in_dir(folder, "bench")
        # --quick twice: the first checks the host side and remembers; the second finds the memo holding
        for name in ("setup", "no-op re-apply", "quick no-op re-apply", "quick again", "teardown"):
            state._LOADED.clear()  # as a new netwrap process would: the record is read from disk
            counting = Counting(SubprocessRunner(timeout=300))
            start = time.perf_counter()
            if name == "teardown":
                apply_.destroy(counting, store)
            else:
                apply_.apply(topo, counting, store, check="host" if name.startswith("quick") else "all")
            figures[f"netwrap {name}"] = time.perf_counter() - start
            figures[f"netwrap {name} processes"] = counting.processes
    return figures


def script_run(up: list[Command], down: list[Command]) -> tuple[float, float]:
    """A shell script's setup and teardown in a fresh sandbox, in seconds."""
    with tempfile.TemporaryDirectory(prefix="netwrap-bench-") as folder, Sandbox(timeout=300) as sandbox:
        setup = timed(lambda: run_script(sandbox, script(up), Path(folder)))
        teardown = timed(lambda: run_script(sandbox, script(down), Path(folder)))
    return setup, teardown


def measure(n: int, runs: int) -> dict[str, list[float]]:
    topo = topology(n)
    objects = compose.objects(topo, compose.allocate(topo))
    creates = [c for o in objects for c in o.create_commands()]
    removes = teardown_commands(objects)
    batched_up = [b.command for b in batches([Step(1, c) for c in creates])]
    batched_down = [b.command for b in batches([Step(1, c) for c in removes], removing=True)]
    figures: dict[str, list[float]] = {}

    def add(name: str, value: float) -> None:
        figures.setdefault(name, []).append(value)

    for _ in range(runs):
        for name, value in netwrap_run(n).items():
            add(name, value)
        for name, up, down in (
            ("one command per step", creates, removes),
            ("hand-batched", batched_up, batched_down),
        ):
            setup, teardown = script_run(up, down)
            add(f"{name} setup", setup)
            add(f"{name} teardown", teardown)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 50, 200])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--inside", type=int, metavar="N", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside is not None:
        print(json.dumps(inside(args.inside)))
        return 0
    print(f"{'N':>4}  {'way':<22} {'setup':>8} {'teardown':>9} {'no-op':>8}  {'vs netwrap (setup/teardown)':<28}")
    for n in args.sizes:
        figures = measure(n, args.runs)
        med = {name: statistics.median(values) for name, values in figures.items()}
        base_up, base_down = med["netwrap setup"], med["netwrap teardown"]
        noop = med["netwrap no-op re-apply"]
        print(
            f"{n:>4}  {'netwrap (batched)':<22} {base_up:>7.3f}s {base_down:>8.3f}s {noop:>7.3f}s"
            f"  processes: setup {med['netwrap setup processes']:.0f}, "
            f"no-op {med['netwrap no-op re-apply processes']:.0f}, teardown {med['netwrap teardown processes']:.0f}"
        )
        for name in ("one command per step", "hand-batched"):
            up, down = med[f"{name} setup"], med[f"{name} teardown"]
            print(
                f"{n:>4}  {name:<22} {up:>7.3f}s {down:>8.3f}s {'-':>8}  x{up / base_up:.2f} / x{down / base_down:.2f}"
            )
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
