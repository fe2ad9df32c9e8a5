"""Reach another machine through OpenSSH: the same objects and plans, another runner.

:class:`SshRunner` runs each command on the far side as one shell word list
quoted with :mod:`shlex` (ssh hands the remote shell a single string, so every
argument is quoted and none can become shell syntax there), under
``env LC_ALL=C PATH=<system directories>``, and with ``sudo -n`` when the login
is not root. Standard input (batches) goes through ssh as it is.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Iterable, Sequence

import attrs

from netwrap.command import PACKAGES, Command
from netwrap.errors import CommandError, NetwrapError, SshError, ToolNotFoundError, ValidationError
from netwrap.host.runner import SYSTEM_PATH, Result, SubprocessRunner

_NAME = re.compile(r"[A-Za-z0-9._-]+")  # a user, or a host's name
_IPV6 = re.compile(r"[0-9A-Fa-f:.]+(?:%[A-Za-z0-9._-]+)?")  # an IPv6 address, with its scope (fe80::1%eth0)
SSH_FAILED = 255


# ssh settings that run a local program or load local code: a file may not set them (the command line may)
LOCAL_PROGRAMS = frozenset(
    {"proxycommand", "localcommand", "permitlocalcommand", "knownhostscommand", "match", "include",
     "pkcs11provider", "securitykeyprovider"}
)  # fmt: skip


def local_program_option(words: Sequence[str]) -> str | None:
    """The first of ``words`` (ssh's arguments) that would make ssh run a local program or load local code
    (``-oProxyCommand=...``, ``-o LocalCommand=...``, ``-I`` a PKCS#11 library), or None."""
    for number, word in enumerate(words):
        if word.startswith("-I"):
            return word
        if word.startswith("-o"):
            setting = word[2:] or (words[number + 1] if number + 1 < len(words) else "")
            key = setting.replace("=", " ").split(maxsplit=1)[0].lower() if setting.strip() else ""
            if key in LOCAL_PROGRAMS:
                return setting if word == "-o" else word
    return None


def _words(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _ipv6(text: str) -> bool:
    if not _IPV6.fullmatch(text):
        return False
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _unbracket(value: str) -> str:
    """``[USER@]HOST`` as ssh takes it: an IPv6 address written in brackets (``root@[::1]``, as in a URL) loses
    them; ssh would take them for part of the host's name (it takes brackets only in ``ssh://`` URLs)."""
    if not isinstance(value, str):
        return value
    user, at, host = value.rpartition("@")
    if host.startswith("[") and host.endswith("]") and _ipv6(host[1:-1]):
        return f"{user}{at}{host[1:-1]}"
    return value


def _destination(instance: object, attribute: object, value: str) -> None:
    user, at, host = value.rpartition("@")
    known = (not at or _NAME.fullmatch(user)) and (_NAME.fullmatch(host) or _ipv6(host))
    if not known or value.startswith("-"):
        raise ValidationError(
            "SshRunner.destination", value,
            "must be [USER@]HOST (no spaces, no leading '-'; an IPv6 address with or without brackets)",
        )  # fmt: skip


@attrs.define
class SshRunner:
    """Runs commands on ``destination`` (``[user@]host``) through ``ssh``.

    ``ssh`` is the local command that starts the client (``("ssh",)`` by default;
    a test may put ``nsenter ... --`` in front), ``options`` go to it (``-p 2222``,
    ``-i KEY``, ``-o ...``); ``sudo`` runs each command as ``sudo -n`` on the far side.
    """

    destination: str = attrs.field(converter=_unbracket, validator=_destination)
    options: tuple[str, ...] = attrs.field(default=(), converter=_words)
    ssh: tuple[str, ...] = attrs.field(default=("ssh",), converter=_words)
    sudo: bool = False
    timeout: float = 60.0
    local: SubprocessRunner = attrs.field(init=False)
    concurrent: bool = True

    def __attrs_post_init__(self) -> None:
        self.local = SubprocessRunner(timeout=self.timeout)

    def remote_command(self, command: Command) -> str:
        """The one string the remote shell runs: every word quoted."""
        words: tuple[str, ...] = ("env", "LC_ALL=C", f"PATH={SYSTEM_PATH}", *command.argv)
        if self.sudo:
            words = ("sudo", "-n", "--", *words)
        return shlex.join(words)

    def wrap(self, command: Command) -> Command:
        """The local ssh process that runs ``command`` over there."""
        args = (*self.ssh[1:], "-o", "BatchMode=yes", *self.options, "--", self.destination)
        return Command(
            self.ssh[0],
            (*args, self.remote_command(command)),
            mutates=command.mutates,
            ok_codes=command.ok_codes,
            input=command.input,
        )

    def run(self, command: Command) -> Result:
        try:
            result = self.local.run(self.wrap(command))
        except CommandError as exc:
            if exc.returncode == SSH_FAILED and command.ok_codes.isdisjoint({SSH_FAILED}) and not exc.stdout:
                raise SshError(
                    exc.argv, exc.returncode, exc.stdout, exc.stderr,
                    f"ssh could not run the command on {self.destination}",
                ) from None  # fmt: skip
            if exc.returncode == 127 and "No such file or directory" in exc.stderr:
                raise ToolNotFoundError(command.tool, PACKAGES.get(command.tool)) from None
            message = f"on {self.destination}: {exc.message}"
            raise type(exc)(command.argv, exc.returncode, exc.stdout, exc.stderr, message) from None
        return Result(command, result.returncode, result.stdout, result.stderr)


def parse_destination(text: str) -> str:
    """Check a ``[user@]host`` given on the command line; returns it as ssh takes it (an IPv6 address without
    brackets)."""
    try:
        return SshRunner(text).destination
    except ValidationError as exc:
        raise NetwrapError(f"--ssh {text!r}: {exc.reason}") from None
