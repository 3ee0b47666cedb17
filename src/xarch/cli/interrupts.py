"""SIGINT and SIGTERM end a task the same way: as a KeyboardInterrupt raised in the
main thread, so every ``finally:`` and context manager on the way out runs (temporary
binfmt handlers restored, temporary files removed, children stopped, the host lock
released), then exit 130 (SIGINT) or 143 (SIGTERM) with one line on stderr.

KeyboardInterrupt, not an XarchError: it is a BaseException, so the ``except
XarchError`` of a loop that records one failure and goes on (push_items) does not
swallow it and push the next image anyway.

A second signal while the first one unwinds is said and ignored, so a cleanup that
restores the host is not itself cut short; SIGKILL still ends the process at once.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass
class Interruption:
    """What the handler saw during one task: the first signal, and how many came."""

    signum: int | None = None
    count: int = 0

    @property
    def exit_code(self) -> int:
        """128 + the signal's number (130 for SIGINT, 143 for SIGTERM), as a shell says."""
        return 128 + (self.signum if self.signum is not None else signal.SIGINT)

    @property
    def name(self) -> str:
        return signal.Signals(self.signum or signal.SIGINT).name

    def message(self) -> str:
        return (
            f"interrupted by {self.name}; temporary files and handlers were cleaned up, "
            "run the same command again to finish"
        )


_current: Interruption | None = None


def _handler(state: Interruption) -> Any:
    def handle(signum: int, frame: FrameType | None) -> None:
        state.count += 1
        if state.signum is not None:
            print(
                f"xarch: {signal.Signals(signum).name} again: still cleaning up, please wait "
                "(SIGKILL stops at once and may leave temporary state behind)",
                file=sys.stderr,
                flush=True,
            )
            return
        state.signum = signum
        raise KeyboardInterrupt(signal.Signals(signum).name)

    return handle


@contextmanager
def interruptible() -> Iterator[Interruption]:
    """Turn SIGINT and SIGTERM into KeyboardInterrupt for the block (main thread only;
    elsewhere, and when nested, the handlers already in place stay). The previous
    handlers come back on leaving."""
    global _current
    if _current is not None or threading.current_thread() is not threading.main_thread():
        yield _current or Interruption()
        return
    state = Interruption()
    previous = {s: signal.getsignal(s) for s in SIGNALS}
    handle = _handler(state)
    for s in SIGNALS:
        signal.signal(s, handle)
    _current = state
    try:
        yield state
    finally:
        _current = None
        for s, h in previous.items():
            signal.signal(s, h)
