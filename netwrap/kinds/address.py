"""An address with its prefix on a device."""

from __future__ import annotations

import functools

import attrs

from netwrap import validate as v
from netwrap.command import Command
from netwrap.host.observe import HostState, Need
from netwrap.kinds.base import (
    NAME,
    OPT_NETNS,
    Assessment,
    Claim,
    OnDevice,
    conflict,
    ip_command,
    key_place,
    missing,
    present,
    read_command,
    where,
)
from netwrap.validate import IPInterface


def _address(value: str | IPInterface) -> IPInterface:
    return v.ip_interface("Address.address", value)


@attrs.frozen
class Address(OnDevice):
    """An address with its prefix on ``device``: ``ip addr add 172.18.0.2/24 dev Tveth0``."""

    device: str = attrs.field(validator=NAME)
    address: IPInterface = attrs.field(converter=_address)
    netns: str | None = attrs.field(default=None, validator=OPT_NETNS)

    @functools.cached_property
    def key(self) -> str:
        return f"addr:{key_place(self.netns)}:{self.device}:{self.address}"

    def create_commands(self) -> tuple[Command, ...]:
        """``ip addr add``; an IPv6 address with ``nodad``, usable at once (netwrap gives each address once)."""
        nodad = ("nodad",) if self.address.version == 6 else ()
        return (ip_command("addr", "add", str(self.address), "dev", self.device, *nodad, netns=self.netns),)

    def delete_commands(self) -> tuple[Command, ...]:
        return (ip_command("addr", "del", str(self.address), "dev", self.device, netns=self.netns),)

    def check_command(self) -> Command:
        return read_command("ip", "-json", "addr", "show", netns=self.netns)

    def needs(self) -> Need:
        return Need(self.netns, facts=("addresses",))

    def lean_needs(self) -> Need:
        """Its device's addresses, and the devices that hold its address (another one's is a conflict)."""
        ip = self.address.ip
        return Need(self.netns, facts=("addresses",), devices=(self.device,), holders=(f"{ip}/{ip.max_prefixlen}",))

    def assess(self, state: HostState) -> Assessment:
        if self.netns is not None and not state.has_netns(self.netns):
            return missing(f"namespace {self.netns} does not exist")
        found = state.view(self.netns).addresses or ()
        if (self.device, self.address) in found:
            return present(f"{self.address} is on {self.device}")
        for device, address in found:
            if address.ip == self.address.ip:
                return conflict(f"{self.address.ip} is already on {device} {where(self.netns)}, not on {self.device}")
        return missing(f"{self.address} is not on {self.device}")

    def claims(self) -> tuple[Claim, ...]:
        """On the host, its network: no other record may use an overlapping one."""
        if self.netns is None and self.address.network.prefixlen < self.address.max_prefixlen:
            return (Claim("subnet", "", str(self.address.network)),)
        return ()
