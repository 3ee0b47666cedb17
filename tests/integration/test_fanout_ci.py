"""The CI fan-out on the real engine and registry: push-arch per target (as separate
jobs would), push-index from the digest files, and ci-config from the resulting
report, whose every pinned reference resolves in the registry."""

from __future__ import annotations

import json
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
import yaml

from xarch.ci.workflows import IMAGE_REF_RE, plan_ci, render
from xarch.errors import BadInput, RegistryError
from xarch.images.build import build_images
from xarch.model.config import Config, PinnedBase, load_config
from xarch.model.report import push_record, read_report
from xarch.oci.engine import Engine
from xarch.oci.registry import RegistryClient, build_index
from xarch.oci.registry_server import RegistryServer
from xarch.publish.fanout import push_arch, push_index, read_digests
from xarch.publish.push import push_images

from .conftest import TAG, quiet, write_config
from .test_registry import ARM64, docker_push, load_image, remove_image

pytestmark = [pytest.mark.docker, pytest.mark.registry]

AMD64 = {"os": "linux", "architecture": "amd64"}


def config_in(
    tmp_path: Path,
    namespace: str,
    address: str,
    bases: dict[str, PinnedBase],
    offline: Config,
    *,
    installer: bool = False,
) -> Config:
    path = write_config(
        tmp_path / f"{namespace}.yaml", address, bases, offline, namespace=namespace
    )
    if installer:
        doc = yaml.safe_load(path.read_text())
        doc["installer"] = {
            "image": "binfmt",
            "tags": ["qemu-7.2"],
            "busybox": {
                "package": "busybox-static",
                "version": "1:1.35.0-4+deb12u1+b1",
                "sha256": {"x86_64": "5" * 64},
            },
            "hosts": {"x86_64": {"emulates": ["aarch64", "ppc64le"]}},
        }
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return load_config(path)


@pytest.fixture(scope="module")
def fanout_config(
    tmp_path_factory: pytest.TempPathFactory,
    registry_server: RegistryServer,
    standin_bases: dict[str, PinnedBase],
    offline: Config,
    client: docker.DockerClient,
) -> Config:
    """The stand-in helper images under a namespace of their own, built (from cache)."""
    tmp = tmp_path_factory.mktemp("fanout")
    cfg = config_in(tmp, "fanout", registry_server.address, standin_bases, offline, installer=True)
    names = [t.name for t in cfg.targets]  # the helper images only, not the installer
    build_images(cfg, names, engine=Engine(client), report=tmp / "build-report.json", log=quiet)
    return cfg


def test_fanout_index_equals_the_one_machine_push(
    fanout_config: Config, client: docker.DockerClient, tmp_path: Path
) -> None:
    digests = tmp_path / "artifacts"
    # One "job" per target, each with its own artifact directory, as CI downloads them.
    for t in fanout_config.targets:
        push_arch(
            fanout_config, [t.name], digests / f"digests-{t.name}", engine=Engine(client), log=quiet
        )
    assert sorted(p.name for p in digests.rglob("*.json")) == [
        "standin-aarch64.json",
        "standin-ppc64le.json",
    ]
    records = read_digests(fanout_config, digests)
    outcome = push_index(fanout_config, digests, report=tmp_path / "r.json", log=quiet)
    [index] = outcome.indexes
    assert index.ref.endswith(f"/fanout/standin-manylinux2014:{TAG}")
    assert [m["digest"] for m in index.manifests] == [
        records[t.name].images[0]["digest"] for t in fanout_config.targets
    ]
    # The same images pushed the one-machine way give the very same index.
    names = [t.name for t in fanout_config.targets]
    one = push_images(
        fanout_config, names, engine=Engine(client), report=tmp_path / "one.json", log=quiet
    )
    assert [ix.digest for ix in one.indexes] == [index.digest]
    reg = RegistryClient(fanout_config.registry.address)
    entries = [
        reg.manifest_descriptor("fanout/standin-manylinux2014", m["digest"])
        for m in index.manifests
    ]
    assert build_index(entries)[1] == index.digest
    report = push_record(read_report(tmp_path / "r.json"), fanout_config)
    assert report is not None
    assert [im["digest"] for im in report["images"]] == [m["digest"] for m in index.manifests]
    assert report["indexes"][0]["digest"] == index.digest and report["errors"] == []


def test_missing_digest_file_writes_no_index(
    standin_bases: dict[str, PinnedBase],
    offline: Config,
    registry_server: RegistryServer,
    client: docker.DockerClient,
    tmp_path: Path,
) -> None:
    cfg = config_in(tmp_path, "fanout-missing", registry_server.address, standin_bases, offline)
    build_images(cfg, engine=Engine(client), report=tmp_path / "b.json", log=quiet)
    push_arch(cfg, ["standin-aarch64"], tmp_path / "d", engine=Engine(client), log=quiet)
    with pytest.raises(RegistryError, match="no digest file for standin-ppc64le"):
        push_index(cfg, tmp_path / "d", report=tmp_path / "r.json", log=quiet)
    reg = RegistryClient(registry_server.address)
    assert reg.head_manifest("fanout-missing/standin-manylinux2014", TAG) is None
    assert reg.head_manifest("fanout-missing/standin-manylinux2014", f"{TAG}-aarch64")


def test_digest_files_of_another_config_are_refused(fanout_config: Config, tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    doc = {
        "schema": "xarch-digest/1",
        "target": "standin-aarch64",
        "family": "standin-manylinux2014",
        "arch": "aarch64",
        "registry": "elsewhere.example.org",
        "repository": "x",
        "images": [],
    }
    (d / "standin-aarch64.json").write_text(json.dumps(doc))
    with pytest.raises(BadInput, match=r"pushed to 'elsewhere\.example\.org'"):
        read_digests(fanout_config, d)


@pytest.fixture
def installer_index(fanout_config: Config, client: docker.DockerClient) -> Iterator[dict[str, Any]]:
    """A stand-in for the binfmt installer's push: two tiny variants (amd64, arm64) and
    their index in the registry, described the way push-images reports the installer."""
    address = fanout_config.registry.address
    reg = RegistryClient(address)
    refs = []
    entries = []
    for tag, platform in (("qemu-7.2-x86_64", AMD64), ("qemu-7.2-aarch64", ARM64)):
        ref = f"{address}/fanout/binfmt:{tag}"
        load_image(client, ref, platform, secrets.token_bytes(8))
        refs.append(ref)
        entries.append(reg.manifest_descriptor("fanout/binfmt", docker_push(client, ref)))
    idx = reg.push_index("fanout/binfmt", "qemu-7.2", entries)
    yield {
        "family": "binfmt",
        "ref": f"{address}/fanout/binfmt:qemu-7.2",
        "digest": idx.digest,
        "media_type": idx.media_type,
        "manifests": [{"digest": e.digest, "platform": e.platform_string} for e in entries],
    }
    for ref in refs:
        remove_image(client, ref)


def test_ci_config_pins_what_the_registry_holds(
    fanout_config: Config,
    client: docker.DockerClient,
    installer_index: dict[str, Any],
    tmp_path: Path,
) -> None:
    push_arch(
        fanout_config,
        [t.name for t in fanout_config.targets],
        tmp_path / "d",
        engine=Engine(client),
        log=quiet,
    )
    report_file = tmp_path / "r.json"
    push_index(fanout_config, tmp_path / "d", report=report_file, log=quiet)
    report = read_report(report_file)
    record = push_record(report, fanout_config)
    assert record is not None
    record["indexes"].append(installer_index)
    plan = plan_ci(fanout_config, report, report_file=report_file)
    reg = RegistryClient(fanout_config.registry.address)
    for provider in ("github", "gitlab"):
        text = "".join(render(plan, provider, report_file).values())
        pinned = {(m.group(1), m.group(3)[1:]) for m in IMAGE_REF_RE.finditer(text)}
        assert len(pinned) == 3  # the installer index and two per-arch images
        for name, digest in pinned:
            repo = name.split("/", 1)[1]
            assert reg.head_manifest(repo, digest) is not None, f"{name}@{digest}"
        for w in plan.wheel_images:
            platform = reg.image_platform("fanout/standin-manylinux2014", w.image.digest)
            assert "/".join(platform.values()) == w.arch.platform
    assert shutil.which("docker")
