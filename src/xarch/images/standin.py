"""Stand-in bases bootstrapped from Debian's archive (NOT manylinux).

For hosts that cannot pull from public image registries. The root filesystem is
made by ``mmdebstrap`` (maintainer scripts run under QEMU), cached by a hash of
everything that goes into it, turned into a platform-correct image by writing a
docker-archive ourselves (Docker 20.10 ignores --platform on import and build, so
the image config's architecture is set here, not by the engine), pushed to the
configured registry and then used by digest, exactly like a pinned public base.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xarch.errors import BuildError
from xarch.host import binfmt
from xarch.images.resources import resource_path
from xarch.model.arch import Arch
from xarch.model.config import BootstrapBase, PinnedBase, RegistrySettings
from xarch.model.hashing import sha256_file
from xarch.model.paths import cache_dir
from xarch.oci import archive as imagearchive
from xarch.oci.engine import Engine

Log = Callable[[str], None]

LAYOUT_DIR = {"manylinux-standin": "standin-manylinux", "debian": ""}
# What the manylinux layout needs: an interpreter with pip and build (cibuildwheel's
# frontends), a C toolchain, and `file`.
LAYOUT_PACKAGES = {
    "manylinux-standin": (
        "bash",
        "ca-certificates",
        "file",
        "gcc",
        "g++",
        "libc6-dev",
        "make",
        "python3",
        "python3-dev",
        "python3-venv",
        "python3-pip",
        "python3-build",
        "python3-wheel",
    ),
    "debian": ("bash", "gcc", "libc6-dev", "python3"),
}
DPKG_EXCLUDES = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
)
BOOTSTRAP_ATTEMPTS = 3
# apt errors that a later attempt usually does not see (a mirror mid-sync).
TRANSIENT_APT_ERRORS = ("Mirror sync in progress", "Hash Sum mismatch", "unexpected size")
STANDIN_NOTE = "xarch stand-in built from Debian's archive; NOT manylinux"


@dataclass(frozen=True, kw_only=True)
class StandinSpec:
    base: BootstrapBase
    arch: Arch

    @property
    def packages(self) -> tuple[str, ...]:
        return tuple(sorted(set(LAYOUT_PACKAGES[self.base.layout]) | set(self.base.packages)))

    def layout_files(self) -> list[Path]:
        d = LAYOUT_DIR[self.base.layout]
        if not d:
            return []
        root = Path(str(resource_path(d)))  # installed packages are plain files
        return [root / "manylinux-entrypoint", root / "setup-standin.sh"]

    def key(self) -> str:
        """A hash of every input of the root filesystem."""
        h = hashlib.sha256()
        h.update(
            json.dumps(
                {
                    "suite": self.base.suite,
                    "arch": self.arch.debian_arch,
                    "layout": self.base.layout,
                    "packages": self.packages,
                    "mirror": self.base.mirror,
                    "dpkg": DPKG_EXCLUDES,
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
                "AUDITWHEEL_POLICY=manylinux2014",
                f"AUDITWHEEL_ARCH={self.arch.name}",
                f"AUDITWHEEL_PLAT=manylinux2014_{self.arch.name}",
            ]
        return env

    def labels(self) -> dict[str, str]:
        return {
            "io.xarch.standin": "true",
            "io.xarch.standin.layout": self.base.layout,
            "io.xarch.standin.suite": self.base.suite,
            "io.xarch.standin.key": self.key(),
            "org.opencontainers.image.title": f"{STANDIN_NOTE} ({self.base.layout})",
            "org.opencontainers.image.description": (
                f"Debian {self.base.suite} {self.arch.debian_arch} arranged like manylinux2014 "
                "for tests; glibc is Debian's, wheels built here are not manylinux2014"
            ),
        }


@contextlib.contextmanager
def _emulation(arch: Arch, emulator: Path, log: Log) -> Iterator[None]:
    """Make sure the kernel can run `arch` binaries while mmdebstrap runs; restore after."""
    if any(e.enabled for e in binfmt.entries_for(arch)) and binfmt.status_enabled():
        yield
        return
    log(f"  registering a temporary binfmt handler for {arch.name} (restored afterwards)")
    with binfmt.temporary_handler(arch, str(emulator), flags="F", log=log):
        yield


def bootstrap_rootfs(spec: StandinSpec, emulator: Path, log: Log = print) -> Path:
    """The cached root filesystem tarball for spec, made with mmdebstrap if missing."""
    out = spec.rootfs_path
    if out.is_file():
        log(f"  rootfs cached: {out}")
        return out
    if not shutil.which("mmdebstrap"):
        raise BuildError(
            "mmdebstrap is not installed; it bootstraps the offline stand-in bases.\n"
            "  apt-get install mmdebstrap   (or run scripts/setup-host.sh)"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".tmp{os.getpid()}.tar")
    cmd = [
        "mmdebstrap",
        f"--arch={spec.arch.debian_arch}",
        "--variant=apt",
        f"--include={','.join(spec.packages)}",
        *(f"--dpkgopt={o}" for o in DPKG_EXCLUDES),
    ]
    files = spec.layout_files()
    if files:
        cmd += [
            "--customize-hook=copy-in " + " ".join(str(f) for f in files) + " /usr/local/bin",
            '--customize-hook=chroot "$1" /bin/sh /usr/local/bin/setup-standin.sh',
            '--customize-hook=rm "$1/usr/local/bin/setup-standin.sh"',
        ]
    cmd += [spec.base.suite, str(tmp)]
    if spec.base.mirror:
        cmd.append(spec.base.mirror)
    log("+ " + " ".join(_quote(c) for c in cmd))
    log(f"  bootstrapping Debian {spec.base.suite} {spec.arch.debian_arch} (a few minutes, once)")
    start = time.monotonic()
    with _emulation(spec.arch, emulator, log):
        for attempt in range(1, BOOTSTRAP_ATTEMPTS + 1):
            rc, tail = _run_logged(cmd, start, log)
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
    os.replace(tmp, out)
    log(f"  rootfs ready in {time.monotonic() - start:.0f} s: {out} ({_mib(out.stat().st_size)})")
    return out


def _run_logged(cmd: list[str], start: float, log: Log) -> tuple[int, list[str]]:
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    tail: list[str] = []
    assert proc.stdout is not None
    for raw in proc.stdout:
        line = raw.rstrip()
        tail = [*tail[-30:], line]
        if line.startswith(("I: ", "E: ", "W: ")):
            log(f"  [{time.monotonic() - start:5.0f}s] {line}")
    return proc.wait(), tail


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
    """The stand-in pushed earlier, if the registry still has it (one HEAD request)."""
    rec = _record_path(registry, spec)
    try:
        data = json.loads(rec.read_text())
    except (OSError, ValueError):
        return None
    repo = registry.repository(spec.base.image)
    from xarch.oci.registry import RegistryClient

    client = RegistryClient(registry.address, insecure=registry.insecure)
    try:
        if client.head_manifest(repo, data["digest"]) is None:
            return None
    except Exception:
        return None
    return PinnedBase(image=data["image"], tag=data["tag"], digest=data["digest"])


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
