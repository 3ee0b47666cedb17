"""The host lock, with real processes: a second run waits and names the holder, the
timeout fires, a lock file left by a dead process does not block, one process may
nest it, and read-only tasks never wait."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from xarch.errors import BadInput, ConfigError
from xarch.host import lock
from xarch.host.lock import LockTimeout, describe_holder, exclusive, host_lock, timeout_from_env

REPO = Path(__file__).resolve().parents[2]

HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from xarch.host.lock import host_lock

    path, task, ready, release = sys.argv[1:5]
    with host_lock(task, path=Path(path), timeout=30):
        Path(ready).write_text("held")
        while not Path(release).exists():
            time.sleep(0.02)
    """
)


class Holder:
    """Another process holding the lock until released (or killed)."""

    def __init__(self, tmp: Path, lock_file: Path, task: str = "binfmt-install") -> None:
        self.ready = tmp / f"{task}.ready"
        self.release_file = tmp / f"{task}.release"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                HOLDER,
                str(lock_file),
                task,
                str(self.ready),
                str(self.release_file),
            ],
        )
        deadline = time.monotonic() + 20
        while not self.ready.exists():
            assert self.proc.poll() is None, "the holder process died"
            assert time.monotonic() < deadline, "the holder never took the lock"
            time.sleep(0.02)

    def release(self) -> None:
        self.release_file.write_text("")
        self.proc.wait(timeout=20)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=20)


@pytest.fixture
def lock_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XARCH_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("XARCH_LOCK_TIMEOUT", raising=False)
    return lock.lock_path()


@pytest.fixture
def holder(tmp_path: Path, lock_file: Path) -> Iterator[Holder]:
    h = Holder(tmp_path, lock_file)
    try:
        yield h
    finally:
        if h.proc.poll() is None:
            h.kill()


def test_lock_file_lives_in_the_state_dir(lock_file: Path, tmp_path: Path) -> None:
    assert lock_file == tmp_path / "state" / "xarch.lock"


def test_holder_records_pid_task_and_since(holder: Holder, lock_file: Path) -> None:
    record = json.loads(lock_file.read_text())
    assert record["pid"] == holder.proc.pid
    assert record["task"] == "binfmt-install"
    assert record["since"].endswith(" UTC")


def test_second_run_times_out_naming_the_holder(holder: Holder, lock_file: Path) -> None:
    lines: list[str] = []
    start = time.monotonic()
    with (
        pytest.raises(LockTimeout) as info,
        host_lock("build-images", timeout=0.6, log=lines.append),
    ):
        pytest.fail("the lock was taken while another process held it")
    waited = time.monotonic() - start
    assert 0.6 <= waited < 5
    assert info.value.exit_code == 1
    message = str(info.value)
    assert f"held by pid {holder.proc.pid} (binfmt-install) since" in message
    assert str(lock_file) in message
    assert "XARCH_LOCK_TIMEOUT" in message
    assert len(lines) == 1  # said once who holds it, not once per poll
    assert f"waiting for the host lock {lock_file}, held by pid {holder.proc.pid}" in lines[0]


def test_second_run_waits_then_runs(holder: Holder, lock_file: Path) -> None:
    lines: list[str] = []

    def release_soon() -> None:
        time.sleep(0.5)
        holder.release()

    import threading

    t = threading.Thread(target=release_soon)
    t.start()
    start = time.monotonic()
    with host_lock("push-images", timeout=20, log=lines.append):
        waited = time.monotonic() - start
        assert json.loads(lock_file.read_text())["pid"] == os.getpid()
    t.join()
    assert waited >= 0.4
    assert len(lines) == 1 and "binfmt-install" in lines[0]


def test_timeout_from_the_environment(holder: Holder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XARCH_LOCK_TIMEOUT", "0")
    start = time.monotonic()
    with pytest.raises(LockTimeout, match="gave up after 0 s"), host_lock("bench", log=print):
        pass
    assert time.monotonic() - start < 1


def test_lock_left_by_a_killed_process_does_not_block(holder: Holder, lock_file: Path) -> None:
    holder.kill()  # SIGKILL: no cleanup ran, its record is still in the file
    assert json.loads(lock_file.read_text())["pid"] == holder.proc.pid
    lines: list[str] = []
    with host_lock("registry-up", timeout=0, log=lines.append):
        assert json.loads(lock_file.read_text())["pid"] == os.getpid()
    assert lines == []


def test_garbage_in_the_lock_file_does_not_block(lock_file: Path) -> None:
    lock_file.parent.mkdir(parents=True)
    lock_file.write_bytes(b"\xff\x00 not json")
    with host_lock("pin", timeout=0):
        pass


def test_reentrant_in_one_process(lock_file: Path) -> None:
    with host_lock("provision-runner", timeout=0):
        with host_lock("binfmt-install", timeout=0):
            assert json.loads(lock_file.read_text())["task"] == "provision-runner"
        # still held after the inner block: another process cannot take it
        probe = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from pathlib import Path; from xarch.host.lock import host_lock\n"
                "with host_lock('x', path=Path(sys.argv[1]), timeout=0, log=print): pass",
                str(lock_file),
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert probe.returncode != 0 and "LockTimeout" in probe.stderr
    with host_lock("again", timeout=0):
        pass


CHILD = (
    "import sys; from pathlib import Path; from xarch.host.lock import host_lock\n"
    "with host_lock('build-images', path=Path(sys.argv[1]), timeout=0, log=print):\n"
    "    print('child ran')"
)


def test_a_child_run_by_the_holder_shares_the_lock_and_leaves_it_held(lock_file: Path) -> None:
    """The bench holds the lock and times `xarch build-images` as a child: without the
    handoff the child would wait for its own parent until the timeout."""
    with host_lock("bench", timeout=0):
        env, fds = lock.child_handoff()
        assert set(env) == {lock.INHERIT_ENV} and len(fds) == 1
        child = subprocess.run(
            [sys.executable, "-c", CHILD, str(lock_file)],
            env={**os.environ, **env},
            pass_fds=fds,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert child.returncode == 0, child.stderr
        assert "child ran" in child.stdout
        # the child did not unlock its parent's lock: a stranger still cannot take it
        stranger = subprocess.run(
            [sys.executable, "-c", CHILD, str(lock_file)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert stranger.returncode != 0 and "LockTimeout" in stranger.stderr
    assert lock.child_handoff() == ({}, ())  # nothing to hand down when not holding


def test_a_handed_down_number_that_is_not_the_lock_is_ignored(
    lock_file: Path, holder: Holder, tmp_path: Path
) -> None:
    """XARCH_LOCK_FD naming some other open file does not let a run past the holder."""
    other = tmp_path / "other"
    other.write_text("")
    fd = os.open(other, os.O_RDONLY)
    try:
        child = subprocess.run(
            [sys.executable, "-c", CHILD, str(lock_file)],
            env={**os.environ, lock.INHERIT_ENV: str(fd)},
            pass_fds=(fd,),
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        os.close(fd)
    assert child.returncode != 0 and "LockTimeout" in child.stderr


def test_released_on_exception(lock_file: Path) -> None:
    with pytest.raises(RuntimeError), host_lock("bench", timeout=0):
        raise RuntimeError("boom")
    with host_lock("bench", timeout=0):
        pass
    assert lock_file.read_text() == ""  # the record is cleared on release


@pytest.mark.parametrize("value", ["abc", "-1", "nan", "inf", "1e999"])
def test_bad_timeout_is_bad_input(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("XARCH_LOCK_TIMEOUT", value)
    with pytest.raises(BadInput, match="XARCH_LOCK_TIMEOUT"):
        timeout_from_env()


@pytest.mark.parametrize(("value", "seconds"), [("", 600.0), ("0", 0.0), (" 2.5 ", 2.5)])
def test_timeout_values(monkeypatch: pytest.MonkeyPatch, value: str, seconds: float) -> None:
    monkeypatch.setenv("XARCH_LOCK_TIMEOUT", value)
    assert timeout_from_env() == seconds


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        (
            '{"pid": 7, "task": "bench", "since": "2026-12-01 10:00:00 UTC"}',
            "pid 7 (bench) since 2026-12-01 10:00:00 UTC",
        ),
        ("", "another process (it recorded nothing readable)"),
        ("[1, 2]", "another process (it recorded nothing readable)"),
        ('{"pid": "7"}', "an unknown pid"),
    ],
)
def test_describe_holder(text: str, phrase: str) -> None:
    assert describe_holder(text) == phrase


# --------------------------------------------------------------------------- the decorator


def test_exclusive_skips_the_lock_for_the_read_only_flag(holder: Holder) -> None:
    @exclusive(unless="check")
    def pin(c: object, config: str = "x", check: bool = False) -> str:
        return "ran"

    assert pin(None, config=str(REPO / "config/offline.yaml"), check=True) == "ran"
    with pytest.raises(LockTimeout):
        os.environ["XARCH_LOCK_TIMEOUT"] = "0"
        try:
            pin(None, config=str(REPO / "config/offline.yaml"))
        finally:
            del os.environ["XARCH_LOCK_TIMEOUT"]


def test_exclusive_refuses_a_bad_config_before_waiting(holder: Holder, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"\xff\xfe")

    @exclusive()
    def build_images(c: object, config: str = "config/images.yaml") -> None:
        pytest.fail("ran without the lock")

    start = time.monotonic()
    with pytest.raises(ConfigError, match="not UTF-8"):
        build_images(None, config=str(bad))
    assert time.monotonic() - start < 2


# --------------------------------------------------------------------------- through the CLI


def _invoke(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_cli_second_task_gives_up_with_exit_1(holder: Holder, tmp_path: Path) -> None:
    env = {**os.environ, "XARCH_STATE_DIR": str(tmp_path / "state"), "XARCH_LOCK_TIMEOUT": "0.5"}
    proc = _invoke("registry-down", "--state-dir", str(tmp_path / "registry"), env=env)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"held by pid {holder.proc.pid} (binfmt-install)" in proc.stderr
    assert proc.stderr.count("registry-down: waiting for the host lock") == 1
    assert "error: registry-down: gave up after 0.5 s" in proc.stderr


def test_cli_read_only_task_does_not_wait(holder: Holder, tmp_path: Path) -> None:
    env = {**os.environ, "XARCH_STATE_DIR": str(tmp_path / "state"), "XARCH_LOCK_TIMEOUT": "30"}
    start = time.monotonic()
    proc = _invoke("registry-status", "--state-dir", str(tmp_path / "registry"), env=env)
    assert time.monotonic() - start < 20
    assert proc.returncode == 1  # not running; answered without waiting
    assert "not running" in proc.stdout
    assert "waiting" not in proc.stderr


def test_cli_bad_timeout_exits_2(tmp_path: Path) -> None:
    env = {**os.environ, "XARCH_STATE_DIR": str(tmp_path / "state"), "XARCH_LOCK_TIMEOUT": "soon"}
    proc = _invoke("registry-down", "--state-dir", str(tmp_path / "registry"), env=env)
    assert proc.returncode == 2
    assert "XARCH_LOCK_TIMEOUT='soon'" in proc.stderr


# A holder caught between its flock and its record (issue 18: the two-installs test read
# an empty record in that gap once in five runs): the flock is taken, the record comes
# 0.3 s later.
SLOW_WRITER = textwrap.dedent(
    """
    import fcntl, os, sys, time
    from pathlib import Path
    from xarch.host import lock

    path, ready, release = sys.argv[1:4]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.ftruncate(fd, 0)
    Path(ready).write_text("locked, no record yet")
    time.sleep(0.3)
    lock._write_record(fd, "binfmt-install")
    while not Path(release).exists():
        time.sleep(0.02)
    """
)


@pytest.mark.parametrize("round_", range(3))
def test_a_waiter_rereads_a_record_not_yet_written(
    lock_file: Path, tmp_path: Path, round_: int
) -> None:
    ready, release = tmp_path / "ready", tmp_path / "release"
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_WRITER, str(lock_file), str(ready), str(release)]
    )
    try:
        deadline = time.monotonic() + 20
        while not ready.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        with pytest.raises(LockTimeout) as e, host_lock("binfmt-install", timeout=0):
            pass
        assert f"held by pid {proc.pid} (binfmt-install)" in str(e.value)
        assert "nothing readable" not in str(e.value)
    finally:
        release.write_text("")
        proc.wait(timeout=20)
