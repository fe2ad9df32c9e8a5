"""Bad input is refused when an object is built, naming the field and the value."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netwrap import (
    Address,
    AttachedNamespace,
    Bridge,
    Namespace,
    NatRule,
    OwnedChain,
    Route,
    Sysctl,
    ValidationError,
    VethPair,
)
from netwrap import validate as v


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "empty"),
        ("Tveth0123456789x", "16 bytes"),
        ("é" * 8, "16 bytes"),
        ("a/b", "'/'"),
        ("a b", "' '"),
        ("a\tb", "'\\t'"),
        ("eth0:1", "':'"),
        ("-x", "start with '-'"),
        (".", "not a valid"),
        ("..", "not a valid"),
        ("a", "keyword 'address'"),
        ("dev", "keyword 'dev'"),
        ("help", "keyword 'help'"),
        ("name", "keyword 'name'"),
        ("br%d", "'%'"),
        ("ünï", "ASCII"),
    ],
)
def test_bad_interface_names(name: str, reason: str) -> None:
    with pytest.raises(ValidationError) as caught:
        VethPair(name, "Tok0")
    assert caught.value.field == "VethPair.name"
    assert caught.value.value == name
    assert reason in str(caught.value)
    assert repr(name) in str(caught.value)


@pytest.mark.parametrize("name", ["../x", "a/b", "a b", "-n", "all", ".", ".."])
def test_bad_namespace_names(name: str) -> None:
    with pytest.raises(ValidationError, match=r"Namespace\.name="):
        Namespace(name)


def test_namespace_field_of_other_objects_is_named() -> None:
    with pytest.raises(ValidationError, match=r"Bridge\.netns='x/y'"):
        Bridge("Tbr0", netns="x/y")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("172.18.0.2", "prefix length"),
        ("172.18.0.256/24", "not an address"),
        ("172.18.0.2/33", "not an address"),
        ("localhost/24", "not an address"),
        ("172.18.0.2/24,10.0.0.1/8", "not an address"),
        ("172.018.0.2/24", "not an address"),
        (" 172.18.0.2/24", "white space"),
    ],
)
def test_bad_addresses(value: str, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason) as caught:
        Address("Tveth0", value)
    assert caught.value.field == "Address.address"


def test_subnet_with_host_bits_is_refused() -> None:
    with pytest.raises(ValidationError, match="host bits"):
        NatRule.masquerade("172.18.0.1/24")


def test_bad_gateway() -> None:
    with pytest.raises(ValidationError, match=r"Route\.gateway='gw.example'"):
        Route("default", "gw.example", "Tveth0")


@pytest.mark.parametrize("value", ["1 2", "-1", "1;reboot", True, ""])
def test_bad_sysctl_values(value: object) -> None:
    with pytest.raises(ValidationError, match=r"Sysctl\.value"):
        Sysctl("net.ipv4.ip_forward", value)  # type: ignore[arg-type]


@pytest.mark.parametrize("key", ["ip_forward", "net..x", "net.ipv4/ip_forward", "-w.x"])
def test_bad_sysctl_keys(key: str) -> None:
    with pytest.raises(ValidationError, match=r"Sysctl\.name"):
        Sysctl(key, "1")


@pytest.mark.parametrize("port", [0, 65536, -1, True, "80"])
def test_bad_ports(port: object) -> None:
    with pytest.raises(ValidationError, match=r"NatRule\.dport"):
        NatRule("PREROUTING", "DNAT", protocol="tcp", dport=port, to="1.2.3.4")  # type: ignore[arg-type]


@given(st.text(max_size=40))
def test_interface_name_validator_never_crashes(text: str) -> None:
    try:
        name = v.interface_name("f", text)
    except ValidationError as exc:
        assert exc.field == "f"
        assert exc.value == text
    else:
        raw = name.encode()
        assert 1 <= len(raw) <= 15
        assert not (set(name) & set("/: \t\n%@")), name
        assert not name.startswith("-")
        assert name.isascii() and name.isprintable()


@given(st.text(alphabet=string.printable, max_size=40))
def test_namespace_validator_never_crashes(text: str) -> None:
    try:
        name = v.namespace_name("f", text)
    except ValidationError:
        return
    assert "/" not in name and name not in (".", "..", "all") and not name.startswith("-")


@given(st.one_of(st.text(max_size=50), st.integers(), st.none(), st.binary(max_size=10)))
def test_address_validators_never_crash(value: object) -> None:
    for check in (v.ip_interface, v.ip_network, v.ip_address):
        try:
            check("f", value)
        except ValidationError as exc:
            assert exc.field == "f"


@given(st.text(max_size=30))
def test_nat_target_never_crashes(text: str) -> None:
    try:
        rule = NatRule.publish(80, text)
    except ValidationError as exc:
        assert exc.field == "NatRule.to"
    else:
        assert rule.to is not None and " " not in rule.to


@given(st.one_of(st.text(max_size=40), st.integers(), st.booleans(), st.none()))
def test_sysctl_and_port_validators_never_crash(value: object) -> None:
    for check in (v.sysctl_key, v.sysctl_value, v.port):
        try:
            check("f", value)
        except ValidationError as exc:
            assert exc.field == "f"


def test_a_name_judged_before_still_names_the_field_it_is_in() -> None:
    """Names are judged once and remembered; the error still names the field and value of each use."""
    for field in ("Bridge.name", "VethPair.peer"):
        with pytest.raises(ValidationError) as caught:
            v.interface_name(field, "bad name")
        assert (caught.value.field, caught.value.value) == (field, "bad name")
    for field in ("Namespace.name", "Route.netns"):
        with pytest.raises(ValidationError) as caught:
            v.namespace_name(field, "all")
        assert caught.value.field == field


def test_a_value_that_ends_in_a_newline_is_refused_where_a_pattern_judges_it() -> None:
    """Patterns are matched whole: with ``$``, one final newline would pass, and a newline in an ``ip -batch`` or
    ``iptables-restore`` line starts another command."""
    with pytest.raises(ValidationError, match="MAC"):
        v.mac_address("mac", "02:6e:0a:59:00:02\n")
    with pytest.raises(ValidationError, match="chain name"):
        OwnedChain("NETWRAP-x\n", "nat")
    assert AttachedNamespace("a1", "/proc/42/ns/net").pid == 42
    assert AttachedNamespace("a1", "/proc/42/ns/net/x").pid is None
