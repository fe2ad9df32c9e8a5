"""Both file readers, fuzzed: random bytes and random TOML documents shaped like topology and cluster files.

Issue "Hardening II", acceptance: whatever a file holds, reading it gives either a clear error naming the file,
the table and the key, or a valid topology (or cluster), never any other exception and never a process started.
A valid one is one that becomes objects: every device, namespace, address and rule it names is accepted by
its kind, and it can be drawn.

``NETWRAP_FUZZ_EXAMPLES=5000 pytest tests/test_readers_fuzz.py`` runs more examples than the default 200.
"""

from __future__ import annotations

import contextlib
import datetime
import math
import os
import re
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pytest_subprocess import FakeProcess

from netwrap.errors import TopologyError
from netwrap.host.runner import RecordingRunner
from netwrap.topology import clusterfile, compose, graph, multihost
from netwrap.topology import files as topofile
from netwrap.topology.model import Problem

EXAMPLES = int(os.environ.get("NETWRAP_FUZZ_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# --- random TOML values and documents ----------------------------------------------------------------------

_OFFSETS = st.integers(-18 * 60 + 1, 18 * 60 - 1).map(lambda m: datetime.timezone(datetime.timedelta(minutes=m)))
SCALARS: st.SearchStrategy[Any] = st.one_of(
    st.text(max_size=12),
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([2**64, 16**3000]),  # TOML's integers are 64-bit, tomllib's are not (written in hex here)
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.datetimes(timezones=st.none() | _OFFSETS),
    st.dates(),
    st.times(),
)
KEYS = st.text(max_size=6)
VALUES: st.SearchStrategy[Any] = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3), max_leaves=8
)


def either(*plausible: Any) -> st.SearchStrategy[Any]:
    """Mostly one of the plausible values (good and bad ones a file might hold), sometimes any TOML value."""
    return st.one_of(st.sampled_from(plausible), st.sampled_from(plausible), VALUES)


def table(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """A table with any of ``fields`` (each from its own strategy), and now and then a key of its own."""
    known = st.fixed_dictionaries({}, optional=fields)
    return st.tuples(known, st.dictionaries(KEYS, VALUES, max_size=1)).map(lambda kv: {**kv[1], **kv[0]})


def tables(names: st.SearchStrategy[str], body: st.SearchStrategy[Any], size: int = 3) -> st.SearchStrategy[Any]:
    return st.dictionaries(names, body | VALUES, max_size=size) | VALUES


NET_NAMES = either("front", "back", "my.net", "my-net", "a b", "lo", "", "x" * 64)
CONTAINER_NAMES = either("web", "db", "api", "web-1", "web_1", "web.1", "all", "../etc", "a b", "", "x" * 64)
NAMES = CONTAINER_NAMES.filter(lambda v: isinstance(v, str))
DEVICES = either("eth0", "eth1", "lo", "a", "dev", "v0-web", "br.0", "way-too-long-device", "-x", "tap0")
PORTS = st.lists(
    either("8080:80", "8080:80/udp", "80", "80:80/", "8084", "127.0.0.1:5353:53/udp", "0.0.0.0:81:80", "1:2:3:4",
           "65536:1", "224.0.0.1:80:80", 8080, "80:80/sctp", "9" * 5000),
    max_size=3,
) | VALUES  # fmt: skip
ATTACHMENT = either("front", "back", "my.net", "nope") | table(
    {
        "network": NET_NAMES,
        "address": either("10.10.0.5", "10.10.0.1", "10.10.0.0", "10.20.0.5", "10.10.0.256", "fe80::1"),
        "interface": DEVICES,
        "host_interface": DEVICES,
    }
)
NETWORK = table(
    {
        "subnet": either("10.10.0.0/24", "10.20.0.0/24", "10.10.0.0/30", "10.10.0.0/31", "10.10.0.1/24",
                         "255.255.255.255/32", "0.0.0.0/0", "fe80::/64", "10.10.0.0/33", "x"),
        "bridge": DEVICES,
        "gateway": either("10.10.0.1", "10.10.0.254", "10.10.0.0", "10.99.0.1", "x"),
        "nat": either(True, False, "yes"),
        "icc": either(True, False, 1),
        "bridge_tool": either("ip", "brctl", "ovs"),
    }
)  # fmt: skip
CONTAINER = table(
    {
        "network_mode": either("bridge", "host", "none", "container:web", "container:db", "container:", "overlay"),
        "networks": st.lists(ATTACHMENT, max_size=3) | VALUES,
        "ports": PORTS,
        "netns": either("web", "ns1", "all", "../x", "a b"),
        "loopback": either(True, False, "no"),
    }
)
TOPOLOGY = table(
    {
        "name": either("lab", "t", "a b", "x" * 21, "", "lab\n"),
        "style": either("docker", "document", "fancy"),
        "networks": tables(NET_NAMES.filter(lambda v: isinstance(v, str)), NETWORK),
        "containers": tables(NAMES, CONTAINER),
    }
)
ADDRESSES = either("192.0.2.11", "192.0.2.12", "192.0.2.13", "10.250.0.5", "192.0.2.256", "fe80::1", "lab-a")
HOST = table(
    {
        "ssh": either("root@192.0.2.11", "admin@lab2", "-oProxyCommand=x", "a b", "host\n", "[fe80::1]", ""),
        "ssh_options": either(["-p2222"], ["-oProxyCommand=x"], ["p2222"], ["-I", "lib.so"], [], "-p2222"),
        "ssh_command": either(["ssh"], ["ssh", "-F", "lab.conf"], ["sh"], [], ["ssh", "-oLocalCommand=x"], "ssh"),
        "sudo": either(True, False, "yes"),
        "underlay": ADDRESSES,
        "device": DEVICES,
    }
)
CLUSTER_TABLE = table(
    {
        "network": either("pods", "my.net", "a b", "x" * 64, ["x"]),
        "supernet": either("10.250.0.0/16", "10.250.0.0/24", "10.250.0.0/23", "10.250.0.0/30", "10.250.0.0/31",
                           "0.0.0.0/0", "10.0.0.0/7", "192.0.2.0/24", "10.250.0.1/16", "x"),
        "method": either("host-gw", "vxlan", "gre"),
        "vni": either(4242, 0, 2**24, 2**24 - 1, "abc", -1),
        "underlay_mtu": either(1500, 9000, 117, 118, 65536, math.inf, 1.5),
    }
)  # fmt: skip
HOST_NAMES = either("a", "b", "c", "a b", "../x", "")
CLUSTER = table(
    {
        "name": either("lab", "a b", "x" * 21, 5),
        "hosts": tables(HOST_NAMES.filter(lambda v: isinstance(v, str)), HOST),
        "cluster": CLUSTER_TABLE | VALUES,
        "containers": tables(NAMES, table({"host": HOST_NAMES, "ports": PORTS}), size=4),
    }
)


@st.composite
def good_topology(draw: st.DrawFn) -> dict[str, Any]:
    """A topology that is mostly valid: a few networks, containers on them, ports, modes."""
    names = draw(st.lists(st.sampled_from(["front", "back", "my.net", "db_net"]), unique=True, max_size=3))
    subnets = ["10.10.0.0/24", "10.20.0.0/24", "10.30.0.0/29", "10.40.0.0/30"]
    networks: dict[str, Any] = {}
    for index, name in enumerate(names):
        network: dict[str, Any] = {"subnet": subnets[draw(st.integers(index, len(subnets) - 1))]}
        for key, value in (
            ("nat", st.booleans()),
            ("icc", st.booleans()),
            ("bridge_tool", st.sampled_from(["ip", "brctl"])),
        ):
            if draw(st.booleans()):
                network[key] = draw(value)
        networks[name] = network
    containers: dict[str, Any] = {}
    ports = iter(range(8000, 9000))
    for name in draw(
        st.lists(st.sampled_from(["web", "db", "api", "web-1", "web_1", "web.1", "c"]), unique=True, max_size=4)
    ):
        mode = draw(st.sampled_from(["bridge"] * 4 + ["host", "none", "container:web"])) if names else "none"
        container: dict[str, Any] = {} if mode == "bridge" else {"network_mode": mode}
        if mode == "bridge":
            joined = draw(st.lists(st.sampled_from(names), unique=True, min_size=1, max_size=len(names)))
            container["networks"] = [
                n if draw(st.booleans()) else {"network": n, "interface": f"eth{i}"} for i, n in enumerate(joined)
            ]
            if draw(st.booleans()):
                container["ports"] = [f"{next(ports)}:80", f"127.0.0.1:{next(ports)}:53/udp"][: draw(st.integers(1, 2))]
        containers[name] = container
    document: dict[str, Any] = {"name": draw(st.sampled_from(["lab", "t", "a-b_c"]))}
    if networks:
        document["networks"] = networks
    if containers:
        document["containers"] = containers
    return document


@st.composite
def good_cluster(draw: st.DrawFn) -> dict[str, Any]:
    """A cluster file that is mostly valid: hosts, a [cluster] table, containers placed on hosts."""
    hosts = draw(st.lists(st.sampled_from(["a", "b", "c"]), unique=True, min_size=1))
    table: dict[str, Any] = {}
    for index, name in enumerate(hosts):
        host: dict[str, Any] = {"underlay": f"192.0.2.{11 + index}", "device": "eth0"}
        if index or draw(st.booleans()):
            host["ssh"] = f"root@192.0.2.{11 + index}"
        if draw(st.booleans()):
            host["ssh_options"] = ["-p2222"]
        table[name] = host
    cluster: dict[str, Any] = {"supernet": draw(st.sampled_from(["10.250.0.0/16", "10.250.0.0/24", "10.250.0.0/28"]))}
    cluster["method"] = draw(st.sampled_from(["host-gw", "vxlan"]))
    if draw(st.booleans()):
        cluster["vni"] = draw(st.integers(1, 2**24 - 1))
    containers: dict[str, Any] = {}
    ports = iter(range(8000, 9000))
    for name in draw(st.lists(st.sampled_from(["a1", "a2", "b1", "web", "web.1"]), unique=True, max_size=4)):
        containers[name] = {"host": draw(st.sampled_from(hosts))}
        if draw(st.booleans()):
            containers[name]["ports"] = [f"{next(ports)}:80"]
    return {"name": "lab", "hosts": table, "cluster": cluster, "containers": containers}


def _places(value: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, inner in items:
        yield (*at, key)
        yield from _places(inner, (*at, key))


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    """``base``, with up to three changes: a value replaced by any TOML value, a key or an item taken out, a key
    of any name added."""
    document = draw(base)
    for _ in range(draw(st.integers(0, 3))):
        places = list(_places(document))
        if not places:
            break
        *path, last = draw(st.sampled_from(places))
        parent: Any = document
        for step in path:
            parent = parent[step]
        change = draw(st.sampled_from(["replace", "remove", "add"]))
        if change == "replace":
            parent[last] = draw(VALUES)
        elif change == "remove":
            del parent[last]
        elif isinstance(parent, dict):
            parent[draw(KEYS)] = draw(VALUES)
    return document


TOPOLOGY = st.one_of(mutated(good_topology()), mutated(good_topology()), TOPOLOGY)
CLUSTER = st.one_of(mutated(good_cluster()), mutated(good_cluster()), CLUSTER)
_BARE = re.compile(r"[A-Za-z0-9_-]+")


def _string(text: str) -> str:
    """A TOML basic string, written independently of netwrap's own quoting: only what TOML requires escaped."""
    body = "".join(
        "\\" + ch if ch in '"\\' else f"\\u{ord(ch):04X}" if ord(ch) < 0x20 or ord(ch) == 0x7F else ch for ch in text
    )
    return f'"{body}"'


def _key(key: str) -> str:
    return key if _BARE.fullmatch(key) else _string(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return hex(value) if value > 2**63 else str(value)  # (a decimal of over 4300 digits has no str)
    if isinstance(value, float):
        return (
            "nan"
            if math.isnan(value)
            else "inf"
            if value == math.inf
            else "-inf"
            if value == -math.inf
            else repr(value)
        )
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }" if value else "{}"


def dumps(document: dict[str, Any]) -> str:
    """A document as a file would write it: plain keys first, then a ``[TABLE.NAME]`` section for each table of
    tables (``[networks.front]``), the rest inline."""
    lines, sections = [], []
    for key, value in document.items():
        if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            sections += [(f"[{_key(key)}.{_key(name)}]", body) for name, body in value.items()]
        else:
            lines.append(f"{_key(key)} = {_value(value)}")
    for header, body in sections:
        lines.append(header)
        lines += [f"{_key(k)} = {_value(v)}" for k, v in body.items()]
    return "\n".join(lines) + "\n"


def _has_nan(value: Any) -> bool:
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, list):
        return any(_has_nan(v) for v in value)
    if isinstance(value, dict):
        return any(_has_nan(v) for v in value.values())
    return False


# --- what may come out ------------------------------------------------------------------------------------------


def assert_clear(error: TopologyError, source: str) -> None:
    """An error naming the file, and for each problem a table and a key, every line printable (nothing raw)."""
    assert str(error).startswith(f"{source}: ")
    assert error.source == source
    assert error.problems
    for problem in error.problems:
        assert isinstance(problem, Problem)
        assert problem.table and problem.key and problem.message
        line = problem.render(source)
        assert line.startswith(f"{source}: [{problem.table}] {problem.key}: ")
        assert line.isprintable(), line
        tomllib.loads(f"[{problem.table}]\n")  # the table as TOML writes it: quoted where it must be


def valid_topology(topo: Any) -> None:
    compose.objects(topo, compose.allocate(topo))  # every kind accepts what it is given
    assert graph.mermaid(topo, compose.allocate(topo)) and graph.dot(topo, compose.allocate(topo))


def valid_cluster(spec: clusterfile.ClusterSpec) -> None:
    cluster = spec.cluster(lambda name, runner: RecordingRunner())
    for index in range(len(cluster.machines)):
        assert multihost.objects(cluster, index)


def read_topology(path: Path) -> None:
    try:
        topo = topofile.load(path)
    except TopologyError as exc:
        assert_clear(exc, str(path))
    else:
        valid_topology(topo)


def read_cluster(path: Path) -> None:
    try:
        spec = clusterfile.load(path)
    except TopologyError as exc:
        assert_clear(exc, str(path))
    else:
        valid_cluster(spec)


def read_both(path: Path) -> None:
    """What ``netwrap plan -f PATH`` reads: is it a cluster file? then one reader or the other; both, here."""
    assert clusterfile.is_cluster_file(path) in (True, False)
    read_topology(path)
    read_cluster(path)


_STARTERS = (
    "fork",
    "forkpty",
    "system",
    "posix_spawn",
    "posix_spawnp",
    "execv",
    "execve",
    "execvp",
    "execvpe",
    "popen",
)


@contextlib.contextmanager
def no_process(fp: FakeProcess) -> Iterator[None]:
    """Nothing may start a process: ``fp`` answers for subprocess (it registered nothing, so any call fails and
    is listed in ``fp.calls``), and every other way to start one in ``os`` fails the test."""

    def refuse(name: str) -> Callable[..., Any]:
        def starter(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError(f"a reader called os.{name}{args!r}")

        return starter

    with contextlib.ExitStack() as stack:
        for name in _STARTERS:
            if hasattr(os, name):
                stack.enter_context(mock.patch.object(os, name, refuse(name)))
        yield
    assert list(fp.calls) == []


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of our own (mode 0700): files in it are trusted (see files.trusted)."""
    return tmp_path_factory.mktemp("fuzz")


def write(folder: Path, data: bytes) -> Path:
    path = folder / "lab.toml"
    path.write_bytes(data)
    path.chmod(0o600)
    return path


# --- the properties ----------------------------------------------------------------------------------------


@FUZZ
@given(data=st.binary(max_size=300))
def test_random_bytes(folder: Path, fp: FakeProcess, data: bytes) -> None:
    with no_process(fp):
        read_both(write(folder, data))


GOOD_TOPOLOGY = (Path(__file__).resolve().parent.parent / "examples" / "two-networks.toml").read_bytes()
GOOD_CLUSTER = b"""name = "lab"
[hosts.a]
ssh = "root@192.0.2.11"
underlay = "192.0.2.11"
device = "eth0"
[hosts.b]
underlay = "192.0.2.12"
device = "eth0"
[cluster]
supernet = "10.250.0.0/16"
method = "vxlan"
[containers.a1]
host = "a"
ports = ["8080:80"]
"""


@FUZZ
@given(
    good=st.sampled_from([GOOD_TOPOLOGY, GOOD_CLUSTER]),
    where=st.floats(0, 1),
    cut=st.integers(0, 3),
    noise=st.binary(max_size=6)
    | st.sampled_from([b"\xff", b"\x00", b"\xc3", b"\n[", b'"', b"\xe2\x80\xa8", b"\nx = " + b"9" * 4400 + b"\n"]),
)
def test_good_files_with_random_bytes_in_them(
    folder: Path, fp: FakeProcess, good: bytes, where: float, cut: int, noise: bytes
) -> None:
    at = int(where * len(good))
    with no_process(fp):
        read_both(write(folder, good[:at] + noise + good[at + cut :]))


@FUZZ
@given(document=TOPOLOGY)
def test_random_topology_documents(folder: Path, fp: FakeProcess, document: dict[str, Any]) -> None:
    text = dumps(document)
    if not _has_nan(document):
        assert tomllib.loads(text) == document  # the document is what the file says
    with no_process(fp):
        read_both(write(folder, text.encode()))


@FUZZ
@given(document=CLUSTER)
def test_random_cluster_documents(folder: Path, fp: FakeProcess, document: dict[str, Any]) -> None:
    text = dumps(document)
    if not _has_nan(document):
        assert tomllib.loads(text) == document
    with no_process(fp):
        read_both(write(folder, text.encode()))


@FUZZ
@given(data=VALUES | TOPOLOGY | CLUSTER)
def test_from_dict_takes_any_value(fp: FakeProcess, data: Any) -> None:
    """The Python entry points too: ``topology_from_dict(None)`` is a TopologyError, not a TypeError."""
    with no_process(fp):
        try:
            valid_topology(topofile.from_dict(data, "api"))
        except TopologyError as exc:
            assert_clear(exc, "api")
        try:
            valid_cluster(clusterfile.from_dict(data, "api"))
        except TopologyError as exc:
            assert_clear(exc, "api")


def test_a_container_joining_one_that_joins_an_undeclared_one_is_a_problem_not_a_crash() -> None:
    # found by the fuzzer: db joins web, which joins a container the file does not declare
    document = {
        "name": "lab",
        "containers": {"web": {"network_mode": "container:"}, "db": {"network_mode": "container:web"}},
    }
    with pytest.raises(TopologyError, match="not declared"):
        topofile.from_dict(document, "lab.toml")
