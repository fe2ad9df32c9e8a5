"""Read what a host has, in bulk: one read per namespace and kind of fact.

:func:`observe` looks at what a list of objects needs (which namespaces, which
facts) and reads each fact once: ``ip netns list``; per namespace one ``ip -d
-json -batch -`` for its links, addresses and routes; ``iptables -t TABLE -S``
for one iptables table, one ``iptables-save`` for several; one ``sysctl`` per
namespace for its settings. The number of processes grows with the number of
namespaces, not of objects, and the reads run a few at a time. Where ``ip`` has
no ``-json`` (old iproute2), the ``ip -o`` text forms are read instead.
:func:`reads_for` says what would be read and :func:`read` reads it, so that a
set of reads can be kept and repeated (see :mod:`netwrap.topology.verified`).
A read may be lean (a record check's first, see :mod:`netwrap.engine.check`):
the links and addresses of a few devices by name and of whoever holds some
addresses (:func:`read_devices`), and whether some namespace names exist by
their files, instead of every device and the listing of every namespace.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

import attrs

from netwrap.command import NETNS_DIR, Command
from netwrap.errors import CommandError
from netwrap.host import parse
from netwrap.host.runner import Runner, classify
from netwrap.validate import IPInterface

T = TypeVar("T")
HOST: str | None = None
_NO_JSON = 'Option "-json" is unknown'
# ip's and nsenter's words for a name that leads to no namespace (gone, or a file that is none: what the name's
# own object then judges, as a conflict)
_NO_NETNS = ("Cannot open network namespace", f"cannot open {NETNS_DIR}/", "reassociate to namespace")
_NO_SETTING = "cannot stat /proc/sys/"


@attrs.frozen
class NetnsView:
    """What one network namespace holds; ``None`` for a fact that was not read."""

    links: tuple[parse.Link, ...] | None = None
    addresses: tuple[tuple[str, IPInterface], ...] | None = None
    routes: tuple[parse.RouteEntry, ...] | None = None
    routes6: tuple[parse.RouteEntry, ...] | None = None  # IPv6's main table (ip -6 route show)

    def link(self, name: str) -> parse.Link | None:
        return self._by_name.get(name)

    @functools.cached_property
    def _by_name(self) -> dict[str, parse.Link]:
        # a plan looks devices up by name hundreds of times: index them once (the first of a name wins)
        index: dict[str, parse.Link] = {}
        for link in self.links or ():
            index.setdefault(link.name, link)
        return index


_UNREAD = NetnsView()


@attrs.frozen
class HostState:
    """A host as observed: named namespaces, a view per namespace read, iptables tables, sysctls.

    ``rules`` and ``chains`` hold, per table read, its rules and its user chains.

    ``namespaces`` is None when it was not read (then every namespace an object
    names is assumed to exist, and a missing one reads as empty).
    """

    namespaces: tuple[str, ...] | None = None
    netns_ids: Mapping[int, str] = attrs.field(factory=dict)
    views: Mapping[str | None, NetnsView] = attrs.field(factory=dict)
    fdb: Mapping[str | None, tuple[tuple[str, str, str | None], ...]] = attrs.field(factory=dict)
    rules: Mapping[str, tuple[parse.IptablesRule, ...]] = attrs.field(factory=dict)
    chains: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)
    sysctls: Mapping[tuple[str | None, str], str] = attrs.field(factory=dict)
    files: Mapping[str, str] = attrs.field(factory=dict)  # path: "DEVICE:INODE" of what it leads to, if it exists
    name_ids: Mapping[str, int] = attrs.field(factory=dict)  # namespace name: its id, where listed with one
    named: Mapping[str, bool] = attrs.field(factory=dict)  # unlisted, whether a namespace name exists (its file)
    _rule_index: dict[str, frozenset[tuple[str, tuple[str, ...]]]] = attrs.field(
        factory=dict, init=False, eq=False, repr=False
    )

    def has_rule(self, table: str, chain: str, words: tuple[str, ...]) -> bool:
        """Whether ``table`` lists ``-A CHAIN WORDS`` (by a set built once per table)."""
        index = self._rule_index.get(table)
        if index is None:
            index = frozenset((rule.chain, rule.words) for rule in self.rules.get(table, ()))
            self._rule_index[table] = index
        return (chain, words) in index

    def merged(self, inside: HostState) -> HostState:
        """This state with what ``inside`` read in namespaces (views, settings, forwarding entries) added."""
        return attrs.evolve(
            self,
            views={**self.views, **{k: v for k, v in inside.views.items() if k is not None}},
            fdb={**self.fdb, **{k: v for k, v in inside.fdb.items() if k is not None}},
            sysctls={**self.sysctls, **{k: v for k, v in inside.sysctls.items() if k[0] is not None}},
        )

    def has_netns(self, name: str) -> bool:
        if self.namespaces is None:
            return self.named.get(name, True)
        return name in self._namespace_set

    def knows_netns(self, name: str) -> bool:
        """Whether it was read if a namespace of this name exists (listed, or its file looked at)."""
        return self.namespaces is not None or name in self.named

    @functools.cached_property
    def _namespace_set(self) -> frozenset[str]:
        return frozenset(self.namespaces or ())

    def view(self, netns: str | None) -> NetnsView:
        return self.views.get(netns, _UNREAD)

    def same_netns(self, one: str | None, other: str | None) -> bool:
        """Whether two names (None: the host) name one namespace: equal, or listed with one id."""
        if one == other:
            return True
        if one is None or other is None:
            return False
        nsid = self.name_ids.get(one)
        return nsid is not None and nsid == self.name_ids.get(other)

    def peer_netns(self, link: parse.Link) -> str | None:
        """The namespace a veth's peer is in, named by the listing (None when it is the same or not told)."""
        if link.peer_netns is not None or link.peer_netnsid is None:
            return link.peer_netns
        return self.netns_ids.get(link.peer_netnsid)

    def peer_name(self, link: parse.Link, netns: str | None) -> tuple[str | None, str] | None:
        """Where a veth's peer is and its name, when the observation can tell."""
        if link.peer is not None:
            return netns, link.peer
        if link.peer_index is None:
            return None
        where = self.peer_netns(link)
        if where is not None and where not in self.views:  # read under another of its names?
            where = next((name for name in self.views if name is not None and self.same_netns(name, where)), None)
        if where is None:
            return None
        match = next((x for x in self.views[where].links or () if x.index == link.peer_index), None)
        return (where, match.name) if match is not None else None


def _read(runner: Runner, args: tuple[str, ...], netns: str | None, tool: str = "ip") -> str:
    return runner.run(Command(tool, args, netns=netns, mutates=False, enter=True)).stdout


def _ip(
    runner: Runner,
    netns: str | None,
    *,
    json_args: tuple[str, ...],
    text_args: tuple[str, ...],
    from_json: Callable[[str], list[T]],
    from_text: Callable[[str], list[T]],
) -> tuple[T, ...]:
    """Read with ``ip -json``; fall back to the text form where ``-json`` is unknown or ignored."""
    try:
        out = _read(runner, json_args, netns)
    except CommandError as exc:
        if _NO_JSON not in exc.stderr + exc.stdout:
            raise
        return tuple(from_text(_read(runner, text_args, netns)))
    if out.strip() and not out.lstrip().startswith("["):
        return tuple(from_text(_read(runner, text_args, netns)))
    return tuple(from_json(out))


def read_identities(runner: Runner, paths: Sequence[str]) -> dict[str, str]:
    """``{path: "DEVICE:INODE"}`` of what each path leads to (two namespace files are one namespace when these
    are equal), in one ``stat``; a path that does not exist is left out."""
    command = Command(
        "stat", ("-L", "--printf", "%d:%i %n\\n", "--", *paths), mutates=False, ok_codes=frozenset({0, 1})
    )
    return parse.identities(runner.run(command).stdout)


def read_entries(runner: Runner, paths: Sequence[str]) -> set[str]:
    """Which of ``paths`` exist as entries of their folders, whatever they are or lead to (a link that leads
    nowhere too, as ``ip netns list`` lists it), in one ``stat`` that follows nothing."""
    command = Command("stat", ("--printf", "%n\\n", "--", *paths), mutates=False, ok_codes=frozenset({0, 1}))
    return {line for line in runner.run(command).stdout.splitlines() if line in paths}


def read_links(runner: Runner, netns: str | None) -> tuple[parse.Link, ...]:
    return _ip(
        runner,
        netns,
        json_args=("-d", "-json", "link", "show"),
        text_args=("-o", "-d", "link", "show"),
        from_json=parse.links,
        from_text=parse.links_text,
    )


def read_addresses(runner: Runner, netns: str | None) -> tuple[tuple[str, IPInterface], ...]:
    return _ip(
        runner,
        netns,
        json_args=("-json", "addr", "show"),
        text_args=("-o", "addr", "show"),
        from_json=parse.addresses,
        from_text=parse.addresses_text,
    )


def read_routes(runner: Runner, netns: str | None, family: tuple[str, ...] = ()) -> tuple[parse.RouteEntry, ...]:
    """The main table's routes (``family=("-6",)``: IPv6's, which ``ip route show`` leaves out)."""
    return _ip(
        runner,
        netns,
        json_args=(*family, "-json", "route", "show"),
        text_args=(*family, "route", "show"),
        from_json=parse.routes,
        from_text=parse.routes_text,
    )


READERS = 8  # namespaces read at once
_SHOW = {"links": "link show", "addresses": "addr show", "routes": "route show"}


def _json_arrays(text: str) -> list[Any]:
    """``[...][...]`` (what ``ip -json -batch`` prints), decoded, one value per command; [] if it is not that."""
    decoder = json.JSONDecoder()
    found: list[Any] = []
    at = 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at >= len(text):
            return found
        try:
            value, at = decoder.raw_decode(text, at)
        except json.JSONDecodeError:
            return []
        found.append(value)


_GONE = re.compile(r'Device "[^"]*" does not exist\.|Command failed -:\d+')


def read_devices(
    runner: Runner, netns: str | None, facts: tuple[str, ...], devices: Sequence[str], holders: Sequence[str]
) -> NetnsView | None:
    """Of the links and addresses of one namespace, only those of ``devices`` and the devices that hold an
    address of ``holders``, in one process (``ip -d -json -force -batch -``: a device that does not exist is
    left out); None where ``ip`` has no ``-json`` (then the whole view is read)."""
    show = "addr show" if "addresses" in facts else "link show"
    lines = "".join([f"addr show to {held}\n" for held in holders] + [f"{show} dev {name}\n" for name in devices])
    batch = Command("ip", ("-d", "-json", "-force", "-batch", "-"), netns=netns, mutates=False, input=lines,
                    enter=True, ok_codes=frozenset({0, 1}))  # fmt: skip
    try:
        done = runner.run(batch)
    except CommandError as exc:
        if _NO_JSON in exc.stderr + exc.stdout:
            return None
        raise
    if done.returncode != 0 and any(line and not _GONE.fullmatch(line) for line in done.stderr.splitlines()):
        raise classify(batch.argv, done.returncode, done.stdout, done.stderr)  # more than a device not there
    if done.stdout.strip() and not done.stdout.lstrip().startswith("["):
        return None  # -json ignored
    found: list[Any] = []
    for part in _json_arrays(done.stdout):
        for item in part if isinstance(part, list) else ():
            held = item.get("addr_info") if isinstance(item, dict) else None
            # `addr show to` lists a device's other addresses as empty entries: only its matches count
            found.append({**item, "addr_info": [a for a in held if a != {}]} if isinstance(held, list) else item)
    return NetnsView(
        links=tuple(parse.links(found)),
        addresses=tuple(parse.addresses(found)) if "addresses" in facts else None,
    )


def read_view(
    runner: Runner,
    netns: str | None,
    facts: tuple[str, ...],
    devices: Sequence[str] | None = None,
    holders: Sequence[str] = (),
) -> NetnsView:
    """The facts of one namespace in one process (``ip -d -json [-n NS] -batch -``), or fact by fact
    where ``ip`` has no ``-json``. ``devices``: of links and addresses, only those devices' and those of the
    devices holding an address of ``holders`` (see :func:`read_devices`)."""
    if not facts:
        return NetnsView()
    per_device = tuple(f for f in facts if f in ("links", "addresses"))
    if devices is not None and per_device:
        view = read_devices(runner, netns, per_device, devices, holders)
        if view is not None:
            rest = read_view(runner, netns, tuple(f for f in facts if f not in per_device))
            return attrs.evolve(rest, links=view.links, addresses=view.addresses)
    if "routes6" in facts:  # `ip -batch` takes no -6 per line: a process of its own, only where asked
        view = read_view(runner, netns, tuple(f for f in facts if f != "routes6"))
        return attrs.evolve(view, routes6=read_routes(runner, netns, ("-6",)))
    # `ip -d addr show` lists every device as `ip -d link show` does, with its addresses: one dump serves both
    asked = tuple(f for f in facts if not (f == "links" and "addresses" in facts))
    shows = "".join(f"{_SHOW[f]}\n" for f in asked)
    batch = Command("ip", ("-d", "-json", "-batch", "-"), netns=netns, mutates=False, input=shows, enter=True)
    parts: list[Any] = []
    try:
        parts = _json_arrays(runner.run(batch).stdout)
    except CommandError as exc:
        if _NO_JSON not in exc.stderr + exc.stdout:
            raise
    if len(parts) == len(asked):
        got = dict(zip(asked, parts, strict=True))
        if "links" in facts and "links" not in got:
            got["links"] = got["addresses"]
        return NetnsView(
            links=tuple(parse.links(got["links"])) if "links" in got else None,
            addresses=tuple(parse.addresses(got["addresses"])) if "addresses" in got else None,
            routes=tuple(parse.routes(got["routes"])) if "routes" in got else None,
        )
    return NetnsView(
        links=read_links(runner, netns) if "links" in facts else None,
        addresses=read_addresses(runner, netns) if "addresses" in facts else None,
        routes=read_routes(runner, netns) if "routes" in facts else None,
    )


def read_sysctls(runner: Runner, netns: str | None, names: Sequence[str]) -> dict[str, str]:
    """The values of ``names`` in one namespace, in one process; a setting that does not exist is left out.

    One setting is read with ``sysctl -n NAME``; several with ``sysctl -e A B
    ...``, which prints ``name = value`` for each that exists (``-e``: and
    nothing for one that does not, such as a device's before the device is made).
    """
    if len(names) > 1:
        values = parse.sysctl_values(_read(runner, ("-e", *names), netns, tool="sysctl"))
        return {name: values[name.replace("/", ".")] for name in names if name.replace("/", ".") in values}
    try:
        out = _read(runner, ("-n", *names), netns, tool="sysctl")
    except CommandError as exc:
        if _NO_SETTING not in exc.stderr:
            raise
        return {}
    return {names[0]: parse.sysctl_value(out)}


def _tolerate_missing_netns(netns: str | None, future: Future[T]) -> T | None:
    """A read's result; None where the namespace went away between the listing and the read."""
    try:
        return future.result()
    except CommandError as exc:
        if netns is None or not any(marker in exc.stderr for marker in _NO_NETNS):
            raise
        return None


_ALL_FACTS = ("links", "addresses", "routes")  # what reading a whole namespace reads
_FACTS = (*_ALL_FACTS, "routes6")  # what an object may ask for


@attrs.frozen
class Reads:
    """What to read: per place (None: the host) the facts of its view, its settings and forwarding entries;
    the iptables tables; whether to list the namespaces, and whether to read all of every one listed."""

    views: tuple[tuple[str | None, tuple[str, ...]], ...] = ()
    settings: tuple[tuple[str | None, tuple[str, ...]], ...] = ()
    fdb: tuple[str | None, ...] = ()
    tables: tuple[str, ...] = ()
    listed: bool = False
    every_namespace: bool = False
    files: tuple[str, ...] = ()  # whose identity (device:inode, through links) to read: namespace files
    # per place whose links and addresses are read only in part: those devices, and the holders of addresses
    devices: tuple[tuple[str | None, tuple[str, ...], tuple[str, ...]], ...] = ()
    names: tuple[str, ...] = ()  # unlisted, the namespace names whose existence is read (by their files)

    @property
    def host_only(self) -> bool:
        """Whether nothing is read inside a namespace."""
        places = [p for p, _ in self.views] + [p for p, _ in self.settings] + list(self.fdb)
        return not self.every_namespace and all(p is None for p in places)

    def to_json(self) -> dict[str, Any]:
        return {
            "views": [[place, list(facts)] for place, facts in self.views],
            "settings": [[place, list(names)] for place, names in self.settings],
            "fdb": list(self.fdb),
            "tables": list(self.tables),
            "listed": self.listed,
            "every_namespace": self.every_namespace,
            "files": list(self.files),
            "devices": [[place, list(names), list(held)] for place, names, held in self.devices],
            "names": list(self.names),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Reads:
        """The reads :meth:`to_json` wrote (a TypeError or ValueError for anything else)."""

        def places(pairs: list[list[Any]]) -> tuple[tuple[str | None, tuple[str, ...]], ...]:
            return tuple((place, tuple(str(x) for x in items)) for place, items in pairs)

        return cls(
            places(data["views"]),
            places(data["settings"]),
            tuple(data["fdb"]),
            tuple(str(t) for t in data["tables"]),
            bool(data["listed"]),
            bool(data["every_namespace"]),
            tuple(str(path) for path in data.get("files", ())),
            tuple(
                (place, tuple(str(x) for x in names), tuple(str(x) for x in held))
                for place, names, held in data.get("devices", ())
            ),
            tuple(str(name) for name in data.get("names", ())),
        )


@attrs.frozen
class Need:
    """What judging one object needs read: facts of the view of namespace ``netns`` (None: the host), settings
    there, its forwarding entries, an iptables table, and whether the namespaces must be listed."""

    netns: str | None = None
    facts: tuple[str, ...] = ()  # of "links", "addresses", "routes", "routes6"
    settings: tuple[str, ...] = ()
    fdb: bool = False
    table: str | None = None
    listed: bool = False
    files: tuple[str, ...] = ()  # whose identity to read (see HostState.files)
    devices: tuple[str, ...] | None = None  # of the facts links and addresses, only these devices' (None: all)
    holders: tuple[str, ...] = ()  # and the devices holding one of these addresses (``IP/LEN``), with devices
    names: tuple[str, ...] = ()  # namespace names whose existence to know, without listing them all


class Needy(Protocol):
    """Anything that says what must be read to judge it (every object: see :mod:`netwrap.kinds`)."""

    def needs(self) -> Need: ...


def reads_for(objects: Sequence[Needy], *, all_namespaces: bool = False, skip: Collection[str] = ()) -> Reads:
    """What :func:`observe` reads for ``objects`` (nothing inside the namespaces in ``skip``)."""
    needs = [obj.needs() for obj in objects]
    where: dict[str, set[str | None]] = {fact: set() for fact in _FACTS}
    for need in needs:
        for fact in need.facts:
            where[fact].add(need.netns)
    places = set().union(*where.values())
    if all_namespaces:
        places.add(HOST)
    views = tuple(
        (netns, tuple(f for f in _FACTS if netns in where[f] or (all_namespaces and f in _ALL_FACTS)))
        for netns in sorted(places - set(skip), key=lambda p: (p is not None, p or ""))
    )
    partly: dict[str | None, tuple[dict[str, None], dict[str, None]]] = {}  # ordered sets: devices, holders
    whole: set[str | None] = set()
    for need in needs:
        if not any(f in ("links", "addresses") for f in need.facts):
            continue
        if need.devices is None or all_namespaces:
            whole.add(need.netns)
            continue
        some, held = partly.setdefault(need.netns, ({}, {}))
        some.update(dict.fromkeys(need.devices))
        held.update(dict.fromkeys(need.holders))
    devices = tuple(
        (place, tuple(some), tuple(held))
        for place, (some, held) in sorted(partly.items(), key=lambda x: (x[0] is not None, x[0] or ""))
        if place not in whole and place not in skip
    )
    settings: dict[str | None, list[str]] = {}
    for need in needs:
        if need.settings and need.netns not in skip:
            names = settings.setdefault(need.netns, [])
            names += [name for name in need.settings if name not in names]
    fdb = {need.netns for need in needs if need.fdb} - set(skip)
    return Reads(
        views=views,
        settings=tuple((netns, tuple(names)) for netns, names in settings.items()),
        fdb=tuple(sorted(fdb, key=lambda p: p or "")),
        tables=tuple(sorted({need.table for need in needs if need.table is not None})),
        listed=all_namespaces or any(need.listed for need in needs),
        every_namespace=all_namespaces,
        files=tuple(sorted({path for need in needs for path in need.files})),
        devices=devices,
        names=tuple(sorted({name for need in needs for name in need.names})),
    )


def observe(
    runner: Runner, objects: Sequence[Needy], *, all_namespaces: bool = False, skip: Collection[str] = ()
) -> HostState:
    """Read, once each, the facts that ``objects`` need (everything, in every namespace, with ``all_namespaces``).

    Nothing is read inside the namespaces in ``skip`` (they are still listed).
    """
    return read(runner, reads_for(objects, all_namespaces=all_namespaces, skip=skip))


def _namespaces(
    listing: Future[str] | None, entries: Future[set[str]] | None, looked_up: Mapping[str, str]
) -> tuple[tuple[str, ...] | None, dict[int, str], dict[str, int], dict[str, bool]]:
    """The namespaces as listed (their names, ids by name and names by id), or None; and, unlisted, whether each
    name of ``looked_up`` exists (by its entry in the folder of names)."""
    if listing is not None:
        text = listing.result()
        return tuple(parse.netns_names(text)), parse.netns_ids(text), parse.netns_name_ids(text), {}
    found = entries.result() if entries is not None else set()
    return None, {}, {}, {name: path in found for name, path in looked_up.items()}


def read(runner: Runner, reads: Reads) -> HostState:
    """Do ``reads``, a few at a time (``READERS``): the host's and the iptables tables' at once with the
    namespace listing, then one per namespace (one that does not exist is not entered)."""
    if reads == Reads():
        return HostState()  # nothing to read: no process, and no threads to start and wait for
    wanted_views = dict(reads.views)
    partly = {place: (names, held) for place, names, held in reads.devices}
    settings = dict(reads.settings)
    with ThreadPoolExecutor(max_workers=READERS) as pool:
        listing = pool.submit(_read, runner, ("netns", "list"), None) if reads.listed else None
        # a namespace name asked for without the listing: whether its entry in the folder of names exists
        looked_up = {} if reads.listed else {name: f"{NETNS_DIR}/{name}" for name in reads.names}
        entries = pool.submit(read_entries, runner, tuple(looked_up.values())) if looked_up else None
        identities = pool.submit(read_identities, runner, reads.files) if reads.files else None
        views = (
            {HOST: pool.submit(read_view, runner, HOST, wanted_views[HOST], *partly.get(HOST, (None, ())))}
            if HOST in wanted_views
            else {}
        )
        # per family (iptables; ip6tables for the tables named ip6:TABLE): one table, `iptables -t TABLE -S`;
        # more, one `iptables-save` that lists them all (one process, not one each)
        saved: dict[str, Future[str]] = {}
        tables: dict[str, Future[str]] = {}
        for prefix, tool in (("", "iptables"), ("ip6:", "ip6tables")):
            mine = [t for t in reads.tables if t.startswith("ip6:") == (prefix == "ip6:")]
            if len(mine) > 1:
                saved[prefix] = pool.submit(_read, runner, (), None, f"{tool}-save")
            for t in mine if len(mine) == 1 else ():
                tables[t] = pool.submit(_read, runner, ("-t", t.removeprefix(prefix), "-S"), None, tool)
        setting_reads = {HOST: pool.submit(read_sysctls, runner, HOST, settings[HOST])} if HOST in settings else {}
        fdb_reads: dict[str | None, Future[str]] = {}
        if HOST in reads.fdb:
            fdb_reads[HOST] = pool.submit(_read, runner, ("-json", "fdb", "show"), HOST, "bridge")
        namespaces, ids, name_ids, named = _namespaces(listing, entries, looked_up)
        if reads.every_namespace:
            for netns in namespaces or ():
                asked = wanted_views.get(netns, ())
                wanted_views[netns] = tuple(f for f in _FACTS if f in _ALL_FACTS or f in asked)
        inside = set(wanted_views) | set(settings) | set(reads.fdb)
        for netns in sorted(p for p in inside if p is not None):
            if (namespaces is not None and netns not in namespaces) or not named.get(netns, True):
                continue  # not there: nothing to enter
            if netns in wanted_views:
                views[netns] = pool.submit(
                    read_view, runner, netns, wanted_views[netns], *partly.get(netns, (None, ()))
                )
            if netns in settings:
                setting_reads[netns] = pool.submit(read_sysctls, runner, netns, settings[netns])
            if netns in reads.fdb:
                fdb_reads[netns] = pool.submit(_read, runner, ("-json", "fdb", "show"), netns, "bridge")
    found_views = {
        netns: view for netns, future in views.items() if (view := _tolerate_missing_netns(netns, future)) is not None
    }
    fdb = {
        netns: tuple(parse.fdb_entries(out))
        for netns, future in fdb_reads.items()
        if (out := _tolerate_missing_netns(netns, future)) is not None
    }
    rules: dict[str, tuple[parse.IptablesRule, ...]] = {}
    chains: dict[str, tuple[str, ...]] = {}
    for table, listing_of in tables.items():
        rules[table] = tuple(parse.iptables_rules(listing_of.result()))
        chains[table] = tuple(parse.iptables_chains(listing_of.result()))
    for prefix, listing in saved.items():
        every = parse.iptables_save(listing.result())
        for table in (t for t in reads.tables if t.startswith("ip6:") == (prefix == "ip6:")):
            listed, made = every.get(table.removeprefix(prefix), ([], []))  # a table not made yet lists nothing
            rules[table], chains[table] = tuple(listed), tuple(made)
    sysctls: dict[tuple[str | None, str], str] = {}
    for place, values in setting_reads.items():
        for name, value in (_tolerate_missing_netns(place, values) or {}).items():
            sysctls[(place, name)] = value
    files = identities.result() if identities is not None else {}
    return HostState(namespaces, ids, found_views, fdb, rules, chains, sysctls, files, name_ids, named)
