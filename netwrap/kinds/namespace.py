"""A network namespace, the tutorial's "container"."""

from __future__ import annotations

import functools

import attrs

from netwrap.command import Command
from netwrap.host.observe import HostState, Need
from netwrap.kinds.base import NETNS, Assessment, Claim, Gone, Kind, ip_command, missing, present, read_command


@attrs.frozen
class Namespace(Kind):
    """A named network namespace, the tutorial's "container": ``ip netns add NAME``.

    It lives on the host (its insides are other objects'); removing it takes
    away everything inside it.
    """

    name: str = attrs.field(validator=NETNS)

    @functools.cached_property
    def key(self) -> str:
        return f"netns:{self.name}"

    def create_commands(self) -> tuple[Command, ...]:
        return (ip_command("netns", "add", self.name),)

    def delete_commands(self) -> tuple[Command, ...]:
        return (ip_command("netns", "del", self.name),)

    def check_command(self) -> Command:
        return read_command("ip", "netns", "list")

    def needs(self) -> Need:
        return Need(listed=True)

    def assess(self, state: HostState) -> Assessment:
        if state.has_netns(self.name) and state.namespaces is not None:
            return present(f"namespace {self.name} exists")
        return missing(f"namespace {self.name} does not exist")

    def claims(self) -> tuple[Claim, ...]:
        return (Claim("namespace", "", self.name),)

    def takes_along(self) -> Gone:
        return Gone(namespaces=frozenset({self.name}))
