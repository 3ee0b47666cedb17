"""Which build frontend `invoke wheels` hands cibuildwheel (pure: the project's files and
environment, and what each image was found to carry)."""

from __future__ import annotations

from pathlib import Path

import pytest

from xarch.errors import BadInput, XarchError
from xarch.wheels.frontend import (
    FAST_FRONTEND,
    ImageTools,
    ProjectFrontend,
    choose,
    frontend_name,
    parse_probe,
    read_project,
)

UV = {"reg/img@sha256:a": ImageTools(uv="0.13.8")}
NO_UV = {"reg/img@sha256:a": ImageTools(uv="0.13.8"), "reg/old@sha256:b": ImageTools(uv="")}


def project(tmp_path: Path, cibuildwheel: str) -> Path:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\nversion = "1"\n\n' + cibuildwheel
    )
    return tmp_path


@pytest.mark.parametrize(
    ("toml", "name", "where"),
    [
        ('[tool.cibuildwheel]\nbuild-frontend = "build[uv]"\n', "build[uv]", "[tool.cibuildwheel]"),
        (
            '[tool.cibuildwheel]\nbuild-frontend = "build"\n'
            '[tool.cibuildwheel.linux]\nbuild-frontend = "pip; args: -v"\n',
            "pip",
            "[tool.cibuildwheel.linux]",
        ),
        (
            '[tool.cibuildwheel]\nbuild-frontend = {name = "uv", args = ["-v"]}\n',
            "uv",
            "[tool.cibuildwheel]",
        ),
    ],
)
def test_the_projects_own_choice_is_found(tmp_path: Path, toml: str, name: str, where: str) -> None:
    got = read_project(project(tmp_path, toml), {})
    assert got.name == name
    assert where in got.where and "build-frontend" in got.where


def test_the_environment_variable_wins_over_the_file(tmp_path: Path) -> None:
    toml = '[tool.cibuildwheel]\nbuild-frontend = "build[uv]"\n'
    got = read_project(project(tmp_path, toml), {"CIBW_BUILD_FRONTEND": "build"})
    assert (got.name, got.where) == ("build", "CIBW_BUILD_FRONTEND")


def test_a_project_without_any_choice(tmp_path: Path) -> None:
    got = read_project(project(tmp_path, '[tool.cibuildwheel]\ntest-command = "true"\n'), {})
    assert got.name is None
    assert read_project(tmp_path / "missing", {}).name is None  # setup.py-only projects


def test_pip_only_settings_are_found_wherever_the_containers_get_them(tmp_path: Path) -> None:
    toml = (
        '[tool.cibuildwheel.linux]\nenvironment = { PIP_INDEX_URL = "https://mirror/simple" }\n'
        '[tool.cibuildwheel]\nenvironment-pass = ["PIP_EXTRA_INDEX_URL"]\n'
    )
    env = {"CIBW_ENVIRONMENT_LINUX": "PIP_CERT=/ca.pem FOO=1"}
    got = read_project(project(tmp_path, toml), env)
    names = {v for v, _ in got.pip_settings}
    assert names == {"PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_CERT"}
    # ... and with them, the default frontend is kept, saying which and where
    choice = choose(got, UV)
    assert choice.env == {}
    assert "PIP_INDEX_URL in pyproject.toml [tool.cibuildwheel.linux] environment" in choice.message


def test_unreadable_toml_is_bad_input_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.cibuildwheel\n")
    with pytest.raises(BadInput, match=r"pyproject\.toml: not valid TOML"):
        read_project(tmp_path, {})


def test_no_choice_and_uv_everywhere_is_build_uv_said_with_the_way_out() -> None:
    choice = choose(ProjectFrontend(name=None, where=""), UV)
    assert choice.env == {"CIBW_BUILD_FRONTEND": FAST_FRONTEND}
    assert "uv 0.13.8" in choice.message
    assert "CIBW_BUILD_FRONTEND=build" in choice.message


def test_no_choice_and_an_image_without_uv_keeps_build_naming_it() -> None:
    choice = choose(ProjectFrontend(name=None, where=""), NO_UV)
    assert choice.env == {}
    assert "reg/old@sha256:b" in choice.message and "reg/img" not in choice.message


def test_a_pip_config_file_in_an_image_keeps_build() -> None:
    images = {"reg/img@sha256:a": ImageTools(uv="0.13.8", pip_config="/etc/pip.conf")}
    choice = choose(ProjectFrontend(name=None, where=""), images)
    assert choice.env == {} and "/etc/pip.conf" in choice.message


def test_a_chosen_frontend_is_never_overridden() -> None:
    for name in ("build", "pip", "build[uv]"):
        choice = choose(ProjectFrontend(name=name, where="CIBW_BUILD_FRONTEND"), UV)
        assert choice.env == {}
        assert name in choice.message


@pytest.mark.parametrize("name", ["build[uv]", "uv"])
def test_a_uv_frontend_without_uv_in_an_image_is_refused(name: str) -> None:
    wanted = ProjectFrontend(name=name, where="pyproject.toml [tool.cibuildwheel] build-frontend")
    with pytest.raises(BadInput) as e:
        choose(wanted, NO_UV)
    assert e.value.exit_code == 2
    assert "reg/old@sha256:b" in str(e.value) and "[tool.cibuildwheel]" in str(e.value)
    assert "reg/img@sha256:a" not in str(e.value)


def test_frontend_names() -> None:
    assert frontend_name("build[uv]; args: --verbose") == "build[uv]"
    assert frontend_name({"name": "pip", "args": []}) == "pip"
    assert frontend_name(" uv ") == "uv"


def test_the_probe_output_is_read() -> None:
    assert parse_probe("uv=uv 0.13.8\n") == ImageTools(uv="0.13.8")
    assert parse_probe("uv=uv 0.11.3 (abc 2026-08-01)\npip_config=/etc/pip.conf\n") == ImageTools(
        uv="0.11.3", pip_config="/etc/pip.conf"
    )
    assert parse_probe("") == ImageTools(uv="")


# markupsafe 3.0.4's table, as published.
MARKUPSAFE = """[tool.cibuildwheel]
build-frontend = "build[uv]"

[[tool.cibuildwheel.overrides]]
select = "*-musllinux_ppc64le"
# uv is not available
build-frontend = "build"
"""


def test_an_override_applies_to_the_builds_it_selects_only(tmp_path: Path) -> None:
    got = read_project(project(tmp_path, MARKUPSAFE), {})
    aarch64 = got.for_identifiers(["cp39-manylinux_aarch64", "cp39-musllinux_aarch64"])
    assert (aarch64.name, aarch64.where) == (
        "build[uv]",
        "pyproject.toml [tool.cibuildwheel] build-frontend",
    )
    ppc = got.for_identifiers(["cp39-musllinux_ppc64le"])
    assert ppc.name == "build" and "overrides" in ppc.where


def test_an_override_alone_is_a_choice_where_it_selects(tmp_path: Path) -> None:
    toml = '[[tool.cibuildwheel.overrides]]\nselect = "cp3{9,10}-*"\nbuild-frontend = "pip"\n'
    got = read_project(project(tmp_path, toml), {})
    assert got.for_identifiers(["cp310-manylinux_aarch64"]).name == "pip"
    assert got.for_identifiers(["cp311-manylinux_aarch64"]).name is None


def test_a_uv_frontend_for_any_build_of_the_run_is_what_counts(tmp_path: Path) -> None:
    toml = '[[tool.cibuildwheel.overrides]]\nselect = "cp311-*"\nbuild-frontend = "uv"\n'
    got = read_project(project(tmp_path, toml), {}).for_identifiers(
        ["cp39-manylinux_aarch64", "cp311-manylinux_aarch64"]
    )
    assert got.name == "uv"
    with pytest.raises(BadInput):
        choose(got, NO_UV)


def test_the_environment_variable_beats_an_override(tmp_path: Path) -> None:
    got = read_project(project(tmp_path, MARKUPSAFE), {"CIBW_BUILD_FRONTEND": "pip"})
    assert got.for_identifiers(["cp39-musllinux_ppc64le"]).name == "pip"


def test_an_image_that_could_not_be_looked_into_is_not_said_to_lack_uv() -> None:
    """A project's build[uv] over an image that could not be pulled or run: the cause is
    named (exit 1, a fault of the host or registry), never "has no uv on PATH"."""
    images = {
        "reg/img@sha256:a": ImageTools(uv="0.13.8"),
        "reg/gone@sha256:b": ImageTools(uv="", unreadable="manifest unknown"),
    }
    wanted = ProjectFrontend(name="build[uv]", where="pyproject.toml [tool.cibuildwheel]")
    with pytest.raises(XarchError) as e:
        choose(wanted, images)
    assert not isinstance(e.value, BadInput) and e.value.exit_code == 1
    text = str(e.value)
    assert "reg/gone@sha256:b (manifest unknown)" in text and "could not be looked into" in text
    assert "no uv on PATH" not in text and "reg/img" not in text
