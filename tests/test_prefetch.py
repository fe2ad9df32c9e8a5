"""Reads started ahead (netwrap.host.prefetch): a read asked for gets what the read started earlier gave (or its
error), once; nothing that changes the host, nor a read inside a namespace, is ever started ahead; what nobody
asked for is waited for and dropped; the kept list survives only as written."""

from __future__ import annotations

import threading
from pathlib import Path

import attrs
import pytest

from netwrap.command import Command
from netwrap.errors import CommandError
from netwrap.host import prefetch
from netwrap.host.runner import Result

LIST = Command("ip", ("netns", "list"), mutates=False)
SAVE = Command("iptables-save", (), mutates=False)
BATCH = Command("ip", ("-d", "-json", "-batch", "-"), mutates=False, input="link show\n", enter=True)
INSIDE = Command("ip", ("-json", "link", "show"), netns="c1", mutates=False, enter=True)
CHANGE = Command("ip", ("link", "add", "br0", "type", "bridge"))


@attrs.define
class Counting:
    ran: list[Command] = attrs.field(factory=list)
    lock: threading.Lock = attrs.field(factory=threading.Lock)
    failing: frozenset[str] = frozenset()

    def run(self, command: Command) -> Result:
        with self.lock:
            self.ran.append(command)
            number = len(self.ran)
        if command.tool in self.failing:
            raise CommandError(command.argv, 1, "", "boom")
        return Result(command, 0, f"answer {number}", "")


def test_the_same_read_is_started_once_and_a_close_drops_what_nobody_asked_for() -> None:
    inner = Counting()
    ahead = prefetch.Prefetching(inner)
    ahead.start([LIST, LIST, SAVE])
    ahead.close()
    assert sorted(c.tool for c in inner.ran) == ["ip", "iptables-save"]  # the same read once
    assert ahead.run(LIST).stdout == "answer 3"  # dropped at close: read again


def test_the_asker_gets_the_started_reads_answer_and_the_next_ask_runs_it_again() -> None:
    inner = Counting()
    ahead = prefetch.Prefetching(inner)
    ahead.start([LIST])
    first = ahead.run(LIST)
    assert len(inner.ran) == 1 and first.stdout == "answer 1"  # not run a second time
    again = ahead.run(LIST)
    assert again.stdout == "answer 2"  # handed over once: a later ask reads the host again
    assert ahead.asked == [LIST, LIST]
    ahead.close()


def test_a_started_read_that_failed_fails_when_asked() -> None:
    ahead = prefetch.Prefetching(Counting(failing=frozenset({"iptables-save"})))
    ahead.start([SAVE])
    with pytest.raises(CommandError, match="boom"):
        ahead.run(SAVE)
    ahead.close()


def test_changes_and_reads_inside_a_namespace_are_never_started_ahead() -> None:
    inner = Counting()
    ahead = prefetch.Prefetching(inner)
    ahead.start([CHANGE, INSIDE])
    assert inner.ran == []
    ahead.run(CHANGE)
    ahead.run(INSIDE)
    assert inner.ran == [CHANGE, INSIDE]
    assert ahead.asked == []  # and never kept for next time
    ahead.close()


def test_a_read_not_asked_for_is_waited_for_at_close() -> None:
    release = threading.Event()

    @attrs.define
    class Slow:
        finished: list[str] = attrs.field(factory=list)

        def run(self, command: Command) -> Result:
            release.wait(5)
            self.finished.append(command.tool)
            return Result(command, 0, "", "")

    inner = Slow()
    ahead = prefetch.Prefetching(inner)
    ahead.start([SAVE])
    threading.Timer(0.2, release.set).start()
    ahead.close()
    assert inner.finished == ["iptables-save"]  # no read outlives the call


def test_the_kept_reads_round_trip_and_a_damaged_file_keeps_none(tmp_path: Path) -> None:
    path = tmp_path / ".reads.json"
    prefetch.save(path, [LIST, BATCH, SAVE, LIST, INSIDE, CHANGE])
    assert prefetch.load(path) == [LIST, BATCH, SAVE]
    for text in ("", "{", '{"tool": "ip"}', '[{"tool": "ip", "args": "x"}]', '[{"tool": "rm", "args": ["-rf", "/"],'
                 ' "input": null, "enter": false, "ok_codes": [0]}]', "[1]"):  # fmt: skip
        path.write_text(text)
        assert prefetch.load(path) == [], text
    assert prefetch.load(tmp_path / "missing.json") == []
    prefetch.save(tmp_path / "no" / "such" / "folder.json", [LIST])  # cannot be kept: no error


def test_a_read_started_before_a_change_is_not_handed_out_after_it() -> None:
    """A removal that runs before the build changes the host: what was read ahead may show it as it was."""
    inner = Counting()
    ahead = prefetch.Prefetching(inner)
    ahead.start([LIST, SAVE])
    ahead.run(LIST)  # handed out: nothing changed yet
    ahead.run(CHANGE)
    ahead.run(SAVE)
    ahead.close()  # what was started is waited for
    tools = [c.tool for c in inner.ran]
    assert (tools.count("ip"), tools.count("iptables-save")) == (2, 2)  # the list once, then the change; the
    # save started ahead and again after the change, when asked


def test_one_calls_own_paths_are_kept_as_placeholders_and_the_next_call_reads_its_own(tmp_path: Path) -> None:
    """The identities an ADD reads are of its own container's files: the next ADD starts that read with its
    own, and a call without them starts none."""
    memo = tmp_path / "reads.json"
    host = Command("ip", ("netns", "list"), mutates=False)

    def stat(*paths: str) -> Command:
        return Command("stat", ("-L", "--", "/proc/self/ns/net", *paths), mutates=False, ok_codes=frozenset({0, 1}))

    prefetch.save(memo, [host, stat("/run/netns/b1", "/run/netns/cni-1")],
                  {"source": "/run/netns/b1", "named": "/run/netns/cni-1"})  # fmt: skip
    assert "/run/netns/b1" not in memo.read_text()  # nothing of that call is kept but the reads' shape
    assert prefetch.load(memo, {"source": "/run/netns/b2", "named": "/run/netns/cni-2"}) == [
        host,
        stat("/run/netns/b2", "/run/netns/cni-2"),
    ]
    assert prefetch.load(memo) == [host]
    assert prefetch.load(memo, {"source": "/run/netns/b2"}) == [host]  # a particular missing: not started


def test_a_device_a_batch_reads_by_name_is_kept_as_a_placeholder_too(tmp_path: Path) -> None:
    """An ADD reads its own veth's host end by name, in a batch's lines: the next ADD reads its own (a name that
    merely contains the last one's is left as it is)."""
    memo = tmp_path / "reads.json"

    def lean(*lines: str) -> Command:
        text = "".join(f"{line}\n" for line in lines)
        args = ("-d", "-json", "-force", "-batch", "-")
        return Command("ip", args, mutates=False, input=text, enter=True, ok_codes=frozenset({0, 1}))

    read = lean("addr show to 10.0.0.1/32", "addr show dev br0", "addr show dev v0-c1", "addr show dev v0-c10")
    prefetch.save(memo, [read], {"port": "v0-c1"})
    assert "v0-c1\\n" not in memo.read_text()
    again = lean("addr show to 10.0.0.1/32", "addr show dev br0", "addr show dev v0-c2", "addr show dev v0-c10")
    assert prefetch.load(memo, {"port": "v0-c2"}) == [again]
    assert prefetch.load(memo) == []  # without the particular: not started
