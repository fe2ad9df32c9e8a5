"""The warm helper behind ``netwrap-cni``: everything imported once, one forked copy per call.

Started by the first call that finds none (see :mod:`netwrap.cni.client`), it
listens on an abstract unix socket of its network namespace and, for each
caller that runs as the same user, in the same network, mount, user and PID
namespaces and under the same root, forks a copy of itself. The copy takes
the caller's standard input, output and error, environment, working
directory and umask, runs :func:`netwrap.cni.main.main` exactly as the caller
would have, and sends back the exit code. A copy shares nothing with the next
call: locks, leases and records are taken and read as by any other process.

It answers "not taken" (and the caller runs the call itself) to a caller
elsewhere, and stops for good once netwrap's files change under it (an
upgrade), or after ``NETWRAP_CNI_HELPER_IDLE`` seconds (600 by default)
without a call.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path

from netwrap.cni import client

IDLE = 600.0
MAX_REQUEST = 1 << 20


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


def serve(name: bytes, idle: float = IDLE, handler: Callable[[], int] | None = None) -> None:
    """Answer calls on ``name`` until idle for ``idle`` seconds; return at once if another helper has it."""
    run = handler or _cni_main()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(name)
    except OSError:
        return  # a helper started by another call at the same time: it serves
    listener.listen(128)
    listener.settimeout(idle)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the copies
    own, known = namespaces("self"), sources()
    gc.freeze()  # what is imported stays shared with the copies instead of being copied on their first collection
    while True:
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            return
        with conn:
            pid, uid = client.peer(conn)
            try:
                same = uid == os.getuid() and namespaces(pid) == own
            except OSError:
                same = False  # gone already, or in a PID namespace this one cannot see
            stale = _changed(known)
            if not same or stale:
                with contextlib.suppress(OSError):
                    conn.sendall(client.REFUSED)
                if stale:
                    return
                continue
            if os.fork() == 0:
                listener.close()
                _copy(conn, run)


def _copy(conn: socket.socket, run: Callable[[], int]) -> None:
    """In the forked copy: become the caller, run the call, answer with its exit code; never returns."""
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the call waits for its own processes
        fields, fds = _receive(conn)
        if len(fds) != 3 or len(fields) < 3 or fields[0] != client.PROTOCOL:
            conn.sendall(client.REFUSED)
            os._exit(1)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(fields[1])
        os.umask(int(fields[2]))
        os.environb.clear()
        for entry in fields[3:]:
            key, _, value = entry.partition(b"=")
            os.environb[key] = value
        conn.sendall(client.ANSWERED)
        code = run()
        sys.stdout.flush()
        sys.stderr.flush()
        conn.sendall(bytes([code & 0xFF]))
    finally:
        os._exit(code & 0xFF)


def _receive(conn: socket.socket) -> tuple[list[bytes], list[int]]:
    data, fds, _, _ = socket.recv_fds(conn, MAX_REQUEST, 3)
    if len(data) < 4:
        return [], fds
    size = int.from_bytes(data[:4], "big")
    body = data[4:]
    while len(body) < size <= MAX_REQUEST:
        more = conn.recv(size - len(body))
        if not more:
            break
        body += more
    return body.split(b"\0"), fds


def _cni_main() -> Callable[[], int]:
    """The plugin's own entry point, with what a call needs imported and warmed beforehand."""
    from netwrap.cni import main, plugin  # noqa: PLC0415  (the point of the helper: import once)

    plugin.warm()
    return main.main


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
