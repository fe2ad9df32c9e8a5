"""The one description of a process to run: a tool, its arguments, where it runs.

A :class:`Command` keeps its structure (tool, namespace, arguments) so that
it can be shown as the document writes it, run through any runner, and later
regrouped into batches. Shell text exists only for display.
"""

from __future__ import annotations

import shlex

import attrs

# The Debian package that provides each tool netwrap may start.
PACKAGES: dict[str, str] = {
    "ip": "iproute2",
    "bridge": "iproute2",
    "brctl": "bridge-utils",
    "iptables": "iptables",
    "iptables-save": "iptables",
    "sysctl": "procps",
    "ping": "iputils-ping",
    "nsenter": "util-linux",
    "unshare": "util-linux",
    "mount": "mount",
    "iptables-restore": "iptables",
    "ip6tables": "iptables",
    "ip6tables-save": "iptables",
    "ip6tables-restore": "iptables",
    "cat": "coreutils",
    "stat": "coreutils",
    "mkdir": "coreutils",
    "touch": "coreutils",
}


def quote(word: str) -> str:
    """Quote one word for a POSIX shell; a lone ``!`` is left bare, as the document writes it."""
    return word if word == "!" else shlex.quote(word)


NETNS_DIR = "/run/netns"  # where ip netns keeps the namespaces it names (its NETNS_RUN_DIR)


def shell_join(argv: tuple[str, ...] | list[str]) -> str:
    """Shell text for display or for a rendered script (never passed to a shell by netwrap)."""
    return " ".join(quote(word) for word in argv)


def _args(value: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen
class Command:
    """One process: ``tool args...``, optionally inside the network namespace ``netns``.

    ``enter`` runs it in ``netns`` through ``nsenter --net=/run/netns/NS`` instead of ``ip netns exec NS``
    (which ``ip -n NS`` is too): the same namespace, without copying the mount table and remounting
    ``/sys`` each time, which costs more with every namespace named on the host (batches and reads use it;
    the document's commands keep their own form).
    ``mutates`` says whether running it changes the host (checks and reads do not).
    ``ok_codes`` are the exit codes that are results, not failures: ``iptables -C``
    exiting 1 means "absent". ``input`` is fed to the process's standard input
    (the lines of an ``ip -batch -`` or an ``iptables-restore``).
    """

    tool: str
    args: tuple[str, ...] = attrs.field(converter=_args)
    netns: str | None = None
    mutates: bool = True
    ok_codes: frozenset[int] = frozenset({0})
    input: str | None = None
    enter: bool = attrs.field(default=False, kw_only=True)

    @property
    def argv(self) -> tuple[str, ...]:
        """The full argument vector, with ``ip netns exec NS`` in front when in a namespace."""
        if self.netns is None:
            return (self.tool, *self.args)
        if self.enter:
            return ("nsenter", f"--net={NETNS_DIR}/{self.netns}", "--", self.tool, *self.args)
        return ("ip", "netns", "exec", self.netns, self.tool, *self.args)

    @property
    def tools(self) -> tuple[str, ...]:
        """Every tool this command needs on the machine that runs it."""
        if self.netns is not None and self.enter:
            return ("nsenter", self.tool)
        return ("ip", self.tool) if self.netns is not None and self.tool != "ip" else (self.tool,)

    def shell(self) -> str:
        """Shell text of :attr:`argv`, quoted with :mod:`shlex`; standard input as a here-document."""
        text = shell_join(self.argv)
        if self.input is None:
            return text
        return f"{text} <<'EOF'\n{self.input.rstrip(chr(10))}\nEOF"

    def __str__(self) -> str:
        return self.shell()
