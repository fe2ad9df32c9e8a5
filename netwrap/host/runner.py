"""The only place where netwrap starts a process.

A runner has one method, ``run(Command) -> Result``. :class:`SubprocessRunner`
starts real processes (argv lists, never a shell, ``LC_ALL=C``, tools pinned
from the system directories, a timeout) and maps failures to netwrap's errors;
:class:`RecordingRunner` runs nothing and records what would run;
:class:`EchoRunner` shows each command, as ``set -x`` does, before passing it on.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import tenacity

import attrs

from netwrap.command import PACKAGES, Command
from netwrap.errors import (
    CommandError,
    CommandTimeoutError,
    PermissionDeniedError,
    ToolNotFoundError,
    TransientCommandError,
)

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_PERMISSION_MARKERS = (
    "Operation not permitted",
    "Permission denied",
    "you must be root",
    "must be run as root",
)
_TRANSIENT_MARKERS = (
    "xtables lock",
    "Resource temporarily unavailable",
    "Device or resource busy",
    "Could not fetch rule set generation id",  # nf_tables: another program changed the rule set meanwhile
)


@attrs.frozen
class Result:
    """What a command did: its exit code and both outputs."""

    command: Command
    returncode: int
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        """Exit code 0."""
        return self.returncode == 0


class Runner(Protocol):
    """Runs one command and returns its result, or raises a :class:`~netwrap.errors.NetwrapError`."""

    def run(self, command: Command) -> Result: ...


def find_tool(tool: str) -> str | None:
    """The absolute path of ``tool`` in the system directories (the caller's PATH is ignored).

    A path found is kept for the life of the process (a search costs a dozen
    ``stat`` calls, and a batch of reads runs hundreds of commands); a tool not
    found is searched again next time, so that installing it is seen at once.
    """
    found = _FOUND.get(tool)
    if found is None:
        found = shutil.which(tool, path=SYSTEM_PATH)
        if found is not None:
            _FOUND[tool] = found
    return found


_FOUND: dict[str, str] = {}


def require_tools(commands: Iterable[Command], resolve: Callable[[str], str | None] | None = None) -> None:
    """Raise :class:`ToolNotFoundError` for the first tool that ``commands`` need and this host lacks.

    Run it before a sequence of changes, so that a missing tool stops the work
    before the first change instead of half-way through.
    """
    lookup = resolve or find_tool
    for command in commands:
        for tool in command.tools:
            if lookup(tool) is None:
                raise ToolNotFoundError(tool, PACKAGES.get(tool))


def classify(argv: tuple[str, ...], returncode: int, stdout: str, stderr: str) -> CommandError:
    """Turn a failed process into the most precise :class:`CommandError`.

    The message decides before the exit code: iptables exits 4 for the xtables
    lock (transient), for "you must be root" (permission) and for a lack of
    memory or a kernel module (neither); exit 2 means it rejected its arguments.
    """
    text = stderr + stdout
    if any(marker in text for marker in _PERMISSION_MARKERS):  # before the transient ones: never retried
        return PermissionDeniedError(
            argv,
            returncode,
            stdout,
            stderr,
            "permission denied: netwrap must run as root (or with CAP_NET_ADMIN) to change the network",
        )
    if any(marker in text for marker in _TRANSIENT_MARKERS):
        return TransientCommandError(argv, returncode, stdout, stderr, "a lock is held by another program")
    tool = argv[0].rsplit("/", 1)[-1] if argv else ""
    if tool.startswith("iptables") and returncode == 2:
        return CommandError(argv, returncode, stdout, stderr, "iptables did not accept the rule as written (exit 2)")
    if tool.startswith("iptables") and returncode == 4:
        return CommandError(argv, returncode, stdout, stderr, "iptables could not get a resource it needs (exit 4)")
    return CommandError(argv, returncode, stdout, stderr)


HOST_RUN = Path("/run")  # this machine's /run, as this process sees it (tests point it elsewhere)


def host_run() -> Path:
    """This machine's ``/run``: where its list of state directories and its host-wide lock are kept."""
    return HOST_RUN


@attrs.define
class SubprocessRunner:
    """Runs commands as real processes.

    ``prefix`` goes in front of every argv (``("sudo", "--")``, or ``nsenter``
    into a sandbox). Transient failures (the xtables lock) are retried up to
    ``attempts`` times, waiting ``wait`` seconds at first and doubling; tests set
    ``wait=0``. Permission errors and bad input are never retried. ``resolve``
    finds a tool's path (tests pass one that keeps the bare name). ``run_dir``
    is where the ``/run`` of the machine the commands reach can be read from
    this process (this machine's own by default; see :func:`run_dir_of`).
    """

    prefix: tuple[str, ...] = ()
    timeout: float = 30.0
    attempts: int = 5
    wait: float = 0.2
    resolve: Callable[[str], str | None] | None = None
    run_dir: Path | None = attrs.field(factory=host_run, kw_only=True)
    _retrying: tuple[tuple[int, float], tenacity.Retrying] | None = attrs.field(
        default=None, init=False, repr=False, eq=False
    )

    def _resolve(self, command: Command) -> tuple[str, ...]:
        lookup = self.resolve or find_tool
        require_tools([command], lookup)
        argv = (*self.prefix, *command.argv)
        head = lookup(argv[0])
        if head is None:
            raise ToolNotFoundError(argv[0], PACKAGES.get(argv[0]))
        return (head, *argv[1:])

    def _run_once(self, command: Command) -> Result:
        argv = self._resolve(command)
        shown = (*self.prefix, *command.argv)
        try:
            proc = subprocess.run(
                argv,
                input=command.input,
                stdin=subprocess.DEVNULL if command.input is None else None,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=self.timeout,
                env={"LC_ALL": "C", "PATH": SYSTEM_PATH},
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise CommandTimeoutError(
                shown, -1, _text(exc.stdout), _text(exc.stderr), f"command timed out after {self.timeout:g} s"
            ) from None
        except FileNotFoundError:
            raise ToolNotFoundError(argv[0], PACKAGES.get(command.tool)) from None
        except PermissionError as exc:
            raise PermissionDeniedError(shown, -1, "", str(exc), f"cannot execute {argv[0]}") from None
        if proc.returncode not in command.ok_codes:
            raise classify(shown, proc.returncode, proc.stdout, proc.stderr)
        return Result(command, proc.returncode, proc.stdout, proc.stderr)

    def run(self, command: Command) -> Result:
        try:
            return self._run_once(command)
        except TransientCommandError:
            if self.attempts <= 1:
                raise
        # a transient failure (xtables lock, busy namespace): wait, then the other attempts, backing off
        time.sleep(self.wait)
        result: Result = self._retry_policy()(self._run_once, command)
        return result

    def _retry_policy(self) -> tenacity.Retrying:
        # Built once per setting (tenacity keeps each call's state apart, per thread), and imported only when a
        # command fails for a passing reason: a run that never retries does not load it.
        import tenacity  # noqa: PLC0415

        settings = (self.attempts, self.wait)
        if self._retrying is None or self._retrying[0] != settings:
            policy = tenacity.Retrying(
                retry=tenacity.retry_if_exception_type(TransientCommandError),
                stop=tenacity.stop_after_attempt(self.attempts - 1),
                wait=tenacity.wait_exponential(multiplier=self.wait, min=self.wait, max=max(self.wait, 2.0)),
                reraise=True,
            )
            self._retrying = (settings, policy)
        return self._retrying[1]


def _text(data: str | bytes | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


Responder = Callable[[Command], "Result | None"]


@attrs.define
class RecordingRunner:
    """Runs nothing; records each command and answers with a canned result.

    ``responses`` maps an argv tuple to ``(returncode, stdout)``; anything else
    answers exit 0 with no output, so a dry run sees an empty host.
    """

    responses: Mapping[tuple[str, ...], tuple[int, str]] = attrs.field(factory=dict)
    commands: list[Command] = attrs.field(factory=list)
    concurrent: bool = False

    def run(self, command: Command) -> Result:
        self.commands.append(command)
        code, out = self.responses.get(command.argv, (0, ""))
        if code not in command.ok_codes:
            raise classify(command.argv, code, out, "")
        return Result(command, code, out, "")

    @property
    def mutating(self) -> list[Command]:
        """The recorded commands that would change the host."""
        return [c for c in self.commands if c.mutates]


@attrs.define
class DryRunner:
    """Runs reads for real and records changes without running them: what an operation *would* do.

    Not ``concurrent``: batches are recorded one after another, so a plan lists
    them in a stable order.
    """

    inner: Runner
    changes: list[Command] = attrs.field(factory=list)
    concurrent: bool = False

    def run(self, command: Command) -> Result:
        if command.mutates:
            self.changes.append(command)
            return Result(command, 0, "", "")
        return self.inner.run(command)


@attrs.define
class EchoRunner:
    """Writes ``+ COMMAND`` before each mutating command (``# COMMAND`` for reads when verbose)."""

    inner: Runner
    write: Callable[[str], None]
    verbose: bool = False

    def run(self, command: Command) -> Result:
        if command.mutates:
            self.write(f"+ {command.shell()}")
        elif self.verbose:
            self.write("\n".join(f"# {line}" for line in command.shell().splitlines()))
        return self.inner.run(command)


def run_dir_of(runner: Runner) -> Path | None:
    """Where the ``/run`` of the machine ``runner`` reaches can be read from this process, looking through
    runners that wrap another (``inner``); None when no runner says (another machine over SSH, a fake)."""
    seen: object = runner
    while seen is not None:
        found = getattr(seen, "run_dir", None)
        if isinstance(found, Path):
            return found
        seen = getattr(seen, "inner", None)
    return None


def is_root() -> bool:
    """Whether this process runs with uid 0."""
    return os.geteuid() == 0
