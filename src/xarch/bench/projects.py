"""The bench's real-project table (issue 16, item 7): PyPI sdists, unchanged, built by
cibuildwheel three ways, with cibuildwheel's own per-step seconds.

- **plain**: the plain helper image (emulated gcc, as, ld, uv) with cibuildwheel's
  default frontend `build` unless the project names one itself: what a user of
  setup-qemu-action gets;
- **accelerated**: the accelerated image (native compiler leaves and uv, proven) with
  what `invoke wheels` writes (`build[uv]` where the project names no frontend);
- **native**: the same project on this host, no container: the static x86_64 uv of
  the images' own pin builds the wheel (isolated, build requirements from PyPI), makes
  a venv, installs the wheel and the test requirements, and the same test command runs.
  No auditwheel repair and the host's own Python: the ratio slightly flatters native.

Every build gets ``CIBW_BUILD=cp39-manylinux*`` (the stand-ins' interpreter) and, for a
project that configures no cibuildwheel test itself, the test command of the project
list (what a user's CI sets). uv's cache is fresh for every run on every side.

With ``repeat`` above 1 the three sides run that many rounds, the order rotated each
round (plain, accelerated, native; then accelerated, native, plain; ...) so that a
drift of the machine's load falls on every side alike. Each side's row is then the
median round (total and each step: medians), with the range of the totals, and the
ratios are of medians. One run is not enough on a shared machine: two back-to-back
runs of the same accelerated build were measured here at 44 s and 27 s.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xarch.bench.stats import Summary, summarize
from xarch.errors import XarchError
from xarch.model.config import Config, Target
from xarch.model.paths import cache_dir
from xarch.model.report import report_path
from xarch.model.tables import format_table
from xarch.wheels import frontend, projects
from xarch.wheels.run import STEP_COLUMNS, build_wheels

Log = Callable[[str], None]

SIDES = ("plain", "accelerated", "native")
#: Issue 16's goals, read off one run: bitarray-class accelerated <= 3x native, a large
#: C project <= 1.2x native, accelerated >= 3x faster than plain.
GOALS = {"accelerated_over_native_small": 3.0, "accelerated_over_native_large": 1.2}


@dataclass
class SideRun:
    side: str
    seconds: float | None = None
    steps: dict[str, float] = field(default_factory=dict)  # setup, build, repair, test
    frontend: str = ""
    wheel: str = ""
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "side": self.side,
            "seconds": None if self.seconds is None else round(self.seconds, 2),
            "steps": {k: round(v, 2) for k, v in self.steps.items()},
            "frontend": self.frontend,
            "wheel": self.wheel,
            "error": self.error,
        }


def median_run(rounds: Sequence[SideRun]) -> SideRun | None:
    """One side's rounds as one run: median total and median of each step over the
    rounds that finished; a side whose every round failed keeps its first error."""
    if not rounds:
        return None
    done = [r for r in rounds if r.seconds is not None]
    if not done:
        return rounds[0]
    total = summarize([r.seconds for r in done if r.seconds is not None])
    assert total is not None
    steps = {}
    for c in STEP_COLUMNS:
        s = summarize([r.steps[c] for r in done if c in r.steps])
        if s is not None:
            steps[c] = s.median
    return SideRun(
        side=done[0].side,
        seconds=total.median,
        steps=steps,
        frontend=done[0].frontend,
        wheel=done[0].wheel,
    )


@dataclass
class ProjectRow:
    project: projects.RealProject
    rounds: dict[str, list[SideRun]] = field(default_factory=dict)

    def add(self, run: SideRun) -> None:
        self.rounds.setdefault(run.side, []).append(run)

    @property
    def runs(self) -> dict[str, SideRun]:
        """Each side's median round (see median_run)."""
        return {side: m for side, rs in self.rounds.items() if (m := median_run(rs))}

    def totals(self, side: str) -> Summary | None:
        return summarize([r.seconds for r in self.rounds.get(side, []) if r.seconds is not None])

    def ratio(self, a: str, b: str) -> float | None:
        runs = self.runs  # medians, derived from the rounds: once per call
        x, y = runs.get(a), runs.get(b)
        if x is None or y is None or x.seconds is None or not y.seconds:
            return None
        return x.seconds / y.seconds

    def to_json(self) -> dict[str, Any]:
        return {
            "project": self.project.label,
            "what": self.project.what,
            "runs": {k: v.to_json() for k, v in self.runs.items()},
            "rounds": {k: [r.to_json() for r in v] for k, v in self.rounds.items()},
            "totals": {k: t.to_json() for k in self.rounds if (t := self.totals(k))},
            "plain_over_accelerated": _r(self.ratio("plain", "accelerated")),
            "accelerated_over_native": _r(self.ratio("accelerated", "native")),
            "plain_over_native": _r(self.ratio("plain", "native")),
        }


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


def _cibuildwheel_run(
    config: Config,
    target: Target,
    src: Path,
    work: Path,
    env: Mapping[str, str],
    ca_bundle: str | None,
    log: Log,
) -> SideRun:
    said: list[str] = []
    # The push records are read from (and this run written into) a copy of the report.
    source = report_path()
    if source.exists():
        shutil.copy(source, work / "report.json")

    def out(line: str) -> None:
        said.append(line)
        log(line)

    outcome = build_wheels(
        config,
        [target.name],
        project=src,
        output=work / "wheelhouse",
        report=work / "report.json",
        ca_bundle=ca_bundle,
        environ=env,
        log=out,
    )
    [run] = outcome.results
    built = run.wheels[0] if run.wheels else None
    chosen = next((s.strip() for s in said if s.strip().startswith("frontend:")), "")
    return SideRun(
        side="",
        seconds=run.seconds,
        steps={c: v for c in STEP_COLUMNS if (v := built.column(c)) is not None} if built else {},
        frontend=chosen.removeprefix("frontend: "),
        wheel=", ".join(run.files),
    )


def native_uv(pins: Mapping[str, str], log: Log) -> Path:
    """The static x86_64 uv of the stand-ins' pin (the binary native-uv images carry),
    from its wheel (pinned in the accelerated target's ``native-uv``) into the cache."""
    from xarch.images import native_uv as nuv
    from xarch.publish.cibuildwheel import host_uv_version

    version = host_uv_version()
    if version not in pins:
        raise XarchError(
            f"the accelerated target pins no x86_64 uv {version} (its native-uv section), "
            "which the native side of the bench runs"
        )
    wheel = nuv.fetch_wheel(version, pins[version], cache_dir() / "pypi", log)
    dest = cache_dir() / "native-uv" / version / "uv"
    if not dest.is_file():
        nuv.extract_binary(wheel, dest)
    return dest


def measure_native(
    project: projects.RealProject, src: Path, work: Path, uv: Path, log: Log
) -> SideRun:
    """Build, install and test the project on this host with the native uv (see module
    doc); step seconds: build, and test (venv, install, the test command)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env["UV_CACHE_DIR"] = str(work / "uv-cache")  # fresh, as in a build container
    env["UV_PYTHON_DOWNLOADS"] = "never"
    python = sys.executable
    venv = work / "venv"

    def run(argv: Sequence[str], cwd: Path, extra: Mapping[str, str] | None = None) -> None:
        log("+ " + " ".join(argv))
        r = subprocess.run(
            list(argv), cwd=cwd, env={**env, **(extra or {})}, capture_output=True, text=True
        )
        if r.returncode != 0:
            tail = "\n".join((r.stdout + r.stderr).strip().splitlines()[-15:])
            raise XarchError(f"{' '.join(argv[:3])} ... failed ({r.returncode}):\n{tail}")

    t0 = time.monotonic()
    run([str(uv), "build", "--wheel", "--python", python, "--out-dir", str(work / "dist"),
         str(src)], work)  # fmt: skip
    t1 = time.monotonic()
    [wheel] = sorted((work / "dist").glob("*.whl"))
    run([str(uv), "venv", "--quiet", "--python", python, str(venv)], work)
    run([str(uv), "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"),
         str(wheel), *project.test_requires], work)  # fmt: skip
    if project.test_command and project.environment.get("CIBW_TEST_SKIP") != "*":
        command = project.test_command.replace("{project}", str(src)).replace("{package}", str(src))
        path = f"{venv / 'bin'}:{env.get('PATH', '')}"
        test_dir = work / "test-cwd"
        test_dir.mkdir(exist_ok=True)
        run(["sh", "-c", command], test_dir, {"PATH": path, "VIRTUAL_ENV": str(venv)})
    t2 = time.monotonic()
    return SideRun(
        side="native",
        seconds=t2 - t0,
        steps={"build": t1 - t0, "test": t2 - t1},
        frontend=f"uv build ({Path(python).name} {sys.version.split()[0]}, x86_64)",
        wheel=wheel.name,
    )


def project_rows(
    plain: tuple[Config, Target],
    accelerated: tuple[Config, Target],
    chosen: Sequence[projects.RealProject],
    work: Path,
    *,
    ca_bundle: str | None,
    repeat: int = 1,
    log: Log = print,
) -> list[ProjectRow]:
    """The table's rows: each project plain, accelerated and native, one after another
    (side by side in one run, so the machine's load is shared alike), ``repeat`` rounds
    with the order rotated each round."""
    uv = native_uv(accelerated[1].native_uv, log)
    rows = []
    for project in chosen:
        row = ProjectRow(project=project)
        rows.append(row)
        for n in range(repeat):
            for side in SIDES[n % len(SIDES) :] + SIDES[: n % len(SIDES)]:
                row.add(_side(project, side, work / project.name / side / str(n), plain,
                              accelerated, uv, ca_bundle, f" (round {n + 1}/{repeat})"
                              if repeat > 1 else "", log))  # fmt: skip
    return rows


def _side(
    project: projects.RealProject,
    side: str,
    d: Path,
    plain: tuple[Config, Target],
    accelerated: tuple[Config, Target],
    uv: Path,
    ca_bundle: str | None,
    round_label: str,
    log: Log,
) -> SideRun:
    """One build of one project on one side, in a fresh checkout under ``d``."""
    d.mkdir(parents=True, exist_ok=True)
    log(f"\n== {project.label}: {side}{round_label} ==")
    try:
        src = projects.checkout(project, d / "src", log=log)
        if side == "native":
            return measure_native(project, src, d, uv, log)
        env = dict(os.environ)
        env.update({"CIBW_BUILD": "cp39-manylinux*", "XARCH_BUILD_DIR": str(d / "build")})
        env.update(project.user_env(src))
        if side == "plain" and frontend.read_project(src, env).name is None:
            env["CIBW_BUILD_FRONTEND"] = "build"  # cibuildwheel's default, no xarch
        config, target = plain if side == "plain" else accelerated
        result = _cibuildwheel_run(config, target, src, d, env, ca_bundle, log)
        result.side = side
        return result
    except XarchError as e:
        log(f"  {project.label} {side}: FAILED: {e}")
        return SideRun(side=side, error=str(e).splitlines()[0][:300])


def _cell(run: SideRun | None, totals: Summary | None) -> tuple[str, ...]:
    if run is None or run.seconds is None:
        return ("FAILED" if run and run.error else "-",) + ("",) * len(STEP_COLUMNS)
    steps = (f"{run.steps[c]:.1f}" if c in run.steps else "-" for c in STEP_COLUMNS)
    total = f"{run.seconds:.1f}"
    if totals is not None and totals.n > 1:
        total += f" [{totals.min:.1f}-{totals.max:.1f}]"
    return (total, *steps)


def render(rows: Sequence[ProjectRow]) -> str:
    """The table (medians when there were rounds, with the totals' range) and the
    ratios of those medians."""
    head = ("PROJECT", "SIDE", "TOTAL s", *(c.upper() for c in STEP_COLUMNS), "FRONTEND")
    table: list[tuple[str, ...]] = [head]
    for row in rows:
        runs = row.runs
        for side in SIDES:
            run = runs.get(side)
            failed = sum(1 for r in row.rounds.get(side, []) if r.error)
            said = (run.frontend or run.error) if run else ""
            if run and run.seconds is not None and failed:
                said += f" ({failed} of {len(row.rounds[side])} rounds failed)"
            table.append((row.project.label, side, *_cell(run, row.totals(side)), said))
    lines = [format_table(table)]
    lines.append("")
    ratios: list[tuple[str, ...]] = [
        ("PROJECT", "PLAIN/ACCELERATED", "ACCELERATED/NATIVE", "PLAIN/NATIVE")
    ]
    for row in rows:
        ratios.append(
            (
                row.project.label,
                *(
                    "-" if (x := row.ratio(a, b)) is None else f"{x:.2f}x"
                    for a, b in (("plain", "accelerated"), ("accelerated", "native"),
                                 ("plain", "native"))
                ),
            )
        )  # fmt: skip
    lines.append(format_table(ratios))
    return "\n".join(lines)


def write_chart(rows: Sequence[ProjectRow], path: Path) -> Path | None:
    """Stacked bars of each side's steps per project (None without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(max(6, 2.4 * len(rows)), 4.5))
    colors = {"setup": "#9e9e9e", "build": "#1f77b4", "repair": "#ff7f0e", "test": "#2ca02c"}
    width = 0.27
    for i, row in enumerate(rows):
        for j, side in enumerate(SIDES):
            run = row.runs.get(side)
            if run is None or run.seconds is None:
                continue
            x = i + (j - 1) * width
            bottom = 0.0
            for step in STEP_COLUMNS:
                v = run.steps.get(step, 0.0)
                ax.bar(x, v, width, bottom=bottom, color=colors[step],
                       label=step if i == 0 and j == 0 else None)  # fmt: skip
                bottom += v
            other = run.seconds - bottom
            if other > 0:
                ax.bar(x, other, width, bottom=bottom, color="#dddddd",
                       label="other" if i == 0 and j == 0 else None)  # fmt: skip
            ax.text(x, run.seconds, f"{side[0].upper()}\n{run.seconds:.0f}s", ha="center",
                    va="bottom", fontsize=7)  # fmt: skip
    ax.set_xticks(range(len(rows)), [r.project.label for r in rows])
    ax.set_ylabel("seconds (cibuildwheel's steps; P plain, A accelerated, N native)")
    ax.set_title("Real projects: plain emulated, accelerated, native host")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def bench_projects(
    plain: tuple[Config, Target],
    accelerated: tuple[Config, Target],
    project_list: Path,
    names: Sequence[str] | None,
    out_dir: Path,
    *,
    ca_bundle: str | None,
    repeat: int = 1,
    log: Log = print,
) -> list[ProjectRow]:
    """Run the table (``repeat`` rounds), print it, write projects.json and the chart
    under ``out_dir``."""
    import json
    import tempfile

    chosen = projects.select(projects.load_projects(project_list), list(names or []))
    work = Path(tempfile.mkdtemp(prefix="xarch-bench-projects-"))
    try:
        rows = project_rows(
            plain, accelerated, chosen, work, ca_bundle=ca_bundle, repeat=repeat, log=log
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log("")
    log(render(rows))
    out_dir.mkdir(parents=True, exist_ok=True)
    data = {
        "plain": f"{plain[0].path} {plain[1].name}",
        "accelerated": f"{accelerated[0].path} {accelerated[1].name}",
        "python": sys.version.split()[0],
        "loadavg": os.getloadavg(),
        "repeat": repeat,
        "rows": [r.to_json() for r in rows],
    }
    (out_dir / "projects.json").write_text(json.dumps(data, indent=2) + "\n")
    chart = write_chart(rows, out_dir / "bench-projects.png")
    log(f"\nResults: {out_dir / 'projects.json'}" + (f"\nChart:   {chart}" if chart else ""))
    return rows
