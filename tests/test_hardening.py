"""Bad input starts nothing; a failing step is named; locks; retries; fuzzed file reading."""

from __future__ import annotations

import contextlib
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pytest_subprocess import FakeProcess

from netwrap import (
    Address,
    Bridge,
    Namespace,
    NatRule,
    Route,
    StateFile,
    StepError,
    Sysctl,
    ValidationError,
    VethPair,
    build,
    ensure,
    tutorial,
)
from netwrap.cli import doctor
from netwrap.command import Command
from netwrap.engine.lock import StateLock
from netwrap.errors import LockTimeoutError, TopologyError
from netwrap.host.runner import SubprocessRunner
from netwrap.kinds import Rule
from netwrap.topology import files as topofile
from tests.test_tutorial import DOCUMENT, empty_host, fake

BAD_INPUT = [
    lambda: Namespace("../x"),
    lambda: Namespace("a/b"),
    lambda: Namespace(" x"),
    lambda: Namespace("-n"),
    lambda: Namespace("all"),
    lambda: VethPair("", "b0"),
    lambda: VethPair("way-too-long-name", "b0"),
    lambda: VethPair("éééééééé", "b0"),
    lambda: VethPair("a/b", "b0"),
    lambda: VethPair("a:b", "b0"),
    lambda: VethPair("a%d", "b0"),
    lambda: VethPair("a@b", "b0"),
    lambda: VethPair("a\x07", "b0"),
    lambda: VethPair(".", "b0"),
    lambda: VethPair("..", "b0"),
    lambda: VethPair("-x", "b0"),
    lambda: VethPair("a", "b0"),
    lambda: VethPair("dev", "b0"),
    lambda: VethPair("help", "b0"),
    lambda: VethPair("name", "b0"),
    lambda: VethPair("all", "b0"),
    lambda: VethPair("default", "b0"),
    lambda: Bridge("br0\n"),
    lambda: Address("eth0", "10.0.0.256/24"),
    lambda: Address("eth0", "example.com/24"),
    lambda: Address("eth0", "10.0.0.1/24,10.0.0.2/24"),
    lambda: Route("default", "gateway.example"),
    lambda: NatRule.masquerade("10.0.0.1/24"),
    lambda: NatRule.masquerade("10.0.0.0/8,0.0.0.0/0"),
    lambda: NatRule.publish(0, "10.0.0.2:80"),
    lambda: NatRule.publish(65536, "10.0.0.2:80"),
    lambda: NatRule.publish(80, "10.0.0.2:80", protocol="sctp"),  # type: ignore[arg-type]
    lambda: Rule("FORWARD", "ACCEPT", comment="x\n-A FORWARD -j ACCEPT"),
    lambda: Rule("FORWARD", "ACCEPT", comment='say "hi"'),
    lambda: Rule("FORWARD", "ACCEPT", comment="x" * 256),
    lambda: Sysctl("net.ipv4.ip_forward", "1; reboot"),
]


@pytest.mark.parametrize("make", BAD_INPUT)
def test_bad_input_is_refused_and_starts_no_process(fp: FakeProcess, runner: SubprocessRunner, make: Any) -> None:
    with pytest.raises((ValidationError, ValueError)):
        ensure(make(), runner)
    assert len(fp.calls) == 0


@pytest.mark.parametrize("step", range(1, 23))
def test_a_failing_step_is_named_with_its_command_and_stderr(
    fp: FakeProcess, runner: SubprocessRunner, tmp_path: Path, step: int
) -> None:
    answers = empty_host()
    mutations = [c.argv for o in tutorial.objects() for c in o.create_commands()]
    fake(fp, answers, mutations[: step - 1])
    fp.register(list(mutations[step - 1]), returncode=2, stderr="RTNETLINK answers: Operation not supported\n")
    store = StateFile(tmp_path / "t.json")
    with pytest.raises(StepError) as caught:
        build(tutorial.objects(), runner, store)
    err = caught.value
    assert (err.step, err.total) == (step, 22)
    assert err.key == tutorial.objects()[step - 1].key
    assert " ".join(err.argv) == DOCUMENT[step - 1]
    assert "Operation not supported" in err.stderr
    assert f"step {step} of 22" in str(err) and "run again to finish" in str(err)
    record = store.load()
    assert record is not None and not record.complete
    assert record.created[-1].key == err.key or isinstance(tutorial.objects()[step - 1], Sysctl)


def test_a_held_lock_times_out_clearly(tmp_path: Path) -> None:
    expected = r"another netwrap has held .* for more than 0\.1 s"
    with StateLock(tmp_path), pytest.raises(LockTimeoutError, match=expected), StateLock(tmp_path, timeout=0.1):
        pass
    with StateLock(tmp_path, timeout=0.1):  # released
        pass


def test_a_busy_namespace_is_retried(fp: FakeProcess) -> None:
    runner = SubprocessRunner(resolve=lambda t: t, wait=0, attempts=3)
    argv = ["ip", "netns", "del", "Tdocker0"]
    fp.register(
        argv, returncode=1, stderr='Cannot remove namespace file "/run/netns/Tdocker0": Device or resource busy\n'
    )
    fp.register(argv)
    assert runner.run(Command("ip", ("netns", "del", "Tdocker0"))).ok
    assert len(fp.calls) == 2


@given(st.text(max_size=300))
def test_accepted_comments_stay_one_argument(text: str) -> None:
    try:
        rule = Rule("FORWARD", "ACCEPT", comment=text)
    except ValidationError:
        return
    assert rule.comment == text
    assert not any(ch in text for ch in "\n\r\"'\\")
    assert len(text.encode()) <= 255


_VALUES = st.recursive(
    st.one_of(st.text(max_size=12), st.integers(-5, 70000), st.booleans(), st.none()),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=12,
)
_KEYS = st.sampled_from(["subnet", "bridge", "gateway", "nat", "icc", "networks", "ports", "network_mode",
                         "address", "network", "netns", "bogus"])  # fmt: skip


@settings(max_examples=300)
@given(
    st.dictionaries(st.sampled_from(["name", "style", "networks", "containers", "x"]), _VALUES, max_size=4),
    st.dictionaries(st.text(min_size=1, max_size=6), st.dictionaries(_KEYS, _VALUES, max_size=4), max_size=3),
)
def test_topology_reader_only_ever_raises_topology_error(top: dict[str, Any], tables: dict[str, Any]) -> None:
    for key in ("networks", "containers"):
        data = dict(top)
        data[key] = tables
        try:
            topofile.from_dict(json.loads(json.dumps(data, default=str)), "fuzz.toml")
        except TopologyError as exc:
            assert str(exc).startswith("fuzz.toml: ")


@given(st.text(max_size=200))
def test_toml_text_only_ever_raises_topology_error(text: str) -> None:
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        with pytest.raises(TopologyError, match=r"\[file\] syntax"):
            topofile.loads(text, "f.toml")
        return
    with contextlib.suppress(TopologyError):
        topofile.loads(text, "f.toml")


def test_doctor_names_what_is_missing_and_the_fix(fp: FakeProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("netwrap.cli.doctor.find_tool", lambda name: None if name in ("brctl", "ping") else name)
    monkeypatch.setattr("netwrap.host.runner.find_tool", lambda name: name)
    fp.register(["cat", "/proc/self/status"], stdout="Uid:\t1000\t1000\t1000\t1000\nCapEff:\t0000000000000000\n")
    fp.register(["ip", "-V"], stdout="ip utility, iproute2-ss171113\n")
    fp.register(["ip", "-json", "link", "show", "lo"], stdout="1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536\n")
    fp.register(["iptables", "--version"], stdout="iptables v1.8.9 (nf_tables)\n")
    fp.register(["cat", "/proc/net/ip_tables_names"], stdout="nat\nfilter\n")
    fp.register(["iptables", "-S", "FORWARD"], stdout="-P FORWARD DROP\n")
    fp.register(["sysctl", "-n", "net.ipv4.ip_forward"], stdout="0\n")
    fp.register(["cat", "/proc/sys/net/bridge/bridge-nf-call-iptables"], returncode=1)
    checks = {c.name: c for c in doctor.diagnose(SubprocessRunner(resolve=lambda t: t))}
    assert checks["ping"].status == "fail" and "apt-get install iputils-ping" in checks["ping"].fix
    assert checks["privileges"].status == "fail" and "run as root" in checks["privileges"].fix
    assert checks["ip -json"].status == "warn"
    assert checks["brctl"].status == "warn" and "iproute2 instead" in checks["brctl"].fix
    assert checks["iptables backends"].found == "legacy tables present too: nat, filter"
    assert checks["FORWARD policy"].status == "warn"
    report = doctor.render(list(checks.values()))
    assert report.splitlines()[-1] == "2 missing, 4 to know about"
