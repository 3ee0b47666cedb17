"""`invoke pin` against the embedded registry: a tag that moves, a multi-arch tag,
and the faults (tag missing, registry unreachable, wrong platform) that must leave
the config byte-identical."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker.errors
import pytest

from xarch.errors import RegistryError
from xarch.model.config import load_config
from xarch.oci.registry import RegistryClient
from xarch.oci.registry_server import RegistryServer
from xarch.publish.pin import pin

from .conftest import REPO_ROOT, free_port, quiet
from .test_registry import ARM64, PPC64LE, docker_push, load_image

pytestmark = [pytest.mark.docker, pytest.mark.registry]

SHA = "1" * 64


def config_text(address: str, repo: str, tag: str, digest: str, arch: str = "aarch64") -> str:
    """A hand-written config with comments, quoting and an unusual key order."""
    return f"""\
# Pinned base, kept current by `invoke pin`.
registry:
  address: {address}   # the test registry
  namespace: pin-test

qemu:
  version: 7.2+dfsg-7+deb12u18+b3
  source:
    apt: {{package: qemu-user-static, version: "1:7.2+dfsg-7+deb12u18+b3"}}
  sha256:
    qemu-aarch64-static: {SHA}
    qemu-ppc64le-static: {SHA}

targets:
  # The one target.
  - name: moving-{arch}
    arch: {arch}
    base:
      tag: {tag}                    # follows upstream
      image: {address}/{repo}
      digest: "{digest}"  # was: the first push
    family: pin-test
    tags: [t1]
"""


@pytest.fixture
def images(client: Any) -> Iterator[list[str]]:
    """Ids of the local test images, removed afterwards with every reference to them
    (an image whose tag moved to a newer one keeps its name@digest reference)."""
    ids: list[str] = []
    yield ids
    for image_id in ids:
        with contextlib.suppress(docker.errors.APIError):
            client.images.remove(image_id, force=True)


def push_image(client: Any, ids: list[str], ref: str, platform: dict[str, str]) -> str:
    ids.append(load_image(client, ref, platform, secrets.token_bytes(16)))  # a new image
    return docker_push(client, ref)


def run_pin(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "invoke", "pin", "--config", str(config), "--skip-qemu", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ},
    )


def test_moved_tag_is_reported_by_check_then_rewritten_by_pin(
    client: Any, registry_server: RegistryServer, images: list[str], tmp_path: Path
) -> None:
    address = registry_server.address
    ref = f"{address}/pin-test/base:moving"
    digest_a = push_image(client, images, ref, ARM64)
    path = tmp_path / "pinned.yaml"
    path.write_text(config_text(address, "pin-test/base", "moving", digest_a))
    original = path.read_bytes()

    digest_b = push_image(client, images, ref, ARM64)  # the tag moves
    assert digest_b != digest_a

    check = run_pin(path, "--check")
    assert check.returncode == 1, check.stdout + check.stderr
    assert "targets[0].base.digest (moving-aarch64)" in check.stdout
    assert f"{digest_a} -> {digest_b}" in check.stdout
    assert path.read_bytes() == original

    done = run_pin(path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"targets[0].base.digest (moving-aarch64) {digest_a} -> {digest_b}" in done.stdout
    # Only the digest changed: comments, quotes, key order, blank lines are the same bytes.
    assert path.read_bytes() == original.replace(digest_a.encode(), digest_b.encode())
    assert b'digest: "' + digest_b.encode() + b'"  # was: the first push' in path.read_bytes()
    assert load_config(path).targets[0].base.digest == digest_b  # type: ignore[union-attr]

    again = run_pin(path, "--check")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "every pin is current" in again.stdout


def test_multi_arch_tag_pins_each_targets_per_arch_manifest(
    client: Any, registry_server: RegistryServer, images: list[str], tmp_path: Path
) -> None:
    address = registry_server.address
    reg = RegistryClient(address)
    arm = push_image(client, images, f"{address}/pin-test/multi:arm64", ARM64)
    ppc = push_image(client, images, f"{address}/pin-test/multi:ppc64le", PPC64LE)
    entries = [
        reg.manifest_descriptor("pin-test/multi", arm),
        reg.manifest_descriptor("pin-test/multi", ppc),
    ]
    index = reg.push_index("pin-test/multi", "both", entries)
    for arch, expected in (("aarch64", arm), ("ppc64le", ppc)):
        path = tmp_path / f"{arch}.yaml"
        path.write_text(config_text(address, "pin-test/multi", "both", "sha256:" + "0" * 64, arch))
        outcome = pin(load_config(path), skip_qemu=True, log=quiet)
        assert outcome.changed
        assert [b.via_index for b in outcome.bases] == [index.digest]
        assert load_config(path).targets[0].base.digest == expected  # type: ignore[union-attr]


def test_missing_tag_fails_clearly_and_leaves_the_config_alone(
    client: Any, registry_server: RegistryServer, images: list[str], tmp_path: Path
) -> None:
    address = registry_server.address
    digest = push_image(client, images, f"{address}/pin-test/base:present", ARM64)
    path = tmp_path / "c.yaml"
    path.write_text(config_text(address, "pin-test/base", "not-there", digest))
    original = path.read_bytes()
    r = run_pin(path)
    assert r.returncode == 1
    assert "pin-test/base:not-there not found" in r.stderr
    assert "nothing was changed" in r.stderr
    assert path.read_bytes() == original


def test_unreachable_registry_fails_clearly_and_leaves_the_config_alone(tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    path = tmp_path / "c.yaml"
    path.write_text(config_text(address, "pin-test/base", "moving", "sha256:" + "0" * 64))
    original = path.read_bytes()
    with pytest.raises(RegistryError, match="cannot reach the registry") as err:
        pin(load_config(path), skip_qemu=True, log=quiet)
    assert "registry-up" in str(err.value)  # a loopback registry: the embedded one's hint
    assert path.read_bytes() == original
    r = run_pin(path, "--check")
    assert r.returncode == 1 and "nothing was changed" in r.stderr


def test_tag_of_another_architecture_is_refused(
    client: Any, registry_server: RegistryServer, images: list[str], tmp_path: Path
) -> None:
    address = registry_server.address
    push_image(client, images, f"{address}/pin-test/base:arm-only", ARM64)
    path = tmp_path / "c.yaml"
    path.write_text(
        config_text(address, "pin-test/base", "arm-only", "sha256:" + "0" * 64, "ppc64le")
    )
    original = path.read_bytes()
    with pytest.raises(RegistryError, match=r"is a linux/arm64/v8 image, but the target is"):
        pin(load_config(path), skip_qemu=True, log=quiet)
    assert path.read_bytes() == original


def test_qemu_pin_is_compared_with_apts_candidate(tmp_path: Path) -> None:
    """The real `apt-cache policy` on this Debian host: an old pin is reported as
    stale by --check, with what to change, and the file is not touched."""
    import shutil

    if shutil.which("apt-cache") is None:
        pytest.skip("needs apt-cache")
    probe = subprocess.run(
        ["apt-cache", "policy", "qemu-user-static"], capture_output=True, text=True, check=False
    )
    if "Candidate: (none)" in probe.stdout or "Candidate:" not in probe.stdout:
        pytest.skip("apt knows no qemu-user-static candidate here (apt-get update?)")
    path = tmp_path / "old-qemu.yaml"
    text = (
        config_text("127.0.0.1:5000", "pin-test/base", "t", "sha256:" + "0" * 64)
        .replace('version: "1:7.2+dfsg-7+deb12u18+b3"', 'version: "1:5.2+dfsg-11"')
        .replace("targets:\n  # The one target.\n  - name: moving-aarch64", "targets:\n  - name: x")
    )
    # No upstream tag to resolve: only the QEMU pin is compared.
    text = text.replace("      tag: t                    # follows upstream\n", "")
    path.write_text(text)
    original = path.read_bytes()
    r = subprocess.run(
        [sys.executable, "-m", "invoke", "pin", "--config", str(path), "--check"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert r.returncode == 1, r.stdout + r.stderr
    assert "qemu.source.apt.version: 1:5.2+dfsg-11 -> 1:" in r.stdout
    assert "qemu.version: " in r.stdout and "sha256" in r.stdout
    assert path.read_bytes() == original
