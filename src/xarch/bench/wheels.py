"""The bench's wheel row: a cibuildwheel build of the sample C extension
(tests/e2e/projects/cext, generated from :mod:`xarch.bench.sample_cext`) in each helper
image, against the same project built natively on the host, with the ratio.

Emulated: ``invoke wheels`` for that one target (xarch's pinned cibuildwheel in the
pushed helper image, by digest): cibuildwheel sets up the isolated build environment
(setuptools from PyPI), builds, repairs with auditwheel, installs the wheel and pytest
and runs the project's tests, all inside the image under QEMU. Timed: the whole
cibuildwheel run (container start and copy included).

Native: what can be matched on this host. An x86_64 manylinux image cannot be pulled
here, so the native side is not cibuildwheel: in a fresh venv of the host's Python
(python3.9 when there is one, the image's minor; else the running Python, said in the
row), ``pip wheel`` of the same project (the same isolated build environment from
PyPI, no pip cache), ``pip install`` of the wheel and pytest, and the same pytest run.
No container and no auditwheel repair: the ratio slightly flatters the native side.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xarch.bench.sample_cext import CEXT_FILES
from xarch.errors import XarchError
from xarch.model.config import Config, Target
from xarch.model.report import report_path
from xarch.model.tables import format_table
from xarch.wheels.run import build_wheels

Log = Callable[[str], None]

#: The interpreter minor of the sample's builds (`build = "cp39-*"`).
IMAGE_PYTHON = "3.9"
NATIVE_STEPS = "pip wheel (isolated build env) + pip install wheel, pytest + pytest"


@dataclass(frozen=True, kw_only=True)
class WheelRow:
    target: str
    arch: str
    image: str  # the helper image by digest ("" when not reached)
    emulated: float | None  # seconds of the cibuildwheel run
    wheel: str
    native: float | None
    native_python: str  # e.g. "3.9.2 (/usr/bin/python3.9)"
    error: str = ""

    @property
    def ratio(self) -> float | None:
        if self.emulated is None or not self.native:
            return None
        return self.emulated / self.native

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "arch": self.arch,
            "image": self.image,
            "emulated_seconds": None if self.emulated is None else round(self.emulated, 2),
            "wheel": self.wheel,
            "native_seconds": None if self.native is None else round(self.native, 2),
            "native_python": self.native_python,
            "native_steps": NATIVE_STEPS,
            "ratio": None if self.ratio is None else round(self.ratio, 2),
            "error": self.error,
        }


def write_project(dest: Path) -> Path:
    """The sample C extension's files under dest."""
    for rel, text in CEXT_FILES.items():
        p = dest / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return dest


def _version_of(python: Path) -> str:
    """The interpreter's version, "" when it does not run (a pyenv shim of an inactive
    version, say)."""
    try:
        r = subprocess.run(
            [str(python), "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
    except OSError:
        return ""
    return r.stdout.strip() if r.returncode == 0 else ""


def native_python() -> tuple[Path, str]:
    """A host Python of the builds' minor (python3.9 on PATH, or a pyenv-installed 3.9),
    else the running Python (and the row says so)."""
    candidates = [Path(p) for p in [shutil.which(f"python{IMAGE_PYTHON}")] if p]
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += sorted(pyenv.glob(f"versions/{IMAGE_PYTHON}.*/bin/python{IMAGE_PYTHON}"))
    for python in candidates:
        version = _version_of(python)
        if version.startswith(f"{IMAGE_PYTHON}."):
            return python, f"{version} ({python})"
    python = Path(sys.executable)
    return python, (
        f"{_version_of(python) or '?'} ({python}), not {IMAGE_PYTHON}: the host has no "
        f"working python{IMAGE_PYTHON}"
    )


def _run(cmd: Sequence[str], env: Mapping[str, str], cwd: Path, log: Log) -> None:
    log("+ " + " ".join(cmd))
    r = subprocess.run(list(cmd), cwd=cwd, env=dict(env), capture_output=True, text=True)
    if r.returncode != 0:
        tail = "\n".join((r.stdout + r.stderr).strip().splitlines()[-15:])
        raise XarchError(f"{' '.join(cmd[:4])} ... failed ({r.returncode}):\n{tail}")


def measure_native(
    python: Path, work: Path, *, ca_bundle: str | None = None, log: Log = print
) -> float:
    """Seconds of the native build, install and test of the sample (see module doc)."""
    project = write_project(work / "project")
    venv = work / "venv"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update({"PIP_NO_CACHE_DIR": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    if ca_bundle:
        env.update({"SSL_CERT_FILE": ca_bundle, "PIP_CERT": ca_bundle})
    _run([str(python), "-m", "venv", str(venv)], env, work, log)  # not timed
    py = str(venv / "bin" / "python")
    start = time.monotonic()
    _run(
        [py, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(work / "dist"), "."],
        env,
        project,
        log,
    )
    [wheel] = sorted((work / "dist").glob("*.whl"))
    _run([py, "-m", "pip", "install", "-q", str(wheel), "pytest"], env, work, log)
    _run(
        [py, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(project / "tests")], env, work, log
    )
    return time.monotonic() - start


def measure_target(
    config: Config,
    target: Target,
    work: Path,
    *,
    report: Path | None,
    ca_bundle: str | None,
    log: Log,
) -> tuple[float, str, str]:
    """Seconds of cibuildwheel's run in the target's image, the wheel, the image ref.
    The run is recorded in a copy of the report (the user's last `invoke wheels` stays)."""
    work.mkdir(parents=True, exist_ok=True)
    source = report or report_path()
    copy = work / "report.json"
    if source.exists():
        shutil.copy(source, copy)
    outcome = build_wheels(
        config,
        [target.name],
        project=write_project(work / "project"),
        output=work / "wheelhouse",
        report=copy,
        ca_bundle=ca_bundle,
        log=log,
    )
    [run] = outcome.results
    return run.seconds, ", ".join(run.files), next(iter(run.run.images.values()))


def wheel_rows(
    config: Config,
    targets: Sequence[Target],
    work: Path,
    *,
    report: Path | None = None,
    ca_bundle: str | None = None,
    log: Log = print,
) -> list[WheelRow]:
    """One row per target; a failure is recorded in its row (the bench goes on)."""
    python, python_text = native_python()
    log(f"== wheels: the sample C extension natively (host Python {python_text}) ==")
    native: float | None = None
    native_error = ""
    try:
        native = measure_native(python, work / "native", ca_bundle=ca_bundle, log=log)
        log(f"  native: {native:.1f} s")
    except XarchError as e:
        native_error = f"native: {e}"
        log(f"  {native_error}")
    rows = []
    for t in targets:
        log(f"== wheels: cibuildwheel in {t.name} ({t.arch.name}) ==")
        try:
            seconds, wheel, image = measure_target(
                config, t, work / t.name, report=report, ca_bundle=ca_bundle, log=log
            )
        except XarchError as e:
            rows.append(
                WheelRow(
                    target=t.name,
                    arch=t.arch.name,
                    image="",
                    emulated=None,
                    wheel="",
                    native=native,
                    native_python=python_text,
                    error="; ".join(x for x in (str(e).splitlines()[0], native_error) if x),
                )
            )
            continue
        rows.append(
            WheelRow(
                target=t.name,
                arch=t.arch.name,
                image=image,
                emulated=seconds,
                wheel=wheel,
                native=native,
                native_python=python_text,
                error=native_error,
            )
        )
    return rows


def render_wheels(rows: Sequence[WheelRow]) -> str:
    out = [["TARGET", "CIBUILDWHEEL (EMULATED)", "NATIVE", "RATIO", "WHEEL / ERROR"]]
    for r in rows:
        out.append(
            [
                r.target,
                "FAILED" if r.emulated is None else f"{r.emulated:.1f}s",
                "FAILED" if r.native is None else f"{r.native:.1f}s",
                "-" if r.ratio is None else f"{r.ratio:.1f}x",
                r.error or r.wheel,
            ]
        )
    return format_table(out)
