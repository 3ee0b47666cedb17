"""The CI harness (tests/e2e/ci_harness.py) on small synthetic workflows: substitution,
env layering, steps in order under bash -e, the uses: stand-ins, and refusals. Then
the wheel jobs ci-config generates, checked through the harness without running them
(every expression known, every action stood in, every script valid bash): changing the
generator in a way the harness cannot run fails here, before the end-to-end run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.ci_harness import (
    HarnessError,
    JobFailed,
    gitlab_matrix_entries,
    layer_env,
    matrix_entries,
    run_github_job,
    run_gitlab_job,
    substitute,
)
from tests.unit.test_ciconfig import CONFIG, report
from xarch.ci.workflows import plan_ci, render
from xarch.model.config import load_config

#: What a run without the registry secrets gets (GitHub gives "" for unset secrets).
SECRETS = {"XARCH_REGISTRY_USER": "", "XARCH_REGISTRY_PASSWORD": ""}


def quiet(_: str) -> None:
    pass


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, Path]:
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text("[project]\nname = 'p'\n")
    return {"project": project, "workspace": tmp_path / "ws", "temp": tmp_path / "tmp"}


def gh(
    workflow: dict[str, Any], dirs: dict[str, Path], matrix: dict[str, str] | None = None, **kw: Any
) -> list[Any]:
    return run_github_job(
        workflow,
        "j",
        matrix or {},
        project=dirs["project"],
        workspace=dirs["workspace"],
        temp=dirs["temp"],
        log=quiet,
        **kw,
    )


# --------------------------------------------------------------------------- substitution


def test_substitute_matrix_and_env() -> None:
    ctx = {"matrix": {"arch": "aarch64"}, "env": {"X": "1"}}
    assert substitute("a=${{ matrix.arch }} x=${{env.X}}", ctx, "here") == "a=aarch64 x=1"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("${{ secrets.TOKEN }}", "${{ secrets.TOKEN }} is not defined here"),
        ("${{ github.ref }}", "unsupported expression ${{ github.ref }}"),
        ("${{ format('{0}', matrix.arch) }}", "unsupported expression"),
        ("${{ matrix.nope }}", "${{ matrix.nope }} is not defined here"),
    ],
)
def test_substitute_refuses_what_it_cannot_know(text: str, fragment: str) -> None:
    with pytest.raises(HarnessError) as e:
        substitute(text, {"matrix": {"arch": "x"}, "env": {}}, "jobs.j.steps[1].run")
    assert str(e.value).startswith("jobs.j.steps[1].run: ")
    assert fragment in str(e.value)


def test_env_layers_later_wins_and_sees_earlier() -> None:
    env = layer_env(
        [
            ("workflow", {"A": "w", "B": "w"}),
            ("job", {"B": "j", "C": "${{ env.A }}-${{ matrix.arch }}"}),
            ("step", {"A": "s", "D": True}),
        ],
        {"arch": "ppc64le"},
    )
    assert env == {"A": "s", "B": "j", "C": "w-ppc64le", "D": "true"}


def test_matrix_entries_are_the_product() -> None:
    assert matrix_entries({"matrix": {"arch": ["a", "b"], "py": ["3.9"]}}) == [
        {"arch": "a", "py": "3.9"},
        {"arch": "b", "py": "3.9"},
    ]
    with pytest.raises(HarnessError, match="include"):
        matrix_entries({"matrix": {"include": [{"arch": "a"}]}})
    assert gitlab_matrix_entries({"parallel": {"matrix": [{"A": ["1", "2"]}]}}) == [
        {"A": "1"},
        {"A": "2"},
    ]


# --------------------------------------------------------------------------- GitHub jobs


def test_steps_run_in_order_with_layered_env(dirs: dict[str, Path]) -> None:
    wf = {
        "env": {"WHO": "workflow", "KEEP": "k"},
        "jobs": {
            "j": {
                "env": {"WHO": "job"},
                "steps": [
                    {"uses": "actions/checkout@v4"},
                    {"run": 'echo "1 $WHO $KEEP ${{ matrix.arch }}" >> log.txt'},
                    {"env": {"WHO": "step"}, "run": 'echo "2 $WHO" >> log.txt'},
                    {"uses": "actions/upload-artifact@v4", "with": {"path": "log.txt"}},
                ],
            }
        },
    }
    results = gh(wf, dirs, {"arch": "aarch64"})
    log = (dirs["workspace"] / "log.txt").read_text()
    assert log == "1 job k aarch64\n2 step\n"
    assert (dirs["workspace"] / "pyproject.toml").is_file()  # the checkout
    assert results[-1].files == [str(dirs["workspace"] / "log.txt")]


def test_a_failing_command_stops_the_step_and_the_job(dirs: dict[str, Path]) -> None:
    wf = {
        "jobs": {
            "j": {
                "steps": [
                    {"name": "fails", "run": "echo before\nfalse\necho after > after.txt"},
                    {"name": "never", "run": "touch never.txt"},
                ]
            }
        }
    }
    with pytest.raises(JobFailed) as e:
        gh(wf, dirs)
    assert e.value.step == "fails" and e.value.returncode == 1
    assert "before" in e.value.output
    assert not (dirs["workspace"] / "after.txt").exists()  # bash -e
    assert not (dirs["workspace"] / "never.txt").exists()


def test_an_unknown_action_is_refused_by_name(dirs: dict[str, Path]) -> None:
    wf = {"jobs": {"j": {"steps": [{"uses": "docker/setup-qemu-action@v3"}]}}}
    with pytest.raises(HarnessError, match="docker/setup-qemu-action@v3"):
        gh(wf, dirs)


def test_an_unsupported_step_key_is_refused(dirs: dict[str, Path]) -> None:
    wf = {"jobs": {"j": {"steps": [{"run": "true", "shell": "python"}]}}}
    with pytest.raises(HarnessError, match=r"unsupported key.*shell"):
        gh(wf, dirs)


def test_upload_of_missing_files_fails_when_asked_to(dirs: dict[str, Path]) -> None:
    wf = {
        "jobs": {
            "j": {
                "steps": [
                    {
                        "uses": "actions/upload-artifact@v4",
                        "with": {"path": "wheelhouse/*.whl", "if-no-files-found": "error"},
                    }
                ]
            }
        }
    }
    with pytest.raises(JobFailed, match="no files found"):
        gh(wf, dirs)


# --------------------------------------------------------------------------- GitLab jobs


def test_gitlab_script_with_variables_and_matrix(dirs: dict[str, Path]) -> None:
    doc = {
        "variables": {"TOP": "t", "OVER": "top"},
        "job": {
            "variables": {"OVER": "job"},
            "parallel": {"matrix": [{"ARCH": ["a", "b"]}]},
            "script": ['echo "$TOP $OVER $ARCH" > out.txt', "test -f pyproject.toml"],
            "artifacts": {"paths": ["out.txt"]},
        },
    }
    [entry, _] = gitlab_matrix_entries(doc["job"])
    [res] = run_gitlab_job(
        doc,
        "job",
        entry,
        project=dirs["project"],
        workspace=dirs["workspace"],
        temp=dirs["temp"],
        log=quiet,
    )
    assert (dirs["workspace"] / "out.txt").read_text() == "t job a\n"
    assert res.files == [str(dirs["workspace"] / "out.txt")]


def test_gitlab_failing_line_stops_the_job(dirs: dict[str, Path]) -> None:
    doc = {"job": {"script": ["false", "touch after.txt"]}}
    with pytest.raises(JobFailed):
        run_gitlab_job(
            doc,
            "job",
            {},
            project=dirs["project"],
            workspace=dirs["workspace"],
            temp=dirs["temp"],
            log=quiet,
        )
    assert not (dirs["workspace"] / "after.txt").exists()


def test_gitlab_before_script_is_refused(dirs: dict[str, Path]) -> None:
    doc = {"job": {"before_script": ["x"], "script": ["true"]}}
    with pytest.raises(HarnessError, match="before_script"):
        run_gitlab_job(
            doc,
            "job",
            {},
            project=dirs["project"],
            workspace=dirs["workspace"],
            temp=dirs["temp"],
            log=quiet,
        )


# --------------------------------------------------------------------------- generated jobs


@pytest.fixture
def generated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "ci.yaml").write_text(CONFIG)
    cfg = load_config(Path("config/ci.yaml"))
    plan = plan_ci(cfg, report(), report_file=Path("build/xarch-report.json"))
    out: dict[str, Any] = {}
    for provider in ("github", "gitlab"):
        for name, text in render(plan, provider, Path("build/xarch-report.json")).items():
            out[name] = yaml.safe_load(text)
    return out


def test_the_generated_github_wheel_job_is_runnable_by_the_harness(
    generated: dict[str, Any], dirs: dict[str, Path]
) -> None:
    wf = generated[".github/workflows/xarch-wheels.yml"]
    job = "linux-emulated"
    entries = matrix_entries(wf["jobs"][job].get("strategy"))
    assert [e["arch"] for e in entries] == ["aarch64", "ppc64le", "s390x"]
    for entry in entries:
        results = run_github_job(
            wf,
            job,
            entry,
            project=dirs["project"],
            workspace=dirs["workspace"],
            temp=dirs["temp"],
            secrets=SECRETS,
            dry_run=True,
            log=quiet,
        )
        assert [r.kind for r in results] == ["checkout", "run", "run", "run", "upload-artifact"]
    # The CA bundle is off by default in the generated file.
    assert wf["env"]["XARCH_CA_BUNDLE"] == ""


def test_the_generated_gitlab_wheel_job_is_runnable_by_the_harness(
    generated: dict[str, Any], dirs: dict[str, Path]
) -> None:
    doc = generated[".gitlab-ci.yml"]
    entries = gitlab_matrix_entries(doc["xarch-wheels"])
    assert [e["CIBW_ARCHS_LINUX"] for e in entries] == ["aarch64", "ppc64le", "s390x"]
    for entry in entries:
        run_gitlab_job(
            doc,
            "xarch-wheels",
            entry,
            project=dirs["project"],
            workspace=dirs["workspace"],
            temp=dirs["temp"],
            dry_run=True,
            log=quiet,
        )


def test_a_generator_change_the_harness_cannot_run_fails(
    generated: dict[str, Any], dirs: dict[str, Path]
) -> None:
    """What a broken generator looks like to the harness: an unknown expression."""
    wf = generated[".github/workflows/xarch-wheels.yml"]
    wf["jobs"]["linux-emulated"]["steps"][2]["run"] += "\necho ${{ inputs.arch }}\n"
    with pytest.raises(HarnessError, match=r"inputs\.arch"):
        run_github_job(
            wf,
            "linux-emulated",
            {"arch": "aarch64"},
            project=dirs["project"],
            workspace=dirs["workspace"],
            temp=dirs["temp"],
            secrets=SECRETS,
            dry_run=True,
            log=quiet,
        )
