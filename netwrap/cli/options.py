"""What the command line asked for: :class:`Options`, read once from argparse's result, one default per option.

argparse leaves out every option that was not given (the parsers' ``argument_default`` is ``SUPPRESS``: an
option given before the tutorial's action then survives the action's own parser, which has it too), so the
defaults live here, in one place, each documented where it is declared, and nowhere else.
"""

from __future__ import annotations

import argparse
import math
import os
import shlex
from pathlib import Path
from typing import Literal

import attrs

from netwrap.engine.batch import Mode
from netwrap.engine.check import Check
from netwrap.engine.lock import DEFAULT_TIMEOUT
from netwrap.engine.state import DEFAULT_STATE_DIR
from netwrap.topology.model import Style

BridgeChoice = Literal["auto", "brctl", "ip"]
GraphFormat = Literal["mermaid", "dot"]
ENVIRONMENT = "NETWRAP_STATE_DIR"


def seconds(text: str) -> float:
    """A number of seconds (``--lock-timeout``): finite, and not negative."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (finite, 0 or more)")
    return value


def client(text: str) -> tuple[str, ...]:
    """The ssh client to start (``--ssh-command``), split as a shell would split it (and never run by one)."""
    try:
        words = tuple(shlex.split(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None
    if not words:
        raise argparse.ArgumentTypeError(f"{text!r} names no program")
    return words


def pid(text: str) -> int:
    """A process id (``attach --pid``)."""
    if not text.isascii() or not text.isdigit() or not 1 <= int(text[:8]) < 2**22:
        raise argparse.ArgumentTypeError(f"{text!r} is not a process id")
    return int(text)


def _words(value: object) -> tuple[str, ...]:
    return tuple(str(word) for word in value) if isinstance(value, list | tuple) else ()


@attrs.frozen(kw_only=True)
class Options:
    """Every option of every subcommand, each with its one default (a subcommand reads the ones it has).

    Built once by :meth:`read` from what argparse parsed; nothing else reads argparse's namespace.
    """

    verbose: bool = False
    """``-v``: also print the read-only checks (``# COMMAND``) and each object's standing."""
    mode: Mode | None = None
    """``--batch`` / ``--verbatim``; neither: the style of what runs decides (see :meth:`mode_for`)."""
    ssh: str | None = None
    """``--ssh [USER@]HOST``: work on that machine (None: this one)."""
    ssh_options: tuple[str, ...] = attrs.field(default=(), converter=_words)
    """``--ssh-option``, each one word for ssh."""
    ssh_command: tuple[str, ...] = ("ssh",)
    """``--ssh-command``: the ssh client, split like a shell would."""
    ssh_sudo: bool = False
    """``--ssh-sudo``: run the commands with ``sudo -n`` over there."""
    lock_timeout: float = DEFAULT_TIMEOUT
    """``--lock-timeout``: how long to wait for another netwrap using the same state directory."""
    state_dir: Path = attrs.field(factory=lambda: Path(os.environ.get(ENVIRONMENT) or DEFAULT_STATE_DIR))
    """``--state-dir``; else ``$NETWRAP_STATE_DIR``; else ``/run/netwrap``."""
    state_dir_from: str = attrs.field(
        factory=lambda: f"${ENVIRONMENT}" if os.environ.get(ENVIRONMENT) else "the default"
    )
    """Where :attr:`state_dir` came from, for messages: ``--state-dir``, ``$NETWRAP_STATE_DIR`` or the default."""
    bridge_tool: BridgeChoice = "auto"
    """``--bridge-tool``: the tutorial's bridge made with brctl, with ip, or (auto) brctl when installed."""
    file: Path | None = None
    """``-f``: the topology or cluster file."""
    check: Check = "all"
    """``--quick`` (``host``): check the host side only; otherwise read inside every namespace (``all``)."""
    json: bool = False
    """``status --json``."""
    require_up: bool = False
    """``status --check``: exit 3 unless every container is up."""
    dry_run: bool = False
    """``clean --dry-run``."""
    down: bool = False
    """``tutorial script --down``: the teardown script."""
    format: GraphFormat = "mermaid"
    """``graph --format``."""
    container: str = ""
    """``exec``'s container."""
    words: tuple[str, ...] = attrs.field(default=(), converter=_words)
    """``exec``: words after the container that are no option (refused: the command goes after ``--``)."""
    command: tuple[str, ...] | None = None
    """What follows the first ``--`` of the command line (``exec``'s command); None without ``--``."""
    pid: int | None = None
    """``attach --pid``: the running container's process."""
    netns_path: str | None = None
    """``attach --netns-path``: the running container's namespace file."""
    networks: tuple[str, ...] = attrs.field(default=(), converter=_words)
    """``attach --network``, in order (the first one's is the default route and the published ports)."""
    publish: tuple[str, ...] = attrs.field(default=(), converter=_words)
    """``attach -p``: ports to publish, as in a topology file."""
    name: str | None = None
    """``attach``/``detach --name``: the attached container's name in the topology."""

    @classmethod
    def read(cls, parsed: argparse.Namespace, command: tuple[str, ...] | None = None) -> Options:
        """The options argparse found (the ones not given take their defaults here)."""
        names = attrs.fields_dict(cls)
        given = {name: value for name, value in vars(parsed).items() if name in names}
        if "state_dir" in given:
            given["state_dir_from"] = "--state-dir"
        return cls(**given, command=command)

    def mode_for(self, style: Style) -> Mode:
        """``--batch`` or ``--verbatim`` when given; otherwise the style's own: a document (the tutorial, or a
        file with ``style = "document"``) runs verbatim, command by command, and a docker-style one batched."""
        if self.mode is not None:
            return self.mode
        return "verbatim" if style == "document" else "batch"
