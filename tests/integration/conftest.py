"""Fixtures for the integration tests."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
import yaml

from xarch.errors import XarchError
from xarch.host import binfmt, qemu
from xarch.images.build import build_images
from xarch.images.standin import StandinSpec, ensure_standin_base
from xarch.model.arch import Arch
from xarch.model.config import BootstrapBase, Config, PinnedBase, RegistrySettings, load_config
from xarch.oci import registry_server as rs
from xarch.oci.engine import Engine
from xarch.oci.registry_server import RegistryServer

REPO_ROOT = Path(__file__).resolve().parents[2]
OFFLINE = REPO_ROOT / "config" / "offline.yaml"
#: ppc64le, s390x (bookworm) and riscv64 (trixie): stand-ins with CPython 3.9 built from
#: source (docs/standins.md).
OFFLINE_EMULATED = REPO_ROOT / "config" / "offline-emulated.yaml"
TAG = "t1"
SESSION_START = time.time()


@pytest.fixture
def host_binfmt_restored() -> Iterator[None]:
    """For tests that change binfmt_misc: skip without root and binfmt_misc; afterwards
    put back what the test found, even when it failed, and check that it is."""
    if os.geteuid() != 0 or not binfmt.is_available():
        pytest.skip("needs root and binfmt_misc")
    before = binfmt.snapshot()
    with binfmt.preserved(log=quiet):
        yield
    assert binfmt.snapshot() == before


@contextlib.contextmanager
def handlers_removed(*arches: Arch) -> Iterator[None]:
    """The host as a fresh one would be for these architectures: every entry that catches
    them is unregistered (not just disabled: a disabled entry still holds its name, and
    binfmt-install rightly refuses a different handler there), whatever registered it
    (xarch's provision-runner, Debian's binfmt-support, a test); binfmt_misc is restored on
    leaving, even when the block fails. An entry whose details the kernel hides cannot be
    re-created, so it is only disabled."""
    with binfmt.preserved(log=quiet) as state:
        for e in state.entries:
            if not any(e.matches(a) for a in arches):
                continue
            if e.details_known:
                binfmt.unregister(e.name, log=quiet)
            elif e.enabled:
                binfmt.set_enabled(e.name, False, log=quiet)
        yield


# ---------------------------------------------------------------------------------------
# Embedded registry fixtures (xarch.registry_server): a real docker-registry process on
# a free 127.0.0.1 port with its state in a temporary directory, stopped and purged at
# the end of the session even when tests fail.
# ---------------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _need_registry_binary() -> None:
    if shutil.which(rs.BINARY) is None:
        pytest.skip("docker-registry is not installed (apt-get install docker-registry)")


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class AuthRegistry:
    """An embedded registry that demands htpasswd (basic) auth."""

    server: RegistryServer
    user: str
    password: str

    @property
    def address(self) -> str:
        return self.server.address


@pytest.fixture(scope="session")
def registry_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """An embedded registry without auth, for the whole session."""
    _need_registry_binary()
    state = tmp_path_factory.mktemp("registry-state")
    server = rs.start(state, port=free_port(), log=_quiet)
    try:
        yield server
    finally:
        rs.stop(state, log=_quiet, purge=True)


@pytest.fixture(scope="session")
def auth_registry_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthRegistry]:
    """An embedded registry with htpasswd auth and a generated user and password."""
    _need_registry_binary()
    if shutil.which("htpasswd") is None:
        pytest.skip("htpasswd is not installed (apt-get install apache2-utils)")
    state = tmp_path_factory.mktemp("auth-registry-state")
    user = f"xarch-{secrets.token_hex(3)}"
    password = secrets.token_urlsafe(18)
    htpasswd = rs.make_htpasswd(state / "htpasswd", user, password)
    server = rs.start(state, port=free_port(), htpasswd=htpasswd, log=_quiet)
    try:
        yield AuthRegistry(server=server, user=user, password=password)
    finally:
        rs.stop(state, log=_quiet, purge=True)


# ------------------------------ end of registry fixtures -------------------------------


# ---------------------------------------------------------------------------------------
# Pipeline fixtures: a Docker engine, the offline profile's STAND-IN bases pushed to the
# test registry and pinned by digest, and helper images built from them. Test images are
# removed at the end of the session (tags under the test registries, and the untagged
# images the session's builds left behind).
# ---------------------------------------------------------------------------------------


def quiet(_: str) -> None:
    pass


@pytest.fixture(scope="session")
def client() -> docker.DockerClient:
    try:
        return Engine.connect().client
    except XarchError as e:
        pytest.skip(f"no Docker engine: {e}")


@pytest.fixture(scope="session", autouse=True)
def isolated_build_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Reports go to a temporary build/ so the tests never touch the user's."""
    d = tmp_path_factory.mktemp("build")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XARCH_BUILD_DIR", str(d))
        yield d


@pytest.fixture(scope="session")
def offline() -> Config:
    return load_config(OFFLINE)


@pytest.fixture(scope="session")
def standin_bases(
    client: docker.DockerClient, registry_server: RegistryServer, offline: Config
) -> Iterator[dict[str, PinnedBase]]:
    """The offline profiles' stand-in bases, pushed to the test registry, by digest (a
    mapping by architecture name: those the tests use at once, any other when asked).

    Uses the cached root filesystems (the quick start makes aarch64's and armv7l's, the
    emulated-architecture tests ppc64le's, s390x's and riscv64's); bootstraps one that is
    missing, which takes a few minutes.
    """
    reg = RegistrySettings(address=registry_server.address, namespace="test", insecure=None)
    configs = [offline, load_config(OFFLINE_EMULATED)]
    bases = _LazyBases(client, reg, configs)
    # The ones the tests use, now: a test that points XARCH_CACHE_DIR elsewhere must
    # not be the first to ask (it would bootstrap into its own empty cache).
    for arch in ("aarch64", "armv7l", "ppc64le"):
        bases[arch]
    yield bases
    remove_images_of(client, registry_server.address)


class _LazyBases(dict[str, PinnedBase]):
    def __init__(
        self, client: docker.DockerClient, reg: RegistrySettings, configs: list[Config]
    ) -> None:
        super().__init__()
        self._client, self._reg = client, reg
        self._targets = {t.arch.name: (c, t) for c in reversed(configs) for t in c.targets}

    def __missing__(self, arch: str) -> PinnedBase:
        config, t = self._targets[arch]
        assert isinstance(t.base, BootstrapBase)
        emulators = qemu.ensure_emulators(config.qemu, [t.arch], quiet)
        spec = StandinSpec(base=t.base, arch=t.arch)
        base = ensure_standin_base(
            Engine(self._client), self._reg, spec, emulators[t.arch.name], quiet
        )
        self[arch] = base
        return base


def remove_images_of(client: docker.DockerClient, address: str) -> None:
    """Untag/remove every local image that refers to a test registry, then the
    untagged helper images this session's builds left behind."""
    for img in client.images.list():
        # Tags, and the name@digest references a pull or push leaves behind.
        refs = [*img.tags, *(img.attrs.get("RepoDigests") or [])]
        for ref in refs:
            if ref.startswith(address + "/"):
                with contextlib.suppress(docker.errors.APIError):
                    client.images.remove(ref, noprune=False)
    dangling = client.images.list(filters={"dangling": True, "label": "io.xarch.inputs-hash"})
    for img in dangling:
        created = img.attrs.get("Created", "")
        if _created_after(created, SESSION_START):
            with contextlib.suppress(docker.errors.APIError):
                client.images.remove(img.id, noprune=False)


def _created_after(created: str, since: float) -> bool:
    from datetime import datetime

    try:
        ts = datetime.fromisoformat(created.split(".")[0].rstrip("Z") + "+00:00").timestamp()
    except ValueError:
        return False
    return ts >= since - 1


def write_config(
    path: Path,
    address: str,
    bases: dict[str, PinnedBase],
    offline: Config,
    *,
    namespace: str = "xarch-test",
    family: str = "standin-manylinux2014",
    arches: tuple[str, ...] = ("aarch64", "ppc64le"),
    sha256: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
) -> Path:
    """A config that pins the stand-ins by digest, exactly like config/images.yaml
    pins quay.io/pypa/manylinux2014_aarch64."""
    doc: dict[str, Any] = {
        "registry": {"address": address, "namespace": namespace},
        "qemu": {
            "version": offline.qemu.version,
            "source": {
                "apt": {
                    "package": offline.qemu.source.package,
                    "version": offline.qemu.source.version,
                }
            },
            "sha256": dict(offline.qemu.sha256)
            | dict(load_config(OFFLINE_EMULATED).qemu.sha256)
            | (sha256 or {}),
        },
        "targets": [
            {
                "name": f"standin-{arch}",
                "arch": arch,
                "base": {
                    "image": bases[arch].image,
                    "tag": bases[arch].tag,
                    "digest": bases[arch].digest,
                },
                "family": family,
                "tags": [TAG],
                "labels": labels or {},
            }
            for arch in arches
        ],
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def pinned_config(
    tmp_path_factory: pytest.TempPathFactory,
    registry_server: RegistryServer,
    standin_bases: dict[str, PinnedBase],
    offline: Config,
) -> Config:
    path = tmp_path_factory.mktemp("cfg") / "pinned.yaml"
    write_config(path, registry_server.address, standin_bases, offline)
    return load_config(path)


@pytest.fixture(scope="session")
def built(pinned_config: Config, client: docker.DockerClient) -> list[Any]:
    return build_images(pinned_config, no_cache=True, engine=Engine(client), log=quiet)
