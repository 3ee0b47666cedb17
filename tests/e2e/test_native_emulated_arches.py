"""Accelerated ppc64le, s390x and riscv64 helper images end to end (issue 17): for each,
`build-images` of config/offline-native.yaml's target relocates Debian's x86_64 cross
leaves of exactly the stand-in's gcc and binutils into the stand-in and proves it (the
compiler probe, then the uv probe); `push-images` publishes it; cibuildwheel, unchanged,
builds, repairs and tests the sample C extension for cp39 and the suite's own Python in
it, and each extension is an ELF of the architecture's machine and byte order.

By default s390x only (the one big-endian target, the one whose byte order every
byte-level path of xarch must get right): each image's probes compile the corpus under
emulation first, about five minutes an architecture here, and the three together are
more than CI's cold budget holds beside the rest. `XARCH_E2E_ACCELERATED` picks others
(`ppc64le,s390x,riscv64` for all; empty for none). CI also runs the aarch64 one
(test_native_wheels.py) and the s390x negative control
(tests/integration/test_probe_big_endian.py). Temporary flag-F handlers of its own, the
host's put back after.

    XARCH_E2E_ACCELERATED=ppc64le,s390x,riscv64 pytest tests/e2e/test_native_emulated_arches.py -v
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO_ROOT, copy_project, handler_only
from tests.e2e.test_emulated_arches import ELF, SUITE
from xarch.model.config import load_config
from xarch.model.report import read_report
from xarch.oci.engine import Engine
from xarch.publish.pull import pushed_refs
from xarch.wheels.run import build_wheels

pytestmark = [pytest.mark.docker, pytest.mark.registry, pytest.mark.emulation, pytest.mark.binfmt]

CONFIG = REPO_ROOT / "config" / "offline-native.yaml"
XARCH = Path(sys.executable).with_name("xarch")
TARGETS = {
    "ppc64le": "standin-manylinux2014_ppc64le",
    "s390x": "standin-manylinux_2_28_s390x",
    "riscv64": "standin-manylinux_2_39_riscv64",
}
#: The suite's Python beside cp39, as cibuildwheel selects it.
OWN = {"ppc64le": "cp311-*", "s390x": "cp311-*", "riscv64": "cp313-*"}
SELECTED = [a for a in os.environ.get("XARCH_E2E_ACCELERATED", "s390x").split(",") if a]


@pytest.mark.parametrize("arch", list(TARGETS))
def test_accelerated_image_is_proven_and_cibuildwheel_builds_in_it(
    arch: str,
    ca_bundle: str | None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if arch not in SELECTED:
        pytest.skip(
            f"not selected: XARCH_E2E_ACCELERATED={arch} adds it (minutes of probes under "
            "emulation; s390x runs by default)"
        )
    target = TARGETS[arch]
    build_dir = tmp_path / "build"
    env = dict(os.environ, XARCH_BUILD_DIR=str(build_dir))
    with handler_only(arch, "F"):
        for step in ("build-images", "push-images"):
            done = subprocess.run(
                [str(XARCH), step, "--config", str(CONFIG), "--target", target],
                capture_output=True,
                text=True,
                env=env,
                timeout=3600,
            )
            assert done.returncode == 0, f"{step}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        report = build_dir / "xarch-report.json"
        data = read_report(report)
        [build] = [b for b in data["build"]["targets"] if b["target"] == target]
        assert build["native"]["probe"].startswith("passed ("), build["native"]
        config = load_config(CONFIG)
        image = pushed_refs(data, config, config.select([target]), report)[target].ref
        labels = Engine.connect().labels(image) or {}
        assert labels["org.xarch.native.probe"].startswith("passed (")
        assert labels["org.xarch.uv.probe"].startswith("passed ("), labels

        monkeypatch.setenv("XARCH_BUILD_DIR", str(build_dir))
        monkeypatch.setenv("CIBW_BUILD", f"cp39-* {OWN[arch]}")
        monkeypatch.setenv("CIBW_SKIP", "*-musllinux_*")
        out = tmp_path / "wheelhouse"
        outcome = build_wheels(
            config,
            [target],
            project=copy_project("cext", tmp_path),
            output=out,
            report=report,
            ca_bundle=ca_bundle,
            environ=dict(os.environ),
        )
    [run] = outcome.results
    assert Path(run.log).read_text().count(" passed") >= 2, "the tests did not run for both"
    own, policy = SUITE[arch]
    wheels = sorted(w.name for w in out.glob(f"*_{arch}.whl"))
    assert [w.split("-")[2] for w in wheels] == [own, "cp39"], wheels
    machine, order = ELF[arch]
    for w in wheels:
        assert w.endswith(f"{policy}_{arch}.whl"), w
        with zipfile.ZipFile(out / w) as z:
            [so] = [n for n in z.namelist() if n.endswith(".so")]
            head = z.read(so)[:20]
        assert head[:4] == b"\x7fELF" and head[5] == order, head
        assert int.from_bytes(head[18:20], "big" if order == 2 else "little") == machine
    section = read_report(report)["wheels"]
    assert list(section["runs"][0]["images"].values()) == [image]
