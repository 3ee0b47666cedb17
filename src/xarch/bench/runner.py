"""Running the workloads: natively on the host, and under emulation in one long-lived
container per helper image (``docker exec`` per run, so container start-up is not
measured).

Every side times a run with the same static x86_64 timer (timer.c). Inside the
emulated container it still runs natively, so the measurement is the workload's
own wall time, without ``docker exec`` and without an emulated timer.

In an accelerated image (one with native compiler leaves, docs/native-compilers.md)
every run sets XARCH_NATIVE_TOOLS explicitly: ``0`` for the emulated side (unset
would mean the native leaves), ``1`` for the accelerated side.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from xarch.bench.emulators import Emulator
from xarch.bench.stats import Summary, summarize
from xarch.bench.workloads import (
    COMPILER_WORKLOADS,
    NATIVE_TOOLS_ENV,
    Invocation,
    Plan,
    Side,
    invocation,
)
from xarch.errors import BenchError, XarchError
from xarch.host import binfmt
from xarch.model.arch import Arch
from xarch.oci.engine import Container

Log = Callable[[str], None]

TIMER_SOURCE = Path(__file__).with_name("timer.c")
TIMER_MARK = "XARCH-BENCH "
#: Where the container sees the bench's files (all read-only bind mounts).
BOX_INPUTS = "/xarch-bench/in"
BOX_TIMER = "/xarch-bench/bin/xarch-bench-timer"
BOX_QEMU = "/xarch-bench/qemu"
BOX_SCRATCH = "/tmp/xarch-bench"
OUTPUT_TAIL = 40  # lines of a failed run's output kept in the results


# ------------------------------------------------------------------------ timer output


@dataclass(frozen=True)
class Timing:
    wall: float  # seconds
    cpu: float  # seconds, user + system of the command and its children
    exit_code: int
    timed_out: bool


_MARK_RE = re.compile(
    r"^XARCH-BENCH wall_ns=(\d+) cpu_us=(\d+) exit=(-?\d+) timeout=([01])\s*$", re.M
)


def parse_timer(stderr: str) -> tuple[Timing | None, str]:
    """The timer's line from a run's stderr, and the stderr without it.

    (None, stderr) when the line is missing: the timer itself did not run.
    """
    matches = list(_MARK_RE.finditer(stderr))
    if not matches:
        return None, stderr
    m = matches[-1]
    rest = (stderr[: m.start()] + stderr[m.end() :]).rstrip("\n")
    return (
        Timing(
            wall=int(m.group(1)) / 1e9,
            cpu=int(m.group(2)) / 1e6,
            exit_code=int(m.group(3)),
            timed_out=m.group(4) == "1",
        ),
        rest,
    )


def tail(text: str, lines: int = OUTPUT_TAIL) -> str:
    kept = text.strip().splitlines()
    if len(kept) <= lines:
        return "\n".join(kept)
    return "\n".join([f"... ({len(kept) - lines} lines before)", *kept[-lines:]])


def build_timer(dest: Path, log: Log) -> Path:
    """Compile timer.c as a static x86_64 binary (it must run inside any container)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    cmd = ["gcc", "-O2", "-static", "-o", str(dest), str(TIMER_SOURCE)]
    log("+ " + shlex.join(cmd))
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise BenchError(
            f"cannot build the bench timer: {tail(r.stderr, 5)}\n"
            "  it needs gcc and a static C library: apt-get install gcc libc6-dev"
        )
    return dest


# ----------------------------------------------------------------------------- results


@dataclass
class Sample:
    round: int
    wall: float
    cpu: float
    load: float = 0.0  # the host's 1-minute load average when the run ended


@dataclass
class Failure:
    round: int
    reason: str
    exit_code: int | None
    output: str


@dataclass
class Series:
    """Every run of one workload in one place (native, or an image with one setting;
    "accelerated": the image's default setting with its native leaves)."""

    kind: Literal["emulated", "accelerated", "native"]
    target: str
    arch: str
    workload: str
    emulator: str = ""  # Emulator.key; "" when native
    cpu: str = ""  # the QEMU_CPU passed; "" = the image's default
    samples: list[Sample] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    discarded: list[str] = field(default_factory=list)  # why samples were thrown away
    output: str = ""  # what the first good run printed that identifies it

    def walls(self) -> list[float]:
        return [s.wall for s in self.samples]

    def summary(self) -> Summary | None:
        return summarize(self.walls())

    def cpu_summary(self) -> Summary | None:
        """User + system time: less sensitive than wall time to other load on the host."""
        return summarize([s.cpu for s in self.samples])

    def to_json(self) -> dict[str, Any]:
        s = self.summary()
        return {
            "kind": self.kind,
            "target": self.target,
            "arch": self.arch,
            "workload": self.workload,
            "emulator": self.emulator,
            "qemu_cpu": self.cpu,
            "samples": [
                {
                    "round": x.round,
                    "wall": round(x.wall, 4),
                    "cpu": round(x.cpu, 4),
                    "load": x.load,
                }
                for x in self.samples
            ],
            "summary": s.to_json() if s else None,
            "cpu_summary": c.to_json() if (c := self.cpu_summary()) else None,
            "failures": [
                {"round": f.round, "reason": f.reason, "exit_code": f.exit_code, "output": f.output}
                for f in self.failures
            ],
            "discarded": self.discarded,
            "output": self.output,
        }


# ----------------------------------------------------------------------------- runners


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    stdout: str
    stderr: str


class Runner(Protocol):
    side: Side
    timer: str

    def run(self, argv: Sequence[str], *, workdir: str, env: Mapping[str, str]) -> ExecResult: ...


class NativeRunner:
    """The host: a venv made like the stand-in's /opt/python/cpXY (system site-packages,
    so Debian's pip, setuptools and wheel), and the host's gcc."""

    def __init__(self, workspace: Path, timer: Path, python: Path) -> None:
        self.timer = str(timer)
        self.side = Side(
            kind="native",
            inputs=str(workspace / "in"),
            scratch=str(workspace / "scratch"),
            python=str(python),
        )
        Path(self.side.scratch).mkdir(parents=True, exist_ok=True)

    def run(self, argv: Sequence[str], *, workdir: str, env: Mapping[str, str]) -> ExecResult:
        try:
            r = subprocess.run(
                list(argv),
                cwd=workdir,
                env={**os.environ, **env},
                capture_output=True,
                text=True,
                errors="replace",
                check=False,
            )
        except OSError as e:
            return ExecResult(127, "", f"cannot run {argv[0]}: {e}")
        return ExecResult(r.returncode, r.stdout, r.stderr)


class EmulatedRunner:
    """``docker exec`` in a running container; QEMU_CPU set per run when asked.

    ``native_tools``: None for an image without native leaves (nothing set); in an
    accelerated image "0" (the emulated side: the image's own leaves) or "1" (the
    accelerated side), set on every run, over anything the invocation sets.
    """

    def __init__(
        self, container: Container, python: str, cpu: str = "", native_tools: str | None = None
    ) -> None:
        self.container = container
        self.cpu = cpu
        self.native_tools = native_tools
        self.timer = BOX_TIMER
        self.side = Side(
            kind="accelerated" if native_tools == "1" else "emulated",
            inputs=BOX_INPUTS,
            scratch=BOX_SCRATCH,
            python=python,
        )

    def with_cpu(self, cpu: str) -> EmulatedRunner:
        return EmulatedRunner(self.container, self.side.python, cpu, self.native_tools)

    def with_native_tools(self, value: str) -> EmulatedRunner:
        return EmulatedRunner(self.container, self.side.python, self.cpu, value)

    def environment(self, env: Mapping[str, str]) -> dict[str, str]:
        """What one run gets: the invocation's variables, QEMU_CPU, XARCH_NATIVE_TOOLS."""
        full = dict(env)
        if self.cpu:
            full["QEMU_CPU"] = self.cpu
        if self.native_tools is not None:
            full[NATIVE_TOOLS_ENV] = self.native_tools
        return full

    def run(self, argv: Sequence[str], *, workdir: str, env: Mapping[str, str]) -> ExecResult:
        return ExecResult(*self.container.exec(argv, workdir=workdir, env=self.environment(env)))


def measure_once(runner: Runner, inv: Invocation, timeout: int) -> tuple[Timing | None, str, str]:
    """One timed run: (timing or None, stdout, other output). A failed preparation or
    a missing timer line gives None."""
    if inv.prepare:
        p = runner.run(inv.prepare, workdir=runner.side.scratch, env={})
        if p.exit_code != 0:
            return None, p.stdout, f"preparation {shlex.join(inv.prepare)} failed: {p.stderr}"
    r = runner.run([runner.timer, str(timeout), *inv.argv], workdir=inv.workdir, env=inv.env)
    timing, err = parse_timer(r.stderr)
    return timing, r.stdout, err


def identify(workload: str, stdout: str) -> str:
    """What a good run printed that shows it did the work: the Python loop's checksum,
    the wheel's file name."""
    m = re.search(r"filename=(\S+\.whl)", stdout)
    if m:
        return m.group(1)
    lines = stdout.strip().splitlines()
    return lines[0] if lines and workload not in COMPILER_WORKLOADS else ""


# --------------------------------------------------------------------- binfmt guarding


class HandlerGuard:
    """Checks, before and after every emulated run, that the flag-F handler the run
    needs is the one in effect, and puts it back when it is not.

    Other processes on the host (a test suite running alongside, say) may register
    or restore binfmt_misc entries at any moment; a run whose handler changed
    underneath it is thrown away and repeated, never counted.
    """

    def __init__(self, log: Log) -> None:
        self.log = log
        self.events: list[str] = []

    def in_effect(self, arch: Arch, interpreter: str) -> bool:
        try:
            entries = binfmt.entries_for(arch)
            on = binfmt.status_enabled()
        except XarchError:
            return False
        enabled = [e for e in entries if e.enabled]
        return (
            on
            and len(enabled) == 1
            and enabled[0].name == arch.binfmt_name
            and enabled[0].interpreter == interpreter
            and "F" in enabled[0].flags
        )

    def ensure(self, arch: Arch, interpreter: str) -> None:
        if self.in_effect(arch, interpreter):
            return
        msg = (
            f"the {arch.binfmt_name} handler was changed by another process; "
            f"registering {interpreter} (flag F) again"
        )
        self.events.append(msg)
        self.log(f"  warning: {msg}")
        for e in binfmt.entries_for(arch):
            if e.name == arch.binfmt_name:
                binfmt.unregister(e.name, log=self.log)
            elif e.enabled:
                binfmt.set_enabled(e.name, False, log=self.log)
        binfmt.register(arch.binfmt_name, arch, interpreter, "F", log=self.log)


# ------------------------------------------------------------------------ the sampling


@dataclass(frozen=True)
class Setting:
    """An emulator binary and the QEMU_CPU passed ("" = the image's default);
    ``accelerated``: with the image's native compiler leaves (XARCH_NATIVE_TOOLS=1)."""

    emulator: Emulator
    cpu: str = ""
    accelerated: bool = False

    @property
    def key(self) -> str:
        base = f"{self.emulator.key}/{self.cpu or 'default'}"
        return f"{base}/accelerated" if self.accelerated else base


#: What a run prints when the kernel had no handler for a foreign binary it started.
NO_HANDLER = "exec format error"


def sample(
    series: Series,
    runner: Runner,
    plan: Plan,
    round_: int,
    log: Log,
    *,
    guard: Callable[[], bool] | None = None,
    reference: str = "",
    attempts: int = 3,
) -> None:
    """Run series.workload once and record a sample or a failure.

    ``guard`` (emulated runs) checks the binfmt handler before and after the run and
    puts it back when another process changed it. A run during which the handler
    changed, or which failed with "exec format error" (a handler that went away and
    came back in between), is thrown away and repeated, up to ``attempts`` times;
    it is never timed. ``reference``: the native run's output, which a deterministic
    workload must reproduce.
    """
    for attempt in range(attempts):
        kind = "-accelerated" if series.kind == "accelerated" else ""
        run_id = f"{series.emulator or 'native'}-{series.cpu or 'default'}{kind}-{round_}-{attempt}"
        inv = invocation(series.workload, runner.side, re.sub(r"[^\w.-]", "_", run_id), plan)
        if guard is not None:
            guard()
        timing, stdout, err = measure_once(runner, inv, plan.timeout)
        output = tail(stdout + ("\n" if stdout and err else "") + err)
        failed = timing is None or timing.exit_code != 0 or timing.timed_out
        if guard is not None and (not guard() or (failed and NO_HANDLER in output.lower())):
            series.discarded.append(
                f"round {round_ + 1}: the binfmt handler changed during the run; repeated"
            )
            log(f"    {series.workload}: discarded (the binfmt handler changed during the run)")
            continue
        break
    else:
        series.failures.append(
            Failure(round_, "the binfmt handler kept changing during the run", None, output)
        )
        log(f"    {series.workload}: FAILED (the binfmt handler kept changing)")
        return
    if timing is None:
        series.failures.append(Failure(round_, "the command did not run", None, output))
        log(f"    {series.workload}: FAILED (did not run): {_first(err)}")
        return
    if timing.exit_code != 0 or timing.timed_out:
        reason = (
            f"timed out after {plan.timeout} s"
            if timing.timed_out
            else f"exit status {timing.exit_code}"
        )
        series.failures.append(Failure(round_, reason, timing.exit_code, output))
        log(f"    {series.workload}: FAILED ({reason}): {_first(err or stdout)}")
        return
    got = identify(series.workload, stdout)
    if inv.same_output and reference and got != reference:
        series.failures.append(
            Failure(
                round_,
                f"printed {got!r}, natively {reference!r}: wrong result under emulation",
                0,
                output,
            )
        )
        log(f"    {series.workload}: FAILED (wrong output {got!r}, expected {reference!r})")
        return
    series.output = series.output or got
    series.samples.append(Sample(round_, timing.wall, timing.cpu, load_average()))
    log(f"    {series.workload}: {timing.wall:.2f} s")


def load_average() -> float:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0


def _first(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:160] if lines else ""


@contextlib.contextmanager
def handler_for(setting: Setting, arch: Arch, pinned: Emulator, log: Log) -> Iterator[None]:
    """The flag-F handler of ``setting``'s emulator for the block. The pinned one is
    registered for the whole run by the caller; any other replaces it for the block
    and the pinned one is registered again afterwards."""
    if setting.emulator.path == pinned.path:
        yield
        return
    with binfmt.temporary_handler(arch, str(setting.emulator.path), flags="F", log=log):
        yield


def rotated(items: Sequence[Any], by: int) -> list[Any]:
    """The items, rotated by ``by``: each round starts with another one, so no
    setting always runs first (or right after the native runs)."""
    if not items:
        return []
    k = by % len(items)
    return [*items[k:], *items[:k]]
