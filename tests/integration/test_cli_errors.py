"""The real CLI (`invoke ...` in the checkout) on bad input, without a Docker engine.

Every run points DOCKER_HOST at a socket that does not exist: a config error must be
reported as such (exit 2, file and key path on stderr) before any docker call, and a
valid config must get as far as the engine and fail there (exit 1) with advice.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
NO_DOCKER = "unix:///nonexistent/docker.sock"
TASKS = [
    "build-images",
    "push-images",
    "test-images",
    "registry-up",
    "registry-down",
    "registry-status",
    "report",
]
DIGEST = "sha256:" + "ab" * 32


def invoke(
    *args: str, tmp_path: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `invoke ARGS` in the checkout, with caches and reports under tmp_path."""
    full_env = {
        **os.environ,
        "DOCKER_HOST": NO_DOCKER,
        "XARCH_CACHE_DIR": str(tmp_path / "cache"),
        "XARCH_STATE_DIR": str(tmp_path / "state"),
        "XARCH_BUILD_DIR": str(tmp_path / "build"),
        **(env or {}),
    }
    full_env.pop("DOCKER_CONTEXT", None)
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=REPO_ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def offline_config() -> dict[str, object]:
    data = yaml.safe_load((REPO_ROOT / "config/offline.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def pinned_config() -> dict[str, object]:
    data = yaml.safe_load((REPO_ROOT / "config/images.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _target0(data: dict[str, object]) -> dict[str, object]:
    targets = data["targets"]
    assert isinstance(targets, list)
    t = targets[0]
    assert isinstance(t, dict)
    return t


def with_typo(data: dict[str, object]) -> dict[str, object]:
    t = _target0(data)
    t["tagz"] = t.pop("tags")
    return data


def unpinned(data: dict[str, object]) -> dict[str, object]:
    base = _target0(data)["base"]
    assert isinstance(base, dict)
    del base["digest"]
    return data


def bad_arch(data: dict[str, object]) -> dict[str, object]:
    _target0(data)["arch"] = "aarch46"
    return data


def digest_in_image(data: dict[str, object]) -> dict[str, object]:
    base = _target0(data)["base"]
    assert isinstance(base, dict)
    base["image"] = f"{base['image']}@{DIGEST}"
    return data


# (config text, key path, fragments of stderr)
BAD_CONFIGS = [
    pytest.param(
        yaml.safe_dump(with_typo(offline_config()), sort_keys=False),
        "targets[0].tagz",
        ["unknown key 'tagz'", "did you mean 'tags'?"],
        id="unknown-key",
    ),
    pytest.param(
        yaml.safe_dump(unpinned(pinned_config()), sort_keys=False),
        "targets[0].base.digest",
        ["not pinned by digest", "--allow-unpinned"],
        id="unpinned",
    ),
    pytest.param(
        yaml.safe_dump(digest_in_image(pinned_config()), sort_keys=False),
        "targets[0].base.image",
        ["contains a digest"],
        id="digest-in-image",
    ),
    pytest.param(
        yaml.safe_dump(bad_arch(offline_config()), sort_keys=False),
        "targets[0].arch",
        ["unknown architecture 'aarch46'", "Did you mean 'aarch64'?"],
        id="unknown-arch",
    ),
    pytest.param(
        "registry:\n  address: 127.0.0.1:5000\n  namespace: a: b\n",
        "",
        ["YAML syntax error", "line 3"],
        id="yaml-syntax",
    ),
]


@pytest.mark.parametrize(("text", "key", "fragments"), BAD_CONFIGS)
def test_build_images_bad_config(tmp_path: Path, text: str, key: str, fragments: list[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    r = invoke("build-images", "--config", str(path), tmp_path=tmp_path)
    assert r.returncode == 2, r.stderr
    assert f"error: {path}: {key}" in r.stderr
    for fragment in fragments:
        assert fragment in r.stderr
    assert "Docker daemon" not in r.stderr + r.stdout
    assert not (tmp_path / "cache").exists()  # no emulator was fetched either


def test_build_images_missing_config(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    r = invoke("build-images", "--config", str(path), tmp_path=tmp_path)
    assert r.returncode == 2
    assert f"error: {path}: file not found" in r.stderr
    assert "Docker daemon" not in r.stderr


def test_build_images_unknown_target(tmp_path: Path) -> None:
    r = invoke(
        "build-images", "--config", "config/offline.yaml", "--target", "nosuch", tmp_path=tmp_path
    )
    assert r.returncode == 2
    assert "config/offline.yaml" in r.stderr
    assert "no target named 'nosuch'" in r.stderr
    assert "standin-manylinux2014_aarch64" in r.stderr
    assert "Docker daemon" not in r.stderr


def test_build_images_unpinned_allowed_reaches_the_engine(tmp_path: Path) -> None:
    """The control: with --allow-unpinned the same config passes, and DOCKER_HOST
    really keeps the run from any engine."""
    path = tmp_path / "unpinned.yaml"
    path.write_text(yaml.safe_dump(unpinned(pinned_config())), encoding="utf-8")
    r = invoke("build-images", "--config", str(path), "--allow-unpinned", tmp_path=tmp_path)
    assert r.returncode == 1
    assert "the Docker daemon does not answer" in r.stderr


@pytest.mark.parametrize("config", ["config/offline.yaml", "config/images.yaml"])
def test_push_images_without_engine(tmp_path: Path, config: str) -> None:
    r = invoke("push-images", "--config", config, tmp_path=tmp_path)
    assert r.returncode == 1
    assert "error: the Docker daemon does not answer" in r.stderr
    assert "systemctl start docker" in r.stderr
    assert "DOCKER_HOST" in r.stderr


def test_list_shows_every_task_with_help(tmp_path: Path) -> None:
    r = invoke("--list", tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = {line.split(maxsplit=1)[0]: line for line in r.stdout.splitlines() if line.strip()}
    for name in TASKS:
        assert name in lines, f"{name} not listed:\n{r.stdout}"
        help_text = lines[name].split(maxsplit=1)[1:]
        assert help_text and help_text[0].strip(), f"{name} has no help text"


@pytest.mark.parametrize(
    ("task", "options"),
    [
        ("build-images", ["--config", "--target", "--no-cache", "--allow-unpinned"]),
        ("push-images", ["--config", "--target"]),
        ("test-images", ["--config", "--target", "--junit", "--binfmt-mode"]),
        ("registry-up", ["--port", "--state-dir", "--htpasswd"]),
        ("registry-down", ["--state-dir", "--purge"]),
        ("registry-status", ["--state-dir", "--json"]),
        ("report", ["--json", "--path"]),
    ],
)
def test_task_help(tmp_path: Path, task: str, options: list[str]) -> None:
    r = invoke(task, "--help", tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"Usage: inv[oke] [--core-opts] {task}" in r.stdout
    assert "Docstring:" in r.stdout
    for option in options:
        assert option in r.stdout
    assert "TODO" not in r.stdout
