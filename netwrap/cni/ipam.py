"""The plugin's address management: one lease per attachment, kept on disk and changed under a lock.

Like the reference ``host-local``: the leases of a network live in
``DATA_DIR/NETWORK/leases.json`` (``dataDir``, by default
``/var/lib/netwrap/cni``), so they survive the plugin's process and the
machine's restarts; every operation holds ``DATA_DIR/NETWORK/.lock``, so
parallel ADDs of different containers never get one address; a DEL frees the
address. The lease also keeps what else the attachment was given (its
namespace file and port mappings), which is what the network's topology is
built from (see :mod:`netwrap.cni.plugin`).
"""

from __future__ import annotations

import functools
import ipaddress
import json
import os
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import attrs

from netwrap.cni.spec import DECODE_FAILURE, FAILED, IO_FAILURE, TRY_AGAIN_LATER, CniError, PortMapping
from netwrap.engine.lock import StateLock
from netwrap.engine.state import check_private, read_private, replace_file
from netwrap.errors import LockTimeoutError, NetwrapError
from netwrap.topology.compose import IPAddress, host_of, lowest_free

FORMAT = 1


@attrs.frozen(cache_hash=True)  # the key of the warm helper's caches: hashed once
class Lease:
    """An attachment ``(container_id, ifname)`` and what it was given."""

    container_id: str
    ifname: str
    address: ipaddress.IPv4Address
    netns: str
    ports: tuple[PortMapping, ...] = ()
    identity: str = ""  # what netns led to when it was added: BOOT DEVICE:INODE (see plugin.identity)
    address6: ipaddress.IPv6Address | None = None  # on a dual-stack network

    @property
    def attachment(self) -> tuple[str, str]:
        return (self.container_id, self.ifname)

    def to_json(self) -> dict[str, Any]:
        return {
            "containerID": self.container_id,
            "ifname": self.ifname,
            "address": str(self.address),
            "netns": self.netns,
            "ports": [[p.host_ip, p.host_port, p.container_port, p.protocol] for p in self.ports],
            "identity": self.identity,
        } | ({"address6": str(self.address6)} if self.address6 is not None else {})

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Lease:
        ports = tuple(PortMapping(int(hp), int(cp), str(proto), str(ip)) for ip, hp, cp, proto in data["ports"])
        return cls(
            str(data["containerID"]), str(data["ifname"]), ipaddress.IPv4Address(data["address"]),
            str(data["netns"]), ports, str(data.get("identity", "")),
            ipaddress.IPv6Address(data["address6"]) if data.get("address6") else None,
        )  # fmt: skip


@functools.lru_cache(maxsize=16384)
def _encoded(lease: Lease) -> str:
    """A lease as its line of the file (a frozen value: encoded once while a helper keeps it)."""
    return json.dumps(lease.to_json())


# per lease file: the text this process last read or wrote there, and the leases it holds (frozen values), so that
# a warm helper's next call decodes nothing when nobody changed the file since
_READ: dict[Path, tuple[str, tuple[Lease, ...]]] = {}


class Leases:
    """``with Leases(data_dir, network) as leases:`` -- locked and loaded; :meth:`save` writes them back."""

    def __init__(self, data_dir: str | Path, network: str, timeout: float = 60.0) -> None:
        self.folder = Path(data_dir) / network
        self.path = self.folder / "leases.json"
        self._lock = StateLock(self.folder, timeout=timeout)
        self.leases: list[Lease] = []

    def __enter__(self) -> Leases:
        _ready(self.folder)
        try:
            self._lock.__enter__()
        except LockTimeoutError as exc:
            raise CniError(TRY_AGAIN_LATER, str(exc)) from None  # passing: the runtime may call again
        except NetwrapError as exc:
            raise CniError(IO_FAILURE, str(exc)) from None
        except OSError as exc:
            raise CniError(IO_FAILURE, f"cannot use {self.folder}: {exc.strerror or exc}") from None
        try:
            self.leases = self.read()
        except BaseException:
            self._lock.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._lock.__exit__(exc_type, exc, tb)

    def read(self) -> list[Lease]:
        """The leases on disk: a file that is no regular file of the running user's, or that others may
        write, is refused (what it says is done as root), and read through the descriptor that was checked."""
        try:
            text = read_private(self.path, "CNI lease file")
        except NetwrapError as exc:
            raise CniError(IO_FAILURE, str(exc)) from None
        if text is None:
            return []
        known = _READ.get(self.path)
        if known is not None and known[0] == text:
            return list(known[1])  # as this process last read or wrote it (a warm helper's next call)
        try:
            data = json.loads(text)
            if data.get("format") != FORMAT:
                raise ValueError(f"format {data.get('format')!r}, not {FORMAT}")
            leases = [Lease.from_json(item) for item in data["leases"]]
            _READ[self.path] = (text, tuple(leases))
            return leases
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CniError(DECODE_FAILURE, f"{self.path} is damaged: {exc}", "move it away to start afresh") from None

    def save(self) -> None:
        # one lease per line, each encoded by json's C encoder (indent= would take the pure-Python one), once
        leases = ",\n".join(_encoded(lease) for lease in self.leases)
        text = (
            f'{{"format": {FORMAT}, "leases": [\n{leases}\n]}}\n'
            if leases
            else f'{{"format": {FORMAT}, "leases": []}}\n'
        )
        try:
            replace_file(self.path, text, durable=True)
        except OSError as exc:
            _READ.pop(self.path, None)
            raise CniError(IO_FAILURE, f"cannot write {self.path}: {exc.strerror or exc}") from None
        _READ[self.path] = (text, tuple(self.leases))

    def find(self, container_id: str, ifname: str) -> Lease | None:
        return next((x for x in self.leases if x.attachment == (container_id, ifname)), None)

    def take(
        self,
        *,
        container_id: str,
        ifname: str,
        netns: str,
        ports: Iterable[PortMapping],
        subnet: ipaddress.IPv4Network,
        gateway: ipaddress.IPv4Address,
        identity: str = "",
        subnet6: ipaddress.IPv6Network | None = None,
        gateway6: ipaddress.IPv6Address | None = None,
        requested: Iterable[IPAddress] = (),
    ) -> Lease:
        """The attachment's lease: the one it has (an ADD repeated keeps its addresses), else the lowest free
        host address of ``subnet`` that is not the gateway (and of ``subnet6``, after its gateway); an address
        ``requested`` (one per family, checked by the configuration) instead, unless another attachment has it.
        No address left, or the one asked for taken: an error that says so."""
        asked = {address.version: address for address in requested}
        mine = self.find(container_id, ifname)
        if mine is not None and (asked.get(4, mine.address) != mine.address or (
            6 in asked and asked[6] != mine.address6)):  # fmt: skip
            self.leases.remove(mine)  # asked for other addresses than it has: it takes those
            mine = None
        fits6 = subnet6 is None or (
            mine is not None and mine.address6 is not None and host_of(subnet6, mine.address6)
            and mine.address6 != gateway6
        )  # fmt: skip
        if mine is not None and host_of(subnet, mine.address) and mine.address != gateway and fits6:
            lease = attrs.evolve(mine, netns=netns, ports=tuple(ports), identity=identity)
            self.leases[self.leases.index(mine)] = lease
            return lease
        if mine is not None:
            self.leases.remove(mine)
        used: set[IPAddress] = {x.address for x in self.leases}
        used.add(gateway)
        for address in asked.values():
            holder = next((x for x in self.leases if address in (x.address, x.address6)), None)
            if holder is not None:
                raise CniError(FAILED, f"{address} is leased to {holder.container_id}/{holder.ifname} already")
        kept = mine.address if mine is not None and host_of(subnet, mine.address) and mine.address not in used else None
        free = asked.get(4) or kept or lowest_free(subnet, used)
        if free is None:
            raise CniError(FAILED, f"no free address left in {subnet} ({len(self.leases)} leases)")
        free6 = None
        if subnet6 is not None:
            used6: set[IPAddress] = {x.address6 for x in self.leases if x.address6 is not None}
            if gateway6 is not None:
                used6.add(gateway6)
            free6 = asked.get(6) or lowest_free(subnet6, used6)
            if free6 is None:
                raise CniError(FAILED, f"no free address left in {subnet6} ({len(self.leases)} leases)")
        lease = Lease(
            container_id, ifname, cast("ipaddress.IPv4Address", free), netns, tuple(ports), identity,
            cast("ipaddress.IPv6Address | None", free6),
        )  # fmt: skip
        self.leases.append(lease)
        return lease

    def drop(self, container_id: str, ifname: str) -> Lease | None:
        """Free the attachment's address (nothing to free is no error: a DEL may come twice)."""
        mine = self.find(container_id, ifname)
        if mine is not None:
            self.leases.remove(mine)
        return mine

    def keep_only(self, valid: Iterable[tuple[str, str]]) -> list[Lease]:
        """GC: drop every lease whose attachment is not in ``valid``; the dropped ones."""
        keep = set(valid)
        dropped = [x for x in self.leases if x.attachment not in keep]
        self.leases = [x for x in self.leases if x.attachment in keep]
        return dropped


def fitted(
    leases: Iterable[Lease],
    subnet: ipaddress.IPv4Network,
    gateway: ipaddress.IPv4Address,
    subnet6: ipaddress.IPv6Network | None = None,
    gateway6: ipaddress.IPv6Address | None = None,
) -> list[Lease]:
    """The leases as the network's configuration now gives them: one that an edit of it left with an address
    outside ``subnet`` (or its gateway), or without an IPv6 address of ``subnet6``, takes the lowest free one, in
    the order of the leases (the order a first ADD of each would have given them); on a network without IPv6,
    none has one. A running container is never left off its network because its configuration changed."""
    leases = list(leases)
    fours = _fitted([x.address for x in leases], subnet, gateway)
    sixes = _fitted([x.address6 for x in leases], subnet6, gateway6) if subnet6 is not None else [None] * len(leases)
    return [
        x if (x.address, x.address6) == (four, six) else attrs.evolve(x, address=four, address6=six)
        for x, four, six in zip(leases, fours, sixes, strict=True)
    ]


def _fitted(
    addresses: list[Any], subnet: ipaddress.IPv4Network | ipaddress.IPv6Network, gateway: IPAddress | None
) -> list[Any]:
    """``addresses`` where each is a host address of ``subnet``, not ``gateway``, and the first of its value;
    the others replaced by the lowest free ones, in order."""
    keeps: set[int] = set()  # the first of two holding one keeps it (a hand-edited file)
    used: set[IPAddress] = {gateway} if gateway is not None else set()
    for number, address in enumerate(addresses):
        if address is not None and host_of(subnet, address) and address not in used:
            keeps.add(number)
            used.add(address)
    result = []
    for number, address in enumerate(addresses):
        if number in keeps:
            result.append(address)
            continue
        free = lowest_free(subnet, used)
        if free is None:
            raise CniError(FAILED, f"no free address left in {subnet} ({len(addresses)} leases)")
        used.add(free)
        result.append(free)
    return result


def usable(data_dir: str | Path, network: str) -> None:
    """The network's data directory can be used (made, private, writable) and its leases read, checked without
    the lock; a :class:`CniError` that says why not."""
    folder = Path(data_dir) / network
    _ready(folder)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CniError(IO_FAILURE, f"{folder} cannot be written")
    Leases(data_dir, network).read()


def _ready(folder: Path) -> None:
    """The network's data directory, made if missing (0700) and checked private; a :class:`CniError` (code 5)
    that says why it cannot be used."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        check_private(folder, "CNI data directory")
    except NetwrapError as exc:
        raise CniError(IO_FAILURE, str(exc)) from None
    except (FileExistsError, NotADirectoryError):
        raise CniError(IO_FAILURE, f"cannot use {folder}: a file is in the way of the directory") from None
    except OSError as exc:
        raise CniError(IO_FAILURE, f"cannot use {folder}: {exc.strerror or exc}") from None


def read_leases(data_dir: str | Path, network: str) -> list[Lease]:
    """The leases as they stand, read without the lock and changing nothing (none when there are none)."""
    folder = Path(data_dir) / network
    if not folder.exists():
        return []
    try:
        check_private(folder, "CNI data directory")
    except NetwrapError as exc:
        raise CniError(IO_FAILURE, str(exc)) from None
    reader = Leases(data_dir, network)
    return reader.read()  # the same reader, without the lock
