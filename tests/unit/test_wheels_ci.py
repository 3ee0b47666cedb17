"""ci-config and `invoke wheels` agree: the wheel jobs install the config's
cibuildwheel.version, and carry the same extra CA bundle option (off by default)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.unit.test_ciconfig import CONFIG, report
from xarch.ci.workflows import plan_ci, render
from xarch.errors import BadInput
from xarch.model.config import Config, load_config
from xarch.publish.cibuildwheel import venv_version

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
    assert "cibuildwheel==4.3.4" in build_step(gh)["run"]
    assert any("cibuildwheel==4.3.4" in line for line in gl["xarch-wheels"]["script"])  # type: ignore[index]


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
