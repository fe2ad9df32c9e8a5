"""Machines for labs and tests: throwaway sandboxes joined by an underlay switch.

``with Lab(["a", "b", "c"]) as lab:`` gives three sandboxes, each standing in
for a machine (its own network namespace and its own ``/run/netns``, so each
has its own containers), and a fourth holding a bridge, the switch, with a
veth to each machine: ``under0`` with 192.0.2.11, .12, .13/24 (TEST-NET-1).
:meth:`Lab.machines` gives them as :class:`~netwrap.topology.multihost.Machine` for a
:class:`~netwrap.topology.multihost.Cluster`. Everything disappears with the lab.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Sequence
from types import TracebackType

from netwrap.command import Command
from netwrap.host.sandbox import Sandbox
from netwrap.topology.multihost import Machine
from netwrap.validate import interface_name

UNDERLAY = ipaddress.IPv4Network("192.0.2.0/24")
DEVICE = "under0"


class Lab:
    """Sandboxed machines on one underlay; use as a context manager (needs root)."""

    def __init__(self, names: Sequence[str], first_address: int = 11) -> None:
        for name in names:
            interface_name("Lab.names", f"s-{name}")
        self.names = tuple(names)
        self.addresses = {name: UNDERLAY[first_address + i] for i, name in enumerate(names)}
        self.boxes: dict[str, Sandbox] = {}
        self.switch: Sandbox | None = None
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> Lab:
        try:
            self.switch = self._stack.enter_context(Sandbox())
            for name in self.names:
                self.boxes[name] = self._stack.enter_context(Sandbox())
            run = self.switch.runner.run
            run(Command("ip", ("link", "add", "sw", "type", "bridge")))
            run(Command("ip", ("link", "set", "sw", "up")))
            for name, box in self.boxes.items():
                end = f"s-{name}"
                run(Command("ip", ("link", "add", end, "type", "veth", "peer", "name", DEVICE, "netns", str(box.pid))))
                run(Command("ip", ("link", "set", end, "master", "sw", "up")))
                box.runner.run(Command("ip", ("addr", "add", f"{self.addresses[name]}/24", "dev", DEVICE)))
                box.runner.run(Command("ip", ("link", "set", DEVICE, "up")))
        except BaseException:
            self._stack.close()
            raise
        return self

    def machines(self) -> tuple[Machine, ...]:
        return tuple(Machine(name, self.addresses[name], DEVICE, box.runner) for name, box in self.boxes.items())

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stack.close()
