"""The bench's wheel row: the sample it builds is the e2e sample byte for byte, the
row's ratio and rendering, and which plans run it."""

from __future__ import annotations

from pathlib import Path

from xarch.bench.sample_cext import CEXT_FILES
from xarch.bench.wheels import WheelRow, render_wheels, write_project
from xarch.bench.workloads import FULL, QUICK

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
