"""Accelerated helper images end to end (issue 10): `build-images` of the aarch64
stand-in of config/offline-native.yaml relocates the native x86_64 leaves into it and
proves it with the probe corpus; `push-images` publishes it; `test-images` repeats the
probe and builds a C and a C++ extension both ways; cibuildwheel, unchanged, builds,
repairs and tests the C++ and the C sample in it; doctor says the leaves work here.

Real parts only: the CLI as a user runs it (the `xarch` console script of this venv),
the engine, the embedded registry, binfmt_misc as the host has it (the aarch64 handler
must be registered, as the quick start leaves it; nothing here changes it) and
cibuildwheel from PyPI. The ppc64le accelerated stand-in is not built here: its probe
alone takes minutes more under emulation (docs/native-compilers.md has its run).

    pytest tests/e2e/test_native_wheels.py -v
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO_ROOT, Pushed, copy_project, need_handler
from tests.e2e.test_real_projects import build_real
from tests.e2e.test_wheels import PASSED, extension_arch
from xarch.model.config import Config, load_config
from xarch.model.naming import L_BASE_DIGEST
from xarch.model.report import read_report
from xarch.publish.pull import pushed_refs
from xarch.wheels import projects
from xarch.wheels.identity import compare_wheels
from xarch.wheels.run import build_wheels

PROJECT_LIST = REPO_ROOT / "config" / "projects" / "pypi.yaml"

pytestmark = [pytest.mark.docker, pytest.mark.registry, pytest.mark.emulation]

CONFIG = REPO_ROOT / "config" / "offline-native.yaml"
TARGET = "standin-manylinux2014_aarch64"
XARCH = Path(sys.executable).with_name("xarch")


@dataclass(frozen=True)
class Accelerated:
    config: Config
    report: Path
    build_dir: Path
    image: str  # the pushed image by digest


def xarch(*args: str, build_dir: Path, timeout: int = 2400) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, XARCH_BUILD_DIR=str(build_dir))
    return subprocess.run(
        [str(XARCH), *args], capture_output=True, text=True, env=env, timeout=timeout
    )


@pytest.fixture(scope="module")
def accelerated(
    handlers: set[str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Accelerated]:
    """The accelerated aarch64 stand-in, built (with its probe) and pushed once."""
    need_handler(handlers, "aarch64")
    build_dir = tmp_path_factory.mktemp("native-build")
    cfg = ("--config", str(CONFIG), "--target", TARGET)
    for step in ("build-images", "push-images"):
        done = xarch(step, *cfg, build_dir=build_dir)
        assert done.returncode == 0, f"xarch {step}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    report = build_dir / "xarch-report.json"
    data = read_report(report)
    [build] = [b for b in data["build"]["targets"] if b["target"] == TARGET]
    assert build["native"]["toolchain"] == "debian-bullseye-gcc10-aarch64"
    assert build["native"]["probe"].startswith("passed (")  # built now or proven before
    config = load_config(CONFIG)
    image = pushed_refs(data, config, config.select([TARGET]), report)[TARGET].ref
    yield Accelerated(config=config, report=report, build_dir=build_dir, image=image)


def test_the_build_proved_the_image_and_labelled_it(accelerated: Accelerated) -> None:
    from xarch.oci.engine import Engine

    labels = Engine.connect().labels(accelerated.image) or {}
    assert labels["org.xarch.native.probe"].startswith("passed (")
    assert labels["org.xarch.native.gcc"] == "10.2.1"
    assert labels["org.xarch.native.leaves"] == "cc1,cc1plus,as,ld"  # ld by default
    # every file shipped from the pinned packages is recorded with its sha256
    files = labels["org.xarch.native.files"].split(",")
    assert any(f.startswith("lib/gcc-cross/aarch64-linux-gnu/10/cc1@sha256:") for f in files)


def test_test_images_repeats_the_probe_and_builds_extensions_both_ways(
    accelerated: Accelerated,
) -> None:
    done = xarch(
        "test-images", "--config", str(CONFIG), "--target", TARGET,
        build_dir=accelerated.build_dir,
    )  # fmt: skip
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    for test in (
        "test_the_probe_passes_again_on_this_host",
        "test_an_extension_built_with_native_leaves_matches_the_emulated_build",
    ):
        assert test in out and "PASSED" in out, test


def test_doctor_says_the_native_leaves_work_here(accelerated: Accelerated) -> None:
    done = xarch(
        "doctor", "--config", str(CONFIG), "--json", build_dir=accelerated.build_dir, timeout=600
    )
    report = json.loads(done.stdout)
    [verdict] = [v for v in report["targets"] if v["target"] == TARGET]
    assert verdict["native_ok"] is True, verdict["native"]
    assert "on this host: working" in verdict["native"]


@pytest.mark.parametrize("project", ["cppext"])
def test_cibuildwheel_builds_repairs_and_tests_in_the_accelerated_image(
    project: str,
    accelerated: Accelerated,
    ca_bundle: str | None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("XARCH_BUILD_DIR", str(tmp_path / "build"))
    out = tmp_path / "wheelhouse"
    outcome = build_wheels(
        accelerated.config,
        [TARGET],
        project=copy_project(project, tmp_path),
        output=out,
        report=accelerated.report,
        ca_bundle=ca_bundle,
    )
    [wheel] = sorted(out.glob("*.whl"))
    platform = wheel.name.rsplit("-", 1)[1].removesuffix(".whl")
    assert "manylinux" in platform and platform.endswith("aarch64")  # repaired
    assert extension_arch(wheel) == "aarch64"
    [run] = outcome.results
    assert PASSED[project] in Path(run.log).read_text()  # its tests passed in the image
    section = read_report(accelerated.report)["wheels"]
    assert section["runs"][0]["images"] == {"CIBW_MANYLINUX_AARCH64_IMAGE": accelerated.image}


def test_a_real_projects_wheel_is_the_same_file_built_plain_or_accelerated(
    accelerated: Accelerated,
    pushed: Pushed,
    ca_bundle: str | None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """bitarray 3.12.3 (C, from PyPI, unchanged) built by cibuildwheel in the plain
    aarch64 stand-in (emulated gcc, as, ld and uv) and in the accelerated one from the
    same base (native cc1, as and uv): with SOURCE_DATE_EPOCH fixed, the repaired wheels
    are the same file, every member and every ELF section (.comment included)."""
    from xarch.oci.engine import Engine

    [plain_target] = [t for t in pushed.targets if t.name == TARGET]
    plain_image = pushed.refs[TARGET].ref
    engine = Engine.connect()
    base = L_BASE_DIGEST
    assert (engine.labels(plain_image) or {})[base] == (engine.labels(accelerated.image) or {})[
        base
    ], "the two images are not built from the same base"
    [project] = projects.select(projects.load_projects(PROJECT_LIST), ["bitarray"])
    monkeypatch.setenv("CIBW_BUILD", "cp39-manylinux*")
    monkeypatch.setenv("CIBW_TEST_SKIP", "*")  # the wheel is the point; tests run above
    monkeypatch.setenv("CIBW_ENVIRONMENT", "SOURCE_DATE_EPOCH=1700000000")
    # Which uv cibuildwheel met: the native one says x86_64 (the wheel is unaffected).
    monkeypatch.setenv("CIBW_BEFORE_BUILD", "uv --version")
    wheels: dict[str, Path] = {}
    for side, config, report in (
        ("plain", pushed.config, pushed.report),
        ("accelerated", accelerated.config, accelerated.report),
    ):
        monkeypatch.setenv("XARCH_BUILD_DIR", str(tmp_path / f"build-{side}"))
        copy = tmp_path / f"report-{side}.json"
        copy.write_text(report.read_text())
        outcome = build_wheels(
            config,
            [TARGET],
            project=projects.checkout(project, tmp_path / f"src-{side}"),
            output=tmp_path / side,
            report=copy,
            ca_bundle=ca_bundle,
        )
        [wheels[side]] = sorted((tmp_path / side).glob("*.whl"))
        log = Path(outcome.results[0].log).read_text()
        assert "--installer=uv" in log  # xarch's frontend, the same on both sides
        uv_arch = "x86_64" if side == "accelerated" else "aarch64"
        assert f"{uv_arch}-unknown-linux-musl" in log, side
    assert wheels["plain"].name == wheels["accelerated"].name
    assert wheels["plain"].name.endswith("manylinux_2_31_aarch64.whl")
    assert compare_wheels(wheels["plain"], wheels["accelerated"]) is None
    assert plain_target.arch.name == "aarch64"


def test_an_abi3_project_is_audited_on_the_host_with_xarchs_frontend(
    accelerated: Accelerated,
    ca_bundle: str | None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """psutil 7.2.2 (C, from PyPI, unchanged, as its [tool.cibuildwheel] says) makes one
    cp36-abi3 wheel. cibuildwheel audits it on the host after the repair (abi3audit) and,
    with the build[uv] frontend xarch picks, makes the audit's environment with a uv of
    the host: before xarch put one beside cibuildwheel, the run stopped there at
    `assert uv_path is not None`, wheel built and repaired. Then the import test its
    overrides give cp39, and the wheel tied to its build by cibuildwheel's summary."""
    done = build_real(
        "psutil",
        accelerated.config,
        [TARGET],
        accelerated.report,
        ca_bundle=ca_bundle,
        tmp_path=tmp_path,
        monkeypatch=monkeypatch,
    )
    said, out, outcome = done.said, done.out, done.outcome
    text = (done.src / "pyproject.toml").read_text()
    assert "build-frontend" not in text and "test-command" in text  # unchanged, as shipped
    assert any("frontend: build[uv] (the project names none" in s for s in said), said
    [wheel] = sorted(out.glob("*.whl"))
    assert wheel.name.startswith("psutil-7.2.2-cp36-abi3-manylinux"), wheel.name
    assert extension_arch(wheel) == "aarch64"
    log = Path(outcome.results[0].log).read_text()
    assert "/bin/uv venv " in log and "audit_venv" in log  # uv made the audit's environment
    assert '"is_abi3": true' in log and '"non_abi3_symbols": []' in log  # abi3audit's report
    assert "\n7.2.2\n" in log  # the override's test: import psutil, print its version
    [built] = outcome.results[0].wheels
    assert built.files == [wheel.name]
    assert set(built.steps) >= {"build", "repair", "audit", "test"}


def test_a_toolchain_of_another_gcc_version_is_refused_before_anything_is_built(
    handlers: set[str], tmp_path: Path
) -> None:
    """The pins say gcc 10.2.0, the stand-in has 10.2.1: exit 2 naming both, and the
    image (if one was built before) is not touched."""
    from xarch.oci.engine import Engine

    need_handler(handlers, "aarch64")
    text = CONFIG.read_text()
    assert text.count('gcc: "10.2.1"') == 1
    bad = tmp_path / "mismatch.yaml"
    bad.write_text(text.replace('gcc: "10.2.1"', 'gcc: "10.2.0"'))
    engine = Engine.connect()
    ref = "127.0.0.1:5000/xarch-native/standin-manylinux2014_aarch64:native-aarch64"
    before = (engine.inspect(ref) or {}).get("Id")
    done = xarch("build-images", "--config", str(bad), "--target", TARGET, build_dir=tmp_path)
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    assert "the base's gcc is 10.2.1" in done.stderr
    assert "is gcc 10.2.0" in done.stderr
    assert "Traceback" not in done.stderr
    assert (engine.inspect(ref) or {}).get("Id") == before
