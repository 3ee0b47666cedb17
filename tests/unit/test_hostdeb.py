"""The stand-in check (every package file against its md5sums) and the staging of the
host's dpkg-deb for the bootstrap (images.hostdeb)."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from xarch.errors import BuildError
from xarch.images import hostdeb
from xarch.images.standin import DPKG_EXCLUDES


def _tar(path: Path, files: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with tarfile.open(path, "w") as t:
        for name, target in (links or {}).items():
            m = tarfile.TarInfo("./" + name)
            m.type = tarfile.SYMTYPE
            m.linkname = target
            t.addfile(m)
        for name, data in files.items():
            m = tarfile.TarInfo("./" + name)
            m.size = len(data)
            t.addfile(m, io.BytesIO(data))
    return path


def _md5(b: bytes) -> str:
    return hashlib.md5(b, usedforsecurity=False).hexdigest()


def _sums(*entries: tuple[str, bytes]) -> bytes:
    return "".join(f"{_md5(data)}  {path}\n" for path, data in entries).encode()


def test_every_listed_file_is_checked_and_excluded_ones_are_counted(tmp_path: Path) -> None:
    tar = _tar(
        tmp_path / "r.tar",
        {
            "usr/bin/hello": b"hello",
            "usr/share/doc/hello/copyright": b"(c)",
            "var/lib/dpkg/info/hello.md5sums": _sums(
                ("usr/bin/hello", b"hello"),
                ("usr/share/doc/hello/copyright", b"(c)"),
                ("usr/share/doc/hello/changelog.gz", b"log"),  # path-excluded
                ("usr/share/man/man1/hello.1.gz", b"man"),  # path-excluded
            ),
        },
    )
    assert hostdeb.verify_rootfs(tar, DPKG_EXCLUDES) == (2, 2)


def test_paths_through_merged_usr_symlinks_are_followed(tmp_path: Path) -> None:
    tar = _tar(
        tmp_path / "r.tar",
        {
            "usr/bin/bash": b"#!bash",
            "usr/lib/x/libc.so": b"elf",
            "var/lib/dpkg/info/bash.md5sums": _sums(
                ("bin/bash", b"#!bash"), ("lib/x/libc.so", b"elf")
            ),
        },
        links={"bin": "usr/bin", "lib": "/usr/lib"},
    )
    assert hostdeb.verify_rootfs(tar, DPKG_EXCLUDES) == (2, 0)


def test_a_file_with_another_md5_names_file_and_package(tmp_path: Path) -> None:
    tar = _tar(
        tmp_path / "r.tar",
        {
            "usr/bin/hello": b"tampered",
            "var/lib/dpkg/info/hello:arm64.md5sums": _sums(("usr/bin/hello", b"hello")),
        },
    )
    with pytest.raises(BuildError, match=r"/usr/bin/hello of package hello:arm64 has md5"):
        hostdeb.verify_rootfs(tar, DPKG_EXCLUDES)


def test_a_missing_file_that_no_exclude_removes_is_an_error(tmp_path: Path) -> None:
    tar = _tar(
        tmp_path / "r.tar",
        {"var/lib/dpkg/info/hello.md5sums": _sums(("usr/bin/hello", b"hello"))},
    )
    with pytest.raises(BuildError, match=r"/usr/bin/hello of package hello is missing"):
        hostdeb.verify_rootfs(tar, DPKG_EXCLUDES)


def test_a_root_with_nothing_to_check_fails(tmp_path: Path) -> None:
    tar = _tar(tmp_path / "r.tar", {"etc/hostname": b"x"})
    with pytest.raises(BuildError, match="no package file found"):
        hostdeb.verify_rootfs(tar, DPKG_EXCLUDES)


def test_staging_copies_the_host_tools_their_libraries_and_loader(tmp_path: Path) -> None:
    shell = tmp_path / "busybox"
    shell.write_bytes(b"\x7fELF static shell")
    d = hostdeb.stage(tmp_path / "stage", shell)
    loader = (d / ".loader").read_text()
    assert (d / loader).is_file() and os.access(d / "busybox", os.X_OK)
    # The staged dpkg-deb runs from the stage alone, through the staged loader, as the
    # wrapper in the chroot runs it.
    r = subprocess.run(
        [str(d / loader), "--library-path", str(d), str(d / "dpkg-deb"), "--version"],
        capture_output=True,
        text=True,
        env={"PATH": "/nonexistent"},
        check=False,
    )
    assert r.returncode == 0 and "dpkg-deb" in r.stdout


def test_the_hooks_are_given_as_shell_commands_on_the_chroot() -> None:
    opts = hostdeb.mmdebstrap_options()
    assert opts[0].startswith("--extract-hook=/bin/sh ") and opts[0].endswith(' "$1"')
    assert opts[1].startswith("--customize-hook=/bin/sh ")
    for f in hostdeb.hook_files():
        assert f.is_file()
        assert subprocess.run(["sh", "-n", str(f)], check=False).returncode == 0
