"""A route."""

from __future__ import annotations

import functools
from typing import Literal

import attrs

from netwrap import validate as v
from netwrap.command import Command
from netwrap.errors import ValidationError
from netwrap.host.observe import HostState, Need
from netwrap.kinds.base import (
    OPT_NAME,
    OPT_NETNS,
    Assessment,
    Device,
    Gone,
    Placed,
    conflict,
    ip_command,
    key_place,
    missing,
    present,
    read_command,
    where,
)
from netwrap.validate import IPAddress, IPNetwork


def _route_destination(value: str | IPNetwork) -> IPNetwork | Literal["default"]:
    if value == "default":
        return "default"
    return v.ip_network("Route.destination", value)


def gateway_address(value: str | IPAddress | None) -> IPAddress | None:
    return None if value is None else v.ip_address("Route.gateway", value)


@attrs.frozen
class Route(Placed):
    """A route: ``ip route add default via 172.18.0.1 dev Tveth0``."""

    destination: IPNetwork | Literal["default"] = attrs.field(converter=_route_destination)
    gateway: IPAddress | None = attrs.field(default=None, converter=gateway_address)
    device: str | None = attrs.field(default=None, validator=OPT_NAME)
    netns: str | None = attrs.field(default=None, validator=OPT_NETNS)

    def __attrs_post_init__(self) -> None:
        if self.gateway is None and self.device is None:
            raise ValidationError("Route.gateway", None, "a route needs a gateway, a device or both")

    @functools.cached_property
    def key(self) -> str:
        return f"route:{key_place(self.netns)}:{self.destination}:{self.gateway or ''}:{self.device or ''}"

    def _spec(self) -> tuple[str, ...]:
        spec: tuple[str, ...] = (str(self.destination),)
        if self.gateway is not None:
            spec += ("via", str(self.gateway))
        if self.device is not None:
            spec += ("dev", self.device)
        return spec

    def create_commands(self) -> tuple[Command, ...]:
        return (ip_command("route", "add", *self._spec(), netns=self.netns),)

    def delete_commands(self) -> tuple[Command, ...]:
        return (ip_command("route", "del", *self._spec(), netns=self.netns),)

    def check_command(self) -> Command:
        return read_command("ip", *(("-6",) if self.family == 6 else ()), "-json", "route", "show", netns=self.netns)

    @property
    def family(self) -> int:
        """4 or 6: the destination's, else the gateway's; a default route through a device alone is IPv4's (as
        ``ip route add default dev X`` makes it)."""
        if self.destination != "default":
            return self.destination.version
        return self.gateway.version if self.gateway is not None else 4

    def needs(self) -> Need:
        return Need(self.netns, facts=("routes6",) if self.family == 6 else ("routes",))

    def assess(self, state: HostState) -> Assessment:
        if self.netns is not None and not state.has_netns(self.netns):
            return missing(f"namespace {self.netns} does not exist")
        view = state.view(self.netns)
        for entry in (view.routes6 if self.family == 6 else view.routes) or ():
            if str(entry.destination) != str(self.destination):
                continue
            gateway = self.gateway is None or entry.gateway == self.gateway
            if gateway and (self.device is None or entry.device == self.device):
                return present(f"the route to {self.destination} exists")
            via = f" via {entry.gateway}" if entry.gateway else ""
            return conflict(f"a route to {self.destination}{via} dev {entry.device} already exists {where(self.netns)}")
        return missing(f"there is no route to {self.destination} {where(self.netns)}")

    def goes_with(self, gone: Gone) -> bool:
        return (self.device is not None and (self.netns, self.device) in gone.links) or super().goes_with(gone)

    def devices(self) -> frozenset[Device]:
        return frozenset({(self.netns, self.device)}) if self.device is not None else frozenset()
