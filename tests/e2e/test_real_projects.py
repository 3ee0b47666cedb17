"""Real projects from PyPI, unchanged, as their maintainers configured them (issue 16):
markupsafe 3.0.4 sets `build-frontend = "build[uv]"` in its [tool.cibuildwheel], which
stopped at `which uv` on every stand-in before they carried uv. Here cibuildwheel
4.3.5, unchanged, builds, repairs and tests it in every plain stand-in (aarch64 and
armv7l; ppc64le, s390x and riscv64, whose cp39 is built from source) with the project's
own frontend; the test command is what a user's CI sets (config/projects/pypi.yaml: pytest
over the sdist's tests), installed by uv from PyPI.

The sdist is fetched once (pinned by sha256) into xarch's cache.

    pytest tests/e2e/test_real_projects.py -v
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO_ROOT, Pushed, handler_only, need_handler
from tests.e2e.test_wheels import extension_arch
from xarch.model.config import Config
from xarch.model.report import read_report
from xarch.wheels import projects
from xarch.wheels.run import WheelsOutcome, build_wheels

pytestmark = [pytest.mark.docker, pytest.mark.registry, pytest.mark.emulation]

PROJECT_LIST = REPO_ROOT / "config" / "projects" / "pypi.yaml"


def real(name: str) -> projects.RealProject:
    [p] = projects.select(projects.load_projects(PROJECT_LIST), [name])
    return p


def test_markupsafe_builds_with_its_own_build_uv_frontend(
    pushed: Pushed,
    handlers: set[str],
    ca_bundle: str | None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """aarch64 and armv7l (the quick start's stand-ins), side by side."""
    for arch in ("aarch64", "armv7l"):
        need_handler(handlers, arch)
    _markupsafe(("aarch64", "armv7l"), pushed, ca_bundle, tmp_path, monkeypatch)


@pytest.mark.binfmt
def test_markupsafe_in_the_emulated_architectures_stand_ins(
    emulated: Pushed,
    ca_bundle: str | None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same in the ppc64le, s390x and riscv64 stand-ins
    (config/offline-emulated.yaml), whose cp39 xarch built from source, under temporary
    flag-F handlers, two architectures side by side (`--jobs 2`)."""
    with handler_only("ppc64le", "F"), handler_only("s390x", "F"), handler_only("riscv64", "F"):
        _markupsafe(("ppc64le", "s390x", "riscv64"), emulated, ca_bundle, tmp_path, monkeypatch)


@dataclass(frozen=True)
class RealRun:
    src: Path  # the unpacked sdist, unchanged
    said: list[str]  # what `invoke wheels` printed
    out: Path  # the wheelhouse
    report: Path
    outcome: WheelsOutcome


def build_real(
    name: str,
    config: Config,
    targets: list[str],
    pushed_report: Path,
    *,
    ca_bundle: str | None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    jobs: int = 1,
) -> RealRun:
    """The project of the list, from its sdist, built with cp39 (the stand-ins'
    utility interpreter) and what a user's CI sets for it, in ``targets``."""
    project = real(name)
    src = projects.checkout(project, tmp_path / "src")
    monkeypatch.setenv("XARCH_BUILD_DIR", str(tmp_path / "build"))
    monkeypatch.setenv("CIBW_BUILD", "cp39-manylinux*")
    for k, v in project.user_env(src).items():
        monkeypatch.setenv(k, v)
    report = tmp_path / "report.json"
    report.write_text(pushed_report.read_text())
    said: list[str] = []
    out = tmp_path / "wheelhouse"
    outcome = build_wheels(
        config,
        targets,
        project=src,
        output=out,
        report=report,
        ca_bundle=ca_bundle,
        log=said.append,
        jobs=jobs,
    )
    return RealRun(src=src, said=said, out=out, report=report, outcome=outcome)


def _markupsafe(
    arches: tuple[str, ...],
    pushed: Pushed,
    ca_bundle: str | None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    targets = [t.name for a in arches for t in pushed.targets if t.arch.name == a]
    assert len(targets) == len(arches), targets
    done = build_real(
        "markupsafe",
        pushed.config,
        targets,
        pushed.report,
        ca_bundle=ca_bundle,
        tmp_path=tmp_path,
        monkeypatch=monkeypatch,
        jobs=2,
    )
    said, out, report, outcome = done.said, done.out, done.report, done.outcome
    # unchanged: the project's own frontend
    assert 'build-frontend = "build[uv]"' in (done.src / "pyproject.toml").read_text()
    assert any(
        "frontend: build[uv] (pyproject.toml [tool.cibuildwheel] build-frontend)" in s for s in said
    ), said
    runs = {r["arch"]: r for r in read_report(report)["wheels"]["runs"]}
    assert sorted(runs) == sorted(arches)
    for arch in arches:
        [wheel] = sorted(out.glob(f"*_{arch}.whl"))
        assert wheel.name.startswith("markupsafe-3.0.4-cp39-cp39-manylinux"), wheel.name
        assert extension_arch(wheel) == arch  # the speedups module was compiled
        log = Path(runs[arch]["log"]).read_text()
        assert "--installer=uv" in log, arch  # pypa/build drove uv
        assert "uv pip install" in log, arch  # the test environment too
        assert " passed" in log and " failed" not in log, arch  # the sdist's own tests
        [built] = runs[arch]["wheels"]
        assert set(built["steps"]) >= {"setup", "build", "repair", "test"}
    assert len(outcome.results) == len(arches)
