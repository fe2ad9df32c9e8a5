"""Whether the runtime still waits for the call.

A runtime that gives up on a call (its timeout) kills the plugin's process.
Run in its own process, the call dies with it; run in the warm helper (see
:mod:`netwrap.cni.helper`), it goes on unless it asks, and an ADD that waited
for the network's lock could then build an attachment after the runtime's
DEL of it had come and gone. The helper says how to tell (the caller's end of
its socket closed); a call asks before it makes anything.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

_gone: Callable[[], bool] = lambda: False  # noqa: E731  (in its own process, the caller is the process)


def gone() -> bool:
    """Whether the process that made the call has ended (never, for a call run in its own process)."""
    return _gone()


@contextlib.contextmanager
def watched(check: Callable[[], bool]) -> Iterator[None]:
    """For the block's time, :func:`gone` asks ``check``."""
    global _gone  # noqa: PLW0603  (one call at a time per process: the helper runs one, a spare one)
    before, _gone = _gone, check
    try:
        yield
    finally:
        _gone = before
