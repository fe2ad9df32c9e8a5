"""The tutorial: the document's commands in its order, an idempotent up, and a clean down."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pytest_subprocess import FakeProcess

from netwrap import ConflictError, NatRule, StateFile, build, teardown, tutorial
from netwrap.host.runner import SubprocessRunner
from tests.conftest import fixture_text

# The contract: TUTORIAL.md's 22 commands, with its defects corrected as it says.
DOCUMENT = [
    "ip netns add Tdocker0",
    "ip netns add Tdocker1",
    "ip link add Tveth0 type veth peer name Tveth1",
    "ip link add Tveth2 type veth peer name Tveth3",
    "ip link set Tveth0 netns Tdocker0",
    "ip link set Tveth2 netns Tdocker1",
    "brctl addbr Tbr0",
    "brctl addif Tbr0 Tveth1",
    "brctl addif Tbr0 Tveth3",
    "ip netns exec Tdocker0 ip addr add 172.18.0.2/24 dev Tveth0",
    "ip netns exec Tdocker0 ip link set Tveth0 up",
    "ip netns exec Tdocker1 ip addr add 172.18.0.3/24 dev Tveth2",
    "ip netns exec Tdocker1 ip link set Tveth2 up",
    "ip link set Tveth1 up",
    "ip link set Tveth3 up",
    "ip addr add 172.18.0.1/24 dev Tbr0",
    "ip link set Tbr0 up",
    "ip netns exec Tdocker0 ip route add default via 172.18.0.1 dev Tveth0",
    "ip netns exec Tdocker1 ip route add default via 172.18.0.1 dev Tveth2",
    "sysctl net.ipv4.ip_forward=1",
    "iptables -t nat -A POSTROUTING -s 172.18.0.0/24 ! -o Tbr0 -j MASQUERADE",
    "iptables -t nat -A PREROUTING ! -i Tbr0 -p tcp -m tcp --dport 80 -j DNAT --to-destination 172.18.0.2:80",
]
IPROUTE2_BRIDGE = {
    7: "ip link add Tbr0 type bridge",
    8: "ip link set Tveth1 master Tbr0",
    9: "ip link set Tveth3 master Tbr0",
}


def creates(tool: str = "brctl") -> list[str]:
    return [c.shell() for step in tutorial.steps(tool) for c in step.obj.create_commands()]  # type: ignore[arg-type]


def test_steps_are_the_documents_commands_in_its_order() -> None:
    assert [s.number for s in tutorial.steps()] == list(range(1, 23))
    assert creates() == DOCUMENT


def test_iproute2_bridge_replaces_only_steps_7_to_9() -> None:
    expected = [IPROUTE2_BRIDGE.get(n, cmd) for n, cmd in enumerate(DOCUMENT, start=1)]
    assert creates("ip") == expected
    assert tutorial.steps("ip")[6].original == "brctl addbr Tbr0"


def test_the_documents_defects_are_shown_where_corrected() -> None:
    steps = {s.number: s for s in tutorial.steps()}
    assert steps[18].original == "ip netns exec docker0 route add default gw 172.18.0.1 veth0"
    assert steps[19].original == "ip netns exec docker1 route add default gw 172.18.0.1 veth2"
    assert "iproute2" in steps[18].note


def test_script_runs_the_commands_in_order() -> None:
    script = tutorial.render_script(tutorial.steps())
    assert script.startswith("#!/usr/bin/env bash\n")
    lines = [line for line in script.splitlines() if line and not line.startswith("#")]
    assert lines == ["set -euo pipefail", *DOCUMENT]
    assert "# 18. default route in container 0" in script
    assert "#   the document writes: ip netns exec docker0 route add default gw 172.18.0.1 veth0" in script


def test_down_script_reverses_and_tolerates_what_is_gone() -> None:
    script = tutorial.render_down_script(tutorial.steps())
    lines = [line for line in script.splitlines() if line and not line.startswith("#")]
    assert lines == [
        "set -uo pipefail",
        "iptables -t nat -D PREROUTING ! -i Tbr0 -p tcp -m tcp --dport 80 -j DNAT "
        "--to-destination 172.18.0.2:80 || true",
        "iptables -t nat -D POSTROUTING -s 172.18.0.0/24 ! -o Tbr0 -j MASQUERADE || true",
        "ip link set Tbr0 down || true",
        "brctl delbr Tbr0 || true",
        "ip link del Tveth3 || true",
        "ip link del Tveth1 || true",
        "ip netns del Tdocker1 || true",
        "ip netns del Tdocker0 || true",
    ]
    assert "# sysctl net.ipv4.ip_forward=0" in script


# --- up and down with faked processes -------------------------------------------------------

LINKS = ("ip", "-d", "-json", "link", "show")
ADDRS = ("ip", "-json", "addr", "show")
ROUTES = ("ip", "-json", "route", "show")
NETNS = ("ip", "netns", "list")
NAT = ("iptables", "-t", "nat", "-S")
SYSCTL = ("sysctl", "-n", "net.ipv4.ip_forward")
RULES = [s.obj for s in tutorial.steps() if isinstance(s.obj, NatRule)]
Answers = dict[tuple[str, ...], tuple[int, str]]


def _in(ns: str, argv: tuple[str, ...]) -> tuple[str, ...]:
    """A read inside namespace ``ns``, as observe runs it (nsenter: no mount table copied)."""
    return ("nsenter", f"--net=/run/netns/{ns}", "--", *argv)


def built_host() -> Answers:
    """What a host with the whole tutorial answers to each read (captured output)."""
    answers = {
        NETNS: (0, fixture_text("tutorial_netns_list.txt")),
        LINKS: (0, fixture_text("tutorial_host_links.json")),
        ADDRS: (0, fixture_text("tutorial_host_addr.json")),
        ROUTES: (0, fixture_text("empty_routes.json")),
        NAT: (0, fixture_text("tutorial_nat_S.txt")),
        SYSCTL: (0, fixture_text("ip_forward_1.txt")),
    }
    for ns, n in (("Tdocker0", 0), ("Tdocker1", 1)):
        answers[_in(ns, LINKS)] = (0, fixture_text(f"tutorial_docker{n}_links.json"))
        answers[_in(ns, ADDRS)] = (0, fixture_text(f"tutorial_docker{n}_addr.json"))
        answers[_in(ns, ROUTES)] = (0, fixture_text(f"tutorial_docker{n}_routes.json"))
    return answers


def empty_host() -> Answers:
    return {
        NETNS: (0, ""),
        LINKS: (0, fixture_text("empty_links.json")),
        ADDRS: (0, fixture_text("empty_addr.json")),
        ROUTES: (0, fixture_text("empty_routes.json")),
        NAT: (0, fixture_text("legacy_nat_S.txt")),
        SYSCTL: (0, fixture_text("ip_forward_0.txt")),
    }


SHOWS = {"link show": LINKS, "addr show": ADDRS, "route show": ROUTES}


def batch_read(netns: str | None) -> tuple[str, ...]:
    """How observe reads one namespace's facts in one process."""
    read = ("ip", "-d", "-json", "-batch", "-")
    return _in(netns, read) if netns else read


def _places(answers: Answers) -> set[str | None]:
    places: set[str | None] = set()
    for argv in answers:
        if argv in (LINKS, ADDRS, ROUTES):
            places.add(None)
        elif argv[0] == "nsenter" and argv[3:] in (LINKS, ADDRS, ROUTES):
            places.add(argv[1].removeprefix("--net=/run/netns/"))
    return places


def fake(fp: FakeProcess, answers: Answers, mutations: list[tuple[str, ...]]) -> None:
    """Answer every read from ``answers`` (per fact, as captured), batched reads included; then ``mutations``."""
    for argv, (code, out) in answers.items():
        fp.register(list(argv), returncode=code, stdout=out, occurrences=100)
    for netns in _places(answers):

        def respond(text: str, netns: str | None = netns) -> dict[str, str]:
            parts = []
            for line in text.splitlines():
                fact = SHOWS[line.strip()]
                parts.append(answers[fact if netns is None else _in(netns, fact)][1].strip() or "[]")
            return {"stdout": "\n".join(parts) + "\n"}

        fp.register(list(batch_read(netns)), stdin_callable=respond, occurrences=100)
    for argv in mutations:
        fp.register(list(argv))


def seen(fp: FakeProcess) -> list[tuple[str, ...]]:
    return [tuple(str(word) for word in call) for call in fp.calls]


def mutating_calls(fp: FakeProcess, answers: Answers) -> list[str]:
    reads = set(answers) | {batch_read(place) for place in _places(answers)}
    return [" ".join(argv) for argv in seen(fp) if argv not in reads]


def test_up_on_an_empty_host_runs_the_document_in_order(
    fp: FakeProcess, runner: SubprocessRunner, tmp_path: Path
) -> None:
    answers = empty_host()
    fake(fp, answers, [c.argv for o in tutorial.objects() for c in o.create_commands()])
    store = StateFile(tmp_path / "tutorial.json")
    outcome = build(tutorial.objects(), runner, store)
    assert mutating_calls(fp, answers) == DOCUMENT
    assert len(outcome.changed) == 22
    # observed in bulk first, a few reads at once: namespaces, the host's links and addresses (one process),
    # nat, ip_forward
    assert sorted(seen(fp)[:4]) == sorted([NETNS, batch_read(None), NAT, SYSCTL])
    record = store.load()
    assert record is not None
    assert record.complete
    assert record.previous == {"sysctl::net.ipv4.ip_forward": "0"}
    assert [o.key for o in record.created] == [o.key for o in tutorial.objects()]


def test_up_on_a_built_host_only_reads_once_per_namespace_and_fact(
    fp: FakeProcess, runner: SubprocessRunner, tmp_path: Path
) -> None:
    answers = built_host()
    fake(fp, answers, [])
    store = StateFile(tmp_path / "t.json")
    outcome = build(tutorial.objects(), runner, store)
    assert outcome.changed == ()
    assert mutating_calls(fp, answers) == []
    # netns list; one read of the host; one of each container; nat; sysctl
    assert len(fp.calls) == 1 + 1 + 2 + 1 + 1
    assert store.load() is None  # nothing was created, so nothing is claimed


def test_up_with_a_conflict_changes_nothing(fp: FakeProcess, runner: SubprocessRunner, tmp_path: Path) -> None:
    answers = empty_host()
    answers[LINKS] = (0, fixture_text("conflict_links.json"))
    answers[ADDRS] = (0, fixture_text("conflict_addr.json"))
    fake(fp, answers, [])
    store = StateFile(tmp_path / "t.json")
    with pytest.raises(ConflictError) as caught:
        build(tutorial.objects(), runner, store)
    message = str(caught.value)
    assert message.startswith("nothing was changed")
    assert "Tveth0 exists on the host but its peer is Tvethz, not Tveth1" in message
    assert "Tbr0 exists on the host but is a veth, not a bridge" in message
    assert "Tveth1 is already a port of Tother, not of Tbr0" in message
    assert "172.18.0.1 is already on Tother" in message
    assert mutating_calls(fp, answers) == []
    assert store.load() is None


def test_down_removes_what_up_recorded_in_reverse(fp: FakeProcess, runner: SubprocessRunner, tmp_path: Path) -> None:
    store = StateFile(tmp_path / "t.json")
    with fp.context() as before:
        fake(before, empty_host(), [c.argv for o in tutorial.objects() for c in o.create_commands()])
        build(tutorial.objects(), runner, store)
    answers = built_host()
    removals = [
        *(r.delete_commands()[0].argv for r in reversed(RULES)),
        ("sysctl", "net.ipv4.ip_forward=0"),
        ("ip", "link", "set", "Tbr0", "down"),
        ("brctl", "delbr", "Tbr0"),
        ("ip", "link", "del", "Tveth3"),
        ("ip", "link", "del", "Tveth1"),
        ("ip", "netns", "del", "Tdocker1"),
        ("ip", "netns", "del", "Tdocker0"),
    ]
    fake(fp, answers, removals)
    teardown(runner, store)
    assert mutating_calls(fp, answers) == [" ".join(argv) for argv in removals]
    assert store.load() is None


def test_down_leaves_what_existed_before(fp: FakeProcess, runner: SubprocessRunner, tmp_path: Path) -> None:
    """A host that had everything but the routes, ip_forward and the rules: down takes only those."""
    store = StateFile(tmp_path / "t.json")
    answers = built_host()
    answers[SYSCTL] = (0, "0\n")
    answers[NAT] = (0, fixture_text("legacy_nat_S.txt"))
    for ns in tutorial.CONTAINERS:
        answers[_in(ns, ROUTES)] = (0, fixture_text("empty_routes.json"))
    made = [
        ("ip", "netns", "exec", "Tdocker0", "ip", "route", "add", "default", "via", "172.18.0.1", "dev", "Tveth0"),
        ("ip", "netns", "exec", "Tdocker1", "ip", "route", "add", "default", "via", "172.18.0.1", "dev", "Tveth2"),
        ("sysctl", "net.ipv4.ip_forward=1"),
        *(r.create_commands()[0].argv for r in RULES),
    ]
    with fp.context() as before:
        fake(before, answers, made)
        outcome = build(tutorial.objects(), runner, store)
    assert len(outcome.changed) == 5
    answers = built_host()
    removals = [
        *(r.delete_commands()[0].argv for r in reversed(RULES)),
        ("sysctl", "net.ipv4.ip_forward=0"),
        ("ip", "netns", "exec", "Tdocker1", "ip", "route", "del", "default", "via", "172.18.0.1", "dev", "Tveth2"),
        ("ip", "netns", "exec", "Tdocker0", "ip", "route", "del", "default", "via", "172.18.0.1", "dev", "Tveth0"),
    ]
    fake(fp, answers, removals)
    teardown(runner, store)
    assert mutating_calls(fp, answers) == [" ".join(argv) for argv in removals]


def test_down_with_pieces_already_gone_succeeds(fp: FakeProcess, runner: SubprocessRunner, tmp_path: Path) -> None:
    """Someone deleted Tdocker0 (taking Tveth0 and Tveth1 with it): down removes the rest."""
    store = StateFile(tmp_path / "t.json")
    with fp.context() as before:
        fake(before, empty_host(), [c.argv for o in tutorial.objects() for c in o.create_commands()])
        build(tutorial.objects(), runner, store)
    answers = built_host()
    answers[NETNS] = (0, "Tdocker1 (id: 1)\n")
    links = [x for x in json.loads(fixture_text("tutorial_host_links.json")) if x["ifname"] != "Tveth1"]
    answers[LINKS] = (0, json.dumps(links))
    for fact in (LINKS, ADDRS, ROUTES):
        del answers[_in("Tdocker0", fact)]
    removals = [
        *(r.delete_commands()[0].argv for r in reversed(RULES)),
        ("sysctl", "net.ipv4.ip_forward=0"),
        ("ip", "link", "set", "Tbr0", "down"),
        ("brctl", "delbr", "Tbr0"),
        ("ip", "link", "del", "Tveth3"),
        ("ip", "netns", "del", "Tdocker1"),
    ]
    fake(fp, answers, removals)
    assert len(teardown(runner, store).changed) == 6
    assert mutating_calls(fp, answers) == [" ".join(argv) for argv in removals]


def test_down_without_a_record_removes_nothing(fp: FakeProcess, runner: SubprocessRunner, tmp_path: Path) -> None:
    outcome = teardown(runner, StateFile(tmp_path / "none.json"))
    assert outcome.changed == ()
    assert len(fp.calls) == 0
    assert any("no record" in note and "nothing removed" in note for note in outcome.notes)


@pytest.mark.parametrize("tool", ["brctl", "ip"])
def test_objects_follow_the_steps(tool: str) -> None:
    assert tutorial.objects(tool) == tuple(s.obj for s in tutorial.steps(tool))  # type: ignore[arg-type]
