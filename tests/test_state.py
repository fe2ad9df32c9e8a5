"""The record of what netwrap created: round trips, damage, and what clean makes of it."""

from __future__ import annotations

import gc
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pytest_subprocess import FakeProcess

from netwrap import NetwrapError, OwnedChain, Rule, StateFile, Sysctl, ValidationError, tutorial
from netwrap.engine import serial, state
from netwrap.engine.check import observe_for
from netwrap.engine.clean import clean, survey
from netwrap.engine.state import Record, Writer, _process_start
from netwrap.host.runner import SubprocessRunner
from netwrap.topology import compose
from netwrap.topology import files as topofile
from tests.conftest import count_calls, fixture_text

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_every_tutorial_object_round_trips() -> None:
    for obj in tutorial.objects() + tutorial.objects("ip"):
        assert serial.from_dict(json.loads(json.dumps(serial.to_dict(obj)))) == obj


def test_a_tampered_object_is_refused_like_bad_input() -> None:
    with pytest.raises(ValidationError, match=r"Namespace\.name='\.\./etc'"):
        serial.from_dict({"type": "Namespace", "name": "../etc"})
    with pytest.raises(NetwrapError, match="unknown object type 'Shell'"):
        serial.from_dict({"type": "Shell", "command": "reboot"})
    with pytest.raises(NetwrapError, match="cannot rebuild Namespace"):
        serial.from_dict({"type": "Namespace", "name": "x", "extra": 1})


def test_record_round_trip(tmp_path: Path) -> None:
    store = StateFile.in_dir(tmp_path / "deep" / "dir", "tutorial")
    record = Record(action="up")
    for obj in tutorial.objects():
        if isinstance(obj, Sysctl):
            record.add_remembered(obj, "0")
        else:
            record.add(obj)
    assert not record.add(tutorial.objects()[0])
    record.add_remembered(Sysctl("net.ipv4.ip_forward", "1"), "1")  # a later change keeps the first value
    store.save(record)
    loaded = store.load()
    assert loaded is not None
    assert loaded.created == record.created
    assert loaded.previous == {"sysctl::net.ipv4.ip_forward": "0"}
    assert loaded.writer == Writer.current()
    assert oct(store.path.parent.stat().st_mode & 0o777) == "0o700"
    assert [p.name for p in store.path.parent.iterdir()] == ["tutorial.json"]  # no temporary file left


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not valid JSON"),
        ('{"version": 1, "created": []}', "unknown form"),
        ('{"version": 2, "complete": true, "writer": {"pid": 1, "start": 1}, "previous": {}}', "damaged"),
        (
            '{"version": 2, "complete": true, "writer": {"pid": 1, "start": 1}, "previous": [], "created": []}',
            "previous",
        ),
    ],
)
def test_a_damaged_record_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    store = StateFile(tmp_path / "t.json")
    store.path.write_text(text)
    with pytest.raises(NetwrapError, match=message):
        store.load()


def test_a_writer_is_alive_only_with_its_own_start_time() -> None:
    me = Writer.current()
    assert me.alive()
    assert not Writer(me.pid, (me.start or 0) + 1).alive()  # a reused pid
    assert not Writer(2**22 + 12345, 1).alive()


def _record(path: Path, *, complete: bool, writer: Writer) -> StateFile:
    store = StateFile(path)
    record = Record(complete=complete, writer=writer, action="up")
    record.add(tutorial.objects()[0])
    store.save(record)
    return store


def test_survey_tells_crashed_running_and_finished_apart(tmp_path: Path) -> None:
    _record(tmp_path / "a.json", complete=False, writer=Writer(2**22 + 1, 1))
    _record(tmp_path / "b.json", complete=False, writer=Writer.current())
    _record(tmp_path / "c.json", complete=True, writer=Writer(2**22 + 1, 1))
    (tmp_path / "d.json").write_text("{")
    damaged = json.loads((tmp_path / "a.json").read_text())
    damaged["created"][0]["name"] = "../etc"  # its key is fine, the object is not
    (tmp_path / "e.json").write_text(json.dumps(damaged))
    found = {item.file.name: item for item in survey(tmp_path)}
    assert {name: item.status for name, item in found.items()} == {
        "a": "crashed",
        "b": "running",
        "c": "kept",
        "d": "unreadable",
        "e": "unreadable",
    }
    assert "ended before finishing" in found["a"].describe()
    assert survey(tmp_path / "missing") == []


def test_clean_tears_down_only_crashed_runs(fp: FakeProcess, runner: SubprocessRunner, tmp_path: Path) -> None:
    crashed = _record(tmp_path / "a.json", complete=False, writer=Writer(2**22 + 1, 1))
    kept = _record(tmp_path / "c.json", complete=True, writer=Writer(2**22 + 1, 1))
    fp.register(["ip", "netns", "list"], stdout=fixture_text("tutorial_netns_list.txt"))
    fp.register(["ip", "-d", "-json", "-batch", "-"], stdout=fixture_text("empty_links.json") + "[]\n[]\n")
    for ns in ("Tdocker1", "Tdocker0"):
        fp.register(["ip", "-d", "-json", "-n", ns, "-batch", "-"], stdout="[]\n[]\n[]\n")
    fp.register(["ip", "netns", "del", "Tdocker0"])
    ((item, outcome),) = clean(runner, tmp_path)
    assert item.file == crashed
    assert outcome.changed == ("netns:Tdocker0",)
    assert not crashed.path.exists()
    assert kept.path.exists()


def test_a_record_read_rebuilds_its_objects_only_when_they_are_used(tmp_path: Path) -> None:
    store = StateFile(tmp_path / "t.json")
    record = Record(action="up")
    for obj in tutorial.objects():
        record.add(obj)
    store.save(record)
    data = json.loads(store.path.read_text())
    assert data["keys"] == [o.key for o in tutorial.objects()]
    loaded = Record.from_json(data)
    assert loaded.keys() == data["keys"]
    assert loaded._created is None  # as written by netwrap (its digest holds): not rebuilt yet
    assert loaded.copy().to_json() == data  # passed on as read
    assert [o.key for o in loaded.created] == data["keys"]


def test_a_removal_rebuilds_only_what_goes_and_keeps_the_rest_as_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = StateFile(tmp_path / "t.json")
    record = Record(action="up")
    objects = tutorial.objects()
    for obj in objects:
        record.add(obj)
    store.save(record)
    loaded = Record.from_json(json.loads(store.path.read_text()))
    assert loaded._created is None  # as read: nothing rebuilt yet
    going = {objects[1].key, objects[-1].key}
    rebuilt = count_calls(monkeypatch, serial, "from_dict")
    assert loaded.created_among(going) == [objects[1], objects[-1]]
    assert len(rebuilt) == 2  # those two alone
    loaded.drop(going)
    assert loaded._created is None  # the rest as read
    assert loaded.keys() == [o.key for o in objects if o.key not in going]
    store.save(loaded)
    again = Record.from_json(json.loads(store.path.read_text()))
    assert again.created == [o for o in objects if o.key not in going]
    loaded.created.remove(objects[0])  # rebuilt: both work on the objects too
    loaded.drop({objects[2].key})
    assert loaded.created_among({objects[3].key}) == [objects[3]]
    assert loaded.keys() == [o.key for o in objects[3:-1]]


def test_a_damaged_object_is_seen_when_the_record_is_read(tmp_path: Path) -> None:
    """Its key is fine, the object is not: reading the keys alone would say "nothing to do" and fail later."""
    store = _edited_record(tmp_path, lambda data: data["created"][0].update(name="../etc"))
    with pytest.raises(NetwrapError, match=r"damaged.*Namespace\.name='\.\./etc'"):
        store.load()


def _edited_record(
    tmp_path: Path, edit: Callable[[dict[str, Any]], None], separators: tuple[str, str] | None = None
) -> StateFile:
    """A record of one object, written, then its file edited by ``edit`` (and written with ``separators``)."""
    store = StateFile(tmp_path / "t.json")
    record = Record(action="up")
    record.add(tutorial.objects()[0])
    store.save(record)
    data = json.loads(store.path.read_text())
    edit(data)
    store.path.write_text(json.dumps(data, separators=separators))
    return store


def test_a_damaged_object_in_a_file_of_netwraps_own_form_is_seen_too(tmp_path: Path) -> None:
    """Written back compact, as netwrap writes: read item by item, the digest is checked on the text as read."""
    store = _edited_record(tmp_path, lambda data: data["created"][0].update(name="../etc"), (",", ":"))
    with pytest.raises(NetwrapError, match=r"damaged.*Namespace\.name='\.\./etc'"):
        store.load()


def test_a_record_laid_out_by_hand_is_read_as_it_was_written(tmp_path: Path) -> None:
    store = _edited_record(tmp_path, lambda data: None)  # the same record, with json.dumps's spaces
    assert store.path.read_text().count('": ') > 3
    loaded = store.load()
    assert loaded is not None and loaded.created == [tutorial.objects()[0]]


def test_a_record_read_is_written_again_without_encoding_its_objects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CNI call reads a record of hundreds of objects and writes it back with one more container: only what it
    adds is encoded, the rest is written as it was read."""
    store = StateFile(tmp_path / "t.json")
    objects = tutorial.objects()
    record = Record(action="up")
    for obj in objects[:-1]:
        record.add(obj)
    store.save(record)
    written = store.path.read_text()
    state._LOADED.clear()  # as a fresh process finds it
    encoded = count_calls(monkeypatch, state, "_encode")
    loaded = store.load()
    assert loaded is not None and loaded._created is None
    assert encoded == []  # its digest checked on the text as read
    assert loaded.to_text() == written  # byte for byte
    assert len(encoded) == 1  # the other fields, not one object
    loaded.add(objects[-1])
    again = loaded.to_text()
    assert len(encoded) == 3  # and then the one object added
    assert Record.from_text(again).keys() == [o.key for o in objects]


def test_an_object_that_is_not_the_one_its_key_names_is_refused(tmp_path: Path) -> None:
    store = _edited_record(tmp_path, lambda data: data["created"][0].update(name="Tother"))
    with pytest.raises(NetwrapError, match="object 1 is netns:Tother, its key says netns:Tdocker0"):
        store.load()


def test_a_record_without_keys_is_rebuilt_at_once(tmp_path: Path) -> None:
    def written_before_keys(data: dict[str, Any]) -> None:
        del data["keys"]
        data["created"][0]["name"] = "-bad"

    store = _edited_record(tmp_path, written_before_keys)
    with pytest.raises(NetwrapError, match="damaged"):
        store.load()


def test_a_writer_that_ended_but_was_not_reaped_is_dead() -> None:
    """A killed writer whose parent has not waited for it is a zombie (state Z): it runs nothing, so its
    unfinished record is a crashed run's, which clean removes."""
    child = subprocess.Popen(["true"])
    try:
        writer = Writer(child.pid, _process_start(child.pid))
        deadline = time.monotonic() + 5
        while "Z" not in Path(f"/proc/{child.pid}/stat").read_text().split(")")[-1].split()[:1]:
            assert time.monotonic() < deadline, "the child did not end"
            time.sleep(0.01)
        assert writer.start is not None
        assert not writer.alive()
        assert Writer.current().alive()
    finally:
        child.wait()


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.toml")))
def test_a_description_equals_its_own_round_trip_through_a_record(example: str, tmp_path: Path) -> None:
    """The record check tells what changed by comparing a wanted object's description with the one the record
    file holds: every kind's must come back equal (a tuple written as a list once made every chain changed)."""
    topo = topofile.load(EXAMPLES / example)
    objects = compose.objects(topo, compose.allocate(topo))
    for obj in objects:
        described = serial.to_dict(obj)
        assert json.loads(json.dumps(described)) == described, obj.key
    store = StateFile(tmp_path / "t.json")
    record = Record(list(objects), complete=True, uses=[o.key for o in objects])
    store.save(record)
    read = Record.from_json(json.loads(store.path.read_text()))
    checked = observe_for(SubprocessRunner(), objects, read, "record")  # nothing new or changed: no process
    assert checked.trusted == {o.key for o in objects}


def _saved_text() -> str:
    record = Record(action="up", writer=Writer(1, 1))
    for obj in tutorial.objects():
        record.add(obj)
    return record.to_text()


@given(st.integers(min_value=0), st.sampled_from(['"', ",", "]", "[", "}", " ", "x", "1", "\\\\"]), st.booleans())
@settings(max_examples=300, deadline=None)
def test_a_record_text_read_item_by_item_reads_as_the_whole_text_does(at: int, char: str, insert: bool) -> None:
    """Whatever one character changes in a record's file, reading it item by item gives what reading it whole
    (``json.loads`` then :meth:`Record.from_json`) gives, or fails as that does."""
    text = _saved_text()
    at %= len(text)
    edited = text[:at] + char + text[at + (0 if insert else 1) :]

    def read(how: Callable[[str], Record]) -> object:
        try:
            record = how(edited)
            return record.to_json(), record._created is None
        except (NetwrapError, ValueError) as exc:
            return type(exc)

    assert read(Record.from_text) == read(lambda t: Record.from_json(json.loads(t)))


def test_an_object_is_described_once_while_it_lives() -> None:
    """A build compares every wanted object's description with the record's, then writes it: once each."""
    chain = OwnedChain("NETWRAP-x", "nat", tuple(Rule("NETWRAP-x", "ACCEPT", dport=p, protocol="tcp", table="nat")
                                                  for p in range(8000, 8010)))  # fmt: skip
    first = serial.to_dict(chain)
    assert serial.to_dict(chain) is first  # not described again
    same = OwnedChain("NETWRAP-x", "nat", chain.rules)  # equal, another object: its own, equal description
    assert serial.to_dict(same) == first and serial.to_dict(same) is not first
    known = len(serial._DESCRIBED)
    del chain, same, first
    gc.collect()
    assert len(serial._DESCRIBED) <= known - 2  # forgotten with the objects: nothing kept past its object
