"""The bench's wheel row: the sample it builds is the e2e sample byte for byte, the
row's ratios and rendering (two sides, or three for an image with native leaves), the
XARCH_NATIVE_TOOLS=0 its emulated-leaves run passes into the build container, and
which plans run it."""

from __future__ import annotations

from pathlib import Path

from xarch.bench.sample_cext import CEXT_FILES
from xarch.bench.wheels import WheelRow, emulated_leaves_environ, render_wheels, write_project
from xarch.bench.workloads import FULL, QUICK
from xarch.model.arch import get_arch
from xarch.wheels.run import WheelRun, run_env

REPO_ROOT = Path(__file__).resolve().parents[2]
CEXT = REPO_ROOT / "tests/e2e/projects/cext"


def project_files(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): p.read_text()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_the_bench_sample_is_the_e2e_sample() -> None:
    assert project_files(CEXT) == CEXT_FILES


def test_write_project_writes_every_file(tmp_path: Path) -> None:
    write_project(tmp_path / "p")
    assert project_files(tmp_path / "p") == CEXT_FILES


def row(**kw: object) -> WheelRow:
    base: dict[str, object] = {
        "target": "standin_aarch64",
        "arch": "aarch64",
        "image": "r/x@sha256:" + "0" * 64,
        "emulated": 120.0,
        "wheel": "x.whl",
        "native": 8.0,
        "native_python": "3.11.7 (/usr/bin/python3)",
    }
    return WheelRow(**(base | kw))  # type: ignore[arg-type]


def test_ratio_is_emulated_over_native() -> None:
    assert row().ratio == 15.0
    assert row(emulated=None).ratio is None
    assert row(native=None).ratio is None
    assert row().to_json()["ratio"] == 15.0


def test_render_shows_failures_instead_of_times() -> None:
    text = render_wheels([row(), row(target="t2", emulated=None, error="cibuildwheel failed")])
    lines = text.splitlines()
    assert "120.0s" in lines[1] and "15.0x" in lines[1] and "x.whl" in lines[1]
    assert "FAILED" in lines[2] and "cibuildwheel failed" in lines[2]


def test_only_the_full_plan_runs_the_wheel_row() -> None:
    assert FULL.wheels and not QUICK.wheels
    assert FULL.to_json()["wheels"] is True


# ------------------------------------------------------------- an accelerated image


def test_the_emulated_leaves_run_gets_native_tools_0_appended_to_theirs() -> None:
    env = {"CIBW_ENVIRONMENT_LINUX": "CFLAGS=-O3 XARCH_NATIVE_TOOLS=1", "HOME": "/root"}
    got = emulated_leaves_environ(env)
    # Evaluated in order: the last assignment is the one the build sees.
    assert got["CIBW_ENVIRONMENT_LINUX"] == "CFLAGS=-O3 XARCH_NATIVE_TOOLS=1 XARCH_NATIVE_TOOLS=0"
    assert got["HOME"] == "/root"
    assert "CIBW_INHERIT" not in got  # their platform value keeps its own rule
    assert env["CIBW_ENVIRONMENT_LINUX"] == "CFLAGS=-O3 XARCH_NATIVE_TOOLS=1"  # not modified


def test_without_their_value_ours_is_appended_to_the_lower_levels() -> None:
    got = emulated_leaves_environ({"CIBW_ENVIRONMENT": "FOO=1"})
    assert got["CIBW_ENVIRONMENT_LINUX"] == "XARCH_NATIVE_TOOLS=0"
    assert got["CIBW_INHERIT"] == "environment-linux: append"
    assert got["CIBW_ENVIRONMENT"] == "FOO=1"


def test_their_other_inherit_rules_stay() -> None:
    got = emulated_leaves_environ({"CIBW_INHERIT": "before-all: append; environment-linux: none"})
    assert got["CIBW_INHERIT"] == "before-all: append; environment-linux: append"


def test_native_tools_0_reaches_the_build_environment_next_to_the_ca_bundle(
    tmp_path: Path,
) -> None:
    # What build_wheels makes of the mapping the bench passes as its environ.
    bundle = tmp_path / "ca.pem"
    run = WheelRun(
        arch=get_arch("aarch64"), images={"CIBW_MANYLINUX_AARCH64_IMAGE": "r@x"}, targets=("t",)
    )
    env = run_env(emulated_leaves_environ({}), run, ca_bundle=bundle)
    assigned = env["CIBW_ENVIRONMENT_LINUX"].split()
    assert assigned[-1] == "XARCH_NATIVE_TOOLS=0"
    assert "PIP_CERT=/cibuildwheel-ca-bundle.pem" in assigned
    assert env["CIBW_INHERIT"] == "environment-linux: append"
    plain = run_env({}, run)
    assert "XARCH_NATIVE_TOOLS" not in plain.get("CIBW_ENVIRONMENT_LINUX", "")


def test_accelerated_row_ratios() -> None:
    r = row(native_leaves=True, accelerated=10.0, emulated=40.0)
    assert r.accelerated_ratio == 1.25
    assert r.speedup == 4.0
    assert r.goal_met is True
    assert row(native_leaves=True, accelerated=16.0).goal_met is False  # 2x native
    assert row(native_leaves=True, accelerated=None).goal_met is None
    assert row().goal_met is None and row().accelerated_ratio is None
    doc = r.to_json()
    assert doc["accelerated_seconds"] == 10.0
    assert doc["accelerated_over_native"] == 1.25
    assert doc["emulated_over_accelerated"] == 4.0
    assert doc["emulated_environment"] == "XARCH_NATIVE_TOOLS=0"
    assert doc["goal_max_vs_native"] == 1.5
    assert row().to_json()["emulated_environment"] == ""


def test_render_with_an_accelerated_image_has_three_sides() -> None:
    text = render_wheels(
        [row(native_leaves=True, accelerated=10.0, emulated=40.0), row(target="plain")]
    )
    lines = text.splitlines()
    assert lines[0].split()[:7] == [
        "TARGET",
        "EMULATED",
        "ACCELERATED",
        "NATIVE",
        "EMU/NAT",
        "ACC/NAT",
        "EMU/ACC",
    ]
    assert "10.0s" in lines[1] and "1.2x" in lines[1] and "4.0x" in lines[1]
    assert "<= 1.5x native: ok" in lines[1]
    assert "no native leaves" in lines[2]


def test_render_without_accelerated_images_is_unchanged() -> None:
    assert render_wheels([row()]).splitlines()[0].split()[:3] == [
        "TARGET",
        "CIBUILDWHEEL",
        "(EMULATED)",
    ]


def test_each_runs_steps_are_kept_and_shown() -> None:
    from xarch.bench.wheels import render_wheels

    r = row(
        native_leaves=True,
        accelerated=20.0,
        steps={
            "accelerated": {"setup": 1.0, "build": 8.0, "repair": 2.0, "test": 5.0},
            "emulated": {"setup": 1.1, "build": 26.5, "repair": 2.0, "test": 14.4},
        },
    )
    assert r.to_json()["steps"]["emulated"]["build"] == 26.5
    text = render_wheels([r])
    assert "SETUP" in text and "26.5s" in text and "8.0s" in text
