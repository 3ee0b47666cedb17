"""Host emulation on the real kernel: binfmt-install/uninstall, doctor's verdicts
checked against what `docker run` actually does. Every test restores the host's
binfmt_misc entries (xarch.binfmt.preserved), even when it fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from xarch.errors import BadInput
from xarch.host import binfmt
from xarch.host import emulators as hostemu
from xarch.model.arch import get_arch
from xarch.model.config import Config
from xarch.model.naming import L_BASE_REF, helper_ref
from xarch.runner import doctor

from .conftest import REPO_ROOT, TAG, handlers_removed, quiet

pytestmark = [
    pytest.mark.docker,
    pytest.mark.binfmt,
    pytest.mark.emulation,
    pytest.mark.usefixtures("host_binfmt_restored"),
]
AARCH64 = get_arch("aarch64")


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, Path]:
    return {"install_dir": tmp_path / "emulators", "persist_dir": tmp_path / "binfmt.d"}


@pytest.fixture
def images(built: list[Any], pinned_config: Config, client: Any) -> dict[str, str]:
    t = next(t for t in pinned_config.targets if t.arch.name == "aarch64")
    ref = helper_ref(pinned_config, t, TAG)
    base = client.api.inspect_image(ref)["Config"]["Labels"][L_BASE_REF]
    return {"helper": ref, "base": base}


def docker_run(ref: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--platform",
            AARCH64.platform,
            "--entrypoint",
            "",
            ref,
            "uname",
            "-m",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def outcome(r: subprocess.CompletedProcess[str]) -> str:
    if r.returncode == 0 and r.stdout.strip() == "aarch64":
        return doctor.RUNS
    if "exec format error" in r.stderr:
        return doctor.EXEC_FORMAT
    if "no such file or directory" in r.stderr.lower():
        return doctor.NO_SUCH_FILE
    return f"unexpected: rc={r.returncode} {r.stderr.strip()}"


def cli(
    *args: str, env: dict[str, str] | None = None, as_user: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `invoke ARGS` from the checkout, as a user would (optionally via setpriv)."""
    return subprocess.run(
        [*(as_user or []), sys.executable, "-m", "invoke", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
    )


def doctor_verdicts(cfg: Config) -> tuple[str, str]:
    report = doctor.diagnose(cfg, probe_containers=False)
    v = next(v for v in report.targets if v.arch == "aarch64")
    return v.verdict, v.base_verdict


def test_no_handler_fails_with_exec_format_error_as_doctor_predicts(
    images: dict[str, str], pinned_config: Config
) -> None:
    with handlers_removed(AARCH64):
        assert outcome(docker_run(images["helper"])) == doctor.EXEC_FORMAT
        assert doctor_verdicts(pinned_config) == (doctor.EXEC_FORMAT, doctor.EXEC_FORMAT)


def test_install_registers_flag_f_handler_and_image_runs(
    images: dict[str, str], pinned_config: Config, dirs: dict[str, Path]
) -> None:
    with handlers_removed(AARCH64):
        [o] = hostemu.install(pinned_config.qemu, ["aarch64"], log=quiet, **dirs)
        assert o.action == "registered"
        entry = binfmt.read_entry("qemu-aarch64")
        assert entry.enabled and entry.flags == "F"
        assert entry.interpreter == str(dirs["install_dir"] / AARCH64.qemu_binary)
        text = (binfmt.BINFMT_DIR / "qemu-aarch64").read_text()
        assert f"interpreter {entry.interpreter}" in text and "flags: F" in text
        assert outcome(docker_run(images["helper"])) == doctor.RUNS
        assert outcome(docker_run(images["base"])) == doctor.RUNS
        assert doctor_verdicts(pinned_config) == (doctor.RUNS, doctor.RUNS)
        hostemu.uninstall(["aarch64"], log=quiet, **dirs)


def test_second_install_leaves_identical_registration_alone(
    pinned_config: Config, dirs: dict[str, Path]
) -> None:
    with handlers_removed(AARCH64):
        hostemu.install(pinned_config.qemu, ["aarch64"], log=quiet, **dirs)
        lines: list[str] = []
        [o] = hostemu.install(pinned_config.qemu, ["aarch64"], log=lines.append, **dirs)
        assert o.action == "unchanged"
        assert not any(line.startswith("+ echo") for line in lines)
        hostemu.uninstall(["aarch64"], log=quiet, **dirs)


def test_uninstall_makes_it_fail_again(
    images: dict[str, str], pinned_config: Config, dirs: dict[str, Path]
) -> None:
    with handlers_removed(AARCH64):
        hostemu.install(pinned_config.qemu, ["aarch64"], log=quiet, **dirs)
        [o] = hostemu.uninstall(["aarch64"], log=quiet, **dirs)
        assert o.action == "removed"
        assert "qemu-aarch64" not in {e.name for e in binfmt.list_entries()}
        assert outcome(docker_run(images["helper"])) == doctor.EXEC_FORMAT


def test_handler_without_f_runs_helper_but_not_plain_base_as_doctor_predicts(
    images: dict[str, str], pinned_config: Config
) -> None:
    with binfmt.temporary_handler(AARCH64, AARCH64.emulator_path, flags="", log=quiet):
        assert outcome(docker_run(images["helper"])) == doctor.RUNS
        assert outcome(docker_run(images["base"])) == doctor.NO_SUCH_FILE
        assert doctor_verdicts(pinned_config) == (doctor.RUNS, doctor.NO_SUCH_FILE)


def test_conflicting_handler_refused_without_force_replaced_with_it(
    pinned_config: Config, dirs: dict[str, Path]
) -> None:
    with binfmt.temporary_handler(AARCH64, AARCH64.emulator_path, flags="", log=quiet):
        before = binfmt.snapshot()
        with pytest.raises(BadInput, match="qemu-aarch64") as err:
            hostemu.install(pinned_config.qemu, ["aarch64"], log=quiet, **dirs)
        assert err.value.exit_code == 2
        assert binfmt.snapshot() == before
        [o] = hostemu.install(pinned_config.qemu, ["aarch64"], force=True, log=quiet, **dirs)
        assert o.action == "replaced"
        assert binfmt.read_entry("qemu-aarch64").flags == "F"


def test_persist_writes_binfmt_d_and_status_reports_it(
    pinned_config: Config, dirs: dict[str, Path]
) -> None:
    with handlers_removed(AARCH64):
        [o] = hostemu.install(pinned_config.qemu, ["aarch64"], persist=True, log=quiet, **dirs)
        conf = dirs["persist_dir"] / "qemu-aarch64.conf"
        assert o.persisted == str(conf)
        assert str(dirs["install_dir"]) in conf.read_text()
        [row] = [
            s
            for s in hostemu.status(
                pinned_config.qemu,
                install_dir=dirs["install_dir"],
                persist_dirs=(dirs["persist_dir"],),
            )
            if s.name == "qemu-aarch64"
        ]
        assert (row.persisted, row.pinned, row.xarch_installed) == (str(conf), True, True)
        hostemu.uninstall(["aarch64"], log=quiet, **dirs)
        assert not conf.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--arch", "sparc9"], "unknown architecture"),
        (["--arch", "x86_64"], "host's own architecture"),
        (["--arch", "aarch64", "--flags", "FZ"], "invalid binfmt_misc flag"),
        ([], "at least one architecture"),
    ],
)
def test_bad_input_exits_2_and_leaves_binfmt_untouched(args: list[str], message: str) -> None:
    before = binfmt.snapshot()
    r = cli("binfmt-install", "--config", "config/offline.yaml", *args)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr
    assert binfmt.snapshot() == before


def test_wrong_emulator_checksum_exits_2_and_changes_nothing(
    pinned_config: Config, tmp_path: Path
) -> None:
    cfg = tmp_path / "bad.yaml"
    text = (REPO_ROOT / "config" / "offline.yaml").read_text()
    good = pinned_config.qemu.sha256_for(AARCH64)
    cfg.write_text(text.replace(good, "0" * 64))
    # As on a fresh host: on a provisioned one the existing handler's conflict is
    # (rightly) reported before any emulator is fetched.
    with handlers_removed(AARCH64):
        before = binfmt.snapshot()
        r = cli(
            "binfmt-install",
            "--config",
            str(cfg),
            "--arch",
            "aarch64",
            env={
                "XARCH_CACHE_DIR": str(tmp_path / "cache"),
                "XARCH_EMULATOR_DIR": str(tmp_path / "emulators"),
            },
        )
        assert r.returncode == 2, r.stderr
        assert "sha256 mismatch" in r.stderr
        assert binfmt.snapshot() == before


def test_not_root_exits_2() -> None:
    before = binfmt.snapshot()
    # The unprivileged user's HOME and cache (pytest's tmp_path is private to root).
    with tempfile.TemporaryDirectory(prefix="xarch-nobody-") as home:
        os.chmod(home, 0o777)
        r = _run_as_nobody(home)
    assert r.returncode == 2, r.stderr
    assert "needs root" in r.stderr
    assert binfmt.snapshot() == before


def _run_as_nobody(home: str) -> subprocess.CompletedProcess[str]:
    return cli(
        "binfmt-install",
        "--config",
        "config/offline.yaml",
        "--arch",
        "aarch64",
        env={"XARCH_CACHE_DIR": home, "HOME": home},
        as_user=["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"],
    )


def test_doctor_json_and_exit_code(pinned_config: Config, dirs: dict[str, Path]) -> None:
    cfg = str(pinned_config.path)
    with handlers_removed(AARCH64, get_arch("ppc64le")):
        r = cli("doctor", "--config", cfg, "--json", "--no-probe")
        assert r.returncode == 1
        data = json.loads(r.stdout)
        assert {t["verdict"] for t in data["targets"]} == {doctor.EXEC_FORMAT}
        assert all("binfmt-install" in t["fix"] for t in data["targets"])
        hostemu.install(pinned_config.qemu, ["aarch64", "ppc64le"], log=quiet, **dirs)
        r = cli("doctor", "--config", cfg, "--json", "--no-probe")
        assert r.returncode == 0, r.stdout
        hostemu.uninstall(["aarch64", "ppc64le"], log=quiet, **dirs)


def test_doctor_probes_leave_no_container_behind(offline: Config, client: Any) -> None:
    from xarch.images.installer import local_probe_image

    image = local_probe_image(offline)
    if image is None:
        pytest.skip("the binfmt installer image is not built (invoke build-images)")
    before = {c.id for c in client.containers.list(all=True)}
    report = doctor.diagnose(offline, probe_image=image)
    probes = [c for c in report.checks if c.name.startswith(("privileged", "least-privilege"))]
    assert len(probes) == 2
    assert all(c.ok is not None and c.detail for c in probes)
    assert {c.id for c in client.containers.list(all=True)} == before
