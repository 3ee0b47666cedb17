"""The host's dpkg-deb inside an emulated stand-in bootstrap, and the check that the
stand-in's files are its packages' own.

dpkg calls ``dpkg-split`` and ``dpkg-deb`` once or twice per package it unpacks: to
check for a split archive, to unpack the control files and to stream the decompressed
``data.tar``. Emulated, those calls are about a third of a bootstrap's time. During the
bootstrap (never in the image) xarch puts the host's own two tools, their libraries and
dynamic loader and a static busybox (the wrappers' shell) in the chroot and diverts the
chroot's tools to wrappers that run them natively; the chroot's dpkg still writes every
file and runs every maintainer script, emulated. Decoding a .deb is architecture-free
(the stream is the data.tar inside it, byte for byte), and ``verify_rootfs`` shows it for
each root filesystem made: every file a package lists in its md5sums has that md5.
Measured side by side, the root filesystem is the same as one made without the hook.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import posixpath
import re
import shutil
import subprocess
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from xarch.errors import BuildError
from xarch.images.resources import resource_path

TOOLS = ("dpkg-deb", "dpkg-split")
EXTRACT_HOOK = "host-dpkg-deb-extract.sh"
CUSTOMIZE_HOOK = "host-dpkg-deb-customize.sh"
ENV = "XARCH_HOST_DEB"


def hook_files() -> list[Path]:
    root = Path(str(resource_path("bootstrap-hooks")))
    return [root / EXTRACT_HOOK, root / CUSTOMIZE_HOOK]


def _ldd(binary: str) -> tuple[list[str], str]:
    """(shared libraries, dynamic loader) of a host binary, as the host's ldd resolves."""
    r = subprocess.run(["ldd", binary], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise BuildError(f"ldd {binary} failed: {(r.stderr or r.stdout).strip()}")
    libs: list[str] = []
    loader = ""
    for line in r.stdout.splitlines():
        m = re.match(r"\s*(\S+) => (/\S+) \(0x[0-9a-f]+\)", line)
        if m:
            libs.append(m.group(2))
            continue
        m = re.match(r"\s*(/\S+) \(0x[0-9a-f]+\)", line)
        if m:
            loader = m.group(1)
    if not loader:
        raise BuildError(f"ldd {binary}: no dynamic loader in its output")
    return libs, loader


def stage(dest: Path, shell: Path) -> Path:
    """Fill dest with what the extract hook copies into the chroot; returns dest."""
    dest.mkdir(parents=True, exist_ok=True)
    loader = ""
    for tool in TOOLS:
        path = shutil.which(tool)
        if path is None:
            raise BuildError(f"{tool} is not on this host's PATH (package dpkg)")
        libs, loader = _ldd(path)
        shutil.copy2(path, dest / tool)
        for lib in [*libs, loader]:
            shutil.copy(os.path.realpath(lib), dest / posixpath.basename(lib))
    shutil.copy(shell, dest / "busybox")
    os.chmod(dest / "busybox", 0o755)
    (dest / ".loader").write_text(posixpath.basename(loader))
    return dest


def mmdebstrap_options() -> list[str]:
    """The two hooks; given before mmdebstrap's eatmydata hook directory, so that their
    undoing runs first and the dpkg database ends as it would without them."""
    extract, customize = hook_files()
    return [
        f'--extract-hook=/bin/sh {extract} "$1"',
        f'--customize-hook=/bin/sh {customize} "$1"',
    ]


# --------------------------------------------------------------------------- verify


def _resolve(path: str, links: dict[str, str]) -> str:
    """path (relative, no leading ./) with symbolic links among its parent directories
    followed, as the kernel would inside the root (merged /usr: bin -> usr/bin)."""
    parts = path.split("/")
    out: list[str] = []
    for i, part in enumerate(parts):
        out.append(part)
        cur = "/".join(out)
        hops = 0
        while i < len(parts) - 1 and cur in links and hops < 20:
            target = links[cur]
            base = "" if target.startswith("/") else posixpath.dirname(cur)
            cur = posixpath.normpath(posixpath.join(base, target.lstrip("/")))
            hops += 1
        out = cur.split("/") if cur != "." else []
    return "/".join(out)


def verify_rootfs(tar: Path, excludes: Sequence[str]) -> tuple[int, int]:
    """Check every file of every package's md5sums in the root filesystem tarball.

    Returns (files checked, files absent as dpkg's path-exclude options intend). A file
    with another md5, or absent though not excluded, is a BuildError naming it.
    """
    patterns = [e.split("=", 1)[1] for e in excludes if e.startswith("path-exclude=")]
    keeps = [e.split("=", 1)[1] for e in excludes if e.startswith("path-include=")]
    sums: list[tuple[str, str, str]] = []  # (package, path, md5)
    files: dict[str, str] = {}  # resolved path -> md5
    links: dict[str, str] = {}
    with tarfile.open(tar) as t:
        members = [(m.name.removeprefix("./"), m) for m in t.getmembers()]
        for name, m in members:
            if m.issym():
                links[name.rstrip("/")] = m.linkname
            elif m.isfile() and name.startswith("var/lib/dpkg/info/") and name.endswith(".md5sums"):
                f = t.extractfile(m)
                assert f is not None
                pkg = posixpath.basename(name)[: -len(".md5sums")]
                for line in f.read().decode("utf-8", "replace").splitlines():
                    md5, _, path = line.partition("  ")
                    if md5 and path:
                        sums.append((pkg, path, md5))
        wanted = {_resolve(p, links) for _, p, _ in sums}
        for name, m in members:
            if name in wanted and (m.isfile() or m.islnk()):
                f = t.extractfile(m)  # a hard link reads as its target
                assert f is not None
                files[name] = _md5(f)
    checked = absent = 0
    for pkg, path, md5 in sums:
        got = files.get(_resolve(path, links))
        if got is None:
            full = "/" + path
            if any(fnmatch.fnmatch(full, p) for p in patterns) and not any(
                fnmatch.fnmatch(full, k) for k in keeps
            ):
                absent += 1
                continue
            raise BuildError(
                f"stand-in check: /{path} of package {pkg} is missing from {tar} "
                "(its md5sums lists it and no path-exclude option removes it)"
            )
        if got != md5:
            raise BuildError(
                f"stand-in check: /{path} of package {pkg} has md5 {got} in {tar}, "
                f"but the package's md5sums says {md5}"
            )
        checked += 1
    if checked == 0:
        raise BuildError(f"stand-in check: no package file found to check in {tar}")
    return checked, absent


def _md5(f: IO[bytes]) -> str:
    h = hashlib.md5(usedforsecurity=False)
    while chunk := f.read(1 << 20):
        h.update(chunk)
    return h.hexdigest()
