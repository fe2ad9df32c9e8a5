"""netwrap's exceptions, mapped once at the boundary where they arise.

::

    NetwrapError
     +-- ValidationError        bad input, refused when an object is built
     +-- ConflictError          the host has an object of the same name but another shape
     +-- ToolNotFoundError      a command-line tool is missing (names the Debian package)
     +-- SandboxError           a throwaway sandbox could not be made or was lost
     +-- ParseError             a tool printed something netwrap cannot read
     +-- TopologyError          a topology (or cluster) file with problems, every one named
     +-- LockTimeoutError       another netwrap held the lock for longer than the timeout
     +-- ClusterError           not every machine of a cluster was done; says what each got
     +-- CommandError           a process exited with a code its command does not expect
          +-- PermissionDeniedError   the kernel refused: not root / no CAP_NET_ADMIN
          +-- CommandTimeoutError     the process did not finish in time
          +-- TransientCommandError   a failure worth retrying (the xtables lock, a busy namespace)
          +-- StepError               a command failed at step N of a build or teardown
          +-- SshError                ssh itself failed: the machine could not be reached

Every :class:`CommandError` carries the argv, exit code, stdout and stderr.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from typing import Protocol


class NetwrapError(Exception):
    """Base class of every error netwrap raises on purpose."""


class ValidationError(NetwrapError, ValueError):
    """A value was refused before any command ran."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"{field}={value!r}: {reason}")


class ConflictError(NetwrapError):
    """The host has something under the wanted name that is not what was asked for."""


class SandboxError(NetwrapError):
    """A throwaway sandbox could not be set up, or was lost while in use."""


class ParseError(NetwrapError):
    """A tool's output was not in the expected form."""


class ToolNotFoundError(NetwrapError):
    """A tool netwrap needs is not installed."""

    def __init__(self, tool: str, package: str | None) -> None:
        self.tool = tool
        self.package = package
        hint = f"; install the Debian package {package!r} (apt-get install {package})" if package else ""
        super().__init__(f"required tool {tool!r} was not found{hint}")


class _Problem(Protocol):
    def render(self, source: str) -> str: ...


class _Done(Protocol):
    @property
    def changed(self) -> tuple[str, ...]: ...


class TopologyError(NetwrapError):
    """A topology with problems; every problem is listed, each naming the file, the table and the key."""

    def __init__(self, source: str, problems: Sequence[_Problem]) -> None:
        self.source = source
        self.problems = list(problems)
        lines = "\n".join(f"  {p.render(source)}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s):\n{lines}")


class LockTimeoutError(NetwrapError):
    """Another netwrap held the state directory's (or the host's) lock for longer than the timeout."""


class ClusterError(NetwrapError):
    """At least one machine failed; says what every machine got."""

    def __init__(self, report: Mapping[str, _Done | Exception]) -> None:
        self.report = dict(report)
        lines = [
            f"  {name}: FAILED: {str(result).splitlines()[0]}"
            if isinstance(result, Exception)
            else f"  {name}: ok ({len(result.changed)} change(s))"
            for name, result in self.report.items()
        ]
        super().__init__(
            "not every machine was done; each one's record is true, so run the same command again to finish:\n"
            + "\n".join(lines)
        )


def _display(argv: Sequence[str]) -> str:
    return " ".join(w if w == "!" else shlex.quote(w) for w in argv)


class CommandError(NetwrapError):
    """A command exited with a code that its :class:`~netwrap.command.Command` does not expect."""

    def __init__(
        self,
        argv: Sequence[str],
        returncode: int,
        stdout: str,
        stderr: str,
        message: str | None = None,
    ) -> None:
        self.argv = tuple(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.message = message or f"command failed with exit code {returncode}"
        super().__init__(str(self))

    def __str__(self) -> str:
        lines = [self.message, f"  command: {_display(self.argv)}", f"  exit code: {self.returncode}"]
        for name, output in (("stdout", self.stdout), ("stderr", self.stderr)):
            text = output.strip()
            if text:
                body = "\n".join("    " + line for line in text.splitlines())
                lines.append(f"  {name}:\n{body}")
        return "\n".join(lines)


class PermissionDeniedError(CommandError):
    """The kernel refused the change: run as root (or with CAP_NET_ADMIN)."""


class CommandTimeoutError(CommandError):
    """A command did not finish within its timeout and was killed."""


class TransientCommandError(CommandError):
    """A failure that goes away by itself (another program holds the xtables lock)."""


class StepError(CommandError):
    """A command failed in the middle of a build or teardown; says which step, and what to do next."""

    def __init__(self, step: int, total: int, key: str, cause: CommandError, advice: str) -> None:
        self.step = step
        self.total = total
        self.key = key
        self.cause = cause
        message = f"step {step} of {total} ({key}) failed: {cause.message}; {advice}"
        super().__init__(cause.argv, cause.returncode, cause.stdout, cause.stderr, message)


class SshError(CommandError):
    """ssh itself failed: the machine could not be reached or refused the login."""
