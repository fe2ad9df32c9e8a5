#!/usr/bin/env python3
"""Benchmark: N containers on one bridge, each with a published port, plus outbound NAT.

Everything runs inside throwaway sandboxes (run as root). For each N it times,
side by side in the same run:

- netwrap: ``apply`` (batched); a no-op re-``apply`` that reads every
  namespace; ``apply --quick`` (host side only) once, and again (when its memo
  holds); ``destroy``;
- a shell script with one command per step, as the tutorial does;
- a hand-batched shell script (``ip -batch`` per namespace, one
  ``iptables-restore``), the same commands netwrap batches, whose teardown
  deletes the veths and the bridge as one link group (``ip link del group
  G``), as netwrap's does;
- the floor: the same network built with raw netlink from one process (see
  ``scripts/netlink_floor.py``; one network only);
- the reference CNI plugins from Debian's ``containernetworking-plugins``
  (``bridge`` with ``host-local``, then ``portmap``), one container at a time
  as a runtime calls them: for each, ``ip netns add`` then the ADD chain;
  teardown, the DEL chain then ``ip netns del`` (``--no-cni`` leaves them out);

and prints the start-up (the API's import, the command line's, and the time
from the exec of ``netwrap plan`` to its first process), then the median of
several runs with its range, the ratios against
netwrap, the cost per container, the number of processes netwrap started
and the peak memory of its process. ``--networks K`` spreads the containers
over K networks (K bridges). Figures only: nothing here asserts a time.

    sudo .venv/bin/python scripts/bench.py [--sizes 10 50 200] [--runs 3] [--networks 1] [--no-cni]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import attrs

from netwrap import topology_apply as apply_
from netwrap.command import Command
from netwrap.engine.batch import Step, batches
from netwrap.engine.state import DEFAULT_STATE_DIR, StateFile
from netwrap.host.runner import Result, Runner, SubprocessRunner
from netwrap.host.sandbox import Sandbox, top_mount
from netwrap.kinds import Address, Bridge, NetObject, Rule, Sysctl
from netwrap.topology import compose
from netwrap.topology import files as topofile
from netwrap.topology.model import Topology


@attrs.define
class Counting:
    inner: Runner
    processes: int = 0

    def run(self, command: Command) -> Result:
        self.processes += 1
        return self.inner.run(command)


def topology(n: int, networks: int = 1) -> Topology:
    """``n`` containers, each publishing a port, spread evenly over ``networks`` networks."""
    nets = "".join(f'[networks.net{k}]\nsubnet = "10.{k}.0.0/16"\n' for k in range(networks))
    text = nets + "".join(
        f'[containers.c{i}]\nnetworks = ["net{i % networks}"]\nports = ["{10000 + i}:80"]\n' for i in range(n)
    )
    return topofile.loads(text, f"bench-{n}", default_name="bench")


def teardown_commands(objects: tuple[NetObject, ...]) -> list[Command]:
    """What a careful script removes, in reverse: rules, ip_forward, veths, the bridge, the namespaces."""
    out: list[Command] = []
    for obj in reversed(objects):
        if isinstance(obj, Sysctl):
            if obj.name == "net.ipv4.ip_forward":
                out += obj.restore_commands("0")
        elif isinstance(obj, Rule) or type(obj).__name__ in ("Chain", "OwnedChain", "VethPair", "Bridge", "Namespace"):
            out += obj.delete_commands()
    return out


def link_groups(objects: tuple[NetObject, ...]) -> list[int]:
    """The link groups the objects' devices are made in."""
    return sorted({g for o in objects if isinstance(g := getattr(o, "group", None), int)})


def grouped_teardown(objects: tuple[NetObject, ...], removes: list[Command]) -> list[Command]:
    """The teardown with every veth and bridge of a link group deleted in one ``ip link del group G`` (what
    netwrap's own teardown does), the rest as it is."""
    groups = link_groups(objects)
    in_group = {c for o in objects if getattr(o, "group", None) is not None for c in o.delete_commands()}
    kept = [c for c in removes if c not in in_group]
    first_ip = next((i for i, c in enumerate(kept) if c.tool == "ip"), len(kept))
    return [*kept[:first_ip], *(Command("ip", ("link", "del", "group", str(g))) for g in groups), *kept[first_ip:]]


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


STEPS = ("setup", "no-op re-apply", "quick no-op re-apply", "quick again", "teardown")
SETTLE = 1.0  # seconds between steps: the kernel finishes what a setup set going (IPv6 address setup, ...)


def netwrap_run(n: int, networks: int = 1) -> dict[str, float]:
    """Apply, re-apply and destroy in a fresh sandbox: seconds and processes of each.

    Each step is a new Python process started *inside* the sandbox (this
    script, with ``--inside``), as a netwrap command would be, so that its
    commands start without an ``nsenter`` in front of each and nothing is
    cached from the step before; the time is that of the call, after the
    imports (measured apart, as ``import``). ``--quick`` runs twice: the first
    checks the host side and remembers; the second finds the memo holding.
    """
    figures: dict[str, float] = {}
    with Sandbox(timeout=300) as sandbox:
        for step in STEPS:
            time.sleep(SETTLE)
            # the record where netwrap keeps it by default: /run/netwrap, here the sandbox's own tmpfs
            argv = (str(Path(__file__).resolve()), "--inside", f"{n}/{networks}", step, str(DEFAULT_STATE_DIR))
            result = sandbox.runner.run(Command(sys.executable, argv, mutates=False))
            figures.update(json.loads(result.stdout))
    return figures


def inside(n: int, step: str, folder: str, networks: int = 1) -> dict[str, float]:
    """One step's figures, measured from within a sandbox (refuses to run anywhere else)."""
    top = top_mount(Path("/proc/self/mountinfo").read_text(), "/run")
    if top is None or top[0] != "netwrap-sandbox":
        raise SystemExit("--inside runs only inside a netwrap sandbox (its /run is not the sandbox's tmpfs)")
    topo = topology(n, networks)
    store = StateFile.in_dir(folder, "bench")
    counting = Counting(SubprocessRunner(timeout=300))
    start = time.perf_counter()
    if step == "teardown":
        apply_.destroy(counting, store)
    else:
        apply_.apply(topo, counting, store, check="host" if step.startswith("quick") else "all")
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux: the whole process, imports too
    return {f"netwrap {step}": seconds, f"netwrap {step} processes": counting.processes, f"netwrap {step} MiB": peak}


FLOOR_STEPS = ("setup", "no-op", "teardown")


def floor_plan(objects: tuple[NetObject, ...], up: list[Command], down: list[Command]) -> dict[str, object]:
    """What the floor needs to build the same network: the bridge, the link group, the subnet, and the
    hand-batched script's rules and settings."""
    bridge = next(o for o in objects if isinstance(o, Bridge))
    group = link_groups(objects)[0]

    def restore(commands: list[Command]) -> str:
        return "".join(c.input or "" for c in commands if c.tool == "iptables-restore")

    def settings(commands: list[Command]) -> list[str]:
        return [a for c in commands if c.tool == "sysctl" and c.netns is None for a in c.args if "=" in a]

    address = next(o for o in objects if isinstance(o, Address) and o.device == bridge.name)
    subnet = address.address.network
    return {"bridge": bridge.name, "group": group, "subnet": str(subnet), "up": restore(up),
            "down": restore(down), "up_sysctls": settings(up), "down_sysctls": settings(down)}  # fmt: skip


def floor_run(n: int, plan: dict[str, object]) -> dict[str, float]:
    """The raw-netlink floor's setup, no-op read and teardown in a fresh sandbox, each a process of its own
    timed from within (after its imports), as netwrap's steps are."""
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="netwrap-bench-") as folder, Sandbox(timeout=300) as sandbox:
        path = Path(folder) / "floor.json"
        path.write_text(json.dumps(plan))
        for step in FLOOR_STEPS:
            time.sleep(SETTLE)
            argv = (str(Path(__file__).resolve()), "--floor", str(n), step, str(path))
            result = sandbox.runner.run(Command(sys.executable, argv, mutates=False))
            figures[f"raw netlink {step}"] = float(result.stdout)
    return figures


def floor_inside(n: int, step: str, path: str) -> float:
    """One step of the floor, measured from within a sandbox (refuses to run anywhere else)."""
    top = top_mount(Path("/proc/self/mountinfo").read_text(), "/run")
    if top is None or top[0] != "netwrap-sandbox":
        raise SystemExit("--floor runs only inside a netwrap sandbox (its /run is not the sandbox's tmpfs)")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import netlink_floor  # noqa: PLC0415  (a measuring instrument beside this script, not part of netwrap)

    plan = json.loads(Path(path).read_text())
    start = time.perf_counter()
    if step == "setup":
        netlink_floor.setup(n, plan)
    elif step == "no-op":
        netlink_floor.noop(n)
    else:
        netlink_floor.teardown(n, plan)
    return time.perf_counter() - start


def import_time(code: str) -> float:
    """Seconds a new Python process takes to run ``code``, its imports (median of 5)."""
    timed_code = f"import time; t = time.perf_counter(); {code}; print(time.perf_counter() - t)"
    runs = [float(subprocess.run([sys.executable, "-c", timed_code], capture_output=True, text=True, check=True).stdout)
            for _ in range(5)]  # fmt: skip
    return statistics.median(runs)


def interpreter() -> float:
    """Seconds a ``python -c pass`` process takes, start to exit (median of 5): what no import can save."""
    argv = [sys.executable, "-c", "pass"]
    return statistics.median(timed(lambda: subprocess.run(argv, check=True)) for _ in range(5))


API = "import netwrap; netwrap.VethPair, netwrap.build, netwrap.load_topology, netwrap.topology_apply"


def first_process() -> float | None:
    """Seconds from the exec of ``netwrap plan -f FILE`` (one container) to the exec of its first process, in a
    sandbox, as ``strace -f`` sees them (execve only, filtered in the kernel); median of 5, None without strace."""
    console = Path(sys.executable).parent / "netwrap"
    if shutil.which("strace") is None or not console.exists():
        return None
    runs = []
    with tempfile.TemporaryDirectory(prefix="netwrap-bench-") as folder, Sandbox(timeout=300) as sandbox:
        topo, trace = Path(folder) / "one.toml", Path(folder) / "exec.trace"
        topo.write_text('[networks.n]\nsubnet = "10.9.0.0/24"\n[containers.c]\nnetworks = ["n"]\n')
        for _ in range(5):
            argv = ("-f", "--seccomp-bpf", "-e", "trace=execve", "-e", "signal=none", "-ttt", "-o", str(trace),
                    str(console), "plan", "-f", str(topo))  # fmt: skip
            sandbox.runner.run(Command("strace", argv, mutates=False, ok_codes=frozenset(range(256))))
            stamps = [float(line.split()[1]) for line in trace.read_text().splitlines() if "execve(" in line]
            runs.append(stamps[1] - stamps[0])
    return statistics.median(runs)


def script_run(up: list[Command], down: list[Command]) -> tuple[float, float]:
    """A shell script's setup and teardown in a fresh sandbox, in seconds."""
    with tempfile.TemporaryDirectory(prefix="netwrap-bench-") as folder, Sandbox(timeout=300) as sandbox:
        setup = timed(lambda: run_script(sandbox, script(up), Path(folder)))
        teardown = timed(lambda: run_script(sandbox, script(down), Path(folder)))
    return setup, teardown


def cni_run(n: int) -> tuple[float, float]:
    """The reference CNI chain, one container after another, in a fresh sandbox: setup and teardown seconds."""
    with Sandbox(timeout=3600) as sandbox:
        argv = (str(Path(__file__).resolve().with_name("bench_cni.py")), "--totals", str(n))
        env = ("env", f"PATH={os.environ.get('PATH', '/usr/bin:/bin')}")
        result = sandbox.runner.run(Command(env[0], (*env[1:], sys.executable, *argv), mutates=False))
        setup, teardown = json.loads(result.stdout)
        return float(setup), float(teardown)


def measure(n: int, runs: int, networks: int = 1, cni: bool = True) -> dict[str, list[float]]:
    topo = topology(n, networks)
    objects = compose.objects(topo, compose.allocate(topo))
    creates = [c for o in objects for c in o.create_commands()]
    removes = teardown_commands(objects)
    batched_up = [b.command for b in batches([Step(1, c) for c in creates])]
    batched_down = [b.command for b in batches([Step(1, c) for c in grouped_teardown(objects, removes)], removing=True)]
    figures: dict[str, list[float]] = {}

    def add(name: str, value: float) -> None:
        figures.setdefault(name, []).append(value)

    for _ in range(runs):
        for name, value in netwrap_run(n, networks).items():
            add(name, value)
        if networks == 1:
            for name, value in floor_run(n, floor_plan(objects, batched_up, batched_down)).items():
                add(name, value)
        if cni and networks == 1:
            setup, teardown = cni_run(n)
            add("reference CNI plugins setup", setup)
            add("reference CNI plugins teardown", teardown)
        for name, up, down in (
            ("one command per step", creates, removes),
            ("hand-batched", batched_up, batched_down),
        ):
            setup, teardown = script_run(up, down)
            add(f"{name} setup", setup)
            add(f"{name} teardown", teardown)
    return figures


def _span(values: list[float]) -> str:
    return f"{min(values):.3f}-{max(values):.3f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 50, 200])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--networks", type=int, default=1, help="spread the containers over this many networks")
    parser.add_argument("--no-cni", dest="cni", action="store_false", help="leave out the reference CNI plugins")
    parser.add_argument("--inside", nargs=3, metavar=("N/K", "STEP", "DIR"), help=argparse.SUPPRESS)
    parser.add_argument("--floor", nargs=3, metavar=("N", "STEP", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor is not None:
        print(floor_inside(int(args.floor[0]), args.floor[1], args.floor[2]))
        return 0
    if args.inside is not None:
        n, _, k = args.inside[0].partition("/")
        print(json.dumps(inside(int(n), args.inside[1], args.inside[2], int(k or 1))))
        return 0
    first = first_process()
    print(
        f"start-up (not in the figures below): importing the API {import_time(API):.3f}s, the command line "
        f"{import_time('import netwrap.cli.main'):.3f}s; the interpreter alone {interpreter():.3f}s; "
        f"netwrap plan from exec to its first process {'-' if first is None else f'{first:.3f}s'}"
    )
    print(f"{args.networks} network(s); median of {args.runs} run(s), the range of the runs below it")
    print(f"{'N':>5}  {'way':<28} {'setup':>7} {'teardown':>8} {'no-op':>7} {'quick':>7} {'again':>7}  vs netwrap")
    per_container: dict[int, dict[str, float]] = {}
    for n in args.sizes:
        figures = measure(n, args.runs, args.networks, args.cni)
        med = {name: statistics.median(values) for name, values in figures.items()}
        base_up, base_down = med["netwrap setup"], med["netwrap teardown"]
        checks = " ".join(f"{med[f'netwrap {step}']:>6.3f}s" for step in STEPS[1:4])
        print(f"{n:>5}  {'netwrap (batched)':<28} {base_up:>6.3f}s {base_down:>7.3f}s {checks}")
        spans = " ".join(_span(figures[f"netwrap {step}"]) for step in STEPS)
        print(f"{'':>5}  {'':<28} ranges (setup, no-op, quick, again, teardown): {spans}")
        counts = ", ".join(f"{step} {med[f'netwrap {step} processes']:.0f}" for step in STEPS)
        print(f"{'':>5}  {'':<28} processes: {counts}")
        peaks = ", ".join(f"{step} {med[f'netwrap {step} MiB']:.0f}" for step in STEPS)
        print(f"{'':>5}  {'':<28} peak memory of netwrap's process (MiB): {peaks}")
        per_container[n] = {step: med[f"netwrap {step}"] / n for step in STEPS}
        if "raw netlink setup" in med:
            up, noop, down = (med[f"raw netlink {step}"] for step in FLOOR_STEPS)
            ratios = f"x{up / base_up:.2f} / x{down / base_down:.2f}"
            row = f"{up:>6.3f}s {down:>7.3f}s {noop:>6.3f}s {'-':>7} {'-':>7}"
            print(f"{n:>5}  {'raw netlink (the floor)':<28} {row}  {ratios}")
            spans = " ".join(_span(figures[f"raw netlink {step}"]) for step in FLOOR_STEPS)
            print(f"{'':>5}  {'':<28} ranges (setup, no-op, teardown): {spans}")
            print(
                f"{'':>5}  {'':<28} netwrap against the floor: setup x{base_up / up:.2f}, "
                f"teardown x{base_down / down:.2f}, no-op x{med['netwrap no-op re-apply'] / noop:.2f}"
            )
        others = ["one command per step", "hand-batched"]
        others += ["reference CNI plugins"] if "reference CNI plugins setup" in med else []
        for name in others:
            up, down = med[f"{name} setup"], med[f"{name} teardown"]
            ratios = f"x{up / base_up:.2f} / x{down / base_down:.2f}"
            print(f"{n:>5}  {name:<28} {up:>6.3f}s {down:>7.3f}s {'-':>7} {'-':>7} {'-':>7}  {ratios}")
            print(f"{'':>5}  {'':<28} ranges: {_span(figures[f'{name} setup'])} {_span(figures[f'{name} teardown'])}")
        sys.stdout.flush()
    if len(per_container) > 1:
        small, large = min(per_container), max(per_container)
        growth = ", ".join(f"{step} x{per_container[large][step] / per_container[small][step]:.2f}" for step in STEPS)
        print(f"cost per container at {large} against {small}: {growth}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
