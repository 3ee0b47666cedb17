"""Diagnosis: combine the host, the kernel's binfmt_misc handlers, the Docker
engine and the config into one verdict per target, each failing verdict with the
exact command that fixes it.

Verdicts predict what `docker run` of an image does on this host:

- ``runs``: an enabled handler matches and either has flag F (the kernel opened
  the interpreter at registration) or names an interpreter the image carries;
- ``exec-format-error``: no enabled handler for the architecture (or binfmt_misc
  is unavailable or switched off);
- ``no-such-file``: the only handlers lack F and name an interpreter path that is
  not in the image (the kernel looks it up inside the container);
- ``unknown``: cannot be judged (say why), e.g. handlers that disagree.
"""

from __future__ import annotations

import concurrent.futures
import json
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from xarch.errors import DaemonError, EngineUnavailable
from xarch.host import binfmt
from xarch.host import emulators as hostemu
from xarch.images import native, native_uv
from xarch.images.installer import BIND_PATH
from xarch.model.arch import Arch, host_arch
from xarch.model.config import Config, Target
from xarch.model.naming import helper_ref
from xarch.model.tables import format_table
from xarch.oci.engine import START_HINT, Engine

RUNS = "runs"
EXEC_FORMAT = "exec-format-error"
NO_SUCH_FILE = "no-such-file"
UNKNOWN = "unknown"

MESSAGES = {
    RUNS: "runs",
    EXEC_FORMAT: 'fails with "exec format error"',
    NO_SUCH_FILE: 'fails with "no such file or directory"',
    UNKNOWN: "cannot be judged",
}


@dataclass
class Check:
    name: str
    ok: bool | None  # None: not applicable / could not be checked
    detail: str
    fix: str = ""


@dataclass
class Verdict:
    target: str
    arch: str
    image: str
    verdict: str
    reason: str
    fix: str = ""
    base_image: str = ""
    base_verdict: str = ""
    base_reason: str = ""
    # Native compiler leaves (issue 10): "" when the config does not accelerate the
    # target; else what the local image carries and whether they work on this host.
    native: str = ""
    native_ok: bool | None = None
    # A native uv (issue 16): "" when the config asks for none; else what the image says.
    uv: str = ""


@dataclass
class DoctorReport:
    checks: list[Check] = field(default_factory=list)
    handlers: list[dict[str, Any]] = field(default_factory=list)
    targets: list[Verdict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        # An accelerated image whose native leaves fail here cannot compile (the hook
        # never falls back silently): that target would not do its job.
        return all(v.verdict == RUNS and v.native_ok is not False for v in self.targets)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checks": [asdict(c) for c in self.checks],
            "handlers": self.handlers,
            "targets": [asdict(v) for v in self.targets],
        }


def predict(
    arch: Arch,
    entries: list[binfmt.BinfmtEntry] | None,
    bundled: frozenset[str],
    *,
    status_on: bool = True,
    host: Arch | None = None,
) -> tuple[str, str]:
    """(verdict, reason) for starting an image of `arch` that carries the files
    `bundled` (absolute paths), given the kernel's entries (None: binfmt_misc
    unavailable) on a `host` of that architecture (default: this machine's). Pure
    logic: the unit tests pin it case by case."""
    if arch.name == (host or host_arch()).name:
        return RUNS, f"{arch.name} is the host's own architecture"
    if entries is None:
        return EXEC_FORMAT, "binfmt_misc is not mounted or not available"
    if not status_on:
        return EXEC_FORMAT, "binfmt_misc is switched off (status: disabled)"
    enabled = [e for e in entries if e.enabled and e.matches(arch)]
    if not enabled:
        disabled = [e.name for e in entries if not e.enabled and e.matches(arch)]
        extra = f" ({', '.join(disabled)} disabled)" if disabled else ""
        return EXEC_FORMAT, f"no enabled binfmt_misc handler for {arch.name}{extra}"
    outcomes: dict[str, list[str]] = {}
    for e in enabled:
        if "F" in e.flags:
            outcomes.setdefault(RUNS, []).append(f"{e.name} has flag F ({e.interpreter})")
        elif e.interpreter in bundled:
            outcomes.setdefault(RUNS, []).append(
                f"{e.name} has no flag F and names {e.interpreter}, which the image carries"
            )
        else:
            outcomes.setdefault(NO_SUCH_FILE, []).append(
                f"{e.name} has no flag F and names {e.interpreter}, which is not in the image"
            )
    if len(outcomes) == 1:
        verdict, reasons = next(iter(outcomes.items()))
        return verdict, "; ".join(reasons)
    return UNKNOWN, (
        "several enabled handlers disagree (the most recently registered wins, and "
        "binfmt_misc does not show the order): "
        + "; ".join(r for rs in outcomes.values() for r in rs)
    )


def fix_for(
    verdict: str, arch: Arch, entries: list[binfmt.BinfmtEntry] | None, config_path: str = ""
) -> str:
    if verdict == RUNS:
        return ""
    cfg = f" --config {config_path}" if config_path else ""
    cmd = f"sudo .venv/bin/invoke binfmt-install{cfg} --arch {arch.name}"
    if entries is None:
        return f"sudo mount -t binfmt_misc binfmt_misc {binfmt.BINFMT_DIR} && {cmd}"
    if verdict == EXEC_FORMAT:
        disabled = [e for e in entries if not e.enabled and e.matches(arch)]
        if disabled:
            return f"echo 1 | sudo tee {binfmt.BINFMT_DIR}/{disabled[0].name}   # or: {cmd}"
        return cmd
    # no-such-file / unknown: replace the handler(s) with one flag-F handler.
    return f"{cmd} --force"


def _docker_check(timeout: float = 3.0) -> tuple[Check, Engine | None]:
    try:
        engine = Engine.connect(timeout=int(timeout))
    except EngineUnavailable as e:
        return Check("docker", False, str(e).splitlines()[0], START_HINT), None
    v = engine.version()
    return (
        Check("docker", True, f"Docker engine {v.get('Version')} (API {v.get('ApiVersion')})"),
        engine,
    )


def _probe(engine: Engine, image: str, privileged: bool) -> Check:
    """Start the installer image the two ways a user could: --privileged, and the
    least-privilege way (binfmt_misc bind-mounted outside /proc, which runc allows)."""
    name = "privileged container" if privileged else "least-privilege binfmt path"
    if privileged:
        cmd = ["true"]
        volumes = {}
    else:
        cmd = ["test", "-w", f"{BIND_PATH}/register"]
        volumes = {str(binfmt.BINFMT_DIR): (BIND_PATH, "rw")}
    try:
        # No network: the probe needs none, and skipping its setup halves the start time.
        exit_status = engine.run(
            image,
            cmd,
            entrypoint=["/bin/busybox"],
            network="none",
            privileged=privileged,
            volumes=volumes,
        )
    except DaemonError as e:
        detail = e.detail.splitlines()[0]
        if "apply caps" in detail:
            detail = "unable to apply caps: the host's capability bounding set is narrower"
        return Check(name, False, detail[:200])
    if exit_status != 0:
        return Check(name, False, f"started, but the check failed (exit {exit_status})")
    if privileged:
        return Check(name, True, "docker run --privileged works")
    return Check(
        name,
        True,
        f"docker run -v {binfmt.BINFMT_DIR}:{BIND_PATH} IMAGE can register handlers "
        "(no --privileged needed)",
    )


def diagnose(
    config: Config | None,
    *,
    root: Path = binfmt.BINFMT_DIR,
    probe_image: str | None = None,
    probe_containers: bool = True,
) -> DoctorReport:
    report = DoctorReport()
    host = host_arch()
    report.checks.append(
        Check("host", True, f"{host.name} ({host.platform}), kernel {platform.release()}")
    )
    available = binfmt.is_available(root)
    entries: list[binfmt.BinfmtEntry] | None = None
    status_on = True
    if available:
        entries = binfmt.list_entries(root)
        status_on = binfmt.status_enabled(root)
        report.checks.append(
            Check(
                "binfmt_misc",
                status_on,
                f"mounted at {root}, {'enabled' if status_on else 'DISABLED'}, "
                f"{len(entries)} handler(s)",
                "" if status_on else f"echo 1 | sudo tee {root}/status",
            )
        )
    else:
        report.checks.append(
            Check(
                "binfmt_misc",
                False,
                f"not mounted at {root}",
                f"sudo mount -t binfmt_misc binfmt_misc {root}",
            )
        )
    pin = config.qemu if config else None
    report.handlers = [s.to_json() for s in hostemu.status(pin, root=root)] if available else []

    docker_check, engine = _docker_check()
    report.checks.append(docker_check)
    if engine is not None and probe_containers:
        if probe_image is None:
            report.checks.append(
                Check(
                    "container probes",
                    None,
                    "skipped: no local image of the binfmt installer to probe with "
                    "(`invoke build-images` builds it)",
                )
            )
        else:
            with concurrent.futures.ThreadPoolExecutor(2) as pool:
                futures = [pool.submit(_probe, engine, probe_image, p) for p in (True, False)]
                report.checks.extend(f.result() for f in futures)

    if config is not None:
        for t in config.targets:
            report.targets.append(_target_verdict(t, config, entries, status_on, engine))
    return report


def _target_verdict(
    t: Target,
    config: Config,
    entries: list[binfmt.BinfmtEntry] | None,
    status_on: bool,
    engine: Engine | None,
) -> Verdict:
    image = helper_ref(config, t, t.tags[0])
    # A helper image carries its emulator where a handler without F looks for it.
    verdict, reason = predict(
        t.arch, entries, frozenset({t.arch.emulator_path}), status_on=status_on
    )
    base_verdict, base_reason = predict(t.arch, entries, frozenset(), status_on=status_on)
    fix = fix_for(verdict, t.arch, entries, str(config.path))
    if engine is None:
        verdict, reason, fix = (
            UNKNOWN,
            f"the Docker daemon does not answer; the kernel side says: {MESSAGES[verdict]}",
            START_HINT,
        )
    base = (
        getattr(t.base, "pull_ref", "")
        or f"(stand-in bootstrapped from Debian {t.arch.debian_arch})"
    )
    native_text, native_ok = _native_status(t, image, verdict, engine)
    uv_text = ""
    if t.native_uv and engine is not None:
        labels = engine.labels(image)
        uv_text = (
            native_uv.status_from_labels(labels)
            if labels is not None
            else f"{image} is not built here (`invoke build-images`)"
        )
    return Verdict(
        target=t.name,
        arch=t.arch.name,
        image=image,
        verdict=verdict,
        reason=reason,
        fix=fix,
        base_image=base,
        base_verdict=base_verdict,
        base_reason=base_reason,
        native=native_text,
        native_ok=native_ok,
        uv=uv_text,
    )


def _native_status(
    t: Target, image: str, verdict: str, engine: Engine | None
) -> tuple[str, bool | None]:
    """Whether the target's image carries proven native leaves and whether they work
    here: a compile in the image, both ways (only when the image would start)."""
    if t.accelerate is None or not t.accelerate.enabled:
        return "", None
    if engine is None:
        return "cannot be judged: the Docker daemon does not answer", None
    labels = engine.labels(image)
    if labels is None:
        return f"{image} is not built here (`invoke build-images`)", None
    text = native.status_from_labels(labels)
    if f"{native.LABEL_PREFIX}.toolchain" not in labels:
        return text, False
    if verdict != RUNS:
        return f"{text}; not tried: the image would not start", None
    try:
        ok, seen = native.check_working(engine, image, t.arch)
    except DaemonError as e:
        ok, seen = False, e.detail.splitlines()[0][:200]
    return f"{text}; on this host: {'working' if ok else 'NOT working'} ({seen})", ok


def render(report: DoctorReport) -> str:
    lines = ["Host"]
    for c in report.checks:
        mark = {True: "ok  ", False: "FAIL", None: "skip"}[c.ok]
        lines.append(f"  {mark}  {c.name}: {c.detail}")
        if c.fix and c.ok is False:
            lines.append(f"        fix: {c.fix}")
    lines.append(f"\nbinfmt_misc handlers ({len(report.handlers)})")
    if report.handlers:
        rows = [
            ("NAME", "ARCH", "ENABLED", "FLAGS", "INTERPRETER", "EXISTS", "PINNED", "PERSISTED")
        ]
        for h in report.handlers:
            rows.append(
                (
                    h["name"],
                    h["arch"] or "-",
                    "yes" if h["enabled"] else "no",
                    h["flags"] or "-",
                    h["interpreter"],
                    "yes" if h["interpreter_exists"] else "no",
                    {True: "yes", False: "NO", None: "-"}[h["pinned"]],
                    h["persisted"] or "no",
                )
            )
        lines.append(format_table(rows, indent="  "))
    if report.targets:
        lines.append("\nTargets")
        for v in report.targets:
            mark = {
                RUNS: "RUNS",
                EXEC_FORMAT: "FAILS: exec format error",
                NO_SUCH_FILE: "FAILS: no such file or directory",
                UNKNOWN: "CANNOT BE JUDGED",
            }[v.verdict]
            lines.append(f"  {v.target} ({v.arch}): {mark}")
            lines.append(f"      why: {v.reason}")
            if v.fix:
                lines.append(f"      fix: {v.fix}")
            lines.append(f"      plain base {v.base_image}: {MESSAGES[v.base_verdict]}")
            if v.native:
                lines.append(f"      native compilers: {v.native}")
            if v.uv:
                lines.append(f"      {v.uv}")
        lines.append(
            "\nverdict: every target would run"
            if report.ok
            else "\nverdict: some targets would not run (see fix lines)"
        )
    return "\n".join(lines)


def dumps(report: DoctorReport) -> str:
    return json.dumps(report.to_json(), indent=2, sort_keys=True)
