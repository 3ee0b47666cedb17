"""Shaping a run's results: the derived tables (overhead ratios, for an accelerated
image emulated, accelerated and native side by side; settings against the default),
the terminal text, the JSON document and the PNG chart.

Everything but :func:`write_chart` is pure and works on plain data, so the unit
tests build small results by hand and check the shapes.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xarch.bench.stats import Ratio, Summary, geometric_mean, ratio, speedup, verdict
from xarch.bench.toolkit import GOAL_NATIVE_TOOLCHAIN
from xarch.bench.wheels import WHEEL_GOAL, render_wheels
from xarch.bench.workloads import COMPILER_WORKLOADS, GCC, GXX, PIP_WHEEL
from xarch.model.tables import format_table

if TYPE_CHECKING:
    from xarch.bench.emulators import Emulator
    from xarch.bench.results import BenchResult
    from xarch.bench.runner import Series
    from xarch.bench.toolkit import ImageSize, ToolkitTiming

#: 2: the accelerated side (overhead rows, images, sizes, wheels).
SCHEMA = 2

#: Why an overhead row has no accelerated time.
NO_NATIVE_LEAVES = "no native leaves"
NO_COMPILER = "no compiler in this workload"


@dataclass(frozen=True)
class Goal:
    """Issue 10's goal for a workload with native leaves: accelerated at most
    ``max_vs_native`` times the native time, and (when given) at least
    ``min_speedup`` times faster than emulated."""

    max_vs_native: float
    min_speedup: float | None = None

    def met(self, vs_native: Ratio | None, speedup: Ratio | None) -> bool | None:
        """On the medians; None when a ratio is missing."""
        if vs_native is None or (self.min_speedup is not None and speedup is None):
            return None
        if vs_native.median > self.max_vs_native:
            return False
        return self.min_speedup is None or (
            speedup is not None and speedup.median >= self.min_speedup
        )

    def text(self) -> str:
        faster = f", >= {self.min_speedup:g}x faster" if self.min_speedup is not None else ""
        return f"<= {self.max_vs_native:g}x native{faster}"

    def to_json(self) -> dict[str, float | None]:
        return {"max_vs_native": self.max_vs_native, "min_speedup": self.min_speedup}


#: The compile steps; pip wheel (and the cibuildwheel row: wheels.WHEEL_GOAL).
GOALS = {GCC: Goal(1.2, 8.0), GXX: Goal(1.2, 8.0), PIP_WHEEL: Goal(WHEEL_GOAL)}


@dataclass(frozen=True)
class OverheadRow:
    target: str
    arch: str
    workload: str
    emulated: Summary | None
    native: Summary | None
    ratio: Ratio | None  # emulated / native
    failures: int  # of every side
    cpu_ratio: Ratio | None = None  # the same for user + system time
    #: the image carries native compiler leaves (org.xarch.native.toolchain)
    native_leaves: bool = False
    accelerated: Summary | None = None
    accelerated_ratio: Ratio | None = None  # accelerated / native
    speedup: Ratio | None = None  # emulated / accelerated
    accelerated_failures: int = 0
    #: why there is no accelerated time: NO_NATIVE_LEAVES, NO_COMPILER ("" = measured)
    accelerated_note: str = NO_NATIVE_LEAVES

    @property
    def goal(self) -> Goal | None:
        return GOALS.get(self.workload) if self.native_leaves else None

    @property
    def goal_met(self) -> bool | None:
        g = self.goal
        return None if g is None else g.met(self.accelerated_ratio, self.speedup)

    def to_json(self) -> dict[str, Any]:
        g = self.goal
        return {
            "target": self.target,
            "arch": self.arch,
            "workload": self.workload,
            "sides": ["emulated", "accelerated", "native"]
            if self.native_leaves and not self.accelerated_note
            else ["emulated", "native"],
            "emulated": self.emulated.to_json() if self.emulated else None,
            "accelerated": self.accelerated.to_json() if self.accelerated else None,
            "native": self.native.to_json() if self.native else None,
            "ratio": self.ratio.to_json() if self.ratio else None,
            "accelerated_over_native": (
                self.accelerated_ratio.to_json() if self.accelerated_ratio else None
            ),
            "emulated_over_accelerated": self.speedup.to_json() if self.speedup else None,
            "cpu_ratio": self.cpu_ratio.to_json() if self.cpu_ratio else None,
            "native_leaves": self.native_leaves,
            "accelerated_note": self.accelerated_note,
            "goal": g.to_json() if g else None,
            "goal_met": self.goal_met,
            "failures": self.failures,
            "accelerated_failures": self.accelerated_failures,
        }


@dataclass(frozen=True)
class SettingRow:
    target: str
    arch: str
    emulator: str  # Emulator.key
    binary: str  # "QEMU 7.2.22 sha256:4f55e2e8"
    cpu: str  # QEMU_CPU passed, "" = the image's default
    effective_cpu: str  # what the run got ("" when unknown)
    workload: str
    summary: Summary | None
    speedup: float | None  # default median / this median
    verdict: str
    is_default: bool
    failures: int
    cpu_speedup: float | None = None  # the same for user + system time

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "arch": self.arch,
            "emulator": self.emulator,
            "binary": self.binary,
            "qemu_cpu": self.cpu,
            "effective_cpu": self.effective_cpu,
            "workload": self.workload,
            "summary": self.summary.to_json() if self.summary else None,
            "speedup_vs_default": None if self.speedup is None else round(self.speedup, 3),
            "cpu_speedup_vs_default": (
                None if self.cpu_speedup is None else round(self.cpu_speedup, 3)
            ),
            "verdict": self.verdict,
            "default": self.is_default,
            "failures": self.failures,
        }


def overhead_rows(series: Sequence[Series], accelerated: Collection[str] = ()) -> list[OverheadRow]:
    """emulated/native per target and workload, for the default setting (the pinned
    emulator, no QEMU_CPU passed); for the targets named in ``accelerated`` (images
    with native leaves) also the accelerated side, accelerated/native and
    emulated/accelerated."""
    native = {(s.target, s.workload): s for s in series if s.kind == "native"}
    fast = {(s.target, s.workload): s for s in series if s.kind == "accelerated"}
    rows = []
    for s in series:
        if s.kind != "emulated" or s.emulator != "pin" or s.cpu:
            continue
        n = native.get((s.target, s.workload))
        a = fast.get((s.target, s.workload))
        e_sum = s.summary()
        n_sum = n.summary() if n else None
        a_sum = a.summary() if a else None
        leaves = s.target in accelerated
        if not leaves:
            note = NO_NATIVE_LEAVES
        elif s.workload not in COMPILER_WORKLOADS:
            note = NO_COMPILER
        else:
            note = ""
        a_failures = len(a.failures) if a else 0
        rows.append(
            OverheadRow(
                target=s.target,
                arch=s.arch,
                workload=s.workload,
                emulated=e_sum,
                native=n_sum,
                ratio=ratio(e_sum, n_sum),
                failures=len(s.failures) + (len(n.failures) if n else 0) + a_failures,
                cpu_ratio=ratio(s.cpu_summary(), n.cpu_summary() if n else None),
                native_leaves=leaves,
                accelerated=a_sum,
                accelerated_ratio=ratio(a_sum, n_sum),
                speedup=ratio(e_sum, a_sum),
                accelerated_failures=a_failures,
                accelerated_note=note,
            )
        )
    return rows


def accelerated_targets(result: BenchResult) -> set[str]:
    return {i.target for i in result.images if i.accelerated}


def setting_rows(
    series: Sequence[Series],
    emulators: Sequence[Emulator],
    default_cpu: dict[str, str],
) -> list[SettingRow]:
    """Every emulated series against the default setting of its target (the pinned
    emulator, no QEMU_CPU passed), workload by workload."""
    binaries = {(e.key, e.arch): e.short for e in emulators}
    defaults = {
        (s.target, s.workload): s
        for s in series
        if s.kind == "emulated" and s.emulator == "pin" and not s.cpu
    }
    rows = []
    for s in series:
        if s.kind != "emulated":
            continue
        is_default = s.emulator == "pin" and not s.cpu
        ds = defaults.get((s.target, s.workload))
        d = ds.summary() if ds else None
        mine = s.summary()
        rows.append(
            SettingRow(
                target=s.target,
                arch=s.arch,
                emulator=s.emulator,
                binary=binaries.get((s.emulator, s.arch), s.emulator),
                cpu=s.cpu,
                effective_cpu=s.cpu or default_cpu.get(s.target, ""),
                workload=s.workload,
                summary=mine,
                speedup=None if is_default else speedup(d, mine),
                verdict="default" if is_default else verdict(d, mine),
                is_default=is_default,
                failures=len(s.failures),
                cpu_speedup=(
                    None if is_default or ds is None else speedup(ds.cpu_summary(), s.cpu_summary())
                ),
            )
        )
    return rows


@dataclass(frozen=True)
class Recommendation:
    target: str
    arch: str
    emulator: str
    cpu: str
    geomean: float
    workloads: tuple[str, ...]


def recommend(rows: Sequence[SettingRow], workloads: Sequence[str]) -> list[Recommendation]:
    """Per target, the alternative that is clearly faster on every one of
    ``workloads`` (verdict "faster"), best geometric-mean speed-up first; none when
    no alternative is clearly faster everywhere."""
    out = []
    by_target: dict[str, list[SettingRow]] = {}
    for r in rows:
        by_target.setdefault(r.target, []).append(r)
    for target, trows in by_target.items():
        candidates: dict[tuple[str, str], list[SettingRow]] = {}
        for r in trows:
            if not r.is_default and r.workload in workloads:
                candidates.setdefault((r.emulator, r.cpu), []).append(r)
        best: Recommendation | None = None
        for (emulator, cpu), crows in candidates.items():
            if {r.workload for r in crows} != set(workloads):
                continue
            if not all(r.verdict == "faster" and r.speedup for r in crows):
                continue
            g = geometric_mean([r.speedup for r in crows if r.speedup])
            if g is not None and (best is None or g > best.geomean):
                best = Recommendation(
                    target=target,
                    arch=crows[0].arch,
                    emulator=emulator,
                    cpu=cpu,
                    geomean=g,
                    workloads=tuple(workloads),
                )
        if best is not None:
            out.append(best)
    return out


# ------------------------------------------------------------------------------- text


def _s(x: float | None, unit: str = "s") -> str:
    if x is None:
        return "-"
    if x >= 100:
        return f"{x:.0f}{unit}"
    if x >= 10:
        return f"{x:.1f}{unit}"
    return f"{x:.2f}{unit}"


def timing_cell(s: Summary | None) -> str:
    """``12.9s [12.4-13.3]``: the median, then min-max."""
    if s is None:
        return "-"
    return f"{_s(s.median)} [{_s(s.min, '')}-{_s(s.max, '')}]"


def _x(r: Ratio | None) -> str:
    return "-" if r is None else f"{r.median:.1f}x"


def render_overhead(rows: Sequence[OverheadRow]) -> str:
    """Two sides (emulated, native) as before when no image has native leaves;
    otherwise three, the accelerated cell of a row without them saying why."""
    if any(r.native_leaves for r in rows):
        return _render_three_sides(rows)
    out: list[list[str]] = [["TARGET", "WORKLOAD", "EMULATED", "NATIVE", "RATIO", "RANGE"]]
    for r in rows:
        out.append(
            [
                r.target,
                r.workload,
                timing_cell(r.emulated) + (f" ({r.failures} FAILED)" if r.failures else ""),
                timing_cell(r.native),
                f"{r.ratio.median:.1f}x" if r.ratio else "-",
                f"{r.ratio.low:.1f}-{r.ratio.high:.1f}x" if r.ratio else "-",
            ]
        )
    return format_table(out)


def _render_three_sides(rows: Sequence[OverheadRow]) -> str:
    out: list[list[str]] = [
        [
            "TARGET",
            "WORKLOAD",
            "EMULATED",
            "ACCELERATED",
            "NATIVE",
            "EMU/NAT",
            "ACC/NAT",
            "EMU/ACC",
            "GOAL",
        ]
    ]
    for r in rows:
        emulated_failures = r.failures - r.accelerated_failures
        if r.accelerated_note:
            accelerated = r.accelerated_note
        else:
            accelerated = timing_cell(r.accelerated) + (
                f" ({r.accelerated_failures} FAILED)" if r.accelerated_failures else ""
            )
        goal = r.goal
        met = r.goal_met
        out.append(
            [
                r.target,
                r.workload,
                timing_cell(r.emulated)
                + (f" ({emulated_failures} FAILED)" if emulated_failures else ""),
                accelerated,
                timing_cell(r.native),
                _x(r.ratio),
                _x(r.accelerated_ratio),
                _x(r.speedup),
                "-"
                if goal is None
                else f"{goal.text()}: {'-' if met is None else 'ok' if met else 'MISSED'}",
            ]
        )
    return format_table(out)


def render_settings(rows: Sequence[SettingRow]) -> str:
    out: list[list[str]] = [
        ["TARGET", "EMULATOR", "QEMU_CPU", "WORKLOAD", "WALL", "VS DEFAULT", "CPU TIME", "VERDICT"]
    ]
    for r in rows:
        cpu = r.cpu or (f"(image: {r.effective_cpu})" if r.effective_cpu else "(image)")
        out.append(
            [
                r.target,
                r.binary,
                cpu,
                r.workload,
                timing_cell(r.summary) + (f" ({r.failures} FAILED)" if r.failures else ""),
                "-" if r.speedup is None else f"{r.speedup:.2f}x",
                "-" if r.cpu_speedup is None else f"{r.cpu_speedup:.2f}x",
                r.verdict,
            ]
        )
    return format_table(out)


def render_toolkit(rows: Sequence[ToolkitTiming]) -> str:
    out: list[list[str]] = [["TASK", "WALL", "GOAL", "NOTE"]]
    for t in rows:
        s = t.summary()
        wall = timing_cell(s) if s else "FAILED"
        goal = "-"
        if t.goal is not None and s is not None:
            goal = f"< {t.goal:g}s {'ok' if s.median < t.goal else 'MISSED'}"
        elif t.goal is not None:
            goal = f"< {t.goal:g}s"
        out.append([t.name, wall, goal, t.note])
    return format_table(out)


def _mb(n: int | None) -> str:
    return "-" if n is None else f"{n / 1e6:.1f} MB"


def native_size_cell(r: ImageSize) -> str:
    """``71.8 MB (< 120 MB ok)``; why not, for an accelerated image without a size."""
    if not r.native_leaves:
        return NO_NATIVE_LEAVES
    if r.native_size is None:
        return r.native_size_error or "not measured"
    verdict = "ok" if r.native_within_goal else "MISSED"
    return f"{_mb(r.native_size)} (< {_mb(GOAL_NATIVE_TOOLCHAIN)} {verdict})"


def render_sizes(rows: Sequence[ImageSize]) -> str:
    """The added size per image; with a column for /opt/xarch/native when any image
    has native leaves."""
    native = any(r.native_leaves for r in rows)
    header = ["TARGET", "HELPER", "BASE", "ADDED"]
    out: list[list[str]] = [
        [*header, "NATIVE TOOLCHAIN", "BASE IMAGE"] if native else [*header, "BASE IMAGE"]
    ]
    for r in rows:
        cells = [
            r.target,
            _mb(r.size),
            _mb(r.base_size) if r.base_size is not None else "not local",
            _mb(r.added),
        ]
        if native:
            cells.append(native_size_cell(r))
        out.append([*cells, r.base])
    return format_table(out)


def render(result: BenchResult) -> str:
    overhead = overhead_rows(result.series, accelerated_targets(result))
    defaults = {i.target: i.default_cpu for i in result.images}
    settings = setting_rows(result.series, result.emulators, defaults)
    env = result.environment
    parts = [
        f"xarch bench ({result.plan.name}), {result.started}, {result.wall_seconds:.0f} s",
        f"host: {env.get('cpu_model', '?')}, {env.get('cpus', '?')} CPUs, "
        f"kernel {env.get('kernel', '?')}, Docker {env.get('docker', '?')}, "
        f"load {env.get('loadavg_start', '?')} -> {env.get('loadavg_end', '?')}",
    ]
    for e in result.emulators:
        parts.append(f"  {e.arch}: {e.label}: {e.version}, sha256 {e.sha256[:16]}...")
    if overhead and any(r.native_leaves for r in overhead):
        parts += [
            "",
            "Emulated, accelerated and native (pinned QEMU, the image's QEMU_CPU; emulated = "
            "the image's own compiler leaves, XARCH_NATIVE_TOOLS=0 in an accelerated image; "
            "accelerated = its native x86_64 leaves, XARCH_NATIVE_TOOLS=1; median [min-max] of "
            f"{result.plan.reps} runs; ratios of the medians)",
            render_overhead(overhead),
        ]
    elif overhead:
        parts += [
            "",
            "Emulation overhead (pinned QEMU, the image's QEMU_CPU; median [min-max] of "
            f"{result.plan.reps} runs; ratio = emulated/native medians)",
            render_overhead(overhead),
        ]
    if overhead:
        parts += [f"  {i.target}: {i.native_status}" for i in result.images]
    if any(not r.is_default for r in settings):
        parts += [
            "",
            "QEMU settings (vs default = default median / this median, of wall time and of "
            "CPU time; 'faster' only when the wall-time ranges do not overlap)",
            render_settings(settings),
        ]
        recs = recommend(settings, result.plan.config_workloads)
        for rec in recs:
            parts.append(
                f"  clearly faster on {', '.join(rec.workloads)}: {rec.target}: "
                f"{rec.emulator} QEMU_CPU={rec.cpu or '(image)'} "
                f"({rec.geomean:.2f}x geometric mean)"
            )
        if not recs:
            parts.append("  no setting is clearly faster than the default on every workload")
    if result.wheels:
        accelerated = (
            "; in an accelerated image twice, with the native leaves (the default) and with "
            "the emulated ones (XARCH_NATIVE_TOOLS=0 through CIBW_ENVIRONMENT_LINUX)"
            if any(w.native_leaves for w in result.wheels)
            else ""
        )
        parts += [
            "",
            "Wheels: cibuildwheel of the sample C extension in each image (build, repair, "
            f"test){accelerated} vs natively on the host (pip wheel, install, test; "
            f"bench/wheels.py); native Python {result.wheels[0].native_python}",
            render_wheels(result.wheels),
        ]
    if result.sizes:
        title = "Size each helper image adds over its base"
        if any(r.native_leaves for r in result.sizes):
            title += " (NATIVE TOOLCHAIN: du -sb /opt/xarch/native in the image)"
        parts += ["", title, render_sizes(result.sizes)]
    if result.toolkit:
        parts += ["", "Toolkit overhead", render_toolkit(result.toolkit)]
    for info in result.images:
        for line in info.skipped:
            parts.append(f"skipped ({info.target}): {line}")
    for note in result.notes:
        parts.append(f"note: {note}")
    for ev in result.binfmt_events:
        parts.append(f"binfmt: {ev}")
    failures = [(s, f) for s in result.series for f in s.failures]
    if failures:
        parts += ["", f"FAILED runs ({len(failures)}); never counted in a timing:"]
        for s, f in failures:
            where = (
                "native" if s.kind == "native" else f"{s.emulator} QEMU_CPU={s.cpu or '(image)'}"
            )
            if s.kind == "accelerated":
                where += ", native leaves"
            parts.append(f"  {s.target} {s.workload} [{where}] round {f.round + 1}: {f.reason}")
            parts += [f"    | {ln}" for ln in f.output.splitlines()[-15:]]
    for t in result.toolkit:
        if t.failure:
            parts += [
                f"  toolkit {t.name}: FAILED",
                *[f"    | {ln}" for ln in t.failure.splitlines()[-15:]],
            ]
    return "\n".join(parts)


# ------------------------------------------------------------------------------- JSON


def to_json(result: BenchResult) -> dict[str, Any]:
    defaults = {i.target: i.default_cpu for i in result.images}
    settings = setting_rows(result.series, result.emulators, defaults)
    return {
        "schema": SCHEMA,
        "started": result.started,
        "wall_seconds": round(result.wall_seconds, 1),
        "config": result.config,
        "plan": result.plan.to_json(),
        "environment": result.environment,
        "emulators": [e.to_json() for e in result.emulators],
        "images": [i.to_json() for i in result.images],
        "overhead": [
            r.to_json() for r in overhead_rows(result.series, accelerated_targets(result))
        ],
        "goals": {
            "workloads": {w: g.to_json() for w, g in GOALS.items()},
            "cibuildwheel_max_vs_native": WHEEL_GOAL,
            "native_toolchain_max_bytes": GOAL_NATIVE_TOOLCHAIN,
        },
        "settings": [r.to_json() for r in settings],
        "recommendations": [
            {
                "target": r.target,
                "arch": r.arch,
                "emulator": r.emulator,
                "qemu_cpu": r.cpu,
                "geomean_speedup": round(r.geomean, 3),
                "workloads": list(r.workloads),
            }
            for r in recommend(settings, result.plan.config_workloads)
        ],
        "toolkit": [t.to_json() for t in result.toolkit],
        "sizes": [s.to_json() for s in result.sizes],
        "series": [s.to_json() for s in result.series],
        "notes": result.notes,
        "binfmt_events": result.binfmt_events,
        "wheels": [w.to_json() for w in result.wheels],
    }


def write_json(result: BenchResult, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(to_json(result), indent=2) + "\n")
    tmp.replace(path)
    return path


# ------------------------------------------------------------------------------ chart


@dataclass(frozen=True)
class Bar:
    """One bar of the chart: a ratio's median with whiskers to its range."""

    value: float
    low: float
    high: float


@dataclass(frozen=True)
class BarGroup:
    label: str  # the legend: an architecture, or a side (emulated, accelerated, native)
    bars: tuple[Bar | None, ...]  # one per workload of the panel; None = no bar
    color: str | None = None  # None = matplotlib's cycle


@dataclass(frozen=True)
class ChartPanel:
    title: str
    ylabel: str
    workloads: tuple[str, ...]
    groups: tuple[BarGroup, ...]
    labels_inside: bool  # the bar's value written inside it (else above)


SIDE_COLORS = {"emulated": "tab:red", "accelerated": "tab:green", "native": "tab:blue"}


def _bar(r: Ratio | None) -> Bar | None:
    return None if r is None else Bar(r.median, r.low, r.high)


def chart_panels(rows: Sequence[OverheadRow]) -> list[ChartPanel]:
    """What the overhead part of the chart draws. Without native leaves anywhere:
    one panel, emulated/native per workload, a bar per architecture (as before).
    Otherwise one panel per image, wall time over the native median per workload:
    emulated, accelerated (with native leaves only) and native (1, whiskers to its
    own min and max)."""
    rows = [r for r in rows if r.ratio is not None]
    if not rows:
        return []
    if not any(r.native_leaves for r in rows):
        workloads = tuple(dict.fromkeys(r.workload for r in rows))
        groups = []
        for arch in dict.fromkeys(r.arch for r in rows):
            by = {r.workload: r for r in rows if r.arch == arch}
            groups.append(
                BarGroup(arch, tuple(_bar(by[w].ratio) if w in by else None for w in workloads))
            )
        return [
            ChartPanel(
                title="Emulation overhead (pinned QEMU)",
                ylabel="emulated / native wall time",
                workloads=workloads,
                groups=tuple(groups),
                labels_inside=True,
            )
        ]
    panels = []
    for target in dict.fromkeys(r.target for r in rows):
        mine = [r for r in rows if r.target == target]
        workloads = tuple(r.workload for r in mine)
        leaves = mine[0].native_leaves
        sides: list[tuple[str, list[Bar | None]]] = [("emulated", [_bar(r.ratio) for r in mine])]
        if leaves:
            sides.append(("accelerated", [_bar(r.accelerated_ratio) for r in mine]))
        sides.append(
            (
                "native",
                [
                    Bar(1.0, r.native.min / r.native.median, r.native.max / r.native.median)
                    if r.native is not None and r.native.median > 0
                    else None
                    for r in mine
                ],
            )
        )
        panels.append(
            ChartPanel(
                title=f"{target} ({mine[0].arch}): "
                + ("native leaves" if leaves else NO_NATIVE_LEAVES),
                ylabel="wall time / native median",
                workloads=workloads,
                groups=tuple(
                    BarGroup(side, tuple(bars), SIDE_COLORS[side]) for side, bars in sides
                ),
                labels_inside=False,
            )
        )
    return panels


def write_chart(result: BenchResult, path: Path) -> Path | None:
    """The overhead panels (:func:`chart_panels`: emulated/native per workload and
    image, or, with an accelerated image, emulated, accelerated and native per
    workload for each image; bars at the median ratio, whiskers to the range), and
    each QEMU setting's speed against the default. None when matplotlib is missing
    (the `bench` extra) or there is nothing to plot."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    overview = chart_panels(overhead_rows(result.series, accelerated_targets(result)))
    if not overview:
        return None
    defaults = {i.target: i.default_cpu for i in result.images}
    alt = [
        r
        for r in setting_rows(result.series, result.emulators, defaults)
        if not r.is_default and r.speedup is not None
    ]
    panels = len(overview) + (1 if alt else 0)
    fig, axes = plt.subplots(1, panels, figsize=(6.5 * panels, 4.6), squeeze=False)

    for ax, panel in zip(axes[0], overview, strict=False):
        width = 0.8 / max(1, len(panel.groups))
        for i, group in enumerate(panel.groups):
            xs, ys, lo, hi = [], [], [], []
            for j, bar in enumerate(group.bars):
                if bar is None:
                    continue
                xs.append(j + (i - (len(panel.groups) - 1) / 2) * width)
                ys.append(bar.value)
                lo.append(bar.value - bar.low)
                hi.append(bar.high - bar.value)
            bars = ax.bar(
                xs, ys, width, yerr=[lo, hi], capsize=3, label=group.label, color=group.color
            )
            if panel.labels_inside:
                ax.bar_label(
                    bars,
                    labels=[f"{y:.1f}x" for y in ys],
                    label_type="center",
                    fontsize=8,
                    color="white",
                )
            else:
                ax.bar_label(bars, labels=[f"{y:.1f}x" for y in ys], padding=2, fontsize=7)
        ax.set_xticks(range(len(panel.workloads)), panel.workloads)
        ax.set_ylabel(panel.ylabel)
        ax.set_title(panel.title, fontsize=10)
        ax.axhline(1, color="grey", linewidth=0.8)
        ax.legend(fontsize=8)

    if alt:
        ax2 = axes[0][len(overview)]
        labels = []
        values = []
        colors = []
        palette = {"faster": "tab:green", "slower": "tab:red"}
        for r in alt:
            cpu = r.cpu or f"({r.effective_cpu or 'image'})"
            labels.append(f"{r.arch} {r.binary.split(' sha256')[0]} {cpu} {r.workload}")
            values.append(r.speedup or 0.0)
            colors.append(palette.get(r.verdict, "tab:grey"))
        ys2 = list(range(len(labels)))
        ax2.barh(ys2, values, color=colors)
        ax2.set_yticks(ys2, labels, fontsize=7)
        ax2.invert_yaxis()
        ax2.axvline(1, color="black", linewidth=0.8)
        ax2.set_xlabel(
            "speed vs default (default median / median)\n"
            "green: clearly faster, red: clearly slower, grey: no clear difference",
            fontsize=8,
        )
        ax2.set_title("QEMU settings against the pinned default", fontsize=10)
        lo_x = min([*values, 1.0])
        hi_x = max([*values, 1.0])
        ax2.set_xlim(max(0.0, lo_x - 0.1), hi_x + 0.1)
    fig.suptitle(
        f"xarch bench ({result.plan.name}) {result.started}: "
        f"{result.environment.get('cpu_model', '')}",
        fontsize=9,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
