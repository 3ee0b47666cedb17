"""Stand-in facts that need no engine: the host's mirror, the suite facts, the pins."""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from xarch.errors import BadInput, BuildError, RegistryError
from xarch.images import standin
from xarch.images.standin import StandinSpec, bootstrap, host_debian_mirror, publish, wheels
from xarch.model.arch import Arch, get_arch
from xarch.model.config import BootstrapBase, RegistrySettings
from xarch.oci.registry import RegistryClient

DEB822 = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
"""


def _host(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        f = tmp_path / "etc/apt" / name
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
    return tmp_path


def test_mirror_from_deb822_sources(tmp_path: Path) -> None:
    root = _host(tmp_path, {"sources.list.d/debian.sources": DEB822})
    assert host_debian_mirror(root) == "http://deb.debian.org/debian"


def test_mirror_skips_security_third_party_and_disabled(tmp_path: Path) -> None:
    root = _host(
        tmp_path,
        {
            "sources.list.d/a-node.sources": (
                "Types: deb\nURIs: https://deb.nodesource.com/node_20.x\nSuites: nodistro\n"
            ),
            "sources.list.d/b-off.sources": (
                "Enabled: no\nTypes: deb\nURIs: http://off.example/debian\nSuites: bookworm\n"
            ),
            "sources.list.d/c-debian.sources": DEB822.replace(
                "deb.debian.org", "ftp.de.debian.org"
            ),
            "sources.list.d/google.list.disabled": "deb http://x.example/debian bookworm main\n",
        },
    )
    assert host_debian_mirror(root) == "http://ftp.de.debian.org/debian"


def test_mirror_from_one_line_sources_list(tmp_path: Path) -> None:
    root = _host(
        tmp_path,
        {
            "sources.list": (
                "# comment\ndeb-src http://src.example/debian bookworm main\n"
                "deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian/ bookworm main\n"
            )
        },
    )
    assert host_debian_mirror(root) == "http://mirror.example/debian"


def test_no_debian_source_names_the_key_to_set(tmp_path: Path) -> None:
    root = _host(
        tmp_path, {"sources.list.d/node.sources": "Types: deb\nURIs: https://n.example/x\n"}
    )
    with pytest.raises(BadInput, match=r"base\.bootstrap\.mirror"):
        host_debian_mirror(root)


def _spec(
    suite: str, arch: str = "aarch64", mirror: str = "http://m.example/debian"
) -> StandinSpec:
    base = BootstrapBase(
        suite=suite, layout="manylinux-standin", packages=(), mirror=mirror, image="bases/s"
    )
    return StandinSpec(base=base, arch=get_arch(arch))


def test_bullseye_standin_is_cp39_with_an_honest_policy() -> None:
    spec = _spec("bullseye")
    assert spec.python_tag == "cp39"
    assert "python3.9-dev" in spec.packages
    assert "AUDITWHEEL_POLICY=manylinux_2_31" in spec.env()
    assert "AUDITWHEEL_PLAT=manylinux_2_31_aarch64" in spec.env()
    assert spec.labels()["io.xarch.standin"] == "true"
    assert "STAND-IN" in spec.labels()["org.opencontainers.image.description"]


def test_unknown_suite_is_bad_input() -> None:
    with pytest.raises(BadInput, match="buster"):
        _spec("buster").key()


def test_key_covers_mirror_and_pins() -> None:
    assert _spec("bullseye").key() != _spec("bullseye", mirror="http://o.example/debian").key()
    names = {f.name for f in _spec("bullseye").layout_files()}
    assert set(standin.REQUIREMENTS) <= names


@pytest.mark.parametrize("req", standin.REQUIREMENTS)
def test_every_wheel_is_pinned_by_version_and_sha256(req: str) -> None:
    spec = _spec("bullseye")
    path = next(f for f in spec.requirement_files() if f.name == req)
    lines = wheels._requirement_lines(path)
    assert lines
    for line in lines:
        assert re.match(r"^[A-Za-z0-9_.-]+==[0-9][^ ]* ", line), line
        assert re.search(r"--hash=sha256:[0-9a-f]{64}", line), line


REGISTRY = RegistrySettings(address="127.0.0.1:1", namespace="t", insecure=None)


def _record(tmp_path: Path, spec: StandinSpec) -> None:
    rec = publish._record_path(REGISTRY, spec)
    rec.parent.mkdir(parents=True, exist_ok=True)
    rec.write_text('{"image": "i", "tag": "t", "digest": "sha256:' + "0" * 64 + '"}')


def test_a_refusing_registry_is_an_error_not_a_bootstrap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only "not found" means bootstrap again (issue 11): an authentication error stops."""
    monkeypatch.setenv("XARCH_CACHE_DIR", str(tmp_path))
    spec = _spec("bullseye")
    _record(tmp_path, spec)

    def refuse(self: object, repo: str, ref: str) -> None:
        raise RegistryError("127.0.0.1:1 answered 401 Unauthorized")

    monkeypatch.setattr(RegistryClient, "head_manifest", refuse)
    with pytest.raises(RegistryError, match="401"):
        publish.cached_base(REGISTRY, spec)


def test_a_missing_manifest_means_bootstrap_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XARCH_CACHE_DIR", str(tmp_path))
    spec = _spec("bullseye")
    _record(tmp_path, spec)
    monkeypatch.setattr(RegistryClient, "head_manifest", lambda self, repo, ref: None)
    assert publish.cached_base(REGISTRY, spec) is None


def test_a_corrupt_record_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XARCH_CACHE_DIR", str(tmp_path))
    spec = _spec("bullseye")
    rec = publish._record_path(REGISTRY, spec)
    rec.parent.mkdir(parents=True)
    rec.write_text("{not json")
    with pytest.raises(BuildError, match=re.escape(str(rec))):
        publish.cached_base(REGISTRY, spec)


def test_bootstraps_run_in_parallel_with_prefixed_logs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both bootstraps must be running at once: each waits for the other at a barrier,
    which a one-after-the-other run would never pass."""
    monkeypatch.setenv("XARCH_CACHE_DIR", str(tmp_path))
    barrier = threading.Barrier(2, timeout=10)
    done: list[str] = []

    def fake_bootstrap(
        spec: StandinSpec, emulator: Path, log: standin.Log, *, shell: Path | None
    ) -> Path:
        assert len(events) == 2  # both handlers registered before any worker runs
        log("  started")
        barrier.wait()
        done.append(spec.arch.name)
        return spec.rootfs_path

    events: list[str] = []

    @contextlib.contextmanager
    def emulation(arch: Arch, emulator: Path, log: standin.Log) -> Iterator[None]:
        events.append(f"register {arch.name} {emulator}")
        yield
        events.append(f"restore {arch.name}")

    monkeypatch.setattr(publish, "bootstrap_rootfs", fake_bootstrap)
    monkeypatch.setattr(publish, "cached_base", lambda registry, spec: None)
    monkeypatch.setattr(publish, "_emulation", emulation)
    lines: list[str] = []
    specs = [_spec("bullseye", "aarch64"), _spec("bookworm", "ppc64le")]
    emulators = {"aarch64": Path("/e/a"), "ppc64le": Path("/e/p")}
    publish.prepare_standins(REGISTRY, specs, emulators, lines.append)
    assert sorted(done) == ["aarch64", "ppc64le"]
    assert "[aarch64] started" in lines and "[ppc64le] started" in lines
    # Every handler is made sure of before the workers start and restored after the
    # last one finished (in reverse order): a worker's own restore would have pulled the
    # other bootstraps' handlers from under them.
    assert events == [
        "register aarch64 /e/a",
        "register ppc64le /e/p",
        "restore ppc64le",
        "restore aarch64",
    ]


def test_a_cached_rootfs_is_not_bootstrapped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XARCH_CACHE_DIR", str(tmp_path))
    spec = _spec("bullseye")
    spec.rootfs_path.parent.mkdir(parents=True)
    spec.rootfs_path.write_bytes(b"tar")

    def fail(*args: object) -> Path:
        raise AssertionError("bootstrapped a cached rootfs")

    monkeypatch.setattr(publish, "bootstrap_rootfs", fail)
    publish.prepare_standins(REGISTRY, [spec], {"aarch64": Path("/e")}, print)


def test_stale_work_directories_of_dead_runs_are_removed(tmp_path: Path) -> None:
    dead = tmp_path / ".work-999999999-arm64-x"
    alive = tmp_path / f".work-{os.getpid()}-arm64-y"
    for d in (dead, alive):
        d.mkdir()
        (d / "rootfs.tar").write_bytes(b"partial")
    bootstrap._remove_stale_temporaries(tmp_path)
    assert not dead.exists()
    assert alive.exists()


def test_with_an_engine_each_worker_pushes_its_base_and_cached_roots_skip_bootstrap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A root filesystem cached but not in the registry is loaded and pushed without a
    bootstrap (and without a handler); a missing one is bootstrapped, then pushed by the
    same worker."""
    monkeypatch.setenv("XARCH_CACHE_DIR", str(tmp_path))
    cached, fresh = _spec("bullseye", "aarch64"), _spec("bookworm", "ppc64le")
    cached.rootfs_path.parent.mkdir(parents=True)
    cached.rootfs_path.write_bytes(b"tar")
    events: list[str] = []

    def bootstrap(spec: StandinSpec, emulator: Path, log: standin.Log, *, shell: object) -> Path:
        if not spec.rootfs_path.is_file():
            events.append(f"bootstrap {spec.arch.name}")
        return spec.rootfs_path

    @contextlib.contextmanager
    def emulation(arch: Arch, emulator: Path, log: standin.Log) -> Iterator[None]:
        events.append(f"register {arch.name}")
        yield

    def push(
        engine: object, registry: object, spec: StandinSpec, rootfs: Path, log: object
    ) -> None:
        events.append(f"push {spec.arch.name} via {engine}")

    monkeypatch.setattr(publish, "bootstrap_rootfs", bootstrap)
    monkeypatch.setattr(publish, "cached_base", lambda registry, spec: None)
    monkeypatch.setattr(publish, "_emulation", emulation)
    monkeypatch.setattr(publish, "publish_standin", push)
    publish.prepare_standins(
        REGISTRY,
        [cached, fresh],
        {"aarch64": Path("/e/a"), "ppc64le": Path("/e/p")},
        lambda _: None,
        engine=lambda: "engine",  # type: ignore[arg-type,return-value]
    )
    assert events[0] == "register ppc64le"  # only the one that bootstraps
    assert sorted(events[1:]) == [
        "bootstrap ppc64le",
        "push aarch64 via engine",
        "push ppc64le via engine",
    ]
    assert events.index("bootstrap ppc64le") < events.index("push ppc64le via engine")


def test_a_push_record_belongs_to_its_namespace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """config/offline.yaml must not take the base config/offline-native.yaml pushed under
    its own namespace (same address, image path and key)."""
    monkeypatch.setenv("XARCH_CACHE_DIR", str(tmp_path))
    spec = _spec("bullseye")
    other = RegistrySettings(address=REGISTRY.address, namespace="other", insecure=None)
    assert publish._record_path(REGISTRY, spec) != publish._record_path(other, spec)
    assert "/other/" in str(publish._record_path(other, spec))
