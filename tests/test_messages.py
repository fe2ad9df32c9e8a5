"""What netwrap says when a file is wrong (issue "Hardening II", items 9, 11 and 17): one clear message per
problem, naming the file, the table and the key as TOML writes them, types in TOML's words, nothing printed raw."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from netwrap import topology_from_dict
from netwrap.engine.clean import survey
from netwrap.engine.state import Record, StateFile, Writer
from netwrap.errors import TopologyError, ValidationError
from netwrap.topology import clusterfile, compose, graph
from netwrap.topology import files as topofile
from netwrap.topology.model import Port
from netwrap.tutorial import objects as tutorial_objects

NET = '[networks.front]\nsubnet = "10.10.0.0/24"\n'


def problems(text: str) -> list[str]:
    with pytest.raises(TopologyError) as caught:
        topofile.loads(text, "lab.toml")
    return [p.render("lab.toml") for p in caught.value.problems]


# --- 9: a file that is not UTF-8 -----------------------------------------------------------------------------


@pytest.mark.parametrize("reader", [topofile.load, clusterfile.load])
def test_a_file_that_is_not_utf8_is_named_never_a_traceback(tmp_path: Path, reader: Any) -> None:
    path = tmp_path / "lab.toml"
    path.write_bytes(b'name = "lab"\n[hosts]\xff\n')
    with pytest.raises(TopologyError) as caught:
        reader(path)
    assert str(caught.value).splitlines()[1].strip() == (
        f"{path}: [file] encoding: is not UTF-8 text: byte 0xff at line 2, column 8"
    )
    assert not clusterfile.is_cluster_file(path)  # the command line asks this first: no traceback there either


# --- 11: what is not a table, not text, not a path --------------------------------------------------------------


@pytest.mark.parametrize("data", [None, [], "name = 'lab'", 5])
def test_data_that_is_not_a_table_is_a_topology_error(data: Any) -> None:
    for reader in (topology_from_dict, clusterfile.from_dict):
        with pytest.raises(TopologyError, match=r"^api: 1 problem\(s\):\n  api: \[file\] data: must be a table"):
            reader(data, "api")


def test_text_that_is_not_text_and_a_path_that_is_not_a_path() -> None:
    with pytest.raises(TopologyError, match=r"api: \[file\] text: must be a str of TOML text, not bytes"):
        topofile.loads(b"name = 'lab'", "api")  # type: ignore[arg-type]
    with pytest.raises(TopologyError, match=r"\[file\] read: int is not a path"):
        topofile.load(5)  # type: ignore[arg-type]
    with pytest.raises(TopologyError, match=r"\[file\] read: int is not a path"):
        clusterfile.load(5)  # type: ignore[arg-type]
    assert not clusterfile.is_cluster_file(5)  # type: ignore[arg-type]


def test_toml_nested_too_deeply_or_a_number_too_long_is_a_syntax_error() -> None:
    assert problems("a = " + "[" * 100_000) == ["lab.toml: [file] syntax: arrays or tables nested too deeply"]
    assert problems("a = " + "9" * 4400) == ["lab.toml: [file] syntax: an integer has more digits than can be read"]


def test_a_number_too_long_to_print_is_shown_by_its_length() -> None:
    """Python prints no integer of more than 4300 digits (tomllib reads one written in hex)."""
    huge = "0x" + "f" * 3000
    assert problems(f"name = {huge}\n") == ["lab.toml: [topology] name: must be a string, not integer <3613 digits>"]
    assert problems(NET + f'[containers.c]\nnetworks = ["front"]\nports = [{huge}, 70000]\n') == [
        "lab.toml: [containers.c] ports[0]: '<3613 digits>': is not a port from 1 to 65535",
        "lab.toml: [containers.c] ports[1]: 70000: is not a port from 1 to 65535",
    ]


# --- 17: messages ------------------------------------------------------------------------------------------------


def test_a_finished_record_names_the_command_that_removes_it(tmp_path: Path) -> None:
    """``clean`` told a topology's owner to run `down`; a topology's and a cluster's is `destroy`."""
    for name, action in (("lab", "apply"), ("cluster-lab@a", "up"), ("tutorial", "up")):
        record = Record(complete=True, writer=Writer(2**22 + 1, 1), action=action)
        record.add(tutorial_objects()[0])
        StateFile(tmp_path / f"{name}.json").save(record)
    said = {item.file.name: item.describe() for item in survey(tmp_path)}
    assert said["lab"].endswith("apply by pid 4194305 finished; `netwrap destroy -f FILE` removes it")
    assert said["cluster-lab@a"].endswith("finished; `netwrap destroy -f FILE` removes it")
    assert said["tutorial"].endswith("finished; `netwrap tutorial down` removes it")
    assert not any("`down`" in line for line in said.values())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (NET + '[containers.c]\nnetworks = [{ network = "front", interface = "lo" }]\n',
         "lab.toml: [containers.c] networks[0]: 'lo' is the loopback device that every namespace"),
        (NET + '[containers.c]\nnetworks = [{ network = "front", host_interface = "lo" }]\n',
         "lab.toml: [containers.c] networks[0]: 'lo' is the loopback device that every namespace"),
        ('[networks.front]\nsubnet = "10.10.0.0/24"\nbridge = "lo"\n',
         "lab.toml: [networks.front] bridge: 'lo' is the loopback device that every namespace"),
    ],
)  # fmt: skip
def test_lo_is_refused_when_the_file_is_read(text: str, expected: str) -> None:
    """``interface = "lo"`` was accepted, and apply then said "lo exists on the host"."""
    found = problems(text)
    assert len(found) == 1 and found[0].startswith(expected), found
    assert found[0].endswith("already has; choose another name")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (NET + '[containers."a b"]\nnetworks = ["front"]\n',
         "lab.toml: [containers] \"a b\": 'a b': use 1-63 letters, digits, '_', '.' or '-', starting with a letter "
         "or digit"),
        ('name = "a b"\n' + NET, "lab.toml: [topology] name: 'a b': use 1-20 letters, digits, '_' or '-'"),
        ('[networks."a b"]\nsubnet = "10.10.0.0/24"\n', "lab.toml: [networks] \"a b\": 'a b': use 1-63 letters"),
        (NET + "[containers.all]\nnetworks = [\"front\"]\n",
         "lab.toml: [containers] all: 'all': `ip netns` reads 'all' as every namespace"),
    ],
)  # fmt: skip
def test_a_bad_name_gets_one_message(text: str, expected: str) -> None:
    """Not a second one about the namespace, or the default bridge, made of the same name."""
    found = problems(text)
    assert len(found) == 1 and found[0].startswith(expected), found


def test_a_subnet_too_small_for_a_gateway_is_said_once() -> None:
    """``255.255.255.255/32`` was a traceback (its default gateway is the address after it)."""
    assert problems('[networks.n]\nsubnet = "255.255.255.255/32"\n') == [
        "lab.toml: [networks.n] subnet: 255.255.255.255/32 is too small for a gateway and a container"
    ]


def test_keys_tables_and_values_are_quoted_and_escaped() -> None:
    """A key with a new line printed it raw; ``a.b`` (a table in a table) and ``"a.b"`` read the same."""
    assert problems('"a\\nb" = 1\n') == [
        'lab.toml: [topology] "a\\nb": unknown key; expected one of containers, name, networks, style'
    ]
    assert problems('[networks."my.net"]\nnat = true\n') == [
        'lab.toml: [networks."my.net"] subnet: is required (or subnet6 alone: IPv6 only), like subnet = "10.10.0.0/24"'
    ]
    found = problems(NET + '[containers."a\\u0007"]\nnetworks = ["front"]\n"x\\ty" = 1\n')
    assert found == [
        'lab.toml: [containers."a\\u0007"] "x\\ty": unknown key; expected one of loopback, netns, netns_path, '
        "network_mode, networks, pid, ports",
        "lab.toml: [containers] \"a\\u0007\": 'a\\x07': use 1-63 letters, digits, '_', '.' or '-', starting with a "
        "letter or digit",
    ]
    assert problems('name = "lab\\n"\n') == [
        "lab.toml: [topology] name: 'lab\\n': use 1-20 letters, digits, '_' or '-'"
    ]
    inline = problems(NET + '[containers.c]\nnetworks = [{ network = "front", "bad key" = 1 }]\n')
    assert inline == ['lab.toml: [containers.c] networks[0]."bad key": unknown key; expected one of address, '
                      "address6, host_interface, interface, network"]  # fmt: skip
    assert all(line.isprintable() for line in found + inline)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ('"yes"', "string 'yes'"),
        ("1", "integer 1"),
        ("1.5", "float 1.5"),
        ("inf", "float inf"),
        ("[1, 'a']", "array [1, 'a']"),
        ('{ a = 1, "b c" = true }', 'table { a = 1, "b c" = true }'),
        ("1979-05-27T07:32:00Z", "datetime 1979-05-27T07:32:00+00:00"),
        ("1979-05-27", "date 1979-05-27"),
        ("07:32:00", "time 07:32:00"),
    ],
)
def test_types_are_named_as_toml_names_them(value: str, shown: str) -> None:
    """``must be a bool, not str 'yes'`` named Python's types; a file is TOML."""
    found = problems(f'[networks.front]\nsubnet = "10.10.0.0/24"\nnat = {value}\n')
    assert found == [f"lab.toml: [networks.front] nat: must be a boolean, not {shown}"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("networks = 5\n", "[topology] networks: must be a table, not integer 5"),
        ("containers = []\n", "[topology] containers: must be a table, not array []"),
        ("[containers.c]\nnetworks = { a = 1 }\n", "[containers.c] networks: must be an array, not table { a = 1 }"),
        ("[containers.c]\nports = '8080:80'\n", "[containers.c] ports: must be an array, not string '8080:80'"),
        ("[containers.c]\nnetworks = [5]\n", "[containers.c] networks[0]: must be a network name or a table like "
         '{ network = "front", address = "..." }, not integer 5'),
        ("[containers.c]\nnetworks = [{ network = 5 }]\n",
         "[containers.c] networks[0].network: must be a string, the name of a network, not integer 5"),
        ("[networks.front]\nsubnet = 10\n", "[networks.front] subnet: must be a string, not integer 10"),
        ("[networks.front]\nsubnet = \"10.0.0.0/24\"\nbridge = false\n",
         "[networks.front] bridge: must be a string, not boolean false"),
        ("[networks]\nfront = 1\n", "[networks] front: must be a table, not integer 1"),
        ("[containers.c]\nports = [[80]]\n", "[containers.c] ports[0]: [80]: must be a string like \"8080:80/tcp\", "
         "not array"),
    ],
)  # fmt: skip
def test_every_type_message_names_toml_types(text: str, expected: str) -> None:
    found = problems(text)
    assert f"lab.toml: {expected}" in found, found
    for line in found:
        assert not re.search(r"\bnot (an? )?(str|dict|list|int|bool|NoneType|tuple)\b", line), line


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("80:80/", "ends with '/': name the protocol (tcp or udp) or leave out the '/'"),
        ("8084", 'a lone port is not published (Docker would give it a random host port): write "8084:8084" to '
         "publish it on the same port of the host"),
        (8084, 'write "8084:8084" to publish it'),
        ("53/udp", 'write "53:53/udp" to publish it'),
        ("99999", "port 99999 must be between 1 and 65535"),
        ("9" * 5000, "port 99999999... must be between 1 and 65535"),
        ("1:" + "9" * 5000, "port 99999999... must be between 1 and 65535"),
    ],
)  # fmt: skip
def test_ports_docker_would_read_otherwise_are_refused(spec: object, reason: str) -> None:
    """``"80:80/"`` was tcp and ``"8084"`` was ``8084:8084``; Docker reads ``"8084"`` as the container's port on a
    random host port. netwrap refuses both and says how to write what it can do."""
    with pytest.raises(ValidationError) as caught:
        Port.parse("ports[0]", spec)
    assert reason in caught.value.reason
    assert Port.parse("ports[0]", "8084:8084") == Port(8084, 8084)


def test_a_lone_port_in_a_file_says_how_to_write_it() -> None:
    found = problems(NET + '[containers.web]\nnetworks = ["front"]\nports = ["8084", 8085]\n')
    assert found == [
        "lab.toml: [containers.web] ports[0]: '8084': a lone port is not published (Docker would give it a random "
        'host port): write "8084:8084" to publish it on the same port of the host',
        "lab.toml: [containers.web] ports[1]: 8085: a lone port is not published (Docker would give it a random "
        'host port): write "8085:8085" to publish it on the same port of the host',
    ]


def test_graph_nodes_are_unique_and_both_drawings_show_published_ports() -> None:
    """``web-1``, ``web_1`` and ``web.1`` were one node; DOT left the published ports out."""
    text = NET + "".join(
        f'[containers."{name}"]\nnetworks = ["front"]\nports = ["{8080 + i}:80"]\n'
        for i, name in enumerate(("web-1", "web_1", "web.1", "web1"))
    )
    topo = topofile.loads(text)
    allocations = compose.allocate(topo)
    drawn = {"mermaid": graph.mermaid(topo, allocations), "dot": graph.dot(topo, allocations)}
    assert graph.mermaid(topo, allocations) == drawn["mermaid"]  # the same ids every time
    ids = ["c_web_2d_1", "c_web_5f_1", "c_web_2e_1", "c_web1"]  # web-1, web_1, web.1, web1: four nodes
    for drawing in drawn.values():
        for index, node in enumerate(ids):
            assert f"{8080 + index}/tcp to 10.10.0.{2 + index}:80" in drawing
            assert f"{node} " in drawing
    assert 'host -- c_web_2e_1 [style=dotted, dir=forward, label="8082/tcp to 10.10.0.4:80"];' in drawn["dot"]
    assert 'host -.->|"8082/tcp to 10.10.0.4:80"| c_web_2e_1' in drawn["mermaid"]
