"""The generated CI runs as written: the wheel job of `ci-config --provider github`
(and the GitLab one) run step by step on this host by tests/e2e/ci_harness.py, against
the offline helper images as the quick start pushed them, on the cext sample project.
Every `run:` step runs under `bash -e` with the workflow's, job's and step's env and the
matrix substituted; checkout is a copy of the project, upload-artifact checks that the
wheels exist. A change to the generator that breaks the job fails here.

The job's own registration step runs xarch's installer image; with a handler already
registered (these tests require one, see conftest.need_handler) it keeps that one.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.e2e.ci_harness import (
    gitlab_matrix_entries,
    matrix_entries,
    run_github_job,
    run_gitlab_job,
)
from tests.e2e.conftest import PROJECTS, Pushed, need_handler
from xarch.ci.workflows import plan_ci, render
from xarch.errors import NotPushed
from xarch.model.report import read_report

pytestmark = [pytest.mark.docker, pytest.mark.registry, pytest.mark.emulation]

# One architecture runs the generated jobs (minutes under emulation); the emulated
# architectures' matrix entries are checked in test_emulated_arches.py.
ARCHES = ("aarch64",)


def generated(pushed: Pushed, provider: str, ca_bundle: str | None) -> dict[str, object]:
    try:
        plan = plan_ci(
            pushed.config,
            read_report(pushed.report),
            report_file=pushed.report,
            ca_bundle=ca_bundle or "",
        )
    except NotPushed as e:  # the wheel job registers emulation with the installer image
        pytest.skip(str(e))
    return {
        name: yaml.safe_load(text) for name, text in render(plan, provider, pushed.report).items()
    }


def wheels_for(files: list[str], arch: str) -> list[str]:
    return [f for f in files if f.endswith(".whl") and f"_{arch}" in Path(f).name]


@pytest.mark.parametrize("arch", ARCHES)
def test_generated_github_wheel_job_runs_as_written(
    arch: str, pushed: Pushed, handlers: set[str], ca_bundle: str | None, tmp_path: Path
) -> None:
    need_handler(handlers, arch)
    wf = generated(pushed, "github", ca_bundle)[".github/workflows/xarch-wheels.yml"]
    assert isinstance(wf, dict)
    [entry] = [
        e for e in matrix_entries(wf["jobs"]["linux-emulated"]["strategy"]) if e["arch"] == arch
    ]
    results = run_github_job(
        wf,
        "linux-emulated",
        entry,
        project=PROJECTS / "cext",
        workspace=tmp_path / "workspace",
        temp=tmp_path / "runner-temp",
    )
    upload = results[-1]
    assert upload.kind == "upload-artifact"
    [wheel] = wheels_for(upload.files, arch)
    assert "-cp39-cp39-manylinux" in Path(wheel).name
    # cibuildwheel's test-command (the project's pytest suite) ran in the image.
    build = next(r for r in results if r.name.startswith("Build wheels"))
    assert " passed" in build.output
    # The sample names no frontend and the stand-in has uv: the job picked build[uv].
    assert "xarch: frontend build[uv]" in build.output
    assert "--installer=uv" in build.output


@pytest.mark.parametrize("arch", ARCHES)
def test_generated_gitlab_wheel_job_runs_as_written(
    arch: str, pushed: Pushed, handlers: set[str], ca_bundle: str | None, tmp_path: Path
) -> None:
    need_handler(handlers, arch)
    doc = generated(pushed, "gitlab", ca_bundle)[".gitlab-ci.yml"]
    assert isinstance(doc, dict)
    job = doc["xarch-wheels"]
    [entry] = [e for e in gitlab_matrix_entries(job) if e["CIBW_ARCHS_LINUX"] == arch]
    [result] = run_gitlab_job(
        doc,
        "xarch-wheels",
        entry,
        project=PROJECTS / "cext",
        workspace=tmp_path / "workspace",
        temp=tmp_path / "tmp",
    )
    [wheel] = wheels_for(result.files, arch)
    assert "-cp39-cp39-manylinux" in Path(wheel).name
    assert " passed" in result.output
    assert "xarch: frontend build[uv]" in result.output
