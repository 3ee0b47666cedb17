"""cibuildwheel as xarch uses it: its own virtual environment under xarch's cache, the
installed version, and the base images a release pins
(``cibuildwheel/resources/pinned_docker_images.cfg``).

The pinned-images file is an INI file, one section per architecture, each line
``family = image@sha256:digest  # tag``. It is parsed strictly: a line that is not
that shape is an error naming the file and line, never skipped.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from xarch.errors import BadInput, FetchError, XarchError
from xarch.images.resources import resource_text
from xarch.model.paths import cache_dir

Log = Callable[[str], None]

DIST = "cibuildwheel"
#: The release used when a config pins none (config/*.yaml `cibuildwheel.version` is
#: the pin; this is its fallback and the generated CI's default).
DEFAULT_VERSION = "4.3.5"
PINNED_CFG = "cibuildwheel/resources/pinned_docker_images.cfg"

_SECTION_RE = re.compile(r"^\[(?P<section>[A-Za-z0-9_]+)\]\s*$")
_PIN_RE = re.compile(
    r"^(?P<family>[a-z0-9_]+)\s*=\s*(?P<image>[a-z0-9./_-]+)@(?P<digest>sha256:[0-9a-f]{64})"
    r"\s*(?:#\s*(?P<tag>\S+))?\s*$"
)


class CibuildwheelError(XarchError):
    """cibuildwheel is missing, the wrong version, or its files are not what they should be."""


@dataclass(frozen=True, kw_only=True)
class CibwPin:
    """One line of pinned_docker_images.cfg."""

    arch: str  # the section: cibuildwheel's arch name (aarch64, armv7l, pypy_aarch64, ...)
    family: str  # manylinux2014, musllinux_1_2, ...
    image: str  # quay.io/pypa/manylinux2014_aarch64
    digest: str
    tag: str  # the human tag from the comment ("" when there is none)


@dataclass(frozen=True, kw_only=True)
class PinnedImages:
    version: str  # the cibuildwheel release the file came from
    source: str  # where it was read (a path, or wheel!member)
    pins: tuple[CibwPin, ...]

    def by_image(self) -> dict[str, CibwPin]:
        """CPython sections only (the pypy_* sections repeat the same images)."""
        return {p.image: p for p in self.pins if not p.arch.startswith("pypy_")}


def parse_pinned_images(text: str, source: str, version: str) -> PinnedImages:
    """Parse pinned_docker_images.cfg; a BadInput names the source and line on any
    line that is not a section header, a pin, a comment or blank."""
    section = ""
    pins: list[CibwPin] = []
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        m = _SECTION_RE.match(line)
        if m:
            section = m.group("section")
            continue
        p = _PIN_RE.match(line)
        if p is None:
            raise BadInput(
                f"{source}: line {n}: cannot parse {raw!r}; expected "
                "`family = registry/image@sha256:<64 hex>  # tag` or `[arch]`"
            )
        if not section:
            raise BadInput(f"{source}: line {n}: a pin before any [arch] section")
        pins.append(
            CibwPin(
                arch=section,
                family=p.group("family"),
                image=p.group("image"),
                digest=p.group("digest"),
                tag=p.group("tag") or "",
            )
        )
    if not pins:
        raise BadInput(f"{source}: no pinned images found (is it pinned_docker_images.cfg?)")
    return PinnedImages(version=version, source=source, pins=tuple(pins))


# --------------------------------------------------------------------------- the venv


def venv_dir() -> Path:
    """xarch's own virtual environment for cibuildwheel (one, reused across runs)."""
    return cache_dir() / "cibuildwheel" / "venv"


def wheels_cache() -> Path:
    """Where cibuildwheel wheels downloaded for `pin --from-cibuildwheel VERSION` go."""
    return cache_dir() / "cibuildwheel" / "dist"


def _site_packages(venv: Path) -> list[Path]:
    return sorted(venv.glob("lib/python3*/site-packages"))


def venv_version(venv: Path, dist: str = DIST) -> str:
    """The version of ``dist`` (cibuildwheel unless named) installed in venv ("" when
    none is)."""
    for sp in _site_packages(venv):
        for d in importlib.metadata.distributions(path=[str(sp)]):
            if (d.metadata["Name"] or "").lower() == dist:
                return d.version
    return ""


def host_uv_version() -> str:
    """The uv release cibuildwheel's own environment gets: the stand-ins' own
    (``requirements-uv.txt``), one release for the images and the host alike.

    With a uv frontend (``build[uv]``, ``uv``) cibuildwheel runs uv on the host too: it
    makes the audit environment of an abi3 wheel with it (``audit.py``: ``find_uv()``,
    the ``uv`` package beside cibuildwheel, else PATH) and, without one, stops at
    ``assert uv_path is not None`` after the wheel is built and repaired. Its ``uv``
    extra is how cibuildwheel itself asks for it; xarch installs the exact release."""
    text = resource_text("standin-manylinux/requirements-uv.txt")
    m = re.search(r"^uv==(\S+)", text, re.MULTILINE)
    if m is None:
        raise XarchError("requirements-uv.txt of the stand-ins pins no uv==VERSION")
    return m.group(1)


def venv_requirements(version: str) -> list[str]:
    """What cibuildwheel's venv gets, here and on the generated CI's runners: cibuildwheel
    ``version`` and, beside it, uv :func:`host_uv_version`."""
    return [f"{DIST}=={version}", f"uv=={host_uv_version()}"]


def ensure_venv(version: str, *, venv: Path | None = None, log: Log = print) -> Path:
    """The cibuildwheel executable of xarch's venv, with exactly ``version`` installed and
    uv :func:`host_uv_version` beside it (``cibuildwheel[uv]``, pinned): created on first
    use, reused after; another version there is replaced (and said so)."""
    venv = venv or venv_dir()
    exe = venv / "bin" / "cibuildwheel"
    uv = host_uv_version()
    have = venv_version(venv) if venv.exists() else ""
    have_uv = venv_version(venv, "uv") if venv.exists() else ""
    if have == version and have_uv == uv and exe.exists():
        return exe
    # xarch's own pip installs into the venv (`pip --python`, pip 22.3 and newer): no
    # copy of pip is seeded into it, which took longer than the install itself.
    outside = _pip_with_python_option()
    if not (venv / "bin" / "python").exists():
        create = [sys.executable, "-m", "venv", *(["--without-pip"] if outside else []), str(venv)]
        log("+ " + " ".join(create))
        r = subprocess.run(create, capture_output=True, text=True, check=False)
        if r.returncode != 0:
            raise CibuildwheelError(
                f"could not create cibuildwheel's venv at {venv}: {_tail(r.stderr or r.stdout)}"
            )
    elif have and have != version:
        log(f"cibuildwheel {have} in {venv} is not the pinned {version}: replacing it")
    elif have_uv != uv:
        log(
            f"cibuildwheel's venv {venv} has uv {have_uv or 'not at all'}: installing uv {uv} "
            "(with a uv frontend cibuildwheel audits abi3 wheels in an environment uv makes)"
        )
    if outside or not (venv / "bin" / "pip").exists():
        pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python")]
    else:
        pip = [str(venv / "bin" / "python"), "-m", "pip"]
    cmd = [*pip, "install", "-q", "--disable-pip-version-check", *venv_requirements(version)]
    log("+ " + " ".join(cmd))
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise _pip_failure(version, r.stderr or r.stdout, what="install", uv=uv)
    for dist, want in ((DIST, version), ("uv", uv)):
        got = venv_version(venv, dist)
        if got != want:
            raise CibuildwheelError(
                f"{venv} has {dist} {got or 'nothing'} after installing {want}; "
                f"remove {venv} and run again"
            )
    return exe


def _pip_with_python_option() -> bool:
    """Whether this interpreter's pip has --python (22.3 and newer)."""
    try:
        have = importlib.metadata.version("pip")
    except importlib.metadata.PackageNotFoundError:
        return False
    parts = [int(p) for p in re.findall(r"\d+", have)[:2]] + [0, 0]
    return (parts[0], parts[1]) >= (22, 3)


def _tail(text: str, lines: int = 15) -> str:
    """The last lines of a command's output, each cut to 300 characters."""
    kept = [ln if len(ln) <= 300 else ln[:300] + " [...]" for ln in text.strip().splitlines()]
    return "\n".join(kept[-lines:])


def _pip_failure(version: str, output: str, *, what: str, uv: str = "") -> XarchError:
    tail = _tail(output)
    if uv and re.search(
        rf"(No matching distribution found|Could not find a version).*uv=={re.escape(uv)}", output
    ):
        return FetchError(
            f"uv {uv}, which xarch installs beside cibuildwheel {version} (the stand-ins' "
            f"release), is not on the index pip uses:\n{tail}"
        )
    if "No matching distribution" in output or "Could not find a version" in output:
        return BadInput(
            f"cibuildwheel {version} is not on PyPI (pip {what} found no such version):\n"
            f"{tail}\n  hint: check the version (https://pypi.org/project/cibuildwheel/#history)"
        )
    return FetchError(f"pip could not {what} cibuildwheel {version}:\n{tail}")


# --------------------------------------------------------------------------- pinned images


def installed_pins(*, venv: Path | None = None) -> PinnedImages:
    """pinned_docker_images.cfg of the installed cibuildwheel: the one in this Python's
    environment (importlib.metadata) or else the one in xarch's venv."""
    venv = venv or venv_dir()
    candidates: list[importlib.metadata.Distribution] = []
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        candidates.append(importlib.metadata.distribution(DIST))
    for sp in _site_packages(venv):
        candidates += [
            d
            for d in importlib.metadata.distributions(path=[str(sp)])
            if (d.metadata["Name"] or "").lower() == DIST
        ]
    if not candidates:
        raise BadInput(
            f"cibuildwheel is not installed (neither in {sys.prefix} nor in xarch's venv "
            f"{venv}); name a version to download it from PyPI "
            "(`invoke pin --from-cibuildwheel 4.3.5`), or install it"
        )
    dist = candidates[0]
    path = Path(str(dist.locate_file(PINNED_CFG)))
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise CibuildwheelError(
            f"cibuildwheel {dist.version} has no readable {PINNED_CFG} ({path}: {e.strerror})"
        ) from None
    return parse_pinned_images(text, str(path), dist.version)


def download_wheel(version: str, *, dest: Path | None = None, log: Log = print) -> Path:
    """cibuildwheel VERSION's wheel in xarch's cache (pip download, once)."""
    dest = dest or wheels_cache()
    found = sorted(dest.glob(f"cibuildwheel-{version}-*.whl"))
    if found:
        return found[0]
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary",
        ":all:",
        "-q",
        "-d",
        str(dest),
        f"{DIST}=={version}",
    ]
    log("+ " + " ".join(cmd))
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise _pip_failure(version, r.stderr or r.stdout, what="download")
    found = sorted(dest.glob(f"cibuildwheel-{version}-*.whl"))
    if not found:
        raise FetchError(f"pip download of cibuildwheel {version} left no wheel in {dest}")
    return found[0]


def wheel_pins(wheel: Path, version: str) -> PinnedImages:
    source = f"{wheel}!{PINNED_CFG}"
    try:
        with zipfile.ZipFile(wheel) as z:
            text = z.read(PINNED_CFG).decode("utf-8")
    except KeyError:
        raise CibuildwheelError(f"{wheel} has no {PINNED_CFG}") from None
    except (OSError, zipfile.BadZipFile) as e:
        raise CibuildwheelError(f"{wheel} is not a readable wheel ({e}); delete it") from None
    return parse_pinned_images(text, source, version)


def release_pins(version: str | None, *, log: Log = print) -> PinnedImages:
    """The pins of cibuildwheel ``version`` (downloaded), or of the installed one."""
    if not version:
        return installed_pins()
    if not re.match(r"^[0-9]+(?:\.[0-9]+)*$", version):
        raise BadInput(f"--from-cibuildwheel {version!r}: expected an exact version like 4.3.5")
    return wheel_pins(download_wheel(version, log=log), version)
