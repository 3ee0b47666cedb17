"""One lock per host for the tasks that change shared state.

binfmt_misc is host-global, and the embedded registry's state, the caches and the
report are shared by every xarch run on the machine. Each task that changes one of
them holds an advisory ``flock`` on ``<state dir>/xarch.lock`` while it runs, so two
runs (a test suite and a CI job, two jobs of one runner) never change each other's
handlers mid-run.

- A second run waits, says once who holds the lock (pid, task, since when: the holder
  writes that into the lock file), and gives up after ``XARCH_LOCK_TIMEOUT`` seconds
  (default 600; 0 means do not wait) with exit 1.
- The kernel releases a flock when its holder exits, however it exits: a lock file
  left by a dead process never blocks; what it records is only informational.
- Re-entrant within one process: a task that calls another holds it once. A child
  xarch that a holder runs (the bench timing `build-images`) is handed the lock
  (``child_handoff``: the descriptor and ``XARCH_LOCK_FD``) instead of waiting for it.
- Read-only tasks (doctor, binfmt-status, report, registry-status, ci-config,
  pin --check) do not take it.
"""

from __future__ import annotations

import fcntl
import functools
import inspect
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from xarch.errors import XarchError
from xarch.model.config import load_config
from xarch.model.envsettings import seconds_from_env
from xarch.model.paths import state_dir

F = TypeVar("F", bound=Callable[..., Any])

LOCK_NAME = "xarch.lock"
TIMEOUT_ENV = "XARCH_LOCK_TIMEOUT"
#: Set by child_handoff for a child run while the parent holds the lock.
INHERIT_ENV = "XARCH_LOCK_FD"
DEFAULT_TIMEOUT = 600.0
#: How often a waiting run tries again.
POLL_INTERVAL = 0.2
#: How long a waiter gives a holder that has just taken the lock to write its record
#: (flock first, record next: a waiter can read in between), re-reading meanwhile.
RECORD_GRACE = 2.0
RECORD_POLL = 0.02
#: What a holder record may take in the lock file; more is not one of ours.
_MAX_RECORD = 4096


class LockTimeout(XarchError):
    """Another xarch run held the host lock for longer than the timeout (exit 1)."""


class LockUnavailable(XarchError):
    """The lock file cannot be created or locked (exit 1)."""


def lock_path() -> Path:
    return state_dir() / LOCK_NAME


def timeout_from_env() -> float:
    """XARCH_LOCK_TIMEOUT in seconds (default 600); BadInput when it is not a number >= 0."""
    return seconds_from_env(
        TIMEOUT_ENV,
        DEFAULT_TIMEOUT,
        allow_zero=True,
        example="e.g. 600 (0: fail at once when another run holds the lock)",
    )


def describe_holder(text: str) -> str:
    """The holder record of a lock file, as one phrase ("pid 12 (binfmt-install) since
    2026-12-01 20:44:32 UTC"); a record that is missing or not ours says so."""
    try:
        record = json.loads(text) if text.strip() else None
    except ValueError:
        record = None
    if not isinstance(record, dict):
        return "another process (it recorded nothing readable)"
    pid = record.get("pid")
    task = record.get("task")
    since = record.get("since")
    parts = [f"pid {pid}" if isinstance(pid, int) else "an unknown pid"]
    if isinstance(task, str) and task:
        parts.append(f"({task[:80]})")
    if isinstance(since, str) and since:
        parts.append(f"since {since[:40]}")
    return " ".join(parts)


class _Held:
    """This process's hold on the lock: the descriptor and the nesting depth."""

    def __init__(self) -> None:
        self.fd: int | None = None
        self.depth = 0
        self.owner: int | None = None  # thread ident
        self.guard = threading.Lock()


_HELD = _Held()


@contextmanager
def _holding(fd: int, owner: int) -> Iterator[None]:
    """Record ``fd`` as this process's hold on the lock for the block."""
    with _HELD.guard:
        _HELD.fd, _HELD.depth, _HELD.owner = fd, 1, owner
    try:
        yield
    finally:
        with _HELD.guard:
            _HELD.fd, _HELD.depth, _HELD.owner = None, 0, None


def _open(path: Path) -> int:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
    except OSError as e:
        raise LockUnavailable(
            f"cannot open the host lock {path}: {e.strerror or e}\n"
            "  hint: set XARCH_STATE_DIR to a writable directory"
        ) from None


def _read_record(fd: int) -> str:
    try:
        return os.pread(fd, _MAX_RECORD, 0).decode("utf-8", "replace")
    except OSError:
        return ""


def _write_record(fd: int, task: str) -> None:
    record = {
        "pid": os.getpid(),
        "task": task,
        "since": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "argv": sys.argv[:8],
    }
    data = (json.dumps(record) + "\n").encode()
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
    except OSError:
        pass  # informational only: the flock is what excludes


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as e:  # ENOLCK on some network file systems
        raise LockUnavailable(
            f"cannot lock the host lock file: {e.strerror or e}\n"
            "  hint: set XARCH_STATE_DIR to a directory on a local file system"
        ) from None
    return True


def child_handoff() -> tuple[dict[str, str], tuple[int, ...]]:
    """(environment, pass_fds) for an xarch child that this process runs while it holds
    the lock, so the child holds the same lock instead of waiting for its own parent
    (which would wait for the child: a deadlock until the timeout). Empty when this
    process holds no lock."""
    with _HELD.guard:
        fd = _HELD.fd
    if fd is None:
        return {}, ()
    return {INHERIT_ENV: str(fd)}, (fd,)


def _inherited_fd(path: Path) -> int | None:
    """The lock descriptor a parent handed down (child_handoff), when it is really an
    open, locked description of ``path``; else None (the normal way is taken)."""
    value = os.environ.get(INHERIT_ENV, "")
    if not value.isdigit():
        return None
    fd = int(value)
    try:
        mine, theirs = os.fstat(fd), os.stat(path)
    except OSError:
        return None
    if (mine.st_dev, mine.st_ino) != (theirs.st_dev, theirs.st_ino):
        return None
    # flock on the same open file description that holds the lock succeeds at once;
    # a description nobody holds is locked anew here, which is also right.
    return fd if _try_lock(fd) else None


@contextmanager
def host_lock(
    task: str,
    *,
    timeout: float | None = None,
    path: Path | None = None,
    log: Callable[[str], None] | None = None,
) -> Iterator[Path]:
    """Hold the host lock for the block (re-entrant in one process)."""
    me = threading.get_ident()
    with _HELD.guard:
        if _HELD.fd is not None and _HELD.owner == me:
            _HELD.depth += 1
            nested = True
        else:
            nested = False
    if nested:
        try:
            yield path or lock_path()
        finally:
            with _HELD.guard:
                _HELD.depth -= 1
        return

    p = path or lock_path()
    inherited = _inherited_fd(p)
    if inherited is not None:
        # Our parent holds the lock and ran us (the bench timing build-images): we hold
        # it through the same open file description. Never unlock it: that is the
        # parent's to do.
        with _holding(inherited, me):
            yield p
        return
    wait = timeout_from_env() if timeout is None else timeout
    say = log or (lambda line: print(line, file=sys.stderr, flush=True))
    fd = _open(p)
    try:
        if not _try_lock(fd):
            _wait(fd, p, task, wait, say)
        _write_record(fd, task)
        try:
            with _holding(fd, me):
                yield p
        finally:
            # Clear the record before unlocking: a later waiter must not read our pid.
            with suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _wait(fd: int, path: Path, task: str, wait: float, say: Callable[[str], None]) -> None:
    deadline = time.monotonic() + wait
    holder = describe_holder(_read_record(fd))
    # The holder may be between its flock and its record: read again until the record
    # is readable (or the lock is free) within RECORD_GRACE, even when wait is 0.
    grace_end = time.monotonic() + RECORD_GRACE
    while holder.startswith("another process") and time.monotonic() < grace_end:
        if _try_lock(fd):
            return
        time.sleep(RECORD_POLL)
        holder = describe_holder(_read_record(fd))
    if wait > 0:
        say(
            f"{task}: waiting for the host lock {path}, held by {holder} "
            f"(gives up after {wait:g} s; set {TIMEOUT_ENV} to change)"
        )
    while True:
        if _try_lock(fd):
            return
        if time.monotonic() >= deadline:
            raise LockTimeout(
                f"{task}: gave up after {wait:g} s waiting for the host lock {path}, held by "
                f"{describe_holder(_read_record(fd))}\n"
                f"  hint: let that run finish (or stop it), or raise {TIMEOUT_ENV}"
            )
        time.sleep(min(POLL_INTERVAL, max(0.0, deadline - time.monotonic())))


def exclusive(unless: str | None = None) -> Callable[[F], F]:
    """Decorate an Invoke task body so it runs holding the host lock.

    ``unless`` names a boolean parameter that makes the call read-only (``pin
    --check``): then the lock is not taken. A ``config`` argument is read before
    waiting, so a bad config file is refused at once rather than after the wait.
    """

    def decorate(fn: F) -> F:
        name = fn.__name__.replace("_", "-")
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind_partial(*args, **kwargs)
            bound.apply_defaults()
            if unless is not None and bound.arguments.get(unless):
                return fn(*args, **kwargs)
            config = bound.arguments.get("config")
            if isinstance(config, str) and _HELD.fd is None:
                load_config(config, allow_unpinned=True)  # ConfigError before waiting
            with host_lock(name):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
