"""The Docker engine dying under a task (issue 18): a private dockerd of the test's own
(its own socket, data root and exec root; the host's engine is never touched) is killed
with SIGKILL while `invoke test-images` runs against it, then started again.

- the run ends with exit 1 and says the engine stopped answering (not that the image
  failed its checks), and the JUnit file has errors for the tests it cut short and no
  failures;
- the next run, with the engine back, removes the container the dead run left behind,
  says so, and passes;
- the same for push-images (killed while the first layer is uploaded to a registry of the
  test's own: no index, no push record; the rerun pushes), wheels (killed while
  cibuildwheel's container runs), pull-images (killed mid-download; the rerun pulls),
  bench and build-images;
- an engine whose data root (a small tmpfs) fills up under build-images: the full disk is
  named, with the path, and nothing is recorded.

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
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import OFFLINE, REPO_ROOT
from xarch.host import binfmt, qemu
from xarch.images.suite import RUN_LABEL
from xarch.model.arch import get_arch
from xarch.model.config import load_config
from xarch.model.naming import helper_ref
from xarch.oci.registry_server import RegistryServer

pytestmark = [pytest.mark.docker, pytest.mark.emulation, pytest.mark.binfmt]

INVOKE = str(Path(sys.executable).with_name("invoke"))
TARGET = "standin-manylinux2014_aarch64"
# A bridge of its own. Never --bridge=none: a dockerd started so deletes the interface
# docker0, the host engine's bridge (libnetwork's removeDefaultBridgeInterface); seen here.
BRIDGE = "xarch-t0"
BRIDGE_NET = "172.31.250.1/24"


class PrivateEngine:
    def __init__(self, root: Path, data_limit: str | None = None) -> None:
        self.root = root
        self.data_limit = data_limit  # a tmpfs of this size as the data root
        self.sock = root / "docker.sock"
        self.host = f"unix://{self.sock}"
        self.proc: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": self.host}

    def start(self) -> None:
        data = self.root / "data"
        if self.data_limit and not any(m == str(data) for m in _mounts_under(self.root)):
            data.mkdir(exist_ok=True)
            subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"size={self.data_limit}", "xarch-test", data],
                check=True,
                capture_output=True,
            )
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
        while any(_alive(p) for p in killed) and time.monotonic() < deadline:
            time.sleep(0.2)
        # A killed containerd's pid can stay a zombie (its parent, dockerd, is dead and
        # this machine's pid 1 reaps late): dockerd's kill(pid, 0) then says "containerd
        # is still running" and waits for a socket that never comes. Seen here.
        (self.root / "exec" / "containerd" / "containerd.pid").unlink(missing_ok=True)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        # Whatever the engine started and left: shims, and the containers' processes. A
        # container's process names nothing of the engine's (`qemu-aarch64-static
        # /bin/sleep infinity`), and once a kill took its shim it is pid 1's child: it is
        # found by its cgroup, named after a container of this engine's data root.
        for pid in _pids_mentioning(str(self.root)) + _pids_in_containers(self.root / "data"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for mount in reversed(_mounts_under(self.root)):
            subprocess.run(["umount", "-l", mount], check=False, capture_output=True)


def _alive(pid: int) -> bool:
    """Whether the process runs (a zombie does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _pids(match: Callable[[Path], bool]) -> list[int]:
    """The processes (but this one) whose /proc directory `match` accepts."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(OSError):
                if match(d):
                    out.append(int(d.name))
    return [p for p in out if p != os.getpid()]


def _pids_mentioning(text: str) -> list[int]:
    return _pids(lambda d: text.encode() in (d / "cmdline").read_bytes())


def _pids_in_containers(data_root: Path) -> list[int]:
    """The processes of the containers an engine with this data root made: their cgroup
    is named after the container's id (cgroupfs: /docker/<id>; systemd:
    docker-<id>.scope)."""
    ids = {d.name for d in (data_root / "containers").glob("*") if len(d.name) == 64}

    def in_one(d: Path) -> bool:
        leaves = (ln.rsplit("/", 1)[-1] for ln in (d / "cgroup").read_text().splitlines())
        return any(leaf.removeprefix("docker-").removesuffix(".scope") in ids for leaf in leaves)

    return _pids(in_one) if ids else []


def _mounts_under(root: Path) -> list[str]:
    lines = Path("/proc/self/mounts").read_text().splitlines()
    return [ln.split()[1] for ln in lines if ln.split()[1].startswith(str(root))]


@contextlib.contextmanager
def _private_engine(data_limit: str | None = None) -> Iterator[PrivateEngine]:
    if shutil.which("dockerd") is None:
        pytest.skip("no dockerd here")
    config = load_config(OFFLINE)
    [target] = config.select([TARGET])
    ref = helper_ref(config, target, target.tags[0])
    if subprocess.run(["docker", "image", "inspect", ref], capture_output=True).returncode:
        pytest.skip(f"{ref} is not built (the quick start builds it)")
    root = Path("/tmp") / f"xarch-engine-{os.getpid()}"  # short: the socket path is limited
    root.mkdir()
    engine = PrivateEngine(root, data_limit)
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
def private_engine() -> Iterator[PrivateEngine]:
    with _private_engine() as engine:
        yield engine


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


@pytest.fixture
def aarch64_handler() -> Iterator[None]:
    """An enabled aarch64 handler: the host's when it has one, else a temporary one with
    the pinned emulator, removed afterwards (binfmt_misc is put back as found)."""
    arch = get_arch("aarch64")
    if not binfmt.is_available():
        pytest.skip("binfmt_misc is not mounted")
    if any(e.enabled for e in binfmt.entries_for(arch)):
        yield
        return
    emulator = qemu.ensure_emulators(load_config(OFFLINE).qemu, [arch], _quiet)["aarch64"]
    with binfmt.preserved(log=_quiet), binfmt.temporary_handler(arch, str(emulator), log=_quiet):
        yield


def _quiet(_: str) -> None:
    pass


def _config_at(address: str, tmp_path: Path) -> Path:
    """config/offline.yaml with its registry at ``address``, only the aarch64 target and
    no installer image (what push-images and wheels need here, nothing more)."""
    doc = yaml.safe_load(OFFLINE.read_text())
    doc["registry"]["address"] = address
    doc["targets"] = [t for t in doc["targets"] if t["name"] == TARGET]
    doc.pop("installer", None)
    path = tmp_path / "engine-faults.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _invoke(engine: PrivateEngine, build: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [INVOKE, *args],
        cwd=REPO_ROOT,
        env={**engine.env(), "XARCH_BUILD_DIR": str(build)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_for(what: str, ready: Callable[[], bool], run: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 300
    while not ready():
        assert run.poll() is None, f"ended before {what}:\n{run.communicate()[0][-3000:]}"
        assert time.monotonic() < deadline, f"no {what} within 300 s"
        time.sleep(0.05)


def _killed_under(engine: PrivateEngine, run: subprocess.Popen[str], task: str) -> str:
    """Kill the engine under a running task: it must exit 1 naming the engine (not a
    failed image or build, not a bug); its output."""
    engine.kill()
    out, _ = run.communicate(timeout=600)
    assert run.returncode == 1, out[-3000:]
    said = f"the Docker engine at {engine.host} stopped answering during {task}"
    assert said in out, out[-3000:]
    assert "bug in xarch" not in out
    return out


def test_an_engine_killed_during_push_pull_wheels_and_bench_is_named_as_the_cause(
    engine_with_image: PrivateEngine,
    registry_server: RegistryServer,
    aarch64_handler: None,
    tmp_path: Path,
) -> None:
    """push-images killed while the helper image's first layer is uploaded to a registry
    of the test's own: exit 1 naming the engine, no index and no push record; with the
    engine back the rerun pushes. Then wheels, killed while cibuildwheel's container
    runs; pull-images, killed while the engine writes the first blob (the rerun pulls);
    bench, killed once its first container runs: each exits 1 naming the engine, not a
    failed build or image."""
    engine = engine_with_image
    cfg = _config_at(registry_server.address, tmp_path)
    config = load_config(cfg)
    [target] = config.select([TARGET])
    [quick] = load_config(OFFLINE).select([TARGET])
    ref = helper_ref(config, target, target.tags[0])
    tagged = subprocess.run(
        ["docker", "tag", helper_ref(load_config(OFFLINE), quick, quick.tags[0]), ref],
        env=engine.env(),
        capture_output=True,
        text=True,
    )
    assert tagged.returncode == 0, tagged.stderr
    build = tmp_path / "build"
    report = build / "xarch-report.json"
    # This image's repository in the registry's storage (the session's registry holds
    # other tests' repositories too).
    repos = (
        registry_server.state_dir / "data" / "docker" / "registry" / "v2" / "repositories"
        / ref.split("/", 1)[1].rsplit(":", 1)[0]
    )  # fmt: skip

    def uploading() -> bool:
        return any(repos.glob("**/_uploads/*")) if repos.exists() else False

    push = ["push-images", "--config", str(cfg), "--target", TARGET]
    run = _invoke(engine, build, *push)
    _wait_for("upload", uploading, run)
    out = _killed_under(engine, run, "push-images")
    assert "Traceback" not in out
    # Nothing half-published: no manifest in the registry, no push recorded.
    assert not list(repos.glob("**/_manifests/tags/*")), "a tag was published"
    pushed = yaml.safe_load(report.read_text()).get("push") if report.exists() else None
    assert not pushed, pushed

    engine.start()
    again = _invoke(engine, build, *push)
    out2, _ = again.communicate(timeout=900)
    assert again.returncode == 0, out2[-3000:]
    assert list(repos.glob("**/_manifests/tags/*")), "the rerun published nothing"

    sample = tmp_path / "cext"
    shutil.copytree(REPO_ROOT / "tests" / "e2e" / "projects" / "cext", sample)

    def container_runs() -> bool:
        r = subprocess.run(["docker", "ps", "-q"], env=engine.env(), capture_output=True, text=True)
        return bool(r.stdout.strip())

    wheels = _invoke(
        engine, build, "wheels", "--config", str(cfg), "--target", TARGET,
        "--project", str(sample), "--output", str(tmp_path / "wheelhouse"),
    )  # fmt: skip
    _wait_for("cibuildwheel container", container_runs, wheels)
    time.sleep(2)  # under way inside it
    _killed_under(engine, wheels, "wheels")
    assert not (tmp_path / "wheelhouse").exists() or not list(
        (tmp_path / "wheelhouse").glob("*.whl")
    )

    # pull-images, killed while the engine writes the image's first blob. The killed
    # wheels run's container still holds the image's layers: removed first, so that the
    # pull has them to download.
    engine.start()
    left = subprocess.run(
        ["docker", "ps", "-aq"], env=engine.env(), capture_output=True, text=True, check=True
    ).stdout.split()
    if left:
        subprocess.run(["docker", "rm", "-f", *left], env=engine.env(), check=True,
                       capture_output=True)  # fmt: skip
    image_id = subprocess.run(
        ["docker", "image", "inspect", "-f", "{{.Id}}", ref],
        env=engine.env(), capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    subprocess.run(["docker", "rmi", "-f", image_id], env=engine.env(), check=True,
                   capture_output=True)  # fmt: skip
    blobs = engine.root / "data" / "tmp"
    pull = ["pull-images", "--config", str(cfg), "--report", str(report)]
    pulling = _invoke(engine, build, *pull)
    _wait_for("blob download", lambda: any(blobs.glob("GetImageBlob*")), pulling)
    _killed_under(engine, pulling, "pull-images")
    engine.start()
    again = _invoke(engine, build, *pull)
    out5, _ = again.communicate(timeout=900)
    assert again.returncode == 0, out5[-3000:]

    # bench, killed once its first container runs in the image.
    benching = _invoke(
        engine, build, "bench", "--config", str(cfg), "--target", TARGET, "--quick",
        "--output", str(tmp_path / "bench"),
    )  # fmt: skip
    _wait_for("bench container", container_runs, benching)
    _killed_under(engine, benching, "bench")


def test_an_engine_whose_data_root_fills_up_says_the_disk_is_full(tmp_path: Path) -> None:
    """The engine's own disk: a private dockerd whose data root is a 128 MiB tmpfs, and
    build-images, which pulls the stand-in base (hundreds of MB) into it. It exits 1
    naming the full disk and a path under the data root, records nothing, and says
    nothing of registries or logins."""
    with _private_engine(data_limit="128m") as engine:
        build = tmp_path / "build"
        run = _invoke(
            engine, build, "build-images", "--config", str(OFFLINE), "--target", TARGET,
            "--no-cache",
        )  # fmt: skip
        out, _ = run.communicate(timeout=900)
        assert run.returncode == 1, out[-3000:]
        assert "disk is full" in out, out[-3000:]
        assert str(engine.root / "data") in out, out[-3000:]
        assert "docker login" not in out and "Traceback" not in out
        assert (
            not (build / "xarch-report.json").exists()
            or "built" not in (build / "xarch-report.json").read_text()
        )
