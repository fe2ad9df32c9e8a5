"""``internal = true`` (Docker's internal networks) and ``nat = false`` (routed, not masqueraded), as composed."""

from __future__ import annotations

from pathlib import Path

import pytest

from netwrap.errors import TopologyError
from netwrap.kinds import OwnedChain, Route
from netwrap.topology import compose
from netwrap.topology import files as topofile

TEXT = (Path(__file__).resolve().parent.parent / "examples" / "internal-networks.toml").read_text()


def _chains() -> dict[tuple[str, str], list[str]]:
    topo = topofile.loads(TEXT, "inner.toml")
    found = compose.objects(topo, compose.allocate(topo))
    return {(o.table, o.name): [" ".join(r.body()) for r in o.rules] for o in found if isinstance(o, OwnedChain)}


def test_an_internal_network_is_closed_both_ways_before_any_accept() -> None:
    iso = _chains()[("filter", "NETWRAP-inner-ISO")]
    back = [rule for rule in iso if "inner-back" in rule]
    assert back == ["-i inner-back -o inner-back -j RETURN", "-i inner-back -j DROP", "-o inner-back -j DROP"]
    # no accept out of it in the main chain; its own traffic (icc) stays accepted
    main = _chains()[("filter", "NETWRAP-inner")]
    assert "-i inner-back ! -o inner-back -j ACCEPT" not in main
    assert "-i inner-back -o inner-back -j ACCEPT" in main
    assert "-i inner-front ! -o inner-front -j ACCEPT" in main


def test_only_networks_that_lead_outside_and_nat_are_masqueraded() -> None:
    post = _chains()[("nat", "NETWRAP-inner-POST")]
    assert post == ["-s 10.70.0.0/24 ! -o inner-front -j MASQUERADE"]


def test_the_default_route_goes_through_the_first_network_that_leads_outside() -> None:
    topo = topofile.loads(TEXT, "inner.toml")
    routes = {o.netns: o for o in compose.objects(topo, compose.allocate(topo)) if isinstance(o, Route)}
    assert set(routes) == {"web", "app"}  # db, only on the internal network, has none
    assert (str(routes["web"].gateway), routes["web"].device) == ("10.70.0.1", "eth1")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('[networks.x]\nsubnet = "10.73.0.0/24"\ninternal = true\nnat = true\n', "[networks.x] nat"),
        ('[containers.pub]\nnetworks = ["back"]\nports = ["8080:80"]\n', "[containers.pub] ports"),
        ('[networks.x]\nsubnet = "10.73.0.0/24"\ninternal = "yes"\n', "[networks.x] internal"),
    ],
)
def test_what_an_internal_network_cannot_do_is_refused_when_read(extra: str, message: str) -> None:
    with pytest.raises(TopologyError, match=message.replace("[", r"\[").replace("]", r"\]")):
        topofile.loads(TEXT + extra, "inner.toml")


def test_document_style_cannot_keep_a_network_internal() -> None:
    with pytest.raises(TopologyError, match="internal"):
        topofile.loads('style = "document"\n' + TEXT, "inner.toml")
