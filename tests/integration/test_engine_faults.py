"""The Docker engine dying under a task (issue 18): a private dockerd of the test's own
(its own socket, data root and exec root; the host's engine is never touched) is killed
with SIGKILL while `invoke test-images` runs against it, then started again.

- the run ends with exit 1 and says the engine stopped answering (not that the image
  failed its checks), and the JUnit file has errors for the tests it cut short and no
  failures;
- the next run, with the engine back, removes the container the dead run left behind,
  says so, and passes.

    pytest tests/integration/test_engine_faults.py
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import OFFLINE, REPO_ROOT
from xarch.images.suite import RUN_LABEL
from xarch.model.config import load_config
from xarch.model.naming import helper_ref

pytestmark = [pytest.mark.docker, pytest.mark.emulation, pytest.mark.binfmt]

INVOKE = str(Path(sys.executable).with_name("invoke"))
TARGET = "standin-manylinux2014_aarch64"
# A bridge of its own. Never --bridge=none: a dockerd started so deletes the interface
# docker0, the host engine's bridge (libnetwork's removeDefaultBridgeInterface); seen here.
BRIDGE = "xarch-t0"
BRIDGE_NET = "172.31.250.1/24"


class PrivateEngine:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.sock = root / "docker.sock"
        self.host = f"unix://{self.sock}"
        self.proc: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": self.host}

    def start(self) -> None:
        log = (self.root / "dockerd.log").open("ab")
        self.proc = subprocess.Popen(
            [
                "dockerd",
                f"--data-root={self.root / 'data'}",
                f"--exec-root={self.root / 'exec'}",
                f"--pidfile={self.root / 'dockerd.pid'}",
                f"--host={self.host}",
                f"--bridge={BRIDGE}",  # its own (the host engine's docker0 is not shared)
                "--iptables=false",
                "--ip-masq=false",
            ],
            stdout=log,
            stderr=log,
            start_new_session=True,  # its containerd in its group: one kill takes both
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            r = subprocess.run(
                ["docker", "version"], env=self.env(), capture_output=True, check=False
            )
            if r.returncode == 0:
                return
            time.sleep(0.5)
        tail = (self.root / "dockerd.log").read_text(errors="replace")[-2000:]
        raise AssertionError(f"the private dockerd did not answer within 60 s:\n{tail}")

    def kill(self) -> None:
        """SIGKILL to the engine: dockerd, and the containerd it started."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        killed = _pids_mentioning(str(self.root / "exec"))
        for pid in killed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        # Until they are gone: a restarted dockerd that still sees its containerd's pid
        # alive waits for that containerd's socket instead of starting a new one.
        deadline = time.monotonic() + 30
        while any(Path(f"/proc/{p}").exists() for p in killed) and time.monotonic() < deadline:
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        # Whatever the engine started and left (shims, the containers' processes).
        for pid in _pids_mentioning(str(self.root)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for mount in reversed(_mounts_under(self.root)):
            subprocess.run(["umount", "-l", mount], check=False, capture_output=True)


def _pids_mentioning(text: str) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(OSError):
                if text.encode() in (d / "cmdline").read_bytes():
                    out.append(int(d.name))
    return [p for p in out if p != os.getpid()]


def _mounts_under(root: Path) -> list[str]:
    lines = Path("/proc/self/mounts").read_text().splitlines()
    return [ln.split()[1] for ln in lines if ln.split()[1].startswith(str(root))]


@pytest.fixture
def private_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateEngine]:
    if shutil.which("dockerd") is None:
        pytest.skip("no dockerd here")
    config = load_config(OFFLINE)
    [target] = config.select([TARGET])
    ref = helper_ref(config, target, target.tags[0])
    if subprocess.run(["docker", "image", "inspect", ref], capture_output=True).returncode:
        pytest.skip(f"{ref} is not built (the quick start builds it)")
    root = Path("/tmp") / f"xarch-engine-{os.getpid()}"  # short: the socket path is limited
    root.mkdir()
    engine = PrivateEngine(root)
    try:
        for cmd in (
            ["ip", "link", "add", "name", BRIDGE, "type", "bridge"],
            ["ip", "addr", "add", BRIDGE_NET, "dev", BRIDGE],
            ["ip", "link", "set", BRIDGE, "up"],
        ):
            subprocess.run(cmd, check=True, capture_output=True)
        engine.start()
        yield engine
    finally:
        engine.stop()
        subprocess.run(["ip", "link", "del", BRIDGE], check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def engine_with_image(private_engine: PrivateEngine) -> PrivateEngine:
    """The private engine holding the quick start's aarch64 helper image (docker save |
    docker load), which test-images runs against."""
    config = load_config(OFFLINE)
    [target] = config.select([TARGET])
    ref = helper_ref(config, target, target.tags[0])
    save = subprocess.Popen(["docker", "save", ref], stdout=subprocess.PIPE)
    load = subprocess.run(
        ["docker", "load"], stdin=save.stdout, env=private_engine.env(), capture_output=True
    )
    assert save.wait() == 0 and load.returncode == 0, load.stderr
    return private_engine


def _test_images(engine: PrivateEngine, junit: Path) -> subprocess.Popen[str]:
    argv = [INVOKE, "test-images", "--config", str(OFFLINE), "--target", TARGET]
    argv += ["--binfmt-mode", "F", "--jobs", "1", "--junit", str(junit)]
    return subprocess.Popen(
        argv,
        cwd=REPO_ROOT,
        env=engine.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _run_containers(engine: PrivateEngine) -> list[str]:
    r = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label={RUN_LABEL}"],
        env=engine.env(),
        capture_output=True,
        text=True,
        check=False,
    )
    return r.stdout.split()


def test_an_engine_killed_mid_run_is_the_engines_failure_and_the_rerun_cleans_up(
    engine_with_image: PrivateEngine, tmp_path: Path
) -> None:
    private_engine = engine_with_image
    junit = tmp_path / "killed.xml"
    run = _test_images(private_engine, junit)
    # Killed once the suite's container runs and some tests have passed.
    deadline = time.monotonic() + 300
    while not _run_containers(private_engine):
        assert run.poll() is None, run.communicate()[0]
        assert time.monotonic() < deadline, "the suite started no container"
        time.sleep(0.5)
    time.sleep(8)
    private_engine.kill()
    out, _ = run.communicate(timeout=600)
    assert run.returncode == 1, out
    assert f"the Docker engine at {private_engine.host} stopped answering during test-images" in (
        out
    ), out[-3000:]
    assert "image verification failed" not in out
    suite = ET.parse(junit).getroot()
    cases = list(suite.iter("testcase"))
    errors = [c for c in cases if c.find("error") is not None]
    failures = [c for c in cases if c.find("failure") is not None]
    assert errors, "no test was marked as an error"
    assert failures == [], [c.get("name") for c in failures]
    said = [ET.tostring(e, encoding="unicode") for e in errors]
    assert any("stopped answering" in s for s in said), said[:2]

    private_engine.start()
    left = _run_containers(private_engine)
    assert left, "the killed run left no container (nothing to clean up)"
    again = _test_images(private_engine, tmp_path / "again.xml")
    out2, _ = again.communicate(timeout=900)
    assert again.returncode == 0, out2[-3000:]
    assert "left by an earlier run" in out2, out2[:3000]
    assert not set(left) & set(_run_containers(private_engine))


def test_an_engine_killed_during_build_images_is_named_as_the_cause(
    private_engine: PrivateEngine, tmp_path: Path
) -> None:
    """The same for any engine task (the CLI's one error handler): build-images, killed
    while the private engine pulls the stand-in base and builds, exits 1 saying the
    engine stopped answering during build-images."""
    argv = [INVOKE, "build-images", "--config", str(OFFLINE), "--target", TARGET, "--no-cache"]
    env = {**private_engine.env(), "XARCH_BUILD_DIR": str(tmp_path / "build")}
    run = subprocess.Popen(
        argv, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    time.sleep(6)  # the base's pull (hundreds of MB from the registry) is under way
    assert run.poll() is None, run.communicate()[0]
    private_engine.kill()
    out, _ = run.communicate(timeout=600)
    assert run.returncode == 1, out
    assert (
        f"the Docker engine at {private_engine.host} stopped answering during build-images" in out
    ), out[-3000:]
    assert "Traceback" not in out and "bug in xarch" not in out
