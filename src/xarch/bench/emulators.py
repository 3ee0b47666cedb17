"""The emulator binaries a run compares: the config's pin, and QEMU from
bookworm-backports (Debian 12's newer QEMU, package ``qemu-user``, whose static
binaries are named ``qemu-<arch>``).

The backports package is fetched through a private apt configuration under the
cache: its own sources.list (only bookworm-backports), package lists, cache and
an empty dpkg status. The host's apt sources, lists and dpkg state are never
changed. The binaries are kept in the cache with their sha256; every result row
names the binary by version and sha256.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from xarch.host import qemu
from xarch.model.arch import ARCHES, Arch
from xarch.model.config import QemuPin
from xarch.model.paths import cache_dir

Log = Callable[[str], None]

BACKPORTS_MIRROR = "http://deb.debian.org/debian"
BACKPORTS_SUITE = "bookworm-backports"
BACKPORTS_PACKAGE = "qemu-user"
DEBIAN_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")


@dataclass(frozen=True, kw_only=True)
class Emulator:
    """One emulator binary for one architecture."""

    key: str  # short and stable: "pin" or "backports"
    label: str  # for humans: "QEMU 7.2.22 (pin)"
    arch: str
    path: Path
    version: str  # e.g. "7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)"
    sha256: str
    source: str

    @property
    def short(self) -> str:
        """ "QEMU 7.2.22 sha256:4f55e2e8": what a table row names."""
        return f"QEMU {self.version.split()[0]} sha256:{self.sha256[:8]}"

    def to_json(self) -> dict[str, str]:
        return {
            "key": self.key,
            "label": self.label,
            "arch": self.arch,
            "path": str(self.path),
            "version": self.version,
            "sha256": self.sha256,
            "source": self.source,
        }


def parse_version(text: str) -> str:
    """``qemu-aarch64 version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)`` ->
    ``7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)``; "" when it is not there."""
    m = re.search(r"version\s+(\S+(?:\s+\([^)]*\))?)", text)
    return m.group(1) if m else ""


def emulator_version(path: Path) -> str:
    try:
        r = subprocess.run(
            [str(path), "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return parse_version(r.stdout)


def parse_cpu_models(text: str) -> frozenset[str]:
    """The model names in ``qemu-<arch> -cpu help`` (aliases included, lowercased).

    QEMU 7.2 prints ``PowerPC power9_v2.0 PVR 004e1200`` for ppc and ``  cortex-a72``
    for aarch64; 10.0 prints ``  power9  (alias for power9_v2.2)``."""
    out: set[str] = set()
    for line in text.splitlines():
        tokens = line.split()
        if not tokens or line.rstrip().endswith(":"):
            continue
        name = tokens[1] if tokens[0] == "PowerPC" and len(tokens) > 1 else tokens[0]
        out.add(name.lower())
    return frozenset(out)


def cpu_models(path: Path) -> frozenset[str]:
    try:
        r = subprocess.run(
            [str(path), "-cpu", "help"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return frozenset()
    return parse_cpu_models(r.stdout)


def pinned(pin: QemuPin, arches: list[Arch], log: Log) -> dict[str, Emulator]:
    """The config's pinned emulators (fetched and verified by xarch.qemu)."""
    paths = qemu.ensure_emulators(pin, arches, log)
    return {
        a.name: Emulator(
            key="pin",
            label=f"QEMU {pin.version} (the config's pin)",
            arch=a.name,
            path=paths[a.name],
            version=emulator_version(paths[a.name]) or pin.version,
            sha256=pin.sha256_for(a),
            source=f"config qemu pin ({pin.source.kind} {pin.source.package} {pin.version})",
        )
        for a in arches
    }


def _apt_options(state: Path) -> list[str]:
    """apt-get options for a private configuration that knows only bookworm-backports."""
    signed = f"[signed-by={DEBIAN_KEYRING}] " if DEBIAN_KEYRING.is_file() else ""
    return qemu.private_apt_options(
        state, sources_list=f"deb {signed}{BACKPORTS_MIRROR} {BACKPORTS_SUITE} main\n"
    )


def backports_dir() -> Path:
    return cache_dir() / "bench" / "qemu-backports"


def backports(arches: list[Arch], log: Log) -> tuple[dict[str, Emulator], str]:
    """QEMU from bookworm-backports for ``arches``: ({arch: Emulator}, "") or
    ({}, why it is not available). Cached; the network is used only when the cache
    lacks a binary."""
    d = backports_dir()
    wanted = {a.name: a.qemu_binary.removesuffix("-static") for a in arches}
    missing = [n for n in wanted.values() if not (d / n).is_file()]
    if missing:
        if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
            return {}, "apt-get/dpkg-deb not available (not a Debian host)"
        why = _fetch_backports(d, log)
        if why:
            return {}, why
    package_version = (
        (d / "package-version").read_text().strip() if (d / "package-version").exists() else ""
    )
    out: dict[str, Emulator] = {}
    for a in arches:
        path = d / wanted[a.name]
        if not path.is_file():
            return {}, f"{BACKPORTS_PACKAGE} from {BACKPORTS_SUITE} has no {wanted[a.name]}"
        version = emulator_version(path)
        out[a.name] = Emulator(
            key="backports",
            label=f"QEMU {version.split()[0] if version else '?'} ({BACKPORTS_SUITE})",
            arch=a.name,
            path=path,
            version=version or package_version,
            sha256=qemu.sha256_file(path),
            source=f"apt {BACKPORTS_PACKAGE}={package_version} from {BACKPORTS_SUITE}",
        )
    return out, ""


def _fetch_backports(d: Path, log: Log) -> str:
    state = cache_dir() / "bench" / "apt-backports"
    options = _apt_options(state)
    log(
        f"  fetching {BACKPORTS_PACKAGE} from {BACKPORTS_SUITE} through a private apt "
        f"configuration ({state}); the host's apt sources are unchanged"
    )

    def apt(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
        log("+ " + shlex.join(["apt-get", "-q", *args]))
        return subprocess.run(
            ["apt-get", "-q", *options, *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )

    # Only the architectures xarch knows: the package holds some thirty emulators.
    known = sorted({a.qemu_binary.removesuffix("-static") for a in ARCHES.values()})
    with tempfile.TemporaryDirectory(prefix="xarch-bench-apt-") as tmp:
        t = Path(tmp)
        r = apt(["update"], t)
        if r.returncode != 0:
            return f"apt-get update for {BACKPORTS_SUITE} failed: {qemu.apt_last_line(r)}"
        r = apt(["download", BACKPORTS_PACKAGE], t)
        if r.returncode != 0:
            return f"apt-get download {BACKPORTS_PACKAGE} failed: {qemu.apt_last_line(r)}"
        debs = list(t.glob("*.deb"))
        if len(debs) != 1:
            return f"apt-get download produced {len(debs)} .deb files"
        version = subprocess.run(
            ["dpkg-deb", "-f", str(debs[0]), "Version"], capture_output=True, text=True, check=False
        ).stdout.strip()
        log(f"+ dpkg-deb -x {debs[0].name} ...")
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(t / "x")], check=True)
        d.mkdir(parents=True, exist_ok=True)
        for name in known:
            f = t / "x" / "usr" / "bin" / name
            if f.is_file():
                staged = d / f".{f.name}.tmp"
                shutil.copyfile(f, staged)
                staged.chmod(0o755)
                staged.replace(d / f.name)
        (d / "package-version").write_text(version + "\n")
    return ""
