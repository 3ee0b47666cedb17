"""Helper images with a native uv (issue 16): the base's uv is hooked, the native one
answers by default and the image's own with XARCH_NATIVE_TOOLS=0, uv never downloads a
Python of its own architecture, and the uv probe passes again on this host. Skipped for
an image without org.xarch.uv.* labels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import docker
import pytest

from xarch.images import native_uv
from xarch.images.suite.plugin import ImageUnderTest
from xarch.model.paths import cache_dir
from xarch.oci.engine import Engine

L_VERSION = f"{native_uv.LABEL_PREFIX}.version"


@pytest.fixture
def native(image: ImageUnderTest) -> dict[str, str]:
    if L_VERSION not in image.labels:
        pytest.skip(f"{image.ref} carries no native uv")
    return image.labels


def test_the_uv_probe_passed_at_build_time(native: dict[str, str]) -> None:
    assert native[f"{native_uv.LABEL_PREFIX}.probe"].startswith("passed")


def test_uv_is_native_by_default_and_the_images_own_on_request(
    guest: Any, image: ImageUnderTest, native: dict[str, str]
) -> None:
    version = native[L_VERSION]
    default = guest.check_output("uv --version")
    own = guest.check_output("XARCH_NATIVE_TOOLS=0 uv --version")
    assert default.startswith(f"uv {version} ") and "x86_64" in default, default
    assert own.startswith(f"uv {version} ") and "x86_64" not in own, own
    real = guest.check_output('readlink -f "$(command -v uv)"')
    assert guest.file(real + ".xarch-emulated").exists
    assert guest.file(f"{native_uv.NATIVE_PREFIX}/hooks{real}.conf").exists


def test_uv_never_downloads_a_python(image: ImageUnderTest, native: dict[str, str]) -> None:
    env = dict(e.split("=", 1) for e in (image.attrs.get("Config") or {}).get("Env") or [])
    assert env.get("UV_PYTHON_DOWNLOADS") == "never"


def test_the_uv_probe_passes_again_on_this_host(
    image: ImageUnderTest,
    native: dict[str, str],
    docker_client: docker.DockerClient,
    tmp_path: Path,
) -> None:
    if image.binfmt_mode == "no-F":
        pytest.skip("the probe ran in this test-images run's F pass")
    setuptools = native_uv.probe_setuptools(cache_dir() / "pypi", log=lambda _: None)
    result = native_uv.run_uv_probe(
        Engine(docker_client), image.ref, image.target.arch, tmp_path / "uv-probe",
        setuptools, log=lambda _: None,
    )  # fmt: skip
    native_uv.require_passed(result, image.ref)  # names the first difference
    assert result.passed and result.taken
