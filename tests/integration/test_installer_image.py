"""The binfmt installer image on real parts: built (docker-archive + docker load) into
the engine, pushed with its multi-arch index to a test registry, and run against the
host's real /proc/sys/fs/binfmt_misc.

Every test that touches binfmt_misc snapshots it first and puts it back exactly
(xarch.binfmt.preserved), and checks that it did.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
import yaml

from xarch.errors import XarchError
from xarch.host import binfmt, qemu
from xarch.images.build import build_images
from xarch.images.results import BuildResult
from xarch.model.arch import get_arch
from xarch.model.config import INSTALLER_TARGET, Config, load_config
from xarch.model.naming import L_INPUTS, L_QEMU_VERSION, variant_refs
from xarch.model.report import push_record
from xarch.oci.engine import Engine
from xarch.oci.registry import RegistryClient
from xarch.oci.registry_server import RegistryServer
from xarch.publish.push import PushOutcome, push_images

from .conftest import handlers_removed

pytestmark = [pytest.mark.docker, pytest.mark.registry, pytest.mark.binfmt]

REPO_ROOT = Path(__file__).resolve().parents[2]
OFFLINE = REPO_ROOT / "config" / "offline.yaml"
TAG = "t1"
NAMESPACE = "xarch-installer-test"
BINFMT_MOUNT = ["-v", f"{binfmt.BINFMT_DIR}:/binfmt_misc"]
AARCH64 = get_arch("aarch64")
# Helper images of the offline profile, when the quick start has built them here.
STANDIN_ARM64 = "127.0.0.1:5000/xarch/standin-manylinux2014:standin-aarch64"


def quiet(_: str) -> None:
    pass


@pytest.fixture(scope="module")
def docker_client() -> docker.DockerClient:
    if os.geteuid() != 0:
        pytest.skip("needs root (binfmt_misc)")
    if not binfmt.is_available():
        pytest.skip("binfmt_misc is not mounted at /proc/sys/fs/binfmt_misc")
    try:
        return Engine.connect().client
    except XarchError as e:
        pytest.skip(f"no Docker engine: {e}")


@pytest.fixture(scope="module", autouse=True)
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Reports go to a temporary build/ so the tests never touch the user's."""
    d = tmp_path_factory.mktemp("installer-build")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XARCH_BUILD_DIR", str(d))
        yield d


@pytest.fixture(scope="module")
def cfg(
    tmp_path_factory: pytest.TempPathFactory,
    registry_server: RegistryServer,
    docker_client: docker.DockerClient,
) -> Iterator[Config]:
    """The offline profile's qemu pin and installer section, pointed at the test
    registry (one target is required by the schema; it is never built here)."""
    offline = yaml.safe_load(OFFLINE.read_text())
    doc: dict[str, Any] = {
        "registry": {"address": registry_server.address, "namespace": NAMESPACE},
        "qemu": offline["qemu"],
        "targets": [
            {
                "name": "unused",
                "arch": "aarch64",
                "base": {"image": "example.invalid/unused", "digest": "sha256:" + "0" * 64},
                "family": "unused",
                "tags": [TAG],
            }
        ],
        "installer": dict(offline["installer"], tags=[TAG]),
    }
    path = tmp_path_factory.mktemp("installer-cfg") / "installer.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    config = load_config(path)
    yield config
    # Only this module's images: other modules share the session's registry.
    for img in docker_client.images.list():
        for tag in img.tags:
            if tag.startswith(f"{registry_server.address}/{NAMESPACE}/"):
                with contextlib.suppress(docker.errors.APIError):
                    docker_client.images.remove(tag, noprune=False)


@pytest.fixture(scope="module")
def built(cfg: Config, docker_client: docker.DockerClient) -> list[BuildResult]:
    start = time.monotonic()
    results = build_images(
        cfg, [INSTALLER_TARGET], no_cache=True, engine=Engine(docker_client), log=quiet
    )
    print(f"installer build (--no-cache): {time.monotonic() - start:.1f}s")
    return results


@pytest.fixture(scope="module")
def refs(cfg: Config, built: list[BuildResult]) -> dict[str, str]:
    """{host arch: image ref} of the variants."""
    assert cfg.installer is not None
    return {h.arch.name: variant_refs(cfg, h)[0] for h in cfg.installer.hosts}


def docker_run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", "run", "--rm", *args], capture_output=True, text=True, timeout=180, check=False
    )


def installer(ref: str, *args: str, mount: bool = True) -> subprocess.CompletedProcess[str]:
    """The installer container the documented way: no --privileged, no capability,
    the host's binfmt_misc bind-mounted at /binfmt_misc."""
    return docker_run(*(BINFMT_MOUNT if mount else []), ref, *args)


def arm64_uname(ref: str) -> subprocess.CompletedProcess[str]:
    """`uname -m` in the arm64 variant: a static arm64 busybox."""
    return docker_run("--entrypoint", "/bin/busybox", ref, "uname", "-m")


def out(r: subprocess.CompletedProcess[str]) -> str:
    return r.stdout + r.stderr


# ----------------------------------------------------------------------------- build


def test_both_variants_built_with_their_platform(
    built: list[BuildResult], refs: dict[str, str], docker_client: docker.DockerClient
) -> None:
    assert [(r.target, r.status) for r in built] == [
        ("binfmt-installer-x86_64", "built"),
        ("binfmt-installer-aarch64", "built"),
    ]
    for arch, ref in refs.items():
        attrs = Engine(docker_client).inspect(ref)
        assert attrs is not None
        a = get_arch(arch)
        assert (attrs["Os"], attrs["Architecture"]) == ("linux", a.docker_arch)
        assert (attrs.get("Variant") or "") == a.docker_variant
        assert attrs["Config"]["Entrypoint"] == ["/bin/busybox", "sh", "/usr/bin/xarch-binfmt"]
        print(f"{ref}: {attrs['Size'] / 1e6:.1f} MB")


def test_labels_pin_every_binary(
    built: list[BuildResult], cfg: Config, refs: dict[str, str], docker_client: docker.DockerClient
) -> None:
    assert cfg.installer is not None
    for host in cfg.installer.hosts:
        labels = Engine(docker_client).labels(refs[host.arch.name]) or {}
        assert labels[L_QEMU_VERSION] == cfg.qemu.version
        assert labels[L_INPUTS].startswith("sha256:")
        assert labels["io.xarch.version"]
        assert labels["io.xarch.busybox.sha256"] == cfg.installer.busybox.sha256[host.arch.name]
        for a in host.emulates:
            assert labels[f"io.xarch.qemu.sha256.{a.qemu_binary}"] == host.sha256[a.qemu_binary]


def _files(docker_client: docker.DockerClient, ref: str, path: str) -> dict[str, bytes]:
    """The files under path in an image, from a created (never started) container."""
    container = docker_client.containers.create(ref)
    try:
        stream, _ = container.get_archive(path)
        data = b"".join(stream)
    finally:
        container.remove()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {
            m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isfile()
        }


def test_arm64_variant_carries_the_pinned_x86_64_emulator(
    cfg: Config, refs: dict[str, str], docker_client: docker.DockerClient
) -> None:
    assert cfg.installer is not None
    arm = cfg.installer.hosts[1]
    attrs = Engine(docker_client).inspect(refs["aarch64"]) or {}
    assert (attrs.get("Architecture"), attrs.get("Variant")) == ("arm64", "v8")
    files = _files(docker_client, refs["aarch64"], "/usr/bin")
    assert sorted(files) == ["bin/qemu-x86_64-static", "bin/xarch-binfmt"]
    assert (
        hashlib.sha256(files["bin/qemu-x86_64-static"]).hexdigest()
        == arm.sha256["qemu-x86_64-static"]
    )
    assert files["bin/qemu-x86_64-static"][18:20] == b"\xb7\x00"  # e_machine: aarch64
    (busybox,) = _files(docker_client, refs["aarch64"], "/bin/busybox").values()
    assert hashlib.sha256(busybox).hexdigest() == cfg.installer.busybox.sha256["aarch64"]


def test_amd64_variant_carries_every_pinned_emulator(
    cfg: Config, refs: dict[str, str], docker_client: docker.DockerClient
) -> None:
    assert cfg.installer is not None
    x86 = cfg.installer.hosts[0]
    files = _files(docker_client, refs["x86_64"], "/usr/bin")
    want = {f"bin/{a.qemu_binary}": x86.sha256[a.qemu_binary] for a in x86.emulates}
    assert {k: hashlib.sha256(v).hexdigest() for k, v in files.items() if k in want} == want
    assert set(files) == {*want, "bin/xarch-binfmt"}


def test_unchanged_inputs_skip_and_no_cache_rebuilds_the_same_image(
    built: list[BuildResult], cfg: Config, docker_client: docker.DockerClient
) -> None:
    start = time.monotonic()
    again = build_images(cfg, [INSTALLER_TARGET], engine=Engine(docker_client), log=quiet)
    print(f"installer build (unchanged): {time.monotonic() - start:.2f}s")
    assert [r.status for r in again] == ["up-to-date", "up-to-date"]
    assert [r.image_id for r in again] == [r.image_id for r in built]
    rebuilt = build_images(
        cfg, [INSTALLER_TARGET], no_cache=True, engine=Engine(docker_client), log=quiet
    )
    assert [r.status for r in rebuilt] == ["built", "built"]
    # A reproducible layer and config: the same inputs give the same image.
    assert [r.image_id for r in rebuilt] == [r.image_id for r in built]


def test_build_report_has_a_row_per_variant(built: list[BuildResult], build_dir: Path) -> None:
    report = json.loads((build_dir / "xarch-report.json").read_text())
    rows = {r["target"]: r for r in report["build"]["targets"]}
    assert set(rows) == {"binfmt-installer-x86_64", "binfmt-installer-aarch64"}
    assert rows["binfmt-installer-aarch64"]["platform"] == "linux/arm64/v8"
    assert all(r["image_id"] and r["inputs_hash"] for r in rows.values())


# ----------------------------------------------------------------------------- binfmt


def test_install_run_uninstall_on_the_real_kernel(
    refs: dict[str, str], docker_client: docker.DockerClient
) -> None:
    before = binfmt.snapshot()
    standin = Engine(docker_client).inspect(STANDIN_ARM64) is not None
    with handlers_removed(AARCH64):
        r = arm64_uname(refs["aarch64"])
        assert r.returncode != 0 and "exec format error" in out(r), out(r)

        r = installer(refs["x86_64"], "install", "aarch64")
        assert r.returncode == 0, out(r)
        assert "qemu-aarch64: registered (interpreter /usr/bin/qemu-aarch64-static, flags F)" in (
            r.stdout
        )
        entry = binfmt.read_entry("qemu-aarch64")
        assert (entry.enabled, entry.flags, entry.interpreter) == (
            True,
            "F",
            "/usr/bin/qemu-aarch64-static",
        )
        assert (entry.magic, entry.mask) == (AARCH64.magic, AARCH64.mask)
        assert "flags: F\n" in (binfmt.BINFMT_DIR / "qemu-aarch64").read_text()

        # The container that registered it is gone; the kernel kept the interpreter open.
        r = arm64_uname(refs["aarch64"])
        assert (r.returncode, r.stdout.strip()) == (0, "aarch64"), out(r)
        if standin:  # a dynamically linked arm64 image, through its own entrypoint
            r = docker_run(STANDIN_ARM64, "uname", "-m")
            assert (r.returncode, r.stdout.strip()) == (0, "aarch64"), out(r)

        r = installer(refs["x86_64"], "install", "arm64")  # an alias, the same entry
        assert r.returncode == 0, out(r)
        assert "qemu-aarch64: already registered" in r.stdout
        assert binfmt.read_entry("qemu-aarch64") == entry

        r = installer(refs["x86_64"], "list")
        assert r.returncode == 0, out(r)
        (row,) = [ln.split() for ln in r.stdout.splitlines() if ln.startswith("qemu-aarch64 ")]
        assert row == ["qemu-aarch64", "enabled", "F", "aarch64", "/usr/bin/qemu-aarch64-static"]

        r = installer(refs["x86_64"], "uninstall", "aarch64")
        assert r.returncode == 0, out(r)
        assert "qemu-aarch64: removed" in r.stdout
        assert "qemu-aarch64" not in binfmt.snapshot().names
        r = arm64_uname(refs["aarch64"])
        assert r.returncode != 0 and "exec format error" in out(r), out(r)

        r = installer(refs["x86_64"], "uninstall", "aarch64")
        assert (r.returncode, r.stdout.strip()) == (0, "qemu-aarch64: not registered")
    assert binfmt.snapshot() == before


def _host_emulator() -> str:
    """A qemu-aarch64-static on the host (the pinned one from the cache) for handlers
    registered from here; flag F opens it at registration."""
    offline = load_config(OFFLINE)
    return str(qemu.ensure_emulators(offline.qemu, [AARCH64], quiet)["aarch64"])


def test_a_different_handler_is_refused_unless_force(refs: dict[str, str]) -> None:
    emulator = _host_emulator()
    before = binfmt.snapshot()
    with handlers_removed(AARCH64):
        theirs = binfmt.register("qemu-aarch64", AARCH64, emulator, "F", log=quiet)
        r = installer(refs["x86_64"], "install", "aarch64")
        assert r.returncode == 2, out(r)
        assert "existing handler 'qemu-aarch64'" in r.stderr and emulator in r.stderr
        assert "nothing was changed" in r.stderr
        assert binfmt.read_entry("qemu-aarch64") == theirs

        r = installer(refs["x86_64"], "install", "--force", "--flags", "FP", "aarch64")
        assert r.returncode == 0, out(r)
        mine = binfmt.read_entry("qemu-aarch64")
        assert (mine.interpreter, mine.flags) == ("/usr/bin/qemu-aarch64-static", "PF")

        # Another name for the same magic competes too.
        other = binfmt.register("xarch-test-aarch64", AARCH64, emulator, "F", log=quiet)
        r = installer(refs["x86_64"], "install", "--flags", "PF", "aarch64")
        assert r.returncode == 2, out(r)
        assert "existing handler 'xarch-test-aarch64'" in r.stderr
        assert binfmt.read_entry("xarch-test-aarch64") == other
        assert binfmt.read_entry("qemu-aarch64") == mine
        r = installer(refs["x86_64"], "install", "--force", "aarch64")
        assert r.returncode == 0, out(r)
        assert "xarch-test-aarch64" not in binfmt.snapshot().names
        assert binfmt.read_entry("qemu-aarch64").flags == "F"
    assert binfmt.snapshot() == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["install", "aarch46"], "unknown architecture 'aarch46'"),
        (["install", "aarch64", "sparc"], "unknown architecture 'sparc'"),
        (["install", "x86_64"], "this host's own architecture"),
        (["install", "--flags", "P", "aarch64"], "bad flags 'P'"),
        (["install", "--flags", "FC", "aarch64"], "bad flags 'FC'"),
        (["install"], "name at least one architecture"),
        (["install", "--frce", "aarch64"], "unknown option '--frce'"),
        (["uninstall", "nope"], "unknown architecture 'nope'"),
        (["frobnicate"], "unknown command 'frobnicate'"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(
    refs: dict[str, str], args: list[str], message: str
) -> None:
    with binfmt.preserved(log=quiet):
        before = binfmt.snapshot()
        r = installer(refs["x86_64"], *args)
        assert r.returncode == 2, out(r)
        assert message in r.stderr
        assert binfmt.snapshot() == before


def test_the_wrong_variant_refuses_to_run_emulated(refs: dict[str, str]) -> None:
    """The arm64 variant forced onto this x86_64 host runs under the aarch64 handler;
    registering qemu-x86_64 here would send every native program to QEMU."""
    before = binfmt.snapshot()
    with binfmt.temporary_handler(AARCH64, _host_emulator(), "F", log=quiet):
        r = installer(refs["aarch64"], "install", "x86_64")
        assert r.returncode == 2, out(r)
        assert "runs emulated on a host of another architecture" in r.stderr
        assert "qemu-x86_64" not in binfmt.snapshot().names
    assert binfmt.snapshot() == before


def test_mounting_binfmt_misc_in_the_container_or_saying_how(refs: dict[str, str]) -> None:
    before = binfmt.snapshot()
    # Without the bind mount, CAP_SYS_ADMIN lets it mount the host's binfmt_misc.
    r = docker_run("--cap-add", "SYS_ADMIN", refs["x86_64"], "list")
    assert r.returncode == 0, out(r)
    assert "mounted binfmt_misc at /proc/sys/fs/binfmt_misc" in r.stdout
    lines = r.stdout.splitlines()
    rows = lines[[ln.split()[0] for ln in lines].index("NAME") + 1 :]
    assert {ln.split()[0] for ln in rows} == set(before.names)
    # With neither, it says what to do.
    r = installer(refs["x86_64"], "list", mount=False)
    assert r.returncode == 1, out(r)
    assert "-v /proc/sys/fs/binfmt_misc:/binfmt_misc" in r.stderr
    assert binfmt.snapshot() == before


# ------------------------------------------------------------------------------- push


@pytest.fixture(scope="module")
def pushed(built: list[BuildResult], cfg: Config, docker_client: docker.DockerClient) -> Any:
    return push_images(cfg, [INSTALLER_TARGET], engine=Engine(docker_client), log=quiet)


def test_push_writes_an_index_of_both_variants(
    pushed: PushOutcome, cfg: Config, registry_server: RegistryServer, build_dir: Path
) -> None:
    assert cfg.installer is not None
    reg = RegistryClient(registry_server.address)
    repo = cfg.registry.repository(cfg.installer.image)
    desc, doc = reg.get_manifest(repo, TAG)
    assert [ix.digest for ix in pushed.indexes] == [desc.digest]
    platforms = sorted(
        "/".join([p["os"], p["architecture"], *([p["variant"]] if "variant" in p else [])])
        for p in (m["platform"] for m in doc["manifests"])
    )
    assert platforms == ["linux/amd64", "linux/arm64/v8"]
    assert {m["digest"] for m in doc["manifests"]} == {im.digest for im in pushed.images}
    report = push_record(json.loads((build_dir / "xarch-report.json").read_text()), cfg)
    assert report is not None
    assert [i["target"] for i in report["images"]] == [
        "binfmt-installer-x86_64",
        "binfmt-installer-aarch64",
    ]
    assert report["indexes"][0]["ref"] == f"{registry_server.address}/{repo}:{TAG}"
    assert report["errors"] == []


def test_docker_pull_of_the_index_gives_each_variant(
    pushed: PushOutcome, cfg: Config, docker_client: docker.DockerClient
) -> None:
    assert cfg.installer is not None
    name = cfg.registry.image_name(cfg.installer.image)
    ref = f"{name}@{pushed.indexes[0].digest}"
    for platform, arch in (("linux/arm64", "arm64"), ("linux/amd64", "amd64")):
        r = subprocess.run(
            ["docker", "pull", "-q", "--platform", platform, ref],
            capture_output=True,
            text=True,
            check=False,
        )
        assert r.returncode == 0, r.stderr
        assert (Engine(docker_client).inspect(ref) or {}).get("Architecture") == arch
        docker_client.images.remove(ref)
