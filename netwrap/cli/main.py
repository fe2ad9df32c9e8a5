"""The ``netwrap`` command line.

::

    netwrap tutorial                 safe demo: up, verify, down in a throwaway sandbox
    netwrap tutorial script [--down] print the tutorial's commands as a bash script
    netwrap tutorial plan            what `up` would run here (exit 0: nothing, 2: something)
    netwrap tutorial up              build the tutorial on this host, idempotently
    netwrap tutorial verify          check the four scenarios; exit 0 only if all pass
    netwrap tutorial down            remove what `up` created
    netwrap clean [--dry-run]        remove what crashed runs left behind
    netwrap doctor                   what this host has and lacks, with the fix for each
    netwrap apply -f FILE            make this host match a topology file
    netwrap plan -f FILE             what apply would run (exit 0: nothing, 2: something)
    netwrap destroy -f FILE          remove what apply created
    netwrap status -f FILE [--json] [--check]  each container and its state (--check: exit 3 unless all up)
    netwrap graph -f FILE [--format mermaid|dot]   a diagram of the topology
    netwrap exec -f FILE CONTAINER -- CMD...      run a command in a container's namespace
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import shutil
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn, TextIO

import attrs

from netwrap import tutorial
from netwrap.cli import doctor
from netwrap.command import Command
from netwrap.engine import registry
from netwrap.engine.batch import Mode
from netwrap.engine.build import Outcome, Progress, build, plan_for, teardown
from netwrap.engine.clean import clean, survey
from netwrap.engine.lock import DEFAULT_TIMEOUT, StateLock
from netwrap.engine.plan import PlanItem
from netwrap.engine.state import DEFAULT_STATE_DIR, StateFile, Store, state_files
from netwrap.errors import NetwrapError, ToolNotFoundError
from netwrap.host import snapshot
from netwrap.host.runner import DryRunner, EchoRunner, Runner, SubprocessRunner, find_tool, host_run, require_tools
from netwrap.host.sandbox import Sandbox
from netwrap.host.ssh import SshRunner, parse_destination
from netwrap.kinds import BridgeTool, NetObject
from netwrap.topology import apply as apply_
from netwrap.topology import clusterfile, graph, multihost
from netwrap.topology import files as topofile
from netwrap.topology.model import Topology
from netwrap.tutorial.verify import render_table, verify

EXIT_OK, EXIT_ERROR, EXIT_CHANGES, EXIT_DEGRADED = 0, 1, 2, 3
EXIT_USAGE = 64  # a command line netwrap cannot read (sysexits' EX_USAGE): never 2, which is plan's "changes"


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors exiting EXIT_USAGE instead of 2 (its sub-commands' parsers are of this class)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _seconds(text: str) -> float:
    """A number of seconds: finite, and not negative."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (finite, 0 or more)")
    return value


VERIFY_STATE_NAME = "tutorial-verify"


def _version() -> str:
    # imported here: importlib.metadata costs a tenth of the command line's start, and only --version needs it
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        return version("netwrap")
    except PackageNotFoundError:
        return "unknown"


class _Version(argparse.Action):
    """``--version``, looked up only when asked for."""

    def __call__(self, parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        print(f"netwrap {_version()}")
        parser.exit()


def _common() -> _Parser:
    common = _Parser(add_help=False)
    common.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
        help="also print the read-only checks (as '# COMMAND') and each object's standing",
    )  # fmt: skip
    style = common.add_mutually_exclusive_group()
    style.add_argument(
        "--batch", dest="mode", action="store_const", const="batch", default=argparse.SUPPRESS,
        help="regroup the commands into a few processes (ip -batch, iptables-restore); the default for "
        "docker-style topologies",
    )  # fmt: skip
    style.add_argument(
        "--verbatim", dest="mode", action="store_const", const="verbatim", default=argparse.SUPPRESS,
        help="run each command on its own, as written; the default for the tutorial and document-style files",
    )  # fmt: skip
    common.add_argument(
        "--ssh", metavar="[USER@]HOST", default=argparse.SUPPRESS,
        help="work on another machine through OpenSSH (records stay here, in --state-dir)",
    )  # fmt: skip
    common.add_argument(
        "--ssh-option", metavar="OPTION", action="append", default=argparse.SUPPRESS,
        help="an option for ssh, as one word: --ssh-option=-p2222 --ssh-option=-i/path/key (repeatable)",
    )  # fmt: skip
    common.add_argument(
        "--ssh-command", metavar="COMMAND", default=argparse.SUPPRESS,
        help="the ssh client to start, split like a shell would (default: ssh), e.g. 'ssh -F lab.conf'",
    )  # fmt: skip
    common.add_argument(
        "--ssh-sudo", action="store_true", default=argparse.SUPPRESS,
        help="run the commands with sudo -n on the far side (a login that is not root)",
    )  # fmt: skip
    common.add_argument(
        "--lock-timeout", type=_seconds, default=argparse.SUPPRESS, metavar="SECONDS",
        help="how long to wait for another netwrap working on the same state directory (default: 120)",
    )  # fmt: skip
    common.add_argument(
        "--state-dir", type=Path, default=argparse.SUPPRESS,
        help=f"where the record of what netwrap created is kept (default: $NETWRAP_STATE_DIR or {DEFAULT_STATE_DIR})",
    )  # fmt: skip
    return common


def _parser() -> _Parser:
    common = _common()
    bridge = _Parser(add_help=False)
    bridge.add_argument(
        "--bridge-tool", choices=("auto", "brctl", "ip"), default=argparse.SUPPRESS,
        help="make the bridge with brctl (as the document does) or iproute2; auto: brctl when installed",
    )  # fmt: skip
    both = [common, bridge]

    parser = _Parser(
        prog="netwrap", description="Build Linux container networks the way Docker does, with ip, brctl and iptables."
    )
    parser.add_argument("--version", action=_Version, nargs=0, help="show netwrap's version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    tut = commands.add_parser(
        "tutorial",
        parents=both,
        help="the document's network: a safe demo, or script/plan/up/verify/down",
        description="Without an action: a safe demo that runs up, verify and down inside a throwaway "
        "sandbox (own network namespace, private /run/netns); this host's network is never touched.",
    )
    steps = tut.add_subparsers(dest="action", metavar="ACTION")
    script = steps.add_parser("script", parents=both, help="print the commands as a bash script; change nothing")
    script.add_argument("--down", action="store_true", help="print the teardown script instead")
    steps.add_parser("plan", parents=both, help="print what `up` would run here; exit 0 if nothing, 2 if something")
    steps.add_parser("up", parents=both, help="build the tutorial's network on this host (idempotent)")
    steps.add_parser("verify", parents=both, help="check the four scenarios; exit 0 only if all pass")
    steps.add_parser("down", parents=both, help="remove what `up` created and restore ip_forward")
    cleaner = commands.add_parser(
        "clean",
        parents=[common],
        help="remove what crashed netwrap runs left behind (only what they created)",
        description="Reads the records in the state directory. A run that ended before finishing had its "
        "objects removed like `down` would; finished builds and running ones are listed and left alone.",
    )
    cleaner.add_argument("--dry-run", action="store_true", help="list what would be removed; change nothing")
    commands.add_parser("doctor", help="what this host has and lacks for netwrap, with the fix for each (reads only)")
    topo = _Parser(add_help=False)
    topo.add_argument("-f", "--file", type=Path, required=True, help="the topology file (TOML)")
    quick = _Parser(add_help=False)
    quick.add_argument(
        "--quick", dest="check", action="store_const", const="host", default="all",
        help="check the host side only (devices, namespaces, rules, settings); read inside a namespace only "
        "when its host side is not as the last apply left it",
    )  # fmt: skip
    for name, text in (
        ("apply", "make this host match the topology: create what is missing, remove what it no longer has"),
        ("plan", "print the commands apply would run; exit 0 if none, 2 if some, 1 on conflicts"),
        ("destroy", "remove what apply created (objects another topology still uses are handed over)"),
    ):
        parents = [common, topo] if name == "destroy" else [common, topo, quick]
        commands.add_parser(name, parents=parents, help=text, description=text)
    stat = commands.add_parser("status", parents=[common, topo, quick], help="each container, its addresses and state")
    stat.add_argument("--json", action="store_true", help="print JSON for scripts")
    stat.add_argument(
        "--check", dest="require_up", action="store_true", help="exit 3 unless every container's whole path is up"
    )
    drawing = commands.add_parser("graph", parents=[topo], help="draw the topology (Mermaid or Graphviz DOT)")
    drawing.add_argument("--format", choices=("mermaid", "dot"), default="mermaid")
    drawing.add_argument("--state-dir", type=Path, default=argparse.SUPPRESS, help="to show the addresses applied")
    execute = commands.add_parser(
        "exec", parents=[topo], help="run a command in a container's network namespace (needs root)"
    )
    execute.add_argument("container")
    execute.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- CMD ...")
    execute.add_argument("--state-dir", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def _bridge_tool(requested: str) -> BridgeTool:
    if requested == "brctl":
        return "brctl"
    if requested == "ip":
        return "ip"
    return "brctl" if find_tool("brctl") is not None else "ip"


def _commands_of(objects: Sequence[NetObject], *, with_probes: bool) -> list[Command]:
    """Every command that work on ``objects`` may start (to find a missing tool before the first change)."""
    commands = [c for obj in objects for c in (obj.check_command(), *obj.create_commands())]
    commands += [c for obj in objects if not obj.restores for c in obj.delete_commands()]  # a setting is given back
    if any(c.tool == "iptables" for c in commands):
        commands.append(Command("iptables-restore", ("--version",), mutates=False))
        commands.append(Command("iptables-save", ("--version",), mutates=False))
    if with_probes:
        commands.append(Command("ping", ("-V",), mutates=False))
    return commands


def _state_dir(args: argparse.Namespace) -> Path:
    given: Path | None = getattr(args, "state_dir", None)
    if given is not None:
        return given
    return Path(os.environ.get("NETWRAP_STATE_DIR") or DEFAULT_STATE_DIR)


def _require_root(what: str) -> None:
    if os.geteuid() != 0:
        raise NetwrapError(
            f"`netwrap {what}` reads or changes the network and must run as root (or with CAP_NET_ADMIN); "
            f"try `sudo netwrap {what}`, or `netwrap tutorial script` to only print the commands"
        )


def _report(outcome: Outcome, what: str, err: TextIO) -> None:
    for note in outcome.notes:
        print(f"netwrap: {note}", file=err)
    if outcome.changed:
        print(f"netwrap: {what}: {len(outcome.changed)} change(s)", file=err)
    else:
        print(f"netwrap: {what}: nothing to do", file=err)


def _plan(runner: Runner, tool: BridgeTool, verbose: bool, out: TextIO, err: TextIO) -> int:
    current = plan_for(tutorial.objects(tool), runner)
    if verbose:
        for line in current.describe():
            print(f"# {line}", file=out)
    for command in current.commands:
        print(command.shell(), file=out)
    if current.conflicts:
        for item in current.conflicts:
            print(f"netwrap: conflict: {item.assessment.reason}", file=err)
        return EXIT_ERROR
    if current.is_noop:
        print("netwrap: plan: nothing to do; the host has every object", file=err)
        return EXIT_OK
    print(f"netwrap: plan: {len(current.changes)} change(s), {len(current.commands)} command(s)", file=err)
    return EXIT_CHANGES


def _verify(runner: Runner, store: Store, out: TextIO, python: str | None = None) -> int:
    results = verify(runner, store, python)
    print(render_table(results), file=out)
    return EXIT_OK if all(r.passed for r in results) else EXIT_ERROR


def _demo(verbose: bool, tool: BridgeTool, out: TextIO, err: TextIO) -> int:
    if os.geteuid() != 0:
        raise NetwrapError("the demo makes a throwaway network namespace and needs root: run `sudo netwrap tutorial`")

    def section(title: str) -> None:
        print(f"\n=== {title}", file=out, flush=True)

    print(
        "netwrap tutorial: the document's network, built, checked and removed inside a throwaway sandbox\n"
        "(its own network namespace and a private /run/netns). This host's network is not touched.",
        file=out,
    )
    with Sandbox() as sandbox, tempfile.TemporaryDirectory(prefix="netwrap-demo-") as state_dir:
        store = StateFile.in_dir(state_dir, tutorial.STATE_NAME)
        runner = EchoRunner(sandbox.runner, lambda line: print(line, file=out, flush=True), verbose)
        before = snapshot.take(sandbox.runner)
        section("netwrap tutorial up")
        _report(build(tutorial.objects(tool), runner, store), "up", err)
        section("netwrap tutorial up (again: finds everything in place, runs nothing)")
        _report(build(tutorial.objects(tool), runner, store), "up", err)
        section("netwrap tutorial verify")
        code = _verify(runner, StateFile.in_dir(state_dir, VERIFY_STATE_NAME), out)
        section("netwrap tutorial down")
        _report(teardown(runner, store), "down", err)
        after = snapshot.take(sandbox.runner)
        diff = before.differences(after)
        section("after down")
        if diff:
            print("the sandbox differs from before `up`:\n  " + "\n  ".join(diff), file=out)
            return EXIT_ERROR
        print("the sandbox is exactly as it was before `up`.", file=out)
    return code


def _remote(args: argparse.Namespace) -> SshRunner | None:
    destination: str | None = getattr(args, "ssh", None)
    if destination is None:
        return None
    client = tuple(shlex.split(getattr(args, "ssh_command", "ssh")))
    if not client:
        raise NetwrapError("--ssh-command is empty")
    options = tuple(getattr(args, "ssh_option", []))
    return SshRunner(parse_destination(destination), options, ssh=client, sudo=getattr(args, "ssh_sudo", False))


def _echo(out: TextIO, verbose: bool, args: argparse.Namespace | None = None) -> EchoRunner:
    remote = _remote(args) if args is not None else None
    inner: Runner = remote if remote is not None else SubprocessRunner()
    return EchoRunner(inner, lambda line: print(line, file=out, flush=True), verbose)


def _clean(args: argparse.Namespace, verbose: bool, out: TextIO, err: TextIO) -> int:
    state_dir = _state_dir(args)
    found = survey(state_dir)
    if not found:
        print(f"netwrap: clean: no records in {state_dir}; nothing to do", file=err)
        return EXIT_OK
    for item in found:
        print(f"{item.describe()}", file=out)
        if item.status == "crashed" and item.record is not None:
            for obj in reversed(item.record.created):
                print(f"  would remove {obj.key}" if args.dry_run else f"  owns {obj.key}", file=out)
    if args.dry_run:
        return EXIT_OK
    remote = _remote(args)
    if remote is None:
        _require_root("clean")
    for item, outcome in clean(_echo(out, verbose, args), state_dir, host=_at(remote)):
        _report(outcome, f"clean {item.file.name}", err)
    return EXIT_OK


def _progress(err: TextIO) -> Progress | None:
    if not err.isatty():
        return None

    def show(number: int, total: int, item: PlanItem) -> None:
        end = "\n" if number == total else ""
        print(f"\r\x1b[K[{number}/{total}] {item.obj.key}", end=end, file=err, flush=True)

    return show


def _cluster(args: argparse.Namespace, verbose: bool, out: TextIO, err: TextIO) -> int:
    """apply / plan / destroy / status of a file with [hosts]: every machine at once, reported per machine."""
    spec = clusterfile.load(args.file)
    state_dir = _state_dir(args)
    mode: Mode = getattr(args, "mode", "batch")

    def echo(name: str, runner: Runner) -> Runner:
        return EchoRunner(runner, lambda line: print(f"[{name}] {line}", file=out, flush=True), verbose)

    if args.command in ("graph", "exec"):
        raise NetwrapError(f"{args.command} works on files without [hosts] for now")
    if args.command == "plan":
        cluster = spec.cluster()
        dries = {m.name: DryRunner(m.runner) for m in cluster.machines}
        planned = attrs.evolve(cluster, machines=tuple(attrs.evolve(m, runner=dries[m.name]) for m in cluster.machines))
        with tempfile.TemporaryDirectory(prefix="netwrap-plan-") as copy:
            for file in state_files(state_dir):
                if file.name.startswith(f"cluster-{spec.name}@"):
                    shutil.copy(file.path, Path(copy) / file.path.name)
            multihost.apply(planned, copy, mode=mode, parallel=False, check=args.check)
        for name, dry in dries.items():
            for command in dry.changes:
                print(f"[{name}] {command.shell()}", file=out)
        count = sum(len(d.changes) for d in dries.values())
        print(f"netwrap: plan {spec.name}: {count} command(s) on {len(dries)} machine(s)", file=err)
        return EXIT_CHANGES if count else EXIT_OK
    cluster = spec.cluster(echo)
    if args.command == "apply":
        outcomes = multihost.apply(cluster, state_dir, mode=mode, check=args.check)
    elif args.command == "destroy":
        outcomes = multihost.destroy(cluster, state_dir, mode=mode)
    else:
        rows = []
        for index, machine in enumerate(cluster.machines):
            topo = multihost.machine_topology(cluster, index)
            store = StateFile.in_dir(state_dir, f"cluster-{spec.name}@{machine.name}")
            rows += [
                attrs.evolve(r, name=f"{r.name}@{machine.name}")
                for r in apply_.status(
                    topo, machine.runner, store, check=args.check, wanted=multihost.objects(cluster, index)
                )
            ]
        if args.json:
            json.dump({"cluster": spec.name, "containers": [r.to_json() for r in rows]}, out, indent=2)
            out.write("\n")
        else:
            print(apply_.render_status(rows), file=out)
        return EXIT_DEGRADED if getattr(args, "require_up", False) and not all(r.up for r in rows) else EXIT_OK
    for name, outcome in outcomes.items():
        _report(outcome, f"{args.command} {spec.name} on {name}", err)
    return EXIT_OK


def _topology(args: argparse.Namespace, verbose: bool, out: TextIO, err: TextIO) -> int:
    if clusterfile.is_cluster_file(args.file):
        return _cluster(args, verbose, out, err)
    topo = topofile.load(args.file)
    remote = _remote(args)
    store = apply_.store_for(topo, _state_dir(args), _at(remote))
    if args.command == "graph":
        allocations = apply_.desired(topo, store)[1]
        drawing = graph.dot if args.format == "dot" else graph.mermaid
        out.write(drawing(topo, allocations))
        return EXIT_OK
    if args.command == "exec":
        if remote is not None:
            raise NetwrapError("exec runs on this machine; on another one: ssh HOST ip netns exec NAMESPACE CMD")
        return _exec(topo, args.container, args.argv)
    if remote is None:
        _require_root(f"{args.command} -f {args.file}")
    runner = _echo(out, verbose, args)
    mode: Mode = getattr(args, "mode", "verbatim" if topo.style == "document" else "batch")
    if args.command == "apply":

        def preflight(objects: Sequence[NetObject]) -> None:
            if remote is None:
                require_tools(_commands_of(objects, with_probes=False))

        outcome = apply_.apply(topo, runner, store, _progress(err), mode=mode, check=args.check, preflight=preflight)
        _report(outcome, f"apply {topo.name}", err)
        return EXIT_OK
    if args.command == "destroy":
        _report(apply_.destroy(runner, store, mode=mode), f"destroy {topo.name}", err)
        return EXIT_OK
    if args.command == "status":
        rows = apply_.status(topo, runner, store, check=args.check)
        if args.json:
            json.dump({"topology": topo.name, "containers": [r.to_json() for r in rows]}, out, indent=2)
            out.write("\n")
        else:
            print(apply_.render_status(rows), file=out)
        return EXIT_DEGRADED if getattr(args, "require_up", False) and not all(r.up for r in rows) else EXIT_OK
    result = apply_.plan_topology(topo, runner, store, mode=mode, check=args.check)
    if verbose:
        for line in result.plan.describe():
            print(f"# {line}", file=out)
    for command in result.commands:
        print(command.shell(), file=out)
    for conflict in result.conflicts:
        print(f"netwrap: conflict: {conflict}", file=err)
    if result.conflicts:
        return EXIT_ERROR
    if result.is_noop:
        print(f"netwrap: plan {topo.name}: nothing to do", file=err)
        return EXIT_OK
    print(f"netwrap: plan {topo.name}: {len(result.commands)} command(s)", file=err)
    return EXIT_CHANGES


def _exec(topo: Topology, name: str, argv: list[str]) -> int:
    """Replace this process with CMD inside the container's namespace (argv, never a shell)."""
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        raise NetwrapError("exec needs a command after --, like: netwrap exec -f FILE web -- ip addr")
    if name not in {c.name for c in topo.containers}:
        raise NetwrapError(f"{name!r} is not a container of topology {topo.name!r}")
    namespace = topo.namespace_of(name)
    if namespace is None:
        program = shutil.which(argv[0]) or find_tool(argv[0])
        if program is None:
            raise NetwrapError(f"command not found: {argv[0]!r}")
        os.execv(program, argv)  # noqa: S606 -- exec replaces netwrap with the argv asked for; no shell
    _require_root(f"exec {name}")
    ip = find_tool("ip")
    if ip is None:
        raise ToolNotFoundError("ip", "iproute2")
    os.execv(ip, ["ip", "netns", "exec", namespace, *argv])  # noqa: S606 -- as above
    return EXIT_ERROR  # not reached


def run(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the command line; returns the exit code."""
    out = out or sys.stdout
    err = err or sys.stderr
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(out)
        return EXIT_USAGE
    verbose: bool = getattr(args, "verbose", False)
    changes = args.command in ("apply", "destroy") or getattr(args, "action", None) in ("up", "down", "verify")
    if changes or (args.command == "clean" and not args.dry_run):
        local = _remote(args) is None
        if local:
            _require_root(_what(args))
        timeout = getattr(args, "lock_timeout", DEFAULT_TIMEOUT)
        with StateLock(_state_dir(args), timeout=timeout):
            if not local:
                return _dispatch(args, verbose, out, err)
            # this host's runs take turns whatever their state directory (see netwrap.engine.registry)
            with StateLock(registry.folder(host_run()), timeout=timeout):
                return _dispatch(args, verbose, out, err)
    return _dispatch(args, verbose, out, err)


def _what(args: argparse.Namespace) -> str:
    if args.command == "tutorial":
        return f"tutorial {args.action}"
    return f"{args.command} -f {args.file}" if hasattr(args, "file") else args.command


def _dispatch(args: argparse.Namespace, verbose: bool, out: TextIO, err: TextIO) -> int:
    if args.command == "doctor":
        checks = doctor.diagnose(SubprocessRunner())
        print(doctor.render(checks), file=out)
        return EXIT_ERROR if any(c.status == "fail" for c in checks) else EXIT_OK
    if args.command == "clean":
        return _clean(args, verbose, out, err)
    if args.command in ("apply", "plan", "destroy", "status", "graph", "exec"):
        return _topology(args, verbose, out, err)
    remote = _remote(args)
    requested = getattr(args, "bridge_tool", "auto")
    tool = _bridge_tool("ip" if remote is not None and requested == "auto" else requested)
    action: str | None = args.action
    if action is None:
        return _demo(verbose, tool, out, err)
    if action == "script":
        step_list = tutorial.steps(tool)
        out.write(tutorial.render_down_script(step_list) if args.down else tutorial.render_script(step_list))
        return EXIT_OK
    if remote is None:
        _require_root(f"tutorial {action}")
        require_tools(_commands_of(tutorial.objects(tool), with_probes=action == "verify"))
    state_dir = _state_dir(args)
    runner = _echo(out, verbose, args)
    if action == "plan":
        return _plan(runner, tool, verbose, out, err)
    mode: Mode = getattr(args, "mode", "verbatim")
    where = _at(remote)
    store = StateFile.in_dir(state_dir, tutorial.STATE_NAME + where)
    if action == "up":
        _report(build(tutorial.objects(tool), runner, store, mode=mode), "up", err)
    elif action == "down":
        _report(teardown(runner, store, mode=mode), "down", err)
    else:
        python = "python3" if remote is not None else None
        return _verify(runner, StateFile.in_dir(state_dir, VERIFY_STATE_NAME + where), out, python)
    return EXIT_OK


def _at(remote: SshRunner | None) -> str:
    """The suffix that keeps another machine's records apart from this one's."""
    return f"@{remote.destination}" if remote is not None else ""


class Terminated(KeyboardInterrupt):
    """SIGTERM, turned into an exception so that netwrap stops the way it does for Ctrl-C."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point: netwrap's errors become a message and exit code 1.

    Ctrl-C (SIGINT) and SIGTERM stop the run between two commands or kill the
    one running; the record was written before each change, so it is true:
    running the same command again finishes the work, and ``down``, ``destroy``
    or ``clean`` undo it.
    """
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return run(argv)
    except NetwrapError as exc:
        print(f"netwrap: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt as exc:
        what = "terminated" if isinstance(exc, Terminated) else "interrupted"
        print(
            f"netwrap: {what}; what was done so far is recorded: run the same command again to finish, "
            "or down/destroy/clean to undo it",
            file=sys.stderr,
        )
        return 143 if isinstance(exc, Terminated) else 130
