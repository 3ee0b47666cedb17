"""An interrupted xarch stops its children and their children (model.children), with
real processes: the child gets the signal first and may clean up; whatever is left in
its process group, grandchildren included, is SIGKILLed after the grace period."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from xarch.model.children import run_stoppable, stopped_on_error


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(path: Path, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.02)
    raise AssertionError(f"{path} not written")


def shell(script: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sh", "-c", script], process_group=0)


def test_the_child_cleans_up_and_its_grandchild_is_killed(tmp_path: Path) -> None:
    grandchild = tmp_path / "grandchild.pid"
    cleaned = tmp_path / "cleaned"
    proc = shell(
        f"sleep 300 & echo $! > {grandchild}; "
        f"trap 'echo yes > {cleaned}; exit 0' TERM; while :; do sleep 0.1; done"
    )
    gpid = int(wait_for(grandchild))
    with pytest.raises(KeyboardInterrupt), stopped_on_error(proc, grace=10):
        raise KeyboardInterrupt
    assert wait_for(cleaned) == "yes"  # the child got SIGTERM and ran its trap
    assert proc.returncode is not None
    deadline = time.monotonic() + 5
    while alive(gpid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(gpid), "the grandchild outlived the interrupt"


def test_a_child_that_ignores_the_signal_is_killed_after_the_grace(tmp_path: Path) -> None:
    started = tmp_path / "started"
    proc = shell(f"trap '' TERM INT; echo up > {started}; while :; do sleep 0.1; done")
    wait_for(started)
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt), stopped_on_error(proc, signum=signal.SIGINT, grace=0.5):
        raise KeyboardInterrupt
    assert proc.returncode == -signal.SIGKILL
    assert time.monotonic() - t0 < 5


def test_nothing_is_signalled_without_an_error(tmp_path: Path) -> None:
    assert run_stoppable(["sh", "-c", "exit 3"]) == 3


def test_stop_all_ends_children_of_worker_threads_and_refuses_new_ones() -> None:
    """An interrupt reaches the main thread only: stop_all stops the process groups that
    worker threads started (and their children), at once, and a worker that tries to
    start another child afterwards gets Cancelled instead."""
    import threading

    from xarch.model import children

    started = threading.Event()
    outcome: list[object] = []

    def worker() -> None:
        proc = subprocess.Popen(
            ["sh", "-c", "sleep 300 & wait"], process_group=0, stdout=subprocess.DEVNULL
        )
        with children.tracked(proc):
            started.set()
            outcome.append(proc.wait())
        try:
            children.check_cancelled()
        except children.Cancelled:
            outcome.append("cancelled")

    t = threading.Thread(target=worker)
    t.start()
    assert started.wait(10)
    begin = time.monotonic()
    try:
        children.stop_all(grace=5)
    finally:
        children._CANCELLED.clear()  # module state: later tests start children again
    t.join(10)
    assert not t.is_alive()
    assert time.monotonic() - begin < 5
    assert outcome[0] != 0 and outcome[1] == "cancelled"
