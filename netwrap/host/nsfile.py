"""What a namespace file leads to, asked of the kernel in this process (no command: the file is this machine's).

A runtime or a person names a container's network namespace by a file (``/proc/PID/ns/net``, a bind mount such
as ``/run/netns/NAME``); before anything is built in it, it must be a network namespace, and not the one netwrap
runs in (the host's, whose devices and routes a container's would then be).
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat

NS_GET_NSTYPE = 0xB703  # ioctl: the kind of namespace a file leads to (Linux 4.11 and later)
CLONE_NEWNET = 0x40000000  # ... when it is a network namespace (os.CLONE_NEWNET from Python 3.12)


def netns_problem(path: str) -> str | None:
    """Why ``path`` is no container's network namespace, or None: a file that leads to no namespace, or to
    another kind, or to the namespace this process runs in (the host's, whose devices an ADD would change).
    Looked at before it is opened: only a file of the namespaces' own file system is (opening a FIFO would wait
    for a writer, a device file could act)."""
    try:
        info, here = os.stat(path), os.stat("/proc/self/ns/net")
    except OSError as exc:
        return f"cannot be opened: {exc.strerror or exc}"
    if not stat.S_ISREG(info.st_mode) or info.st_dev != here.st_dev:
        return "is not a namespace file"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as exc:
        return f"cannot be opened: {exc.strerror or exc}"
    try:
        try:
            kind = fcntl.ioctl(fd, NS_GET_NSTYPE)
        except OSError as exc:
            if exc.errno == errno.ENOTTY:
                return "is not a namespace file"
            kind = CLONE_NEWNET  # a kernel that cannot tell: the checks below still hold
        if kind != CLONE_NEWNET:
            return "is a namespace of another kind, not a network namespace"
        there = os.fstat(fd)
        if (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino):
            return "is the host's own network namespace (the one netwrap runs in), not a container's"
    finally:
        os.close(fd)
    return None
