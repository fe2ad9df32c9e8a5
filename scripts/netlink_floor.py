#!/usr/bin/env python3
"""The floor for scripts/bench.py: the same network built with raw netlink from one process.

No ``ip`` and no library: rtnetlink messages packed by hand (``struct``) on an
``AF_NETLINK`` socket, namespaces made with ``unshare(2)`` and named with a bind
mount, as ``ip netns add`` names them, and entered with ``setns(2)`` (ctypes;
Python 3.11 has neither). It builds what netwrap's docker style builds for N
containers on one bridge: the bridge in a link group with its gateway (and
netwrap's MAC), per container a named namespace, a veth made with its peer
inside (``eth0``) and its host end in the group, on the bridge, hairpin, up,
both ends with netwrap's MACs; the
container's address, ``lo`` up and a default route. The rules and settings are
the hand-batched script's own (one ``iptables-restore`` started first, running
beside the netlink work, and ``/proc/sys`` written directly), so the floor is
the cost of the same kernel state without any process per object.

Steps, each timed by the caller (``scripts/bench.py --floor``), run only inside a
sandbox:

- ``setup``: everything above;
- ``no-op``: what a re-apply must read: a dump of the links, addresses and
  routes of the host and of every namespace (``setns`` into each), and one
  ``iptables-save``;
- ``teardown``: one ``RTM_DELLINK`` of the link group (the peers go with their
  host ends), the namespaces' names unmounted, the rules removed by the
  hand-batched script's ``iptables-restore``.

This script is a measuring instrument, not part of netwrap: netwrap itself
runs the system's tools.
"""

from __future__ import annotations

import ctypes
import ipaddress
import os
import socket
import struct
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

CLONE_NEWNET = 0x40000000
MS_BIND = 0x1000
MNT_DETACH = 2

RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_GETADDR = 20, 22
RTM_NEWROUTE, RTM_GETROUTE = 24, 26
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE, NLM_F_DUMP = 0x1, 0x4, 0x200, 0x400, 0x300
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MASTER, IFLA_LINKINFO, IFLA_GROUP, IFLA_NET_NS_FD = 1, 3, 10, 18, 27, 28
IFLA_INFO_KIND, IFLA_INFO_DATA, IFLA_INFO_SLAVE_KIND, IFLA_INFO_SLAVE_DATA = 1, 2, 4, 5
IFLA_BRPORT_MODE = 4  # hairpin
VETH_INFO_PEER = 1
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_GATEWAY, RTA_OIF = 5, 4
IFF_UP = 1
NLA_F_NESTED = 0x8000

BRIDGE_INDEX = 9000  # fixed interface indexes: no lookups needed (a new namespace has only lo, index 1)
HOST_END_BASE = 10000
PEER_INDEX = 2

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def setns(fd: int) -> None:
    _check(_libc.setns(fd, CLONE_NEWNET), "setns")


def unshare_net() -> None:
    _check(_libc.unshare(CLONE_NEWNET), "unshare")


def bind_mount(source: str, target: str) -> None:
    _check(_libc.mount(source.encode(), target.encode(), None, MS_BIND, None), f"mount {target}")


def umount(target: str) -> None:
    _check(_libc.umount2(target.encode(), MNT_DETACH), f"umount {target}")


def attr(kind: int, payload: bytes) -> bytes:
    size = 4 + len(payload)
    return struct.pack("HH", size, kind) + payload + b"\0" * (-size % 4)


def nested(kind: int, *parts: bytes) -> bytes:
    return attr(kind | NLA_F_NESTED, b"".join(parts))


def text(kind: int, value: str) -> bytes:
    return attr(kind, value.encode() + b"\0")


def u32(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("I", value))


def ifinfo(index: int = 0, flags: int = 0, change: int = 0) -> bytes:
    return struct.pack("BxHiII", socket.AF_UNSPEC, 0, index, flags, change)


class Netlink:
    """One rtnetlink socket of the namespace this thread is in when it is opened."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        self.sock.bind((0, 0))
        self.seq = 0
        self.pending: list[bytes] = []

    def close(self) -> None:
        self.sock.close()

    def _message(self, kind: int, flags: int, body: bytes) -> bytes:
        """``body`` behind its netlink header (the next sequence number)."""
        self.seq += 1
        return struct.pack("IHHII", 16 + len(body), kind, flags | NLM_F_REQUEST, self.seq, 0) + body

    def add(self, kind: int, flags: int, body: bytes) -> None:
        """Queue one request (acknowledged), sent by :meth:`send_all`."""
        self.pending.append(self._message(kind, flags | NLM_F_ACK, body))

    def send_all(self) -> None:
        """Send the queued requests, a few dozen kilobytes per write (a socket's send buffer bounds one), and
        read every acknowledgement; an error raises."""
        queue, self.pending, start = self.pending, [], 0
        while start < len(queue):
            end, size = start, 0
            while end < len(queue) and size < 1 << 16:
                size += len(queue[end])
                end += 1
            chunk, start = queue[start:end], end
            self.sock.send(b"".join(chunk))
            done = 0
            while done < len(chunk):
                for kind, _, payload in self._messages(self.sock.recv(1 << 20)):
                    if kind == NLMSG_ERROR:
                        error = struct.unpack_from("i", payload)[0]
                        if error:
                            raise OSError(-error, f"netlink: {os.strerror(-error)}")
                        done += 1

    def dump(self, kind: int, body: bytes) -> int:
        """Bytes of a dump's answer (read whole, as a reader must)."""
        self.sock.send(self._message(kind, NLM_F_DUMP, body))
        total = 0
        while True:
            data = self.sock.recv(1 << 20)
            total += len(data)
            if any(k in (NLMSG_DONE, NLMSG_ERROR) for k, _, _ in self._messages(data)):
                return total

    @staticmethod
    def _messages(data: bytes) -> Iterator[tuple[int, int, bytes]]:
        offset = 0
        while offset + 16 <= len(data):
            size, kind, flags, _, _ = struct.unpack_from("IHHII", data, offset)
            yield kind, flags, data[offset + 16 : offset + size]
            offset += (size + 3) & ~3


def _mac(address: ipaddress.IPv4Address, second: int = 0x6E) -> bytes:
    """netwrap's MACs: a container's and a bridge's (``02:6e``, of its address, its gateway's), a host end's
    (``02:6f``, of its container's)."""
    return bytes([0x02, second, *address.packed])


def _sysctl(setting: str) -> None:
    key, _, value = setting.partition("=")
    Path("/proc/sys", key.replace(".", "/")).write_text(value)


def _restore(rules: str) -> subprocess.Popen[str]:
    """``iptables-restore --noflush`` of ``rules``, started and left running beside the netlink work."""
    proc = subprocess.Popen(["iptables-restore", "--noflush"], stdin=subprocess.PIPE, text=True)
    if proc.stdin is not None:
        proc.stdin.write(rules)
        proc.stdin.close()
    return proc


def setup(n: int, plan: Mapping[str, Any]) -> None:
    """Build the network (see the module's text) that ``plan`` describes: ``subnet``, ``bridge``, ``group``,
    ``up`` (the ``iptables-restore --noflush`` input) and ``up_sysctls``."""
    restore = _restore(plan["up"])
    net = ipaddress.IPv4Network(plan["subnet"])
    bridge, group = plan["bridge"], plan["group"]
    gateway = net[1]
    host = os.open("/proc/self/ns/net", os.O_RDONLY)
    Path("/run/netns").mkdir(exist_ok=True)
    for i in range(n):  # the namespaces, named as ip netns add names them
        name = f"/run/netns/c{i}"
        os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_RDONLY, 0))
        unshare_net()
        bind_mount("/proc/thread-self/ns/net", name)
        setns(host)
    nl = Netlink()
    nl.add(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, ifinfo(BRIDGE_INDEX) + text(IFLA_IFNAME, bridge)
           + u32(IFLA_GROUP, group) + attr(IFLA_ADDRESS, _mac(gateway))
           + nested(IFLA_LINKINFO, text(IFLA_INFO_KIND, "bridge")))  # fmt: skip
    nl.add(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, struct.pack("BBBBI", socket.AF_INET, net.prefixlen, 0, 0,
           BRIDGE_INDEX) + attr(IFA_LOCAL, gateway.packed) + attr(IFA_ADDRESS, gateway.packed))  # fmt: skip
    nl.add(RTM_NEWLINK, 0, ifinfo(BRIDGE_INDEX, IFF_UP, IFF_UP))
    nl.send_all()
    fds = []
    for i in range(n):
        fd = os.open(f"/run/netns/c{i}", os.O_RDONLY)
        fds.append(fd)
        peer = ifinfo(PEER_INDEX) + text(IFLA_IFNAME, "eth0") + attr(IFLA_ADDRESS, _mac(net[i + 2]))
        peer += u32(IFLA_NET_NS_FD, fd)
        info = nested(IFLA_LINKINFO, text(IFLA_INFO_KIND, "veth"),
                      nested(IFLA_INFO_DATA, nested(VETH_INFO_PEER, peer)))  # fmt: skip
        index = HOST_END_BASE + i
        nl.add(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, ifinfo(index) + text(IFLA_IFNAME, f"v0-c{i}")
               + u32(IFLA_GROUP, group) + attr(IFLA_ADDRESS, _mac(net[i + 2], 0x6F)) + u32(IFLA_MASTER, BRIDGE_INDEX)
               + info)  # fmt: skip
        hairpin = nested(IFLA_LINKINFO, text(IFLA_INFO_SLAVE_KIND, "bridge"),
                         nested(IFLA_INFO_SLAVE_DATA, attr(IFLA_BRPORT_MODE, b"\1")))  # fmt: skip
        nl.add(RTM_NEWLINK, 0, ifinfo(index, IFF_UP, IFF_UP) + hairpin)
    nl.send_all()
    nl.close()
    for setting in plan["up_sysctls"]:
        _sysctl(setting)
    for i, fd in enumerate(fds):  # inside each: its address, eth0 and lo up, the default route
        setns(fd)
        inner = Netlink()
        address = net[i + 2]
        inner.add(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, struct.pack("BBBBI", socket.AF_INET, net.prefixlen, 0, 0,
                  PEER_INDEX) + attr(IFA_LOCAL, address.packed) + attr(IFA_ADDRESS, address.packed))  # fmt: skip
        inner.add(RTM_NEWLINK, 0, ifinfo(PEER_INDEX, IFF_UP, IFF_UP))
        inner.add(RTM_NEWLINK, 0, ifinfo(1, IFF_UP, IFF_UP))
        route = struct.pack("BBBBBBBBI", socket.AF_INET, 0, 0, 0, 254, 3, 0, 1, 0)
        inner.add(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, route + attr(RTA_GATEWAY, gateway.packed)
                  + u32(RTA_OIF, PEER_INDEX))  # fmt: skip
        inner.send_all()
        inner.close()
        os.close(fd)
    setns(host)
    os.close(host)
    if restore.wait() != 0:
        raise SystemExit("iptables-restore failed")


def noop(n: int) -> int:
    """Read what a re-apply reads: links, addresses and routes of the host and of each namespace, and the
    rules. Bytes read."""
    save = subprocess.Popen(["iptables-save"], stdout=subprocess.PIPE)
    host = os.open("/proc/self/ns/net", os.O_RDONLY)
    total = 0
    for i in range(-1, n):
        fd = None
        if i >= 0:
            fd = os.open(f"/run/netns/c{i}", os.O_RDONLY)
            setns(fd)
        nl = Netlink()
        total += nl.dump(RTM_GETLINK, ifinfo())
        total += nl.dump(RTM_GETADDR, struct.pack("BBBBI", socket.AF_UNSPEC, 0, 0, 0, 0))
        total += nl.dump(RTM_GETROUTE, struct.pack("BBBBBBBBI", socket.AF_UNSPEC, 0, 0, 0, 0, 0, 0, 0, 0))
        nl.close()
        if fd is not None:
            setns(host)
            os.close(fd)
    os.close(host)
    out, _ = save.communicate()
    return total + len(out)


def teardown(n: int, plan: Mapping[str, Any]) -> None:
    """Remove the network: the group in one message, the names, the rules (``down``: restore input) and the
    settings (``down_sysctls``)."""
    restore = _restore(plan["down"])
    nl = Netlink()
    nl.add(RTM_DELLINK, 0, ifinfo() + u32(IFLA_GROUP, plan["group"]))
    nl.send_all()
    nl.close()
    for setting in plan["down_sysctls"]:
        _sysctl(setting)
    for i in range(n):
        name = f"/run/netns/c{i}"
        umount(name)
        os.unlink(name)
    if restore.wait() != 0:
        raise SystemExit("iptables-restore failed")
