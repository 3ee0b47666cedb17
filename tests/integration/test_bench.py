"""`invoke bench` on real parts: a minimal run end to end (one image, one small
workload, one repetition) and the CLI on bad input."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from xarch.bench.bench import bench
from xarch.bench.workloads import GCC, Plan
from xarch.host import binfmt
from xarch.model.config import Config

from .conftest import REPO_ROOT, quiet
from .test_cli_errors import invoke

MINIMAL = Plan(
    name="minimal",
    reps=1,
    config_reps=0,
    workloads=(GCC,),
    config_workloads=(),
    c_functions=10,
    cxx_classes=1,
    python_iterations=1000,
    toolkit=False,
    sizes=True,
    timeout=120,
)


@pytest.mark.docker
@pytest.mark.binfmt
@pytest.mark.emulation
def test_minimal_bench_measures_both_sides(
    built: list[Any], pinned_config: Config, tmp_path: Path
) -> None:
    if os.geteuid() != 0 or not binfmt.is_available():
        pytest.skip("needs root and binfmt_misc")
    before = binfmt.snapshot()
    target = next(t for t in pinned_config.targets if t.arch.name == "aarch64")

    bench(pinned_config, [target.name], plan=MINIMAL, output=tmp_path, log=quiet)

    doc = json.loads((tmp_path / "bench.json").read_text())
    kinds = {s["kind"]: s for s in doc["series"] if s["workload"] == GCC}
    assert set(kinds) == {"emulated", "native"}
    assert len(kinds["emulated"]["samples"]) == 1 and kinds["emulated"]["failures"] == []
    assert len(kinds["native"]["samples"]) == 1
    (row,) = doc["overhead"]
    assert row["target"] == target.name
    assert row["ratio"]["median"] > 1
    assert doc["emulators"][0]["sha256"] == pinned_config.qemu.sha256_for(target.arch)
    assert doc["images"][0]["probes"]["pin/default"].startswith("AT_PLATFORM=aarch64")
    assert doc["sizes"][0]["added"] > 0
    assert (tmp_path / "bench-emulation.png").read_bytes().startswith(b"\x89PNG")
    assert binfmt.snapshot() == before


# ---------------------------------------------------------------------------- bad input


def _assert_one_error_on_stderr(r: subprocess.CompletedProcess[str], message: str) -> None:
    """The error goes to stderr, once, as the first line and without a traceback;
    stdout carries no part of it (it holds results only, and there are none)."""
    assert r.stderr.startswith("error: "), r.stderr
    assert message in r.stderr.splitlines()[0], r.stderr
    assert r.stderr.count("error: ") == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert r.stdout == ""


def test_unknown_target_is_bad_input(tmp_path: Path) -> None:
    r = invoke("bench", "--config", "config/offline.yaml", "--target", "nope", tmp_path=tmp_path)
    assert r.returncode == 2
    _assert_one_error_on_stderr(r, "no target named 'nope'")


def test_no_docker_daemon(tmp_path: Path) -> None:
    r = invoke("bench", "--config", "config/offline.yaml", "--quick", tmp_path=tmp_path)
    assert r.returncode == 1
    _assert_one_error_on_stderr(r, "the Docker daemon does not answer")
    # The advice comes with it, and names the knob that points at another engine.
    assert "fix: systemctl start docker" in r.stderr
    assert "DOCKER_HOST" in r.stderr
    # Nothing was measured, so no result was written (the default output is build/bench,
    # under XARCH_BUILD_DIR, which invoke() points into tmp_path).
    assert not (tmp_path / "build" / "bench" / "bench.json").exists()


@pytest.mark.docker
def test_no_helper_image_built_yet(tmp_path: Path, client: Any) -> None:
    doc = yaml.safe_load((REPO_ROOT / "config" / "offline.yaml").read_text())
    doc["registry"]["namespace"] = "xarch-never-built"
    path = tmp_path / "unbuilt.yaml"
    path.write_text(yaml.safe_dump(doc))
    r = invoke(
        "bench",
        "--config",
        str(path),
        tmp_path=tmp_path,
        env={"DOCKER_HOST": os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")},
    )
    assert r.returncode == 1
    assert "no helper image built yet" in r.stderr
    assert f"invoke build-images --config {path}" in r.stderr


def test_bench_help_lists_its_options(tmp_path: Path) -> None:
    r = invoke("bench", "--help", tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr
    for option in ("--config", "--target", "--quick", "--output"):
        assert option in r.stdout
