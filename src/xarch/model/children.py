"""Child processes that do not outlive an interrupted xarch.

``subprocess.run`` SIGKILLs its child on an exception, which gives the child no
chance to clean up (a pytest run leaves its containers), and never reaches the
child's own children (mmdebstrap's apt, dpkg and QEMU processes keep writing into a
directory xarch is removing). A child started here leads its own process group; when
the block is left by an exception (KeyboardInterrupt from SIGINT/SIGTERM), the group
gets ``signum`` so the child can clean up, then SIGKILL after ``grace`` seconds.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

GRACE = 30.0


def stop_group(proc: subprocess.Popen[Any], signum: int, grace: float) -> None:
    """Signal the child's process group, wait up to ``grace`` s, then SIGKILL the group."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signum)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    # Whatever the leader left in its group (it may have exited before its children).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


@contextlib.contextmanager
def stopped_on_error(
    proc: subprocess.Popen[Any], *, signum: int = signal.SIGTERM, grace: float = GRACE
) -> Iterator[subprocess.Popen[Any]]:
    """Yield ``proc`` (started with ``process_group=0``); stop its group if the block
    raises anything, KeyboardInterrupt included."""
    try:
        yield proc
    except BaseException:
        stop_group(proc, signum, grace)
        raise


def run_stoppable(
    cmd: Sequence[str], *, signum: int = signal.SIGTERM, grace: float = GRACE, **kwargs: Any
) -> int:
    """Run ``cmd`` to its end (its output not captured) and return its exit code; on an
    interrupt, stop its process group as :func:`stopped_on_error` does."""
    proc = subprocess.Popen(list(cmd), process_group=0, **kwargs)
    with stopped_on_error(proc, signum=signum, grace=grace):
        return proc.wait()


# Children started by worker threads (the parallel stand-in bootstraps): an interrupt
# reaches the main thread only, which stops them all through stop_all().
_LIVE: set[subprocess.Popen[Any]] = set()
_LIVE_LOCK = threading.Lock()
_CANCELLED = threading.Event()


class Cancelled(KeyboardInterrupt):
    """Raised in a worker thread whose work was stopped by :func:`stop_all`."""


@contextlib.contextmanager
def tracked(proc: subprocess.Popen[Any]) -> Iterator[subprocess.Popen[Any]]:
    """Make ``proc`` (a process-group leader) one that :func:`stop_all` stops."""
    with _LIVE_LOCK:
        _LIVE.add(proc)
    try:
        yield proc
    finally:
        with _LIVE_LOCK:
            _LIVE.discard(proc)


def check_cancelled() -> None:
    """Raise :class:`Cancelled` once :func:`stop_all` has run (no new child then)."""
    if _CANCELLED.is_set():
        raise Cancelled()


def stop_all(signum: int = signal.SIGTERM, grace: float = GRACE) -> None:
    """Stop every tracked child's group: ``signum`` to all at once, up to ``grace`` s for
    them to clean up, then SIGKILL; and refuse new children from then on."""
    _CANCELLED.set()
    with _LIVE_LOCK:
        procs = list(_LIVE)
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signum)
    deadline = time.monotonic() + grace
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
    for proc in procs:
        stop_group(proc, signal.SIGKILL, 0)
