"""What the command line prints, and how: its two streams, a plan, a status table or document, exit codes."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from typing import TextIO

import attrs

from netwrap.topology.apply import ContainerStatus, render_status

EXIT_OK, EXIT_ERROR, EXIT_CHANGES, EXIT_DEGRADED = 0, 1, 2, 3
EXIT_USAGE = 64  # a command line netwrap cannot read (sysexits' EX_USAGE): never 2, which is plan's "changes"
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143  # 128 + SIGINT, 128 + SIGTERM


class Output:
    """One of the command line's streams (its standard output, or its standard error).

    Each block of text is one call of the stream's ``write``, made under a lock: blocks that several threads
    write at once (the batches of several namespaces, each echoed as it starts) come out whole, one after
    the other, never mixed on one line. A reader that went away (``netwrap status --json | head -1``) is no
    error and stops no run half-way: what is written after it is dropped, and the command ends as it would
    have (``broken`` says that it happened).
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.broken = False
        self._lock = threading.Lock()

    def write(self, text: str) -> None:
        """Write ``text`` as it is, whole (and flush it: a line shows as soon as it is written)."""
        if not text:
            return
        with self._lock:
            if self.broken:
                return
            try:
                self.stream.write(text)
                self.stream.flush()
            except BrokenPipeError:
                self.broken = True

    def line(self, text: str = "") -> None:
        """Write ``text`` and a newline, whole."""
        self.write(f"{text}\n")

    def isatty(self) -> bool:
        try:
            return self.stream.isatty()
        except (OSError, ValueError):
            return False


@attrs.frozen
class Streams:
    """Where a command writes: its results (``out``), and its messages (``err``)."""

    out: Output
    err: Output


@attrs.frozen
class PlanReport:
    """What a plan found, as any plan prints it (the tutorial's, a file's, a cluster's).

    ``title`` starts the closing message (``plan``, ``plan NAME``); ``commands`` are the commands to run, as
    shell text; ``nothing`` and ``summary`` close a plan with nothing to do or with something;
    ``described`` is each object's standing (printed with ``-v``), and ``conflicts`` what stops an apply.
    """

    title: str
    commands: Sequence[str]
    noop: bool
    summary: str
    nothing: str = "nothing to do"
    described: Sequence[str] = ()
    conflicts: Sequence[str] = ()


def print_plan(report: PlanReport, streams: Streams, *, verbose: bool) -> int:
    """Print a plan; its exit code: 0 nothing to do, 2 something, 1 conflicts."""
    if verbose:
        for line in report.described:
            streams.out.line(f"# {line}")
    for command in report.commands:
        streams.out.line(command)
    for conflict in report.conflicts:
        streams.err.line(f"netwrap: conflict: {conflict}")
    if report.conflicts:
        return EXIT_ERROR
    if report.noop:
        streams.err.line(f"netwrap: {report.title}: {report.nothing}")
        return EXIT_OK
    streams.err.line(f"netwrap: {report.title}: {report.summary}")
    return EXIT_CHANGES


def print_status(
    rows: Sequence[ContainerStatus], streams: Streams, *, kind: str, name: str, as_json: bool, require_up: bool
) -> int:
    """Print each container's state, as a table or (``as_json``) as ``{KIND: NAME, "containers": [...]}``; the
    exit code: 3 when ``require_up`` and a container is not up, else 0."""
    if as_json:
        streams.out.line(json.dumps({kind: name, "containers": [row.to_json() for row in rows]}, indent=2))
    else:
        streams.out.line(render_status(list(rows)))
    return EXIT_DEGRADED if require_up and not all(row.up for row in rows) else EXIT_OK
