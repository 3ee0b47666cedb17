"""`invoke wheels` end to end: real cibuildwheel 4.3.5 (from PyPI, in xarch's venv)
builds each sample project in each offline helper image by digest, auditwheel repairs
it under the image's policy, and cibuildwheel's test-command installs and tests it
inside the image (under QEMU). Run by the lead/Docker engineer:

    pytest tests/e2e -m "docker and registry and emulation"
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from tests.e2e.conftest import Pushed, copy_project, need_handler
from xarch.model.arch import ARCHES as ARCH_TABLE
from xarch.model.report import read_report
from xarch.wheels.run import WheelBuildError, build_wheels

pytestmark = [pytest.mark.docker, pytest.mark.registry, pytest.mark.emulation]

#: What each project's test-command prints when its tests pass inside the image.
PASSED = {"cext": " passed", "cppext": " passed", "hooks": "hooks ok"}
ARCHES = ("aarch64", "armv7l")  # the stand-ins with CPython 3.9


def extension_arch(wheel: Path) -> str:
    """The architecture of the compiled extension inside a wheel (its ELF header)."""
    with zipfile.ZipFile(wheel) as z:
        [so] = [n for n in z.namelist() if n.endswith(".so")]
        header = z.read(so)[:64]
    found = [
        a.name
        for a in ARCH_TABLE.values()
        if len(header) >= len(a.magic)
        and all((h & m) == (g & m) for h, g, m in zip(header, a.magic, a.mask, strict=False))
    ]
    assert len(found) == 1, f"{so} in {wheel.name}: not one known architecture ({found})"
    return found[0]


# The C extension runs in test_binfmt_wheels.py in both stand-ins with cibuildwheel's
# utility interpreter (CPython 3.9: aarch64 and armv7l), once per kind of host handler;
# the C++ and hooks projects once, on aarch64. ppc64le and s390x (CPython 3.9 built from
# source) build it for cp39 and cp311 in test_emulated_arches.py.
@pytest.mark.parametrize(("project", "arch"), [("cppext", "aarch64"), ("hooks", "aarch64")])
def test_wheel_built_repaired_and_tested_in_the_image(
    project: str,
    arch: str,
    pushed: Pushed,
    handlers: set[str],
    ca_bundle: str | None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    need_handler(handlers, arch)
    [target] = [t for t in pushed.targets if t.arch.name == arch]
    monkeypatch.setenv("XARCH_BUILD_DIR", str(tmp_path / "build"))  # run logs
    report = tmp_path / "report.json"
    report.write_text(pushed.report.read_text())  # the wheels section goes to a copy
    out = tmp_path / "wheelhouse"
    outcome = build_wheels(
        pushed.config,
        [target.name],
        project=copy_project(project, tmp_path),
        output=out,
        report=report,
        ca_bundle=ca_bundle,
    )
    [wheel] = sorted(out.glob("*.whl"))
    assert wheel.name.startswith(f"xarch_sample_{project}-0.1.0-cp39-cp39-")
    # auditwheel repaired it: a manylinux platform tag, not the plain linux_<arch>.
    platform = wheel.name.rsplit("-", 1)[1].removesuffix(".whl")
    assert "manylinux" in platform and "linux_" + arch not in platform.split(".")
    assert platform.endswith(arch)
    assert extension_arch(wheel) == arch
    # The test-command ran inside the image and passed.
    [run] = outcome.results
    assert PASSED[project] in Path(run.log).read_text()
    section = read_report(report)["wheels"]
    assert section["ok"] is True
    assert section["runs"][0]["images"] == {
        f"CIBW_MANYLINUX_{arch.upper()}_IMAGE": pushed.refs[target.name].ref
    }
    assert section["written"] == [str(wheel)]
    assert section["runs"][0]["wheels"][0]["seconds"] > 0


def test_a_failing_test_command_fails_the_run_and_writes_no_wheel(
    pushed: Pushed,
    handlers: set[str],
    ca_bundle: str | None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The user's CIBW_TEST_COMMAND is honoured, and its failure is the run's."""
    arch = ARCHES[0]
    need_handler(handlers, arch)
    [target] = [t for t in pushed.targets if t.arch.name == arch]
    monkeypatch.setenv("XARCH_BUILD_DIR", str(tmp_path / "build"))
    monkeypatch.setenv("CIBW_TEST_COMMAND", "python -c \"raise SystemExit('sample test failed')\"")
    report = tmp_path / "report.json"
    report.write_text(pushed.report.read_text())
    out = tmp_path / "wheelhouse"
    with pytest.raises(WheelBuildError) as e:
        build_wheels(
            pushed.config,
            [target.name],
            project=copy_project("cext", tmp_path),
            output=out,
            report=report,
            ca_bundle=ca_bundle,
        )
    assert e.value.exit_code == 1
    assert "sample test failed" in str(e.value)  # the tail of the log
    assert not out.exists() or not list(out.iterdir())
    section = json.loads(report.read_text())["wheels"]
    assert section["ok"] is False and section["written"] == []
