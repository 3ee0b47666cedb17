"""Running cibuildwheel on a project in the helper images, by digest.

One cibuildwheel run per target architecture (more when several families of one kind
are selected for it), each with ``CIBW_ARCHS_LINUX=<arch>`` and the image variable of
each selected target (``CIBW_MANYLINUX_<ARCH>_IMAGE``, or ``CIBW_MUSLLINUX_<ARCH>_IMAGE``
for a musllinux family) set to the pushed ``name@sha256:...``. Nothing else of the
user's configuration is overridden: ``[tool.cibuildwheel]`` and ``CIBW_*`` variables
apply as they would in CI.

Before anything is built, ``cibuildwheel --print-build-identifiers`` (no Docker needed)
says what the project selects for each run; a run whose selection includes a kind
(manylinux/musllinux) that has no helper image here is refused, since cibuildwheel
would otherwise pull its own default image for it.

Wheels are written into a temporary directory per run and moved into the output
directory only when every run succeeded: a failed build or test leaves the output as
it was, prints the tail of the log and exits 1.

With ``jobs`` above 1, up to that many runs go side by side (each emulated run keeps
about one core busy), their lines prefixed by ``[arch]``; after a failure no further
run starts, and those under way finish.

The extra CA bundle (``--ca-bundle FILE``, off by default): cibuildwheel copies the
host's ``SSL_CERT_FILE`` into each container as ``/cibuildwheel-ca-bundle.pem`` but sets
``PIP_CERT`` only for pips without truststore. With the option, ``SSL_CERT_FILE`` is set
for the cibuildwheel process and ``PIP_CERT``, ``SSL_CERT_FILE`` and
``REQUESTS_CA_BUNDLE`` point at that file inside the container through
``CIBW_ENVIRONMENT_LINUX``, prepended to the user's own ``environment`` (by
``CIBW_INHERIT``, so theirs still applies and may override), or prepended to their own
``CIBW_ENVIRONMENT_LINUX`` when they set one. Without the option, ``XARCH_CA_BUNDLE``
(the generated CI's variable) names the bundle; empty or unset: off.
"""

from __future__ import annotations

import concurrent.futures
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import zip_longest
from pathlib import Path
from typing import Any

from xarch.errors import BadInput, XarchError
from xarch.model import children
from xarch.model.arch import Arch
from xarch.model.config import Config, Target
from xarch.model.paths import build_dir
from xarch.model.report import read_report, report_path, write_section
from xarch.model.tables import format_table
from xarch.oci.engine import Engine
from xarch.publish.cibuildwheel import DEFAULT_VERSION, ensure_venv
from xarch.publish.pull import PushedRef, pushed_refs
from xarch.wheels import frontend

Log = Callable[[str], None]

#: Where cibuildwheel puts its CA bundle inside the build container.
CONTAINER_CA_BUNDLE = "/cibuildwheel-ca-bundle.pem"
CA_VARIABLES = ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")
#: The variable that names the extra CA bundle when --ca-bundle is not given.
CA_ENV = "XARCH_CA_BUNDLE"
LOG_TAIL_LINES = 40
_ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_START_RE = re.compile(r"^Building (?P<id>\S+) wheel\s*$")
_END_RE = re.compile(r"^\S+\s+(?P<id>\S+) finished in ")
# cibuildwheel's logger (4.3.5, logger.py): each step prints its description (inside a
# fold group on GitHub/Azure/Travis), and at its end a right-aligned "✓ 12.34s" (or
# "done"; "✕"/"failed" when it failed).
_STEP_END_RE = re.compile(r"^(?:✓|done|✕|failed)\s+(?P<seconds>\d+(?:\.\d+)?)s$")
_FOLD_RE = re.compile(r"^(?:::group::|##\[group\]|travis_fold:start:\S+\s*)")
#: cibuildwheel's step descriptions (platforms/linux.py) and the names xarch reports.
STEPS = {
    "Starting container image": "start",
    "Copying project into container...": "copy",
    "Running before_all...": "before_all",
    "Setting up build environment...": "setup",
    "Running before_build...": "before_build",
    "Building wheel...": "build",
    "Repairing wheel...": "repair",
    "Testing wheel...": "test",
    # on the host, after the repair, for abi3 wheels: abi3audit by default (audit.py)
    "Auditing wheel...": "audit",
    "Copying wheels back to host...": "copy_back",
}
#: The per-identifier columns of the summary (setup includes before_build); an AUDIT
#: column joins them when a wheel was audited.
STEP_COLUMNS = ("setup", "build", "repair", "test")
#: cibuildwheel's closing summary, a line per identifier (logger.py, BuildInfo):
#: "<identifier>: <wheel file> <size> in <duration>, SHA256=<hex>".
_SUMMARY_RE = re.compile(r"^(?P<id>\S+): (?P<file>\S+\.whl) .* SHA256=[0-9a-f]{64}$")


class WheelBuildError(XarchError):
    """cibuildwheel failed (a build, a repair or a test); nothing was moved to --output."""


def image_kind(target: Target) -> str:
    """MANYLINUX or MUSLLINUX: which cibuildwheel image option a target's family fills."""
    return "MUSLLINUX" if "musllinux" in target.family else "MANYLINUX"


def image_variable(target: Target) -> str:
    return f"CIBW_{image_kind(target)}_{target.arch.name.upper()}_IMAGE"


@dataclass(frozen=True, kw_only=True)
class WheelRun:
    arch: Arch
    images: Mapping[str, str]  # CIBW_<KIND>_<ARCH>_IMAGE -> name@digest
    targets: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.arch.name} ({', '.join(self.targets)})"


def plan_runs(targets: Sequence[Target], refs: Mapping[str, PushedRef]) -> list[WheelRun]:
    """The cibuildwheel runs for the selected targets: per architecture, one run holding
    a manylinux and a musllinux image each (several runs when several families of one
    kind are selected), in config order."""
    by_arch: dict[str, tuple[Arch, list[Target], list[Target]]] = {}
    for t in targets:
        arch, many, musl = by_arch.setdefault(t.arch.name, (t.arch, [], []))
        (musl if image_kind(t) == "MUSLLINUX" else many).append(t)
    runs = []
    for arch, many, musl in by_arch.values():
        for pair in zip_longest(many, musl):
            chosen = [t for t in pair if t is not None]
            runs.append(
                WheelRun(
                    arch=arch,
                    images={image_variable(t): refs[t.name].ref for t in chosen},
                    targets=tuple(t.name for t in chosen),
                )
            )
    return runs


def ca_environment(env: Mapping[str, str], ca_bundle: Path) -> dict[str, str]:
    """The variables that make pip (and requests, and OpenSSL) in the containers trust
    ca_bundle, merged with the user's own CIBW_ENVIRONMENT_LINUX / CIBW_INHERIT."""
    ours = " ".join(f"{v}={CONTAINER_CA_BUNDLE}" for v in CA_VARIABLES)
    out = {"SSL_CERT_FILE": str(ca_bundle)}
    theirs = env.get("CIBW_ENVIRONMENT_LINUX")
    if theirs is not None:
        # Their platform value replaces the lower levels, as before; ours goes first
        # so that theirs still wins for any variable both set.
        out["CIBW_ENVIRONMENT_LINUX"] = f"{ours} {theirs}".strip()
        return out
    out["CIBW_ENVIRONMENT_LINUX"] = ours
    inherit = env.get("CIBW_INHERIT", "")
    if "environment-linux" not in inherit:
        rule = "environment-linux: prepend"
        out["CIBW_INHERIT"] = f"{inherit}; {rule}" if inherit.strip() else rule
    return out


def run_env(
    base: Mapping[str, str], run: WheelRun, *, ca_bundle: Path | None = None
) -> dict[str, str]:
    """The cibuildwheel process's environment for one run: the caller's, plus the
    architecture, the image variables and (with ca_bundle) the CA variables."""
    env = dict(base)
    env["CIBW_ARCHS_LINUX"] = run.arch.name
    env.update(run.images)
    if ca_bundle is not None:
        env.update(ca_environment(base, ca_bundle))
    return env


def check_project(project: Path) -> Path:
    if not project.is_dir():
        raise BadInput(f"--project {project}: not a directory")
    if not (project / "pyproject.toml").is_file() and not (project / "setup.py").is_file():
        raise BadInput(
            f"--project {project}: no pyproject.toml or setup.py there, so cibuildwheel has "
            "nothing to build; pass the directory of a Python project"
        )
    return project.resolve()


def check_ca_bundle(ca_bundle: str | None) -> Path | None:
    if not ca_bundle:
        return None
    p = Path(ca_bundle)
    if not p.is_file():
        raise BadInput(f"--ca-bundle {ca_bundle}: no such file (a PEM bundle of CA certificates)")
    head = p.read_bytes()[:65536]
    if b"-----BEGIN CERTIFICATE-----" not in head:
        raise BadInput(f"--ca-bundle {ca_bundle}: not a PEM certificate bundle")
    return p.resolve()


def identifiers(exe: Path, project: Path, env: Mapping[str, str]) -> list[str]:
    """What cibuildwheel would build with this environment (no Docker involved)."""
    r = subprocess.run(
        [str(exe), "--platform", "linux", "--print-build-identifiers", "."],
        cwd=project,
        env=dict(env),
        capture_output=True,
        text=True,
        check=False,
    )
    if r.returncode != 0:
        raise BadInput(
            f"cibuildwheel refuses the configuration of {project}:\n"
            + _tail(r.stderr or r.stdout, 15)
        )
    return [ln.strip() for ln in r.stdout.splitlines() if ln.strip()]


def check_selection(run: WheelRun, idents: Sequence[str], project: Path) -> None:
    """Refuse a run that would build nothing, or would build a kind without an image."""
    if not idents:
        raise BadInput(
            f"{project}: the project's build selection has no Linux {run.arch.name} build "
            f"(cibuildwheel --print-build-identifiers printed nothing for CIBW_ARCHS_LINUX="
            f"{run.arch.name}); check `build`/`skip` in [tool.cibuildwheel] and CIBW_BUILD/"
            "CIBW_SKIP"
        )
    kinds = {v.split("_")[1] for v in run.images}
    for kind in ("MANYLINUX", "MUSLLINUX"):
        wanted = [i for i in idents if f"-{kind.lower()}_" in i]
        if wanted and kind not in kinds:
            raise BadInput(
                f"{project}: the project builds {', '.join(wanted)}, but no {kind.lower()} "
                f"{run.arch.name} image is selected here, so cibuildwheel would pull its own "
                f"default one. Select a {kind.lower()} target (--target), or skip those "
                f'builds: `skip = "*-{kind.lower()}_*"` in [tool.cibuildwheel] or '
                f"CIBW_SKIP='*-{kind.lower()}_*'"
            )


def image_tools(ref: str, arch: Arch, *, log: Log = print) -> frontend.ImageTools:
    """What the image offers a frontend (uv on PATH, a pip config file), read inside it
    with its own shell, as cibuildwheel will meet it. An image that cannot be looked
    into (no handler for its architecture, say) counts as having no uv, and says why."""
    engine = Engine.connect()
    try:
        if engine.inspect(ref) is None:
            engine.pull(ref, "helper", log=log, platform=arch.platform)
        code, out = engine.run_output(ref, frontend.probe_command(), platform=arch.platform)
    except XarchError as e:
        log(f"  could not look inside {ref} for uv: {e}")
        return frontend.ImageTools(uv="", unreadable=str(e).splitlines()[0])
    if code != 0:
        log(f"  could not look inside {ref} for uv (exit {code}): {_tail(out, 3)}")
        return frontend.ImageTools(uv="", unreadable=f"exit {code}: {_tail(out, 1)}")
    return frontend.parse_probe(out)


# --------------------------------------------------------------------------- running


@dataclass
class BuiltWheel:
    identifier: str
    seconds: float
    files: list[str] = field(default_factory=list)
    steps: dict[str, float] = field(default_factory=dict)  # STEPS' names -> seconds

    def column(self, name: str) -> float | None:
        if name == "setup" and ("setup" in self.steps or "before_build" in self.steps):
            return self.steps.get("setup", 0.0) + self.steps.get("before_build", 0.0)
        return self.steps.get(name)


@dataclass
class RunResult:
    run: WheelRun
    identifiers: list[str]
    status: str = "pending"  # ok | failed | skipped (not started after a failure)
    seconds: float = 0.0
    log: str = ""
    wheels: list[BuiltWheel] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # wheel file names produced

    def to_json(self) -> dict[str, Any]:
        return {
            "arch": self.run.arch.name,
            "targets": list(self.run.targets),
            "images": dict(self.run.images),
            "identifiers": self.identifiers,
            "status": self.status,
            "seconds": round(self.seconds, 2),
            "log": self.log,
            "wheels": [
                {
                    "identifier": w.identifier,
                    "seconds": round(w.seconds, 2),
                    "steps": {k: round(v, 2) for k, v in w.steps.items()},
                    "files": w.files,
                }
                for w in self.wheels
            ],
            "files": self.files,
        }


def _tail(text: str, lines: int = LOG_TAIL_LINES) -> str:
    return "\n".join(_ANSI_RE.sub("", text).rstrip().splitlines()[-lines:])


def _step_name(line: str) -> str | None:
    line = _FOLD_RE.sub("", line)
    for description, name in STEPS.items():
        if line.startswith(description):
            return name
    return None


def wheel_timings(lines: Sequence[tuple[float, str]]) -> list[BuiltWheel]:
    """Per-identifier times from cibuildwheel's output: (monotonic time, line) pairs,
    from its "Building <id> wheel" line to its "<id> finished in" line, and each step's
    own seconds as cibuildwheel printed them (setup, build, repair, test, ...)."""
    started: dict[str, float] = {}
    steps: dict[str, float] = {}
    current: str | None = None
    step: str | None = None
    out: list[BuiltWheel] = []
    for at, raw in lines:
        line = _ANSI_RE.sub("", raw).strip()
        m = _START_RE.match(line)
        if m:
            current, steps, step = m.group("id"), {}, None
            started[current] = at
            continue
        m = _END_RE.match(line)
        if m and m.group("id") in started:
            ident = m.group("id")
            out.append(
                BuiltWheel(
                    identifier=ident,
                    seconds=at - started[ident],
                    steps=steps if ident == current else {},
                )
            )
            current, steps, step = None, {}, None
            continue
        name = _step_name(line)
        if name is not None:
            step = name
            continue
        m = _STEP_END_RE.match(line)
        if m and step is not None and current is not None:
            steps[step] = steps.get(step, 0.0) + float(m.group("seconds"))
            step = None
    return out


def summary_files(lines: Sequence[tuple[float, str]]) -> dict[str, list[str]]:
    """identifier -> the wheel files cibuildwheel's own closing summary names for it."""
    out: dict[str, list[str]] = {}
    for _, raw in lines:
        m = _SUMMARY_RE.match(_ANSI_RE.sub("", raw).strip())
        if m:
            out.setdefault(m.group("id"), []).append(m.group("file"))
    return out


def match_files(
    wheels: list[BuiltWheel],
    files: Sequence[str],
    named: Mapping[str, Sequence[str]] | None = None,
) -> None:
    """Attach each wheel file to the identifier that built it: as cibuildwheel's summary
    names it (``named``, from :func:`summary_files`), else by python tag, kind and arch.
    The summary is what ties an abi3 wheel (``cp36-abi3``, built by cp39) to its build."""
    for w in wheels:
        if named and w.identifier in named:
            w.files = [f for f in files if f in named[w.identifier]]
            continue
        py, _, plat = w.identifier.partition("-")
        kind, _, arch = plat.partition("_")
        w.files = [f for f in files if f"-{py}-" in f and kind in f and f.endswith(f"{arch}.whl")]


def run_cibuildwheel(
    exe: Path,
    project: Path,
    out_dir: Path,
    env: Mapping[str, str],
    log_file: Path,
    *,
    log: Log = print,
) -> tuple[int, list[tuple[float, str]]]:
    """Run cibuildwheel, echoing and logging every line; its exit code and timed lines."""
    cmd = [str(exe), "--platform", "linux", "--output-dir", str(out_dir), "."]
    log("+ " + " ".join(cmd) + f"  (in {project})")
    lines: list[tuple[float, str]] = []
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("w", encoding="utf-8") as f:
        proc = subprocess.Popen(
            cmd,
            cwd=project,
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
            process_group=0,
        )
        assert proc.stdout is not None
        # Its own process group, stopped (containers and all) when xarch is interrupted.
        with children.stopped_on_error(proc), children.tracked(proc):
            for line in proc.stdout:
                lines.append((time.monotonic(), line))
                f.write(line)
                log(line.rstrip("\n"))
            rc = proc.wait()
    children.check_cancelled()
    return rc, lines


@dataclass
class WheelsOutcome:
    output: Path
    results: list[RunResult]
    written: list[Path]
    cibuildwheel: str

    @property
    def ok(self) -> bool:
        return all(r.status == "ok" for r in self.results)


def _secs(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}s"


def summary_table(outcome: WheelsOutcome) -> str:
    """One row per identifier: cibuildwheel's own step times beside the total (and the
    host-side audit of abi3 wheels, when there was one)."""
    audited = any("audit" in w.steps for r in outcome.results for w in r.wheels)
    columns = (*STEP_COLUMNS, "audit") if audited else STEP_COLUMNS
    head = ("ARCH", "IDENTIFIER", *(c.upper() for c in columns), "TOTAL", "WHEEL")
    rows: list[tuple[str, ...]] = [head]
    blank = ("",) * len(columns)
    for r in outcome.results:
        for w in r.wheels:
            rows.append(
                (
                    r.run.arch.name,
                    w.identifier,
                    *(_secs(w.column(c)) for c in columns),
                    _secs(w.seconds),
                    ", ".join(w.files),
                )
            )
        if r.status != "ok":
            rows.append(
                (r.run.arch.name, "(run)", *blank, _secs(r.seconds), f"FAILED, log {r.log}")
            )
    return format_table(rows)


def build_wheels(
    config: Config,
    target_names: list[str] | None = None,
    *,
    project: Path,
    output: Path,
    report: Path | None = None,
    ca_bundle: str | None = None,
    environ: Mapping[str, str] | None = None,
    cibuildwheel_exe: Path | None = None,
    jobs: int = 1,
    log: Log = print,
) -> WheelsOutcome:
    """Build the project's wheels in the selected targets' pushed helper images.

    Everything is checked before the first build (project, CA bundle, push record,
    each run's selection); the wheels reach ``output`` only when every run succeeded.
    """
    base_env = dict(os.environ if environ is None else environ)
    if jobs < 1:
        raise BadInput(f"--jobs must be 1 or more, not {jobs}")
    project = check_project(project)
    # --ca-bundle, else XARCH_CA_BUNDLE (the generated CI's variable; "" = off).
    bundle = check_ca_bundle(ca_bundle if ca_bundle is not None else base_env.get(CA_ENV))
    targets = config.select(target_names)
    if not targets:
        raise BadInput(f"{config.path}: no target selected to build wheels in")
    report_file = report or report_path()
    refs = pushed_refs(read_report(report_file), config, targets, report_file)
    version = config.cibuildwheel.version if config.cibuildwheel else DEFAULT_VERSION
    if config.cibuildwheel is None:
        log(f"note: {config.path} pins no cibuildwheel.version; using {version}")
    exe = cibuildwheel_exe or ensure_venv(version, log=log)
    runs = plan_runs(targets, refs)
    planned: list[tuple[WheelRun, dict[str, str], list[str]]] = []
    wanted = frontend.read_project(project, base_env)
    tools: dict[str, frontend.ImageTools] = {}
    for run in runs:
        env = run_env(base_env, run, ca_bundle=bundle)
        idents = identifiers(exe, project, env)
        check_selection(run, idents, project)
        for ref in run.images.values():
            if ref not in tools:
                tools[ref] = image_tools(ref, run.arch, log=log)
        choice = frontend.choose(
            wanted.for_identifiers(idents), {ref: tools[ref] for ref in run.images.values()}
        )
        env.update(choice.env)
        planned.append((run, env, idents))
        log(f"{run.label}: {', '.join(idents)}")
        for var, ref in run.images.items():
            log(f"  {var}={ref}")
        log(f"  {choice.message}")
    output = output.resolve()
    logs_dir = build_dir().resolve() / "wheels"
    staging = Path(tempfile.mkdtemp(prefix=".xarch-wheels-", dir=_existing_parent(output)))
    results: list[RunResult] = []
    started = datetime.now(UTC).isoformat(timespec="seconds")
    written: list[Path] = []
    lock = threading.Lock()
    stop = threading.Event()  # a run failed: start no other

    def one(n: int, run: WheelRun, env: dict[str, str], idents: list[str]) -> RunResult:
        out = log
        if jobs > 1:

            def out(line: str) -> None:
                with lock:
                    log(f"[{run.arch.name}] {line}")

        result = RunResult(run=run, identifiers=idents)
        if stop.is_set():
            result.status = "skipped"
            return result
        out(f"[{n}/{len(planned)}] cibuildwheel {version}: {run.label}")
        run_dir = staging / f"{n}-{run.arch.name}"
        run_dir.mkdir()
        log_file = logs_dir / f"{n}-{run.arch.name}.log"
        result.log = str(log_file)
        t0 = time.monotonic()
        rc, lines = run_cibuildwheel(exe, project, run_dir, env, log_file, log=out)
        result.seconds = time.monotonic() - t0
        result.wheels = wheel_timings(lines)
        result.files = sorted(p.name for p in run_dir.glob("*.whl"))
        match_files(result.wheels, result.files, summary_files(lines))
        if rc != 0:
            result.status = "failed"
        elif not result.files:
            result.status = "failed"
            with log_file.open("a", encoding="utf-8") as f:
                f.write("cibuildwheel exited 0 but wrote no wheel\n")
        else:
            result.status = "ok"
        if result.status != "ok":
            stop.set()
        return result

    try:
        if jobs == 1:
            for n, (run, env, idents) in enumerate(planned, 1):
                log("")
                results.append(one(n, run, env, idents))
                if stop.is_set():
                    break
        else:
            log(f"\n{len(planned)} cibuildwheel run(s), up to {jobs} side by side")
            with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
                futures = [
                    pool.submit(one, n, run, env, idents)
                    for n, (run, env, idents) in enumerate(planned, 1)
                ]
                try:
                    results = [f.result() for f in futures]
                except BaseException:
                    children.stop_all()  # interrupted: stop the runs under way
                    raise
            results = [r for r in results if r.status != "skipped"]
        outcome = WheelsOutcome(
            output=output, results=results, written=written, cibuildwheel=version
        )
        if outcome.ok and len(results) == len(planned):
            output.mkdir(parents=True, exist_ok=True)
            for n, result in enumerate(results, 1):
                run_dir = staging / f"{n}-{result.run.arch.name}"
                for name in result.files:
                    dest = output / name
                    log(f"+ mv {run_dir / name} {dest}")
                    os.replace(run_dir / name, dest)
                    written.append(dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _record(config, project, outcome, started, report_file)
    log("")
    log(summary_table(outcome))
    if not outcome.ok:
        failed = next(r for r in results if r.status != "ok")
        text = Path(failed.log).read_text(encoding="utf-8", errors="replace")
        raise WheelBuildError(
            f"cibuildwheel failed for {failed.run.label}; no wheel was moved to {output}.\n"
            f"The last {LOG_TAIL_LINES} lines of {failed.log}:\n{_tail(text)}"
        )
    log(f"\n{len(written)} wheel(s) written to {output}:")
    for p in written:
        log(f"  {p}")
    return outcome


def _existing_parent(p: Path) -> Path:
    """The nearest existing directory at or above p's parent (the staging area lives on
    the same file system as the output, so that moving a wheel is a rename)."""
    d = p.parent
    while not d.exists():
        d = d.parent
    return d


def _record(
    config: Config, project: Path, outcome: WheelsOutcome, started: str, report_file: Path
) -> None:
    write_section(
        "wheels",
        {
            "config": str(config.path),
            "project": str(project),
            "cibuildwheel": outcome.cibuildwheel,
            "started": started,
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
            "ok": outcome.ok,
            "output": str(outcome.output),
            "written": [str(p) for p in outcome.written],
            "runs": [r.to_json() for r in outcome.results],
        },
        report_file,
    )
