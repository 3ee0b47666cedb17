"""``invoke bench``: one run that measures, side by side, the emulation overhead of
each helper image (and, for an accelerated image, what its native compiler leaves
gain: emulated, accelerated and native), the QEMU settings against the pinned
default, the toolkit's own overhead and the size each helper image adds over its base.

Order of a run: check everything that could make it fail early (targets, engine,
images, root, binfmt_misc, host toolchain); prepare (inputs, timer, venv,
emulators); measure under emulation with a flag-F handler for the pinned emulator
registered for the whole section (and the host's entries restored afterwards);
then sizes and the toolkit; then the table, the JSON and the chart.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from xarch import __version__
from xarch.bench import emulators as emu
from xarch.bench.results import BenchResult, ImageInfo
from xarch.bench.runner import (
    BOX_INPUTS,
    BOX_QEMU,
    BOX_SCRATCH,
    BOX_TIMER,
    EmulatedRunner,
    Failure,
    HandlerGuard,
    NativeRunner,
    Series,
    Setting,
    build_timer,
    handler_for,
    rotated,
    sample,
    tail,
)
from xarch.bench.toolkit import ImageSize, image_sizes, toolkit_overhead
from xarch.bench.wheels import wheel_rows
from xarch.bench.workloads import COMPILER_WORKLOADS, Plan, write_inputs
from xarch.errors import BadInput, BenchError, BinfmtError, NotBuilt
from xarch.host import binfmt
from xarch.images.helper import source_revision
from xarch.images.native import LABEL_PREFIX
from xarch.model.arch import Arch
from xarch.model.config import Config, Target
from xarch.model.naming import helper_ref
from xarch.model.paths import build_dir
from xarch.oci.engine import Container, Engine

Log = Callable[[str], None]


# ---------------------------------------------------------------------------- checks


def preflight(
    config: Config, names: list[str] | None
) -> tuple[Engine, list[Target], dict[str, Any]]:
    """Everything that can fail before anything changes: (engine, targets, image attrs)."""
    targets = list(config.select(names))
    if not targets:
        raise BadInput("no target selected: name a target of the config with --target")
    engine = Engine.connect()
    attrs: dict[str, Any] = {}
    missing = []
    for t in targets:
        ref = helper_ref(config, t, t.tags[0])
        a = engine.inspect(ref)
        if a is None:
            missing.append(ref)
        else:
            attrs[t.name] = a
    if missing:
        raise NotBuilt(
            "no helper image built yet for: "
            + ", ".join(missing)
            + f"\n  run `invoke build-images --config {config.path}` first"
        )
    if os.geteuid() != 0:
        raise BadInput(
            "invoke bench registers temporary binfmt_misc handlers (flag F) for the emulated "
            "runs: run it as root"
        )
    if not binfmt.is_available():
        raise BinfmtError(
            f"binfmt_misc is not mounted at {binfmt.BINFMT_DIR}; mount it as root: "
            f"mount -t binfmt_misc binfmt_misc {binfmt.BINFMT_DIR}"
        )
    if shutil.which("gcc") is None:
        raise BenchError(
            "the native side needs gcc on the host: apt-get install gcc libc6-dev python3-dev"
        )
    host_python()
    return engine, targets, attrs


def host_python() -> Path:
    """The host interpreter the native side uses: Debian's /usr/bin/python3 (the one
    the stand-ins carry) when present, with its headers."""
    candidates = [Path("/usr/bin/python3")]
    found = shutil.which("python3")
    if found:
        candidates.append(Path(found))
    for c in candidates:
        if not c.is_file():
            continue
        r = subprocess.run(
            [str(c), "-c", "import sysconfig; print(sysconfig.get_paths()['include'])"],
            capture_output=True,
            text=True,
            check=False,
        )
        if r.returncode == 0 and (Path(r.stdout.strip()) / "Python.h").is_file():
            return c
    raise BenchError(
        "the native side needs python3 with its C headers (Python.h), venv, pip, setuptools "
        "and wheel: apt-get install python3-dev python3-venv python3-pip python3-wheel"
    )


# ------------------------------------------------------------------------- preparing


def make_native_venv(python: Path, dest: Path, log: Log) -> Path:
    """A venv like the stand-in's /opt/python/cpXY-cpXY: system site-packages, so the
    same Debian pip/setuptools/wheel; made before the measured part."""
    cmd = [str(python), "-m", "venv", "--system-site-packages", str(dest)]
    log("+ " + " ".join(cmd))
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    venv_python = dest / "bin" / "python"
    if r.returncode != 0 or not venv_python.is_file():
        raise BenchError(f"cannot create the native venv: {tail(r.stderr, 5)}")
    check = subprocess.run(
        [str(venv_python), "-c", "import setuptools, wheel, pip"],
        capture_output=True,
        text=True,
        check=False,
    )
    if check.returncode != 0:
        raise BenchError(
            f"{python} lacks pip, setuptools or wheel ({tail(check.stderr, 2)}): "
            "apt-get install python3-pip python3-setuptools python3-wheel"
        )
    return venv_python


def _first_line(argv: Sequence[str]) -> str:
    try:
        r = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    except OSError:
        return ""
    lines = (r.stdout or r.stderr).strip().splitlines()
    return lines[0] if lines else ""


def environment(engine: Engine, native_python: Path) -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError):
        m = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        cpu = m.group(1).strip() if m else ""
    mem = ""
    with contextlib.suppress(OSError):
        m = re.search(r"^MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
        mem = f"{int(m.group(1)) / 1024 / 1024:.1f} GiB" if m else ""
    docker_version = str(engine.version().get("Version", ""))  # read at connect
    return {
        "cpu_model": cpu,
        "cpus": os.cpu_count(),
        "memory": mem,
        "kernel": platform.release(),
        "machine": platform.machine(),
        "docker": docker_version,
        "host_gcc": _first_line(["gcc", "--version"]),
        "host_python": _first_line([str(native_python), "--version"]),
        "xarch": __version__,
        "revision": source_revision(),
        "loadavg_start": _loadavg(),
    }


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return ""


# ------------------------------------------------------------------- emulated section


def _start_container(
    engine: Engine, ref: str, arch: Arch, mounts: dict[str, str], log: Log
) -> Container:
    vols = " ".join(f"-v {h}:{c}:ro" for h, c in mounts.items())
    log(f"+ docker run -d --network none --platform {arch.platform} {vols} {ref} sleep infinity")
    c = engine.start(
        ref,
        ["sleep", "infinity"],
        network="none",
        platform=arch.platform,
        volumes={h: (c, "ro") for h, c in mounts.items()},
        labels={"io.xarch.bench": "1"},
    )
    status = c.status()
    if status != "running":
        logs = c.logs()
        c.remove()
        raise BenchError(f"{ref} did not start ({status}): {tail(logs, 5)}")
    return c


#: Where an accelerated image keeps its native toolchain (xarch.images.native).
NATIVE_PREFIX = "/opt/xarch/native"


def parse_du(stdout: str) -> int | None:
    """The byte count of ``du -sb PATH`` ("75300000\t/opt/xarch/native"), None if
    there is none."""
    first = stdout.strip().split(maxsplit=1)
    return int(first[0]) if first and first[0].isdigit() else None


def _box_setup(container: Container, info: ImageInfo, mounted: dict[str, str]) -> EmulatedRunner:
    """Scratch dir, the interpreter, versions (unmeasured; they also warm the caches),
    and for an accelerated image the size of its native toolchain. The runner it
    returns is the emulated side: in an accelerated image with XARCH_NATIVE_TOOLS=0."""
    native_tools = "0" if info.accelerated else None
    probe = EmulatedRunner(container, "python3", native_tools=native_tools)
    r = probe.run(["mkdir", "-p", BOX_SCRATCH], workdir="/", env={})
    if r.exit_code != 0:
        raise BenchError(
            f"{info.image}: cannot create {BOX_SCRATCH}: {tail(r.stdout + r.stderr, 5)}"
        )
    r = probe.run(
        [
            "sh",
            "-c",
            "for p in /opt/python/cp311-cp311 /opt/python/cp3*; do "
            '[ -x "$p/bin/python" ] && { echo "$p/bin/python"; exit 0; }; done; command -v python3',
        ],
        workdir="/",
        env={},
    )
    info.python = r.stdout.strip().splitlines()[0] if r.stdout.strip() else "python3"
    box = EmulatedRunner(container, info.python, native_tools=native_tools)
    gcc = box.run(["gcc", "--version"], workdir="/", env={})
    py = box.run(
        [info.python, "-c", "import sys, setuptools, pip; print(sys.version.split()[0], "
         "'pip', pip.__version__, 'setuptools', setuptools.__version__)"],
        workdir="/",
        env={},
    )  # fmt: skip
    info.versions["gcc"] = (gcc.stdout.strip().splitlines() or [""])[0]
    info.versions["python"] = py.stdout.strip() or tail(py.stderr, 2)
    for key, path in mounted.items():
        # An x86_64 static binary runs natively inside the emulated container.
        v = box.run([path, "--version"], workdir="/", env={})
        info.versions[f"emulator {key} (mounted)"] = emu.parse_version(v.stdout) or v.stderr.strip()
    if info.accelerated:
        du = box.run(["du", "-sb", NATIVE_PREFIX], workdir="/", env={})
        info.native_size = parse_du(du.stdout) if du.exit_code == 0 else None
        if info.native_size is None:
            info.native_size_error = (
                f"du -sb {NATIVE_PREFIX}: exit {du.exit_code}: {tail(du.stdout + du.stderr, 2)}"
            )
    return box


def _probe(box: EmulatedRunner) -> tuple[bool, str]:
    r = box.run(["sh", "-c", "LD_SHOW_AUXV=1 /bin/true"], workdir="/", env={})
    if r.exit_code != 0:
        return False, tail(r.stdout + r.stderr, 10)
    fields = {}
    for line in r.stdout.splitlines():
        k, _, v = line.partition(":")
        if k.strip() in ("AT_PLATFORM", "AT_HWCAP", "AT_HWCAP2"):
            fields[k.strip()] = v.strip()
    return True, " ".join(
        f"{k}={fields[k]}" for k in ("AT_PLATFORM", "AT_HWCAP", "AT_HWCAP2") if k in fields
    )


def settings_for(
    info: ImageInfo,
    plan: Plan,
    pinned: emu.Emulator,
    alternative: emu.Emulator | None,
) -> tuple[list[Setting], list[str]]:
    """The default first, then the alternatives; and what was left out, and why."""
    out = [Setting(pinned)]
    skipped: list[str] = []
    default = info.default_cpu

    def add(e: emu.Emulator, models: Sequence[str]) -> None:
        offered = emu.cpu_models(e.path)
        for m in models:
            if m == default:
                continue  # that is the default row
            if offered and m.split(",")[0].lower() not in offered:
                skipped.append(f"{e.short}: QEMU_CPU={m} is not a model this QEMU offers")
                continue
            out.append(Setting(e, m))

    add(pinned, plan.cpu_models.get(info.arch, ()))
    if alternative is not None:
        out.append(Setting(alternative))
        add(alternative, plan.alt_cpu_models.get(info.arch, ()))
    return out, skipped


def _describe(s: Setting, info: ImageInfo) -> str:
    cpu = s.cpu or (f"image default ({info.default_cpu})" if info.default_cpu else "image default")
    if s.accelerated:
        return f"{s.emulator.short}, QEMU_CPU={cpu}, native leaves (XARCH_NATIVE_TOOLS=1)"
    if info.accelerated:
        return f"{s.emulator.short}, QEMU_CPU={cpu}, emulated leaves (XARCH_NATIVE_TOOLS=0)"
    return f"{s.emulator.short}, QEMU_CPU={cpu}"


def with_accelerated(
    info: ImageInfo, valid: Sequence[Setting], pinned: emu.Emulator
) -> list[Setting]:
    """The settings to run: for an accelerated image the default setting a second
    time with the native leaves, right after it (it then rotates with the others);
    nothing is added for an image without native leaves, or when the default setting
    could not start a program."""
    out = list(valid)
    default = Setting(pinned)
    if info.accelerated and default in out:
        out.insert(out.index(default) + 1, Setting(pinned, accelerated=True))
    return out


class ImageSession:
    """The runs of one helper image: its container, its settings, its series."""

    def __init__(
        self,
        target: Target,
        info: ImageInfo,
        plan: Plan,
        box: EmulatedRunner,
        native: NativeRunner,
        pinned: emu.Emulator,
        guard: HandlerGuard,
        log: Log,
    ) -> None:
        self.target = target
        self.info = info
        self.plan = plan
        self.box = box
        self.native = native
        self.pinned = pinned
        self.guard = guard
        self.log = log
        self.default = Setting(pinned)
        self.table: dict[tuple[str, str], Series] = {}
        self.swaps: list[str] = []  # handler changes of later rounds, not printed

    def series(self, workload: str, s: Setting | None) -> Series:
        """The native series of ``workload`` (s None) or its series under ``s``."""
        key = (workload, s.key if s else "native")
        if key not in self.table:
            self.table[key] = Series(
                kind=("accelerated" if s.accelerated else "emulated") if s else "native",
                target=self.target.name,
                arch=self.target.arch.name,
                workload=workload,
                emulator=s.emulator.key if s else "",
                cpu=s.cpu if s else "",
            )
        return self.table[key]

    def workloads(self, s: Setting) -> tuple[str, ...]:
        """The default setting runs every workload, the accelerated one those that
        start a compiler, an alternative QEMU setting the plan's config workloads."""
        if s.accelerated:
            return tuple(w for w in self.plan.workloads if w in COMPILER_WORKLOADS)
        return self.plan.workloads if s == self.default else self.plan.config_workloads

    def reps(self, s: Setting) -> int:
        return self.plan.reps if s in (self.default, self.accelerated) else self.plan.config_reps

    @property
    def accelerated(self) -> Setting:
        return Setting(self.pinned, accelerated=True)

    def runner(self, s: Setting) -> EmulatedRunner:
        """The emulated side (in an accelerated image XARCH_NATIVE_TOOLS=0, set by the
        box) or, for the accelerated setting, the same with XARCH_NATIVE_TOOLS=1."""
        runner = self.box.with_cpu(s.cpu)
        return runner.with_native_tools("1") if s.accelerated else runner

    def probe(self, settings: Sequence[Setting]) -> list[Setting]:
        """Start a program once under each setting (and its own handler); a setting the
        emulator refuses (an unknown QEMU_CPU, say) is reported as failed, not timed."""
        valid = []
        for s in settings:
            with handler_for(s, self.target.arch, self.pinned, self.log):
                self.guard.ensure(self.target.arch, str(s.emulator.path))
                ok, text = _probe(self.box.with_cpu(s.cpu))
            self.info.probes[s.key] = text
            if ok:
                valid.append(s)
                self.log(f"  {_describe(s, self.info)}: {text}")
                continue
            self.log(f"  {_describe(s, self.info)}: FAILED to start a program:\n{text}")
            for w in self.workloads(s):
                self.series(w, s).failures.append(
                    Failure(0, "the emulator refused this setting", None, text)
                )
        return valid

    def run_round(self, r: int, rounds: int, settings: Sequence[Setting]) -> None:
        """Round r: the native runs, then every setting still due, grouped by emulator
        (one handler swap per group), the order rotated from round to round."""
        arch = self.target.arch
        if r < self.plan.reps:
            self.log(f"  [{r + 1}/{rounds}] native (host)")
            for w in self.plan.workloads:
                sample(self.series(w, None), self.native, self.plan, r, self.log)
        groups: dict[str, list[Setting]] = {}
        for s in settings:
            if r < self.reps(s):
                groups.setdefault(s.emulator.key, []).append(s)
        for key in rotated(list(groups), r):
            group = groups[key]
            interpreter = str(group[0].emulator.path)

            def check(interp: str = interpreter) -> bool:
                ok = self.guard.in_effect(arch, interp)
                if not ok:
                    self.guard.ensure(arch, interp)
                return ok

            with handler_for(
                group[0], arch, self.pinned, self.log if r == 0 else self.swaps.append
            ):
                for s in rotated(group, r):
                    self.log(f"  [{r + 1}/{rounds}] {_describe(s, self.info)}")
                    runner = self.runner(s)
                    for w in self.workloads(s):
                        sample(
                            self.series(w, s),
                            runner,
                            self.plan,
                            r,
                            self.log,
                            guard=check,
                            reference=self.series(w, None).output,
                        )


def measure_image(
    engine: Engine,
    target: Target,
    info: ImageInfo,
    plan: Plan,
    native: NativeRunner,
    mounts: dict[str, str],
    pinned: emu.Emulator,
    alternative: emu.Emulator | None,
    guard: HandlerGuard,
    log: Log,
) -> list[Series]:
    container = _start_container(engine, info.image, target.arch, mounts, log)
    try:
        mounted = {
            e.key: f"{BOX_QEMU}/{e.key}/{e.path.name}"
            for e in (pinned, alternative)
            if e is not None
        }
        box = _box_setup(container, info, mounted)
        log(
            f"  image: {info.versions.get('gcc', '?')}; Python {info.versions.get('python', '?')}"
            f" ({info.python}); QEMU_CPU in the image: {info.baked_cpu or 'none'}"
        )
        log(f"  {info.native_status}")
        if info.accelerated:
            size = (
                f"{info.native_size / 1e6:.1f} MB"
                if info.native_size is not None
                else info.native_size_error
            )
            log(
                f"  {NATIVE_PREFIX}: {size}; each compiler workload runs emulated "
                "(XARCH_NATIVE_TOOLS=0), accelerated (XARCH_NATIVE_TOOLS=1) and natively"
            )
        settings, skipped = settings_for(info, plan, pinned, alternative)
        info.skipped.extend(skipped)
        for line in skipped:
            log(f"  skipped: {line}")
        session = ImageSession(target, info, plan, box, native, pinned, guard, log)
        valid = with_accelerated(info, session.probe(settings), pinned)
        alternatives = [s for s in valid if s != session.default and not s.accelerated]
        rounds = max(plan.reps, plan.config_reps if alternatives else 0)
        for r in range(rounds):
            session.run_round(r, rounds, valid)
        if session.swaps:
            log(f"  (handler swaps of later rounds not printed: {len(session.swaps)} lines)")
        return list(session.table.values())
    finally:
        log(f"+ docker rm -f {container.short_id}")
        container.remove()


# ----------------------------------------------------------------------------- driver


def with_native_sizes(sizes: Sequence[ImageSize], images: Sequence[ImageInfo]) -> list[ImageSize]:
    """The sizes, each with its image's native toolchain size (measured in the
    image's container, which is gone by the time the sizes are read)."""
    by_target = {i.target: i for i in images}
    out = []
    for size in sizes:
        info = by_target.get(size.target)
        if info is None or not info.accelerated:
            out.append(size)
            continue
        out.append(
            dataclasses.replace(
                size,
                native_leaves=True,
                native_size=info.native_size,
                native_size_error=info.native_size_error,
            )
        )
    return out


def run_bench(
    config: Config,
    target_names: list[str] | None,
    plan: Plan,
    *,
    log: Log = print,
) -> BenchResult:
    start = time.monotonic()
    engine, targets, attrs = preflight(config, target_names)
    result = BenchResult(
        plan=plan,
        config=str(config.path),
        started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    arches = list({t.arch.name: t.arch for t in targets}.values())
    work = Path(tempfile.mkdtemp(prefix="xarch-bench-"))
    try:
        log(f"== preparing ({plan.name} plan, workspace {work}) ==")
        write_inputs(work / "in", plan)
        timer = build_timer(work / "bin" / "xarch-bench-timer", log)
        venv_python = make_native_venv(host_python(), work / "venv", log)
        native = NativeRunner(work, timer, venv_python)
        result.environment = environment(engine, venv_python)
        log(f"Checking the pinned emulators (QEMU {config.qemu.version})")
        pinned = emu.pinned(config.qemu, arches, log)
        alternatives: dict[str, emu.Emulator] = {}
        if plan.alt_emulators:
            alternatives, why = emu.backports(arches, log)
            if why:
                result.notes.append(f"QEMU from {emu.BACKPORTS_SUITE} left out: {why}")
                log(f"  note: QEMU from {emu.BACKPORTS_SUITE} left out: {why}")
        result.emulators = [*pinned.values(), *alternatives.values()]
        for e in result.emulators:
            log(f"  {e.arch}: {e.label}: {e.version}, sha256 {e.sha256[:16]}..., {e.path}")

        guard = HandlerGuard(log)
        with contextlib.ExitStack() as stack:
            log("== emulation: a flag-F handler for the pinned emulator, for this section ==")
            for a in arches:
                stack.enter_context(
                    binfmt.temporary_handler(a, str(pinned[a.name].path), flags="F", log=log)
                )
            for t in targets:
                ref = helper_ref(config, t, t.tags[0])
                image_config = attrs[t.name].get("Config") or {}
                env = dict(x.split("=", 1) for x in (image_config.get("Env") or []) if "=" in x)
                labels = {str(k): str(v) for k, v in (image_config.get("Labels") or {}).items()}
                info = ImageInfo(
                    target=t.name,
                    arch=t.arch.name,
                    image=ref,
                    image_id=str(attrs[t.name].get("Id", "")),
                    baked_cpu=env.get("QEMU_CPU", ""),
                    native_labels={
                        k: v for k, v in labels.items() if k.startswith(f"{LABEL_PREFIX}.")
                    },
                )
                result.images.append(info)
                log(f"== {t.name} ({t.arch.name}): {ref} ==")
                alt = alternatives.get(t.arch.name)
                mounts = {
                    str(work / "in"): BOX_INPUTS,
                    str(timer): BOX_TIMER,
                    str(
                        pinned[t.arch.name].path
                    ): f"{BOX_QEMU}/pin/{pinned[t.arch.name].path.name}",
                }
                if alt is not None:
                    mounts[str(alt.path)] = f"{BOX_QEMU}/backports/{alt.path.name}"
                result.series += measure_image(
                    engine, t, info, plan, native, mounts, pinned[t.arch.name], alt, guard, log
                )
            if plan.wheels:
                # cibuildwheel's containers run under the same flag-F handlers.
                result.wheels = wheel_rows(
                    config,
                    targets,
                    work / "wheels",
                    accelerated=[i.target for i in result.images if i.accelerated],
                    ca_bundle=os.environ.get("XARCH_CA_BUNDLE") or None,
                    log=log,
                )
        result.binfmt_events = guard.events
        if plan.sizes:
            result.sizes = with_native_sizes(image_sizes(engine, config, targets), result.images)
        if plan.toolkit:
            log("== toolkit overhead (the host's binfmt_misc as it was found) ==")
            result.toolkit = toolkit_overhead(config, targets, plan.toolkit_reps, log)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result.environment["loadavg_end"] = _loadavg()
    result.environment["python"] = sys.version.split()[0]
    result.wall_seconds = time.monotonic() - start
    return result


def bench(
    config: Config,
    target_names: list[str] | None,
    *,
    quick: bool = False,
    output: Path | None = None,
    plan: Plan | None = None,
    log: Log = print,
) -> BenchResult:
    """Run, print the table, write the JSON and the chart; raise BenchError (exit 1)
    after writing them when a run failed."""
    from xarch.bench.report import render, write_chart, write_json
    from xarch.bench.workloads import FULL, QUICK

    chosen = plan or (QUICK if quick else FULL)
    out_dir = output or build_dir() / "bench"
    result = run_bench(config, target_names, chosen, log=log)
    log("")
    log(render(result))
    json_path = write_json(result, out_dir / "bench.json")
    chart = write_chart(result, out_dir / "bench-emulation.png")
    log(f"\nResults: {json_path}")
    if chart is not None:
        log(f"Chart:   {chart}")
    else:
        log(
            "Chart:   not written (no ratio to plot, or matplotlib is missing: "
            "pip install -e '.[bench]')"
        )
    failed = sum(len(s.failures) for s in result.series)
    failed_tools = [t.name for t in result.toolkit if t.failure]
    if failed or failed_tools:
        what = []
        if failed:
            what.append(f"{failed} workload run(s) failed")
        if failed_tools:
            what.append(f"toolkit measurement(s) failed: {', '.join(failed_tools)}")
        raise BenchError("; ".join(what) + f" (output above and in {json_path})")
    return result
