"""Reads started ahead: a runner with some read commands already running, which hands over their results when
exactly those commands are asked for.

A CNI ADD spends its first milliseconds in Python (the leases, composing the
network, the record) before it knows what to read; the host's reads it makes
are the same from one call to the next. So the plugin starts last time's
host reads as soon as it holds the locks, and its check, asking for the same
commands a little later, gets their results (or their errors) as they would
have come. What is not asked for is waited for and dropped; what was not
started runs as usual. Only reads of the host are taken: never a command that
changes something, nor one inside a namespace (a container's come and go).
Once a command that changes something has run, nothing started before it is
handed out: it may show the host as it was (a removal that runs before the
build, say), and is read again when asked.

A read of one call's own paths (the identities of the container's namespace
file and of the name netwrap gives it) is kept with those paths as
placeholders (``particulars``), and the next call starts it with its own.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import attrs

from netwrap.command import Command
from netwrap.host.runner import Result, Runner

READS = frozenset({"ip", "iptables-save", "ip6tables-save", "iptables", "ip6tables", "sysctl", "bridge", "stat"})


def worth_starting(command: Command) -> bool:
    """A read of the host by one of the tools whose reads a check makes."""
    return not command.mutates and command.netns is None and command.tool in READS


@attrs.define
class Prefetching:
    """Runs commands through ``inner``; those started ahead are answered from what they gave."""

    inner: Runner
    _pending: dict[Command, Future[Result]] = attrs.field(factory=dict)
    _pool: ThreadPoolExecutor | None = None
    asked: list[Command] = attrs.field(factory=list)  # the host's reads asked for, in order: next time's
    _lock: threading.Lock = attrs.field(factory=threading.Lock)

    @property
    def concurrent(self) -> bool:
        return bool(getattr(self.inner, "concurrent", True))

    def start(self, commands: Iterable[Command]) -> None:
        """Start ``commands`` (those :func:`worth_starting`, once each) beside whatever runs next."""
        wanted = list(dict.fromkeys(c for c in commands if worth_starting(c) and c not in self._pending))
        if not wanted:
            return
        self._pool = self._pool or ThreadPoolExecutor(max_workers=len(wanted), thread_name_prefix="prefetch")
        for command in wanted:
            self._pending[command] = self._pool.submit(self.inner.run, command)

    def run(self, command: Command) -> Result:
        if worth_starting(command):
            self.asked.append(command)
        with self._lock:
            if command.mutates:  # the host changes: what was read before may be out of date (the pool still
                self._pending.clear()  # waits for it at close: no process outlives the call)
                started = None
            else:
                started = self._pending.pop(command, None)
        if started is not None:
            return started.result()  # its result, or the error it raised, as if run now
        return self.inner.run(command)

    def close(self) -> None:
        """Wait for what was started and not asked for (no process outlives the call) and drop it."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self._pending.clear()


def save(path: Path, commands: Sequence[Command], particulars: Mapping[str, str] | None = None) -> None:
    """Keep ``commands`` (the host's reads) for the next call; a file that cannot be written is no error.
    ``particulars``: this call's own values (by name): an argument that is one is kept as its name."""
    names = {value: _mark(name) for name, value in (particulars or {}).items()}
    kept = [_describe(c, names) for c in dict.fromkeys(commands) if worth_starting(c)]
    try:
        temporary = path.with_name(f"{path.name}.tmp")
        temporary.write_text(json.dumps(kept), encoding="utf-8")
        temporary.replace(path)
    except OSError:
        pass


def load(path: Path, particulars: Mapping[str, str] | None = None) -> list[Command]:
    """The reads kept by :func:`save`, with this call's ``particulars`` in place of the last one's; none when
    the file is missing or not as :func:`save` writes it, and not one that names a particular not given."""
    values = {_mark(name): value for name, value in (particulars or {}).items()}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        commands = [_command(entry, values) for entry in data]
    except (OSError, ValueError, TypeError, KeyError):
        return []
    return [c for c in commands if c is not None and worth_starting(c)]


def _mark(name: str) -> str:
    """A particular's place in a kept argument: NUL-delimited, which no argument of a process can hold."""
    return f"\0{name}\0"


def _describe(command: Command, names: Mapping[str, str]) -> dict[str, Any]:
    text = command.input
    for value, mark in names.items():  # a batch's lines name a particular too (a device read by its name)
        text = _swap(text, value, mark)
    return {"tool": command.tool, "args": [names.get(a, a) for a in command.args], "input": text,
            "enter": command.enter, "ok_codes": sorted(command.ok_codes)}  # fmt: skip


def _swap(text: str | None, old: str, new: str) -> str | None:
    """``text`` with each word that is ``old`` (between white space) made ``new``."""
    if text is None or old not in text:
        return text
    return re.sub(rf"(?<!\S){re.escape(old)}(?!\S)", lambda _: new, text)


def _command(entry: dict[str, Any], values: Mapping[str, str]) -> Command | None:
    if not isinstance(entry, dict) or not isinstance(entry["tool"], str) or not isinstance(entry["args"], list):
        raise TypeError("not a command")
    text = entry["input"]
    codes = entry["ok_codes"]
    if text is not None and not isinstance(text, str):
        raise TypeError("input")
    if not isinstance(codes, list) or not all(isinstance(c, int) for c in codes):
        raise TypeError("ok_codes")
    args = [values.get(str(a), str(a)) for a in entry["args"]]
    for mark, value in values.items():
        text = _swap(text, mark, value)
    if any("\0" in a for a in args) or (text is not None and "\0" in text):
        return None  # a particular of the last call that this one does not have
    return Command(entry["tool"], tuple(args), mutates=False, input=text, ok_codes=frozenset(codes),
                   enter=bool(entry["enter"]))  # fmt: skip
