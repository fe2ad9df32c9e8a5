"""Build an ordered list of objects on a host, and take it down again.

``build`` observes the host once, plans, and stops with every conflict before
changing anything. Then it creates what is missing, in order, recording each
object in the :class:`~netwrap.engine.state.Store` *before* creating it (and each
sysctl's earlier value before changing it). With ``prune`` it first removes
what an earlier build recorded but is no longer wanted.

``teardown`` reads the record and walks it backwards: it removes only what the
record says netwrap created, skips what goes away with its owner (an address on
a deleted veth, anything inside a deleted namespace), restores each sysctl,
takes "already gone" for success, and hands an object that another record
still uses over to that record instead of removing it.
"""

from __future__ import annotations

import contextlib
import functools
import operator
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import attrs

from netwrap.command import Command
from netwrap.engine import claims, registry
from netwrap.engine.batch import Mode, Step, StepFailure, execute
from netwrap.engine.check import Check, Checked, Scope, apart, for_removal, observe_for, scope_of
from netwrap.engine.plan import Plan, PlanItem, plan
from netwrap.engine.state import Record, StateFile, Store, Writer
from netwrap.errors import CommandError, ConflictError, StepError
from netwrap.host.observe import HostState, observe
from netwrap.host.runner import Runner, run_dir_of
from netwrap.kinds import Gone, NetObject

# What the tools say when the thing to delete is already gone.
_NO_NAMESPACE = ("cannot open /run/netns/", "Cannot open network namespace")  # nsenter's, ip's
_GONE = (
    "Cannot find device",
    "does not exist",
    "No such device",
    "No such process",
    "No such file or directory",
    "Cannot assign requested address",
    "does a matching rule exist",
    "Cannot open network namespace",
    "No chain/target/match by that name",
)

Progress = Callable[[int, int, PlanItem], None]


@attrs.frozen
class Outcome:
    """What a build or teardown did: the keys it changed and anything worth telling."""

    changed: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def plan_for(objects: Sequence[NetObject], runner: Runner) -> Plan:
    """Observe the host (in bulk) and plan ``objects`` against it; runs only reads."""
    return plan(objects, observe(runner, objects))


def _conflict_error(conflicts: Sequence[str]) -> ConflictError:
    lines = "\n".join(f"  - {c}" for c in conflicts)
    return ConflictError(f"nothing was changed; the host has conflicting objects:\n{lines}")


def build(
    objects: Sequence[NetObject],
    runner: Runner,
    store: Store,
    *,
    action: str = "up",
    finish: bool = True,
    prune: bool = False,
    allocations: dict[str, str] | None = None,
    progress: Progress | None = None,
    mode: Mode = "verbatim",
    check: Check = "all",
    on_checked: Callable[[Checked], None] | None = None,
    siblings: Sequence[StateFile] | None = None,
) -> Outcome:
    """Create what is missing of ``objects``, in order; conflicts stop it before any change.

    ``finish`` marks the record complete at the end (a network meant to stay);
    without it the record stays "in progress" until :func:`teardown`, so that
    ``netwrap clean`` removes it if this process dies first. ``prune`` first
    removes what the record holds but ``objects`` no longer want. ``mode``
    runs the commands one by one (``verbatim``) or regrouped into a few
    processes (``batch``, see :mod:`netwrap.engine.batch`); the result is the same.
    ``check="host"`` reads inside a namespace only when its host side is not as
    the last apply left it (see :mod:`netwrap.engine.check`); ``on_checked`` is told
    what the check observed. Before anything is read, the wanted objects'
    claims are checked against what the other records of the host hold
    (``siblings``, by default every other record of the same machine beside a
    :class:`~netwrap.engine.state.StateFile`; see :mod:`netwrap.engine.claims`).
    """
    taken = claims.conflicts(objects, claims.others(store, runner) if siblings is None else siblings)
    if taken:
        raise _conflict_error(taken)
    record = store.load()
    wanted = {obj.key for obj in objects}
    stale: list[NetObject] = []
    if prune and record is not None and not wanted.issuperset(record.keys()):  # keys: no object is rebuilt
        stale = record.created_among(set(record.keys()) - wanted)  # and then only those that go
    # Removing what is no longer wanted runs beside the rest of the build when neither touches what the other
    # reads or changes (a CNI DEL: the container's devices go while the chains lose its rules); else first.
    beside = bool(stale) and mode == "batch" and getattr(runner, "concurrent", True)
    scope = scope_of(objects, record, check)  # worked out once: the check below reads for the same objects
    beside = beside and apart(stale, scope.looked)
    guard = threading.Lock()  # the record is changed and saved by one side at a time
    # what goes, as what stays; batched only: its fallback looks again where netwrap's name for a namespace is gone
    trusted = check == "record" and mode == "batch" and record is not None and record.complete
    with _pruning(
        stale, record, runner=runner, store=store, mode=mode, guard=guard, beside=beside, trusted=trusted
    ) as pruned:
        return _build(
            objects, runner, store, record=record, scope=scope, pruned=pruned, guard=guard,
            action=action, finish=finish, allocations=allocations, progress=progress, mode=mode, check=check,
            on_checked=on_checked,
        )  # fmt: skip


def _in_the_way(current: Plan, state: HostState, record: Record | None) -> list[str]:
    """The plan's conflicts (something of another shape under a wanted name), and :func:`made_by_others`."""
    return [item.assessment.reason for item in current.conflicts] + made_by_others(current, state, record)


def made_by_others(current: Plan, state: HostState, record: Record | None) -> list[str]:
    """What the plan would change in place though netwrap did not make it (no record of it): a device or a
    chain of another tool's of the name wanted, with another MAC, MTU or rules. Changed, that would then be
    recorded as netwrap's, and removed with the rest."""
    mine = set(record.keys()) if record is not None else set()
    return [
        f"{item.obj.key} is there, not made by netwrap, and not as wanted ({item.assessment.reason}): netwrap "
        "changes only what it made; remove it or choose another name"
        for item in current.changes
        if item.obj.made and item.obj.key not in mine and item.obj.exists(state)
    ]


def _observe(
    runner: Runner, objects: Sequence[NetObject], record: Record | None, *, check: Check, scope: Scope, pruned: _Pruned
) -> Checked:
    """The check; one that read beyond the scope judged apart from a removal running beside it reads again
    once the removal is over."""
    checked = observe_for(runner, objects, record, check, scope)
    if checked.widened and pruned.running:
        pruned.wait()
        checked = observe_for(runner, objects, record, check, scope)
    return checked


class _Pruned:
    """The removal of what the record holds and the build no longer wants: done, or running beside the build."""

    def __init__(self, done: Outcome | None = None, running: Future[Outcome] | None = None) -> None:
        self._done = done or Outcome()
        self._running = running

    def outcome(self) -> Outcome:
        """Its outcome, once it is over (its error, if it failed)."""
        if self._running is not None:
            self._done, self._running = self._running.result(), None
        return self._done

    @property
    def running(self) -> bool:
        return self._running is not None

    def wait(self) -> None:
        """Wait for it without raising: the caller has an error of its own to raise."""
        if self._running is not None:
            with contextlib.suppress(Exception):
                self.outcome()


@contextlib.contextmanager
def _pruning(
    stale: Sequence[NetObject],
    record: Record | None,
    *,
    runner: Runner,
    store: Store,
    mode: Mode,
    guard: threading.Lock,
    beside: bool,
    trusted: bool,
) -> Iterator[_Pruned]:
    """Remove ``stale`` first, or start removing it beside what runs in the block (waited for at its end);
    ``trusted``: without a look first where the objects allow it (see :func:`_undo`)."""
    if not stale or record is None:
        yield _Pruned()
        return
    undo = functools.partial(_undo, siblings=(), mode=mode, guard=guard, trusted=trusted)
    if not beside:
        yield _Pruned(undo(stale, record, runner, store))
        return
    with ThreadPoolExecutor(max_workers=1) as aside:
        pruned = _Pruned(running=aside.submit(undo, stale, record, runner, store))
        try:
            yield pruned
        finally:
            pruned.wait()


def _build(
    objects: Sequence[NetObject],
    runner: Runner,
    store: Store,
    *,
    record: Record | None,
    scope: Scope,
    pruned: _Pruned,
    guard: threading.Lock,
    action: str,
    finish: bool,
    allocations: dict[str, str] | None,
    progress: Progress | None,
    mode: Mode,
    check: Check,
    on_checked: Callable[[Checked], None] | None,
) -> Outcome:
    """The build after (or beside) the pruning: observe, plan, claim and create."""
    checked = _observe(runner, objects, record, check=check, scope=scope, pruned=pruned)
    if on_checked is not None:
        on_checked(checked)
    state = checked.state
    current = plan(objects, state, checked.trusted)
    if in_the_way := _in_the_way(current, state, record):
        pruned.outcome()  # its failure first: it came first
        raise _conflict_error(in_the_way)
    if not current.changes:
        pruned.outcome()  # nothing to make: nothing to run beside it
    uses = [obj.key for obj in objects]
    settled = (
        record is not None
        and record.complete == finish
        and record.uses == uses
        and (allocations is None or record.allocations == allocations)
    )
    if not current.changes and not pruned.outcome().changed and (settled or (record is None and allocations is None)):
        return pruned.outcome()
    record = record or Record()
    with guard:
        record.complete, record.writer, record.action, record.uses = False, Writer.current(), action, uses
        if allocations is not None:
            record.allocations = dict(allocations)
        run_dir = run_dir_of(runner)
        if isinstance(store, StateFile) and not store.machine and run_dir is not None:
            registry.register(run_dir, store.path.parent)  # other state directories of the host see this one
        if mode != "batch" or not current.changes:
            store.save(record)  # batched, the claims are saved with this before the first change: one write
    advice = f"what was made so far is recorded in {store.describe()}: run again to finish, or tear down to remove it"

    def claim(item: PlanItem) -> None:
        obj = item.obj
        if not obj.restores:
            record.add(obj)
            return
        previous = obj.remembered(state)
        if previous is None:  # not read with the rest (a --quick check trusted it): read it now
            previous = obj.remembered(observe(runner, [obj]))
        if previous is None:
            record.add(obj)  # nothing to give back (the device it belongs to is not there)
        else:
            record.add_remembered(obj, previous)

    def claim_all(items: Sequence[PlanItem]) -> None:
        with guard:
            for item in items:
                claim(item)
            store.save(record)  # every claim is written before the first change

    try:
        made = _create(current.changes, runner, claim=claim, claim_all=claim_all, save=lambda: store.save(record),
                       advice=advice, mode=mode, progress=progress)  # fmt: skip
    except BaseException:
        pruned.wait()
        raise
    removed = pruned.outcome()  # a removal that failed leaves the record incomplete: run again to finish
    with guard:
        if finish:
            record.complete = True
        store.save(record)
    return Outcome((*removed.changed, *made), removed.notes)


def _create(
    items: Sequence[PlanItem],
    runner: Runner,
    *,
    claim: Callable[[PlanItem], None],
    claim_all: Callable[[Sequence[PlanItem]], None],
    save: Callable[[], None],
    advice: str,
    mode: Mode,
    progress: Progress | None,
) -> list[str]:
    """Run the items' commands, claiming each in the record before it is made; StepError on failure."""
    total = len(items)
    if mode == "batch":
        claim_all(items)
        steps = [Step(n, c) for n, item in enumerate(items, start=1) for c in item.commands]
        try:
            execute(steps, runner, mode)
        except StepFailure as failure:
            key = items[failure.item - 1].obj.key
            raise StepError(failure.item, total, key, failure.cause, advice) from failure.cause
        return [item.obj.key for item in items]
    for number, item in enumerate(items, start=1):
        if progress is not None:
            progress(number, total, item)
        claim(item)
        save()
        try:
            for command in item.commands:
                runner.run(command)
        except CommandError as exc:
            raise StepError(number, total, item.obj.key, exc, advice) from exc
    return [item.obj.key for item in items]


def _already_gone(exc: CommandError) -> bool:
    return any(marker in exc.stderr for marker in _GONE)


def _hand_over(obj: NetObject, record: Record, siblings: Sequence[StateFile]) -> StateFile | None:
    """Give ``obj`` to another record that still uses it; None if none does."""
    for sibling in siblings:
        other = sibling.load()
        if other is None or obj.key not in other.uses:
            continue
        other.add(obj)
        if obj.key in record.previous:  # a setting: the value to give back goes along
            other.previous.setdefault(obj.key, record.previous[obj.key])
        sibling.save(other)
        return sibling
    return None


def _undo(
    targets: Sequence[NetObject],
    record: Record,
    runner: Runner,
    store: Store,
    *,
    siblings: Sequence[StateFile],
    mode: Mode = "verbatim",
    then_cleared: bool = False,
    guard: threading.Lock | None = None,
    trusted: bool = False,
) -> Outcome:
    """Remove ``targets`` (owned by ``record``) in reverse order; drop them from the record as they go.

    ``then_cleared``: the caller drops the whole record next, so a batched run
    does not write the emptied record first. ``guard``: held while the record
    is changed and saved (a build may claim in it meanwhile). ``trusted``: the
    record is complete and a record check trusts it, so when every object to
    remove can be removed as made (:meth:`~netwrap.kinds.base.Kind.trusted_removal`:
    a CNI DEL's veth and namespace name), nothing is read first; one found gone
    already is taken for done.
    """
    target_keys = {obj.key for obj in targets}
    handed = {}
    for obj in targets if siblings else ():
        sibling = _hand_over(obj, record, siblings)
        if sibling is not None:
            handed[obj.key] = sibling
    doomed = [obj for obj in targets if obj.key not in handed]
    # What goes away with its owner (a device, a namespace, a chain) needs no look: observe only the rest.
    leaving = functools.reduce(operator.or_, (obj.takes_along() for obj in doomed), Gone())

    def skipped(obj: NetObject) -> bool:
        return obj.goes_with(leaving)

    removed = [o for o in doomed if not skipped(o)]
    as_made = {obj.key: commands for obj in removed if (commands := obj.trusted_removal()) is not None}
    unread = trusted and len(as_made) == len(removed)
    state: HostState = HostState() if unread else observe(runner, for_removal(removed))
    changed: list[str] = []
    notes = [f"{key} is still used by {sibling.name}; handed over, not removed" for key, sibling in handed.items()]
    advice = f"what is left is still recorded in {store.describe()}: run the teardown again"
    order = list(reversed(doomed))
    given = as_made if unread else None
    if mode == "batch":
        batched = _undo_batched(order, skipped, record=record, state=state, runner=runner, advice=advice, given=given)
        with guard or contextlib.nullcontext():
            record.drop(target_keys)
            if not then_cleared:
                store.save(record)
        return Outcome((*changed, *batched.changed), tuple(notes + list(batched.notes)))
    for number, obj in enumerate(order, start=1):
        if not skipped(obj):
            commands, note = _removal(obj, record, state, given)
            try:
                for command in commands:
                    _run_tolerant(command, runner)
            except CommandError as exc:
                raise StepError(number, len(order), obj.key, exc, advice) from exc
            if commands:
                changed.append(obj.key)
            if note is not None:
                notes.append(note)
        gone = obj.key
        with guard or contextlib.nullcontext():
            record.drop({gone})
            store.save(record)
    with guard or contextlib.nullcontext():
        record.drop(target_keys)  # the handed over too
    return Outcome(tuple(changed), tuple(notes))


def _undo_batched(
    order: list[NetObject],
    skipped: Callable[[NetObject], bool],
    *,
    record: Record,
    state: HostState,
    runner: Runner,
    advice: str,
    given: dict[str, tuple[Command, ...]] | None,
) -> Outcome:
    """The removals of ``order`` (already reversed), regrouped into a few processes (``given``: the commands
    of each, unread; then no deletions are merged into one ``link del group``: whether the group holds devices
    that stay, another container's veth, is not known)."""
    steps: list[Step] = []
    changed: list[str] = []
    notes: list[str] = []
    for number, obj in enumerate(order, start=1):
        if skipped(obj):
            continue
        commands, note = _removal(obj, record, state, given)
        steps += [Step(number, command) for command in commands]
        if commands:
            changed.append(obj.key)
        if note is not None:
            notes.append(note)
    try:
        execute(steps if given is not None else _grouped(steps, order, state), runner, "batch", removing=True)
    except StepFailure as failure:
        if not _already_gone(failure.cause):
            key = order[failure.item - 1].key
            raise StepError(failure.item, len(order), key, failure.cause, advice) from failure.cause
        # something went away meanwhile: finish one command at a time, taking "gone" for done
        unreached: list[NetObject] = []
        for step in steps:
            gone = _run_tolerant(step.command, runner)
            if given is not None and gone is not None and any(m in gone.stderr for m in _NO_NAMESPACE):
                unreached.append(order[step.item - 1])
        if unreached:
            # netwrap's name for a namespace is gone (`ip netns del` by hand) while what it named may live on:
            # what was to be removed through it is looked at, and removed as the host shows it
            seen = observe(runner, for_removal(unreached))
            for obj in unreached:
                commands, note = _removal(obj, record, seen)
                for command in commands:
                    _run_tolerant(command, runner)
                if note is not None:
                    notes.append(note)
    return Outcome(tuple(changed), tuple(notes))


def _run_tolerant(command: Command, runner: Runner) -> CommandError | None:
    """Run ``command``; "already gone" is no error (it is returned), anything else is raised."""
    try:
        runner.run(command)
    except CommandError as exc:
        if not _already_gone(exc):
            raise
        return exc
    return None


def _grouped(steps: list[Step], order: list[NetObject], state: HostState) -> list[Step]:
    """Replace the deletions of the devices that share a link group, all of them ours, by one ``link del group G``.

    A group holds a topology's host-side veth ends and its bridges (those made
    in it: a bridge an older netwrap made outside the group keeps its own step).
    """
    host = {link.name: link for link in state.view(None).links or ()}
    by_group: dict[int, list[tuple[Step, frozenset[str]]]] = {}
    for step in steps:
        member = order[step.item - 1].link_group(state)
        if member is None or step.command.netns is not None:
            continue  # not made in a group on the host (or made outside it by an older netwrap): its own step
        by_group.setdefault(member[0], []).append((step, member[1]))
    result = list(steps)
    for group, joined in by_group.items():
        members = [step for step, _ in joined]
        ours = frozenset().union(*(names for _, names in joined))
        in_group = {name for name, link in host.items() if link.group == group}
        if len(members) < 2 or not in_group <= ours:
            continue  # someone else's device is in that group too: delete ours one by one
        first = members[0]
        replacement = Step(first.item, Command("ip", ("link", "del", "group", str(group))))
        dropped = {id(step) for step in members[1:]}
        result = [replacement if step is first else step for step in result if id(step) not in dropped]
    return result


def _removal(
    obj: NetObject, record: Record, state: HostState, given: dict[str, tuple[Command, ...]] | None = None
) -> tuple[tuple[Command, ...], str | None]:
    """The commands that remove (or give back) one object as observed (or as ``given``, unread), and a note
    when it is left alone."""
    if given is not None:
        return given[obj.key], None
    return obj.removal(state, record.previous.get(obj.key))


def teardown(
    runner: Runner, store: Store, *, siblings: Sequence[StateFile] | None = None, mode: Mode = "verbatim"
) -> Outcome:
    """Undo, in reverse order, what the record in ``store`` says was created; then drop the record.

    With no record nothing is removed: netwrap never deletes what it cannot
    show it made. An object that a record in ``siblings`` (by default every
    other record of the same machine beside a
    :class:`~netwrap.engine.state.StateFile`) still uses, such as ``ip_forward``, is
    handed over to it instead: the last record to leave gives it back.
    """
    if siblings is None:
        siblings = claims.others(store, runner)
    record = store.load()
    if record is None:
        return Outcome((), (f"no record of what netwrap created in {store.describe()}; nothing removed",))
    record.complete, record.writer, record.action = False, Writer.current(), "down"
    store.save(record)
    outcome = _undo(list(record.created), record, runner, store, siblings=siblings, mode=mode, then_cleared=True)
    store.clear()
    return outcome
