"""One netwrap at a time per state directory: an advisory lock around plan and apply.

Twenty ``apply`` runs started at once then queue up; each plans against what
the one before it built, so the host ends with one of each object and rule.
A lock held for longer than the timeout is a clear :class:`LockTimeoutError`.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from types import TracebackType

from netwrap.errors import LockTimeoutError

DEFAULT_TIMEOUT = 120.0


class StateLock:
    """``with StateLock(state_dir):`` -- exclusive, released when the block (or the process) ends."""

    def __init__(self, directory: Path | str, timeout: float = DEFAULT_TIMEOUT, poll: float = 0.05) -> None:
        self.path = Path(directory) / ".lock"
        self.timeout = timeout
        self.poll = poll
        self._fd: int | None = None

    def __enter__(self) -> StateLock:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise LockTimeoutError(
                        f"another netwrap has held {self.path} for more than {self.timeout:g} s; "
                        "wait for it to finish (or find it with: fuser -v " + str(self.path) + ")"
                    ) from None
                time.sleep(self.poll)
        self._fd = fd
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
