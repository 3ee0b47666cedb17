"""The architectures that still need emulation on hosted CI, end to end (issue 17):
ppc64le and s390x stand-ins (Debian bookworm, CPython 3.9 built from source beside
Debian's 3.11) and riscv64 (Debian trixie, the same 3.9 beside Debian's 3.13) from
config/offline-emulated.yaml. Their helper images are built and pushed here by this
code (minutes the first time; the root filesystems, with the interpreter, are cached, and
an unchanged image is neither built nor pushed again), proven by `invoke test-images`
under handlers with and without flag F, diagnosed by `doctor`, and used by cibuildwheel
4.3.5, unchanged, to build, repair and test the sample C extension for cp39 and the
suite's Python on each.

s390x is the only big-endian target: its wheel's extension must be a big-endian ELF of
machine S/390 that answers inside the image.

    pytest tests/e2e/test_emulated_arches.py
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest
import yaml

from tests.e2e.ci_harness import matrix_entries
from tests.e2e.conftest import EMULATED_CONFIG as CONFIG
from tests.e2e.conftest import Pushed, copy_project, handler_only, invoke
from xarch.ci.workflows import plan_ci, render
from xarch.model.report import read_report
from xarch.oci.registry import RegistryClient
from xarch.runner import doctor
from xarch.wheels.run import build_wheels

pytestmark = [pytest.mark.docker, pytest.mark.registry, pytest.mark.emulation, pytest.mark.binfmt]

ARCHES = ("ppc64le", "s390x", "riscv64")
#: e_machine and EI_DATA of each architecture's ELF files.
ELF = {"ppc64le": (21, 1), "s390x": (22, 2), "riscv64": (243, 1)}
#: The suite's own Python and the policy the stand-in repairs for (bookworm's glibc 2.36;
#: trixie's 2.41 capped at auditwheel 6.4.2's newest policy, manylinux_2_39).
SUITE = {
    "ppc64le": ("cp311", "manylinux_2_36"),
    "s390x": ("cp311", "manylinux_2_36"),
    "riscv64": ("cp313", "manylinux_2_39"),
}


def test_test_images_passes_under_f_and_no_f_handlers(emulated: Pushed, tmp_path: Path) -> None:
    """The image suite (the cibuildwheel contract, both interpreters, uv, the compiler)
    passes for both images under each kind of handler, and the JUnit file says so."""
    r = invoke(
        "test-images", "--config", str(CONFIG), "--binfmt-mode", "both",
        "--junit", str(tmp_path / "junit.xml"), log=tmp_path / "test-images.log",
    )  # fmt: skip
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    files = sorted(tmp_path.glob("junit*.xml"))
    assert len(files) == 2, files  # one per handler mode
    for f in files:
        cases = list(ET.parse(f).getroot().iter("testcase"))
        failed = [c.get("name") for c in cases if c.find("failure") is not None]
        assert not failed, (f.name, failed)
        for t in emulated.targets:
            ran = [
                c for c in cases if t.name in (c.get("name") or "") and c.find("skipped") is None
            ]
            assert ran, f"{f.name}: no test of {t.name} ran"
        built = [c for c in cases if "test_built_interpreter_has" in (c.get("name") or "")]
        assert len(built) == len(emulated.targets), f"{f.name}: the cp39 checks did not run"
        assert all(c.find("skipped") is None for c in built), f.name
        own = [c for c in cases if "test_built_interpreter_passes" in (c.get("name") or "")]
        ran = [c for c in own if c.find("skipped") is None]
        f_pass = not f.name.endswith("-no-F.xml")
        assert len(ran) == (len(emulated.targets) if f_pass else 0), f.name


def test_cibuildwheel_builds_cp39_and_the_suites_python_with_doctor_agreeing(
    emulated: Pushed,
    ca_bundle: str | None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Under flag-F handlers for the pinned emulators: doctor says each image runs, and
    cibuildwheel builds, repairs (manylinux_2_36; riscv64: manylinux_2_39) and tests the
    sample C extension for the built-from-source cp39 and Debian's own Python, two
    architectures side by side (`--jobs 2`). Each wheel's extension is an ELF of its
    architecture's machine and byte order."""
    monkeypatch.setenv("XARCH_BUILD_DIR", str(tmp_path / "build"))
    # As a user selects per architecture: each stand-in has cp39 and its suite's Python.
    monkeypatch.setenv("CIBW_BUILD", "cp39-* cp311-* cp313-*")
    # CIBW_SKIP replaces the project's own `skip` (no musllinux), so it says it again.
    monkeypatch.setenv("CIBW_SKIP", "*-musllinux_* cp313-*_ppc64le cp313-*_s390x cp311-*_riscv64")
    report = tmp_path / "report.json"
    report.write_text(emulated.report.read_text())
    out = tmp_path / "wheelhouse"
    with handler_only("ppc64le", "F"), handler_only("s390x", "F"), handler_only("riscv64", "F"):
        verdicts = doctor.diagnose(emulated.config, probe_containers=False).targets
        for t in emulated.targets:
            [verdict] = [v for v in verdicts if v.target == t.name]
            assert verdict.verdict == doctor.RUNS, verdict.reason
        outcome = build_wheels(
            emulated.config,
            [t.name for t in emulated.targets],
            project=copy_project("cext", tmp_path),
            output=out,
            report=report,
            ca_bundle=ca_bundle,
            environ=dict(os.environ),
            jobs=2,
        )
    assert len(outcome.results) == len(ARCHES)
    for run in outcome.results:
        log = Path(run.log).read_text()
        assert log.count(" passed") >= 2, "the project's tests did not run for both Pythons"
    for arch_name in ARCHES:
        own, policy = SUITE[arch_name]
        wheels = sorted(w.name for w in out.glob(f"*_{arch_name}.whl"))
        assert [w.split("-")[2] for w in wheels] == [own, "cp39"], wheels
        for w in wheels:
            assert w.endswith(f"{policy}_{arch_name}.whl"), w
        machine, data = ELF[arch_name]
        with zipfile.ZipFile(out / wheels[1]) as z:
            [so] = [n for n in z.namelist() if n.endswith(".so")]
            head = z.read(so)[:20]
        assert head[:4] == b"\x7fELF" and head[5] == data, head
        order = "big" if data == 2 else "little"
        assert int.from_bytes(head[18:20], order) == machine


def test_images_are_in_their_familys_multi_arch_index(emulated: Pushed) -> None:
    """Each helper image is in its family's index (ppc64le and s390x in
    standin-manylinux_2_28, riscv64 in standin-manylinux_2_39), each under its own
    platform and with the digest the report recorded for it."""
    config = emulated.config
    client = RegistryClient(config.registry.address, insecure=config.registry.insecure)
    families = {t.family for t in emulated.targets}
    assert families == {"standin-manylinux_2_28", "standin-manylinux_2_39"}
    for family in families:
        _, index = client.get_manifest(config.registry.repository(family), "standin")
        by_platform = {
            f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"]
            for m in index["manifests"]
        }
        assert by_platform == {
            f"linux/{t.arch.platform.split('/')[1]}": emulated.refs[t.name].digest
            for t in emulated.targets
            if t.family == family
        }, family


def test_generated_ci_builds_wheels_for_all_three(emulated: Pushed) -> None:
    """`ci-config` for this profile: the wheel job's matrix has the three architectures, each
    pulling its helper image by the digest the report recorded."""
    plan = plan_ci(emulated.config, read_report(emulated.report), report_file=emulated.report)
    files = render(plan, "github", emulated.report)
    wf = yaml.safe_load(files[".github/workflows/xarch-wheels.yml"])
    entries = matrix_entries(wf["jobs"]["linux-emulated"]["strategy"])
    assert sorted(e["arch"] for e in entries) == sorted(ARCHES)
    text = files[".github/workflows/xarch-wheels.yml"]
    for t in emulated.targets:
        assert emulated.refs[t.name].digest in text, t.name
