"""A kernel setting, given back (not deleted) when it goes."""

from __future__ import annotations

import functools

import attrs

from netwrap import validate as v
from netwrap.command import Command
from netwrap.errors import ValidationError
from netwrap.host.observe import HostState, Need
from netwrap.kinds.base import OPT_NETNS, Assessment, Device, Gone, Placed, key_place, missing, present, read_command


def _sysctl_value(value: str | int) -> str:
    return v.sysctl_value("Sysctl.value", value)


@attrs.frozen
class Sysctl(Placed):
    """A kernel setting: ``sysctl net.ipv4.ip_forward=1``.

    Deleting a setting means putting back the value it had before; that value
    is not part of the wanted state, so :meth:`restore_commands` takes it.
    A device's setting (``net.ipv4.conf.DEV.X``) made before its device is is
    given back to what a new device starts with (``net.ipv4.conf.default.X``).
    """

    restores = True

    name: str = attrs.field(validator=v.validator(v.sysctl_key))
    value: str = attrs.field(converter=_sysctl_value)
    netns: str | None = attrs.field(default=None, validator=OPT_NETNS)

    @functools.cached_property
    def key(self) -> str:
        return f"sysctl:{key_place(self.netns)}:{self.name}"

    @property
    def device(self) -> str | None:
        """The device a ``net.ipv4.conf.DEV.X`` setting belongs to (None for a setting of the whole host)."""
        parts = self.name.split(".")
        if len(parts) < 5 or parts[2] != "conf" or parts[3] in ("default", "all"):
            return None
        return parts[3]

    @property
    def default(self) -> str | None:
        """``net.ipv4.conf.default.X`` for a device's setting: the value a new device starts with, which is what
        a setting of a device netwrap makes is given back to. None for a setting of the whole host."""
        if self.device is None:
            return None
        parts = self.name.split(".")
        return ".".join((*parts[:3], "default", *parts[4:]))

    def create_commands(self) -> tuple[Command, ...]:
        return (Command("sysctl", (f"{self.name}={self.value}",), netns=self.netns),)

    def restore_commands(self, previous: str) -> tuple[Command, ...]:
        return attrs.evolve(self, value=previous).create_commands()

    def delete_commands(self) -> tuple[Command, ...]:
        raise ValidationError("Sysctl.value", self.value, "a setting cannot be deleted; use restore_commands(previous)")

    def check_command(self) -> Command:
        return read_command("sysctl", "-n", self.name, netns=self.netns)

    def needs(self) -> Need:
        names = (self.name,) if self.default is None else (self.name, self.default)
        return Need(self.netns, settings=names)

    def assess(self, state: HostState) -> Assessment:
        current = state.sysctls.get((self.netns, self.name))
        if current == self.value:
            return present(f"{self.name} is {self.value}")
        return missing(f"{self.name} is {current if current is not None else 'unknown'}, not {self.value}")

    def remembered(self, state: HostState) -> str | None:
        seen = state.sysctls.get((self.netns, self.name))
        if seen is None and self.default is not None:
            seen = state.sysctls.get((self.netns, self.default))  # its device is not made yet: it starts so
        return seen

    def removal(self, state: HostState, previous: str | None) -> tuple[tuple[Command, ...], str | None]:
        if previous is None or state.sysctls.get((self.netns, self.name)) == previous:
            return (), None
        return self.restore_commands(previous), None

    def exists(self, state: HostState) -> bool:
        return state.sysctls.get((self.netns, self.name)) is not None

    def goes_with(self, gone: Gone) -> bool:
        return (self.netns, self.device) in gone.links or super().goes_with(gone)

    def devices(self) -> frozenset[Device]:
        return frozenset({(self.netns, self.device)}) if self.device is not None else frozenset()

    def shared(self) -> bool:
        return self.netns is None and self.device is None
