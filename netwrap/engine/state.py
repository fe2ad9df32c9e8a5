"""What netwrap created on a host, kept in a small JSON file per run name.

The record is written *before* each change, so a run that dies in the middle
leaves a record that is true, or says a little more than was done (teardown
looks before it removes). It holds each created object in full, in creation
order, so that teardown and ``netwrap clean`` can undo it without the topology
that made it, and each changed sysctl with the value it had before. It also
names the process that wrote it, so that a record whose writer died before
finishing can be told from a finished one.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Collection
from pathlib import Path
from typing import Any, Protocol

import attrs

from netwrap.engine import serial
from netwrap.errors import NetwrapError
from netwrap.kinds import NetObject

DEFAULT_STATE_DIR = Path("/run/netwrap")
VERSION = 2


def _process_start(pid: int, *, living: bool = False) -> int | None:
    """The start time of process ``pid`` in clock ticks since boot (None if there is no such process, or, with
    ``living``, if it has ended and waits only to be reaped: a zombie, state Z, runs nothing any more)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if living and fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


@attrs.frozen
class Writer:
    """The process that wrote a record: pid plus start time, so a reused pid is not mistaken for it."""

    pid: int
    start: int | None

    @classmethod
    def current(cls) -> Writer:
        return cls(os.getpid(), _process_start(os.getpid()))

    def alive(self) -> bool:
        """Whether the writer still runs: the same process (pid and start time), and not a zombie."""
        return self.start is not None and _process_start(self.pid, living=True) == self.start


@attrs.define(eq=False)
class Record:
    """The objects a run created or changed, in order, and each changed sysctl's earlier value.

    ``complete`` is set when a build finished and its result is meant to stay
    (``tutorial up``); a record left incomplete by a writer that is gone is what
    a crashed run left behind, and ``netwrap clean`` removes it. ``uses`` lists
    the keys of everything the build wanted, made by it or not, so that another
    record's teardown hands a shared object over instead of removing it.
    ``allocations`` keeps the addresses IPAM gave, so that re-applies keep them.

    A record read from a file rebuilds its objects (validating each) only when
    ``created`` is first used: a re-apply with nothing to do needs their keys
    alone, which the file keeps beside them.
    """

    _created: list[NetObject] | None = attrs.field(default=None)
    previous: dict[str, str] = attrs.field(factory=dict)
    complete: bool = False
    writer: Writer = attrs.field(factory=Writer.current)
    action: str = ""
    uses: list[str] = attrs.field(factory=list)
    allocations: dict[str, str] = attrs.field(factory=dict)
    # as read from a file and not rebuilt yet: the objects' descriptions and their keys (never changed in place)
    _stored: tuple[list[dict[str, Any]], list[str]] | None = attrs.field(default=None, kw_only=True, repr=False)
    _index: tuple[list[NetObject], int, set[str]] | None = attrs.field(default=None, init=False, repr=False)
    # each object's description, kept while the object is the same one: a build saves the record several times
    _texts: dict[int, tuple[dict[str, Any], str]] = attrs.field(factory=dict, init=False, repr=False)
    # per key: the object last described, its description, and that description encoded (None: not yet)
    _descriptions: dict[str, tuple[NetObject, dict[str, Any], str | None]] = attrs.field(
        factory=dict, init=False, repr=False
    )

    @property
    def created(self) -> list[NetObject]:
        if self._created is None:
            self._created = _rebuild(*self._stored) if self._stored is not None else []
            if self._stored is not None:  # the descriptions just read are those of the objects just rebuilt
                for obj, described in zip(self._created, self._stored[0], strict=True):
                    self._descriptions[obj.key] = (obj, described, None)
            self._stored = None
        return self._created

    @created.setter
    def created(self, objects: list[NetObject]) -> None:
        self._created, self._stored = objects, None

    def created_among(self, keys: Collection[str]) -> list[NetObject]:
        """The created objects whose key is among ``keys``, in order: of a record read from a file, only those are
        rebuilt (a removal of one container beside many rebuilds its own objects alone)."""
        if self._created is None and self._stored is not None:
            return _rebuild(*_stored_where(self._stored, keys, among=True))
        return [obj for obj in self.created if obj.key in keys]

    def drop(self, keys: Collection[str]) -> None:
        """Forget the created objects whose key is among ``keys`` (rebuilding none of the others)."""
        if self._created is None and self._stored is not None:
            self._stored = _stored_where(self._stored, keys, among=False)  # new lists: stored ones are shared
            return
        self.created = [obj for obj in self.created if obj.key not in keys]

    def keys(self) -> list[str]:
        """The keys of the created objects, in order (without rebuilding objects read from a file)."""
        if self._created is None and self._stored is not None:
            return list(self._stored[1])
        return [o.key for o in self.created]

    def copy(self) -> Record:
        """A record with the same contents and lists of its own (the objects are immutable)."""
        copied = Record(
            None if self._created is None else list(self._created),
            dict(self.previous),
            self.complete,
            self.writer,
            self.action,
            list(self.uses),
            dict(self.allocations),
            stored=self._stored,
        )
        copied._descriptions = self._descriptions  # descriptions of immutable objects: shared, never changed
        copied._texts = self._texts
        return copied

    def owns(self, obj: NetObject) -> bool:
        return obj.key in self._keys()

    def made_as(self) -> dict[str, dict[str, Any]]:
        """Per key of what this record created and its last run wanted: the object's description (what
        :func:`netwrap.engine.check.observe_for` compares a wanted object's with, rebuilding nothing)."""
        wanted = set(self.uses)
        if self._created is None and self._stored is not None:
            described, keys = self._stored
            return {key: d for key, d in zip(keys, described, strict=True) if key in wanted}
        return {obj.key: self._description(obj)[1] for obj in self.created if obj.key in wanted}

    def _keys(self) -> set[str]:
        # created may be replaced wholesale; the index follows it by identity and length
        cached = self._index
        if cached is None or cached[0] is not self.created or cached[1] != len(self.created):
            cached = (self.created, len(self.created), {o.key for o in self.created})
            self._index = cached
        return cached[2]

    def add(self, obj: NetObject) -> bool:
        """Record ``obj`` as created; False if it already was (an object of its key with another value, such as a
        chain whose rules were rewritten, is replaced by it in its place). A record read from a file takes it
        without rebuilding the objects it holds (a build that adds one container beside many rebuilds none)."""
        if self._created is None and self._stored is not None:
            return self._add_stored(obj)
        keys = self._keys()
        if obj.key in keys:
            for number, known in enumerate(self.created):
                if known.key == obj.key and known != obj:
                    self.created[number] = obj
            return False
        self.created.append(obj)
        keys.add(obj.key)
        self._index = (self.created, len(self.created), keys)
        return True

    def _add_stored(self, obj: NetObject) -> bool:
        described, keys = self._stored or ([], [])
        mine = serial.to_dict(obj)
        try:
            at = keys.index(obj.key)
        except ValueError:
            self._stored = ([*described, mine], [*keys, obj.key])  # new lists: stored ones are shared by copies
            return True
        if described[at] != mine:
            replaced = list(described)
            replaced[at] = mine
            self._stored = (replaced, keys)
        return False

    def add_remembered(self, obj: NetObject, previous: str) -> None:
        """Record a changed setting and the value it had before the first change (later changes keep that)."""
        self.add(obj)
        self.previous.setdefault(obj.key, previous)

    def _described(self) -> tuple[list[dict[str, Any]], list[str]]:
        """The objects' descriptions and keys (as read, when the objects were not rebuilt)."""
        if self._created is None and self._stored is not None:
            return self._stored  # as read: nothing to describe again
        return [self._description(obj)[1] for obj in self.created], self.keys()

    def _description(self, obj: NetObject) -> tuple[NetObject, dict[str, Any], str]:
        known = self._descriptions.get(obj.key)
        described = serial.to_dict(obj) if known is None or known[0] is not obj else known[1]
        text = known[2] if known is not None and known[0] is obj else None
        if text is None:
            text = _encode(described)
            self._descriptions[obj.key] = (obj, described, text)
        return obj, described, text

    def _encoded(self) -> tuple[str, list[str]]:
        """The descriptions encoded as :func:`_encode` encodes their list, each object's encoded once per record
        (a record saved before and after each step of a run re-encodes only what changed), and the keys."""
        if self._created is None and self._stored is not None:
            return "[" + ",".join(self._text(d) for d in self._stored[0]) + "]", list(self._stored[1])
        known = self._descriptions
        texts = []
        for obj in self.created:  # a thousand objects saved twice a call: the encoded text looked up in place
            mine = known.get(obj.key)
            texts.append(mine[2] if mine is not None and mine[0] is obj and mine[2] is not None else
                         self._description(obj)[2])  # fmt: skip
        return "[" + ",".join(texts) + "]", self.keys()

    def _text(self, described: dict[str, Any]) -> str:
        """A stored description encoded, once per record (by identity: stored descriptions never change)."""
        known = self._texts.get(id(described))
        if known is None or known[0] is not described:
            known = (described, _encode(described))
            self._texts[id(described)] = known
        return known[1]

    def _fields(self, keys: list[str]) -> dict[str, Any]:
        return {
            "version": VERSION,
            "action": self.action,
            "complete": self.complete,
            "writer": {"pid": self.writer.pid, "start": self.writer.start},
            "keys": keys,
            "previous": self.previous,
            "uses": self.uses,
            "allocations": self.allocations,
        }

    def to_json(self) -> dict[str, Any]:
        described, keys = self._described()
        return {**self._fields(keys), "created": described, "digest": _digest(_encode(described))}

    def to_text(self) -> str:
        """The record as the file holds it: :meth:`to_json` encoded, the descriptions encoded only once."""
        created, keys = self._encoded()
        head = _encode({**self._fields(keys), "digest": _digest(created)})
        return f'{head[:-1]},"created":{created}}}'

    @classmethod
    def from_text(cls, text: str) -> Record:
        """The record a file holds (:meth:`to_text`'s form). Each object's description is kept with its text as
        read: the digest is checked on the text itself, and the next save writes it again without encoding it.
        A text in any other form (laid out by hand, say), or whose digest does not hold, is read as
        :meth:`from_json` reads it."""
        split = _split(text)
        if split is None:
            return cls.from_json(json.loads(text))
        head, created, texts = split
        if head.get("digest") != _digest(created):
            return cls.from_json(json.loads(text))
        record = cls.from_json({**head, "created": [item for item, _ in texts]}, digest_holds=True)
        if record._stored is not None:
            record._texts.update((id(item), (item, raw)) for item, raw in texts)
        return record

    @classmethod
    def from_json(cls, data: object, *, digest_holds: bool = False) -> Record:
        """The record :meth:`to_json` described. ``digest_holds``: its digest was checked already, on the text
        its ``created`` list was read from (see :meth:`from_text`)."""
        if not isinstance(data, dict) or data.get("version") != VERSION:
            raise NetwrapError(f"the record has an unknown form (expected version {VERSION}): {data!r:.80}")
        try:
            writer = Writer(int(data["writer"]["pid"]), data["writer"]["start"])
            described = data["created"]
            if not isinstance(described, list) or not all(isinstance(d, dict) for d in described):
                raise NetwrapError("'created' is not a list of object descriptions")
            keys = data.get("keys")
            if keys is not None and (
                not isinstance(keys, list) or len(keys) != len(described) or not all(isinstance(k, str) for k in keys)
            ):
                raise NetwrapError("'keys' is not a key for each created object")
            previous = data["previous"]
            if not isinstance(previous, dict) or not all(isinstance(v, str) for v in previous.values()):
                raise NetwrapError("'previous' is not a table of sysctl values")
            uses = data.get("uses", [])
            allocations = data.get("allocations", {})
            if not isinstance(uses, list) or not all(isinstance(k, str) for k in uses):
                raise NetwrapError("'uses' is not a list of keys")
            if not isinstance(allocations, dict) or not all(isinstance(a, str) for a in allocations.values()):
                raise NetwrapError("'allocations' is not a table of addresses")
            action = str(data.get("action", ""))
            # A record as netwrap wrote it (its digest holds) rebuilds its objects only when they are used; one
            # edited or damaged since, or written before keys were kept, is rebuilt (and so checked) at once.
            if keys is not None and (digest_holds or data.get("digest") == _digest(_encode(described))):
                created, stored = None, (described, keys)
            elif keys is not None:
                created, stored = _rebuild(described, keys), None
            else:
                created, stored = [serial.from_dict(o) for o in described], None
            return cls(
                created,
                dict(previous),
                bool(data["complete"]),
                writer,
                action,
                list(uses),
                dict(allocations),
                stored=stored,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise NetwrapError(f"the record is damaged: {exc!r}") from None


_CREATED = ',"created":['


def _split(text: str) -> tuple[dict[str, Any], str, list[tuple[Any, str]]] | None:
    """``text`` as :meth:`Record.to_text` writes it: the other fields, the ``created`` list's text, and each of
    its items with its own text; None for a text in another form."""
    at = text.rfind(_CREATED)
    if at < 0 or not text.endswith("]}"):
        return None
    created = text[at + len(_CREATED) - 1 : -1]
    items: list[tuple[Any, str]] = []
    position = 1
    try:
        head = json.loads(text[:at] + "}")
        while created[position] != "]":
            item, end = _DECODER.raw_decode(created, position)
            items.append((item, created[position:end]))
            position = end + (created[end] == ",")
    except (ValueError, IndexError):
        return None
    if position != len(created) - 1 or not isinstance(head, dict):
        return None
    return head, created, items


_DECODER = json.JSONDecoder()


def _encode(data: object) -> str:
    # dumps, not dump: dump streams through the pure-Python encoder, several times slower
    return json.dumps(data, separators=(",", ":"))


def _digest(encoded: str) -> str:
    """A digest of the objects' descriptions as encoded, so that a record edited or damaged since is seen."""
    return hashlib.sha256(encoded.encode()).hexdigest()[:32]


def _stored_where(
    stored: tuple[list[dict[str, Any]], list[str]], keys: Collection[str], *, among: bool
) -> tuple[list[dict[str, Any]], list[str]]:
    """The descriptions and keys of a record as read whose key is among ``keys`` (or, ``among`` false, is not)."""
    picked = [(d, k) for d, k in zip(*stored, strict=True) if (k in keys) == among]
    return [d for d, _ in picked], [k for _, k in picked]


def _rebuild(described: list[dict[str, Any]], keys: list[str]) -> list[NetObject]:
    """The objects of a record as read, each validated, and each the one its key names."""
    try:
        objects = [serial.from_dict(d) for d in described]
    except (TypeError, ValueError) as exc:
        raise NetwrapError(f"the record is damaged: {exc!r}") from None
    for number, (obj, key) in enumerate(zip(objects, keys, strict=True), start=1):
        if obj.key != key:
            raise NetwrapError(f"the record is damaged: object {number} is {obj.key}, its key says {key}")
    return objects


class Store(Protocol):
    """Where a :class:`Record` is kept."""

    def load(self) -> Record | None: ...

    def save(self, record: Record) -> None: ...

    def clear(self) -> None: ...

    def describe(self) -> str: ...


@attrs.define
class MemoryStore:
    """A record kept only in memory, for work that ends within one process."""

    record: Record | None = None

    def load(self) -> Record | None:
        return self.record

    def save(self, record: Record) -> None:
        self.record = record

    def clear(self) -> None:
        self.record = None

    def describe(self) -> str:
        return "memory"


def read_private(path: Path, what: str) -> str | None:
    """The text of a file netwrap keeps beside its records (attached containers, CNI leases), or None when there
    is none. What it says is done as root, so it is opened without following a link and checked through that
    descriptor (:func:`check_private`); anything else is a :class:`NetwrapError` naming ``what`` and the path."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise NetwrapError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        shape = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        raise NetwrapError(f"{what} {path} is {shape}: refused, and nothing in it is acted on")
    with os.fdopen(fd, encoding="utf-8") as fh:
        check_private(path, what, info)
        try:
            return fh.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise NetwrapError(f"cannot read {what} {path}: {exc}") from None


def replace_file(path: Path, text: str, *, durable: bool) -> None:
    """Write ``text`` to a hidden file beside ``path`` and rename it over ``path``: readers see the old
    file or the new one, never half of one, and it is the running user's alone (mode 0600, as mkstemp makes
    it); ``durable`` also waits for the disk (fsync) before the rename."""
    if path.is_dir():
        raise NetwrapError(f"cannot write {path}: it is a directory (netwrap keeps a file there)")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@attrs.frozen
class StateFile:
    """One record on disk, replaced atomically (write, fsync, rename) on every save."""

    path: Path

    @classmethod
    def in_dir(cls, directory: Path | str, name: str) -> StateFile:
        return cls(Path(directory) / f"{name}.json")

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def machine(self) -> str:
        """``@[user@]machine`` for a record of another machine, ``""`` for this one's."""
        at = self.name.find("@")
        return self.name[at:] if at >= 0 else ""

    def siblings(self) -> list[StateFile]:
        """The other records of the same machine in the same state directory: together they are its host."""
        return [f for f in state_files(self.path.parent) if f.path != self.path and f.machine == self.machine]

    def load(self) -> Record | None:
        """The record, or None if there is none; a record (or state directory) that belongs to another user, or
        that others may write, is refused with a :class:`NetwrapError` and never acted on."""
        try:
            info = self.path.lstat()
        except FileNotFoundError:
            return None
        except NotADirectoryError:
            return None
        check_private(self.path.parent, "state directory")
        check_private(self.path, "record", info)
        if not stat.S_ISREG(info.st_mode):
            shape = "a directory, not a file" if stat.S_ISDIR(info.st_mode) else "not a regular file"
            raise NetwrapError(f"record {self.path} is {shape}: refused, and nothing in it is acted on")
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except UnicodeDecodeError as exc:
            raise NetwrapError(f"state file {self.path} is not UTF-8 text (byte {exc.start}): damaged") from None
        stamp = (info.st_ino, info.st_mtime_ns, info.st_size)
        cached = _LOADED.get(self.path)
        if cached is not None and cached[0] == stamp:
            return cached[1].copy()
        try:
            record = Record.from_text(text)
            _LOADED[self.path] = (stamp, record.copy())
            return record
        except json.JSONDecodeError as exc:
            raise NetwrapError(f"state file {self.path} is not valid JSON: {exc}") from None
        except NetwrapError as exc:
            raise NetwrapError(f"state file {self.path}: {exc}") from None

    def save(self, record: Record) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        check_private(self.path.parent, "state directory")
        replace_file(self.path, record.to_text(), durable=True)
        _LOADED[self.path] = (self._stamp(), record.copy())

    def _stamp(self) -> tuple[int, int, int]:
        info = self.path.stat()
        return (info.st_ino, info.st_mtime_ns, info.st_size)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
        _LOADED.pop(self.path, None)

    def describe(self) -> str:
        return str(self.path)


# Records read or written by this process, by path: rebuilding thousands of validated objects
# costs more than the read; the file's inode, mtime and size tell when another process changed it.
_LOADED: dict[Path, tuple[tuple[int, int, int], Record]] = {}


def check_private(path: Path, what: str, info: os.stat_result | None = None) -> None:
    """Refuse ``path`` (a state directory, a record, a list of them) unless it is no symbolic link, belongs to
    the user running netwrap, and nobody else may write it: what a record says is done as root."""
    info = info if info is not None else path.lstat()
    if stat.S_ISLNK(info.st_mode):
        raise NetwrapError(f"{what} {path} is a symbolic link: refused, and nothing in it is acted on")
    if info.st_uid != os.geteuid():
        raise NetwrapError(
            f"{what} {path} belongs to uid {info.st_uid}, not to uid {os.geteuid()} that runs netwrap: "
            "refused, and nothing in it is acted on"
        )
    if info.st_mode & 0o022:
        raise NetwrapError(
            f"{what} {path} may be written by others (mode {stat.S_IMODE(info.st_mode):04o}): refused, and "
            "nothing in it is acted on; netwrap makes its state directories 0700 and its records 0600"
        )


def state_files(directory: Path | str) -> list[StateFile]:
    """Every record in ``directory``, by name (a directory that is not private is refused: see check_private)."""
    folder = Path(directory)
    if not folder.is_dir():
        return []
    check_private(folder, "state directory")
    return [StateFile(p) for p in sorted(folder.glob("*.json")) if not p.name.startswith(".")]
