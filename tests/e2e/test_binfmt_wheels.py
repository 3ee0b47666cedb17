"""cibuildwheel under each kind of host handler (issue 9, item 5): the sample C extension
is built, repaired under the image's policy and tested inside the image, first with the
handler registered with flag F through xarch's binfmt installer image (as the generated
workflow does), then with a handler without F (which only an image that bundles its
emulator survives). Before each run, doctor's verdict is read and must agree with what
happens; the plain stand-in base under the handler without F fails with "no such file
or directory". binfmt_misc is snapshotted and restored around each test.

    pytest tests/e2e/test_binfmt_wheels.py -m "docker and registry and emulation and binfmt"
"""

from __future__ import annotations

import contextlib
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Pushed, copy_project
from xarch.host import binfmt
from xarch.images.installer import BIND_PATH
from xarch.model.arch import get_arch
from xarch.model.config import Config
from xarch.model.naming import L_BASE_REF, installer_settings, variant_refs
from xarch.model.report import read_report
from xarch.oci.engine import Engine
from xarch.runner import doctor
from xarch.wheels.run import build_wheels

pytestmark = [
    pytest.mark.docker,
    pytest.mark.registry,
    pytest.mark.emulation,
    pytest.mark.binfmt,
]

#: The stand-ins with CPython 3.9, cibuildwheel's utility interpreter (Debian bullseye).
WHEEL_ARCHES = ("aarch64", "armv7l")


def _quiet(_: str) -> None:
    pass


@contextlib.contextmanager
def host_binfmt_restored() -> Iterator[None]:
    if not binfmt.is_available():
        pytest.skip("binfmt_misc is not mounted")
    with binfmt.preserved(log=_quiet):
        yield


def _installer_ref(config: Config) -> str:
    host = next(h for h in installer_settings(config).hosts if h.arch.name == "x86_64")
    return variant_refs(config, host)[0]


def _verdict(config: Config, target_name: str) -> doctor.Verdict:
    report = doctor.diagnose(config, probe_containers=False)
    [v] = [v for v in report.targets if v.target == target_name]
    return v


def _build(
    pushed: Pushed,
    target_name: str,
    ca_bundle: str | None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    monkeypatch.setenv("XARCH_BUILD_DIR", str(tmp_path / "build"))
    report = tmp_path / "report.json"
    report.write_text(pushed.report.read_text())
    out = tmp_path / "wheelhouse"
    outcome = build_wheels(
        pushed.config,
        [target_name],
        project=copy_project("cext", tmp_path),
        output=out,
        report=report,
        ca_bundle=ca_bundle,
    )
    [wheel] = sorted(out.glob("*.whl"))
    [run] = outcome.results
    log = Path(run.log).read_text()
    assert " passed" in log, "the project's own tests did not run inside the image"
    assert read_report(report)["wheels"]["ok"] is True
    return wheel


def _policy_tag(pushed: Pushed, target_name: str) -> str:
    """AUDITWHEEL_PLAT of the pushed helper image (what auditwheel repairs to)."""
    t = next(t for t in pushed.targets if t.name == target_name)
    attrs = Engine.connect().inspect(pushed.refs[t.name].ref)
    assert attrs is not None
    env = dict(e.split("=", 1) for e in (attrs.get("Config") or {}).get("Env") or [])
    return str(env["AUDITWHEEL_PLAT"])


def _assert_repaired(wheel: Path, plat: str) -> None:
    """auditwheel repaired it under the image's policy: the platform tags end with the
    image's AUDITWHEEL_PLAT (older manylinux tags the wheel also meets may precede it)."""
    tags = wheel.name.removesuffix(".whl").rsplit("-", 1)[1].split(".")
    assert tags[-1] == plat, wheel.name
    with zipfile.ZipFile(wheel) as z:
        assert any(n.endswith(".so") for n in z.namelist())


@pytest.mark.parametrize("arch_name", WHEEL_ARCHES)
def test_cext_with_flag_f_registered_by_the_installer_image(
    arch_name: str,
    pushed: Pushed,
    ca_bundle: str | None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    arch = get_arch(arch_name)
    target = next(t for t in pushed.targets if t.arch.name == arch.name)
    with host_binfmt_restored():
        # The host's own handlers for the architecture go; the installer registers its
        # pinned emulator with flag F from inside its container.
        for e in binfmt.entries_for(arch):
            binfmt.unregister(e.name, log=_quiet)
        assert doctor.predict(arch, binfmt.list_entries(), frozenset())[0] == doctor.EXEC_FORMAT
        install = [_installer_ref(pushed.config), "install", arch.name]
        r = subprocess.run(
            ["docker", "run", "--rm", "-v", f"/proc/sys/fs/binfmt_misc:{BIND_PATH}", *install],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert r.returncode == 0, r.stdout + r.stderr
        [entry] = [e for e in binfmt.entries_for(arch) if e.enabled]
        assert "F" in entry.flags
        verdict = _verdict(pushed.config, target.name)
        assert verdict.verdict == doctor.RUNS, verdict.reason
        assert verdict.base_verdict == doctor.RUNS, verdict.base_reason
        wheel = _build(pushed, target.name, ca_bundle, tmp_path, monkeypatch)
    _assert_repaired(wheel, _policy_tag(pushed, target.name))


@pytest.mark.parametrize("arch_name", WHEEL_ARCHES)
def test_cext_with_a_handler_without_flag_f(
    arch_name: str,
    pushed: Pushed,
    ca_bundle: str | None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    arch = get_arch(arch_name)
    target = next(t for t in pushed.targets if t.arch.name == arch.name)
    with (
        host_binfmt_restored(),
        binfmt.temporary_handler(arch, arch.emulator_path, flags="", log=_quiet),
    ):
        verdict = _verdict(pushed.config, target.name)
        # The helper image carries the emulator where the handler looks; its plain
        # stand-in base does not.
        assert verdict.verdict == doctor.RUNS, verdict.reason
        assert verdict.base_verdict == doctor.NO_SUCH_FILE, verdict.base_reason
        attrs = Engine.connect().inspect(pushed.refs[target.name].ref)
        assert attrs is not None
        base = (attrs.get("Config") or {}).get("Labels", {})[L_BASE_REF]
        plain = subprocess.run(
            [
                "docker",
                "run",
                "--rm",
                "--platform",
                arch.platform,
                "--entrypoint",
                "",
                base,
                "/bin/true",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert plain.returncode != 0
        assert "no such file or directory" in plain.stderr.lower(), plain.stderr
        wheel = _build(pushed, target.name, ca_bundle, tmp_path, monkeypatch)
    _assert_repaired(wheel, _policy_tag(pushed, target.name))
