"""The plugin's operations: a CNI network is a topology, and each attachment a running container in it.

A network configuration ``{"name": "NET", "type": "netwrap", ...}`` becomes
the topology ``cni-NET``: one docker-style network (its bridge, gateway,
isolation, outbound NAT when ``ipMasq``, hairpin ports) and, for each lease
(see :mod:`netwrap.cni.ipam`), a container attached by its namespace file,
with its address and port mappings. ADD, DEL and GC change the leases and then
apply that topology, exactly as ``netwrap apply`` would (batched, checking the
host side and the namespaces whose host side changed), so the objects are
recorded like a topology's: ``netwrap status``, ``clean`` and ``destroy``
show and repair CNI attachments too. The last attachment's DEL removes the
network's bridge, rules and chains with it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import ipaddress
import json
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs

from netwrap.cni import caller, spec
from netwrap.cni.ipam import Lease, Leases, fitted, read_leases, usable
from netwrap.cni.spec import CniError, Env, NetConf
from netwrap.command import Command
from netwrap.engine import registry
from netwrap.engine.check import Check, within
from netwrap.engine.lock import StateLock
from netwrap.engine.plan import PlanItem, plan
from netwrap.engine.state import DEFAULT_STATE_DIR, MemoryStore, StateFile
from netwrap.errors import LockTimeoutError, NetwrapError
from netwrap.host import prefetch
from netwrap.host.nsfile import netns_problem
from netwrap.host.observe import HostState
from netwrap.host.runner import Runner, SubprocessRunner, find_tool, host_run
from netwrap.kinds import NetObject, OwnedChain, VethPair
from netwrap.kinds.namespace import NETNS_DIR
from netwrap.topology import apply as apply_
from netwrap.topology import compose
from netwrap.topology import files as topofile
from netwrap.topology.compose import bridge_mac, host_end_mac, links, mac_for
from netwrap.topology.model import Attachment, Container, Network, Port, Topology, short_name

TOOLS = ("ip", "iptables", "iptables-save", "iptables-restore", "sysctl", "stat", "mount", "touch", "nsenter")


def topology_name(conf: NetConf) -> str:
    """``cni-NET``, shortened with a hash where the network's name is long (a topology's name has 20 at most)."""
    full = f"cni-{conf.name}"
    if len(full) <= 20 and all(c.isalnum() or c in "_-" for c in full):
        return full
    return f"cni-{''.join(c if c.isalnum() else '-' for c in conf.name[:10])}-{_digest(conf.name, 5)}"


def _digest(text: str, size: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:size]


def container_name(container_id: str, ifname: str) -> str:
    """The attachment's name in the topology, and the name its namespace is given: stable, short, unique."""
    return f"cni-{_digest(f'{container_id}/{ifname}', 12)}"


def topology(conf: NetConf, leases: Sequence[Lease]) -> Topology:
    bridge = conf.bridge or short_name("cni-", conf.name)
    # made once per value, as the containers are: each attachment's composition is kept by the network it is on
    network = compose.made(
        Network, "net", conf.subnet, bridge, conf.gateway, nat=conf.ip_masq, mtu=conf.mtu, subnet6=conf.subnet6,
        gateway6=conf.gateway6,
    )  # fmt: skip
    containers = tuple(_container(lease, gets_default_route(conf, lease.ifname)) for lease in leases)
    topo = Topology(topology_name(conf), (network,), containers, "docker")
    try:
        return topo.check(f"CNI network {conf.name!r}")
    except NetwrapError as exc:
        raise CniError(spec.INVALID_CONFIG, str(exc)) from None


@functools.lru_cache(maxsize=16384)  # a warm helper builds the same hundred containers for each call
def _container(lease: Lease, default_route: bool) -> Container:
    """The running container a lease attaches: by its namespace file, with its address and port mappings."""
    return Container(
        name=container_name(lease.container_id, lease.ifname),
        networks=(
            Attachment("net", address=lease.address, interface=_interface(lease.ifname), address6=lease.address6),
        ),
        ports=_ports(lease),
        loopback=False,
        source=lease.netns,
        default_route=default_route,
    )


def gets_default_route(conf: NetConf, ifname: str) -> bool:
    """As ``isDefaultGateway`` says (every attachment of the network, or none); else eth0 only (a second
    network's interface, eth1 and on, reaches its own subnet only)."""
    return conf.default_route if conf.default_route is not None else ifname == "eth0"


def _ports(lease: Lease) -> tuple[Port, ...]:
    """The lease's port mappings as a topology's published ports."""
    return tuple(
        Port(p.host_port, p.container_port, "udp" if p.protocol == "udp" else "tcp", _host_ip(p.host_ip))
        for p in lease.ports
    )


def _interface(ifname: str) -> str | None:
    return None if ifname == "eth0" else ifname  # eth0 is the first attachment's own name: made in place


def _host_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    address = ipaddress.ip_address(text) if text else None
    if address is None or (address.version == 4 and address.is_unspecified):
        return None  # 0.0.0.0: every address (:: stays: every IPv6 address)
    return address


@contextlib.contextmanager
def _turns(conf: NetConf) -> Iterator[StateFile]:
    """The state directory's lock and the host's, as every netwrap run that changes something takes them."""
    folder = state_dir(conf)
    with contextlib.ExitStack() as stack:
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            stack.enter_context(StateLock(folder))
            stack.enter_context(StateLock(registry.folder(host_run())))
        except LockTimeoutError as exc:
            raise CniError(spec.TRY_AGAIN_LATER, str(exc)) from None
        except (FileExistsError, NotADirectoryError):
            raise CniError(spec.IO_FAILURE, f"stateDir {folder}: a file is in the way of the directory") from None
        except OSError as exc:
            raise CniError(spec.IO_FAILURE, f"cannot lock {folder}: {exc.strerror or exc}") from None
        yield _store(folder, conf)


def identity(path: str) -> str:
    """What ``path`` leads to, in this boot: ``BOOT DEVICE:INODE``; "" when it leads nowhere."""
    try:
        info = os.stat(path)
        boot = _boot()
    except OSError:
        return ""
    return f"{boot} {info.st_dev}:{info.st_ino}"


@functools.cache
def _boot() -> str:
    """This boot's id (read once per process: it changes only with a reboot)."""
    return Path("/proc/sys/kernel/random/boot_id").read_text().strip()


def _alive(leases: Sequence[Lease], keep: tuple[str, str] | None = None) -> list[Lease]:
    """The leases whose namespace is still the one they were added in (and ``keep``): a container its runtime
    removed without a DEL, or whose ``/proc/PID`` now names another process after a restart or a reboot, is
    let go here, as GC would, instead of wiring another namespace or stopping every other attachment."""
    return [x for x in leases if x.attachment == keep or (x.identity and identity(x.netns) == x.identity)]


def _usable(conf: NetConf, leases: Sequence[Lease]) -> list[Lease]:
    """The leases the configuration can still build (an address in the subnet, not the gateway, a host port no
    earlier lease has): one a changed configuration left out is set aside, never a reason to refuse the rest."""
    kept: list[Lease] = []
    taken: dict[tuple[int, str], list[Port]] = {}  # by host port and protocol: only those can overlap
    for lease in leases:
        mine = _ports(lease)
        if lease.address not in conf.subnet or lease.address in (conf.gateway, conf.subnet.network_address,
                                                                   conf.subnet.broadcast_address):  # fmt: skip
            continue
        if conf.subnet6 is not None and (
            lease.address6 is None or lease.address6 not in conf.subnet6 or lease.address6 == conf.gateway6
        ):
            continue  # from before the network had IPv6 (or another subnet6): its next ADD gives it one
        if any(port.overlaps(other) for port in mine for other in taken.get((port.host_port, port.protocol), ())):
            continue  # as the topology's check judges them
        for port in mine:
            taken.setdefault((port.host_port, port.protocol), []).append(port)
        kept.append(lease)
    return kept


def _converge(
    conf: NetConf, leases: Leases, runner: Runner, keep: tuple[str, str] | None = None, check: Check = "record"
) -> Topology | None:
    """Save the leases and make the host match them; a topology they cannot make is refused before either.
    The topology built (None when nothing is left)."""
    alive = _alive(fitted(leases.leases, conf.subnet, conf.gateway, conf.subnet6, conf.gateway6), keep)
    # the others first: the attachment being added never takes a port or an address another has (the topology's
    # check then refuses it), however early its lease stands in the list
    built = _usable(conf, [x for x in alive if x.attachment != keep]) + [x for x in alive if x.attachment == keep]
    topo = topology(conf, built) if built else None
    leases.leases = alive
    leases.save()
    with _turns(conf) as store:
        if keep is not None and check == "record" and _recorded_as_made(store, keep):
            check = "all"  # a new attachment the record says was made: the record is not to be trusted
        # the host's reads of the last call of this kind start now, beside the Python work before the check
        memo = _memo(store, f"{'add' if keep else 'remove'}-{check}")
        mine = _particulars(leases.leases, keep, topo)
        ahead = prefetch.Prefetching(runner)
        ahead.start(prefetch.load(memo, mine))
        try:
            if topo is not None:
                apply_.apply(topo, ahead, store, mode="batch", check=check)
            elif store.path.exists():
                apply_.destroy(ahead, store)
        except CniError:
            raise
        except NetwrapError as exc:
            raise CniError(spec.FAILED, _summary(exc), str(exc)) from None
        finally:
            ahead.close()
        if topo is None:
            for kept in store.path.parent.glob(f".{store.path.stem}.reads-*"):
                kept.unlink(missing_ok=True)  # the network is gone: so is what its calls read
        else:
            prefetch.save(memo, ahead.asked, mine)
    return topo


def _recorded_as_made(store: StateFile, attachment: tuple[str, str]) -> bool:
    """Whether the record lists the namespace name of an attachment whose lease is new (an ADD without one before
    it): a record restored from before its DEL, say, which the record check would trust into building nothing."""
    record = store.load()
    made = record.keys() if record is not None else []
    return f"attach:{container_name(*attachment)}" in made


def _particulars(leases: Sequence[Lease], keep: tuple[str, str] | None, topo: Topology | None) -> dict[str, str]:
    """What an ADD reads that is its own: its namespace file and the name netwrap gives it (their identities:
    see :class:`~netwrap.kinds.namespace.AttachedNamespace`), and its veth's host end (read by its name), kept
    for the next ADD as placeholders."""
    lease = next((x for x in leases if x.attachment == keep), None)
    if lease is None or topo is None:
        return {}
    name = container_name(*lease.attachment)
    return {"source": lease.netns, "named": f"{NETNS_DIR}/{name}", "port": topo.host_interfaces[(name, 0)]}


def _memo(store: StateFile, kind: str) -> Path:
    """Where the host's reads of the last call of ``kind`` are kept (a dot-file: never taken for a record)."""
    return store.path.parent / f".{store.path.stem}.reads-{kind}.json"


def _summary(exc: NetwrapError) -> str:
    """One line for ``msg``: the error's first, with its first listed item when it lists some."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    first = lines[0] if lines else type(exc).__name__
    return f"{first} {lines[1].lstrip('- ')}" if first.endswith(":") and len(lines) > 1 else first


def add(env: Env, conf: NetConf, runner: Runner) -> dict[str, Any]:
    """Lease an address and build the attachment; on failure the lease is given back and the others rebuilt,
    so that one container that cannot be added never stops the rest of the network."""
    dns = resolv_conf(conf.resolv_conf)  # read before anything is made: a file that cannot be is the ADD's error
    with Leases(conf.data_dir, conf.name) as leases:
        if caller.gone():
            # the runtime gave up while this waited for the lock, and may have sent its DEL already: an
            # attachment made now would be one nobody removes (holding the lock, a later DEL comes after this)
            raise CniError(spec.TRY_AGAIN_LATER, "the runtime stopped waiting for this ADD: nothing was made")
        before = list(leases.leases)
        had = leases.find(env.container_id, env.ifname)
        again = had is not None
        # a container removed without DEL holds no address another asks for (let go here, as a converge would);
        # the others first take the IPv6 addresses an edit of the configuration gives them, as a first ADD of each
        fit = fitted(leases.leases, conf.subnet, conf.gateway, conf.subnet6, conf.gateway6)
        leases.leases = _alive(fit, keep=(env.container_id, env.ifname))
        found = identity(env.netns)
        problem = "is not there" if not found else netns_problem(env.netns)
        if problem is not None:
            raise CniError(spec.INVALID_ENVIRONMENT, f"CNI_NETNS {env.netns} {problem}")
        if again and _interface_there(env, runner):
            # "If an interface of the requested name already exists in the container, the CNI plugin MUST
            # return with an error" (an ADD repeated without a DEL): nothing is changed, the lease stays
            raise CniError(
                spec.FAILED,
                f"{env.ifname} exists in {env.netns} already: {env.container_id}/"
                f"{env.ifname} was added before (CHECK tells whether it is whole; DEL it to add it anew)",
            )
        lease = leases.take(
            container_id=env.container_id, ifname=env.ifname, netns=env.netns, ports=conf.port_mappings,
            subnet=conf.subnet, gateway=conf.gateway, identity=found, subnet6=conf.subnet6, gateway6=conf.gateway6,
            requested=conf.requested,
        )  # fmt: skip
        try:
            # an ADD reads what it adds or changes and what names a device it relies on (see engine.check); one
            # repeated looks inside every namespace, so that it repairs what it reports
            topo = _converge(conf, leases, runner, keep=lease.attachment, check="all" if again else "record")
        except Exception as exc:
            given_back = lease == had
            if lease != had:  # new, or changed (another namespace, other ports): what it had is given back
                leases.leases = before
                with contextlib.suppress(CniError):
                    _converge(conf, leases, runner)
                    given_back = True
            foreign = given_back and not again and isinstance(exc, CniError) and exc.code == spec.FAILED
            if foreign and _interface_there(env, runner):
                # the spec's case, found by the kernel: "If an interface of the requested name already exists in
                # the container, the CNI plugin MUST return with an error" (what was made is given back)
                raise CniError(spec.FAILED, f"{env.ifname} exists in {env.netns} already, and is not netwrap's: "
                               "nothing of this attachment is left", str(exc)) from None  # fmt: skip
            raise
    if topo is None:  # never: the lease just taken is always built
        raise CniError(spec.FAILED, f"attachment {env.container_id}/{env.ifname} was not built")
    return result(env, conf, topo, lease, dns)


def delete(env: Env, conf: NetConf, runner: Runner) -> None:
    """Free the attachment and remove what netwrap made for it; nothing to remove is no error."""
    with Leases(conf.data_dir, conf.name) as leases:
        if leases.drop(env.container_id, env.ifname) is None and not _recorded(conf):
            return
        try:
            _converge(conf, leases, runner)
        except CniError as exc:
            if exc.code == spec.TRY_AGAIN_LATER:
                raise
            # the rest of the network cannot be made as it should (another tool's object in the way, say): this
            # attachment still goes, so that a DEL never fails because of another container
            _remove_attachment(env, runner)


def _remove_attachment(env: Env, runner: Runner) -> None:
    """Best effort, each step taking "already gone" for done: the container's end of its veth (the pair goes
    with it), then the name netwrap gave its namespace."""
    name = container_name(env.container_id, env.ifname)
    for command in (
        Command("ip", ("link", "del", env.ifname), netns=name, ok_codes=frozenset(range(256))),
        Command("ip", ("netns", "del", name), ok_codes=frozenset(range(256))),
    ):
        with contextlib.suppress(NetwrapError):
            runner.run(command)


def _recorded(conf: NetConf) -> bool:
    return _store(state_dir(conf), conf).path.exists()


def state_dir(conf: NetConf) -> Path:
    """Where the network's record is: ``stateDir``, else ``$NETWRAP_STATE_DIR``, else netwrap's default."""
    return Path(conf.state_dir or os.environ.get("NETWRAP_STATE_DIR") or DEFAULT_STATE_DIR)


def _store(folder: Path, conf: NetConf) -> StateFile:
    """The record, where ``netwrap`` keeps a topology's: ``topology-cni-NET.json``."""
    return StateFile.in_dir(folder, f"topology-{topology_name(conf)}")


def gc(conf: NetConf, runner: Runner) -> None:
    """Remove every attachment that is not among ``cni.dev/valid-attachments`` (not given: nothing is)."""
    if conf.valid_attachments is None:
        return
    with Leases(conf.data_dir, conf.name) as leases:
        leases.keep_only(conf.valid_attachments)
        _converge(conf, leases, runner)


def check(env: Env, conf: NetConf, runner: Runner) -> None:
    """Everything ADD made for the attachment (and the network it needs) is as ADD left it; else the reasons."""
    with Leases(conf.data_dir, conf.name) as leases:
        lease = leases.find(env.container_id, env.ifname)
        if lease is None:
            raise CniError(spec.UNKNOWN_CONTAINER, f"no attachment {env.container_id}/{env.ifname} on {conf.name}")
        if lease.netns != env.netns:
            raise CniError(spec.NOT_AS_WANTED, f"the attachment was added in {lease.netns}, not {env.netns}")
        mine = f"{lease.address}/{conf.subnet.prefixlen}"
        told = [x.get("address") for x in (conf.prev_result or {}).get("ips", []) if isinstance(x, dict)]
        if conf.prev_result is not None and told and mine not in told:
            raise CniError(spec.NOT_AS_WANTED, f"prevResult lists {', '.join(map(str, told))}, not {mine}")
        with _turns(conf) as store:
            # as an edit of the configuration wants it
            now = fitted(leases.leases, conf.subnet, conf.gateway, conf.subnet6, conf.gateway6)
            lease = now[leases.leases.index(lease)]
            built = _usable(conf, _alive(now))
            if lease not in built:
                raise CniError(spec.NOT_AS_WANTED, f"{env.netns} is not the namespace the attachment was added in, "
                               "or the configuration no longer allows its address or ports")  # fmt: skip
            topo = topology(conf, built)
            try:
                judged = apply_.judge(topo, runner, store, "all", _as_told(env, conf))
            except CniError:
                raise
            except NetwrapError as exc:  # a damaged record, say: the spec's error, never an internal one
                raise CniError(spec.FAILED, _summary(exc), str(exc)) from None
    # this attachment's path alone (its own objects, its network's, the rules that concern it): another
    # container's trouble is not this one's
    name = container_name(env.container_id, env.ifname)
    (container,) = (c for c in topo.containers if c.name == name)
    attached = links(topo, judged.allocations)
    _, path = apply_.container_path(container, attached, [item.obj for item in judged.plan.items])
    keys = {obj.key for obj in path}
    concerns = apply_.concerning(container, attached)
    wrong = [*judged.taken] + [
        f"{item.obj.key}: {item.assessment.reason}"
        for item in judged.plan.items
        if item.obj.key in keys and item.status != "present" and not _whole_for(item, concerns, judged.state)
    ]
    if wrong:
        raise CniError(spec.NOT_AS_WANTED, wrong[0], "\n".join(wrong))


def _whole_for(item: PlanItem, concerns: tuple[frozenset[str], frozenset[Any]], state: HostState) -> bool:
    """Whether a chain that is not as wanted still lists, in order, every rule of it that concerns the
    attachment (the chain holds every container's rules: another's missing rule is not this one's trouble)."""
    chain = item.obj
    if not isinstance(chain, OwnedChain) or item.status == "conflict" or not chain.exists(state):
        return False
    mine = [rule.body() for rule in chain.rules if rule.concerns(*concerns)]
    return within(mine, [rule.words for rule in state.rules.get(chain.where, ()) if rule.chain == chain.name])


def _as_told(env: Env, conf: NetConf) -> Callable[[Sequence[NetObject]], Sequence[NetObject]]:
    """The wanted objects as CHECK judges them: the container's interface with the MAC ``prevResult`` gives it,
    where a later plugin of the chain set another (the specification's own example: ``tuning`` setting a MAC)."""
    told = ""
    for number, item in enumerate((conf.prev_result or {}).get("interfaces") or []):
        if isinstance(item, dict) and item.get("name") == env.ifname and item.get("sandbox") == env.netns:
            mac = item.get("mac")
            if not isinstance(mac, str):
                raise CniError(spec.INVALID_CONFIG, f"prevResult.interfaces[{number}].mac: {mac!r} is not a MAC")
            told = mac.lower()
    name = container_name(env.container_id, env.ifname)

    def adjust(objects: Sequence[NetObject]) -> Sequence[NetObject]:
        if not told:
            return objects
        try:
            return [
                attrs.evolve(obj, peer_mac=told)
                if isinstance(obj, VethPair) and (obj.peer_netns, obj.peer) == (name, env.ifname)
                else obj
                for obj in objects
            ]
        except NetwrapError as exc:
            raise CniError(spec.INVALID_CONFIG, f"prevResult: the MAC of {env.ifname}: {exc}") from None

    return adjust


def _interface_there(env: Env, runner: Runner) -> bool:
    """Whether the container's namespace has an interface named ``CNI_IFNAME`` (one read, entering it by its
    file: the name netwrap gives it may not be there)."""
    args = (f"--net={env.netns}", "--", "ip", "-o", "link", "show", "dev", env.ifname)
    found = runner.run(Command("nsenter", args, mutates=False, ok_codes=frozenset(range(256))))
    return found.returncode == 0 and bool(found.stdout.strip())


def status(conf: NetConf) -> None:
    """Ready when the tools are there and the data directory can be used."""
    missing = [tool for tool in TOOLS if find_tool(tool) is None]
    if missing:
        raise CniError(spec.NOT_AVAILABLE, f"missing tools: {', '.join(missing)}")
    try:
        usable(conf.data_dir, conf.name)  # without the lock: STATUS never waits on an ADD
    except CniError as exc:
        raise CniError(spec.NOT_AVAILABLE, exc.msg) from None


def result(
    env: Env, conf: NetConf, topo: Topology, lease: Lease, resolv: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The ADD result: the bridge, the host end and the container's interface (each with its MAC, made of an
    address and set by the apply: nothing is read), the address, the default route and the DNS settings of the
    configuration."""
    name = container_name(env.container_id, env.ifname)
    host_end = topo.host_interfaces[(name, 0)]
    network = topo.networks[0]
    previous = dict(conf.prev_result or {})
    interfaces = [x for x in previous.get("interfaces", []) if isinstance(x, dict)]
    first = len(interfaces)  # a plugin before this one in the chain: its result is kept, ours added after it
    interfaces += [
        {"name": network.bridge, "mac": bridge_mac(network) or ""},  # it always has a gateway
        {"name": host_end, "mac": host_end_mac(lease.address)},
        {"name": env.ifname, "mac": mac_for(lease.address), "sandbox": env.netns},
    ]
    ips = [x for x in previous.get("ips", []) if isinstance(x, dict)]
    ips.append({"address": f"{lease.address}/{conf.subnet.prefixlen}", "gateway": str(conf.gateway),
                "interface": first + 2})  # fmt: skip
    if lease.address6 is not None and conf.subnet6 is not None:
        ips.append({"address": f"{lease.address6}/{conf.subnet6.prefixlen}", "gateway": str(conf.gateway6),
                    "interface": first + 2})  # fmt: skip
    routes = [x for x in previous.get("routes", []) if isinstance(x, dict)]
    if gets_default_route(conf, env.ifname):
        routes.append({"dst": "0.0.0.0/0", "gw": str(conf.gateway)})
        if lease.address6 is not None and conf.gateway6 is not None:
            routes.append({"dst": "::/0", "gw": str(conf.gateway6)})
    dns = dict(conf.dns) or dict(previous.get("dns") or {}) or dict(resolv or {})
    return {"cniVersion": conf.version, "interfaces": interfaces, "ips": ips, "routes": routes, "dns": dns}


def resolv_conf(path: str) -> dict[str, Any]:
    """A ``resolv.conf``'s settings as a result's ``dns`` (host-local's ``resolvConf``); none without a path.
    A file that cannot be read is an error: the runtime would start the container without its name servers."""
    if not path:
        return {}
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise CniError(spec.IO_FAILURE, f"ipam.resolvConf: cannot read {path}: {exc.strerror or exc}") from None
    dns: dict[str, Any] = {}
    for line in text.splitlines():
        words = line.split("#", 1)[0].split(";", 1)[0].split()
        if len(words) < 2:
            continue
        if words[0] == "nameserver":
            dns.setdefault("nameservers", []).append(words[1])
        elif words[0] == "domain":
            dns["domain"] = words[1]
        elif words[0] == "search":
            dns["search"] = words[1:]
        elif words[0] == "options":
            dns.setdefault("options", []).extend(words[1:])
    return dns


def warm() -> None:
    """Run once what every call runs (reading a configuration, composing a network, planning it against an empty
    host) so that a warm helper's copies find it compiled and cached; touches nothing outside this process."""
    ports = {"portMappings": [{"hostPort": 8080, "containerPort": 80}]}
    data = {"cniVersion": spec.SUPPORTED[-1], "name": "warm", "type": "netwrap", "subnet": "10.255.0.0/24",
            "ipMasq": True, "capabilities": {"portMappings": True}, "runtimeConfig": ports}  # fmt: skip
    conf = spec.netconf(data, "ADD")
    lease = Lease("warm", "eth0", conf.gateway + 1, "/proc/1/ns/net", conf.port_mappings, "")
    objects, _ = apply_.desired(topology(conf, [lease]), MemoryStore(None))
    plan(objects, HostState())
    json.loads(json.dumps(spec.version_result(spec.SUPPORTED[-1])))


def default_runner() -> Runner:
    return SubprocessRunner()


def config_from_file(path: Path) -> NetConf:
    """A network configuration file of the plugin's (``.conf``, or a ``.conflist`` with a plugin of type
    ``netwrap``), as ``netwrap status/plan/apply/destroy -f`` read it."""
    try:
        problem = topofile.trusted(path)  # read as root, a configuration is code, as a topology file is
        if problem is not None:
            raise NetwrapError(f"{path}: {problem.message}")
        data = spec.decode(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise NetwrapError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    except CniError as exc:
        raise NetwrapError(f"{path}: {exc.msg}") from None
    plugins = data.get("plugins")
    if isinstance(plugins, list):
        ours = [p for p in plugins if isinstance(p, dict) and p.get("type") == "netwrap"]
        if len(ours) != 1:
            raise NetwrapError(f"{path}: a network configuration list needs one plugin of type netwrap")
        data = {"cniVersion": _list_version(data), "name": data.get("name"), **ours[0]}
    try:
        return spec.netconf(data, "CHECK")
    except CniError as exc:
        raise NetwrapError(f"{path}: {exc.msg}") from None


def _list_version(data: dict[str, Any]) -> object:
    """A configuration list's version as a runtime picks it: ``cniVersion``, else the highest of ``cniVersions``
    (1.1.0's list of versions) that the plugin speaks."""
    if "cniVersion" in data or not isinstance(data.get("cniVersions"), list):
        return data.get("cniVersion")
    spoken = [v for v in spec.SUPPORTED if v in data["cniVersions"]]
    return spoken[-1] if spoken else data["cniVersions"]


def topology_from_file(path: Path) -> Topology:
    """The topology of a CNI network as its leases stand now: read without their lock (the file is replaced
    whole), so that a command line holding netwrap's own locks never waits on a runtime's ADD, or it on it."""
    conf = config_from_file(path)
    leases = fitted(read_leases(conf.data_dir, conf.name), conf.subnet, conf.gateway, conf.subnet6, conf.gateway6)
    return topology(conf, _usable(conf, _alive(leases)))
