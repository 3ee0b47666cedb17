"""ci-config: the generated GitHub and GitLab files parse, validate against the
providers' schemas (check-jsonschema's vendored copies), pin every image by digest,
and name exactly the digests of the report."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from xarch.ci.workflows import (
    CIBUILDWHEEL_VERSION,
    IMAGE_REF_RE,
    ci_config,
    plan_ci,
    render,
    unpinned_refs,
    write_files,
)
from xarch.errors import BadInput, NotPushed
from xarch.model.config import Config, load_config

REGISTRY = "registry.example.org:5000"
SHA = {
    "qemu-aarch64-static": "1" * 64,
    "qemu-ppc64le-static": "2" * 64,
    "qemu-s390x-static": "3" * 64,
    "qemu-x86_64-static": "4" * 64,
}


def digest(c: str) -> str:
    return "sha256:" + c * 64


IMAGES = {"aarch64": digest("a"), "ppc64le": digest("b"), "s390x": digest("c")}
INSTALLER_INDEX = digest("d")
PLATFORMS = {"aarch64": "linux/arm64/v8", "ppc64le": "linux/ppc64le", "s390x": "linux/s390x"}

CONFIG = f"""\
# a test config
registry:
  address: {REGISTRY}
  namespace: xarch
qemu:
  version: 7.2+dfsg-7+deb12u18+b3
  source:
    apt: {{package: qemu-user-static, version: "1:7.2+dfsg-7+deb12u18+b3"}}
  sha256:
{"".join(f"    {k}: {v}{chr(10)}" for k, v in SHA.items())}\
targets:
{
    "".join(
        f'''  - name: manylinux2014_{a}
    arch: {a}
    base: {{image: quay.io/pypa/manylinux2014_{a}, tag: "2026.08.15-1", digest: {digest("e")}}}
    family: manylinux2014
    tags: ["2026.08.15-1"]
'''
        for a in IMAGES
    )
}\
installer:
  image: binfmt
  tags: [qemu-7.2]
  busybox:
    package: busybox-static
    version: "1:1.35.0-4+deb12u1+b1"
    sha256: {{x86_64: {"5" * 64}, aarch64: {"6" * 64}}}
  hosts:
    x86_64: {{emulates: [aarch64, ppc64le, s390x]}}
    aarch64: {{emulates: [x86_64], sha256: {{qemu-x86_64-static: {"4" * 64}}}}}
"""


def record(rep: dict[str, Any]) -> dict[str, Any]:
    """The one push record of a report made by report()."""
    [only] = rep["pushes"].values()
    assert isinstance(only, dict)
    return only


def report(registry: str = REGISTRY) -> dict[str, Any]:
    name = f"{registry}/xarch/manylinux2014"
    return {
        "pushes": {
            f"{registry}/xarch": {
                "registry": registry,
                "images": [
                    {
                        "target": f"manylinux2014_{a}",
                        "ref": f"{name}:2026.08.15-1-{a}",
                        "digest": d,
                        "platform": PLATFORMS[a],
                    }
                    for a, d in IMAGES.items()
                ],
                "indexes": [
                    {
                        "family": "manylinux2014",
                        "ref": f"{name}:2026.08.15-1",
                        "digest": digest("f"),
                        "manifests": [],
                    },
                    {
                        "family": "binfmt",
                        "ref": f"{registry}/xarch/binfmt:qemu-7.2",
                        "digest": INSTALLER_INDEX,
                        "manifests": [
                            {"digest": digest("7"), "platform": "linux/amd64"},
                            {"digest": digest("8"), "platform": "linux/arm64/v8"},
                        ],
                    },
                ],
            }
        }
    }


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.chdir(tmp_path)  # the checkout root: the config's path is relative to it
    (tmp_path / "config").mkdir()
    path = tmp_path / "config" / "ci.yaml"
    path.write_text(CONFIG)
    return load_config(Path("config/ci.yaml"))


def files_for(config: Config, provider: str, rep: dict[str, Any] | None = None) -> dict[str, str]:
    plan = plan_ci(config, rep or report(), report_file=Path("build/xarch-report.json"))
    return render(plan, provider, Path("build/xarch-report.json"))


def check_jsonschema(schema: str, path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    pytest.importorskip("check_jsonschema")
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, *extra, str(path)],
        capture_output=True,
        text=True,
        check=False,
    )


GITLAB_ARGS = ("--data-transform", "gitlab-ci", "--regex-variant", "nonunicode")


# ------------------------------------------------------------------ structure and schema


@pytest.mark.parametrize("provider", ["github", "gitlab"])
def test_every_file_parses_as_yaml(config: Config, provider: str) -> None:
    files = files_for(config, provider)
    assert files
    for text in files.values():
        assert isinstance(yaml.safe_load(text), dict)


def test_github_workflows_validate_against_the_workflow_schema(
    config: Config, tmp_path: Path
) -> None:
    files = files_for(config, "github")
    assert set(files) == {
        ".github/workflows/xarch-wheels.yml",
        ".github/workflows/xarch-images.yml",
        ".github/workflows/xarch-pin-check.yml",
    }
    write_files(files, tmp_path / "out")
    for name in files:
        r = check_jsonschema("vendor.github-workflows", tmp_path / "out" / name)
        assert r.returncode == 0, f"{name}: {r.stdout}{r.stderr}"


def test_gitlab_ci_validates_against_the_gitlab_schema(config: Config, tmp_path: Path) -> None:
    files = files_for(config, "gitlab")
    assert set(files) == {".gitlab-ci.yml"}
    write_files(files, tmp_path / "out")
    r = check_jsonschema("vendor.gitlab-ci", tmp_path / "out" / ".gitlab-ci.yml", *GITLAB_ARGS)
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_schema_check_does_reject_a_broken_workflow(config: Config, tmp_path: Path) -> None:
    """The validator is live: the same workflow with a misspelt job key fails."""
    doc = yaml.safe_load(files_for(config, "github")[".github/workflows/xarch-wheels.yml"])
    doc["jobs"]["linux-emulated"]["runs_on"] = doc["jobs"]["linux-emulated"].pop("runs-on")
    bad = tmp_path / "bad.yml"
    bad.write_text(yaml.safe_dump(doc))
    assert check_jsonschema("vendor.github-workflows", bad).returncode != 0
    gl = yaml.safe_load(files_for(config, "gitlab")[".gitlab-ci.yml"])
    gl["xarch-build"]["parallel"] = {"matrixx": []}
    bad.write_text(yaml.safe_dump(gl))
    assert check_jsonschema("vendor.gitlab-ci", bad, *GITLAB_ARGS).returncode != 0


# ------------------------------------------------------------------------- pinning


@pytest.mark.parametrize("provider", ["github", "gitlab"])
def test_every_image_reference_is_pinned_by_digest(config: Config, provider: str) -> None:
    files = files_for(config, provider)
    assert len(IMAGE_REF_RE.findall("".join(files.values()))) >= 4  # installer + 3 helpers
    for name, text in files.items():
        for ref in (m.group(0) for m in IMAGE_REF_RE.finditer(text)):
            assert re.search(r"@sha256:[0-9a-f]{64}$", ref), f"{name}: {ref} is not pinned"
        # Every line that names an image (`image:`, CIBW_*_IMAGE, docker run/pull) too.
        for line in text.splitlines():
            if re.search(r"(image:|_IMAGE:|docker (run|pull|create)\b)", line) and REGISTRY in line:
                assert "@sha256:" in line, f"{name}: {line}"


def test_the_pin_regex_catches_an_unpinned_reference() -> None:
    assert unpinned_refs(f"image: {REGISTRY}/xarch/binfmt:qemu-7.2") == [
        f"{REGISTRY}/xarch/binfmt:qemu-7.2"
    ]
    assert unpinned_refs("docker run quay.io/pypa/manylinux2014_aarch64 true") == [
        "quay.io/pypa/manylinux2014_aarch64"
    ]
    assert unpinned_refs(f"x: {REGISTRY}/xarch/binfmt@{INSTALLER_INDEX}") == []
    assert unpinned_refs("uses: actions/checkout@v4\nsee https://docs.github.com/x") == []


@pytest.mark.parametrize("provider", ["github", "gitlab"])
def test_image_references_are_the_reports_digests(config: Config, provider: str) -> None:
    text = "".join(files_for(config, provider).values())
    name = f"{REGISTRY}/xarch/manylinux2014"
    for a, d in IMAGES.items():
        assert f"CIBW_MANYLINUX_{a.upper()}_IMAGE: {name}@{d}" in text
    assert f"{REGISTRY}/xarch/binfmt@{INSTALLER_INDEX}" in text
    pinned = {m.group(3)[1:] for m in IMAGE_REF_RE.finditer(text)}
    assert pinned == {*IMAGES.values(), INSTALLER_INDEX}


def test_wheel_workflow_registers_with_the_installer_and_runs_pinned_cibuildwheel(
    config: Config,
) -> None:
    doc = yaml.safe_load(files_for(config, "github")[".github/workflows/xarch-wheels.yml"])
    job = doc["jobs"]["linux-emulated"]
    assert job["strategy"]["matrix"]["arch"] == ["aarch64", "ppc64le", "s390x"]
    steps = {s.get("name", s.get("uses")): s for s in job["steps"]}
    register = next(s["run"] for n, s in steps.items() if n.startswith("Register QEMU"))
    assert (
        "docker run --rm -v /proc/sys/fs/binfmt_misc:/binfmt_misc "
        f"{REGISTRY}/xarch/binfmt@{INSTALLER_INDEX} install ${{{{ matrix.arch }}}}"
    ) in register
    assert "setup-qemu-action" not in yaml.safe_dump(doc)
    build = next(s for n, s in steps.items() if n.startswith("Build wheels"))
    assert build["env"]["CIBW_ARCHS_LINUX"] == "${{ matrix.arch }}"
    assert f"cibuildwheel=={CIBUILDWHEEL_VERSION}" in build["run"]


def test_gitlab_fans_out_per_target_and_indexes_after_all(config: Config) -> None:
    doc = yaml.safe_load(files_for(config, "gitlab")[".gitlab-ci.yml"])
    targets = [t.name for t in config.targets]
    assert doc["xarch-build"]["parallel"]["matrix"] == [{"XARCH_TARGET": targets}]
    assert doc["xarch-index"]["needs"] == ["xarch-build"]
    assert any("push-index" in line for line in doc["xarch-index"]["script"])
    assert doc["xarch-wheels"]["parallel"]["matrix"] == [
        {"CIBW_ARCHS_LINUX": ["aarch64", "ppc64le", "s390x"]}
    ]
    assert doc["xarch-pin-check"]["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "schedule"'}]


def test_github_publish_fans_out_per_target_and_indexes_after_all(config: Config) -> None:
    doc = yaml.safe_load(files_for(config, "github")[".github/workflows/xarch-images.yml"])
    build, index = doc["jobs"]["build"], doc["jobs"]["index"]
    assert build["strategy"]["matrix"]["target"] == [t.name for t in config.targets]
    runs = [s.get("run", "") for s in build["steps"]]
    assert any("build-images --config config/ci.yaml --target" in r for r in runs)
    assert any("push-arch --config config/ci.yaml" in r for r in runs)
    assert index["needs"] == ["build"]
    download = next(s for s in index["steps"] if s.get("uses", "").startswith("actions/download"))
    assert download["with"] == {"pattern": "digests-*", "path": "digests", "merge-multiple": True}
    assert any("push-index" in s.get("run", "") for s in index["steps"])


def test_a_private_registry_gets_a_login_step_a_loopback_one_a_warning(
    config: Config, tmp_path: Path
) -> None:
    wheels = files_for(config, "github")[".github/workflows/xarch-wheels.yml"]
    assert f"docker login {REGISTRY}" in wheels and "secrets.XARCH_REGISTRY_PASSWORD" in wheels
    local = tmp_path / "config" / "local.yaml"
    local.write_text(CONFIG.replace(REGISTRY, "127.0.0.1:5000"))
    cfg = load_config(Path("config/local.yaml"))
    plan = plan_ci(cfg, report("127.0.0.1:5000"), report_file=Path("r.json"))
    assert any("loopback" in w for w in plan.warnings)
    assert "docker login" not in "".join(render(plan, "github", Path("r.json")).values())


# ------------------------------------------------------------------------- refusals


def test_no_installer_section_says_build_and_push_the_installer_first(
    config: Config, tmp_path: Path
) -> None:
    path = tmp_path / "config" / "noinst.yaml"
    path.write_text(CONFIG.split("installer:")[0])
    cfg = load_config(Path("config/noinst.yaml"))
    with pytest.raises(BadInput, match="build and push the installer first"):
        plan_ci(cfg, report(), report_file=Path("r.json"))


def test_no_installer_in_the_report_says_build_and_push_it_first(config: Config) -> None:
    rep = report()
    record(rep)["indexes"] = [i for i in record(rep)["indexes"] if i["family"] != "binfmt"]
    with pytest.raises(NotPushed, match="build and push the installer first") as err:
        plan_ci(config, rep, report_file=Path("r.json"))
    assert "--target binfmt-installer" in str(err.value)


def test_a_target_without_a_pushed_digest_is_refused(config: Config) -> None:
    rep = report()
    record(rep)["images"] = record(rep)["images"][:-1]
    with pytest.raises(NotPushed, match=r"no pushed digest .* manylinux2014_s390x"):
        plan_ci(config, rep, report_file=Path("r.json"))


def test_a_report_of_another_registry_has_no_record_for_this_config(config: Config) -> None:
    with pytest.raises(NotPushed, match=r"no pushed images recorded for .* holds pushes to other"):
        plan_ci(config, report("other.example.org"), report_file=Path("r.json"))


def test_the_record_of_this_config_is_used_among_others(config: Config) -> None:
    rep = report()
    other = report("other.example.org")
    record(other)["images"][0]["digest"] = digest("0")
    rep["pushes"].update(other["pushes"])
    plan = plan_ci(config, rep, report_file=Path("r.json"))
    assert digest("0") not in {w.image.digest for w in plan.wheel_images}
    assert IMAGES["aarch64"] in {w.image.digest for w in plan.wheel_images}


def test_no_report_says_push_first(config: Config) -> None:
    with pytest.raises(NotPushed, match="push-images"):
        plan_ci(config, {}, report_file=Path("r.json"))


def test_two_families_with_one_arch_need_family(config: Config, tmp_path: Path) -> None:
    two = CONFIG.replace(
        "installer:",
        f"""  - name: other_aarch64
    arch: aarch64
    base: {{image: quay.io/pypa/manylinux_2_28_aarch64, tag: x, digest: {digest("9")}}}
    family: manylinux_2_28
    tags: [x]
installer:""",
    )
    (tmp_path / "config" / "two.yaml").write_text(two)
    cfg = load_config(Path("config/two.yaml"))
    with pytest.raises(BadInput, match="--family"):
        plan_ci(cfg, report(), report_file=Path("r.json"))
    plan = plan_ci(cfg, report(), report_file=Path("r.json"), families=["manylinux2014"])
    assert [w.target for w in plan.wheel_images] == [
        "manylinux2014_aarch64",
        "manylinux2014_ppc64le",
        "manylinux2014_s390x",
    ]


def test_existing_files_are_not_overwritten_without_force(config: Config, tmp_path: Path) -> None:
    out = tmp_path / "repo"
    lines: list[str] = []
    rep = report()
    first = ci_config(
        config, "gitlab", output=out, report=rep, report_file=Path("r.json"), log=lines.append
    )
    assert [w.status for w in first] == ["written"]
    again = ci_config(
        config, "gitlab", output=out, report=rep, report_file=Path("r.json"), log=lines.append
    )
    assert [w.status for w in again] == ["unchanged"]
    moved = copy.deepcopy(rep)
    record(moved)["images"][0]["digest"] = digest("0")
    before = (out / ".gitlab-ci.yml").read_text()
    with pytest.raises(BadInput, match="--force"):
        ci_config(config, "gitlab", output=out, report=moved, report_file=Path("r.json"))
    assert (out / ".gitlab-ci.yml").read_text() == before
    replaced = ci_config(
        config, "gitlab", output=out, report=moved, report_file=Path("r.json"), force=True
    )
    assert [w.status for w in replaced] == ["replaced"]
    assert digest("0") in (out / ".gitlab-ci.yml").read_text()


def test_builds_without_a_helper_image_of_their_kind_are_skipped(config: Config) -> None:
    """No musllinux family here: cibuildwheel must not fall back to its own images."""
    text = files_for(config, "github")[".github/workflows/xarch-wheels.yml"]
    doc = yaml.safe_load(text)
    steps = doc["jobs"]["linux-emulated"]["steps"]
    build = next(s for s in steps if s.get("name", "").startswith("Build wheels"))
    assert build["env"]["CIBW_SKIP"] == "*-musllinux_*"
    assert "CIBW_SKIP: '*-musllinux_*'  # no helper image of this kind here" in text


def test_a_musllinux_family_sets_the_musllinux_variable(config: Config) -> None:
    from dataclasses import replace

    from xarch.ci.workflows import cibw_variable

    aarch64 = config.targets[0]
    assert cibw_variable(aarch64) == "CIBW_MANYLINUX_AARCH64_IMAGE"
    assert cibw_variable(replace(aarch64, family="musllinux_1_2")) == (
        "CIBW_MUSLLINUX_AARCH64_IMAGE"
    )
