"""The ``netwrap`` command line.

::

    netwrap tutorial                 safe demo: up, verify, down in a throwaway sandbox
    netwrap tutorial script [--down] print the tutorial's commands as a bash script
    netwrap tutorial up              build the tutorial on this host, idempotently
    netwrap tutorial verify          check the four scenarios; exit 0 only if all pass
    netwrap tutorial down            remove what `up` created
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TextIO

from netwrap import snapshot, tutorial
from netwrap.build import Outcome, build, teardown
from netwrap.command import Command
from netwrap.errors import NetwrapError
from netwrap.objects import BridgeTool, NetObject, Sysctl
from netwrap.runner import EchoRunner, Runner, SubprocessRunner, find_tool, require_tools
from netwrap.sandbox import Sandbox
from netwrap.state import DEFAULT_STATE_DIR, StateFile
from netwrap.verify import render_table, verify

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def _version() -> str:
    try:
        return version("netwrap")
    except PackageNotFoundError:
        return "unknown"


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
        help="also print the read-only checks (as '# COMMAND')",
    )  # fmt: skip
    common.add_argument(
        "--bridge-tool", choices=("auto", "brctl", "ip"), default=argparse.SUPPRESS,
        help="make the bridge with brctl (as the document does) or iproute2; auto: brctl when installed",
    )  # fmt: skip
    common.add_argument(
        "--state-dir", type=Path, default=argparse.SUPPRESS,
        help=f"where the record of what netwrap created is kept (default: $NETWRAP_STATE_DIR or {DEFAULT_STATE_DIR})",
    )  # fmt: skip

    parser = argparse.ArgumentParser(
        prog="netwrap", description="Build Linux container networks the way Docker does, with ip, brctl and iptables."
    )
    parser.add_argument("--version", action="version", version=f"netwrap {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    tut = commands.add_parser(
        "tutorial",
        parents=[common],
        help="the document's network: a safe demo, or script/up/verify/down",
        description="Without a subcommand: a safe demo that runs up, verify and down inside a throwaway "
        "sandbox (own network namespace, private /run/netns); this host's network is never touched.",
    )
    steps = tut.add_subparsers(dest="action", metavar="ACTION")
    script = steps.add_parser("script", parents=[common], help="print the commands as a bash script; change nothing")
    script.add_argument("--down", action="store_true", help="print the teardown script instead")
    steps.add_parser("up", parents=[common], help="build the tutorial's network on this host (idempotent)")
    steps.add_parser("verify", parents=[common], help="check the four scenarios; exit 0 only if all pass")
    steps.add_parser("down", parents=[common], help="remove what `up` created and restore ip_forward")
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
    commands += [c for obj in objects if not isinstance(obj, Sysctl) for c in obj.delete_commands()]
    if with_probes:
        commands.append(Command("ping", ("-V",), mutates=False))
    return commands


def _state_dir(args: argparse.Namespace) -> Path:
    given: Path | None = getattr(args, "state_dir", None)
    if given is not None:
        return given
    return Path(os.environ.get("NETWRAP_STATE_DIR") or DEFAULT_STATE_DIR)


def _require_root(action: str) -> None:
    if os.geteuid() != 0:
        raise NetwrapError(
            f"`netwrap tutorial {action}` changes the network and must run as root (or with CAP_NET_ADMIN); "
            "try `sudo netwrap tutorial " + action + "`, or `netwrap tutorial script` to only print the commands"
        )


def _say(out: TextIO) -> EchoRunner:
    def write(line: str) -> None:
        print(line, file=out, flush=True)

    return EchoRunner(SubprocessRunner(), write)


def _report(outcome: Outcome, what: str, err: TextIO) -> None:
    for note in outcome.notes:
        print(f"netwrap: {note}", file=err)
    if outcome.changed:
        print(f"netwrap: {what}: {len(outcome.changed)} change(s)", file=err)
    else:
        print(f"netwrap: {what}: nothing to do", file=err)


def _up(runner: Runner, tool: BridgeTool, store: StateFile, err: TextIO) -> None:
    _report(build(tutorial.objects(tool), runner, store), "up", err)


def _down(runner: Runner, tool: BridgeTool, store: StateFile, err: TextIO) -> None:
    _report(teardown(tutorial.objects(tool), runner, store), "down", err)


def _verify(runner: Runner, out: TextIO) -> int:
    results = verify(runner)
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
        _up(runner, tool, store, err)
        section("netwrap tutorial up (again: finds everything in place, runs nothing)")
        _up(runner, tool, store, err)
        section("netwrap tutorial verify")
        code = _verify(runner, out)
        section("netwrap tutorial down")
        _down(runner, tool, store, err)
        after = snapshot.take(sandbox.runner)
        diff = before.differences(after)
        section("after down")
        if diff:
            print("the sandbox differs from before `up`:\n  " + "\n  ".join(diff), file=out)
            return EXIT_ERROR
        print("the sandbox is exactly as it was before `up`.", file=out)
    return code


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
    tool = _bridge_tool(getattr(args, "bridge_tool", "auto"))
    action: str | None = args.action
    if action is None:
        return _demo(verbose, tool, out, err)
    if action == "script":
        step_list = tutorial.steps(tool)
        out.write(tutorial.render_down_script(step_list) if args.down else tutorial.render_script(step_list))
        return EXIT_OK
    _require_root(action)
    require_tools(_commands_of(tutorial.objects(tool), with_probes=action == "verify"))
    store = StateFile.in_dir(_state_dir(args), tutorial.STATE_NAME)
    runner = _say(out)
    runner.verbose = verbose
    if action == "up":
        _up(runner, tool, store, err)
    elif action == "down":
        _down(runner, tool, store, err)
    else:
        return _verify(runner, out)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point: netwrap's errors become a message and exit code 1."""
    try:
        return run(argv)
    except NetwrapError as exc:
        print(f"netwrap: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("netwrap: interrupted", file=sys.stderr)
        return 130
