"""The core pipeline end to end on real parts: a Docker engine, an embedded
registry, real binfmt_misc entries.

The real manylinux2014_aarch64 cannot be pulled here, so the session builds a
STAND-IN base (Debian arm64/ppc64el arranged like manylinux2014), pushes it to the
test registry and pins it by digest: from there on the helper-image code path is
the one a real pinned base takes.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import docker
import pytest

from xarch.errors import ChecksumMismatch, ImageNotFound, RegistryError
from xarch.host import binfmt
from xarch.images.build import build_images
from xarch.images.verify import run_suite
from xarch.model.config import Config, PinnedBase, load_config
from xarch.model.naming import (
    L_BASE_DIGEST,
    L_BASE_REF,
    L_INPUTS,
    L_QEMU_SHA,
    L_QEMU_VERSION,
    L_REVISION,
    helper_ref,
)
from xarch.model.report import push_record, read_report
from xarch.oci.engine import Engine
from xarch.oci.registry import RegistryClient
from xarch.oci.registry_server import RegistryServer
from xarch.publish.push import push_images

from .conftest import (
    TAG,
    AuthRegistry,
    free_port,
    quiet,
    remove_images_of,
    write_config,
)

pytestmark = [pytest.mark.docker, pytest.mark.registry]


# ----------------------------------------------------------------------------- build


def test_build_gives_each_target_its_own_platform(
    built: list[Any], pinned_config: Config, client: docker.DockerClient
) -> None:
    assert [r.status for r in built] == ["built", "built"]
    for t in pinned_config.targets:
        attrs = Engine(client).inspect(helper_ref(pinned_config, t, TAG))
        assert attrs is not None
        assert (attrs["Os"], attrs["Architecture"]) == ("linux", t.arch.docker_arch)
        assert (attrs.get("Variant") or "") == t.arch.docker_variant


def test_build_labels_record_base_qemu_and_inputs(
    built: list[Any],
    pinned_config: Config,
    standin_bases: dict[str, PinnedBase],
    client: docker.DockerClient,
) -> None:
    for t in pinned_config.targets:
        labels = Engine(client).labels(helper_ref(pinned_config, t, TAG)) or {}
        base = standin_bases[t.arch.name]
        assert labels[L_BASE_DIGEST] == base.digest
        assert labels[L_BASE_REF] == f"{base.image}@{base.digest}"
        assert labels[L_QEMU_SHA] == pinned_config.qemu.sha256_for(t.arch)
        assert labels[L_QEMU_VERSION] == pinned_config.qemu.version
        assert labels[L_INPUTS].startswith("sha256:")
        assert labels[L_REVISION]


def _current_ids(config: Config, client: docker.DockerClient) -> list[str]:
    """The image id each target's helper tag points at now, read from the engine.

    Tests compare with these, read right before they act, never with the ids of the
    session's first build (`built`): other tests rebuild (no cache, changed inputs)
    and would make such a comparison depend on the order the tests run in.
    """
    ids = []
    for t in config.targets:
        attrs = Engine(client).inspect(helper_ref(config, t, TAG))
        assert attrs is not None, f"{t.name}: no helper image"
        ids.append(str(attrs["Id"]))
    return ids


def test_build_report_lists_every_target(
    built: list[Any], pinned_config: Config, client: docker.DockerClient, isolated_build_dir: Path
) -> None:
    # Every build rewrites the report: read the one this build writes.
    results = build_images(pinned_config, engine=Engine(client), log=quiet)
    report = json.loads((isolated_build_dir / "xarch-report.json").read_text())
    rows = {r["target"]: r for r in report["build"]["targets"]}
    assert set(rows) == {"standin-aarch64", "standin-ppc64le"}
    assert {t: (r["status"], r["image_id"]) for t, r in rows.items()} == {
        r.target: (r.status, r.image_id) for r in results
    }
    assert all(r["image_id"] for r in rows.values())


def test_unchanged_rebuild_is_skipped(
    built: list[Any], pinned_config: Config, client: docker.DockerClient
) -> None:
    before = _current_ids(pinned_config, client)
    again = build_images(pinned_config, engine=Engine(client), log=quiet)
    assert [r.status for r in again] == ["up-to-date", "up-to-date"]
    assert [r.image_id for r in again] == before
    assert _current_ids(pinned_config, client) == before


def test_no_cache_rebuilds_everything(
    built: list[Any], pinned_config: Config, client: docker.DockerClient
) -> None:
    before = _current_ids(pinned_config, client)
    again = build_images(pinned_config, no_cache=True, engine=Engine(client), log=quiet)
    assert [r.status for r in again] == ["built", "built"]
    # New images (each records its own creation time), and the tags now point at them.
    after = _current_ids(pinned_config, client)
    assert [r.image_id for r in again] == after
    assert all(a != b for a, b in zip(after, before, strict=True))


def test_changed_input_rebuilds_only_that_target(
    built: list[Any],
    pinned_config: Config,
    standin_bases: dict[str, PinnedBase],
    offline: Config,
    registry_server: RegistryServer,
    client: docker.DockerClient,
    tmp_path: Path,
) -> None:
    changed = load_config(
        write_config(
            tmp_path / "changed.yaml",
            registry_server.address,
            standin_bases,
            offline,
            arches=("aarch64",),
            labels={"org.example.note": "changed"},
        )
    )
    try:
        result = build_images(changed, engine=Engine(client), log=quiet)
        assert [r.status for r in result] == ["built"]
        untouched = build_images(
            pinned_config, ["standin-ppc64le"], engine=Engine(client), log=quiet
        )
        assert [r.status for r in untouched] == ["up-to-date"]
    finally:
        build_images(pinned_config, ["standin-aarch64"], engine=Engine(client), log=quiet)


def test_checksum_mismatch_builds_nothing(
    standin_bases: dict[str, PinnedBase],
    offline: Config,
    registry_server: RegistryServer,
    client: docker.DockerClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("XARCH_CACHE_DIR", str(tmp_path / "cache"))  # force a fresh fetch
    bad = load_config(
        write_config(
            tmp_path / "bad.yaml",
            registry_server.address,
            standin_bases,
            offline,
            family="checksum-test",
            arches=("aarch64",),
            sha256={"qemu-aarch64-static": "0" * 64},
        )
    )
    with pytest.raises(ChecksumMismatch, match="0000000000000000"):
        build_images(bad, engine=Engine(client), log=quiet)
    assert Engine(client).inspect(helper_ref(bad, bad.targets[0], TAG)) is None
    assert not list((tmp_path / "cache").rglob("qemu-aarch64-static"))


def test_unpullable_base_fails_clearly(
    offline: Config, registry_server: RegistryServer, client: docker.DockerClient, tmp_path: Path
) -> None:
    missing = PinnedBase(
        image=f"{registry_server.address}/test/not-there", tag="x", digest="sha256:" + "1" * 64
    )
    cfg = load_config(
        write_config(
            tmp_path / "missing.yaml",
            registry_server.address,
            {"aarch64": missing},
            offline,
            family="missing-base",
            arches=("aarch64",),
        )
    )
    with pytest.raises(ImageNotFound, match="cannot pull the base image") as err:
        build_images(cfg, engine=Engine(client), log=quiet)
    assert err.value.exit_code == 1
    report = read_report()
    assert [r["status"] for r in report["build"]["targets"]] == ["failed"]


# ------------------------------------------------------------------------------ push


@pytest.fixture
def pushed(built: list[Any], pinned_config: Config, client: docker.DockerClient) -> Any:
    """A push of the current helper images, per test: other tests rebuild the images and
    rewrite the report, so an outcome kept for the session would depend on test order.
    Pushing what the registry already holds only writes the manifests again."""
    return push_images(pinned_config, engine=Engine(client), log=quiet)


def test_push_writes_one_index_listing_every_platform(
    pushed: Any, pinned_config: Config, registry_server: RegistryServer
) -> None:
    reg = RegistryClient(registry_server.address)
    repo = pinned_config.registry.repository("standin-manylinux2014")
    desc, doc = reg.get_manifest(repo, TAG)
    assert [ix.digest for ix in pushed.indexes] == [desc.digest]
    listed = {m["digest"]: m["platform"] for m in doc["manifests"]}
    assert {im.digest for im in pushed.images} == set(listed)
    platforms = sorted(
        "/".join([p["os"], p["architecture"], *([p["variant"]] if "variant" in p else [])])
        for p in listed.values()
    )
    assert platforms == ["linux/arm64/v8", "linux/ppc64le"]


def test_push_records_digests_in_report(
    pushed: Any, pinned_config: Config, isolated_build_dir: Path
) -> None:
    report = push_record(read_report(isolated_build_dir / "xarch-report.json"), pinned_config)
    assert report is not None
    # The config's record: this push's refs with their digests (a record keeps what other
    # pushes with the same registry and namespace recorded under other refs).
    recorded = {i["ref"]: i["digest"] for i in report["images"] + report["indexes"]}
    assert {i.ref: i.digest for i in [*pushed.images, *pushed.indexes]}.items() <= recorded.items()
    assert report["errors"] == []


def test_index_serves_each_platform_to_docker_pull(
    pushed: Any, pinned_config: Config, client: docker.DockerClient
) -> None:
    name = pinned_config.registry.image_name("standin-manylinux2014")
    ref = f"{name}@{pushed.indexes[0].digest}"
    for platform, arch in (("linux/ppc64le", "ppc64le"), ("linux/arm64", "arm64")):
        r = subprocess.run(
            ["docker", "pull", "-q", "--platform", platform, ref],
            capture_output=True,
            text=True,
            check=False,
        )
        assert r.returncode == 0, r.stderr
        assert (Engine(client).inspect(ref) or {}).get("Architecture") == arch
        client.images.remove(ref)


def test_push_refuses_index_when_a_member_was_never_pushed(
    standin_bases: dict[str, PinnedBase],
    offline: Config,
    registry_server: RegistryServer,
    client: docker.DockerClient,
    tmp_path: Path,
) -> None:
    cfg = load_config(
        write_config(
            tmp_path / "partial.yaml",
            registry_server.address,
            standin_bases,
            offline,
            namespace="partial",
        )
    )
    build_images(cfg, engine=Engine(client), log=quiet)
    with pytest.raises(RegistryError, match="never been pushed"):
        push_images(cfg, ["standin-aarch64"], engine=Engine(client), log=quiet)
    reg = RegistryClient(registry_server.address)
    repo = cfg.registry.repository("standin-manylinux2014")
    assert reg.head_manifest(repo, f"{TAG}-aarch64") is not None
    assert reg.head_manifest(repo, TAG) is None


def test_push_to_unreachable_registry_fails_without_writing(
    standin_bases: dict[str, PinnedBase],
    offline: Config,
    client: docker.DockerClient,
    tmp_path: Path,
) -> None:
    address = f"127.0.0.1:{free_port()}"
    cfg = load_config(write_config(tmp_path / "down.yaml", address, standin_bases, offline))
    build_images(cfg, engine=Engine(client), log=quiet)
    try:
        with pytest.raises(RegistryError, match="registry-up") as err:
            push_images(cfg, engine=Engine(client), log=quiet)
        assert err.value.exit_code == 1
    finally:
        remove_images_of(client, address)


def test_push_with_login_uses_docker_credentials_and_never_prints_them(
    standin_bases: dict[str, PinnedBase],
    offline: Config,
    auth_registry_server: AuthRegistry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    auth = auth_registry_server
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    cfg = load_config(write_config(tmp_path / "auth.yaml", auth.address, standin_bases, offline))
    client = Engine.connect().client  # reads DOCKER_CONFIG now
    lines: list[str] = []
    try:
        build_images(cfg, engine=Engine(client), log=lines.append)
        with pytest.raises(RegistryError, match="docker login") as err:
            push_images(cfg, engine=Engine(client), log=lines.append)
        assert auth.password not in str(err.value)
        login = subprocess.run(
            ["docker", "login", "-u", auth.user, "--password-stdin", auth.address],
            input=auth.password,
            capture_output=True,
            text=True,
            check=False,
        )
        assert login.returncode == 0, login.stderr
        client = Engine.connect().client
        outcome = push_images(cfg, engine=Engine(client), log=lines.append)
        assert len(outcome.indexes) == 1
        assert auth.password not in "\n".join(lines)
        assert (
            auth.password
            not in Path(os.environ["XARCH_BUILD_DIR"], "xarch-report.json").read_text()
        )
    finally:
        remove_images_of(client, auth.address)


# ------------------------------------------------------------------------ test-images


def test_image_suite_passes_with_and_without_flag_f(
    built: list[Any], pinned_config: Config, tmp_path: Path
) -> None:
    if os.geteuid() != 0 or not binfmt.is_available():
        pytest.skip("needs root and binfmt_misc")
    before = binfmt.snapshot()
    runs = run_suite(
        pinned_config, pinned_config.targets, mode="both", junit=tmp_path / "j.xml", log=quiet
    )
    assert [r.mode for r in runs] == ["F", "no-F"]
    assert all(r.returncode == 0 for r in runs)
    for r in runs:
        junit = r.junit.read_text()
        assert 'failures="0"' in junit and 'errors="0"' in junit
    assert binfmt.snapshot() == before
