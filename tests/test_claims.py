"""Host-wide claims: what each kind takes, when two claims clash, and the conflict that names the record."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netwrap.engine import claims
from netwrap.engine.state import Record, StateFile, Writer
from netwrap.kinds import Address, Bridge, Claim, Namespace, NatRule, OwnedChain, Sysctl, VethPair
from netwrap.topology import compose
from netwrap.topology import files as topofile


def test_each_kind_claims_its_names() -> None:
    assert Namespace("web").claims() == (Claim("namespace", "", "web"),)
    assert VethPair("v0-web", "eth0", peer_netns="web").claims() == (
        Claim("device", "", "v0-web"),
        Claim("device", "web", "eth0"),
    )
    assert Bridge("br0", tool="ip").claims() == (Claim("device", "", "br0"),)
    assert Address("br0", "10.1.0.1/24").claims() == (Claim("subnet", "", "10.1.0.0/24"),)
    assert Address("eth0", "10.1.0.2/24", netns="web").claims() == ()  # inside a container: its namespace's
    assert Sysctl("net.ipv4.ip_forward", "1").claims() == ()  # shared, reference counted instead


def test_a_chain_claims_its_name_and_the_ports_it_publishes() -> None:
    dnat = NatRule("NETWRAP-x", "DNAT", protocol="tcp", dport=8080, to="10.1.0.2:80")
    local = NatRule("NETWRAP-x", "DNAT", destination="127.0.0.1", protocol="udp", dport=53, to="10.1.0.3:53")
    chain = OwnedChain("NETWRAP-x", "nat", (dnat, local))
    assert chain.claims() == (
        Claim("chain", "nat", "NETWRAP-x"),
        Claim("port", "tcp", "0.0.0.0/0:8080"),
        Claim("port", "udp", "127.0.0.1/32:53"),
    )
    # the document's own rule in PREROUTING claims its port too
    assert NatRule.publish(80, "172.18.0.2:80", not_in="Tbr0").claims() == (Claim("port", "tcp", "0.0.0.0/0:80"),)


@pytest.mark.parametrize(
    ("mine", "theirs", "clash"),
    [
        (Claim("subnet", "", "10.50.0.0/24"), Claim("subnet", "", "10.50.0.0/16"), True),
        (Claim("subnet", "", "10.50.0.0/24"), Claim("subnet", "", "10.51.0.0/24"), False),
        (Claim("port", "tcp", "0.0.0.0/0:8080"), Claim("port", "tcp", "127.0.0.1/32:8080"), True),
        (Claim("port", "tcp", "10.0.0.1/32:8080"), Claim("port", "tcp", "127.0.0.1/32:8080"), False),
        (Claim("port", "tcp", "0.0.0.0/0:8080"), Claim("port", "udp", "0.0.0.0/0:8080"), False),
        (Claim("port", "tcp", "0.0.0.0/0:8080"), Claim("port", "tcp", "0.0.0.0/0:8081"), False),
        (Claim("device", "", "eth0"), Claim("device", "web", "eth0"), False),  # another namespace's eth0
        (Claim("device", "", "br0"), Claim("device", "", "br0"), True),
        (Claim("chain", "nat", "NETWRAP-x"), Claim("chain", "filter", "NETWRAP-x"), False),
    ],
)
def test_when_claims_clash(mine: Claim, theirs: Claim, clash: bool) -> None:
    assert mine.clashes(theirs) is clash
    assert theirs.clashes(mine) is clash


@given(st.integers(0, 2**32 - 1), st.integers(8, 32), st.integers(0, 2**32 - 1), st.integers(8, 32))
def test_subnet_clashes_are_overlaps_and_symmetric(a: int, pa: int, b: int, pb: int) -> None:
    one = ipaddress.IPv4Network((a, pa), strict=False)
    two = ipaddress.IPv4Network((b, pb), strict=False)
    mine, theirs = Claim("subnet", "", str(one)), Claim("subnet", "", str(two))
    assert mine.clashes(theirs) == theirs.clashes(mine) == one.overlaps(two)


def _record_of(tmp_path: Path, text: str, *, complete: bool = True, writer: Writer | None = None) -> StateFile:
    topo = topofile.loads(text)
    objects = compose.objects(topo, compose.allocate(topo))
    record = Record(list(objects), complete=complete, writer=writer or Writer.current())
    store = StateFile.in_dir(tmp_path, f"topology-{topo.name}")
    store.save(record)
    return store


X = """
name = "x"
[networks.n]
subnet = "10.101.0.0/24"
[containers.a]
networks = ["n"]
ports = ["8080:80"]
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('name = "y"\n[networks.n]\nsubnet = "10.101.0.0/16"\n', "subnet 10.101.0.0/16"),
        ('name = "y"\n[networks.n]\nsubnet = "10.9.0.0/24"\nbridge = "x-n"\n', "device x-n on the host"),
        ('name = "y"\n[networks.m]\nsubnet = "10.9.0.0/24"\n[containers.b]\nnetworks=["m"]\nports=["8080:81"]\n',
         "host port 8080/tcp"),
        ('name = "y"\n[containers.b]\nnetwork_mode = "none"\nnetns = "a"\n', "namespace a"),
    ],
)  # fmt: skip
def test_a_claim_held_by_another_record_is_a_conflict_naming_it(tmp_path: Path, text: str, expected: str) -> None:
    theirs = _record_of(tmp_path, X)
    topo = topofile.loads(text)
    mine = StateFile.in_dir(tmp_path, f"topology-{topo.name}")
    found = claims.conflicts(compose.objects(topo, compose.allocate(topo)), claims.others(mine))
    assert found, "the clash was not found"
    assert all(theirs.name in line for line in found)
    assert any(expected in line for line in found), found


def test_the_same_network_name_in_two_topologies_takes_two_bridges(tmp_path: Path) -> None:
    _record_of(tmp_path, X)
    w = topofile.loads(
        'name = "w"\n[networks.n]\nsubnet = "10.103.0.0/24"\n[containers.b]\nnetworks = ["n"]\nports = ["9090:80"]\n'
    )
    mine = StateFile.in_dir(tmp_path, "topology-w")
    assert claims.conflicts(compose.objects(w, compose.allocate(w)), claims.others(mine)) == []
    assert w.network("n").bridge == "w-n"


def test_records_of_other_machines_and_the_record_itself_are_not_others(tmp_path: Path) -> None:
    store = _record_of(tmp_path, X)
    remote = StateFile.in_dir(tmp_path, "topology-x@root@lab1")
    remote.save(Record([Namespace("a")]))
    assert claims.others(store) == []
    assert [f.name for f in claims.others(StateFile.in_dir(tmp_path, "tutorial"))] == ["topology-x"]
    assert [f.name for f in claims.others(StateFile.in_dir(tmp_path, "tutorial@root@lab1"))] == ["topology-x@root@lab1"]


def test_a_crashed_record_still_holds_its_claims_and_says_how_to_free_them(tmp_path: Path) -> None:
    _record_of(tmp_path, X, complete=False, writer=Writer(2**22 + 1, 1))
    topo = topofile.loads('name = "y"\n[networks.n]\nsubnet = "10.101.0.0/24"\n')
    found = claims.conflicts(
        compose.objects(topo, compose.allocate(topo)), claims.others(StateFile(tmp_path / "y.json"))
    )
    assert found
    assert all("netwrap clean" in line for line in found)
