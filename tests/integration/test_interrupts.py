"""Interrupted runs leave nothing half done (issue 11, item 4).

Each test starts the real CLI (``python -m xarch ...``) in a subprocess, waits for a
phase marker in its output, sends SIGINT or SIGTERM, and then checks the state: exit
130 / 143 with one line and no traceback, the host lock released, caches complete or
absent, the report consistent, temporary binfmt handlers restored, no child left
running; then a rerun converges.

Runnable without Docker or a binfmt change: a push-index whose index write is in
flight (a registry behind the fault proxy that holds the request), and an emulator
download into the cache (served slowly from 127.0.0.1; the run is interrupted long
before it could register anything). The phases that need Docker or change binfmt_misc
are marked so.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration import test_registry_faults as rf
from tests.integration.conftest import OFFLINE, REPO_ROOT
from tests.integration.faultproxy import Rule
from xarch.host import binfmt, qemu
from xarch.host.lock import LOCK_NAME
from xarch.model.arch import ARCHES
from xarch.model.config import Config, load_config

SIGNALS = [
    pytest.param(signal.SIGINT, 130, id="SIGINT"),
    pytest.param(signal.SIGTERM, 143, id="SIGTERM"),
]
MARKER_TIMEOUT = 120.0

faulty = rf.faulty  # the registry-behind-a-proxy fixture


# -- running the CLI and interrupting it ----------------------------------------------


class Interrupted:
    def __init__(self, returncode: int, output: str) -> None:
        self.returncode = returncode
        self.output = output

    @property
    def last_line(self) -> str:
        lines = [ln for ln in self.output.splitlines() if ln.strip()]
        return lines[-1] if lines else ""


XARCH = [sys.executable, "-m", "xarch"]
#: The other entry point: Invoke's own program with the checkout's tasks.py.
INVOKE = [sys.executable, "-m", "invoke", "--search-root", str(REPO_ROOT)]


def interrupt_at(
    args: list[str],
    env: dict[str, str],
    marker: str,
    signum: int,
    *,
    after: float = 0.3,
    entry: list[str] = XARCH,
) -> Interrupted:
    """Run ``python -m xarch ARGS``; when a line containing ``marker`` appears, wait
    ``after`` s and send ``signum`` to the xarch process alone (as `kill` would)."""
    proc = subprocess.Popen(
        [*entry, *args],
        env={**env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    seen = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if marker in line:
                seen.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        if not seen.wait(MARKER_TIMEOUT):
            pytest.fail(f"no {marker!r} within {MARKER_TIMEOUT} s:\n{''.join(lines)[-3000:]}")
        time.sleep(after)
        proc.send_signal(signum)
        rc = proc.wait(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=10)
    return Interrupted(rc, "".join(lines))


def assert_stopped_cleanly(r: Interrupted, signum: int, code: int) -> None:
    assert r.returncode == code, r.output[-3000:]
    assert "Traceback" not in r.output, r.output[-3000:]
    assert r.last_line.startswith(f"error: interrupted by {signal.Signals(signum).name};")


def assert_lock_released(state: Path) -> None:
    """The host lock was released by the run's own cleanup: free, and its holder record
    cleared (the kernel frees a dead process's flock anyway; only a release that ran
    empties the record, so a run killed without cleanup leaves its pid there)."""
    lock = state / LOCK_NAME
    assert lock.exists(), "the task took no host lock"
    assert lock.read_text() == "", f"holder record left behind: {lock.read_text()!r}"
    with lock.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError if still held
        fcntl.flock(f, fcntl.LOCK_UN)


def binfmt_snapshot() -> dict[str, str]:
    root = binfmt.BINFMT_DIR
    if not (root / "status").exists():
        return {}
    return {
        p.name: p.read_text(errors="replace")
        for p in sorted(root.iterdir())
        if p.name != "register"
    }


# -- a push: the index write in flight -------------------------------------------------


@pytest.mark.registry
@pytest.mark.parametrize(("signum", "code"), SIGNALS)
def test_push_index_interrupted_during_the_index_write(
    faulty: rf.Faulty, tmp_path: Path, signum: int, code: int
) -> None:
    published = rf.publish_images(faulty, tmp_path, rf.NO_CREDS)
    faulty.proxy.add(Rule("PUT", r"/manifests/", "delay", seconds=8, times=1))
    r = interrupt_at(
        [
            "push-index",
            "--config",
            str(published.config.path),
            "--digests-dir",
            str(published.digests),
        ],
        published.env,
        "+ PUT index",
        signum,
        after=1.0,
    )
    assert_stopped_cleanly(r, signum, code)
    assert_lock_released(Path(published.env["XARCH_STATE_DIR"]))
    # The report: untouched (no record claims an index this run did not confirm).
    assert rf.recorded_indexes(published) == {}
    if published.report.exists():
        json.loads(published.report.read_text())
    assert (
        not list(published.report.parent.glob(".*.tmp"))
        if published.report.parent.exists()
        else True
    )
    time.sleep(8)  # the held request reaches the registry: what it stores is complete
    rf.assert_no_dangling_index(faulty, published)
    rf.assert_converges(faulty, published)


# -- the emulator download into the cache ----------------------------------------------


class SlowFile(http.server.BaseHTTPRequestHandler):
    """Serves one file slowly (64 KiB every 0.25 s) and never more than half of it:
    the download cannot complete, so an interrupted binfmt-install can never reach the
    point where it would register anything, even if the signal were lost."""

    payload = b""
    stop = threading.Event()
    complete = False  # serve the whole file (for a rerun)

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.payload)))
        self.end_headers()
        try:
            if self.complete:
                self.wfile.write(self.payload)
                return
            for i in range(0, len(self.payload) // 2, 64 * 1024):
                self.wfile.write(self.payload[i : i + 64 * 1024])
                self.wfile.flush()
                time.sleep(0.25)
        except OSError:
            return
        self.stop.wait(300)


@pytest.fixture
def slow_emulator_server() -> Iterator[tuple[str, str, type[SlowFile]]]:
    """(URL template with {binary}, sha256, handler class) serving the pinned
    qemu-aarch64-static slowly."""
    offline = load_config(OFFLINE)
    path = qemu.ensure_emulators(offline.qemu, [ARCHES["aarch64"]], lambda _: None)["aarch64"]
    payload = path.read_bytes()

    class Handler(SlowFile):
        stop = threading.Event()

    Handler.payload = payload
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield (
            f"http://127.0.0.1:{server.server_address[1]}/{{binary}}",
            hashlib.sha256(payload).hexdigest(),
            Handler,
        )
    finally:
        Handler.stop.set()
        server.shutdown()
        server.server_close()


def url_config(tmp_path: Path, url: str, sha256: str) -> Path:
    doc: dict[str, Any] = yaml.safe_load(OFFLINE.read_text())
    doc["qemu"]["source"] = {"url": url}
    # s390x: no handler for it on these hosts, so binfmt-install plans no conflict and
    # goes on to the download (the served bytes are what the pin names).
    doc["qemu"]["sha256"] = {"qemu-aarch64-static": sha256, "qemu-s390x-static": sha256}
    doc["targets"] = [t for t in doc["targets"] if t["arch"] == "aarch64"]
    doc.pop("installer", None)
    path = tmp_path / "url.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    load_config(path)  # the test's own config must be valid
    return path


def cli_env(tmp_path: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "XARCH_CACHE_DIR": str(tmp_path / "cache"),
        "XARCH_STATE_DIR": str(tmp_path / "state"),
        "XARCH_BUILD_DIR": str(tmp_path / "build"),
        "XARCH_EMULATOR_DIR": str(tmp_path / "emulators"),
    }
    env.pop("XARCH_DEBUG", None)
    return env


def cache_entries(cache: Path) -> list[str]:
    root = cache / "qemu"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


@pytest.mark.parametrize("entry", [XARCH, INVOKE], ids=["python -m xarch", "invoke"])
@pytest.mark.parametrize(("signum", "code"), SIGNALS)
def test_emulator_download_interrupted_leaves_no_cache_entry(
    tmp_path: Path,
    slow_emulator_server: tuple[str, str, type[SlowFile]],
    signum: int,
    code: int,
    entry: list[str],
) -> None:
    """binfmt-install interrupted while it downloads the emulator: exit 130/143, the
    cache holds no entry (complete or absent) and no temporary directory, nothing was
    installed or registered, the lock is free."""
    url, sha, _handler = slow_emulator_server
    config = url_config(tmp_path, url, sha)
    env = cli_env(tmp_path)
    before = binfmt_snapshot()
    r = interrupt_at(
        ["binfmt-install", "--config", str(config), "--arch", "s390x"],
        env,
        "+ GET ",
        signum,
        after=1.0,
        entry=entry,
    )
    assert_stopped_cleanly(r, signum, code)
    entries = cache_entries(tmp_path / "cache")
    assert all(not e.endswith("-static") for e in entries), entries
    assert not [e for e in entries if "xarch-qemu-" in e], entries  # no temporary left
    assert not (tmp_path / "emulators").exists() or not any((tmp_path / "emulators").iterdir())
    assert binfmt_snapshot() == before
    assert_lock_released(tmp_path / "state")


@pytest.mark.binfmt
def test_emulator_download_rerun_converges(
    tmp_path: Path, slow_emulator_server: tuple[str, str, type[SlowFile]]
) -> None:
    """After an interrupted download, binfmt-install runs to the end and the cache holds
    the verified emulator. Replaces qemu-aarch64 (--force); the host's handlers are
    restored afterwards."""
    url, sha, handler = slow_emulator_server
    config = url_config(tmp_path, url, sha)
    env = cli_env(tmp_path)
    r = interrupt_at(
        ["binfmt-install", "--config", str(config), "--arch", "s390x"],
        env,
        "+ GET ",
        signal.SIGTERM,
    )
    assert r.returncode == 143
    handler.complete = True
    with binfmt.preserved():
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "xarch",
                "binfmt-install",
                "--config",
                str(config),
                "--arch",
                "aarch64",
                "--force",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    cached = list((tmp_path / "cache" / "qemu").rglob("qemu-aarch64-static"))
    assert len(cached) == 1
    assert hashlib.sha256(cached[0].read_bytes()).hexdigest() == sha


# -- phases that need Docker -----------------------------------------------------------


@pytest.mark.docker
@pytest.mark.binfmt
@pytest.mark.emulation
@pytest.mark.parametrize(("signum", "code"), SIGNALS)
def test_bootstrap_interrupted_leaves_no_partial_rootfs(
    tmp_path: Path, signum: int, code: int
) -> None:
    """build-images of a stand-in whose rootfs is not cached, interrupted while
    mmdebstrap runs: no tarball under the final name, no work directory, no mmdebstrap
    left running, binfmt_misc as before, the lock free."""
    env = cli_env(tmp_path)
    before = binfmt_snapshot()
    r = interrupt_at(
        ["build-images", "--config", str(OFFLINE), "--target", "standin-manylinux2014_aarch64"],
        env,
        "bootstrapping Debian",
        signum,
        after=5.0,
    )
    assert_stopped_cleanly(r, signum, code)
    rootfs = tmp_path / "cache" / "rootfs"
    left = sorted(p.name for p in rootfs.iterdir()) if rootfs.exists() else []
    assert not [n for n in left if n.startswith(".work-")], left
    assert not [n for n in left if n.endswith(".tar")], left
    ps = subprocess.run(["pgrep", "-f", f"mmdebstrap.*{tmp_path}"], capture_output=True, text=True)
    assert ps.stdout.strip() == "", f"mmdebstrap still running: {ps.stdout}"
    assert binfmt_snapshot() == before
    assert_lock_released(tmp_path / "state")


@pytest.mark.docker
@pytest.mark.binfmt
@pytest.mark.emulation
@pytest.mark.parametrize(("signum", "code"), SIGNALS)
def test_test_images_interrupted_restores_the_temporary_handlers(
    tmp_path: Path, signum: int, code: int
) -> None:
    """test-images --binfmt-mode F interrupted while its suite runs: the host's handlers
    are as before, no suite container is left, the lock is free; needs the offline
    quick start's images (build-images --config config/offline.yaml)."""
    import docker

    client = docker.from_env()
    if not client.images.list(filters={"label": "io.xarch.inputs-hash"}):
        pytest.skip("no helper images built (invoke build-images --config config/offline.yaml)")
    containers_before = {c.id for c in client.containers.list(all=True)}
    before = binfmt_snapshot()
    env = {**cli_env(tmp_path), "XARCH_CACHE_DIR": os.environ.get("XARCH_CACHE_DIR", "")}
    if not env["XARCH_CACHE_DIR"]:
        env.pop("XARCH_CACHE_DIR")
    r = interrupt_at(
        ["test-images", "--config", str(OFFLINE), "--binfmt-mode", "F"],
        env,
        "== test-images:",
        signum,
        after=8.0,
    )
    assert_stopped_cleanly(r, signum, code)
    assert binfmt_snapshot() == before
    # A `docker run --rm` the suite had started is removed by the daemon once it stops,
    # which may finish a moment after xarch exits: wait for that, not for ever.
    deadline = time.monotonic() + 20
    while True:
        left = {c.id for c in client.containers.list(all=True)} - containers_before
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert not left, f"containers left behind: {left}"
    assert_lock_released(tmp_path / "state")


@pytest.mark.registry
def test_sigkill_leaves_the_holder_record(faulty: rf.Faulty, tmp_path: Path) -> None:
    """What assert_lock_released tells apart: a run that could not clean up (SIGKILL)
    leaves its record in the lock file."""
    published = rf.publish_images(faulty, tmp_path, rf.NO_CREDS)
    faulty.proxy.add(Rule("PUT", r"/manifests/", "delay", seconds=8, times=1))
    args = ["push-index", "--config", str(published.config.path)]
    r = interrupt_at(
        [*args, "--digests-dir", str(published.digests)],
        published.env,
        "+ PUT index",
        signal.SIGKILL,
    )
    assert r.returncode == -signal.SIGKILL
    with pytest.raises(AssertionError, match="holder record left behind"):
        assert_lock_released(Path(published.env["XARCH_STATE_DIR"]))


@pytest.mark.docker
@pytest.mark.registry
@pytest.mark.parametrize(("signum", "code"), SIGNALS)
def test_push_images_interrupted_during_a_layer_upload(
    faulty: rf.Faulty, tmp_path: Path, signum: int, code: int
) -> None:
    """push-images interrupted while docker uploads a layer (the registry holds the
    upload): no index, no push record claiming it, the lock released; the rerun pushes
    every image and writes the index."""
    docker = pytest.importorskip("docker")
    try:
        client = docker.from_env(timeout=300)
        client.ping()
    except docker.errors.DockerException as e:
        pytest.skip(f"no Docker engine: {e}")
    published = rf.publish_images(faulty, tmp_path, rf.NO_CREDS)
    refs = []
    for n, item in enumerate(published.items):
        payload = os.urandom(2 << 20) + str(n).encode()
        client.images.load(rf._docker_archive(item.ref, item.arch.oci_platform(), payload))
        refs.append(item.ref)
    try:
        faulty.proxy.add(Rule("PATCH|PUT", r"/blobs/uploads/", "delay", seconds=10, times=1))
        targets = [a for t in published.config.targets for a in ("--target", t.name)]
        args = ["push-images", "--config", str(published.config.path), *targets]
        r = interrupt_at(args, published.env, "+ docker push", signum, after=2.0)
        assert_stopped_cleanly(r, signum, code)
        assert_lock_released(Path(published.env["XARCH_STATE_DIR"]))
        assert rf.recorded_indexes(published) == {}
        time.sleep(10)
        rf.assert_no_dangling_index(faulty, published)
        faulty.proxy.clear()
        done = rf.run_cli(published, "push-images", *targets)
        assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
        digest = rf.index_in_registry(faulty, published)
        assert digest is not None
        assert rf.recorded_indexes(published) == {published.items[0].index_ref: digest}
        rf.assert_no_dangling_index(faulty, published)
    finally:
        for ref in refs:
            with contextlib.suppress(docker.errors.APIError):
                client.images.remove(ref, force=True)
        client.close()


@pytest.mark.docker
@pytest.mark.registry
@pytest.mark.parametrize(("signum", "code"), SIGNALS)
def test_build_interrupted_then_rerun_converges(
    pinned_config: Config, tmp_path: Path, signum: int, code: int
) -> None:
    """build-images --no-cache interrupted during the docker build: exit 130/143, the
    report readable and not claiming this build, the lock released; the rerun builds."""
    env = {**cli_env(tmp_path)}
    env.pop("XARCH_CACHE_DIR")  # the stand-in bases' cache of the session is reused
    target = pinned_config.targets[0].name
    args = ["build-images", "--config", str(pinned_config.path), "--target", target]
    r = interrupt_at([*args, "--no-cache"], env, "+ docker build", signum, after=0.1)
    assert_stopped_cleanly(r, signum, code)
    assert_lock_released(tmp_path / "state")
    build = tmp_path / "build"
    if build.exists():
        assert not list(build.glob(".*.tmp"))
        for report in build.glob("*.json"):
            json.loads(report.read_text())
    done = subprocess.run(
        [sys.executable, "-m", "xarch", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    assert json.loads((build / "xarch-report.json").read_text())
