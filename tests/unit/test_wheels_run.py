"""`invoke wheels`' pure parts: the run plan, the environment handed to cibuildwheel (image
variables, the extra CA bundle merged with the user's own settings), the selection
check, and the staging that keeps a failed run's wheels out of --output.

The orchestration tests run a stand-in for the cibuildwheel executable (a script that
prints what cibuildwheel prints and writes a file named like a wheel): cibuildwheel
itself needs Docker; the real one runs in tests/e2e.
"""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest

from xarch.errors import BadInput, NotPushed
from xarch.model.config import Config, load_config
from xarch.model.naming import helper_ref
from xarch.model.report import read_report, write_push_record
from xarch.publish.pull import PushedRef
from xarch.wheels import run as wheels_run
from xarch.wheels.frontend import ImageTools
from xarch.wheels.run import (
    CONTAINER_CA_BUNDLE,
    WheelBuildError,
    WheelRun,
    build_wheels,
    ca_environment,
    check_ca_bundle,
    check_project,
    check_selection,
    match_files,
    plan_runs,
    run_env,
    summary_files,
    wheel_timings,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
CEXT = REPO_ROOT / "tests/e2e/projects/cext"
SHA = "1" * 64
REG = "127.0.0.1:5000/xarch"


def config(tmp_path: Path, families: list[tuple[str, str]]) -> Config:
    targets = "".join(
        f"""
  - name: {fam}_{arch}
    arch: {arch}
    base: {{image: quay.io/pypa/{fam}_{arch}, tag: t, digest: sha256:{"e" * 64}}}
    family: {fam}
    tags: [t]
"""
        for fam, arch in families
    )
    p = tmp_path / "images.yaml"
    p.write_text(
        f"""registry: {{address: 127.0.0.1:5000, namespace: xarch}}
qemu:
  version: "7.2"
  source: {{apt: {{package: qemu-user-static, version: "1:7.2"}}}}
  sha256: {{qemu-aarch64-static: {SHA}, qemu-ppc64le-static: {SHA}}}
targets:{targets}"""
    )
    return load_config(p)


def refs_for(cfg: Config) -> dict[str, PushedRef]:
    return {
        t.name: PushedRef(
            target=t.name,
            name=cfg.registry.image_name(t.family),
            digest=f"sha256:{str(i) * 64}",
            tag_refs=(),
        )
        for i, t in enumerate(cfg.targets)
    }


# --------------------------------------------------------------------------- plan


def test_one_run_per_arch_with_its_manylinux_and_musllinux_image(tmp_path: Path) -> None:
    cfg = config(
        tmp_path,
        [("manylinux2014", "aarch64"), ("musllinux_1_2", "aarch64"), ("manylinux2014", "ppc64le")],
    )
    runs = plan_runs(cfg.targets, refs_for(cfg))
    assert [(r.arch.name, dict(r.images)) for r in runs] == [
        (
            "aarch64",
            {
                "CIBW_MANYLINUX_AARCH64_IMAGE": f"{REG}/manylinux2014@sha256:{'0' * 64}",
                "CIBW_MUSLLINUX_AARCH64_IMAGE": f"{REG}/musllinux_1_2@sha256:{'1' * 64}",
            },
        ),
        (
            "ppc64le",
            {"CIBW_MANYLINUX_PPC64LE_IMAGE": f"{REG}/manylinux2014@sha256:{'2' * 64}"},
        ),
    ]


def test_two_manylinux_families_of_one_arch_are_two_runs(tmp_path: Path) -> None:
    cfg = config(tmp_path, [("manylinux2014", "aarch64"), ("manylinux_2_28", "aarch64")])
    runs = plan_runs(cfg.targets, refs_for(cfg))
    assert [r.targets for r in runs] == [("manylinux2014_aarch64",), ("manylinux_2_28_aarch64",)]


# --------------------------------------------------------------------------- environment


def aarch64_run() -> WheelRun:
    from xarch.model.arch import get_arch

    return WheelRun(
        arch=get_arch("aarch64"),
        images={"CIBW_MANYLINUX_AARCH64_IMAGE": "r/x@sha256:" + "0" * 64},
        targets=("t",),
    )


def test_run_env_sets_the_arch_and_images_and_keeps_the_users_variables() -> None:
    user = {"CIBW_TEST_COMMAND": "pytest", "CIBW_BUILD": "cp311-*", "PATH": "/bin"}
    env = run_env(user, aarch64_run())
    assert env == {
        **user,
        "CIBW_ARCHS_LINUX": "aarch64",
        "CIBW_MANYLINUX_AARCH64_IMAGE": "r/x@sha256:" + "0" * 64,
    }
    assert "SSL_CERT_FILE" not in env  # the CA bundle is off by default


def test_ca_bundle_prepends_to_the_configs_environment_by_inherit(tmp_path: Path) -> None:
    env = ca_environment({}, tmp_path / "ca.pem")
    assert env == {
        "SSL_CERT_FILE": str(tmp_path / "ca.pem"),
        "CIBW_ENVIRONMENT_LINUX": " ".join(
            f"{v}={CONTAINER_CA_BUNDLE}"
            for v in ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")
        ),
        "CIBW_INHERIT": "environment-linux: prepend",
    }


def test_ca_bundle_keeps_the_users_inherit_rules(tmp_path: Path) -> None:
    env = ca_environment({"CIBW_INHERIT": "before-all: append"}, tmp_path / "ca.pem")
    assert env["CIBW_INHERIT"] == "before-all: append; environment-linux: prepend"


def test_ca_bundle_goes_before_the_users_own_linux_environment(tmp_path: Path) -> None:
    env = ca_environment({"CIBW_ENVIRONMENT_LINUX": 'FOO=1 PIP_CERT="/mine.pem"'}, tmp_path / "c")
    assert env["CIBW_ENVIRONMENT_LINUX"].endswith(' FOO=1 PIP_CERT="/mine.pem"')
    assert env["CIBW_ENVIRONMENT_LINUX"].startswith(f"PIP_CERT={CONTAINER_CA_BUNDLE} ")
    # Their value already replaced the lower levels: no inherit rule changes that.
    assert "CIBW_INHERIT" not in env


def test_check_ca_bundle_refuses_a_missing_or_non_pem_file(tmp_path: Path) -> None:
    assert check_ca_bundle(None) is None
    with pytest.raises(BadInput, match="no such file"):
        check_ca_bundle(str(tmp_path / "nope.pem"))
    (tmp_path / "x.pem").write_text("not a certificate")
    with pytest.raises(BadInput, match="not a PEM certificate bundle"):
        check_ca_bundle(str(tmp_path / "x.pem"))


# --------------------------------------------------------------------------- checks


def test_a_directory_without_a_project_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match=r"no pyproject\.toml or setup\.py"):
        check_project(tmp_path)
    with pytest.raises(BadInput, match="not a directory"):
        check_project(tmp_path / "missing")
    assert check_project(CEXT) == CEXT


def test_selection_without_any_build_is_refused() -> None:
    with pytest.raises(BadInput, match="has no Linux aarch64 build"):
        check_selection(aarch64_run(), [], CEXT)


def test_selection_of_a_kind_without_image_is_refused() -> None:
    with pytest.raises(BadInput, match="builds cp39-musllinux_aarch64, but no musllinux"):
        check_selection(aarch64_run(), ["cp39-manylinux_aarch64", "cp39-musllinux_aarch64"], CEXT)
    check_selection(aarch64_run(), ["cp39-manylinux_aarch64"], CEXT)


# --------------------------------------------------------------------------- output parsing


def test_wheel_timings_from_cibuildwheels_output() -> None:
    lines = [
        (10.0, "\x1b[1m\x1b[34mBuilding cp39-manylinux_aarch64 wheel\x1b[0m\n"),
        (11.0, "CPython 3.9 manylinux aarch64\n"),
        (75.5, "\x1b[32m✓ \x1b[0mcp39-manylinux_aarch64 finished in 1 minute\n"),
    ]
    (w,) = wheel_timings(lines)
    assert (w.identifier, w.seconds) == ("cp39-manylinux_aarch64", 65.5)
    assert w.steps == {}
    match_files(
        [w],
        [
            "x-0.1.0-cp39-cp39-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
            "x-0.1.0-cp39-cp39-manylinux_2_17_ppc64le.manylinux2014_ppc64le.whl",
        ],
    )
    assert w.files == ["x-0.1.0-cp39-cp39-manylinux_2_17_aarch64.manylinux2014_aarch64.whl"]


def test_an_abi3_wheel_is_tied_to_its_build_by_cibuildwheels_summary() -> None:
    """psutil 7.2.2 built by cp39 is `cp36-abi3`: no `-cp39-` in its name, so only
    cibuildwheel's closing summary says which build made it. Its host-side audit is
    timed as a step of its own."""
    abi3 = "psutil-7.2.2-cp36-abi3-manylinux2014_aarch64.manylinux_2_17_aarch64.whl"
    pad = " " * 70
    text = f"""Building cp39-manylinux_aarch64 wheel
Repairing wheel...
{pad}✓ 2.70s
Auditing wheel...
Running audit command: abi3audit --strict --report /tmp/audit/{abi3}
{pad}✓ 2.38s
Testing wheel...
{pad}✓ 5.78s

✓ cp39-manylinux_aarch64 finished in 30 seconds

1 wheel produced in 32 seconds
  cp39-manylinux_aarch64: {abi3} 152.1 kB in 30 seconds, SHA256={"b3" * 32}
"""
    lines = [(float(n), ln + "\n") for n, ln in enumerate(text.splitlines())]
    (w,) = wheel_timings(lines)
    assert w.steps == {"repair": 2.7, "audit": 2.38, "test": 5.78}
    assert summary_files(lines) == {"cp39-manylinux_aarch64": [abi3]}
    match_files([w], [abi3])
    assert w.files == []  # the tag alone cannot tell
    match_files([w], [abi3], summary_files(lines))
    assert w.files == [abi3]
    result = wheels_run.RunResult(run=aarch64_run(), identifiers=[w.identifier], status="ok")
    result.wheels = [w]
    table = wheels_run.summary_table(
        wheels_run.WheelsOutcome(output=Path("out"), results=[result], written=[], cibuildwheel="")
    )
    head, row = table.splitlines()[:2]
    assert head.split() == [
        "ARCH",
        "IDENTIFIER",
        "SETUP",
        "BUILD",
        "REPAIR",
        "TEST",
        "AUDIT",
        "TOTAL",
        "WHEEL",
    ]
    assert row.split()[-3:] == ["2.4s", "9.0s", abi3]  # the lines are a second apart


# --------------------------------------------------------------------------- orchestration

STAND_IN = """\
#!{python}
import os, sys, pathlib
arch = os.environ["CIBW_ARCHS_LINUX"]
if "--print-build-identifiers" in sys.argv:
    print(f"cp39-manylinux_{{arch}}")
    sys.exit(0)
out = pathlib.Path(sys.argv[sys.argv.index("--output-dir") + 1])
print(f"Building cp39-manylinux_{{arch}} wheel", flush=True)
meet = os.environ.get("STAND_IN_MEET")  # wait until the other run is under way too
if meet:
    import time
    pathlib.Path(meet, arch).touch()
    deadline = time.monotonic() + 20
    while len(list(pathlib.Path(meet).iterdir())) < 2:
        if time.monotonic() > deadline:
            print("error: ran alone")
            sys.exit(3)
        time.sleep(0.05)
for name in ("SSL_CERT_FILE", "CIBW_ENVIRONMENT_LINUX", "CIBW_INHERIT", "CIBW_BUILD_FRONTEND"):
    print(f"env {{name}}={{os.environ.get(name, '<unset>')}}")
if os.environ.get("STAND_IN_FAIL") == arch:
    print("error: test-command failed: 1 failed, 2 passed")
    sys.exit(1)
(out / f"x-0.1.0-cp39-cp39-manylinux_2_17_{{arch}}.whl").write_text("wheel")
print(f"✓ cp39-manylinux_{{arch}} finished in 2 seconds")
"""


#: What each image offers a frontend, as the look inside it would report (the real look
#: runs the image's own sh under emulation: tests/e2e).
IMAGE_TOOLS: dict[str, ImageTools] = {}


@pytest.fixture
def stand_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XARCH_BUILD_DIR", str(tmp_path / "build"))  # the logs go there
    IMAGE_TOOLS.clear()
    monkeypatch.setattr(
        wheels_run,
        "image_tools",
        lambda ref, arch, log=print: IMAGE_TOOLS.get(ref, ImageTools(uv="0.13.8")),
    )
    exe = tmp_path / "cibuildwheel"
    exe.write_text(STAND_IN.format(python=sys.executable))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return exe


def pushed(tmp_path: Path, cfg: Config) -> Path:
    report = tmp_path / "report.json"
    images = [
        {
            "target": t.name,
            "ref": helper_ref(cfg, t, t.tags[0]),
            "digest": f"sha256:{str(i) * 64}",
            "platform": t.arch.platform,
        }
        for i, t in enumerate(cfg.targets)
    ]
    write_push_record(cfg, {"registry": cfg.registry.address, "images": images}, report)
    return report


def test_wheels_reach_output_and_the_report_when_every_run_passed(
    tmp_path: Path, stand_in: Path
) -> None:
    cfg = config(tmp_path, [("manylinux2014", "aarch64"), ("manylinux2014", "ppc64le")])
    report = pushed(tmp_path, cfg)
    out = tmp_path / "wheelhouse"
    outcome = build_wheels(
        cfg,
        project=CEXT,
        output=out,
        report=report,
        environ={"PATH": "/usr/bin:/bin"},
        cibuildwheel_exe=stand_in,
        log=lambda _: None,
    )
    assert sorted(p.name for p in out.iterdir()) == [
        "x-0.1.0-cp39-cp39-manylinux_2_17_aarch64.whl",
        "x-0.1.0-cp39-cp39-manylinux_2_17_ppc64le.whl",
    ]
    assert outcome.ok
    assert "env SSL_CERT_FILE=<unset>" in (tmp_path / "build/wheels/1-aarch64.log").read_text()
    section = read_report(report)["wheels"]
    assert section["ok"] is True
    assert [r["arch"] for r in section["runs"]] == ["aarch64", "ppc64le"]
    assert section["runs"][0]["images"] == {
        "CIBW_MANYLINUX_AARCH64_IMAGE": f"127.0.0.1:5000/xarch/manylinux2014@sha256:{'0' * 64}"
    }
    assert section["runs"][0]["wheels"][0]["identifier"] == "cp39-manylinux_aarch64"
    assert not list(tmp_path.glob(".xarch-wheels-*"))  # staging removed


def test_a_failing_run_leaves_output_untouched_and_shows_the_log_tail(
    tmp_path: Path, stand_in: Path
) -> None:
    cfg = config(tmp_path, [("manylinux2014", "aarch64"), ("manylinux2014", "ppc64le")])
    report = pushed(tmp_path, cfg)
    out = tmp_path / "wheelhouse"
    out.mkdir()
    (out / "old.whl").write_text("kept")
    with pytest.raises(WheelBuildError) as e:
        build_wheels(
            cfg,
            project=CEXT,
            output=out,
            report=report,
            environ={"PATH": "/usr/bin:/bin", "STAND_IN_FAIL": "ppc64le"},
            cibuildwheel_exe=stand_in,
            log=lambda _: None,
        )
    assert e.value.exit_code == 1
    assert "cibuildwheel failed for ppc64le" in str(e.value)
    assert "test-command failed: 1 failed, 2 passed" in str(e.value)
    assert (tmp_path / "build/wheels/2-ppc64le.log").is_file()
    # The aarch64 wheel that was built is not in the output either.
    assert [p.name for p in out.iterdir()] == ["old.whl"]
    section = read_report(report)["wheels"]
    assert section["ok"] is False and section["written"] == []
    assert [r["status"] for r in section["runs"]] == ["ok", "failed"]


def test_jobs_run_side_by_side_with_prefixed_lines(tmp_path: Path, stand_in: Path) -> None:
    cfg = config(tmp_path, [("manylinux2014", "aarch64"), ("manylinux2014", "ppc64le")])
    report = pushed(tmp_path, cfg)
    meet = tmp_path / "meet"
    meet.mkdir()
    seen: list[str] = []
    outcome = build_wheels(
        cfg,
        project=CEXT,
        output=tmp_path / "out",
        report=report,
        environ={"PATH": "/usr/bin:/bin", "STAND_IN_MEET": str(meet)},
        cibuildwheel_exe=stand_in,
        jobs=2,
        log=seen.append,
    )
    # Each run waited for the other to start: they ran at the same time.
    assert outcome.ok and sorted(p.name for p in meet.iterdir()) == ["aarch64", "ppc64le"]
    assert "[aarch64] Building cp39-manylinux_aarch64 wheel" in seen
    assert "[ppc64le] Building cp39-manylinux_ppc64le wheel" in seen
    assert [r["arch"] for r in read_report(report)["wheels"]["runs"]] == ["aarch64", "ppc64le"]
    assert len(list((tmp_path / "out").iterdir())) == 2


def test_a_failure_among_jobs_moves_no_wheel(tmp_path: Path, stand_in: Path) -> None:
    cfg = config(tmp_path, [("manylinux2014", "aarch64"), ("manylinux2014", "ppc64le")])
    report = pushed(tmp_path, cfg)
    out = tmp_path / "out"
    with pytest.raises(WheelBuildError, match="cibuildwheel failed for aarch64"):
        build_wheels(
            cfg,
            project=CEXT,
            output=out,
            report=report,
            environ={"PATH": "/usr/bin:/bin", "STAND_IN_FAIL": "aarch64"},
            cibuildwheel_exe=stand_in,
            jobs=2,
            log=lambda _: None,
        )
    assert not out.exists()
    section = read_report(report)["wheels"]
    assert section["ok"] is False and section["written"] == []
    assert sorted(r["status"] for r in section["runs"]) == ["failed", "ok"]


def test_jobs_below_one_are_refused(tmp_path: Path, stand_in: Path) -> None:
    cfg = config(tmp_path, [("manylinux2014", "aarch64")])
    with pytest.raises(BadInput, match="--jobs must be 1 or more"):
        build_wheels(
            cfg,
            project=CEXT,
            output=tmp_path / "out",
            report=pushed(tmp_path, cfg),
            environ={},
            cibuildwheel_exe=stand_in,
            jobs=0,
            log=lambda _: None,
        )


def test_a_target_never_pushed_is_refused_before_any_build(tmp_path: Path, stand_in: Path) -> None:
    cfg = config(tmp_path, [("manylinux2014", "aarch64")])
    report = tmp_path / "report.json"
    report.write_text(json.dumps({}))
    with pytest.raises(NotPushed, match="push-images"):
        build_wheels(
            cfg,
            project=CEXT,
            output=tmp_path / "out",
            report=report,
            environ={},
            cibuildwheel_exe=stand_in,
            log=lambda _: None,
        )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "user",
    [
        {},
        {"CIBW_INHERIT": "before-all: append"},
        {"CIBW_ENVIRONMENT_LINUX": 'FOO="a b"'},
        {"CIBW_INHERIT": "environment-linux: append"},
    ],
    ids=["plain", "own-inherit", "own-linux-env", "own-env-rule"],
)
def test_the_ci_jobs_ca_lines_set_what_invoke_wheels_sets(
    tmp_path: Path, user: dict[str, str]
) -> None:
    """The generated wheel job (shell) and `invoke wheels --ca-bundle` (Python) agree."""
    import subprocess

    from xarch.ci.workflows import CA_BUNDLE_LINES

    bundle = tmp_path / "ca.pem"
    names = ("SSL_CERT_FILE", "CIBW_ENVIRONMENT_LINUX", "CIBW_INHERIT")
    script = (
        "\n".join(CA_BUNDLE_LINES)
        + "\n"
        + "".join(f'printf "%s=%s\\n" {n} "${{{n}-<unset>}}"\n' for n in names)
    )
    env = {"PATH": "/usr/bin:/bin", "XARCH_CA_BUNDLE": str(bundle), **user}
    out = subprocess.run(
        ["bash", "-e", "-c", script], env=env, capture_output=True, text=True, check=True
    ).stdout
    got = dict(line.split("=", 1) for line in out.splitlines())
    expected = {n: user.get(n, "<unset>") for n in names} | ca_environment(user, bundle)
    assert got == expected


def test_the_ci_jobs_ca_lines_do_nothing_when_off() -> None:
    import subprocess

    from xarch.ci.workflows import CA_BUNDLE_LINES

    script = "\n".join(CA_BUNDLE_LINES) + '\necho "${SSL_CERT_FILE-unset} ${CIBW_INHERIT-unset}"'
    out = subprocess.run(
        ["bash", "-e", "-c", script],
        env={"PATH": "/usr/bin:/bin", "XARCH_CA_BUNDLE": ""},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out == "unset unset\n"


def test_xarch_ca_bundle_is_the_default_of_ca_bundle(tmp_path: Path, stand_in: Path) -> None:
    """The stand-in cibuildwheel sees SSL_CERT_FILE and the container variables."""
    cfg = config(tmp_path, [("manylinux2014", "aarch64")])
    report = pushed(tmp_path, cfg)
    bundle = tmp_path / "proxy-ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    seen: list[str] = []
    build_wheels(
        cfg,
        project=CEXT,
        output=tmp_path / "out",
        report=report,
        environ={"PATH": "/usr/bin:/bin", "XARCH_CA_BUNDLE": str(bundle)},
        cibuildwheel_exe=stand_in,
        log=seen.append,
    )
    [run] = read_report(report)["wheels"]["runs"]
    assert run["status"] == "ok"
    assert f"env SSL_CERT_FILE={bundle}" in seen
    assert f"env CIBW_ENVIRONMENT_LINUX=PIP_CERT={CONTAINER_CA_BUNDLE} " in " ".join(seen)
    assert "env CIBW_INHERIT=environment-linux: prepend" in seen
    with pytest.raises(BadInput, match="no such file"):
        build_wheels(
            cfg,
            project=CEXT,
            output=tmp_path / "out",
            report=report,
            environ={"XARCH_CA_BUNDLE": str(tmp_path / "missing.pem")},
            cibuildwheel_exe=stand_in,
            log=seen.append,
        )


# cibuildwheel 4.3.5's output for one identifier, as it prints it outside CI (steps
# described, then each step's time right-aligned) and on GitHub (fold groups).
STEPPED_LOG = """\
Starting container image 127.0.0.1:5000/xarch/x@sha256:...

\x1b[32m✓ \x1b[0m1.10s
Copying project into container...

{pad}✓ 0.40s
\x1b[1m\x1b[34mBuilding cp39-manylinux_aarch64 wheel\x1b[0m
CPython 3.9 manylinux aarch64

{group}Setting up build environment...

+ /opt/python/cp39-cp39/bin/python -c ...
{pad}✓ 1.52s
{group}Running before_build...

{pad}✓ 0.25s
{group}Building wheel...

+ python -m build /project --wheel --outdir=/tmp/cibuildwheel/built_wheel --installer=uv
{pad}✓ 7.41s
{group}Repairing wheel...

{pad}✓ 1.90s
{group}Testing wheel...

{pad}✓ 2.10s

✓ cp39-manylinux_aarch64 finished in 13 seconds
"""


@pytest.mark.parametrize("group", ["", "::group::"])
def test_wheel_timings_record_cibuildwheels_own_step_times(group: str) -> None:
    text = STEPPED_LOG.format(pad=" " * 70, group=group)
    lines = [(float(n), ln + "\n") for n, ln in enumerate(text.splitlines())]
    (w,) = wheel_timings(lines)
    assert w.steps == {
        "setup": 1.52,
        "before_build": 0.25,
        "build": 7.41,
        "repair": 1.9,
        "test": 2.1,
    }
    # the container start and the copy are the run's, not this identifier's
    assert [w.column(c) for c in ("setup", "build", "repair", "test")] == [1.77, 7.41, 1.9, 2.1]


def test_a_failed_step_is_still_timed() -> None:
    text = STEPPED_LOG.format(pad="", group="").replace("✓ 2.10s", "✕ 2.10s")
    (w,) = wheel_timings([(float(n), ln) for n, ln in enumerate(text.splitlines())])
    assert w.steps["test"] == 2.1


# --------------------------------------------------------------------------- frontend


def test_images_with_uv_get_the_fast_frontend_when_the_project_names_none(
    tmp_path: Path, stand_in: Path
) -> None:
    cfg = config(tmp_path, [("manylinux2014", "aarch64")])
    lines: list[str] = []
    build_wheels(
        cfg,
        project=CEXT,
        output=tmp_path / "wheelhouse",
        report=pushed(tmp_path, cfg),
        environ={"PATH": "/usr/bin:/bin"},
        cibuildwheel_exe=stand_in,
        log=lines.append,
    )
    log = (tmp_path / "build/wheels/1-aarch64.log").read_text()
    assert "env CIBW_BUILD_FRONTEND=build[uv]" in log
    [said] = [ln for ln in lines if "frontend:" in ln]
    assert "build[uv]" in said and "CIBW_BUILD_FRONTEND=build" in said  # how to opt out


def test_the_users_frontend_is_passed_on_untouched(tmp_path: Path, stand_in: Path) -> None:
    cfg = config(tmp_path, [("manylinux2014", "aarch64")])
    build_wheels(
        cfg,
        project=CEXT,
        output=tmp_path / "wheelhouse",
        report=pushed(tmp_path, cfg),
        environ={"PATH": "/usr/bin:/bin", "CIBW_BUILD_FRONTEND": "pip"},
        cibuildwheel_exe=stand_in,
        log=lambda _: None,
    )
    log = (tmp_path / "build/wheels/1-aarch64.log").read_text()
    assert "env CIBW_BUILD_FRONTEND=pip" in log


def test_an_image_without_uv_keeps_cibuildwheels_default(tmp_path: Path, stand_in: Path) -> None:
    cfg = config(tmp_path, [("manylinux2014", "aarch64")])
    report = pushed(tmp_path, cfg)
    [ref] = [r.ref for r in refs_for(cfg).values()]
    IMAGE_TOOLS[ref] = ImageTools(uv="")
    build_wheels(
        cfg,
        project=CEXT,
        output=tmp_path / "wheelhouse",
        report=report,
        environ={"PATH": "/usr/bin:/bin"},
        cibuildwheel_exe=stand_in,
        log=lambda _: None,
    )
    log = (tmp_path / "build/wheels/1-aarch64.log").read_text()
    assert "env CIBW_BUILD_FRONTEND=<unset>" in log


def test_a_uv_frontend_an_image_cannot_serve_is_refused_before_any_build(
    tmp_path: Path, stand_in: Path
) -> None:
    cfg = config(tmp_path, [("manylinux2014", "aarch64")])
    report = pushed(tmp_path, cfg)
    [ref] = [r.ref for r in refs_for(cfg).values()]
    IMAGE_TOOLS[ref] = ImageTools(uv="")
    with pytest.raises(BadInput) as e:
        build_wheels(
            cfg,
            project=CEXT,
            output=tmp_path / "wheelhouse",
            report=report,
            environ={"PATH": "/usr/bin:/bin", "CIBW_BUILD_FRONTEND": "build[uv]"},
            cibuildwheel_exe=stand_in,
            log=lambda _: None,
        )
    assert e.value.exit_code == 2
    assert "CIBW_BUILD_FRONTEND" in str(e.value) and ref in str(e.value)
    assert not (tmp_path / "build/wheels").exists()  # no cibuildwheel run started
