"""A network namespace, the tutorial's "container", made here or a running container's, given a name."""

from __future__ import annotations

import functools
import re

import attrs

from netwrap.command import Command
from netwrap.errors import ValidationError
from netwrap.host.observe import HostState, Need
from netwrap.kinds.base import (
    NETNS,
    Assessment,
    Claim,
    Gone,
    Kind,
    conflict,
    ip_command,
    missing,
    present,
    read_command,
)

NETNS_DIR = "/run/netns"
# the host's own network namespace, as the process that reads for netwrap sees it, and as the machine's init's:
# never a container's to attach (what netwrap would build in it lands among the host's devices and routes)
HOST_NETNS = ("/proc/self/ns/net", "/proc/1/ns/net")
_PROC_NET = re.compile(r"/proc/([1-9][0-9]{0,9})/ns/net")  # whole: fullmatch


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
        if state.has_netns(self.name) and state.knows_netns(self.name):
            return present(f"namespace {self.name} exists")
        return missing(f"namespace {self.name} does not exist")

    def claims(self) -> tuple[Claim, ...]:
        return (Claim("namespace", "", self.name),)

    def takes_along(self) -> Gone:
        return Gone(namespaces=frozenset({self.name}))


def namespace_file(field: str, value: object) -> str:
    """A namespace file to attach: absolute, normalised, printable, no white space (``/proc/PID/ns/net``, or a
    bind-mounted one such as ``/run/docker/netns/ID``)."""
    if not isinstance(value, str):
        raise ValidationError(field, value, "must be a path")
    if not value.startswith("/") or len(value.encode()) > 4096:
        raise ValidationError(field, value, "must be an absolute path")
    if any(not c.isprintable() or c.isspace() for c in value):
        raise ValidationError(field, value, "must be printable, without white space")
    if any(part in (".", "..") for part in value.split("/")) or "//" in value or value.endswith("/"):
        raise ValidationError(field, value, "must be a plain path (no '.', '..', '//' or trailing '/')")
    return value


def _source(value: object) -> str:
    return namespace_file("AttachedNamespace.source", value)


@attrs.frozen
class AttachedNamespace(Kind):
    """A running container's network namespace, given a name of netwrap's own in ``/run/netns``.

    ``source`` is ``/proc/PID/ns/net`` (attached with ``ip netns attach NAME
    PID``) or any namespace file (bind-mounted there). Removing it takes the
    name away (``ip netns del NAME``): the namespace lives on while the
    container's processes do, with whatever it held before netwrap came, so
    it takes nothing along; what netwrap put inside is removed by its own
    objects first. A name that leads to another namespace than ``source`` (the
    container was restarted) is a conflict, never silently re-pointed.
    """

    name: str = attrs.field(validator=NETNS)
    source: str = attrs.field(converter=_source)

    @functools.cached_property
    def key(self) -> str:
        return f"attach:{self.name}"

    @property
    def path(self) -> str:
        return f"{NETNS_DIR}/{self.name}"

    @property
    def pid(self) -> int | None:
        found = _PROC_NET.fullmatch(self.source)
        return int(found.group(1)) if found else None

    def create_commands(self) -> tuple[Command, ...]:
        if self.pid is not None:
            return (ip_command("netns", "attach", self.name, str(self.pid)),)
        return (
            Command("mkdir", ("-p", NETNS_DIR)),
            Command("touch", (self.path,)),
            Command("mount", ("--bind", self.source, self.path)),
        )

    def plan_commands(self, state: HostState) -> tuple[Command, ...]:
        """As :meth:`create_commands`, less making ``/run/netns`` where namespaces are listed there already (or
        the folder was seen)."""
        made = self.create_commands()
        return made[1:] if self.pid is None and (state.namespaces or NETNS_DIR in state.files) else made

    def delete_commands(self) -> tuple[Command, ...]:
        return (ip_command("netns", "del", self.name),)

    def check_command(self) -> Command:
        return read_command("ip", "netns", "list")

    def needs(self) -> Need:
        return Need(listed=True, files=(self.path, self.source, *HOST_NETNS))

    def lean_needs(self) -> Need:
        """Its files and the folder of names (made once), and whether its name exists, without listing every
        namespace."""
        return Need(files=(self.path, self.source, *HOST_NETNS, NETNS_DIR), names=(self.name,))

    def removal_needs(self) -> Need:
        """The listing alone: a removal goes by the name, wherever it leads (see :meth:`shape`)."""
        return Need(listed=True)

    def trusted_removal(self) -> tuple[Command, ...] | None:
        """The name taken away, as a removal always goes by the name; from inside the namespace it names
        (``nsenter --net``, which leaves the mounts alone), so that the interfaces removed in it before and
        the name go in one process."""
        return (Command("ip", ("netns", "del", self.name), netns=self.name, enter=True),)

    def shape(self, state: HostState) -> Assessment:
        """Named, wherever the name leads (what a removal goes by)."""
        if state.knows_netns(self.name) and state.has_netns(self.name):
            return present(f"namespace {self.name} is named")
        return missing(f"namespace {self.name} is not named")

    def assess(self, state: HostState) -> Assessment:
        named, source = state.files.get(self.path), state.files.get(self.source)
        verdict = self.shape(state)
        whose = f"process {self.pid}" if self.pid is not None else self.source
        if source is None:
            gone = f"{whose} has exited" if self.pid is not None else f"{self.source} does not exist"
            if verdict.status == "present":
                return conflict(f"{gone}; its namespace is still named {self.name}: destroy removes what is left")
            return conflict(f"{gone}: there is no namespace to attach as {self.name}")
        hosts = [state.files[path] for path in HOST_NETNS if path in state.files]
        if verdict.status == "present" and named != source:
            return conflict(f"{self.name} names another namespace than {whose}'s (restarted?): destroy it first")
        if not hosts:  # never taken on trust: the host's own namespace would be wired as a container's
            return conflict(f"the host's own namespace could not be read ({HOST_NETNS[0]}): {self.source} is not "
                            "attached unchecked")  # fmt: skip
        if source in hosts:
            return conflict(f"{whose} is in the host's own network namespace: a container needs one of its own")
        if source.partition(":")[0] != hosts[0].partition(":")[0]:  # namespaces are files of nsfs
            return conflict(f"{self.source} is not a namespace file: there is no namespace to attach as {self.name}")
        if verdict.status != "present":
            return verdict
        return present(f"namespace {self.name} is {whose}'s")

    def claims(self) -> tuple[Claim, ...]:
        return (Claim("namespace", "", self.name),)

    def takes_along(self) -> Gone:
        return Gone()
