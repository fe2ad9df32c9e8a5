"""The warm helper behind ``netwrap-cni``: everything imported once, each call run without a start.

Started by the first call that finds none (see :mod:`netwrap.cni.client`), it
listens on an abstract unix socket of its network namespace and serves each
caller that runs as the same user, in the same network, mount, user and PID
namespaces and under the same root. A call that finds the helper free runs in
the helper itself: for the call's time the helper takes the caller's standard
input, output and error, environment, working directory and umask, runs
:func:`netwrap.cni.main.main` exactly as the caller would have, puts its own
back and sends the exit code. A call that comes while the helper is busy runs
in a spare: a copy forked and warmed beforehand, which forks its successor and
runs that one call. Locks, leases and records are taken and read as by any
other process; a call that leaves a thread or a descriptor behind stops the
helper, so that nothing one call holds outlives it.

It answers "not taken" (and the caller runs the call itself) to a caller
elsewhere, and stops for good once netwrap's files change under it (an
upgrade), or after ``NETWRAP_CNI_HELPER_IDLE`` seconds (600 by default)
without a call. Its spare ends with it.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import gc
import os
import select
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TextIO, cast

import attrs

from netwrap.cni import caller, client

IDLE = 600.0
TAKEN = b"t"  # a spare's word to the helper: it took a call (its successor waits in its place)
PR_SET_CHILD_SUBREAPER = 36  # prctl(2)
MAX_REQUEST = 1 << 20
REQUEST_SECONDS = 5.0


def namespaces(pid: int | str) -> tuple[int, ...]:
    """What a process sees the machine through: its namespaces and its root directory."""
    proc = f"/proc/{pid}"
    found = [os.stat(f"{proc}/ns/{kind}").st_ino for kind in ("net", "mnt", "user", "pid")]
    root = os.stat(f"{proc}/root")
    return (*found, root.st_dev, root.st_ino)


def sources() -> dict[str, int]:
    """netwrap's loaded files and their modification times: a change means an upgrade (or an edit)."""
    here = str(Path(client.__file__).resolve().parent.parent)
    found: dict[str, int] = {}
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if isinstance(path, str) and path.startswith(here):
            with contextlib.suppress(OSError):
                found[path] = os.stat(path).st_mtime_ns
    return found


def _changed(known: dict[str, int]) -> bool:
    for path, mtime in known.items():
        try:
            if os.stat(path).st_mtime_ns != mtime:
                return True
        except OSError:
            return True
    return False


def serve(
    name: bytes, idle: float = IDLE, handler: Callable[[], int] | None = None, warm: Callable[[], object] | None = None
) -> None:
    """Answer calls on ``name`` until idle for ``idle`` seconds; return at once if another helper has it.

    A call that finds the helper free runs in the helper itself (no copy to fork, no page of it to copy), with
    the caller's descriptors, directory, umask and environment for its time, all put back afterwards. A call
    that comes while the helper runs one is taken by the spare: a copy forked and warmed (``warm``) while
    the helper was free, that forks its successor, runs that one call and ends (see :class:`Spare`).
    The helper stops when idle, when netwrap's files change (an upgrade), when its spare ends without a
    call, or when a call leaves a thread or a descriptor behind (so that nothing one call holds, a lock
    least of all, outlives it)."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(name)
    except OSError:
        return  # a helper started by another call at the same time: it serves (nothing imported for nothing)
    listener.listen(128)  # callers wait in the queue while the helper imports and warms up
    if handler is None:
        handler, warm = _cni_main()
    listener.setblocking(False)  # the spare may take what was there: the helper then waits again
    own, known = namespaces("self"), sources()
    gc.freeze()  # what is imported stays shared with the copies instead of being copied on their first collection
    _subreaper()
    spare = Spare.fork(listener, handler, warm, (own, known))
    try:
        while True:
            _reap()
            ready = select.select([listener.fileno(), spare.news], [], [], idle)[0]
            if not ready:
                return
            if spare.news in ready:
                if not spare.took():
                    return  # the line of spares ended (netwrap's files changed, or one was killed): stop
                continue
            try:
                conn, _ = listener.accept()
            except BlockingIOError:
                continue
            except OSError:
                return  # the listener takes no caller any more: stop
            with conn:
                conn.setblocking(True)
                verdict = _verdict(conn, own, known)
                if verdict != OURS:
                    if verdict == STALE:
                        return
                    continue
                before = _held()
                spare.tell(BUSY)
                try:
                    _here(conn, handler)
                finally:
                    spare.tell(FREE)
                if _held() != before or threading.active_count() > 1:
                    return
    finally:
        listener.close()
        spare.close()


OURS, ELSEWHERE, STALE = "ours", "elsewhere", "stale"
BUSY, FREE = b"b", b"f"  # the helper's word to its spare: take the calls that come, or leave them


def _verdict(conn: socket.socket, own: tuple[int, ...], known: dict[str, int]) -> str:
    """Whether a caller is one to serve (same user, namespaces and root, netwrap's files unchanged); a caller
    that is not is answered "not taken" (it then runs the call itself)."""
    pid, uid = client.peer(conn)
    try:
        same = uid == os.getuid() and namespaces(pid) == own
    except OSError:
        same = False  # gone already, or in a PID namespace this one cannot see
    verdict = STALE if _changed(known) else OURS if same else ELSEWHERE
    if verdict != OURS:
        with contextlib.suppress(OSError):
            conn.sendall(client.REFUSED)
    return verdict


@attrs.define
class Spare:
    """The line of spares: a copy forked while the helper is free, for a call that comes while it is not. One
    that takes a call forks its successor first, which waits in its place: calls that come at once each get a
    copy, and a call that needs no lock (STATUS, VERSION) never waits for one that does."""

    pid: int  # the first of the line
    control: int  # the helper writes BUSY and FREE; its end closes when the helper ends
    news: int  # each spare that takes a call writes TAKEN; the pipe ends when the line does

    @classmethod
    def fork(
        cls,
        listener: socket.socket,
        run: Callable[[], int],
        warm: Callable[[], object] | None,
        given: tuple[tuple[int, ...], dict[str, int]],
    ) -> Spare:
        orders, control = os.pipe()
        news, told = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(control)
            os.close(news)
            _spare(listener, (orders, told), run, warm, given)
        os.close(orders)
        os.close(told)
        return cls(pid, control, news)

    def tell(self, word: bytes) -> None:
        with contextlib.suppress(OSError):  # a line that ended: the helper learns it from ``news``
            os.write(self.control, word)

    def took(self) -> bool:
        """Whether a spare took a call (its successor waits in its place); else the line has ended: the helper
        was found changed on disk, or a spare was killed before it could fork its successor."""
        return os.read(self.news, 1) == TAKEN

    def close(self) -> None:
        for fd in (self.control, self.news):
            with contextlib.suppress(OSError):
                os.close(fd)


def _spare(
    listener: socket.socket,
    pipes: tuple[int, int],
    run: Callable[[], int],
    warm: Callable[[], object] | None,
    given: tuple[tuple[int, ...], dict[str, int]],
) -> None:
    """In a forked spare: warm up, then take the next call of ours that comes while the helper is busy, tell
    the helper, fork the successor, and run the call as a copy (see :func:`_copy`); never returns."""
    orders, told = pipes
    own, known = given
    try:
        if warm is not None:
            with contextlib.suppress(Exception):  # only a head start: a call runs without it
                warm()
        busy = False
        while True:
            ready = select.select([orders, listener.fileno()] if busy else [orders], [], [])[0]
            if orders in ready:
                words = os.read(orders, 64)
                if not words:
                    os._exit(0)  # the helper is gone (stopped by pid, say): so is its spare
                busy = words[-1:] == BUSY
                continue
            try:
                conn, _ = listener.accept()
            except BlockingIOError:
                continue  # the helper, free again, took it
            conn.setblocking(True)
            verdict = _verdict(conn, own, known)
            if verdict == STALE:
                _refuse_the_rest(listener)
                os._exit(0)
            if verdict == OURS:
                os.write(told, TAKEN)
                try:
                    if os.fork() != 0:
                        break  # this one runs the call; the child, unwarmed, waits in its place
                except OSError:  # no successor (a process limit): this call still runs, the others go home
                    _refuse_the_rest(listener)
                    break
            conn.close()
        for fd in (orders, told):
            os.close(fd)
        listener.close()
        _copy(conn, run)
    finally:
        os._exit(1)


def _refuse_the_rest(listener: socket.socket) -> None:
    """The line of spares ends here: from now on a caller's connect is refused at once (it then runs the call
    itself), never left waiting for a busy helper; the helper stops once free."""
    with contextlib.suppress(OSError):
        listener.shutdown(socket.SHUT_RD)


def _reap() -> None:
    """Reap every child that has ended: the spares, which became the helper's when the spare before them ended
    (it is their subreaper). Only between calls: a call waits for its own processes."""
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] != 0:
            pass


def _subreaper() -> None:
    """Become the subreaper of the spares (``PR_SET_CHILD_SUBREAPER``): a spare's successor outlives the spare
    that forked it, and would otherwise be left to whatever reaps above the helper (a runtime's own, maybe
    never)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _hung_up(conn: socket.socket) -> bool:
    """Whether the caller's end of the connection has closed (its process ended: a runtime that gave up)."""
    try:
        return conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def _held() -> set[str]:
    """This process's open descriptors."""
    return set(os.listdir("/proc/self/fd"))


def _here(conn: socket.socket, run: Callable[[], int]) -> None:
    """In the helper: become the caller for the call's time (its three descriptors, directory, umask and
    environment), run it, put back the helper's own, then answer with the exit code."""
    asked = _asked(conn)
    if asked is None:
        return
    fields, fds = asked
    saved = [os.dup(fd) for fd in (0, 1, 2)]
    streams: tuple[TextIO, TextIO, TextIO] = (sys.stdin, sys.stdout, sys.stderr)
    home, mask, environ = os.open(".", os.O_RDONLY | os.O_DIRECTORY), os.umask(0o077), dict(os.environb)
    code = 1
    try:
        try:
            _become(fds, fields)
        except (OSError, ValueError):  # its directory went away meanwhile, say: it runs the call itself
            with contextlib.suppress(OSError):
                conn.sendall(client.REFUSED)
            return
        sys.stdin, sys.stdout, sys.stderr = (_stream(0, "r", streams[0]), _stream(1, "w", streams[1]),
                                             _stream(2, "w", streams[2]))  # fmt: skip
        try:
            conn.sendall(client.ANSWERED)
        except OSError:
            return  # the caller went away: nothing was run (what was taken is put back below)
        try:
            with caller.watched(functools.partial(_hung_up, conn)):
                code = run()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except Exception:  # the runtime's stdout closed under the call, say: never the helper's end
            code = 1
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
    finally:
        for opened in (sys.stdin, sys.stdout, sys.stderr):
            if opened not in streams:
                with contextlib.suppress(OSError, ValueError):
                    opened.close()
        sys.stdin, sys.stdout, sys.stderr = streams
        for target, fd in enumerate(saved):
            os.dup2(fd, target)
            os.close(fd)
        os.fchdir(home)
        os.close(home)
        os.umask(mask)
        os.environb.clear()
        os.environb.update(environ)
    with contextlib.suppress(OSError):  # a caller killed meanwhile: nobody to answer
        conn.sendall(bytes([code & 0xFF]))


def _stream(fd: int, mode: str, like: TextIO | None) -> TextIO:
    """A text stream on ``fd`` for the call's time, with the encoding and errors the helper's own had (those
    the interpreter chose at its start, as a call run in its own process has them)."""
    encoding = getattr(like, "encoding", None) or "utf-8"
    errors = getattr(like, "errors", None) or "strict"
    return cast(TextIO, open(fd, mode, encoding=encoding, errors=errors, closefd=False))  # closed by _here


def _become(fds: list[int], fields: list[bytes]) -> None:
    """Take the caller's directory (first: a umask that is no number, or a directory that is gone, fails before
    anything else is taken), umask, environment, and standard input, output and error; an OSError or a
    ValueError for what cannot be taken."""
    try:
        mask = int(fields[2])
        if not 0 <= mask <= 0o777:
            raise ValueError(f"umask {mask}")
        os.chdir(fields[1])
    except (OSError, ValueError):
        for fd in fds:  # nothing of the caller's is kept
            os.close(fd)
        raise
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.umask(mask)
    os.environb.clear()
    for entry in fields[3:]:
        key, _, value = entry.partition(b"=")
        os.environb[key] = value


def _copy(conn: socket.socket, run: Callable[[], int]) -> None:
    """In a spare that took a call: become the caller, run the call, answer with its exit code; never returns."""
    code = 1
    try:
        asked = _asked(conn)
        if asked is None:
            os._exit(1)
        fields, fds = asked
        try:
            _become(fds, fields)
        except (OSError, ValueError):
            conn.sendall(client.REFUSED)
            os._exit(1)
        conn.sendall(client.ANSWERED)
        with caller.watched(functools.partial(_hung_up, conn)):
            code = run()
        sys.stdout.flush()
        sys.stderr.flush()
        conn.sendall(bytes([code & 0xFF]))
    finally:
        os._exit(code & 0xFF)


def _asked(conn: socket.socket) -> tuple[list[bytes], list[int]] | None:
    """The caller's request and its three descriptors; None when it sent no whole one (it is answered "not
    taken", and what descriptors came are closed) or went away first."""
    try:
        fields, fds = _receive(conn)
    except OSError:
        return None
    if len(fds) != 3 or len(fields) < 3 or fields[0] != client.PROTOCOL:
        for fd in fds:
            os.close(fd)
        with contextlib.suppress(OSError):
            conn.sendall(client.REFUSED)
        return None
    return fields, fds


def _receive(conn: socket.socket) -> tuple[list[bytes], list[int]]:
    """The caller's request and descriptors; a TimeoutError (an OSError) when it sends none within
    :data:`REQUEST_SECONDS` (a client sends it at once: one that connects and waits must not hold the helper)."""
    conn.settimeout(REQUEST_SECONDS)
    try:
        return _request(conn)
    finally:
        conn.settimeout(None)


def _request(conn: socket.socket) -> tuple[list[bytes], list[int]]:
    data, fds, _, _ = socket.recv_fds(conn, MAX_REQUEST, 3)
    if len(data) < 4:
        return [], fds
    size = int.from_bytes(data[:4], "big")
    body = data[4:]
    try:
        while len(body) < size <= MAX_REQUEST:
            more = conn.recv(size - len(body))
            if not more:
                break
            body += more
    except OSError:
        for fd in fds:  # the rest never came: nothing of the caller's is kept
            os.close(fd)
        raise
    return body.split(b"\0"), fds


def _cni_main() -> tuple[Callable[[], int], Callable[[], object]]:
    """The plugin's own entry point, with what a call needs imported and warmed beforehand, and the warming
    (each spare runs it again: see :func:`serve`)."""
    from netwrap.cni import main, plugin  # noqa: PLC0415  (the point of the helper: import once)

    plugin.warm()
    return main.main, plugin.warm


def idle_seconds(environ: os._Environ[str] | dict[str, str]) -> float:
    try:
        value = float(environ.get("NETWRAP_CNI_HELPER_IDLE", IDLE))
    except ValueError:
        return IDLE
    return value if 0 < value < 86400 * 365 else IDLE


def main() -> None:
    """Serve this installation's socket (the client starts this, detached, with the client's module path)."""
    serve(client.socket_name(), idle_seconds(os.environ))


if __name__ == "__main__":
    main()
