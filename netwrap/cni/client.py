"""``netwrap-cni``'s first steps: hand the call to a warm helper, or run it here.

Python's start and netwrap's imports cost a runtime hundreds of milliseconds
per call; a call's own work, a few dozen. So the executable does as little as
it can: with the standard library's smallest modules only, it connects to the
helper of this machine (:mod:`netwrap.cni.helper`, an abstract unix socket of
this network namespace, named after this installation), checks that the
helper runs as the same user, and passes it its standard input, output and
error, its environment, working directory and umask. The helper, with
everything already imported, runs the call exactly as
:func:`netwrap.cni.main.main` would here (itself when free, else in a spare
copy forked beforehand) and sends back the exit code.

When there is no helper (the first call, or after it stopped being idle), the
call runs here, in this process, and a helper is started for the next ones.
``NETWRAP_CNI_HELPER=off`` turns the helper off: every call then runs in its
own process, as before. Nothing here may import the rest of netwrap.
"""

from __future__ import annotations

import _socket
import os
import sys

PROTOCOL = b"netwrap-cni/1"
ANSWERED, REFUSED = b"=", b"!"  # the helper's first byte: it runs the call (then the exit code follows), or not
NO_HELPER, NOT_TAKEN = -1, -2  # through_helper: nobody listens; a helper is there but did not take the call


def socket_name(package: str | None = None) -> bytes:
    """The helper's abstract socket: one per user, network namespace (abstract names belong to one), and
    installation (the package's folder and the interpreter), so that an upgrade never reaches an old helper."""
    return f"\0netwrap-cni-{os.getuid()}-{installation(package)}".encode()


def installation(package: str | None = None) -> str:
    """What names this installation in the socket's name: the package's folder and the interpreter, digested."""
    here = package or os.path.dirname(os.path.abspath(__file__))
    return _digest(f"{here}\0{sys.executable}")


def _digest(text: str) -> str:
    """A short, stable digest without hashlib (FNV-1a, 64 bits): names only, nothing secret rides on it."""
    value = 0xCBF29CE484222325
    for byte in text.encode():
        value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{value:016x}"


def enabled(environ: dict[str, str] | os._Environ[str]) -> bool:
    return environ.get("NETWRAP_CNI_HELPER", "on").lower() not in ("off", "0", "no", "false")


def request() -> bytes:
    """What the helper needs besides the three descriptors: working directory, umask and environment."""
    mask = os.umask(0o022)
    os.umask(mask)
    fields = [PROTOCOL, os.getcwd().encode(), str(mask).encode()]
    fields += [key + b"=" + value for key, value in os.environb.items() if b"\0" not in key + value]
    body = b"\0".join(fields)
    return len(body).to_bytes(4, "big") + body


def peer(sock: _socket.socket) -> tuple[int, int]:
    """The process and the user at the other end of a unix socket (SO_PEERCRED: pid, uid, gid)."""
    creds = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)
    return int.from_bytes(creds[0:4], sys.byteorder), int.from_bytes(creds[4:8], sys.byteorder)


def peer_uid(sock: _socket.socket) -> int:
    """The user the other end of a unix socket runs as."""
    return peer(sock)[1]


def through_helper(name: bytes | None = None) -> int:
    """The call's exit code when the helper ran it; else :data:`NO_HELPER` or :data:`NOT_TAKEN` (then nothing
    was read from our input, and the call can still run here)."""
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        try:
            sock.connect(name or socket_name())
        except OSError:
            return NO_HELPER
        if peer_uid(sock) != os.getuid():
            return NOT_TAKEN  # someone else holds the name: never hand them our input
        fds = b"".join(fd.to_bytes(4, sys.byteorder) for fd in (0, 1, 2))
        sock.sendmsg([request()], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fds)])
        if sock.recv(1) != ANSWERED:
            return NOT_TAKEN  # another mount namespace, a changed installation, ...: nothing was read
    except OSError:
        return NOT_TAKEN
    try:
        code = sock.recv(1)
    except OSError:
        code = b""
    finally:
        sock.close()
    return code[0] if code else lost()


def lost() -> int:
    """The helper took the call and died before answering (killed, say): an error as the specification writes
    it, since the runtime reads stdout."""
    os.write(1, b'{"cniVersion": "1.0.0", "code": 999, "msg": "the netwrap-cni helper stopped before answering"}\n')
    return 1


def start_helper() -> None:
    """Start a helper for the next calls, detached from this one (its own session, no descriptor of ours: a
    runtime waiting for our output must not wait for the helper), and return at once. Only after a call ran
    here: subprocess is loaded by then."""
    import contextlib  # noqa: PLC0415
    import subprocess  # noqa: PLC0415

    # the helper finds its modules where this process found them, without site (an editable install's finder
    # is not there then: netwrap's own folder goes first)
    path = [os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), *sys.path]
    code = f"import sys; sys.path[:0] = {path!r}; from netwrap.cni.helper import main; main()"
    with contextlib.suppress(OSError):  # no helper: the next call runs in its own process again
        subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", code],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, close_fds=True, cwd="/",
        )  # fmt: skip


def main() -> None:
    """The console script ``netwrap-cni`` (a runtime gives it no argument; a person may: see ``--help``)."""
    if len(sys.argv) > 1:
        from netwrap.cni import install  # noqa: PLC0415  (a person's command, not a runtime's call)

        sys.exit(install.main(sys.argv[1:]))
    found = through_helper() if enabled(os.environ) else NOT_TAKEN
    if found >= 0:
        # the helper's copy wrote the call's output itself, and nothing of ours is buffered: leaving without
        # the interpreter's shutdown saves a few milliseconds of every call
        os._exit(found)
    from netwrap.cni import main as here  # noqa: PLC0415  (only when no helper answers)

    code = here.main()
    sys.stdout.flush()
    if found == NO_HELPER:
        start_helper()
    sys.exit(code)


if __name__ == "__main__":
    main()
