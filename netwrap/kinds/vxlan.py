"""A VXLAN device for an overlay between machines, and its forwarding entries."""

from __future__ import annotations

import functools
import re
from typing import ClassVar

import attrs

from netwrap import validate as v
from netwrap.command import Command
from netwrap.errors import ValidationError
from netwrap.host.observe import HostState, Need
from netwrap.kinds.base import (
    NAME,
    OPT_MTU,
    OPT_NAME,
    OPT_NETNS,
    Assessment,
    NamedDevice,
    OnDevice,
    ip_command,
    key_place,
    missing,
    present,
    set_mtu,
    where,
    wrong_mtu,
)
from netwrap.validate import IPAddress


def _local(value: object) -> IPAddress:
    return v.ip_address("Vxlan.local", value)


def _dst(value: object) -> IPAddress:
    return v.ip_address("FdbEntry.dst", value)


@attrs.frozen
class Vxlan(NamedDevice):
    """A VXLAN device for an overlay between machines: ``ip link add NAME type vxlan id VNI local IP ...``.

    Unicast only (``nolearning``): the peers are listed with :class:`FdbEntry`.
    ``mtu`` leaves room for the 50 bytes of encapsulation.
    """

    name: str = attrs.field(validator=NAME)
    vni: int
    local: IPAddress = attrs.field(converter=_local)
    port: int = attrs.field(default=4789, validator=v.validator(v.port))
    device: str | None = attrs.field(default=None, validator=OPT_NAME)
    mtu: int | None = attrs.field(default=None, validator=OPT_MTU)
    netns: str | None = attrs.field(default=None, validator=OPT_NETNS)
    device_kind: ClassVar[str] = "vxlan"

    def __attrs_post_init__(self) -> None:
        if isinstance(self.vni, bool) or not isinstance(self.vni, int) or not 0 < self.vni < 2**24:
            raise ValidationError("Vxlan.vni", self.vni, "must be a VXLAN id from 1 to 16777215")

    @functools.cached_property
    def key(self) -> str:
        return f"vxlan:{key_place(self.netns)}:{self.name}"

    def create_commands(self) -> tuple[Command, ...]:
        mtu = ("mtu", str(self.mtu)) if self.mtu is not None else ()
        dev = ("dev", self.device) if self.device is not None else ()
        args = ("link", "add", self.name, *mtu, "type", "vxlan", "id", str(self.vni), "local", str(self.local),
                "dstport", str(self.port), "nolearning", *dev)  # fmt: skip
        return (ip_command(*args, netns=self.netns),)

    def delete_commands(self) -> tuple[Command, ...]:
        return (ip_command("link", "del", self.name, netns=self.netns),)

    def assess(self, state: HostState) -> Assessment:
        verdict = self.shape(state)
        wrong = wrong_mtu(self.mtu, self.devices(), state) if verdict.status == "present" else []
        if wrong:
            return missing(f"{self.name} exists {where(self.netns)} with MTU {wrong[0][1]}, not {self.mtu}")
        return verdict

    def plan_commands(self, state: HostState) -> tuple[Command, ...]:
        """Made whole, or, made already, its MTU set."""
        if self.mtu is not None and wrong_mtu(self.mtu, self.devices(), state):
            return set_mtu(self.mtu, self.devices())
        return self.create_commands()

    def shape(self, state: HostState) -> Assessment:
        """The device as made, whatever its MTU."""
        return super().assess(state)


@attrs.frozen
class FdbEntry(OnDevice):
    """A forwarding entry of a VXLAN device: frames for ``mac`` go to the peer ``dst``.

    The all-zero MAC floods broadcasts and unknown destinations to every listed peer.
    """

    device: str = attrs.field(validator=NAME)
    dst: IPAddress = attrs.field(converter=_dst)
    mac: str = "00:00:00:00:00:00"
    netns: str | None = attrs.field(default=None, validator=OPT_NETNS)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.mac, str) or not re.fullmatch(r"(?:[0-9a-f]{2}:){5}[0-9a-f]{2}", self.mac):
            raise ValidationError("FdbEntry.mac", self.mac, "must be a MAC address like 00:00:00:00:00:00")

    @functools.cached_property
    def key(self) -> str:
        return f"fdb:{key_place(self.netns)}:{self.device}:{self.mac}:{self.dst}"

    def create_commands(self) -> tuple[Command, ...]:
        return (
            Command("bridge", ("fdb", "append", self.mac, "dev", self.device, "dst", str(self.dst)), netns=self.netns),
        )

    def delete_commands(self) -> tuple[Command, ...]:
        return (
            Command("bridge", ("fdb", "del", self.mac, "dev", self.device, "dst", str(self.dst)), netns=self.netns),
        )

    def check_command(self) -> Command:
        return Command("bridge", ("-json", "fdb", "show"), netns=self.netns, mutates=False)

    def needs(self) -> Need:
        return Need(self.netns, fdb=True)

    def assess(self, state: HostState) -> Assessment:
        if (self.device, self.mac, str(self.dst)) in state.fdb.get(self.netns, ()):
            return present(f"{self.device} sends {self.mac} to {self.dst}")
        return missing(f"{self.device} has no entry for {self.mac} to {self.dst}")
