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

How it is put together: :func:`parse` reads the command line once into the subcommand's :class:`Handler` (each
subcommand's parser names its own, with ``set_defaults(handler=...)``) and an
:class:`~netwrap.cli.options.Options` (every option, with its one default); the handler does the work and
prints through :mod:`netwrap.cli.output`. :func:`main` turns netwrap's errors into a message and exit code 1,
and anything unexpected into a bug report.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import shutil
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO, TypeGuard

import attrs

from netwrap.cli.options import Options, client, pid, seconds
from netwrap.cli.output import (
    EXIT_CHANGES,
    EXIT_DEGRADED,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    EXIT_USAGE,
    Output,
    PlanReport,
    Streams,
    print_plan,
    print_status,
)
from netwrap.command import Command
from netwrap.engine import registry
from netwrap.engine.build import Outcome, Progress, build, plan_for, teardown
from netwrap.engine.clean import clean, survey
from netwrap.engine.lock import StateLock
from netwrap.engine.plan import PlanItem
from netwrap.engine.state import DEFAULT_STATE_DIR, StateFile, Store, state_files
from netwrap.errors import NetwrapError, StepError, ToolNotFoundError, TopologyError
from netwrap.host.nsfile import netns_problem
from netwrap.host.runner import DryRunner, EchoRunner, Runner, SubprocessRunner, find_tool, host_run, require_tools
from netwrap.host.ssh import SshRunner, parse_destination
from netwrap.kinds import AttachedNamespace, BridgeTool, NetObject
from netwrap.kinds.namespace import namespace_file
from netwrap.topology import apply as apply_
from netwrap.topology import attached
from netwrap.topology import files as topofile
from netwrap.topology.model import Attachment, Container, Port, Topology

if TYPE_CHECKING:
    from netwrap.topology.clusterfile import ClusterSpec

# The tutorial, its verification, the doctor, the sandbox, snapshots, clusters and graphs are imported by the
# commands that use them (inside those functions), so that every other command starts without them.

__all__ = [
    "EXIT_CHANGES", "EXIT_DEGRADED", "EXIT_ERROR", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_TERMINATED", "EXIT_USAGE",
    "Handler", "main", "parse", "run",
]  # fmt: skip

VERIFY_STATE_NAME = "tutorial-verify"


# --- reading the command line ---------------------------------------------------------------------------------


@attrs.frozen
class Handler:
    """What a subcommand runs, named by its parser (``set_defaults(handler=...)``); ``takes_command``: its
    command line ends with a command of its own, after ``--`` (``exec``)."""

    run: Callable[[Options, Streams], int]
    takes_command: bool = False


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors exiting EXIT_USAGE instead of 2 (its sub-commands' parsers are of this class),
    and every option absent unless given (its one default is in :class:`Options`)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("argument_default", argparse.SUPPRESS)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


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
        Output(sys.stdout).line(f"netwrap {_version()}")
        parser.exit()


def _common() -> _Parser:
    """The options of every command that reads or changes a host (netwrap's own, before ``--``)."""
    common = _Parser(add_help=False)
    common.add_argument(
        "-v", "--verbose", action="store_true",
        help="also print the read-only checks (as '# COMMAND') and each object's standing",
    )  # fmt: skip
    style = common.add_mutually_exclusive_group()
    style.add_argument(
        "--batch", dest="mode", action="store_const", const="batch",
        help="regroup the commands into a few processes (ip -batch, iptables-restore); the default for "
        "docker-style topologies",
    )  # fmt: skip
    style.add_argument(
        "--verbatim", dest="mode", action="store_const", const="verbatim",
        help="run each command on its own, as written; the default for the tutorial and document-style files",
    )  # fmt: skip
    _remote_options(common)
    common.add_argument(
        "--lock-timeout", type=seconds, metavar="SECONDS",
        help="how long to wait for another netwrap working on the same state directory (default: 120)",
    )  # fmt: skip
    common.add_argument(
        "--state-dir", type=Path,
        help=f"where the record of what netwrap created is kept (default: $NETWRAP_STATE_DIR or {DEFAULT_STATE_DIR})",
    )  # fmt: skip
    return common


def _remote_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ssh", metavar="[USER@]HOST",
        help="work on another machine through OpenSSH (records stay here, in --state-dir); an IPv6 address with "
        "or without brackets",
    )  # fmt: skip
    parser.add_argument(
        "--ssh-option", dest="ssh_options", metavar="OPTION", action="append",
        help="an option for ssh, as one word: --ssh-option=-p2222 --ssh-option=-i/path/key (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--ssh-command", type=client, metavar="COMMAND",
        help="the ssh client to start, split like a shell would (default: ssh), e.g. 'ssh -F lab.conf'",
    )  # fmt: skip
    parser.add_argument(
        "--ssh-sudo", action="store_true",
        help="run the commands with sudo -n on the far side (a login that is not root)",
    )  # fmt: skip


def _parser() -> _Parser:
    common = _common()
    bridge = _Parser(add_help=False)
    bridge.add_argument(
        "--bridge-tool", choices=("auto", "brctl", "ip"),
        help="make the bridge with brctl (as the document does) or iproute2; auto (the default): brctl when "
        "installed",
    )  # fmt: skip
    both = [common, bridge]

    parser = _Parser(
        prog="netwrap", description="Build Linux container networks the way Docker does, with ip, brctl and iptables."
    )
    parser.add_argument("--version", action=_Version, nargs=0, help="show netwrap's version and exit")
    parser.set_defaults(handler=Handler(_no_command), subparser=parser)
    commands = parser.add_subparsers(metavar="COMMAND")

    def sub(
        group: argparse._SubParsersAction[_Parser], name: str, text: str, handler: Handler, **kwargs: object
    ) -> _Parser:
        kwargs.setdefault("description", text)
        found = group.add_parser(name, help=text, **kwargs)  # type: ignore[arg-type]
        found.set_defaults(handler=handler, subparser=found)  # its parser: to refuse what only it can read
        return found

    tut = sub(
        commands, "tutorial", "the document's network: a safe demo, or script/plan/up/verify/down", Handler(_demo),
        parents=both,
        description="Without an action: a safe demo that runs up, verify and down inside a throwaway "
        "sandbox (own network namespace, private /run/netns); this host's network is never touched.",
    )  # fmt: skip
    steps = tut.add_subparsers(metavar="ACTION")
    script = sub(
        steps, "script", "print the commands as a bash script; change nothing", Handler(_tutorial_script),
        parents=both,
    )  # fmt: skip
    script.add_argument("--down", action="store_true", help="print the teardown script instead")
    sub(steps, "plan", "print what `up` would run here; exit 0 if nothing, 2 if something",
        Handler(_tutorial_plan), parents=both)  # fmt: skip
    sub(steps, "up", "build the tutorial's network on this host (idempotent)", Handler(_tutorial_up), parents=both)
    sub(steps, "verify", "check the four scenarios; exit 0 only if all pass", Handler(_tutorial_verify),
        parents=both)  # fmt: skip
    sub(steps, "down", "remove what `up` created and restore ip_forward", Handler(_tutorial_down), parents=both)
    cleaner = sub(
        commands, "clean", "remove what crashed netwrap runs left behind (only what they created)", Handler(_clean),
        parents=[common],
        description="Reads the records in the state directory. A run that ended before finishing had its "
        "objects removed like `down` would; finished builds and running ones are listed and left alone.",
    )  # fmt: skip
    cleaner.add_argument("--dry-run", action="store_true", help="list what would be removed; change nothing")
    remote = _Parser(add_help=False)
    _remote_options(remote)
    sub(
        commands, "doctor", "what this host (or, with --ssh, another) has and lacks for netwrap, with the fix for "
        "each (reads only)", Handler(_doctor), parents=[remote],
    )  # fmt: skip
    topo = _Parser(add_help=False)
    topo.add_argument("-f", "--file", type=Path, required=True, help="the topology file (TOML)")
    quick = _Parser(add_help=False)
    quick.add_argument(
        "--quick", dest="check", action="store_const", const="host",
        help="check the host side only (devices, namespaces, rules, settings); read inside a namespace only "
        "when its host side is not as the last apply left it",
    )  # fmt: skip
    sub(commands, "apply", "make this host match the topology: create what is missing, remove what it no longer has",
        Handler(_apply), parents=[common, topo, quick])  # fmt: skip
    sub(commands, "plan", "print the commands apply would run; exit 0 if none, 2 if some, 1 on conflicts",
        Handler(_plan), parents=[common, topo, quick])  # fmt: skip
    sub(commands, "destroy", "remove what apply created (objects another topology still uses are handed over)",
        Handler(_destroy), parents=[common, topo])  # fmt: skip
    stat = sub(
        commands, "status", "each container, its addresses and state (exit 3 with --check unless all are up)",
        Handler(_status), parents=[common, topo, quick],
    )  # fmt: skip
    stat.add_argument("--json", action="store_true", help="print JSON for scripts")
    stat.add_argument(
        "--check", dest="require_up", action="store_true", help="exit 3 unless every container's whole path is up"
    )
    drawing = sub(
        commands, "graph", "draw the topology (Mermaid or Graphviz DOT) from its file; runs nothing", Handler(_graph),
        parents=[topo],
    )  # fmt: skip
    drawing.add_argument("--format", choices=("mermaid", "dot"), help="the diagram's language (default: mermaid)")
    drawing.add_argument("--state-dir", type=Path, help="to show the addresses applied")
    drawing.add_argument(
        "--ssh", metavar="[USER@]HOST",
        help="show the addresses applied on that machine (from its record, kept here); nothing is run there",
    )  # fmt: skip
    _attach_parsers(commands, sub, [common, topo])
    execute = sub(
        commands, "exec", "run a command in a container's network namespace (needs root)",
        Handler(_exec, takes_command=True), parents=[topo],
        usage="netwrap exec [-h] -f FILE CONTAINER -- CMD ...",
        description="Run CMD in CONTAINER's network namespace on this machine. netwrap's options stand before "
        "--, everything after it is the command.",
    )  # fmt: skip
    execute.add_argument("container", metavar="CONTAINER", help="a container of the topology")
    execute.add_argument("words", nargs="*", help=argparse.SUPPRESS)
    execute.add_argument("--state-dir", type=Path, help=argparse.SUPPRESS)
    execute.add_argument(
        "--ssh", metavar="[USER@]HOST",
        help="refused: exec runs on this machine (on another one: ssh HOST ip netns exec NAMESPACE CMD)",
    )  # fmt: skip
    return parser


def _namespace_file(text: str) -> str:
    try:
        return namespace_file("--netns-path", text)
    except NetwrapError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _port(text: str) -> str:
    try:
        return str(Port.parse("--publish", text))
    except NetwrapError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _attach_parsers(commands: argparse._SubParsersAction[_Parser], sub: Any, parents: list[_Parser]) -> None:
    """``attach`` and ``detach``."""
    joining = sub(
        commands, "attach", "wire a running container (by its pid or namespace file) into the topology's networks",
        Handler(_attach), parents=parents,
        description="Give a running container's network namespace a name netwrap owns and build for it what a "
        "container of the file gets: veths, addresses, routes, published ports. The file is not edited; the "
        "container is kept beside the topology's record until detach or destroy, which remove only what netwrap "
        "added (never the container's namespace or its own devices).",
    )  # fmt: skip
    source = joining.add_mutually_exclusive_group(required=True)
    source.add_argument("--pid", type=pid, help="a process of the container (its /proc/PID/ns/net)")
    source.add_argument("--netns-path", type=_namespace_file, metavar="PATH", help="its namespace file")
    joining.add_argument(
        "--network", dest="networks", action="append", required=True, metavar="NETWORK",
        help="a network of the file to join (repeatable; the first gets the default route and the ports)",
    )  # fmt: skip
    joining.add_argument(
        "-p", "--publish", action="append", metavar="[HOST_IP:]HOST_PORT:CONTAINER_PORT[/PROTO]", type=_port,
        help="publish a port, as in the file's ports (repeatable)",
    )  # fmt: skip
    joining.add_argument("--name", help="its name in the topology (default: pid-PID; needed with --netns-path)")
    leaving = sub(
        commands, "detach", "remove what attach built for a running container (the container is left alone)",
        Handler(_detach), parents=parents,
    )  # fmt: skip
    leaving.add_argument("--name", required=True, help="the attached container's name")


def parse(argv: Sequence[str]) -> tuple[Handler, Options]:
    """The subcommand's handler and every option, from the command line (a usage error exits 64).

    What follows the first ``--`` is a command of its own (``exec``'s), never read as netwrap's options.
    """
    words = list(argv)
    command: tuple[str, ...] | None = None
    if "--" in words:
        at = words.index("--")
        words, command = words[:at], tuple(words[at + 1 :])
    parser = _parser()
    parsed = parser.parse_args(words)
    handler: Handler = parsed.handler
    own: _Parser = parsed.subparser  # the subcommand's own parser, whose usage an error shows
    options = Options.read(parsed, command)
    if handler.takes_command and options.words:
        if command is None:
            own.error("the command goes after --, as in: netwrap exec -f FILE CONTAINER -- CMD ...")
        own.error(f"{shlex.join(options.words)!r} before --: only netwrap's options stand there")
    if not handler.takes_command and command:
        own.error(f"unrecognized arguments after --: {shlex.join(command)}")
    return handler, options


# --- helpers shared by the handlers ---------------------------------------------------------------------------


def _no_command(options: Options, streams: Streams) -> int:
    streams.out.write(_parser().format_help())
    return EXIT_USAGE


def _bridge_tool(options: Options, remote: SshRunner | None) -> BridgeTool:
    """The tutorial's bridge tool: as asked; auto is brctl when installed here (ip on another machine)."""
    requested = options.bridge_tool
    if requested == "auto":
        return "ip" if remote is not None or find_tool("brctl") is None else "brctl"
    return requested


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


def _state_dir(options: Options) -> Path:
    """The state directory; a path that names something else than a directory is refused, saying where its name
    came from (``--state-dir``, ``$NETWRAP_STATE_DIR``)."""
    path = options.state_dir
    if _is_cni(options.file):  # a CNI network's record is where its configuration says (stateDir)
        from netwrap.cni import plugin  # noqa: PLC0415  (only for a CNI network's configuration)

        own = plugin.state_dir(plugin.config_from_file(options.file))
        if options.state_dir_from == "--state-dir" and path.resolve() != own.resolve():
            raise NetwrapError(f"{options.file} keeps its record in {own} (its stateDir), not in {path}")
        path = own
    if path.exists() and not path.is_dir():
        raise NetwrapError(f"the state directory {path} is not a directory (from {options.state_dir_from})")
    return path


def _require_root(what: str) -> None:
    if os.geteuid() != 0:
        raise NetwrapError(
            f"`netwrap {what}` reads or changes the network and must run as root (or with CAP_NET_ADMIN); "
            f"try `sudo netwrap {what}`, or `netwrap tutorial script` to only print the commands"
        )


def _remote(options: Options) -> SshRunner | None:
    if options.ssh is None:
        return None
    destination = parse_destination(options.ssh)
    return SshRunner(destination, options.ssh_options, ssh=options.ssh_command, sudo=options.ssh_sudo)


def _at(remote: SshRunner | None) -> str:
    """The suffix that keeps another machine's records apart from this one's."""
    return f"@{remote.destination}" if remote is not None else ""


def _echo(options: Options, streams: Streams, remote: SshRunner | None) -> EchoRunner:
    inner: Runner = remote if remote is not None else SubprocessRunner()
    return EchoRunner(inner, streams.out.line, options.verbose)


def _lock(stack: contextlib.ExitStack, directory: Path, what: str, timeout: float) -> None:
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise NetwrapError(f"cannot make the {what} {directory}: {exc.strerror or exc}") from None
    try:
        stack.enter_context(StateLock(directory, timeout=timeout))
    except OSError as exc:
        raise NetwrapError(f"cannot lock the {what} {directory}: {_os_error(exc)}") from None


@contextlib.contextmanager
def _turns(options: Options, what: str) -> Iterator[SshRunner | None]:
    """Before a change: root (on this machine), then the state directory's lock and, on this machine, the
    host's, so that runs take turns whatever their state directory (see :mod:`netwrap.engine.registry`).
    Gives the runner of the other machine (``--ssh``), or None."""
    remote = _remote(options)
    if remote is None:
        _require_root(what)
    with contextlib.ExitStack() as stack:
        _lock(stack, _state_dir(options), "state directory", options.lock_timeout)
        if remote is None:
            _lock(stack, registry.folder(host_run()), "directory of this host's lock", options.lock_timeout)
        yield remote


def _report(outcome: Outcome, what: str, streams: Streams) -> None:
    for note in outcome.notes:
        streams.err.line(f"netwrap: {note}")
    if outcome.changed:
        streams.err.line(f"netwrap: {what}: {len(outcome.changed)} change(s)")
    else:
        streams.err.line(f"netwrap: {what}: nothing to do")


def _progress(err: Output) -> Progress | None:
    if not err.isatty():
        return None

    def show(number: int, total: int, item: PlanItem) -> None:
        end = "\n" if number == total else ""
        err.write(f"\r\x1b[K[{number}/{total}] {item.obj.key}{end}")

    return show


def _load(options: Options) -> Topology | ClusterSpec:
    """The file of ``-f``: a cluster file (with ``[hosts]``), or a topology file with the containers attached
    to it (see :mod:`netwrap.topology.attached`)."""
    loaded = _load_file(options)
    if not isinstance(loaded, Topology):
        return loaded
    return attached.merged(loaded, attached.load(_store(options, loaded)), str(options.file))


def _store(options: Options, topo: Topology) -> StateFile:
    where = f"@{parse_destination(options.ssh)}" if options.ssh is not None else ""
    return apply_.store_for(topo, _state_dir(options), where)


def _is_cni(file: Path | None) -> TypeGuard[Path]:
    """Whether ``-f`` names a CNI network's configuration (JSON: .conf, .conflist or .json)."""
    return file is not None and file.suffix in (".conf", ".conflist", ".json") and _is_cni_config(file)


def _is_cni_config(file: Path) -> bool:
    try:
        with file.open("rb") as fh:
            return fh.read(256).lstrip().startswith(b"{")
    except OSError:
        return False


def _load_file(options: Options) -> Topology | ClusterSpec:
    """The file of ``-f`` alone."""
    file = options.file
    if file is None:  # the parser requires -f
        raise NetwrapError("no topology file given (-f FILE)")
    try:
        if _is_cni(file):
            from netwrap.cni import plugin  # noqa: PLC0415  (only for a CNI network's configuration)

            return plugin.topology_from_file(file)
        data = topofile.read_toml(file)  # read and parsed once, whichever kind of file it is
        if topofile.names_hosts(data):
            from netwrap.topology import clusterfile  # noqa: PLC0415

            return clusterfile.from_dict(data, str(file), file.stem)
        return topofile.from_dict(data, str(file), default_name=file.stem)
    except UnicodeDecodeError as exc:
        where = f"byte {exc.object[exc.start]:#04x} at offset {exc.start}"
        raise NetwrapError(f"{file}: [file] read: the file is not UTF-8 text ({where})") from None


# --- the tutorial -----------------------------------------------------------------------------------------------


def _demo(options: Options, streams: Streams) -> int:
    import tempfile  # noqa: PLC0415

    from netwrap import tutorial  # noqa: PLC0415
    from netwrap.host import snapshot  # noqa: PLC0415
    from netwrap.host.sandbox import Sandbox  # noqa: PLC0415

    tool = _bridge_tool(options, _remote(options))
    if os.geteuid() != 0:
        raise NetwrapError("the demo makes a throwaway network namespace and needs root: run `sudo netwrap tutorial`")
    out = streams.out

    def section(title: str) -> None:
        out.line(f"\n=== {title}")

    out.line(
        "netwrap tutorial: the document's network, built, checked and removed inside a throwaway sandbox\n"
        "(its own network namespace and a private /run/netns). This host's network is not touched."
    )
    with Sandbox() as sandbox, tempfile.TemporaryDirectory(prefix="netwrap-demo-") as state_dir:
        store = StateFile.in_dir(state_dir, tutorial.STATE_NAME)
        runner = EchoRunner(sandbox.runner, out.line, options.verbose)
        before = snapshot.take(sandbox.runner)
        section("netwrap tutorial up")
        _report(build(tutorial.objects(tool), runner, store), "up", streams)
        section("netwrap tutorial up (again: finds everything in place, runs nothing)")
        _report(build(tutorial.objects(tool), runner, store), "up", streams)
        section("netwrap tutorial verify")
        code = _verify(runner, StateFile.in_dir(state_dir, VERIFY_STATE_NAME), streams)
        section("netwrap tutorial down")
        _report(teardown(runner, store), "down", streams)
        after = snapshot.take(sandbox.runner)
        diff = before.differences(after)
        section("after down")
        if diff:
            out.line("the sandbox differs from before `up`:\n  " + "\n  ".join(diff))
            return EXIT_ERROR
        out.line("the sandbox is exactly as it was before `up`.")
    return code


def _tutorial_script(options: Options, streams: Streams) -> int:
    from netwrap import tutorial  # noqa: PLC0415

    step_list = tutorial.steps(_bridge_tool(options, _remote(options)))
    streams.out.write(tutorial.render_down_script(step_list) if options.down else tutorial.render_script(step_list))
    return EXIT_OK


def _tutorial_plan(options: Options, streams: Streams) -> int:
    from netwrap import tutorial  # noqa: PLC0415

    remote = _remote(options)
    tool = _bridge_tool(options, remote)
    if remote is None:
        _require_root("tutorial plan")
        require_tools(_commands_of(tutorial.objects(tool), with_probes=False))
    current = plan_for(tutorial.objects(tool), _echo(options, streams, remote))
    report = PlanReport(
        "plan",
        [command.shell() for command in current.commands],
        current.is_noop,
        f"{len(current.changes)} change(s), {len(current.commands)} command(s)",
        nothing="nothing to do; the host has every object",
        described=current.describe() if options.verbose else (),
        conflicts=[item.assessment.reason for item in current.conflicts],
    )
    return print_plan(report, streams, verbose=options.verbose)


def _tutorial_up(options: Options, streams: Streams) -> int:
    return _tutorial_change(options, streams, "up")


def _tutorial_down(options: Options, streams: Streams) -> int:
    return _tutorial_change(options, streams, "down")


def _tutorial_verify(options: Options, streams: Streams) -> int:
    return _tutorial_change(options, streams, "verify")


def _tutorial_change(options: Options, streams: Streams, action: str) -> int:
    from netwrap import tutorial  # noqa: PLC0415

    with _turns(options, f"tutorial {action}") as remote:
        tool = _bridge_tool(options, remote)
        if remote is None:
            require_tools(_commands_of(tutorial.objects(tool), with_probes=action == "verify"))
        state_dir = _state_dir(options)
        runner = _echo(options, streams, remote)
        mode = options.mode_for("document")
        where = _at(remote)
        store = StateFile.in_dir(state_dir, tutorial.STATE_NAME + where)
        if action == "up":
            _report(build(tutorial.objects(tool), runner, store, mode=mode), "up", streams)
        elif action == "down":
            _report(teardown(runner, store, mode=mode), "down", streams)
        else:
            python = "python3" if remote is not None else None
            return _verify(runner, StateFile.in_dir(state_dir, VERIFY_STATE_NAME + where), streams, python)
    return EXIT_OK


def _verify(runner: Runner, store: Store, streams: Streams, python: str | None = None) -> int:
    from netwrap.tutorial.verify import render_table, verify  # noqa: PLC0415

    results = verify(runner, store, python)
    streams.out.line(render_table(results))
    return EXIT_OK if all(r.passed for r in results) else EXIT_ERROR


# --- clean and doctor -------------------------------------------------------------------------------------------


def _clean(options: Options, streams: Streams) -> int:
    if options.dry_run:
        _leftovers(options, streams)
        return EXIT_OK
    with _turns(options, "clean") as remote:
        if _leftovers(options, streams):
            for item, outcome in clean(_echo(options, streams, remote), _state_dir(options), host=_at(remote)):
                _report(outcome, f"clean {item.file.name}", streams)
    return EXIT_OK


def _leftovers(options: Options, streams: Streams) -> bool:
    """List the records of the state directory (what a crashed run left, each object); False if there are none."""
    state_dir = _state_dir(options)
    found = survey(state_dir)
    if not found:
        streams.err.line(f"netwrap: clean: no records in {state_dir}; nothing to do")
        return False
    for item in found:
        streams.out.line(item.describe())
        if item.status == "crashed" and item.record is not None:
            for obj in reversed(item.record.created):
                streams.out.line(f"  would remove {obj.key}" if options.dry_run else f"  owns {obj.key}")
    return True


def _doctor(options: Options, streams: Streams) -> int:
    from netwrap.cli import doctor  # noqa: PLC0415

    remote = _remote(options)
    if remote is None:
        checks = doctor.diagnose(SubprocessRunner())
    else:
        checks = doctor.diagnose(remote, remote=remote.destination)
    streams.out.line(doctor.render(checks))
    return EXIT_ERROR if any(c.status == "fail" for c in checks) else EXIT_OK


# --- topology and cluster files ---------------------------------------------------------------------------------


def _apply(options: Options, streams: Streams) -> int:
    with _turns(options, f"apply -f {options.file}") as remote:
        loaded = _load(options)
        if not isinstance(loaded, Topology):
            from netwrap.topology import multihost  # noqa: PLC0415

            cluster = loaded.cluster(_machine_echo(options, streams))
            outcomes = multihost.apply(
                cluster, _state_dir(options), mode=options.mode_for("docker"), check=options.check
            )
            return _machines_report(outcomes, f"apply {loaded.name}", streams)
        store = apply_.store_for(loaded, _state_dir(options), _at(remote))

        def preflight(objects: Sequence[NetObject]) -> None:
            if remote is None:
                require_tools(_commands_of(objects, with_probes=False))
                _namespace_files(objects)

        outcome = apply_.apply(
            loaded,
            _echo(options, streams, remote),
            store,
            _progress(streams.err),
            mode=options.mode_for(loaded.style),
            check=options.check,
            preflight=preflight,
        )
        _report(outcome, f"apply {loaded.name}", streams)
    return EXIT_OK


def _namespace_files(objects: Sequence[NetObject]) -> None:
    """Before anything runs on this machine: every running container's namespace file is a network namespace,
    and not the host's (the kernel is asked; one that cannot be opened, a container that exited, is left to the
    plan, which says so)."""
    for obj in objects:
        if isinstance(obj, AttachedNamespace):
            _refuse_namespace_file(obj.name, obj.source, missing=False)


def _refuse_namespace_file(what: str, source: str, *, missing: bool = True) -> None:
    """A :class:`NetwrapError` naming ``what`` when ``source`` is no network namespace of a container's (one
    that cannot be opened too, with ``missing``)."""
    problem = netns_problem(source)
    if problem is not None and (missing or not problem.startswith("cannot be opened")):
        raise NetwrapError(f"{what}: {source} {problem}; nothing was changed")


def _topology_only(options: Options, what: str) -> Topology:
    if _is_cni(options.file):
        raise NetwrapError(f"{what} does not take a CNI network's configuration: its runtime adds and deletes its "
                           "containers through the plugin")  # fmt: skip
    loaded = _load_file(options)
    if not isinstance(loaded, Topology):
        raise NetwrapError(f"{what} works on files without [hosts] for now")
    return loaded


def _attach(options: Options, streams: Streams) -> int:
    """Add a running container to the topology's attached ones and apply; on failure, the list is as before and
    what was half-built is removed."""
    with _turns(options, f"attach -f {options.file}") as remote:
        topo = _topology_only(options, "attach")
        store = _store(options, topo)
        before = attached.load(store)
        source = options.netns_path if options.pid is None else f"/proc/{options.pid}/ns/net"
        name = options.name or (f"pid-{options.pid}" if options.pid is not None else None)
        if name is None:
            raise NetwrapError("attach --netns-path needs --name: the container's name in the topology")
        if any(c.name == name for c in topo.containers):
            raise NetwrapError(f"{name!r} is a container of {options.file}; attach it under another --name")
        if remote is None and source:  # another machine's file is judged there
            given = f"--pid {options.pid}" if options.pid is not None else f"--netns-path {options.netns_path}"
            _refuse_namespace_file(f"attach {given}", source)
        container = Container(
            name,
            networks=tuple(Attachment(network) for network in options.networks),
            ports=tuple(Port.parse("--publish", text) for text in options.publish),
            loopback=False,
            source=source,
        )
        after = [*(c for c in before if c.name != name), container]
        wanted = attached.merged(topo, after, str(options.file))
        attached.save(store, after)
        runner = _echo(options, streams, remote)
        mode = options.mode_for(topo.style)
        try:
            outcome = apply_.apply(wanted, runner, store, _progress(streams.err), mode=mode)
        except NetwrapError as exc:
            attached.save(store, before)
            try:
                apply_.apply(attached.merged(topo, before, str(options.file)), runner, store, mode=mode)
            except NetwrapError:
                raise exc from None  # not given back: the build's advice (run again, or tear down) stands
            if isinstance(exc, StepError):
                hint = " (does the container have an interface or a default route of its own?)" if (
                    "File exists" in exc.stderr) else ""  # fmt: skip
                advice = f"attach removed what it had made again, and the rest is as {options.file} says{hint}"
                raise StepError(exc.step, exc.total, exc.key, exc.cause, advice) from None
            raise
        _report(outcome, f"attach {name} to {topo.name}", streams)
    return EXIT_OK


def _detach(options: Options, streams: Streams) -> int:
    with _turns(options, f"detach -f {options.file}") as remote:
        topo = _topology_only(options, "detach")
        store = _store(options, topo)
        before = attached.load(store)
        if all(c.name != options.name for c in before):
            names = ", ".join(repr(c.name) for c in before) or "none"
            raise NetwrapError(f"{options.name!r} is not attached to topology {topo.name!r} (attached: {names})")
        after = [c for c in before if c.name != options.name]
        try:
            wanted = attached.merged(topo, after, str(options.file))
        except TopologyError as exc:
            raise NetwrapError(
                f"detach {options.name}: {options.file} as it is now does not fit the containers that stay "
                "attached, and detach applies the rest as the file says; put back in the file what they need, "
                f"detach, then edit it again; or destroy the topology:\n{exc}"
            ) from None
        attached.save(store, after)
        outcome = apply_.apply(
            wanted, _echo(options, streams, remote), store, _progress(streams.err), mode=options.mode_for(topo.style)
        )
        _report(outcome, f"detach {options.name} from {topo.name}", streams)
    return EXIT_OK


def _destroy(options: Options, streams: Streams) -> int:
    with _turns(options, f"destroy -f {options.file}") as remote:
        loaded = _load_file(options)  # the record says what to remove; attached containers go with it
        if not isinstance(loaded, Topology):
            from netwrap.topology import multihost  # noqa: PLC0415

            cluster = loaded.cluster(_machine_echo(options, streams))
            outcomes = multihost.destroy(cluster, _state_dir(options), mode=options.mode_for("docker"))
            return _machines_report(outcomes, f"destroy {loaded.name}", streams)
        store = apply_.store_for(loaded, _state_dir(options), _at(remote))
        runner = _echo(options, streams, remote)
        _report(apply_.destroy(runner, store, mode=options.mode_for(loaded.style)), f"destroy {loaded.name}", streams)
        attached.save(store, [])  # what was attached went with it
    return EXIT_OK


def _plan(options: Options, streams: Streams) -> int:
    loaded = _load(options)
    if not isinstance(loaded, Topology):
        return _cluster_plan(loaded, options, streams)
    remote = _remote(options)
    store = apply_.store_for(loaded, _state_dir(options), _at(remote))
    if remote is None:
        _require_root(f"plan -f {options.file}")
    runner = _echo(options, streams, remote)
    result = apply_.plan_topology(loaded, runner, store, mode=options.mode_for(loaded.style), check=options.check)
    report = PlanReport(
        f"plan {loaded.name}",
        [command.shell() for command in result.commands],
        result.is_noop,
        f"{len(result.commands)} command(s)",
        described=result.plan.describe() if options.verbose else (),
        conflicts=result.conflicts,
    )
    return print_plan(report, streams, verbose=options.verbose)


def _cluster_plan(spec: ClusterSpec, options: Options, streams: Streams) -> int:
    """What apply would run on every machine: reads for real, changes recorded, on a copy of the records."""
    import tempfile  # noqa: PLC0415

    from netwrap.topology import multihost  # noqa: PLC0415

    state_dir = _state_dir(options)
    cluster = spec.cluster()
    dries = {m.name: DryRunner(m.runner) for m in cluster.machines}
    planned = attrs.evolve(cluster, machines=tuple(attrs.evolve(m, runner=dries[m.name]) for m in cluster.machines))
    with tempfile.TemporaryDirectory(prefix="netwrap-plan-") as copy:
        for file in state_files(state_dir):
            if file.name.startswith(f"cluster-{spec.name}@"):
                shutil.copy(file.path, Path(copy) / file.path.name)
        multihost.apply(planned, copy, mode=options.mode_for("docker"), parallel=False, check=options.check)
    commands = [f"[{name}] {command.shell()}" for name, dry in dries.items() for command in dry.changes]
    counted = f"{len(commands)} command(s) on {len(dries)} machine(s)"
    report = PlanReport(f"plan {spec.name}", commands, not commands, counted, nothing=counted)
    return print_plan(report, streams, verbose=options.verbose)


def _status(options: Options, streams: Streams) -> int:
    loaded = _load(options)
    if not isinstance(loaded, Topology):
        from netwrap.topology import multihost  # noqa: PLC0415

        state_dir = _state_dir(options)
        cluster = loaded.cluster(_machine_echo(options, streams))
        rows = []
        for index, machine in enumerate(cluster.machines):
            topo = multihost.machine_topology(cluster, index)
            store = StateFile.in_dir(state_dir, f"cluster-{loaded.name}@{machine.name}")
            found = apply_.status(
                topo, machine.runner, store, check=options.check, wanted=multihost.objects(cluster, index)
            )
            rows += [attrs.evolve(row, name=f"{row.name}@{machine.name}") for row in found]
        kind = "cluster"
    else:
        remote = _remote(options)
        store = apply_.store_for(loaded, _state_dir(options), _at(remote))
        if remote is None:
            _require_root(f"status -f {options.file}")
        rows = apply_.status(loaded, _echo(options, streams, remote), store, check=options.check)
        kind = "topology"
    return print_status(rows, streams, kind=kind, name=loaded.name, as_json=options.json, require_up=options.require_up)


def _graph(options: Options, streams: Streams) -> int:
    from netwrap.topology import graph  # noqa: PLC0415

    loaded = _load(options)
    if not isinstance(loaded, Topology):
        raise NetwrapError("graph works on files without [hosts] for now")
    where = f"@{parse_destination(options.ssh)}" if options.ssh is not None else ""
    allocations = apply_.desired(loaded, apply_.store_for(loaded, _state_dir(options), where))[1]
    drawing = graph.dot if options.format == "dot" else graph.mermaid
    streams.out.write(drawing(loaded, allocations))
    return EXIT_OK


def _exec(options: Options, streams: Streams) -> int:
    """Replace this process with the command inside the container's namespace (argv, never a shell)."""
    loaded = _load(options)
    if not isinstance(loaded, Topology):
        raise NetwrapError("exec works on files without [hosts] for now")
    if options.ssh is not None:
        raise NetwrapError("exec runs on this machine; on another one: ssh HOST ip netns exec NAMESPACE CMD")
    argv = list(options.command or ())
    if not argv:
        raise NetwrapError("exec needs a command after --, like: netwrap exec -f FILE web -- ip addr")
    name = options.container
    if name not in {c.name for c in loaded.containers}:
        raise NetwrapError(f"{name!r} is not a container of topology {loaded.name!r}")
    namespace = loaded.namespace_of(name)
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


def _machine_echo(options: Options, streams: Streams) -> Callable[[str, Runner], Runner]:
    """Each machine's runner, echoing its commands prefixed with its name (``[a] + ip -batch -``)."""

    def echo(name: str, runner: Runner) -> Runner:
        return EchoRunner(runner, lambda line: streams.out.line(f"[{name}] {line}"), options.verbose)

    return echo


def _machines_report(outcomes: dict[str, Outcome], what: str, streams: Streams) -> int:
    for name, outcome in outcomes.items():
        _report(outcome, f"{what} on {name}", streams)
    return EXIT_OK


# --- running it -------------------------------------------------------------------------------------------------


def run(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the command line; returns the exit code (a usage error exits, with 64)."""
    streams = Streams(Output(out or sys.stdout), Output(err or sys.stderr))
    handler, options = parse(sys.argv[1:] if argv is None else argv)
    return handler.run(options, streams)


class Terminated(KeyboardInterrupt):
    """SIGTERM, turned into an exception so that netwrap stops the way it does for Ctrl-C."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point: netwrap's errors (and the system's, such as a file that cannot be read) become a
    message and exit code 1; anything else is a bug, reported as one (exit 1).

    Ctrl-C (SIGINT) and SIGTERM stop the run between two commands or kill the
    one running; the record was written before each change, so it is true:
    running the same command again finishes the work, and ``down``, ``destroy``
    or ``clean`` undo it (exit 130 and 143). A reader of the output that went
    away (``| head``) stops nothing: the rest of the output is dropped.
    """
    signal.signal(signal.SIGTERM, _on_sigterm)
    words = list(sys.argv[1:] if argv is None else argv)
    streams = Streams(Output(sys.stdout), Output(sys.stderr))
    try:
        handler, options = parse(words)
        return handler.run(options, streams)
    except NetwrapError as exc:
        streams.err.line(f"netwrap: error: {exc}")
        return EXIT_ERROR
    except OSError as exc:
        streams.err.line(f"netwrap: error: {_os_error(exc)}")
        return EXIT_ERROR
    except KeyboardInterrupt as exc:
        what = "terminated" if isinstance(exc, Terminated) else "interrupted"
        streams.err.line(
            f"netwrap: {what}; what was done so far is recorded: run the same command again to finish, "
            "or down/destroy/clean to undo it"
        )
        return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED
    except Exception as exc:  # the one place where the unexpected becomes a bug report
        streams.err.write(_bug_report(exc, words))
        return EXIT_ERROR
    finally:
        _settle(sys.stdout, streams.out.broken)
        _settle(sys.stderr, streams.err.broken)


def _os_error(exc: OSError) -> str:
    """``PATH: REASON`` for an error of the system (``[Errno N] ...`` when it names no file)."""
    if exc.filename is None:
        return str(exc)
    where = f"{exc.filename} -> {exc.filename2}" if exc.filename2 is not None else str(exc.filename)
    return f"{where}: {exc.strerror or exc}"


def _bug_report(exc: Exception, argv: Sequence[str]) -> str:
    """A summary on the first line, what to do with it, then what a report needs: versions, command, traceback."""
    import platform  # noqa: PLC0415 -- only a bug needs these
    import traceback  # noqa: PLC0415

    lines = str(exc).strip().splitlines()
    summary = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return (
        f"netwrap: internal error: {summary} — this is a bug; please report it with the text below\n"
        f"netwrap {_version()}, Python {platform.python_version()}, command: netwrap {shlex.join(argv)}\n"
        + "".join(traceback.format_exception(exc))
    )


def _settle(stream: TextIO, broken: bool) -> None:
    """Flush ``stream`` now; if its reader went away, point it at /dev/null, so that the interpreter's own flush
    at exit has nowhere to fail (it would print "Exception ignored ... BrokenPipeError")."""
    try:
        stream.flush()
    except (OSError, ValueError):
        broken = True
    if not broken:
        return
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
