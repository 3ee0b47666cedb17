"""pull-images and provision-runner on real parts: the Docker engine, an embedded
registry holding the pushed (stand-in) helper images, the real binfmt_misc.

Images are pulled for real: a test first makes the engine forget the image (its
per-arch tags and its name@digest), so the pull downloads it again. The pulled image
is the one that was built (same image ID) and is tagged again, so later tests find
the session's images as they were. binfmt_misc is snapshotted and restored around
every test that can change it; emulators and binfmt.d files go to temporary
directories.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
import yaml

from xarch.errors import BadInput, EngineUnavailable, NotPushed, TestFailure
from xarch.host import binfmt
from xarch.model.arch import get_arch
from xarch.model.config import Config, load_config
from xarch.model.naming import L_BASE_DIGEST, L_QEMU_SHA, L_QEMU_VERSION
from xarch.model.report import push_record, read_report
from xarch.oci.engine import Engine
from xarch.publish.pull import PushedRef, pull_images, pushed_refs
from xarch.publish.push import push_images
from xarch.runner.provision import Tools, provision_runner

from .conftest import REPO_ROOT, handlers_removed, quiet

pytestmark = [pytest.mark.docker, pytest.mark.registry]

ARCHES = (get_arch("aarch64"), get_arch("ppc64le"))


# ------------------------------------------------------------------------------ helpers


@pytest.fixture(scope="module")
def pushed_report(
    built: list[Any],
    pinned_config: Config,
    client: docker.DockerClient,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """A report of its own (other tests push other configs into the session's)."""
    path = tmp_path_factory.mktemp("pull-report") / "xarch-report.json"
    push_images(pinned_config, engine=Engine(client), report=path, log=quiet)
    return path


@pytest.fixture
def refs(pushed_report: Path, pinned_config: Config) -> dict[str, PushedRef]:
    return pushed_refs(
        read_report(pushed_report), pinned_config, pinned_config.targets, pushed_report
    )


def forget(client: docker.DockerClient, pushed: PushedRef) -> None:
    """Make the engine forget a pushed image: its per-arch tags and name@digest."""
    for ref in (*pushed.tag_refs, pushed.ref):
        with contextlib.suppress(docker.errors.ImageNotFound):
            client.api.remove_image(ref)
    assert Engine(client).inspect(pushed.ref) is None


@pytest.fixture
def restore_images(
    pinned_config: Config, pushed_report: Path, client: docker.DockerClient
) -> Iterator[None]:
    """Whatever a test did to the session's images: pulled and tagged again afterwards."""
    yield
    outcome = pull_images(pinned_config, report=pushed_report, engine=Engine(client), log=quiet)
    assert outcome.ok, outcome.failure()


def changed_config(tmp_path: Path, config: Config, change: dict[str, Any]) -> Config:
    """The pinned config with some values replaced (same registry, names and tags)."""
    doc = yaml.safe_load(config.path.read_text())
    for dotted, value in change.items():
        node: Any = doc
        *parents, last = dotted.split(".")
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[last] = value
    path = tmp_path / "changed.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return load_config(path)


def invoke(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
    )


def image_state(client: docker.DockerClient) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    return sorted(
        (im.id, tuple(sorted(im.tags)), tuple(sorted(im.attrs.get("RepoDigests") or [])))
        for im in client.images.list(all=True)
    )


def listing(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def needs_root_and_binfmt() -> None:
    if os.geteuid() != 0 or not binfmt.is_available():
        pytest.skip("needs root and binfmt_misc")


@contextlib.contextmanager
def without_handlers() -> Iterator[None]:
    """No enabled handler for the configured arches inside; binfmt_misc restored after."""
    before = binfmt.snapshot()
    with handlers_removed(*ARCHES):
        yield
    assert binfmt.snapshot() == before


# --------------------------------------------------------------------------- pull-images


def test_pull_by_digest_checks_and_tags(
    pinned_config: Config,
    pushed_report: Path,
    refs: dict[str, PushedRef],
    client: docker.DockerClient,
    restore_images: None,
) -> None:
    ids = {name: (Engine(client).inspect(r.ref) or {}).get("Id") for name, r in refs.items()}
    for r in refs.values():
        forget(client, r)
    lines: list[str] = []
    outcome = pull_images(
        pinned_config, report=pushed_report, engine=Engine(client), log=lines.append
    )
    assert outcome.ok, outcome.failure()
    for t in pinned_config.targets:
        r = refs[t.name]
        assert f"+ docker pull --platform {t.arch.platform} {r.ref}" in lines
        attrs = Engine(client).inspect(r.ref)
        assert attrs is not None and attrs["Id"] == ids[t.name]
        assert attrs["Architecture"] == t.arch.docker_arch
        for tag_ref in r.tag_refs:
            assert (Engine(client).inspect(tag_ref) or {}).get("Id") == attrs["Id"]
    assert [(i.action, i.status, i.changed) for i in outcome.images] == [("pulled", "ok", True)] * 2


def test_second_pull_finds_images_in_place(
    pinned_config: Config, pushed_report: Path, client: docker.DockerClient
) -> None:
    lines: list[str] = []
    outcome = pull_images(
        pinned_config, report=pushed_report, engine=Engine(client), log=lines.append
    )
    assert outcome.ok
    assert [(i.action, i.changed) for i in outcome.images] == [("present", False)] * 2
    assert not any(line.startswith("+ ") for line in lines)


def test_config_differing_from_labels_fails_naming_each_mismatch(
    pinned_config: Config,
    pushed_report: Path,
    refs: dict[str, PushedRef],
    client: docker.DockerClient,
    tmp_path: Path,
    restore_images: None,
) -> None:
    other = changed_config(
        tmp_path,
        pinned_config,
        {
            "qemu.version": "10.0.2+ds-1~bpo12+1",
            "qemu.sha256.qemu-aarch64-static": "0" * 64,
            "targets.0.base.digest": "sha256:" + "1" * 64,
        },
    )
    aarch64 = refs["standin-aarch64"]
    forget(client, aarch64)
    outcome = pull_images(
        other, ["standin-aarch64"], report=pushed_report, engine=Engine(client), log=quiet
    )
    [im] = outcome.images
    assert im.status == "mismatch"
    assert [m.split(":")[0] for m in im.mismatches] == [
        f"label {L_QEMU_VERSION}",
        f"label {L_QEMU_SHA}",
        f"label {L_BASE_DIGEST}",
    ]
    failure = outcome.failure()
    assert failure is not None and failure.exit_code == 1
    for expected in ("10.0.2+ds-1~bpo12+1", "0" * 64, "sha256:" + "1" * 64):
        assert expected in str(failure)
    # Pulled by this run and wrong: removed again, and never tagged.
    assert im.action == "removed"
    assert Engine(client).inspect(aarch64.ref) is None
    assert all(Engine(client).inspect(r) is None for r in aarch64.tag_refs)


def test_mismatch_of_an_image_already_present_leaves_it_but_tags_nothing(
    pinned_config: Config,
    pushed_report: Path,
    refs: dict[str, PushedRef],
    client: docker.DockerClient,
    tmp_path: Path,
) -> None:
    other = changed_config(tmp_path, pinned_config, {"qemu.version": "9.9"})
    before = image_state(client)
    outcome = pull_images(other, report=pushed_report, engine=Engine(client), log=quiet)
    assert [i.status for i in outcome.images] == ["mismatch", "mismatch"]
    assert [i.action for i in outcome.images] == ["present", "present"]
    assert image_state(client) == before


def test_cli_json_summary_and_exit_codes(
    pinned_config: Config, pushed_report: Path, tmp_path: Path
) -> None:
    r = invoke(
        "pull-images", "--config", str(pinned_config.path), "--report", str(pushed_report), "--json"
    )
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["ok"] is True
    assert [i["status"] for i in data["images"]] == ["ok", "ok"]
    assert [i["image_platform"] for i in data["images"]] == ["linux/arm64/v8", "linux/ppc64le"]

    other = changed_config(tmp_path, pinned_config, {"qemu.sha256.qemu-ppc64le-static": "e" * 64})
    r = invoke("pull-images", "--config", str(other.path), "--report", str(pushed_report), "--json")
    assert r.returncode == 1
    data = json.loads(r.stdout)
    assert [i["status"] for i in data["images"]] == ["ok", "mismatch"]
    assert f"label {L_QEMU_SHA}" in r.stderr and "e" * 64 in r.stderr


def test_wrong_platform_for_the_target_fails(
    pinned_config: Config,
    pushed_report: Path,
    refs: dict[str, PushedRef],
    client: docker.DockerClient,
    tmp_path: Path,
    restore_images: None,
) -> None:
    """A report whose aarch64 entry points at the ppc64le image's digest."""
    data = read_report(pushed_report)
    ppc = refs["standin-ppc64le"]
    record = push_record(data, pinned_config)
    assert record is not None
    for im in record["images"]:
        if im["target"] == "standin-aarch64":
            im["digest"] = ppc.digest
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps(data))
    forget(client, ppc)
    outcome = pull_images(
        pinned_config, ["standin-aarch64"], report=wrong, engine=Engine(client), log=quiet
    )
    [im] = outcome.images
    assert im.status != "ok"
    text = str(outcome.failure())
    # Docker 20.10 pulls a single-platform manifest whatever --platform says (measured
    # here), so the check after the pull catches it; a newer engine may refuse first.
    if im.status == "mismatch":
        assert "platform: the config's target is linux/arm64/v8, the image is linux/ppc64le" in text
        assert im.action == "removed"
    else:  # the engine refused the platform itself
        assert "platform" in text
    assert Engine(client).inspect(ppc.ref) is None
    assert all(Engine(client).inspect(r) is None for r in ppc.tag_refs)
    assert (Engine(client).inspect(refs["standin-aarch64"].tag_refs[0]) or {}).get(
        "Architecture"
    ) == "arm64"


def test_missing_report_is_a_clear_error(pinned_config: Config, tmp_path: Path) -> None:
    with pytest.raises(NotPushed, match=r"no report at .*run `invoke push-images"):
        pull_images(pinned_config, report=tmp_path / "none.json", log=quiet)
    r = invoke(
        "pull-images", "--config", str(pinned_config.path), "--report", str(tmp_path / "x.json")
    )
    assert r.returncode == 1
    assert "invoke push-images" in r.stderr


def test_report_without_the_targets_digest_is_a_clear_error(
    pinned_config: Config, pushed_report: Path, tmp_path: Path
) -> None:
    data = read_report(pushed_report)
    record = push_record(data, pinned_config)
    assert record is not None
    record["images"] = [im for im in record["images"] if im["target"] != "standin-ppc64le"]
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps(data))
    with pytest.raises(NotPushed, match="standin-ppc64le: no digest recorded") as err:
        pull_images(pinned_config, report=partial, log=quiet)
    assert "invoke push-images" in str(err.value)
    # Nothing is pulled when a digest is missing, even for the targets that have one.
    assert pull_images(pinned_config, ["standin-aarch64"], report=partial, log=quiet).ok


# ---------------------------------------------------------------------- provision-runner


def test_dry_run_prints_the_plan_and_changes_nothing(
    pinned_config: Config,
    pushed_report: Path,
    refs: dict[str, PushedRef],
    client: docker.DockerClient,
    tmp_path: Path,
    restore_images: None,
) -> None:
    needs_root_and_binfmt()
    forget(client, refs["standin-aarch64"])
    dirs = {"install_dir": tmp_path / "emulators", "persist_dir": tmp_path / "binfmt.d"}
    with without_handlers():
        before = (binfmt.snapshot(), listing(Path("/etc/binfmt.d")), image_state(client))
        lines: list[str] = []
        result = provision_runner(
            pinned_config, dry_run=True, report=pushed_report, log=lines.append, **dirs
        )
        after = (binfmt.snapshot(), listing(Path("/etc/binfmt.d")), image_state(client))
    assert after == before
    assert not dirs["install_dir"].exists() and not dirs["persist_dir"].exists()
    text = "\n".join(lines)
    assert "ok: Docker engine" in text
    for a in ARCHES:
        assert f"would: {a.name}: " in text
        assert f"register the binfmt handler {a.binfmt_name} (flags F)" in text
        assert f"write {dirs['persist_dir'] / (a.binfmt_name + '.conf')}" in text
    aarch64 = refs["standin-aarch64"]
    assert f"would: standin-aarch64: pull {aarch64.ref}" in text
    assert f"    + docker pull --platform linux/arm64/v8 {aarch64.ref}" in text
    assert "ok: standin-ppc64le:" in text
    assert (
        lines[-1]
        == f"plan: {len(result.changes)} change(s); run without --dry-run to carry them out"
    )
    assert result.doctor is None


def test_cli_dry_run_changes_nothing(pinned_config: Config, pushed_report: Path) -> None:
    needs_root_and_binfmt()
    client = Engine.connect().client
    # Whatever handlers the host has (Debian's qemu-user-static ones are refused without
    # --force: test_existing_different_handler_is_refused_without_force), the plan is
    # made here for the configured architectures with none registered.
    with without_handlers():
        before = (binfmt.snapshot(), listing(Path("/etc/binfmt.d")), image_state(client))
        r = invoke(
            "provision-runner",
            "--config",
            str(pinned_config.path),
            "--report",
            str(pushed_report),
            "--dry-run",
        )
        assert r.returncode == 0, r.stderr
        assert "== provision-runner: plan (--dry-run: nothing will be changed)" in r.stdout
        assert "would: run doctor" in r.stdout
        assert (binfmt.snapshot(), listing(Path("/etc/binfmt.d")), image_state(client)) == before


def test_provision_registers_pulls_runs_doctor_and_second_run_changes_nothing(
    pinned_config: Config,
    pushed_report: Path,
    refs: dict[str, PushedRef],
    client: docker.DockerClient,
    tmp_path: Path,
    restore_images: None,
) -> None:
    needs_root_and_binfmt()
    dirs = {"install_dir": tmp_path / "emulators", "persist_dir": tmp_path / "binfmt.d"}
    aarch64 = refs["standin-aarch64"]
    forget(client, aarch64)
    with without_handlers():
        first: list[str] = []
        result = provision_runner(
            pinned_config, report=pushed_report, force=True, log=first.append, **dirs
        )
        assert result.doctor is not None and result.doctor.ok
        text = "\n".join(first)
        for a in ARCHES:
            entry = binfmt.read_entry(a.binfmt_name)
            assert entry.enabled and entry.flags == "F"
            assert entry.interpreter == str(dirs["install_dir"] / a.qemu_binary)
            conf = dirs["persist_dir"] / f"{a.binfmt_name}.conf"
            assert entry.interpreter in conf.read_text()
            assert f"+ echo ':{a.binfmt_name}:M:" in text
            assert f"+ write {conf}" in text
        assert f"+ docker pull --platform linux/arm64/v8 {aarch64.ref}" in text
        assert (Engine(client).inspect(aarch64.tag_refs[0]) or {}).get("Architecture") == "arm64"
        assert "verdict: every target would run" in text
        assert first[-1] == f"provisioned: {len(result.changes)} change(s)"

        before = binfmt.snapshot()
        second: list[str] = []
        again = provision_runner(pinned_config, report=pushed_report, log=second.append, **dirs)
        assert again.changes == []
        assert second[-1] == "nothing to change: this host is already a runner for this config"
        changes = [
            line
            for line in second
            if line.startswith("+ ") or (line.startswith("== ") and "provision-runner" not in line)
        ]
        assert changes == []
        assert binfmt.snapshot() == before
        assert again.doctor is not None and again.doctor.ok


def test_present_image_that_differs_from_config_is_refused_before_any_change(
    pinned_config: Config, pushed_report: Path, client: docker.DockerClient, tmp_path: Path
) -> None:
    needs_root_and_binfmt()
    other = changed_config(tmp_path, pinned_config, {"qemu.version": "9.9"})
    dirs = {"install_dir": tmp_path / "emulators", "persist_dir": tmp_path / "binfmt.d"}
    with without_handlers():
        before = (binfmt.snapshot(), image_state(client))
        lines: list[str] = []
        with pytest.raises(TestFailure, match="nothing was changed") as err:
            provision_runner(other, report=pushed_report, force=True, log=lines.append, **dirs)
        assert (binfmt.snapshot(), image_state(client)) == before
    assert err.value.exit_code == 1
    assert str(err.value).count(f"label {L_QEMU_VERSION}: the config's qemu.version is 9.9") == 2
    assert not dirs["install_dir"].exists() and not dirs["persist_dir"].exists()


def test_existing_different_handler_is_refused_without_force(
    pinned_config: Config, pushed_report: Path, tmp_path: Path
) -> None:
    needs_root_and_binfmt()
    a = ARCHES[0]
    with binfmt.temporary_handler(a, a.emulator_path, flags="", log=quiet):
        before = binfmt.snapshot()
        with pytest.raises(BadInput, match="refusing to change existing binfmt handlers") as err:
            provision_runner(
                pinned_config,
                report=pushed_report,
                log=quiet,
                install_dir=tmp_path / "emulators",
                persist_dir=tmp_path / "binfmt.d",
            )
        assert err.value.exit_code == 2
        assert "--force" in str(err.value)
        assert binfmt.snapshot() == before
        assert not (tmp_path / "emulators").exists()


def test_other_distribution_is_refused(
    pinned_config: Config, pushed_report: Path, tmp_path: Path
) -> None:
    needs_root_and_binfmt()
    os_release = tmp_path / "os-release"
    os_release.write_text('PRETTY_NAME="Fedora Linux 41"\nID=fedora\n')
    before = binfmt.snapshot()
    with pytest.raises(BadInput, match="this host is Fedora Linux 41") as err:
        provision_runner(pinned_config, report=pushed_report, os_release=os_release, log=quiet)
    assert err.value.exit_code == 2
    assert binfmt.snapshot() == before


def test_not_root_exits_2() -> None:
    needs_root_and_binfmt()
    before = binfmt.snapshot()
    with tempfile.TemporaryDirectory(prefix="xarch-nobody-") as home:
        os.chmod(home, 0o777)
        r = subprocess.run(
            [
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                sys.executable,
                "-m",
                "invoke",
                "provision-runner",
                "--config",
                "config/offline.yaml",
            ],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "XARCH_CACHE_DIR": home, "HOME": home},
        )
    assert r.returncode == 2, r.stderr
    assert "provision-runner needs root" in r.stderr
    assert binfmt.snapshot() == before


# ------------------------------------------- the Docker engine step, with stand-in tools


FAKE_APT_GET = """#!/bin/sh
echo "apt-get $*" >> {calls}
if [ "$1" = install ]; then
  printf '#!/bin/sh\\necho "fake dockerd started $*"\\n' > {dockerd}
  chmod +x {dockerd}
fi
"""


@pytest.fixture
def no_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A DOCKER_HOST nobody answers on, and stand-in apt-get/systemctl that record calls
    (apt-get install creates a stand-in dockerd that exits at once)."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nobody.sock")
    p = {
        "calls": tmp_path / "calls",
        "dockerd": tmp_path / "bin" / "dockerd",
        "apt_get": tmp_path / "bin" / "apt-get",
        "systemctl": tmp_path / "bin" / "systemctl",
        "log": tmp_path / "dockerd.log",
    }
    p["apt_get"].parent.mkdir()
    p["apt_get"].write_text(FAKE_APT_GET.format(calls=p["calls"], dockerd=p["dockerd"]))
    p["systemctl"].write_text(
        f'#!/bin/sh\necho "systemctl $*" >> {p["calls"]}\n'
        '[ "$1" = is-enabled ] && echo disabled\nexit 0\n'
    )
    for f in (p["apt_get"], p["systemctl"]):
        f.chmod(0o755)
    return p


def fake_tools(p: dict[str, Path], systemd_dir: Path) -> Tools:
    return Tools(
        apt_get=str(p["apt_get"]),
        systemctl=str(p["systemctl"]),
        systemd_dir=systemd_dir,
        dockerd=str(p["dockerd"]),
        dockerd_log=p["log"],
        docker_wait=2,
    )


def test_dry_run_without_engine_plans_install_and_start(
    pinned_config: Config, pushed_report: Path, no_engine: dict[str, Path], tmp_path: Path
) -> None:
    needs_root_and_binfmt()
    lines: list[str] = []
    provision_runner(
        pinned_config,
        dry_run=True,
        report=pushed_report,
        force=True,
        log=lines.append,
        tools=fake_tools(no_engine, tmp_path / "no-systemd"),
        install_dir=tmp_path / "emulators",
        persist_dir=tmp_path / "binfmt.d",
    )
    text = "\n".join(lines)
    assert "would: install the Docker engine (Debian/Ubuntu package docker.io)" in text
    assert f"    + {no_engine['apt_get']} install -y -q --no-install-recommends docker.io" in text
    assert f"    + {no_engine['dockerd']} >{no_engine['log']} 2>&1 &" in text
    assert "would: standin-aarch64: pull " in text and "would: standin-ppc64le: pull " in text
    assert not no_engine["calls"].exists() and not no_engine["dockerd"].exists()


def test_missing_engine_is_installed_and_started_without_systemd(
    pinned_config: Config, pushed_report: Path, no_engine: dict[str, Path], tmp_path: Path
) -> None:
    needs_root_and_binfmt()
    before = binfmt.snapshot()
    lines: list[str] = []
    with pytest.raises(EngineUnavailable, match=f"did not answer within 2s.*{no_engine['log']}"):
        provision_runner(
            pinned_config,
            report=pushed_report,
            force=True,
            log=lines.append,
            tools=fake_tools(no_engine, tmp_path / "no-systemd"),
            install_dir=tmp_path / "emulators",
            persist_dir=tmp_path / "binfmt.d",
        )
    assert no_engine["calls"].read_text().splitlines() == [
        "apt-get update -q",
        "apt-get install -y -q --no-install-recommends docker.io",
    ]
    assert "fake dockerd started" in no_engine["log"].read_text()
    # The engine step comes first: nothing else was touched.
    assert binfmt.snapshot() == before
    assert not (tmp_path / "emulators").exists()


def test_engine_is_enabled_and_started_with_systemd(
    pinned_config: Config, pushed_report: Path, no_engine: dict[str, Path], tmp_path: Path
) -> None:
    needs_root_and_binfmt()
    no_engine["dockerd"].write_text("#!/bin/sh\n")
    no_engine["dockerd"].chmod(0o755)
    systemd = tmp_path / "systemd"
    systemd.mkdir()
    lines: list[str] = []
    with pytest.raises(EngineUnavailable, match="journalctl -u docker"):
        provision_runner(
            pinned_config,
            report=pushed_report,
            force=True,
            log=lines.append,
            tools=fake_tools(no_engine, systemd),
            install_dir=tmp_path / "emulators",
            persist_dir=tmp_path / "binfmt.d",
        )
    assert no_engine["calls"].read_text().splitlines() == ["systemctl enable --now docker"]
    assert f"+ {no_engine['systemctl']} enable --now docker" in lines


def test_running_engine_not_enabled_at_boot_is_enabled_under_systemd(
    pinned_config: Config,
    pushed_report: Path,
    no_engine: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    needs_root_and_binfmt()
    monkeypatch.delenv("DOCKER_HOST")  # the real engine answers
    systemd = tmp_path / "systemd"
    systemd.mkdir()
    lines: list[str] = []
    provision_runner(
        pinned_config,
        dry_run=True,
        report=pushed_report,
        force=True,
        log=lines.append,
        tools=fake_tools(no_engine, systemd),
        install_dir=tmp_path / "emulators",
        persist_dir=tmp_path / "binfmt.d",
    )
    assert "would: enable the Docker engine at boot (systemd)" in lines
    assert f"    + {no_engine['systemctl']} enable docker" in lines
    assert no_engine["calls"].read_text().splitlines() == ["systemctl is-enabled docker"]
