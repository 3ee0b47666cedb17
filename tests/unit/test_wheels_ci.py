"""ci-config and `invoke wheels` agree: the wheel jobs install the config's
cibuildwheel.version, and carry the same extra CA bundle option (off by default)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.unit.test_ciconfig import CONFIG, report
from xarch.ci.workflows import plan_ci, render
from xarch.errors import BadInput
from xarch.model.config import Config, load_config
from xarch.publish.cibuildwheel import host_uv_version, venv_version

REPORT = Path("build/xarch-report.json")


def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: str = "") -> Config:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "ci.yaml").write_text(extra + CONFIG)
    return load_config(Path("config/ci.yaml"))


def wheel_files(cfg: Config, **kw: object) -> tuple[dict[str, object], dict[str, object]]:
    plan = plan_ci(cfg, report(), report_file=REPORT, **kw)  # type: ignore[arg-type]
    gh = yaml.safe_load(render(plan, "github", REPORT)[".github/workflows/xarch-wheels.yml"])
    gl = yaml.safe_load(render(plan, "gitlab", REPORT)[".gitlab-ci.yml"])
    return gh, gl


def build_step(gh: dict[str, object]) -> dict[str, str]:
    steps = gh["jobs"]["linux-emulated"]["steps"]  # type: ignore[index]
    return next(s for s in steps if str(s.get("name", "")).startswith("Build wheels"))


def test_the_jobs_install_the_configs_cibuildwheel_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = config(tmp_path, monkeypatch, 'cibuildwheel:\n  version: "4.3.4"\n')
    gh, gl = wheel_files(cfg)
    # uv beside it, the stand-ins' release: a uv frontend audits abi3 wheels with it
    want = f"cibuildwheel==4.3.4 uv=={host_uv_version()}"
    assert want in build_step(gh)["run"]
    assert any(want in line for line in gl["xarch-wheels"]["script"])  # type: ignore[index]


def test_an_explicit_version_overrides_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = config(tmp_path, monkeypatch, 'cibuildwheel:\n  version: "4.3.4"\n')
    gh, _ = wheel_files(cfg, cibuildwheel="4.3.5")
    assert "cibuildwheel==4.3.5" in build_step(gh)["run"]


def test_the_ca_bundle_is_off_by_default_and_set_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = config(tmp_path, monkeypatch)
    gh, gl = wheel_files(cfg)
    assert gh["env"] == {"XARCH_CA_BUNDLE": ""}
    assert gl["xarch-wheels"]["variables"]["XARCH_CA_BUNDLE"] == ""  # type: ignore[index]
    gh, gl = wheel_files(cfg, ca_bundle="/etc/ssl/certs/proxy-ca.pem")
    assert gh["env"] == {"XARCH_CA_BUNDLE": "/etc/ssl/certs/proxy-ca.pem"}
    assert gl["xarch-wheels"]["variables"]["XARCH_CA_BUNDLE"] == "/etc/ssl/certs/proxy-ca.pem"  # type: ignore[index]
    assert 'export SSL_CERT_FILE="$XARCH_CA_BUNDLE"' in build_step(gh)["run"]


@pytest.mark.parametrize("bad", ["relative/ca.pem", "/tmp/$(id).pem", '/tmp/"x".pem'])
def test_a_ca_bundle_that_is_not_a_plain_absolute_path_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad: str
) -> None:
    cfg = config(tmp_path, monkeypatch)
    with pytest.raises(BadInput, match="expected an absolute path on the runner"):
        plan_ci(cfg, report(), report_file=REPORT, ca_bundle=bad)


def test_venv_version_reads_the_installed_distribution(tmp_path: Path) -> None:
    assert venv_version(tmp_path) == ""
    info = tmp_path / "lib/python3.11/site-packages/cibuildwheel-4.3.4.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: cibuildwheel\nVersion: 4.3.4\n")
    assert venv_version(tmp_path) == "4.3.4"
    assert venv_version(tmp_path, "uv") == ""
    info = tmp_path / "lib/python3.11/site-packages/uv-0.13.8.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.4\nName: uv\nVersion: 0.13.8\n")
    assert venv_version(tmp_path, "uv") == "0.13.8"


def test_the_host_uv_is_the_stand_ins_pinned_release() -> None:
    text = (
        Path(__file__).parents[2]
        / "src/xarch/images/resources/standin-manylinux/requirements-uv.txt"
    ).read_text()
    assert f"uv=={host_uv_version()} --hash=sha256:" in text


# The job's frontend lines, run by bash as the job runs them. Where the project or its
# environment decides, no image is looked into: `docker` here is a command that fails
# loudly, so reaching it fails the test. (The image look-up itself runs in
# tests/e2e/test_generated_ci.py against the real stand-in.)
FRONTEND_CASES = [
    ({"CIBW_BUILD_FRONTEND": "pip"}, "", "pip", "xarch: frontend pip (CIBW_BUILD_FRONTEND)"),
    ({}, '[tool.cibuildwheel]\nbuild-frontend = "build"\n', "", "as pyproject.toml sets it"),
    (
        {"CIBW_ENVIRONMENT_LINUX": "PIP_INDEX_URL=https://mirror/simple"},
        "",
        "",
        "frontend build (kept",
    ),
    ({}, "[tool.cibuildwheel]\nenvironment-pass = ['PIP_EXTRA_INDEX_URL']\n", "", "(kept"),
]


def run_frontend_lines(
    tmp_path: Path, env: dict[str, str], docker: str, toml: str = ""
) -> subprocess.CompletedProcess[str]:
    """The job's frontend lines under bash -e, with `docker` the given script."""
    from xarch.ci.workflows import FRONTEND_LINES

    (tmp_path / "pyproject.toml").write_text(toml)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(f"#!/bin/sh\n{docker}\n")
    (bin_dir / "docker").chmod(0o755)
    script = "\n".join(FRONTEND_LINES) + '\necho "FRONTEND=${CIBW_BUILD_FRONTEND:-}"\n'
    return subprocess.run(
        ["bash", "-e", "-c", script],
        cwd=tmp_path,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "CIBW_ARCHS_LINUX": "aarch64", **env},
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize(("env", "toml", "frontend", "said"), FRONTEND_CASES)
def test_the_jobs_frontend_lines_leave_a_projects_choice_alone(
    env: dict[str, str], toml: str, frontend: str, said: str, tmp_path: Path
) -> None:
    r = run_frontend_lines(tmp_path, env, "echo 'docker must not run' >&2; exit 99", toml)
    assert r.returncode == 0, r.stderr
    assert said in r.stdout
    assert f"FRONTEND={frontend}" in r.stdout
    assert "docker must not run" not in r.stderr


def test_the_jobs_frontend_lines_keep_build_when_an_image_has_no_uv(tmp_path: Path) -> None:
    # The engine answers for the image as one without uv would: sh's `command -v` fails.
    image = {"CIBW_MANYLINUX_AARCH64_IMAGE": "reg/img@sha256:" + "0" * 64}
    r = run_frontend_lines(tmp_path, image, "exit 1")
    assert r.returncode == 0, r.stderr
    assert "no uv (or a pip config file) in reg/img@sha256:" in r.stdout
    assert "FRONTEND=\n" in r.stdout


def test_the_jobs_frontend_lines_pick_build_uv_when_the_image_has_uv(tmp_path: Path) -> None:
    image = {"CIBW_MANYLINUX_AARCH64_IMAGE": "reg/img@sha256:" + "0" * 64}
    r = run_frontend_lines(tmp_path, image, "exit 0")  # `command -v uv` found it
    assert r.returncode == 0, r.stderr
    assert "FRONTEND=build[uv]" in r.stdout
    assert "CIBW_BUILD_FRONTEND=build to keep" in r.stdout


def test_a_missing_uv_release_is_named_not_blamed_on_cibuildwheel() -> None:
    from xarch.errors import BadInput as Bad
    from xarch.errors import FetchError
    from xarch.publish.cibuildwheel import _pip_failure

    def out(req: str) -> str:
        return (
            f"ERROR: Could not find a version that satisfies the requirement {req} "
            "(from versions: 0.13.7, 0.13.8)\n"
            f"ERROR: No matching distribution found for {req}\n"
        )

    e = _pip_failure("4.3.5", out("uv==0.13.99"), what="install", uv="0.13.99")
    assert isinstance(e, FetchError) and "uv 0.13.99, which xarch installs beside" in str(e)
    e = _pip_failure("9.9.9", out("cibuildwheel==9.9.9"), what="install", uv="0.13.8")
    assert isinstance(e, Bad) and "cibuildwheel 9.9.9 is not on PyPI" in str(e)
