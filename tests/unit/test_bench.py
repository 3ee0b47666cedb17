"""The pure parts of `invoke bench` (src/xarch/bench/): statistics, ratios, the
workload generators (C, C++, the link), the timer's output, QEMU's help texts, the
XARCH_NATIVE_TOOLS each side's runs get, and how results (two sides, or three for an
image with native leaves) are shaped into tables, JSON and chart data. No engine, no
emulation."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from xarch.bench import report, stats, workloads
from xarch.bench.bench import (
    parse_du,
    settings_for,
    with_accelerated,
    with_native_sizes,
)
from xarch.bench.emulators import Emulator, parse_cpu_models, parse_version
from xarch.bench.results import BenchResult, ImageInfo
from xarch.bench.runner import (
    EmulatedRunner,
    ExecResult,
    Failure,
    Sample,
    Series,
    Setting,
    identify,
    parse_timer,
    rotated,
    sample,
)
from xarch.bench.stats import Summary
from xarch.bench.toolkit import ImageSize

# ------------------------------------------------------------------------- statistics


def test_summary_of_odd_count_takes_the_middle() -> None:
    assert stats.summarize([3.0, 1.0, 2.0]) == Summary(n=3, median=2.0, min=1.0, max=3.0)


def test_summary_of_even_count_averages_the_middle_two() -> None:
    s = stats.summarize([4.0, 1.0, 2.0, 3.0])
    assert s is not None
    assert (s.median, s.min, s.max) == (2.5, 1.0, 4.0)


def test_summary_of_nothing_is_none() -> None:
    assert stats.summarize([]) is None


def test_spread_is_range_over_median() -> None:
    s = stats.summarize([9.0, 10.0, 11.0])
    assert s is not None
    assert s.spread == pytest.approx(0.2)


def test_ratio_divides_medians_and_bounds_by_extremes() -> None:
    emulated = stats.summarize([9.0, 10.0, 12.0])
    native = stats.summarize([0.9, 1.0, 1.2])
    r = stats.ratio(emulated, native)
    assert r is not None
    assert r.median == pytest.approx(10.0)
    assert r.low == pytest.approx(9.0 / 1.2)
    assert r.high == pytest.approx(12.0 / 0.9)


@pytest.mark.parametrize("native", [None, Summary(n=1, median=0.0, min=0.0, max=0.0)])
def test_ratio_without_a_native_time_is_none(native: Summary | None) -> None:
    assert stats.ratio(stats.summarize([1.0]), native) is None


def test_speedup_is_default_over_candidate() -> None:
    assert stats.speedup(stats.summarize([12.0]), stats.summarize([10.0])) == pytest.approx(1.2)


@pytest.mark.parametrize(
    ("default", "candidate", "expected"),
    [
        ([10.0, 10.2, 10.4], [9.0, 9.1, 9.3], "faster"),
        ([10.0, 10.2, 10.4], [11.0, 11.1, 11.3], "slower"),
        ([10.0, 10.2, 10.4], [9.5, 9.9, 10.1], "no clear difference"),  # ranges overlap
        ([10.0, 10.1, 10.2], [9.85, 9.9, 9.95], "no clear difference"),  # disjoint, < 3%
        ([10.0], [9.0], "too few runs"),
    ],
)
def test_verdict(default: list[float], candidate: list[float], expected: str) -> None:
    assert stats.verdict(stats.summarize(default), stats.summarize(candidate)) == expected


def test_geometric_mean() -> None:
    assert stats.geometric_mean([1.21, 1.0]) == pytest.approx(1.1)
    assert stats.geometric_mean([]) is None


# -------------------------------------------------------------------------- workloads


def _c_source_digest_in_a_fresh_process(functions: int, hash_seed: str) -> str:
    """sha256 of generate_c_source(functions) computed by another interpreter, whose
    str hashing (set and dict order of strings) is seeded differently."""
    code = (
        "import hashlib, sys\n"
        "from xarch.bench import workloads\n"
        "text = workloads.generate_c_source(int(sys.argv[1]))\n"
        "print(hashlib.sha256(text.encode()).hexdigest())\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, str(functions)],
        env={**os.environ, "PYTHONHASHSEED": hash_seed},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_c_source_is_the_same_in_every_process() -> None:
    # Bench results of separate runs are compared, so the input they compiled must not
    # depend on the process (e.g. on set or dict order under a different hash seed).
    here = hashlib.sha256(workloads.generate_c_source(300).encode()).hexdigest()
    first = _c_source_digest_in_a_fresh_process(300, "1")
    second = _c_source_digest_in_a_fresh_process(300, "4242")
    assert first == second == here


def test_c_source_defines_each_function_once() -> None:
    src = workloads.generate_c_source(40)
    names = re.findall(r"^long (f\d+)\(", src, re.M)
    assert names == [f"f{i}" for i in range(40)]


def test_c_source_size_follows_the_count() -> None:
    assert workloads.generate_c_source(10) != workloads.generate_c_source(11)
    with pytest.raises(ValueError):
        workloads.generate_c_source(0)


@pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc on this host")
def test_c_source_compiles(tmp_path: Path) -> None:
    path = tmp_path / "gen.c"
    path.write_text(workloads.generate_c_source(12))
    r = subprocess.run(
        ["gcc", "-O2", "-Wall", "-Werror", "-c", str(path), "-o", str(tmp_path / "gen.o")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr


def test_inputs_are_written_for_every_workload(tmp_path: Path) -> None:
    workloads.write_inputs(tmp_path, workloads.QUICK)
    assert (tmp_path / workloads.C_SOURCE).read_text() == workloads.generate_c_source(
        workloads.QUICK.c_functions
    )
    assert (tmp_path / workloads.PY_LOOP).is_file()
    ext = tmp_path / workloads.EXT_PROJECT
    assert sorted(p.name for p in ext.iterdir()) == sorted(
        [*workloads.EXT_FILES, workloads.EXT_HEAVY]
    )
    # compile-heavy: the generated C file is part of the extension's sources
    assert (ext / workloads.EXT_HEAVY).read_text() == workloads.generate_c_source(
        workloads.QUICK.c_functions
    )
    assert f'"{workloads.EXT_HEAVY}"' in (ext / "setup.py").read_text()


def test_python_loop_prints_the_same_checksum_every_time(tmp_path: Path) -> None:
    script = tmp_path / "loop.py"
    script.write_text(workloads.PYTHON_LOOP_SOURCE)
    runs = {
        subprocess.run(
            ["python3", str(script), "20000"], capture_output=True, text=True, check=True
        ).stdout
        for _ in range(2)
    }
    assert len(runs) == 1


def quiet(_: str) -> None:
    pass


NATIVE = workloads.Side(kind="native", inputs="/w/in", scratch="/w/s", python="/w/venv/bin/python")


def test_pip_wheel_runs_offline_on_a_fresh_copy() -> None:
    inv = workloads.invocation(workloads.PIP_WHEEL, NATIVE, "r1", workloads.QUICK)
    assert inv.prepare == ("cp", "-r", "/w/in/ext", "/w/s/ext-r1")
    assert inv.argv[:6] == (
        "/w/venv/bin/python",
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
    )
    assert inv.env["PIP_NO_INDEX"] == "1"
    assert inv.workdir == "/w/s/ext-r1"


def test_gcc_and_python_commands() -> None:
    gcc = workloads.invocation(workloads.GCC, NATIVE, "r1", workloads.FULL)
    assert gcc.argv == ("gcc", "-O2", "-c", "/w/in/generated.c", "-o", "/w/s/gen-r1.o")
    py = workloads.invocation(workloads.PYTHON, NATIVE, "r1", workloads.FULL)
    assert py.argv == ("/w/venv/bin/python", "/w/in/dictloop.py", "1000000")
    assert py.same_output


def test_quick_plan_is_smaller_than_full() -> None:
    q, f = workloads.QUICK, workloads.FULL
    assert q.reps < f.reps
    assert q.c_functions < f.c_functions
    assert q.python_iterations < f.python_iterations
    assert sum(map(len, q.cpu_models.values())) < sum(map(len, f.cpu_models.values()))
    assert not q.alt_emulators and f.alt_emulators


# ------------------------------------------------------------------------ timer, QEMU


def test_timer_line_is_parsed_and_removed() -> None:
    err = (
        "cc1: warning: something\n"
        "\nXARCH-BENCH wall_ns=12500000000 cpu_us=12000000 exit=0 timeout=0\n"
    )
    timing, rest = parse_timer(err)
    assert timing is not None
    assert (timing.wall, timing.cpu, timing.exit_code, timing.timed_out) == (12.5, 12.0, 0, False)
    assert rest == "cc1: warning: something"


def test_timer_line_reports_timeouts_and_exit_codes() -> None:
    timing, _ = parse_timer("XARCH-BENCH wall_ns=1 cpu_us=1 exit=137 timeout=1\n")
    assert timing is not None
    assert (timing.exit_code, timing.timed_out) == (137, True)


def test_missing_timer_line() -> None:
    timing, rest = parse_timer("exec /usr/bin/gcc: exec format error\n")
    assert timing is None
    assert "exec format error" in rest


def test_identify_finds_wheel_and_checksum() -> None:
    out = "  Created wheel for xbench-ext: filename=xbench_ext-1.0-cp311-cp311-linux_aarch64.whl"
    assert identify("pip-wheel", out) == "xbench_ext-1.0-cp311-cp311-linux_aarch64.whl"
    assert identify("python", "40359 1999\n") == "40359 1999"
    assert identify("gcc", "") == ""


def test_qemu_version_line() -> None:
    text = "qemu-aarch64 version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\nCopyright (c) 2003-2022"
    assert parse_version(text) == "7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)"
    assert parse_version("nothing") == ""


def test_cpu_models_of_qemu_7_and_10() -> None:
    aarch64 = "Available CPUs:\n  a64fx\n  cortex-a72\n  max\n  neoverse-n1\n"
    ppc_72 = "PowerPC power9_v2.0     PVR 004e1200\nPowerPC power9  (alias for power9_v2.0)\n"
    ppc_10 = "  power10_v2.0     PVR 00801200\n  power10          (alias for power10_v2.0)\n"
    assert parse_cpu_models(aarch64) == {"a64fx", "cortex-a72", "max", "neoverse-n1"}
    assert parse_cpu_models(ppc_72) == {"power9_v2.0", "power9"}
    assert parse_cpu_models(ppc_10) == {"power10_v2.0", "power10"}


def test_rotation_starts_each_round_elsewhere() -> None:
    assert rotated(["a", "b", "c"], 0) == ["a", "b", "c"]
    assert rotated(["a", "b", "c"], 4) == ["b", "c", "a"]
    assert rotated([], 3) == []


# ----------------------------------------------------------------------------- shaping

PIN = Emulator(
    key="pin",
    label="QEMU 7.2 (the config's pin)",
    arch="aarch64",
    path=Path("/nonexistent/qemu-aarch64-static"),
    version="7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)",
    sha256="4f55e2e8" + "0" * 56,
    source="test",
)
BPO = Emulator(
    key="backports",
    label="QEMU 10.0.2 (bookworm-backports)",
    arch="aarch64",
    path=Path("/nonexistent/qemu-aarch64"),
    version="10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)",
    sha256="3ef82f81" + "0" * 56,
    source="test",
)
T = "standin-aarch64"


def series(
    kind: str, workload: str, walls: list[float], emulator: str = "", cpu: str = ""
) -> Series:
    s = Series(
        kind="native" if kind == "native" else "emulated",
        target=T,
        arch="aarch64",
        workload=workload,
        emulator=emulator,
        cpu=cpu,
    )
    s.samples = [Sample(i, w, w) for i, w in enumerate(walls)]
    return s


def sample_series() -> list[Series]:
    return [
        series("native", "gcc", [1.0, 1.1, 0.9]),
        series("native", "python", [0.3, 0.3, 0.3]),
        series("emulated", "gcc", [13.0, 12.5, 13.5], "pin"),
        series("emulated", "python", [2.6, 2.5, 2.7], "pin"),
        series("emulated", "gcc", [12.0, 11.9, 12.1], "pin", "cortex-a72"),
        series("emulated", "python", [2.3, 2.2, 2.35], "pin", "cortex-a72"),
        series("emulated", "gcc", [14.0, 13.1, 14.2], "backports"),
        series("emulated", "python", [2.6, 2.4, 2.8], "backports"),
    ]


def test_overhead_rows_use_the_default_setting_only() -> None:
    rows = report.overhead_rows(sample_series())
    assert [(r.workload, round(r.ratio.median, 2)) for r in rows if r.ratio] == [
        ("gcc", 13.0),
        ("python", 8.67),
    ]


def test_setting_rows_compare_with_the_default() -> None:
    rows = report.setting_rows(sample_series(), [PIN, BPO], {T: "max"})
    by = {(r.emulator, r.cpu, r.workload): r for r in rows}
    assert by[("pin", "", "gcc")].verdict == "default"
    assert by[("pin", "", "gcc")].effective_cpu == "max"
    a72 = by[("pin", "cortex-a72", "gcc")]
    assert a72.speedup == pytest.approx(13.0 / 12.0)
    assert a72.verdict == "faster"
    assert a72.binary == "QEMU 7.2.22 sha256:4f55e2e8"
    assert by[("backports", "", "gcc")].verdict == "no clear difference"
    assert by[("backports", "", "gcc")].binary == "QEMU 10.0.2 sha256:3ef82f81"


def test_recommendation_needs_every_workload_clearly_faster() -> None:
    rows = report.setting_rows(sample_series(), [PIN, BPO], {T: "max"})
    recs = report.recommend(rows, ["gcc", "python"])
    assert [(r.emulator, r.cpu) for r in recs] == [("pin", "cortex-a72")]
    slower_python = [s for s in sample_series() if not (s.cpu and s.workload == "python")]
    slower_python.append(series("emulated", "python", [2.6, 2.5, 2.8], "pin", "cortex-a72"))
    rows = report.setting_rows(slower_python, [PIN, BPO], {T: "max"})
    assert report.recommend(rows, ["gcc", "python"]) == []


def test_failures_are_counted_not_timed() -> None:
    s = series("emulated", "gcc", [13.0], "pin")
    s.failures.append(Failure(1, "exit status 1", 1, "gcc: internal compiler error"))
    rows = report.overhead_rows([series("native", "gcc", [1.0]), s])
    assert rows[0].failures == 1
    assert rows[0].emulated is not None and rows[0].emulated.n == 1


def test_overhead_table_text() -> None:
    text = report.render_overhead(report.overhead_rows(sample_series()))
    lines = text.splitlines()
    assert lines[0].split() == ["TARGET", "WORKLOAD", "EMULATED", "NATIVE", "RATIO", "RANGE"]
    assert "13.0s [12.5-13.5]" in lines[1]
    assert "13.0x" in lines[1]


def test_json_document_has_samples_summaries_and_environment() -> None:
    result = BenchResult(
        plan=workloads.QUICK, config="config/offline.yaml", started="2026-11-24T12:00:00Z"
    )
    result.environment = {"cpu_model": "AMD EPYC", "kernel": "6.18"}
    result.emulators = [PIN, BPO]
    result.images = [
        ImageInfo(target=T, arch="aarch64", image="img", image_id="sha256:1", baked_cpu="")
    ]
    result.series = sample_series()
    doc = json.loads(json.dumps(report.to_json(result)))
    assert doc["schema"] == report.SCHEMA
    assert doc["environment"]["cpu_model"] == "AMD EPYC"
    assert {e["version"] for e in doc["emulators"]} == {PIN.version, BPO.version}
    assert doc["images"][0]["default_cpu"] == "max"
    gcc = next(r for r in doc["overhead"] if r["workload"] == "gcc")
    assert gcc["ratio"]["median"] == 13.0
    assert gcc["emulated"] == {"n": 3, "median": 13.0, "min": 12.5, "max": 13.5, "spread": 0.0769}
    assert all(s["samples"] for s in doc["series"])
    assert doc["recommendations"][0]["qemu_cpu"] == "cortex-a72"


def test_settings_skip_the_default_model_and_put_the_default_first() -> None:
    info = ImageInfo(target=T, arch="aarch64", image="img", image_id="", baked_cpu="")
    got, skipped = settings_for(info, workloads.FULL, PIN, BPO)
    assert got[0] == Setting(PIN)
    cpus = [(s.emulator.key, s.cpu) for s in got]
    assert ("pin", "max") not in cpus  # QEMU's default model: that is the default row
    assert ("pin", "cortex-a72") in cpus
    assert ("backports", "") in cpus
    assert skipped == []


def test_settings_offer_max_when_the_image_sets_another_model() -> None:
    info = ImageInfo(target=T, arch="aarch64", image="img", image_id="", baked_cpu="cortex-a72")
    got, _ = settings_for(info, workloads.FULL, PIN, None)
    cpus = [s.cpu for s in got]
    assert "max" in cpus and "cortex-a72" not in cpus


# ----------------------------------------------------------------- one run, recorded


class FakeRunner:
    """Answers runs from a script of (exit code, stdout, stderr) tuples."""

    def __init__(self, *answers: tuple[int, str, str]) -> None:
        self.side = NATIVE
        self.timer = "/timer"
        self.answers = list(answers)
        self.calls: list[list[str]] = []

    def run(self, argv: Sequence[str], *, workdir: str, env: Mapping[str, str]) -> ExecResult:
        self.calls.append(list(argv))
        code, out, err = self.answers.pop(0)
        return ExecResult(code, out, err)


def timed(exit_code: int, wall_s: float = 1.5) -> str:
    return f"\nXARCH-BENCH wall_ns={int(wall_s * 1e9)} cpu_us=1000 exit={exit_code} timeout=0\n"


def test_a_good_run_is_a_sample() -> None:
    s = Series(kind="native", target=T, arch="x86_64", workload="python")
    sample(s, FakeRunner((0, "40359 1999\n", timed(0, 0.3))), workloads.QUICK, 0, quiet)
    assert [x.wall for x in s.samples] == [0.3]
    assert s.output == "40359 1999"
    assert s.failures == []


def test_a_failed_run_is_a_failure_with_its_output_never_a_timing() -> None:
    s = Series(kind="emulated", target=T, arch="aarch64", workload="gcc", emulator="pin")
    err = "gcc: internal compiler error: Segmentation fault" + timed(4)
    sample(s, FakeRunner((4, "", err)), workloads.QUICK, 2, quiet, guard=lambda: True)
    assert s.samples == []
    (f,) = s.failures
    assert (f.round, f.reason, f.exit_code) == (2, "exit status 4", 4)
    assert "internal compiler error" in f.output


def test_a_run_without_a_timer_line_is_a_failure() -> None:
    s = Series(kind="emulated", target=T, arch="aarch64", workload="gcc", emulator="pin")
    sample(s, FakeRunner((126, "", "OCI runtime exec failed")), workloads.QUICK, 0, quiet)
    assert s.samples == [] and s.failures[0].reason == "the command did not run"


def test_a_wrong_result_under_emulation_is_a_failure() -> None:
    s = Series(kind="emulated", target=T, arch="aarch64", workload="python", emulator="pin")
    runner = FakeRunner((0, "1 2\n", timed(0)))
    sample(s, runner, workloads.QUICK, 0, quiet, reference="40359 1999")
    assert s.samples == [] and "wrong result" in s.failures[0].reason


def test_a_run_that_lost_its_handler_is_repeated_not_timed() -> None:
    s = Series(kind="emulated", target=T, arch="aarch64", workload="gcc", emulator="pin")
    runner = FakeRunner(
        (1, "", "exec /usr/bin/as: exec format error" + timed(1, 0.1)),
        (0, "", timed(0, 12.0)),
    )
    sample(s, runner, workloads.QUICK, 0, quiet, guard=lambda: True)
    assert [x.wall for x in s.samples] == [12.0]
    assert len(s.discarded) == 1 and s.failures == []
    outputs = [c[-1] for c in runner.calls]
    assert outputs[0] != outputs[1]  # each attempt writes elsewhere


def test_pip_wheel_is_prepared_before_it_is_timed() -> None:
    s = Series(kind="native", target=T, arch="x86_64", workload="pip-wheel")
    runner = FakeRunner((0, "", ""), (0, "filename=x-1.0-cp311-cp311-linux_x86_64.whl", timed(0)))
    sample(s, runner, workloads.QUICK, 0, quiet)
    assert runner.calls[0][:2] == ["cp", "-r"]
    assert runner.calls[1][0] == "/timer"
    assert s.output == "x-1.0-cp311-cp311-linux_x86_64.whl"


# ------------------------------------------------------------- C++ and link workloads


def _cxx_source_digest_in_a_fresh_process(classes: int, hash_seed: str) -> str:
    code = (
        "import hashlib, sys\n"
        "from xarch.bench import workloads\n"
        "text = workloads.generate_cxx_source(int(sys.argv[1]))\n"
        "print(hashlib.sha256(text.encode()).hexdigest())\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, str(classes)],
        env={**os.environ, "PYTHONHASHSEED": hash_seed},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_cxx_source_is_the_same_in_every_process() -> None:
    here = hashlib.sha256(workloads.generate_cxx_source(12).encode()).hexdigest()
    first = _cxx_source_digest_in_a_fresh_process(12, "1")
    second = _cxx_source_digest_in_a_fresh_process(12, "4242")
    assert first == second == here


def test_cxx_source_defines_each_class_template_and_function_once() -> None:
    src = workloads.generate_cxx_source(9)
    assert re.findall(r"^class (Table\d+) : public Shape", src, re.M) == [
        f"Table{i}" for i in range(9)
    ]
    assert re.findall(r"^long (run\d+)\(long x\)", src, re.M) == [f"run{i}" for i in range(9)]
    for header in ("<map>", "<string>", "<vector>"):
        assert f"#include {header}" in src


def test_cxx_source_size_follows_the_count() -> None:
    assert len(workloads.generate_cxx_source(3)) < len(workloads.generate_cxx_source(4))
    with pytest.raises(ValueError):
        workloads.generate_cxx_source(0)


@pytest.mark.skipif(shutil.which("g++") is None, reason="no g++ on this host")
@pytest.mark.parametrize("classes", [1, workloads.QUICK.cxx_classes, workloads.FULL.cxx_classes])
def test_cxx_source_compiles_as_cxx11(tmp_path: Path, classes: int) -> None:
    # C++11 and warning-free: the stand-ins' g++ 10 (gnu++14) must take it as it is.
    path = tmp_path / "gen.cpp"
    path.write_text(workloads.generate_cxx_source(classes))
    flags = ["-std=c++11", "-pedantic", "-O2", "-Wall", "-Wextra", "-Werror"]
    r = subprocess.run(
        ["g++", *flags, "-c", str(path), "-o", str(tmp_path / "gen.o")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    nm = subprocess.run(["nm", str(tmp_path / "gen.o")], capture_output=True, text=True)
    assert " T xbench_cxx_entry" in nm.stdout


def test_inputs_include_the_cxx_file_and_the_link_main(tmp_path: Path) -> None:
    workloads.write_inputs(tmp_path, workloads.FULL)
    assert (tmp_path / workloads.CXX_SOURCE).read_text() == workloads.generate_cxx_source(
        workloads.FULL.cxx_classes
    )
    main = (tmp_path / workloads.LINK_MAIN).read_text()
    assert f"f{workloads.FULL.c_functions - 1}(argc, &p)" in main


def test_gxx_command() -> None:
    inv = workloads.invocation(workloads.GXX, NATIVE, "r1", workloads.FULL)
    assert inv.argv == ("g++", "-O2", "-c", "/w/in/generated.cpp", "-o", "/w/s/gen-r1.cxx.o")
    assert inv.prepare == ()


def test_link_times_only_the_link_of_prebuilt_objects() -> None:
    inv = workloads.invocation(workloads.LINK, NATIVE, "r1", workloads.FULL)
    objects = "/w/s/link-objects-native"
    assert inv.argv == (
        "gcc",
        "-o",
        "/w/s/linked-r1",
        f"{objects}/generated.o",
        f"{objects}/main.o",
    )
    assert inv.prepare[:2] == ("sh", "-c")
    script = inv.prepare[2]
    assert f"gcc -O2 -c /w/in/generated.c -o {objects}/generated.o" in script
    assert f"gcc -O2 -c /w/in/link_main.c -o {objects}/main.o.tmp" in script


def test_link_objects_are_kept_apart_per_side_kind() -> None:
    emulated = workloads.Side(kind="emulated", inputs="/i", scratch="/s", python="python3")
    accelerated = workloads.Side(kind="accelerated", inputs="/i", scratch="/s", python="python3")
    assert workloads.link_objects(emulated) != workloads.link_objects(accelerated)
    a = workloads.invocation(workloads.LINK, emulated, "r", workloads.QUICK)
    b = workloads.invocation(workloads.LINK, accelerated, "r", workloads.QUICK)
    assert a.prepare != b.prepare


@pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc on this host")
def test_link_prepare_compiles_once_and_the_link_makes_a_program(tmp_path: Path) -> None:
    plan = workloads.QUICK
    workloads.write_inputs(tmp_path / "in", plan)
    (tmp_path / "s").mkdir()
    side = workloads.Side(
        kind="native", inputs=str(tmp_path / "in"), scratch=str(tmp_path / "s"), python="x"
    )
    inv = workloads.invocation(workloads.LINK, side, "r1", plan)
    subprocess.run(inv.prepare, cwd=side.scratch, check=True)
    obj = Path(workloads.link_objects(side)) / "generated.o"
    first = obj.stat().st_mtime_ns
    subprocess.run(inv.prepare, cwd=side.scratch, check=True)
    assert obj.stat().st_mtime_ns == first  # the second preparation compiled nothing
    subprocess.run(inv.argv, cwd=inv.workdir, check=True)
    program = tmp_path / "s" / "linked-r1"
    assert subprocess.run([str(program)], check=False).returncode in (0, 1)


def test_both_plans_run_every_workload_and_the_full_one_the_larger_inputs() -> None:
    for plan in (workloads.QUICK, workloads.FULL):
        assert set(plan.workloads) == set(workloads.WORKLOADS)
    assert workloads.QUICK.cxx_classes < workloads.FULL.cxx_classes


def test_the_accelerated_side_runs_the_compiler_workloads_only() -> None:
    assert workloads.PYTHON not in workloads.COMPILER_WORKLOADS
    assert {workloads.GCC, workloads.GXX, workloads.LINK, workloads.PIP_WHEEL} == set(
        workloads.COMPILER_WORKLOADS
    )
    assert workloads.FULL.to_json()["accelerated_workloads"] == [
        "gcc",
        "g++",
        "link",
        "pip-wheel",
    ]


def test_compiles_and_links_print_nothing_that_identifies_them() -> None:
    for w in (workloads.GXX, workloads.LINK):
        assert identify(w, "some linker chatter\n") == ""


# ------------------------------------------------------------ XARCH_NATIVE_TOOLS per run


class RecordingContainer:
    """Stands in for a running container: records what docker exec would get."""

    def __init__(self) -> None:
        self.envs: list[dict[str, str]] = []

    def exec(
        self, argv: Sequence[str], *, workdir: str, env: Mapping[str, str]
    ) -> tuple[int, str, str]:
        self.envs.append(dict(env))
        return 0, "", ""


def box(native_tools: str | None) -> tuple[EmulatedRunner, RecordingContainer]:
    c = RecordingContainer()
    return EmulatedRunner(c, "python3", native_tools=native_tools), c  # type: ignore[arg-type]


def test_the_emulated_side_of_an_accelerated_image_sets_native_tools_0() -> None:
    runner, c = box("0")
    runner.with_cpu("cortex-a72").run(["gcc"], workdir="/", env={"XARCH_NATIVE_TOOLS": "1"})
    assert c.envs == [{"XARCH_NATIVE_TOOLS": "0", "QEMU_CPU": "cortex-a72"}]
    assert runner.side.kind == "emulated"


def test_the_accelerated_side_sets_native_tools_1() -> None:
    runner, c = box("0")
    fast = runner.with_native_tools("1")
    fast.run(["gcc"], workdir="/", env=workloads.PIP_ENV)
    assert c.envs[0]["XARCH_NATIVE_TOOLS"] == "1"
    assert c.envs[0]["PIP_NO_INDEX"] == "1"
    assert fast.side.kind == "accelerated"
    assert fast.with_cpu("").native_tools == "1"


def test_an_image_without_native_leaves_gets_no_native_tools_variable() -> None:
    runner, c = box(None)
    runner.run(["gcc"], workdir="/", env={})
    assert c.envs == [{}]


def test_accelerated_series_write_elsewhere_than_emulated_ones() -> None:
    outs = []
    for kind in ("emulated", "accelerated"):
        s = Series(kind="emulated", target=T, arch="aarch64", workload="gcc", emulator="pin")
        s.kind = "accelerated" if kind == "accelerated" else "emulated"
        runner = FakeRunner((0, "", timed(0)))
        sample(s, runner, workloads.QUICK, 0, quiet, guard=lambda: True)
        outs.append(runner.calls[0][-1])
    assert outs[0] != outs[1]


def accelerated_info(**kw: object) -> ImageInfo:
    info = ImageInfo(target=T, arch="aarch64", image="img", image_id="", baked_cpu="")
    info.native_labels = {
        "org.xarch.native.toolchain": "debian-bullseye-gcc10-aarch64",
        "org.xarch.native.leaves": "cc1,cc1plus,as",
        "org.xarch.native.probe": "passed (140 files equivalent)",
    }
    for k, v in kw.items():
        setattr(info, k, v)
    return info


def test_an_accelerated_image_runs_the_default_setting_also_with_native_leaves() -> None:
    valid = [Setting(PIN), Setting(PIN, "cortex-a72")]
    got = with_accelerated(accelerated_info(), valid, PIN)
    assert got == [Setting(PIN), Setting(PIN, accelerated=True), Setting(PIN, "cortex-a72")]
    assert Setting(PIN, accelerated=True).key == "pin/default/accelerated" != Setting(PIN).key


def test_no_accelerated_setting_without_native_leaves_or_a_working_default() -> None:
    plain = ImageInfo(target=T, arch="aarch64", image="img", image_id="", baked_cpu="")
    assert with_accelerated(plain, [Setting(PIN)], PIN) == [Setting(PIN)]
    only_alt = [Setting(PIN, "cortex-a72")]
    assert with_accelerated(accelerated_info(), only_alt, PIN) == only_alt


def test_du_output_is_parsed() -> None:
    assert parse_du("71800123\t/opt/xarch/native\n") == 71800123
    assert parse_du("du: cannot access '/opt/xarch/native': No such file or directory") is None
    assert parse_du("") is None


# ------------------------------------------------------------ three sides in the report

A = "standin-accelerated"


def acc_series(kind: str, workload: str, walls: list[float]) -> Series:
    s = series(kind, workload, walls, "" if kind == "native" else "pin")
    s.target = A
    if kind == "accelerated":
        s.kind = "accelerated"
    return s


def three_sided() -> list[Series]:
    return [
        acc_series("native", "gcc", [1.0, 1.1, 0.9]),
        acc_series("emulated", "gcc", [13.0, 12.5, 13.5]),
        acc_series("accelerated", "gcc", [1.1, 1.0, 1.2]),
        acc_series("native", "pip-wheel", [1.0, 1.0, 1.0]),
        acc_series("emulated", "pip-wheel", [10.0, 10.0, 10.0]),
        acc_series("accelerated", "pip-wheel", [4.0, 4.0, 4.0]),
        acc_series("native", "python", [0.3, 0.3, 0.3]),
        acc_series("emulated", "python", [2.7, 2.7, 2.7]),
    ]


def test_three_sided_rows_divide_accelerated_by_native_and_emulated_by_accelerated() -> None:
    rows = {r.workload: r for r in report.overhead_rows(three_sided(), {A})}
    gcc = rows["gcc"]
    assert gcc.native_leaves and gcc.accelerated_note == ""
    assert gcc.ratio is not None and gcc.ratio.median == pytest.approx(13.0)
    assert gcc.accelerated_ratio is not None and gcc.accelerated_ratio.median == pytest.approx(1.1)
    assert gcc.accelerated_ratio.low == pytest.approx(1.0 / 1.1)
    assert gcc.speedup is not None and gcc.speedup.median == pytest.approx(13.0 / 1.1)
    assert gcc.speedup.high == pytest.approx(13.5 / 1.0)


def test_goals_are_checked_on_the_medians() -> None:
    rows = {r.workload: r for r in report.overhead_rows(three_sided(), {A})}
    assert rows["gcc"].goal_met is True  # 1.1x native, 11.8x faster than emulated
    assert rows["pip-wheel"].goal_met is False  # 4x native, goal 1.5x
    assert rows["python"].goal is None and rows["python"].goal_met is None
    slow = [s for s in three_sided() if not (s.kind == "accelerated" and s.workload == "gcc")]
    slow.append(acc_series("accelerated", "gcc", [2.0, 2.0, 2.0]))  # 6.5x faster only
    rows = {r.workload: r for r in report.overhead_rows(slow, {A})}
    assert rows["gcc"].goal_met is False


def test_rows_say_why_there_is_no_accelerated_time() -> None:
    rows = report.overhead_rows([*three_sided(), *sample_series()], {A})
    by = {(r.target, r.workload): r for r in rows}
    assert by[(A, "python")].accelerated_note == report.NO_COMPILER
    assert by[(T, "gcc")].accelerated_note == report.NO_NATIVE_LEAVES
    assert not by[(T, "gcc")].native_leaves and by[(T, "gcc")].accelerated is None


def test_three_sided_table_text() -> None:
    text = report.render_overhead(report.overhead_rows([*three_sided(), *sample_series()], {A}))
    lines = text.splitlines()
    assert lines[0].split() == [
        "TARGET",
        "WORKLOAD",
        "EMULATED",
        "ACCELERATED",
        "NATIVE",
        "EMU/NAT",
        "ACC/NAT",
        "EMU/ACC",
        "GOAL",
    ]
    gcc = next(ln for ln in lines if ln.startswith(A) and " gcc " in ln)
    assert "1.10s [1.00-1.20]" in gcc and "13.0x" in gcc and "1.1x" in gcc and "11.8x" in gcc
    assert "ok" in gcc
    pip = next(ln for ln in lines if ln.startswith(A) and "pip-wheel" in ln)
    assert "MISSED" in pip
    plain = next(ln for ln in lines if ln.startswith(T) and " gcc " in ln)
    assert "no native leaves" in plain
    python = next(ln for ln in lines if ln.startswith(A) and "python" in ln)
    assert report.NO_COMPILER in python


def test_accelerated_failures_are_shown_in_their_own_cell() -> None:
    s = acc_series("accelerated", "gcc", [1.0])
    s.failures.append(Failure(0, "exit status 1", 1, "xarch native hook: cannot start cc1"))
    rows = report.overhead_rows(
        [acc_series("native", "gcc", [1.0]), acc_series("emulated", "gcc", [13.0]), s], {A}
    )
    assert rows[0].accelerated_failures == 1 and rows[0].failures == 1
    line = report.render_overhead(rows).splitlines()[1]
    assert "1.00s [1.00-1.00] (1 FAILED)" in line
    assert "13.0s [13.0-13.0] " in line  # the emulated cell names no failure


def three_sided_result() -> BenchResult:
    result = BenchResult(
        plan=workloads.QUICK, config="config/offline-native.yaml", started="2026-12-02T12:00:00Z"
    )
    result.emulators = [PIN]
    result.images = [
        accelerated_info(target=A, native_size=71_800_000),
        ImageInfo(target=T, arch="aarch64", image="img2", image_id="", baked_cpu=""),
    ]
    result.series = [*three_sided(), *sample_series()]
    return result


def test_json_has_stable_keys_for_the_three_sides() -> None:
    doc = json.loads(json.dumps(report.to_json(three_sided_result())))
    assert doc["schema"] == 2
    gcc = next(r for r in doc["overhead"] if r["target"] == A and r["workload"] == "gcc")
    assert gcc["sides"] == ["emulated", "accelerated", "native"]
    assert gcc["accelerated"]["median"] == 1.1
    assert gcc["accelerated_over_native"]["median"] == 1.1
    assert gcc["emulated_over_accelerated"]["median"] == 11.82
    assert gcc["goal"] == {"max_vs_native": 1.2, "min_speedup": 8.0}
    assert gcc["goal_met"] is True
    plain = next(r for r in doc["overhead"] if r["target"] == T and r["workload"] == "gcc")
    assert plain["sides"] == ["emulated", "native"]
    assert plain["accelerated"] is None and plain["accelerated_note"] == "no native leaves"
    assert plain["goal"] is None
    images = {i["target"]: i for i in doc["images"]}
    assert images[A]["native_leaves"] is True and images[A]["native_size"] == 71_800_000
    assert images[T]["native_leaves"] is False
    assert images[T]["native_status"] == "no native leaves (emulated compilers)"
    assert doc["goals"]["cibuildwheel_max_vs_native"] == 1.5
    assert any(s["kind"] == "accelerated" for s in doc["series"])


def test_the_run_text_names_each_images_leaves() -> None:
    text = report.render(three_sided_result())
    assert "Emulated, accelerated and native" in text
    assert f"  {T}: no native leaves (emulated compilers)" in text
    assert (
        f"  {A}: native leaves cc1,cc1plus,as from debian-bullseye-gcc10-aarch64: "
        "probe passed (140 files equivalent)"
    ) in text


def test_chart_without_native_leaves_keeps_one_panel_a_bar_per_arch() -> None:
    (panel,) = report.chart_panels(report.overhead_rows(sample_series()))
    assert [g.label for g in panel.groups] == ["aarch64"]
    assert panel.workloads == ("gcc", "python")
    bar = panel.groups[0].bars[0]
    assert bar is not None and bar.value == pytest.approx(13.0)


def test_chart_has_three_bars_per_workload_for_an_accelerated_image() -> None:
    rows = report.overhead_rows([*three_sided(), *sample_series()], {A})
    fast, plain = report.chart_panels(rows)
    assert fast.title.startswith(A) and "native leaves" in fast.title
    assert [g.label for g in fast.groups] == ["emulated", "accelerated", "native"]
    assert fast.workloads == ("gcc", "pip-wheel", "python")
    emulated, accelerated, native = (g.bars for g in fast.groups)
    assert emulated[0] is not None and emulated[0].value == pytest.approx(13.0)
    assert accelerated[0] is not None and accelerated[0].value == pytest.approx(1.1)
    assert accelerated[2] is None  # python: no compiler, no accelerated bar
    assert native[0] is not None and native[0].value == 1.0
    assert native[0].low == pytest.approx(0.9) and native[0].high == pytest.approx(1.1)
    assert [g.label for g in plain.groups] == ["emulated", "native"]
    assert "no native leaves" in plain.title


def test_chart_is_written_with_a_panel_per_image(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    path = report.write_chart(three_sided_result(), tmp_path / "chart.png")
    assert path is not None
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_native_toolchain_size_is_in_the_sizes_table() -> None:
    sizes = [
        ImageSize(target=A, image="i1", size=600_000_000, base="b", base_size=500_000_000),
        ImageSize(target=T, image="i2", size=512_000_000, base="b", base_size=499_000_000),
    ]
    result = three_sided_result()
    got = with_native_sizes(sizes, result.images)
    assert got[0].native_leaves and got[0].native_size == 71_800_000
    assert got[0].native_within_goal is True
    assert not got[1].native_leaves and got[1].native_within_goal is None
    lines = report.render_sizes(got).splitlines()
    assert "NATIVE TOOLCHAIN" in lines[0]
    assert "71.8 MB (< 120.0 MB ok)" in lines[1]
    assert "no native leaves" in lines[2]
    big = dataclasses.replace(got[0], native_size=130_000_000)
    assert "MISSED" in report.native_size_cell(big)
    assert got[0].to_json()["native_toolchain_size"] == 71_800_000


def test_sizes_table_without_native_leaves_is_unchanged() -> None:
    sizes = [ImageSize(target=T, image="i2", size=512_000_000, base="b", base_size=None)]
    assert report.render_sizes(sizes).splitlines()[0].split() == [
        "TARGET",
        "HELPER",
        "BASE",
        "ADDED",
        "BASE",
        "IMAGE",
    ]
