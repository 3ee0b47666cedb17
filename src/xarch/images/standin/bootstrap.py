"""The root filesystem: mmdebstrap under emulation, cached by the spec's key."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from xarch.errors import BuildError
from xarch.host import binfmt
from xarch.images import hostdeb
from xarch.images.standin import interpreters
from xarch.images.standin.suites import (
    CP39_INSTALL_SCRIPT,
    DPKG_EXCLUDES,
    MERGED_USR_HOOK,
    Log,
    StandinSpec,
    shell_quote,
)
from xarch.images.standin.wheels import python_wheels
from xarch.model import children
from xarch.model.arch import Arch, host_arch
from xarch.model.children import stopped_on_error
from xarch.model.paths import cache_dir
from xarch.oci import archive as imagearchive

# dpkg's fsync of every unpacked file buys nothing for a tarball made once: without it
# (eatmydata around dpkg, as mmdebstrap's hook sets up and removes again) the emulated
# installs spend their time on work. Not part of the cache key: the content is the same.
SPEED_OPTIONS = (
    "--dpkgopt=force-unsafe-io",
    "--hook-dir=/usr/share/mmdebstrap/hooks/eatmydata",
)
BOOTSTRAP_ATTEMPTS = 3
# apt errors that a later attempt usually does not see (a mirror mid-sync).
TRANSIENT_APT_ERRORS = ("Mirror sync in progress", "Hash Sum mismatch", "unexpected size")


@contextlib.contextmanager
def _emulation(arch: Arch, emulator: Path, log: Log) -> Iterator[None]:
    """Make sure the kernel can run `arch` binaries while mmdebstrap runs; restore after."""
    if any(e.enabled for e in binfmt.entries_for(arch)) and binfmt.status_enabled():
        yield
        return
    log(f"  registering a temporary binfmt handler for {arch.name} (restored afterwards)")
    with binfmt.temporary_handler(arch, str(emulator), flags="F", log=log):
        yield


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
        cross = interpreters.prepare(spec, work, log)
        return _bootstrap(spec, emulator, wheels, apt_archive, work, out, log, host_deb, cross)
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
    cross: interpreters.CrossBuild | None = None,
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
        ]
        if cross is not None:
            # On the host, natively: CPython 3.9 cross-compiled into the root, then pip
            # and build installed into it in the chroot (interpreters.py says why).
            cmd += [
                f"--customize-hook={cross.hook()}",
                '--customize-hook=chroot "$1" /bin/sh /tmp/xarch-standin/' + CP39_INSTALL_SCRIPT,
            ]
        cmd += ['--customize-hook=rm -rf "$1/tmp/xarch-standin"']
    cmd += [spec.base.suite, str(tmp), spec.mirror]
    log("+ " + " ".join(shell_quote(c) for c in cmd))
    log(f"  bootstrapping Debian {spec.base.suite} {spec.arch.debian_arch} (a few minutes, once)")
    start = time.monotonic()
    if host_deb:
        log("  the chroot's dpkg decodes each .deb with this host's dpkg-deb (native)")
    env = {**os.environ, **({hostdeb.ENV: str(host_deb)} if host_deb else {})}
    # mmdebstrap writes the tarball with `--mtime=@<its start> --clamp-mtime`: every file
    # the customize hooks write (pip's installs, the built CPython's library) lands with
    # the start time, while the .pyc compiled beside it recorded the real, later mtime.
    # Every such .pyc was stale in every container: each Python start recompiled what it
    # imported, under emulation (pip, build, setuptools, auditwheel; a built CPython's
    # whole library). With SOURCE_DATE_EPOCH set (the same clamp mmdebstrap would take,
    # now made explicit), py_compile's default is checked-hash (PEP 552): such .pyc are
    # validated by the source's hash, not its mtime. Debian's own .pyc (timestamp
    # based, sources older than the clamp) are untouched.
    env["SOURCE_DATE_EPOCH"] = str(int(time.time()))
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
                    + "\n    ".join(tail[-20:])
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


def _mib(n: int) -> str:
    return imagearchive.mib(n)
