"""What goes away with what: devices are told apart by the namespace they are in."""

from __future__ import annotations

from netwrap import Address, LinkNetns, LinkUp, Route, VethPair
from netwrap.kinds import Gone


def test_removing_one_containers_pair_does_not_take_anothers_eth0_along() -> None:
    """Found by the property test: removing c1 (pair v0-c1/eth0 in c1) took c2's route 'dev eth0' along with
    it, by name only, so the stale route stayed and the edit's new route conflicted with it."""
    gone = VethPair("v0-c1", "eth0", peer_netns="c1").takes_along()
    assert not Route("default", "10.31.0.1", "eth0", netns="c2").goes_with(gone)
    assert not Address("eth0", "10.31.0.12/24", netns="c2").goes_with(gone)
    assert Route("default", "10.31.0.1", "eth0", netns="c1").goes_with(gone)
    assert LinkUp("v0-c1").goes_with(gone)


def test_a_moved_end_takes_along_what_sits_on_it_where_it_is() -> None:
    pair, placed = VethPair("Tveth0", "Tveth1"), LinkNetns("Tveth0", "Tdocker0")
    gone = pair.takes_along() | placed.takes_along()
    assert gone.links == {(None, "Tveth0"), (None, "Tveth1"), ("Tdocker0", "Tveth0")}
    assert Address("Tveth0", "172.18.0.2/24", netns="Tdocker0").goes_with(gone)
    assert not Address("Tveth0", "172.18.0.2/24", netns="Tdocker1").goes_with(gone)
    assert Gone().links == frozenset()
