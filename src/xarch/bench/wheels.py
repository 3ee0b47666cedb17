"""The bench's wheel row: a cibuildwheel build of the sample C extension
(tests/e2e/projects/cext, generated from :mod:`xarch.bench.sample_cext`) in each helper
image, against the same project built natively on the host, with the ratio.

Emulated: ``invoke wheels`` for that one target (xarch's pinned cibuildwheel in the
pushed helper image, by digest): cibuildwheel sets up the isolated build environment
(setuptools from PyPI), builds, repairs with auditwheel, installs the wheel and pytest
and runs the project's tests, all inside the image under QEMU. Timed: the whole
cibuildwheel run (container start and copy included).

Accelerated (an image with native compiler leaves, docs/native-compilers.md): the
same cibuildwheel run twice, first as it comes (the native leaves: XARCH_NATIVE_TOOLS
unset), then with the image's own, emulated leaves: the bench appends
``XARCH_NATIVE_TOOLS=0`` to ``CIBW_ENVIRONMENT_LINUX`` for that run
(:func:`emulated_leaves_environ`), so cibuildwheel sets it in the build container.
The native-leaves run goes first: a one-time cost (the image's first use) lands on
it, never flattering it.

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
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xarch.bench.sample_cext import CEXT_FILES
from xarch.bench.workloads import NATIVE_TOOLS_ENV
from xarch.errors import XarchError
from xarch.model.config import Config, Target
from xarch.model.report import report_path
from xarch.model.tables import format_table
from xarch.wheels.run import STEP_COLUMNS, build_wheels

Log = Callable[[str], None]

#: The interpreter minor of the sample's builds (`build = "cp39-*"`).
IMAGE_PYTHON = "3.9"
NATIVE_STEPS = "pip wheel (isolated build env) + pip install wheel, pytest + pytest"
#: Issue 10's goal: cibuildwheel with the native leaves at most this many times native.
WHEEL_GOAL = 1.5


def _over(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


@dataclass(frozen=True, kw_only=True)
class WheelRow:
    target: str
    arch: str
    image: str  # the helper image by digest ("" when not reached)
    #: seconds of the cibuildwheel run with the image's own, emulated compiler leaves
    #: (in an accelerated image: with XARCH_NATIVE_TOOLS=0)
    emulated: float | None
    wheel: str
    native: float | None
    native_python: str  # e.g. "3.9.2 (/usr/bin/python3.9)"
    error: str = ""
    #: the image has native leaves; then ``accelerated`` is the run with them
    native_leaves: bool = False
    accelerated: float | None = None
    accelerated_wheel: str = ""
    #: cibuildwheel's own step seconds of each run ("emulated", "accelerated" -> step -> s)
    steps: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        """emulated / native"""
        return _over(self.emulated, self.native)

    @property
    def accelerated_ratio(self) -> float | None:
        """accelerated / native"""
        return _over(self.accelerated, self.native)

    @property
    def speedup(self) -> float | None:
        """emulated / accelerated"""
        return _over(self.emulated, self.accelerated)

    @property
    def goal_met(self) -> bool | None:
        r = self.accelerated_ratio
        return None if not self.native_leaves or r is None else r <= WHEEL_GOAL

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "arch": self.arch,
            "image": self.image,
            "native_leaves": self.native_leaves,
            "emulated_seconds": _round(self.emulated),
            "emulated_environment": f"{NATIVE_TOOLS_ENV}=0" if self.native_leaves else "",
            "accelerated_seconds": _round(self.accelerated),
            "wheel": self.wheel,
            "accelerated_wheel": self.accelerated_wheel,
            "native_seconds": _round(self.native),
            "native_python": self.native_python,
            "native_steps": NATIVE_STEPS,
            "ratio": _round(self.ratio),
            "accelerated_over_native": _round(self.accelerated_ratio),
            "emulated_over_accelerated": _round(self.speedup),
            "goal_max_vs_native": WHEEL_GOAL if self.native_leaves else None,
            "goal_met": self.goal_met,
            "steps": {k: {s: round(v, 2) for s, v in d.items()} for k, d in self.steps.items()},
            "error": self.error,
        }


def emulated_leaves_environ(env: Mapping[str, str]) -> dict[str, str]:
    """The cibuildwheel process's environment for the emulated-leaves run: ``env``
    with ``XARCH_NATIVE_TOOLS=0`` appended to ``CIBW_ENVIRONMENT_LINUX`` (a
    space-separated list of NAME=value, evaluated in order, so the last assignment
    wins). Without a CIBW_ENVIRONMENT_LINUX of the caller's, the variable alone
    would replace the lower levels (CIBW_ENVIRONMENT, the project's ``environment``);
    ``CIBW_INHERIT`` ``environment-linux: append`` keeps them and puts ours last.
    build_wheels (xarch.wheels.run) takes this mapping as its ``environ`` and still
    prepends its CA variables when a bundle is set."""
    out = dict(env)
    ours = f"{NATIVE_TOOLS_ENV}=0"
    theirs = env.get("CIBW_ENVIRONMENT_LINUX")
    if theirs is not None:
        out["CIBW_ENVIRONMENT_LINUX"] = f"{theirs} {ours}".strip()
        return out
    out["CIBW_ENVIRONMENT_LINUX"] = ours
    # Their rule for environment-linux (if any) applied to nothing: they set none.
    rules = [
        r.strip()
        for r in env.get("CIBW_INHERIT", "").split(";")
        if r.strip() and r.split(":")[0].strip() != "environment-linux"
    ]
    out["CIBW_INHERIT"] = "; ".join([*rules, "environment-linux: append"])
    return out


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
    environ: Mapping[str, str] | None = None,
) -> tuple[float, str, str, dict[str, float]]:
    """Seconds of cibuildwheel's run in the target's image, the wheel, the image ref,
    and cibuildwheel's own step seconds (setup, build, repair, test).
    The run is recorded in a copy of the report (the user's last `invoke wheels` stays).
    ``environ``: cibuildwheel's environment (None: this process's)."""
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
        environ=environ,
        log=log,
    )
    [run] = outcome.results
    steps = {}
    if run.wheels:
        steps = {c: v for c in STEP_COLUMNS if (v := run.wheels[0].column(c)) is not None}
    return run.seconds, ", ".join(run.files), next(iter(run.run.images.values())), steps


def wheel_rows(
    config: Config,
    targets: Sequence[Target],
    work: Path,
    *,
    accelerated: Collection[str] = (),
    report: Path | None = None,
    ca_bundle: str | None = None,
    log: Log = print,
) -> list[WheelRow]:
    """One row per target; a failure is recorded in its row (the bench goes on).
    ``accelerated``: the targets whose images have native leaves, built twice."""
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
        leaves = t.name in accelerated
        # (label, work dir, environment): the native-leaves run first (module doc).
        runs: list[tuple[str, Path, Mapping[str, str] | None]] = []
        if leaves:
            runs.append(("accelerated", work / t.name / "accelerated", None))
            runs.append(
                ("emulated", work / t.name / "emulated", emulated_leaves_environ(os.environ))
            )
        else:
            runs.append(("emulated", work / t.name, None))
        seconds: dict[str, float] = {}
        steps: dict[str, dict[str, float]] = {}
        wheels: dict[str, str] = {}
        image = ""
        errors = []
        for label, run_work, environ in runs:
            how = {
                "accelerated": ", native leaves",
                "emulated": f", emulated leaves ({NATIVE_TOOLS_ENV}=0)" if leaves else "",
            }[label]
            log(f"== wheels: cibuildwheel in {t.name} ({t.arch.name}){how} ==")
            try:
                seconds[label], wheels[label], image, steps[label] = measure_target(
                    config,
                    t,
                    run_work,
                    report=report,
                    ca_bundle=ca_bundle,
                    log=log,
                    environ=environ,
                )
            except XarchError as e:
                first = str(e).splitlines()[0]
                errors.append(f"{label}: {first}" if leaves else first)
        rows.append(
            WheelRow(
                target=t.name,
                arch=t.arch.name,
                image=image,
                emulated=seconds.get("emulated"),
                wheel=wheels.get("emulated", ""),
                native=native,
                native_python=python_text,
                error="; ".join(x for x in (*errors, native_error) if x),
                native_leaves=leaves,
                accelerated=seconds.get("accelerated"),
                accelerated_wheel=wheels.get("accelerated", ""),
                steps=steps,
            )
        )
    return rows


def _t(x: float | None) -> str:
    return "FAILED" if x is None else f"{x:.1f}s"


def _x(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}x"


def render_steps(rows: Sequence[WheelRow]) -> str:
    """cibuildwheel's own seconds per step of each run of each row."""
    out = [["TARGET", "RUN", *(c.upper() for c in STEP_COLUMNS)]]
    for r in rows:
        for label, steps in r.steps.items():
            out.append([r.target, label, *(f"{steps[c]:.1f}s" if c in steps else "-"
                                            for c in STEP_COLUMNS)])  # fmt: skip
    return format_table(out)


def render_wheels(rows: Sequence[WheelRow]) -> str:
    """Emulated and native as before; with an accelerated image also the run with its
    native leaves, the two new ratios and the goal (a row without leaves says so); then
    each run's steps."""
    table = _render_totals(rows)
    if any(r.steps for r in rows):
        table += "\n\n" + render_steps(rows)
    return table


def _render_totals(rows: Sequence[WheelRow]) -> str:
    if not any(r.native_leaves for r in rows):
        out = [["TARGET", "CIBUILDWHEEL (EMULATED)", "NATIVE", "RATIO", "WHEEL / ERROR"]]
        for r in rows:
            out.append([r.target, _t(r.emulated), _t(r.native), _x(r.ratio), r.error or r.wheel])
        return format_table(out)
    out = [
        [
            "TARGET",
            "EMULATED",
            "ACCELERATED",
            "NATIVE",
            "EMU/NAT",
            "ACC/NAT",
            "EMU/ACC",
            "GOAL",
            "WHEEL / ERROR",
        ]
    ]
    for r in rows:
        met = r.goal_met
        out.append(
            [
                r.target,
                _t(r.emulated),
                _t(r.accelerated) if r.native_leaves else "no native leaves",
                _t(r.native),
                _x(r.ratio),
                _x(r.accelerated_ratio),
                _x(r.speedup),
                f"<= {WHEEL_GOAL:g}x native: {'-' if met is None else 'ok' if met else 'MISSED'}"
                if r.native_leaves
                else "-",
                r.error or r.accelerated_wheel or r.wheel,
            ]
        )
    return format_table(out)
