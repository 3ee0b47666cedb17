"""The emulator pins (xarch.qemu.ensure_emulators) with local sources only.

The "emulators" are small byte strings in a tmp directory; XARCH_CACHE_DIR points at
tmp, so nothing outside tmp_path is read or written and no network is used.
"""

from __future__ import annotations

import hashlib
import shutil
import stat
from pathlib import Path

import pytest

from xarch.errors import ChecksumMismatch, FetchError
from xarch.host.qemu import emulator_dir, ensure_emulators
from xarch.model.arch import Arch, get_arch
from xarch.model.config import QemuPin, QemuSource

AARCH64 = get_arch("aarch64")
PPC64LE = get_arch("ppc64le")

CONTENT = {
    "qemu-aarch64-static": b"\x7fELF fake aarch64 emulator\n",
    "qemu-ppc64le-static": b"\x7fELF fake ppc64le emulator\n",
}
GOOD = {name: hashlib.sha256(data).hexdigest() for name, data in CONTENT.items()}
WRONG = "0" * 64


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "cache"
    monkeypatch.setenv("XARCH_CACHE_DIR", str(d))
    return d


@pytest.fixture
def source_dir(tmp_path: Path) -> Path:
    d = tmp_path / "emulators"
    d.mkdir()
    for name, data in CONTENT.items():
        (d / name).write_bytes(data)
    return d


def dir_pin(path: Path, sha256: dict[str, str] | None = None) -> QemuPin:
    return QemuPin(
        version="7.2-test",
        source=QemuSource(kind="dir", path=path),
        sha256=dict(GOOD if sha256 is None else sha256),
    )


def url_pin(url: str, sha256: dict[str, str] | None = None) -> QemuPin:
    return QemuPin(
        version="7.2-test",
        source=QemuSource(kind="url", url=url),
        sha256=dict(GOOD if sha256 is None else sha256),
    )


class Log(list[str]):
    def __call__(self, line: str) -> None:
        self.append(line)


def files_named(root: Path, binary: str) -> list[Path]:
    """Every file under root whose name mentions binary (staged copies included)."""
    return [p for p in root.rglob("*") if binary in p.name] if root.exists() else []


@pytest.mark.parametrize("arches", [[AARCH64], [AARCH64, PPC64LE]], ids=["one", "two"])
def test_correct_sha256_returns_cached_paths(
    source_dir: Path, cache: Path, arches: list[Arch]
) -> None:
    pin = dir_pin(source_dir)
    got = ensure_emulators(pin, arches, log=Log())
    assert list(got) == [a.name for a in arches]
    for a in arches:
        path = got[a.name]
        assert path == emulator_dir(pin) / a.qemu_binary
        assert path.is_relative_to(cache)
        assert path.read_bytes() == CONTENT[a.qemu_binary]


def test_cached_emulator_is_executable(source_dir: Path) -> None:
    path = ensure_emulators(dir_pin(source_dir), [AARCH64], log=Log())["aarch64"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o755


def test_second_call_does_not_read_the_source(source_dir: Path) -> None:
    pin = dir_pin(source_dir)
    first = ensure_emulators(pin, [AARCH64, PPC64LE], log=Log())
    shutil.rmtree(source_dir)
    log = Log()
    assert ensure_emulators(pin, [AARCH64, PPC64LE], log=log) == first
    assert log == []


def test_result_keyed_by_arch_name_once(source_dir: Path) -> None:
    got = ensure_emulators(dir_pin(source_dir), [AARCH64, get_arch("arm64")], log=Log())
    assert list(got) == ["aarch64"]


@pytest.mark.parametrize("file_name", ["qemu-aarch64-static", "qemu-aarch64"])
def test_dir_source_finds_static_or_plain_name(tmp_path: Path, file_name: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / file_name).write_bytes(CONTENT["qemu-aarch64-static"])
    got = ensure_emulators(dir_pin(src), [AARCH64], log=Log())
    assert got["aarch64"].name == "qemu-aarch64-static"
    assert got["aarch64"].read_bytes() == CONTENT["qemu-aarch64-static"]


@pytest.mark.parametrize("file_name", ["qemu-aarch64-static", "qemu-aarch64"])
def test_wrong_sha256_raises_checksum_mismatch(tmp_path: Path, cache: Path, file_name: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / file_name).write_bytes(CONTENT["qemu-aarch64-static"])
    with pytest.raises(ChecksumMismatch) as info:
        ensure_emulators(dir_pin(src, {"qemu-aarch64-static": WRONG}), [AARCH64], log=Log())
    text = str(info.value)
    assert info.value.exit_code == 2  # a wrong pin is bad input
    assert WRONG in text  # expected
    assert GOOD["qemu-aarch64-static"] in text  # found
    # the config key to update, whatever the file is called in the source
    assert "qemu.sha256.qemu-aarch64-static" in text
    assert str(src) in text


def test_wrong_sha256_leaves_nothing_in_the_cache(source_dir: Path, cache: Path) -> None:
    pin = dir_pin(source_dir, {**GOOD, "qemu-aarch64-static": WRONG})
    with pytest.raises(ChecksumMismatch):
        ensure_emulators(pin, [AARCH64], log=Log())
    assert files_named(cache, "qemu-aarch64") == []


def test_wrong_sha256_then_a_correct_pin_fetches(source_dir: Path) -> None:
    bad = dir_pin(source_dir, {"qemu-aarch64-static": WRONG})
    with pytest.raises(ChecksumMismatch):
        ensure_emulators(bad, [AARCH64], log=Log())
    got = ensure_emulators(dir_pin(source_dir), [AARCH64], log=Log())
    assert got["aarch64"].read_bytes() == CONTENT["qemu-aarch64-static"]


def test_corrupted_cache_entry_is_replaced(source_dir: Path) -> None:
    pin = dir_pin(source_dir)
    path = ensure_emulators(pin, [AARCH64], log=Log())["aarch64"]
    path.write_bytes(b"corrupted")
    assert (
        ensure_emulators(pin, [AARCH64], log=Log())["aarch64"].read_bytes()
        == (CONTENT["qemu-aarch64-static"])
    )


def test_missing_binary_in_dir_raises_fetch_error(source_dir: Path) -> None:
    (source_dir / "qemu-ppc64le-static").unlink()
    with pytest.raises(FetchError) as info:
        ensure_emulators(dir_pin(source_dir), [PPC64LE], log=Log())
    text = str(info.value)
    assert info.value.exit_code == 1
    assert "qemu-ppc64le-static not found" in text
    assert str(source_dir) in text


def test_missing_source_dir_raises_fetch_error(tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="qemu-aarch64-static not found"):
        ensure_emulators(dir_pin(tmp_path / "absent"), [AARCH64], log=Log())


def test_arch_without_pin_raises_fetch_error(source_dir: Path) -> None:
    pin = dir_pin(source_dir, {"qemu-aarch64-static": GOOD["qemu-aarch64-static"]})
    with pytest.raises(FetchError, match=r"no sha256 pinned for qemu-ppc64le-static"):
        ensure_emulators(pin, [AARCH64, PPC64LE], log=Log())


# A space in the directory: file:// URLs are percent-encoded, the path must be decoded.
@pytest.mark.parametrize("dir_name", ["emulators", "emu dir"])
def test_file_url_source_with_binary_placeholder(tmp_path: Path, dir_name: str) -> None:
    src = tmp_path / dir_name
    src.mkdir()
    for name, data in CONTENT.items():
        (src / name).write_bytes(data)
    log = Log()
    got = ensure_emulators(url_pin(src.as_uri() + "/{binary}"), [AARCH64, PPC64LE], log=log)
    for a in (AARCH64, PPC64LE):
        assert got[a.name].read_bytes() == CONTENT[a.qemu_binary]
        assert stat.S_IMODE(got[a.name].stat().st_mode) == 0o755
    assert any("+ GET file://" in line and "qemu-aarch64-static" in line for line in log)


def test_file_url_source_wrong_sha256(source_dir: Path, cache: Path) -> None:
    pin = url_pin(source_dir.as_uri() + "/{binary}", {"qemu-aarch64-static": WRONG})
    with pytest.raises(ChecksumMismatch) as info:
        ensure_emulators(pin, [AARCH64], log=Log())
    assert WRONG in str(info.value)
    assert GOOD["qemu-aarch64-static"] in str(info.value)
    assert files_named(cache, "qemu-aarch64") == []


def test_file_url_source_missing_file(tmp_path: Path) -> None:
    pin = url_pin((tmp_path / "absent").as_uri() + "/{binary}")
    with pytest.raises(FetchError, match="cannot download qemu-aarch64-static"):
        ensure_emulators(pin, [AARCH64], log=Log())


def test_cache_separate_per_source(source_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(source_dir, other)
    assert emulator_dir(dir_pin(source_dir)) != emulator_dir(dir_pin(other))
