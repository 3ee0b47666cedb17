"""CPython 3.9 built from source, for stand-ins whose Debian suite has no Python 3.9.

cibuildwheel 4.3.5 runs ``/opt/python/cp39-cp39/bin/python`` for everything it does in
a container (``oci_container.py``: ``UTILITY_PYTHON``), and bullseye, the last Debian
with a Python 3.9, no longer carries ppc64el, s390x or riscv64. So those stand-ins
build CPython 3.9 themselves, as manylinux builds its interpreters: from the source
Debian shipped for bullseye (``python3.9_3.9.2.orig.tar.xz``, the upstream tarball,
pinned here by sha256), configured with ``--prefix=/opt/python/cp39-cp39``.

Where it is built, and why not under emulation: configure's ~700 compile-and-run checks,
setup.py's extension builds and the standard library's byte-compilation run the new
interpreter and the gcc driver hundreds of times; under QEMU that is the better part of
an hour per architecture, on a CI budget of 60 minutes for everything. Instead it is
*cross*-compiled on the host, natively, in a customize hook of the bootstrap, with the
freshly made root filesystem as the sysroot (its headers, its libraries, its own
``crtbegin.o`` and ``libgcc``):

- the compilers are Debian's x86_64 cross packages of exactly the suite's gcc and
  binutils (``gcc-12-powerpc64le-linux-gnu`` 12.2.0-14cross1 for bookworm's gcc 12.2.0),
  pinned by sha256 below: the same leaves the compiler probe of ``config/offline-native.
  yaml`` proves equivalent to the image's own (``images.native_probe``);
- the build Python (setup.py, the sysconfig data, byte-compiling) is Debian bullseye's
  own x86_64 ``python3.9``, the same 3.9.2 release, its pinned .debs unpacked into the
  cache (bytecode does not depend on the architecture). It replaced a native build of
  the same tarball (168 s on 2 cores, on the cold path of every first bootstrap): the
  installed interpreters were compared file by file, both ways (docs/standins.md);
- configure cannot run target programs when cross-compiling: ``CONFIG_SITE`` answers the
  two questions it cannot guess (``/dev/ptmx`` exists, ``/dev/ptc`` does not).

The result is checked inside the image (the image suite: ``ssl``, ``ctypes``, ``sqlite3``,
``zlib`` and more import; a subset of ``python -m test`` passes under emulation) and its
source is recorded in the label ``io.xarch.standin.cpython-source``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from xarch.errors import BuildError, ChecksumMismatch, FetchError
from xarch.images import native
from xarch.images.resources import resource_path
from xarch.images.standin.pins import (
    BUILD_PYTHON_DEBS,
    CP39_SOURCE,
    CROSS_TOOLCHAINS,
    PythonSource,
)
from xarch.images.standin.suites import CP39_BUILD_SCRIPT, Log, StandinSpec
from xarch.model import faults
from xarch.model.arch import Arch
from xarch.model.config import Accelerate, DebPin
from xarch.model.hashing import sha256_file
from xarch.model.paths import cache_dir

PREFIX = "/opt/python/cp39-cp39"


def toolchain_pins(spec: StandinSpec) -> tuple[DebPin, ...]:
    pins = CROSS_TOOLCHAINS.get((spec.base.suite, spec.arch.debian_arch))
    if pins is None:
        known = ", ".join(f"{s}/{a}" for s, a in CROSS_TOOLCHAINS)
        raise BuildError(
            f"no cross toolchain is pinned to build CPython 3.9 for Debian {spec.base.suite} "
            f"{spec.arch.debian_arch} (pinned: {known}); "
            "add its .debs to CROSS_TOOLCHAINS in xarch/images/standin/pins.py"
        )
    return pins


# ---------------------------------------------------------------------------- inputs


def fetch_source(mirror: str, log: Log = print, pin: PythonSource = CP39_SOURCE) -> Path:
    """The pinned CPython tarball from Debian's pool, in xarch's cache; checked by
    sha256 before it is published under its name (a mismatch is ChecksumMismatch,
    exit 2, naming both hashes; nothing is kept)."""
    store = cache_dir() / "sources"
    out = store / pin.filename
    if out.is_file() and sha256_file(out) == pin.sha256:
        return out
    store.mkdir(parents=True, exist_ok=True)
    url = f"{mirror.rstrip('/')}/{pin.pool}"
    log(f"  downloading {url}")
    fd, tmp_name = tempfile.mkstemp(prefix=".download-", dir=store)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f, urllib.request.urlopen(url, timeout=60) as r:
            shutil.copyfileobj(r, f)
        got = sha256_file(tmp)
        if got != pin.sha256:
            raise ChecksumMismatch(
                f"the CPython {pin.version} source {url} has sha256 {got}; xarch pins "
                f"{pin.sha256} (CP39_SOURCE in xarch/images/standin/pins.py)\n"
                "  hint: the mirror serves another file under that name; nothing was built"
            )
        os.replace(tmp, out)
    except (urllib.error.URLError, OSError) as e:
        fault = faults.recognise(str(e), path=str(store), host=mirror)
        raise FetchError(
            f"cannot download the CPython source {url}: {e}" + (f"\n  {fault}" if fault else "")
        ) from None
    finally:
        tmp.unlink(missing_ok=True)
    return out


# Held while a build Python or a cross toolchain is fetched and unpacked (bootstraps run
# in threads side by side; a file lock in the .debs' directory covers other processes).
_PREPARE_LOCK = threading.Lock()


@contextlib.contextmanager
def _exclusive(directory: Path) -> Iterator[None]:
    """One preparer at a time over `directory`: the thread lock for bootstraps side by
    side in this process, a file lock (`directory/.lock`) for other processes."""
    with _PREPARE_LOCK, (directory / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _unpacked(acc: Accelerate, store: Path, name: str, log: Log) -> Path:
    """`acc`'s pinned .debs, downloaded (verified) and unpacked, not installed, into
    ``store/<name>-<key>``; the tree's root. Unpacked in a scratch directory and renamed
    into place whole; one apt at a time (bootstraps side by side share apt's private
    state directory)."""
    key = hashlib.sha256(
        json.dumps([[p.package, p.sha256] for p in acc.packages]).encode()
    ).hexdigest()
    tree = store / f"{name}-{key[:12]}"
    if (tree / ".complete").is_file():
        return tree
    store.mkdir(parents=True, exist_ok=True)
    debs_dir = cache_dir() / "native"  # the .debs and apt's private state
    debs_dir.mkdir(parents=True, exist_ok=True)
    with _exclusive(debs_dir):
        if (tree / ".complete").is_file():
            return tree
        debs = native.fetch_debs(acc, debs_dir, log)
        tmp = Path(tempfile.mkdtemp(prefix=f".work-{os.getpid()}-", dir=store))
        try:
            native.unpack_debs(debs, tmp)
            (tmp / ".complete").write_text("\n".join(sorted(p.name for p in debs.values())) + "\n")
            shutil.rmtree(tree, ignore_errors=True)
            os.replace(tmp, tree)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return tree


def _debs(name: str, pins: tuple[DebPin, ...], suite: str, mirror: str) -> Accelerate:
    return Accelerate(
        enabled=True,
        toolchain=name,
        gcc_version="",
        binutils_version="",
        leaves=(),
        packages=pins,
        suite=suite,
        mirror=mirror,
        directory="",
    )


def build_python(mirror: str, log: Log = print, pin: PythonSource = CP39_SOURCE) -> Path:
    """The x86_64 CPython of `pin`'s release that the cross build runs (setup.py, the
    sysconfig data, byte-compiling): Debian bullseye's own python3.9, its pinned .debs
    (BUILD_PYTHON_DEBS) unpacked under xarch's cache; the bin/ directory holding it.

    It finds its library next to itself (no install, no LD_LIBRARY_PATH): the cross
    build puts the source's own Lib first on its path and imports nothing that needs the
    bullseye libraries bookworm lacks (libssl1.1, libffi7). A tree whose interpreter
    does not start, or answers with another release than the source's, is refused."""
    major_minor = pin.version.rsplit(".", 1)[0]
    tree = _unpacked(
        _debs(f"debian-bullseye-python{major_minor}-amd64", BUILD_PYTHON_DEBS, "bullseye", mirror),
        cache_dir() / "python-build",
        f"bullseye-python{major_minor}-amd64",
        log,
    )
    python = tree / "usr" / "bin" / f"python{major_minor}"
    try:
        done = subprocess.run(
            [str(python), "-S", "-c", "import sys; print(sys.version.split()[0])"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        answer = done.stdout.strip() if done.returncode == 0 else done.stderr.strip()[-300:]
    except OSError as e:
        answer = str(e)
    if answer != pin.version:
        raise BuildError(
            f"the build Python {python} (Debian bullseye's, BUILD_PYTHON_DEBS in "
            f"xarch/images/standin/pins.py) answered {answer!r}, not {pin.version}: the "
            "cross build needs the source's own release\n"
            f"  hint: remove {tree} to fetch it again; if it persists, pin the .debs of "
            f"python{major_minor} {pin.version}"
        )
    return python.parent


def cross_toolchain(spec: StandinSpec, log: Log = print) -> Path:
    """Debian's x86_64 cross gcc and binutils of the suite's version, unpacked (not
    installed) under xarch's cache; the tree's root."""
    acc = _debs(
        f"debian-{spec.base.suite}-gcc{spec.suite.gcc}-{spec.arch.name}-cross",
        toolchain_pins(spec),
        spec.base.suite,
        spec.mirror,
    )
    return _unpacked(acc, cache_dir() / "cross", f"{spec.base.suite}-{spec.arch.debian_arch}", log)


@dataclass(frozen=True, kw_only=True)
class CrossBuild:
    """What the bootstrap's host-side hook needs to build cp39 into the new root."""

    source: Path
    build_python: Path  # a bin/ directory holding python3.9
    toolchain: Path
    arch: Arch
    gcc_major: str
    work: Path

    def hook(self) -> str:
        """The mmdebstrap customize hook (runs on the host; "$1" is the new root)."""
        script = Path(str(resource_path("standin-manylinux"))) / CP39_BUILD_SCRIPT
        env = {
            "XARCH_CPYTHON_SOURCE": self.source,
            "XARCH_BUILD_PYTHON": self.build_python,
            "XARCH_CROSS_TREE": self.toolchain,
            "XARCH_TRIPLET": self.arch.gnu_triplet,
            "XARCH_GCC_MAJOR": self.gcc_major,
            "XARCH_WORK": self.work,
            "XARCH_PREFIX": PREFIX,
        }
        assigns = " ".join(f"{k}={shlex.quote(str(v))}" for k, v in env.items())
        return f'env {assigns} /bin/sh {shlex.quote(str(script))} "$1"'


def prepare(spec: StandinSpec, work: Path, log: Log = print) -> CrossBuild | None:
    """The inputs of spec's cp39 build, fetched and checked; None where the suite has
    its own Python 3.9 (or the layout is plain Debian)."""
    if spec.base.layout != "manylinux-standin" or not spec.suite.builds_cp39:
        return None
    log(
        f"  CPython {CP39_SOURCE.version} for /opt/python/cp39-cp39: Debian {spec.base.suite} "
        f"has none, so it is built from source (cross-compiled natively, see docs/standins.md)"
    )
    source = fetch_source(spec.mirror, log)
    tree = cross_toolchain(spec, log)
    bindir = build_python(spec.mirror, log)
    return CrossBuild(
        source=source,
        build_python=bindir,
        toolchain=tree,
        arch=spec.arch,
        gcc_major=spec.suite.gcc,
        work=work / "cpython",
    )
