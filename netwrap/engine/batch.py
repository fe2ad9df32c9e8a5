"""Run a plan's commands one by one (verbatim) or regrouped into a few processes (batched).

Verbatim runs each command as written: the tutorial's mode, where seeing each
command is the point. Batched regroups the same commands by stage into

- one ``ip -batch -`` for the host, and one per namespace (entered with ``nsenter --net``),
- one ``sysctl -w K=V ...`` (per namespace),
- one ``iptables-restore --noflush`` for every rule of every table (atomic),
  and one ``ip6tables-restore --noflush`` for IPv6's,

so that the number of processes grows with the number of namespaces, not of
objects; the namespaces' batches run a few at a time (one after another for a
runner whose ``concurrent`` is false, such as the dry run behind a plan). Building runs the stages host,
namespaces, sysctls, rules; removing
runs them the other way round. Commands that cannot be batched (``brctl``) run
on their own, in their place, and so do a device's IPv6 settings that its
addresses and its coming up need first. Both ways reach the same kernel state.

A batch stops at its first failing line and names it (``Command failed -:3``,
``Error occurred at line: 3``); that line is mapped back to the step it came
from, so the error is the same as in verbatim mode.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Literal

import attrs

from netwrap.command import Command
from netwrap.errors import CommandError
from netwrap.host.runner import Runner

Mode = Literal["verbatim", "batch"]
_IP_LINE = re.compile(r"Command failed -:(\d+)")
_RESTORE_LINE = re.compile(r"(?:Error occurred at line: |line )(\d+)")
_IPTABLES_VERBS = ("-A", "-I", "-D", "-N", "-F", "-X")
RESTORES = ("iptables-restore", "ip6tables-restore")
# A device's IPv6 settings that must be made before its addresses and before it comes up: they run in their
# place among the ip commands (the ones next to each other in one sysctl), not with the other settings.
_IN_PLACE = (".disable_ipv6", ".accept_dad")


@attrs.frozen
class Step:
    """One command of a plan, and the number (from 1) of the plan item it belongs to."""

    item: int
    command: Command


@attrs.frozen
class Batch:
    """One process and, per line of its input, the plan item that line came from."""

    command: Command
    lines: tuple[int, ...]  # lines[i]: the item of input line i + 1 (0 where the line is framing)
    stage: int = -1  # batches of one namespace stage do not depend on each other: they may run at once

    def item_at(self, failure: CommandError) -> int:
        """The plan item whose line made the batch fail (the first one if the tool did not say)."""
        pattern = _RESTORE_LINE if self.command.tool in RESTORES else _IP_LINE
        found = pattern.search(failure.stderr)
        if found is not None and 0 < int(found[1]) <= len(self.lines) and self.lines[int(found[1]) - 1]:
            return self.lines[int(found[1]) - 1]
        if self.command.tool == "sysctl":
            for number, word in enumerate(self.command.args[1:]):
                if word.split("=")[0].replace(".", "/") in failure.stderr:
                    return self.lines[number]
        return next(item for item in self.lines if item)


def _kind(command: Command) -> tuple[str, str | None]:
    args = command.args
    if command.tool == "ip" and args and not args[0].startswith("-"):
        return ("ip", command.netns)
    if command.tool == "sysctl" and len(args) == 1 and "=" in args[0] and not args[0].startswith("-"):
        if args[0].split("=")[0].endswith(_IN_PLACE):
            return ("placed", command.netns)  # in its place: the device's IPv6 addresses need it first
        return ("sysctl", command.netns)
    if command.tool in RESTORES and command.netns is None and command.args == ("--noflush",):
        return ("rules", command.tool.removesuffix("-restore"))  # a chain's lines join its family's transaction
    if (
        command.tool in ("iptables", "ip6tables")
        and command.netns is None
        and len(args) >= 4
        and args[0] == "-t"
        and (args[2] in _IPTABLES_VERBS)
    ):
        return ("rules", command.tool)
    return ("single", command.netns)


def _stage(kind: tuple[str, str | None], removing: bool) -> int:
    tool, netns = kind
    order = {"sysctl": 2, "rules": 3}.get(tool, 1 if netns else 0)  # ip, single and placed: in their place
    return 3 - order if removing else order


def _ip_batch(steps: list[Step], netns: str | None, stage: int) -> Batch:
    text = "".join(" ".join(step.command.args) + "\n" for step in steps)
    command = Command("ip", ("-batch", "-"), netns=netns, input=text, enter=True)  # nsenter, not ip -n
    return Batch(command, tuple(step.item for step in steps), stage if netns else -1)


def _sysctl_batch(steps: list[Step], netns: str | None) -> Batch:
    command = Command("sysctl", ("-w", *(step.command.args[0] for step in steps)), netns=netns, enter=True)
    return Batch(command, tuple(step.item for step in steps))


def _restore_lines(step: Step) -> list[tuple[str, str]]:
    """``(table, line)`` for each line a step adds to the transaction."""
    command = step.command
    if command.tool in RESTORES:  # already restore input: its tables' lines, without the framing
        found: list[tuple[str, str]] = []
        table = ""
        for line in (command.input or "").splitlines():
            if line.startswith("*"):
                table = line[1:]
            elif line and line != "COMMIT" and not line.startswith("#"):
                found.append((table, line))
        return found
    table, verb, rest = command.args[1], command.args[2], command.args[3:]
    if verb == "-N":
        return [(table, f":{rest[0]} - [0:0]")]
    return [(table, " ".join([verb, *(_restore_word(word) for word in rest)]))]


def _restore_batch(steps: list[Step], tool: str = "iptables") -> Batch:
    tables: dict[str, list[tuple[str, int]]] = {}
    for step in steps:
        for table, line in _restore_lines(step):
            tables.setdefault(table, []).append((line, step.item))
    lines: list[str] = []
    items: list[int] = []
    for table, members in tables.items():
        lines.append(f"*{table}")
        items.append(0)
        for line, item in members:
            lines.append(line)
            items.append(item)
        lines.append("COMMIT")
        items.append(0)
    return Batch(Command(f"{tool}-restore", ("--noflush",), input="\n".join(lines) + "\n"), tuple(items))


def _restore_word(word: str) -> str:
    """iptables-restore splits on white space and reads double quotes; only comments may hold spaces."""
    return f'"{word}"' if " " in word else word


def batches(steps: Sequence[Step], *, removing: bool = False) -> list[Batch]:
    """Regroup ``steps`` into as few processes as their stages allow, in stage order."""
    staged: dict[int, list[tuple[tuple[str, str | None], Step]]] = {}
    for step in steps:
        kind = _kind(step.command)
        staged.setdefault(_stage(kind, removing), []).append((kind, step))
    result: list[Batch] = []
    for stage in sorted(staged):
        entries = staged[stage]
        if any(kind[0] == "rules" for kind, _ in entries):
            others = [step for kind, step in entries if kind[0] != "rules"]
            result += [Batch(step.command, (step.item,)) for step in others]
            for tool in ("iptables", "ip6tables"):  # one transaction per family
                mine = [step for kind, step in entries if kind == ("rules", tool)]
                if mine:
                    result.append(_restore_batch(mine, tool))
            continue
        # Keep each namespace's commands together, in order; a command that cannot be batched splits its run.
        places: dict[str | None, list[tuple[tuple[str, str | None], Step]]] = {}
        for kind, step in entries:
            places.setdefault(kind[1], []).append((kind, step))
        for netns, members in places.items():
            run: list[Step] = []
            run_kind = ""
            for kind, step in [*members, (("end", None), Step(0, Command("true", ())))]:
                if kind[0] != run_kind and run:
                    if run_kind == "ip":
                        result.append(_ip_batch(run, netns, stage))
                    elif run_kind in ("sysctl", "placed"):
                        result.append(_sysctl_batch(run, netns))
                    else:
                        result += [Batch(s.command, (s.item,)) for s in run]
                    run = []
                run_kind = kind[0]
                run.append(step)
    return result


def execute(steps: Sequence[Step], runner: Runner, mode: Mode, *, removing: bool = False) -> None:
    """Run ``steps`` verbatim or batched; a failure raises :class:`StepFailure` naming its plan item.

    Batched, the ``iptables-restore`` of the rules starts first and runs beside
    the other batches, building and removing alike (rules name devices, they
    do not need them); when removing, so do the settings given back (a
    device's own is never given back when the device goes). A failure stops
    what has not started yet; what runs is waited for, and the failure of the
    earliest plan item is raised.
    """
    if mode == "verbatim":
        for step in steps:
            try:
                runner.run(step.command)
            except CommandError as exc:
                raise StepFailure(step.item, exc) from exc
        return
    pending = batches(steps, removing=removing)
    parallel = getattr(runner, "concurrent", True)
    # what runs beside the rest starts first (a dry run lists it first too, so that a plan shows the order)
    pending.sort(key=lambda batch: not _beside(batch, removing))
    failures: list[tuple[int, CommandError, Batch]] = []

    def note(batch: Batch, failure: CommandError | None) -> None:
        if failure is not None:
            failures.append((batch.item_at(failure), failure, batch))

    with ThreadPoolExecutor(max_workers=2) as aside:
        beside: list[tuple[Batch, Future[CommandError | None]]] = []
        while pending and not failures:
            group = [pending.pop(0)]
            if parallel and _beside(group[0], removing):
                beside.append((group[0], aside.submit(_attempt, group[0], runner)))
                continue
            while parallel and group[0].stage >= 0 and pending and pending[0].stage == group[0].stage:
                group.append(pending.pop(0))
            if len(group) == 1:  # alone: no thread to start and wait for (a few of these run one after another)
                outcomes = [_attempt(group[0], runner)]
            else:
                with ThreadPoolExecutor(max_workers=min(PARALLEL, len(group))) as pool:
                    outcomes = list(pool.map(lambda batch: _attempt(batch, runner), group))
            for batch, failure in zip(group, outcomes, strict=True):
                note(batch, failure)
        for batch, running in beside:
            note(batch, running.result())
    if failures:
        item, failure, batch = min(failures, key=lambda found: found[0])
        raise StepFailure(item, failure, batch) from failure


PARALLEL = 4  # namespaces configured at once


def _beside(batch: Batch, removing: bool) -> bool:
    """Whether ``batch`` may run beside the device batches: the rules' transactions, and when removing the
    settings given back together (``sysctl -w``; one needed in its place runs there)."""
    command = batch.command
    return command.tool in RESTORES or (removing and command.tool == "sysctl" and command.args[:1] == ("-w",))


def _attempt(batch: Batch, runner: Runner) -> CommandError | None:
    try:
        runner.run(batch.command)
    except CommandError as exc:
        return exc
    return None


class StepFailure(Exception):
    """Internal: which plan item failed, and how (turned into a StepError by the caller)."""

    def __init__(self, item: int, cause: CommandError, batch: Batch | None = None) -> None:
        super().__init__(item)
        self.item = item
        self.cause = cause
        self.batch = batch
