"""The host lock on the real kernel: two `binfmt-install` runs at once, and a suite and
an install at once. The second run waits for the first (saying who holds the lock), so
neither changes binfmt_misc under the other. The host's entries are restored."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from xarch.host import binfmt
from xarch.host import emulators as hostemu
from xarch.host.lock import host_lock
from xarch.model.arch import get_arch
from xarch.model.config import Config

from .conftest import OFFLINE, REPO_ROOT

pytestmark = [pytest.mark.binfmt, pytest.mark.usefixtures("host_binfmt_restored")]
AARCH64 = get_arch("aarch64")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A private lock (state dir) and emulator dir; the host's binfmt_misc is shared."""
    return {
        **os.environ,
        "XARCH_STATE_DIR": str(tmp_path / "state"),
        "XARCH_EMULATOR_DIR": str(tmp_path / "emulators"),
        "XARCH_LOCK_TIMEOUT": "600",
    }


class Run:
    """An `invoke` process whose output goes to files (a pipe nobody reads would
    stop a verbose suite while it holds the lock)."""

    def __init__(self, args: list[str], env: dict[str, str], logs: Path) -> None:
        logs.mkdir(parents=True, exist_ok=True)
        n = len(list(logs.glob("*.out")))
        self.out_path, self.err_path = logs / f"{n}.out", logs / f"{n}.err"
        with self.out_path.open("w") as out, self.err_path.open("w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "invoke", *args],
                cwd=REPO_ROOT,
                env=env,
                stdout=out,
                stderr=err,
            )
        self.pid = self.proc.pid

    def finish(self, timeout: float) -> tuple[int, str, str]:
        code = self.proc.wait(timeout=timeout)
        return code, self.out_path.read_text(), self.err_path.read_text()


def install_args(config: Path) -> list[str]:
    return ["binfmt-install", "--arch", "aarch64", "--config", str(config), "--force"]


def wait_for_holder(lock_file: Path, pid: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if json.loads(lock_file.read_text() or "{}").get("pid") == pid:
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    pytest.fail(f"pid {pid} never took the host lock {lock_file}")


def wanted_entry_is_the_only_aarch64_handler(env: dict[str, str]) -> None:
    want = hostemu.wanted_entry(AARCH64, "F", Path(env["XARCH_EMULATOR_DIR"]))
    live = [e for e in binfmt.entries_for(AARCH64) if e.enabled]
    assert [e.name for e in live] == [want.name]
    assert live[0].same_registration(want)


def test_two_installs_at_once_run_one_after_the_other(env: dict[str, str], tmp_path: Path) -> None:
    """Both wait on a lock the test holds, then run in turn: both succeed, each said
    once who held the lock, and binfmt_misc ends with one handler as wanted."""
    lock_file = tmp_path / "state" / "xarch.lock"
    with host_lock("test-holder", path=lock_file, timeout=0):
        runs = [Run(install_args(OFFLINE), env, tmp_path / "logs") for _ in range(2)]
        deadline = time.monotonic() + 60
        while not all("waiting for the host lock" in r.err_path.read_text() for r in runs):
            assert all(r.proc.poll() is None for r in runs), "an install ran without the lock"
            assert time.monotonic() < deadline, "the installs never said they wait"
            time.sleep(0.1)
    actions = []
    for r in runs:
        code, out, err = r.finish(timeout=300)
        assert code == 0, err
        assert err.count("waiting for the host lock") == 1
        assert f"held by pid {os.getpid()} (test-holder)" in err
        actions.append(out.strip().splitlines()[-1].split(":")[1].split()[0])
    # whichever ran second found the first one's handler in place
    assert "unchanged" in actions and len(set(actions)) == 2, actions
    wanted_entry_is_the_only_aarch64_handler(env)


@pytest.mark.parametrize("round_", range(5))
def test_two_installs_racing_never_collide(
    env: dict[str, str], tmp_path: Path, round_: int
) -> None:
    """Started at the same moment, without the test holding anything: without the lock
    two --force installs can unregister and register over each other (ENOENT, EEXIST)."""
    runs = [Run(install_args(OFFLINE), env, tmp_path / "logs") for _ in range(2)]
    for r in runs:
        code, _, err = r.finish(timeout=300)
        assert code == 0, err
        if "waiting for the host lock" in err:
            other = next(q for q in runs if q is not r)
            assert f"held by pid {other.pid} (binfmt-install)" in err
    wanted_entry_is_the_only_aarch64_handler(env)


@pytest.mark.docker
@pytest.mark.emulation
def test_install_waits_for_a_running_suite(
    env: dict[str, str], tmp_path: Path, pinned_config: Config, built: list[Any]
) -> None:
    """`test-images --binfmt-mode F` swaps handlers for minutes; an install started
    meanwhile waits for it, so the suite passes and the install happens after."""
    target = next(t for t in pinned_config.targets if t.arch is AARCH64)
    suite = Run(
        [
            "test-images",
            "--config",
            str(pinned_config.path),
            "--target",
            target.name,
            "--binfmt-mode",
            "F",
            "--junit",
            str(tmp_path / "suite.xml"),
        ],
        env,
        tmp_path / "logs",
    )
    wait_for_holder(tmp_path / "state" / "xarch.lock", suite.pid)
    install = Run(install_args(pinned_config.path), env, tmp_path / "logs")
    install_code, install_out, install_err = install.finish(timeout=1800)
    suite_code, suite_out, suite_err = suite.finish(timeout=60)
    assert suite_code == 0, suite_out[-3000:] + suite_err[-3000:]
    assert install_code == 0, install_err
    # the install ran after the suite let go: it cannot have finished first
    assert suite.out_path.stat().st_mtime <= install.out_path.stat().st_mtime
    assert f"held by pid {suite.pid} (test-images)" in install_err
    assert install_out.strip().splitlines()[-1].startswith("aarch64: ")
    wanted_entry_is_the_only_aarch64_handler(env)
