"""Hairpin mode on bridge ports (Hardening II, 4): read from the kernel's output, set, converged, composed."""

from __future__ import annotations

from pathlib import Path

import pytest

from netwrap import HostState
from netwrap.errors import ValidationError
from netwrap.host import parse
from netwrap.host.observe import NetnsView
from netwrap.kinds import BridgePort
from netwrap.topology import compose
from netwrap.topology import files as topofile

FIXTURES = Path(__file__).parent / "fixtures"


def _flags(found: list[parse.Link]) -> dict[str, tuple[bool, bool]]:
    return {x.name: (x.isolated, x.hairpin) for x in found if x.name in {"Tp0", "Tp1", "Tq0"}}


def test_hairpin_is_read_from_both_outputs_of_ip() -> None:
    """Captured: Tp0 hairpin on; Tp1 isolated on, hairpin off; Tq0 not a bridge port."""
    want = {"Tp0": (False, True), "Tp1": (True, False), "Tq0": (False, False)}
    assert _flags(parse.links((FIXTURES / "hairpin_links.json").read_text())) == want
    assert _flags(parse.links_text((FIXTURES / "hairpin_links_o.txt").read_text())) == want


def _host() -> HostState:
    links = tuple(parse.links((FIXTURES / "hairpin_links.json").read_text()))
    return HostState(namespaces=(), netns_ids={}, views={None: NetnsView(links, (), ())}, rules={}, sysctls={})


def test_a_hairpin_port_is_plugged_then_flagged() -> None:
    port = BridgePort("Tbr", "Tq0", tool="ip", hairpin=True)
    assert [c.shell() for c in port.create_commands()] == [
        "ip link set Tq0 master Tbr",
        "ip link set dev Tq0 type bridge_slave hairpin on",
    ]
    both = BridgePort("Tbr", "Tq0", tool="ip", hairpin=True, isolated=True)
    assert both.create_commands()[1].shell() == "ip link set dev Tq0 type bridge_slave isolated on hairpin on"
    assert port.key == BridgePort("Tbr", "Tq0", tool="ip").key  # flags are set in place, not a new port


@pytest.mark.parametrize(
    ("port", "status", "commands"),
    [
        (BridgePort("Tbr", "Tp0", hairpin=True), "present", []),
        (BridgePort("Tbr", "Tp1", isolated=True), "present", []),
        # a port of ours whose flags differ (an edit of icc, or a port made before hairpin) is set, not unplugged
        (
            BridgePort("Tbr", "Tp0"),
            "missing",
            ["ip link set dev Tp0 type bridge_slave isolated off hairpin off fdb_flush"],
        ),
        (
            BridgePort("Tbr", "Tp1", hairpin=True),
            "missing",
            ["ip link set dev Tp1 type bridge_slave isolated off hairpin on fdb_flush"],
        ),
        (BridgePort("Tother", "Tp0", hairpin=True), "conflict", []),
    ],
)
def test_flags_are_compared_and_set_in_place(port: BridgePort, status: str, commands: list[str]) -> None:
    host = _host()
    verdict = port.assess(host)
    assert verdict.status == status, verdict.reason
    if status == "missing":
        assert [c.shell() for c in port.plan_commands(host)] == commands
        assert "hairpin" in verdict.reason or "isolated" in verdict.reason


def test_docker_style_ports_have_hairpin_and_document_style_ports_do_not() -> None:
    text = '[networks.n]\nsubnet = "10.9.0.0/24"\nicc = false\n[containers.a]\nnetworks = ["n"]\nports = ["80:80"]\n'
    for style, hairpin in (("docker", True), ("document", False)):
        topo = topofile.loads(f'name = "h"\nstyle = "{style}"\n' + text, "h.toml")
        ports = [obj for obj in compose.objects(topo, compose.allocate(topo)) if isinstance(obj, BridgePort)]
        assert [(p.port, p.isolated, p.hairpin) for p in ports] == [("v0-a", True, hairpin)]


def test_flags_must_be_booleans() -> None:
    with pytest.raises(ValidationError, match=r"BridgePort\.hairpin"):
        BridgePort("Tbr", "Tp0", hairpin="yes")  # type: ignore[arg-type]
