"""The toolkit's own overhead (doctor, binfmt-install, an unchanged build-images,
test-images per image) and the size each helper image adds over its base.

The CLI tasks run as a user runs them (``invoke ...`` in the checkout), with their
reports redirected to a temporary XARCH_BUILD_DIR so the user's build/ is untouched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xarch.bench.runner import tail
from xarch.bench.stats import Summary, summarize
from xarch.host import binfmt
from xarch.host import emulators as hostemu
from xarch.host.lock import child_handoff
from xarch.images.installer import local_probe_image
from xarch.model.arch import get_arch
from xarch.model.config import Config, Target, load_config
from xarch.model.naming import L_BASE_REF, helper_ref
from xarch.oci.engine import Engine

Log = Callable[[str], None]

#: The budgets from the performance issue (seconds).
GOAL_DOCTOR = 0.5
GOAL_BUILD_UNCHANGED = 2.0
GOAL_TEST_IMAGES = 60.0
#: Issue 10's budget for what the native toolchain (/opt/xarch/native) adds (bytes).
GOAL_NATIVE_TOOLCHAIN = 120_000_000


@dataclass
class ToolkitTiming:
    name: str
    command: str
    samples: list[float] = field(default_factory=list)
    exit_codes: list[int] = field(default_factory=list)
    goal: float | None = None
    note: str = ""
    failure: str = ""  # output of a run that failed (its time is not in samples)

    def summary(self) -> Summary | None:
        return summarize(self.samples)

    def to_json(self) -> dict[str, Any]:
        s = self.summary()
        return {
            "name": self.name,
            "command": self.command,
            "samples": [round(x, 4) for x in self.samples],
            "exit_codes": self.exit_codes,
            "summary": s.to_json() if s else None,
            "goal": self.goal,
            "within_goal": None if s is None or self.goal is None else s.median < self.goal,
            "note": self.note,
            "failure": self.failure,
        }


def _xarch_cmd() -> list[str]:
    """The installed console script (works outside a checkout, unlike ``invoke``)."""
    return [sys.executable, "-m", "xarch"]


def run_cli(args: Sequence[str], build_dir: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Run ``xarch ARGS`` in the current directory; (wall seconds, process)."""
    handoff, fds = child_handoff()  # the bench holds the host lock; the child shares it
    env = {**os.environ, "XARCH_BUILD_DIR": str(build_dir), **handoff}
    start = time.monotonic()
    r = subprocess.run(
        [*_xarch_cmd(), *args],
        env=env,
        pass_fds=fds,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=1800,
        check=False,
    )
    return time.monotonic() - start, r


def time_doctor(config: Config, reps: int, work: Path, log: Log) -> list[ToolkitTiming]:
    args = ["doctor", "--config", str(config.path)]
    cli = ToolkitTiming(name="doctor (CLI)", command="invoke " + " ".join(args), goal=GOAL_DOCTOR)
    log(f"+ invoke {' '.join(args)}   (x{reps})")
    for _ in range(reps):
        seconds, r = run_cli(args, work)
        # exit 1 is a verdict (some target would not run here), not a failure to run
        if r.returncode in (0, 1) and "Host" in r.stdout:
            cli.samples.append(seconds)
            cli.exit_codes.append(r.returncode)
        else:
            cli.failure = tail(r.stdout + r.stderr)
    notes = [_probe_note(config)]
    if 1 in cli.exit_codes:
        notes.append("exit 1: the diagnosis says some target would not run on the host as it is")
    cli.note = "; ".join(notes)

    from xarch.runner.doctor import diagnose

    call = ToolkitTiming(
        name="doctor: diagnose()",
        command="xarch.runner.doctor.diagnose(config, probe_image=..., probe_containers=True)",
        goal=GOAL_DOCTOR,
    )
    for _ in range(reps):
        start = time.monotonic()
        cfg = load_config(config.path, allow_unpinned=True)
        diagnose(cfg, probe_image=local_probe_image(cfg), probe_containers=True)
        call.samples.append(time.monotonic() - start)
        call.exit_codes.append(0)
    call.note = "config load + diagnosis in-process, as the CLI calls it"
    return [cli, call]


def _probe_note(config: Config) -> str:
    image = local_probe_image(config)
    return (
        f"includes two container probes with {image}"
        if image
        else "no container probes (no local installer image)"
    )


def time_binfmt_install(config: Config, reps: int, log: Log) -> ToolkitTiming | None:
    """hostemu.install for aarch64 into a temporary install dir, with the aarch64
    entries removed first; the host's entries are restored afterwards."""
    arch = get_arch("aarch64")
    if arch.qemu_binary not in config.qemu.sha256:
        return None
    t = ToolkitTiming(
        name="binfmt-install aarch64",
        command="xarch.host.emulators.install(pin, ['aarch64'], install_dir=<tmp>)",
        note="emulator copied to an empty install dir and verified, handler registered (F)",
    )
    log(
        f"  binfmt-install {arch.name}: {reps} run(s) into a temporary install dir; "
        "the host's binfmt_misc entries are restored afterwards"
    )
    first: list[str] = []
    with binfmt.preserved(log=first.append):
        for i in range(reps):
            for e in binfmt.entries_for(arch):
                if e.name == arch.binfmt_name:
                    binfmt.unregister(e.name, log=first.append)
                elif e.enabled:
                    binfmt.set_enabled(e.name, False, log=first.append)
            with tempfile.TemporaryDirectory(prefix="xarch-bench-install-") as d:
                lines: list[str] = []
                start = time.monotonic()
                hostemu.install(config.qemu, [arch.name], install_dir=Path(d), log=lines.append)
                t.samples.append(time.monotonic() - start)
                t.exit_codes.append(0)
                if i == 0:
                    first.extend(lines)
    for line in first:
        if line.startswith("+ "):
            log(f"    {line}")
    return t


def time_build_unchanged(
    config: Config, targets: Sequence[Target], reps: int, work: Path, log: Log
) -> ToolkitTiming:
    args = ["build-images", "--config", str(config.path)]
    if len(targets) != len(config.targets):
        for tg in targets:
            args += ["--target", tg.name]
    t = ToolkitTiming(
        name="build-images, nothing changed (CLI)",
        command="invoke " + " ".join(args),
        goal=GOAL_BUILD_UNCHANGED,
    )
    log(f"+ invoke {' '.join(args)}   (x{reps + 1}, the first one not counted)")
    rebuilt: set[str] = set()
    for i in range(reps + 1):
        seconds, r = run_cli(args, work)
        statuses = _build_statuses(work)
        if r.returncode != 0:
            t.failure = tail(r.stdout + r.stderr)
            break
        changed = {name for name, status in statuses.items() if status != "up-to-date"}
        if i == 0:
            # The first run may build what is missing (or was out of date).
            rebuilt = changed
            continue
        if changed:
            t.failure = f"not a no-op: {', '.join(sorted(changed))} built again"
            continue
        t.samples.append(seconds)
        t.exit_codes.append(r.returncode)
    if rebuilt:
        t.note = (
            f"the first run built {', '.join(sorted(rebuilt))} (not up to date before); "
            "the timed runs found everything up to date"
        )
    else:
        t.note = "every image up to date"
    return t


def _build_statuses(build_dir: Path) -> dict[str, str]:
    try:
        data = json.loads((build_dir / "xarch-report.json").read_text())
    except (OSError, ValueError):
        return {}
    targets = (data.get("build") or {}).get("targets") or []
    return {str(x.get("target")): str(x.get("status")) for x in targets if isinstance(x, dict)}


def time_test_images(config: Config, target: Target, work: Path, log: Log) -> ToolkitTiming:
    junit = work / f"test-images-{target.name}.xml"
    args = [
        "test-images",
        "--config",
        str(config.path),
        "--target",
        target.name,
        "--binfmt-mode",
        "F",
        "--junit",
        str(junit),
    ]
    t = ToolkitTiming(
        name=f"test-images {target.name}",
        command="invoke " + " ".join(args),
        goal=GOAL_TEST_IMAGES,
    )
    log(f"+ invoke {' '.join(args)}")
    seconds, r = run_cli(args, work)
    if r.returncode == 0:
        t.samples.append(seconds)
        t.exit_codes.append(0)
        summary = [ln for ln in r.stdout.splitlines() if " passed" in ln and "==" in ln]
        t.note = summary[-1].strip("= ") if summary else ""
    else:
        t.failure = tail(r.stdout + r.stderr)
    return t


def toolkit_overhead(
    config: Config, targets: Sequence[Target], reps: int, log: Log
) -> list[ToolkitTiming]:
    out: list[ToolkitTiming] = []
    work = Path(tempfile.mkdtemp(prefix="xarch-bench-toolkit-"))
    try:
        out += time_doctor(config, reps, work, log)
        if binfmt.is_available() and os.geteuid() == 0:
            b = time_binfmt_install(config, reps, log)
            if b is not None:
                out.append(b)
        out.append(time_build_unchanged(config, targets, reps, work, log))
        for tg in targets:
            out.append(time_test_images(config, tg, work, log))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


# -------------------------------------------------------------------------------- size


@dataclass
class ImageSize:
    target: str
    image: str
    size: int
    base: str
    base_size: int | None  # None when the base is not in the local engine
    #: an accelerated image: the size of /opt/xarch/native (du -sb in its container)
    native_leaves: bool = False
    native_size: int | None = None
    native_size_error: str = ""

    @property
    def added(self) -> int | None:
        return None if self.base_size is None else self.size - self.base_size

    @property
    def native_within_goal(self) -> bool | None:
        if not self.native_leaves or self.native_size is None:
            return None
        return self.native_size < GOAL_NATIVE_TOOLCHAIN

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "image": self.image,
            "size": self.size,
            "base": self.base,
            "base_size": self.base_size,
            "added": self.added,
            "native_leaves": self.native_leaves,
            "native_toolchain_size": self.native_size,
            "native_toolchain_size_error": self.native_size_error,
            "native_toolchain_goal": GOAL_NATIVE_TOOLCHAIN if self.native_leaves else None,
            "native_toolchain_within_goal": self.native_within_goal,
        }


def image_sizes(engine: Engine, config: Config, targets: Sequence[Target]) -> list[ImageSize]:
    out = []
    for t in targets:
        ref = helper_ref(config, t, t.tags[0])
        attrs = engine.inspect(ref) or {}
        labels = (attrs.get("Config") or {}).get("Labels") or {}
        base = str(labels.get(L_BASE_REF, ""))
        base_attrs = engine.inspect(base) if base else None
        out.append(
            ImageSize(
                target=t.name,
                image=ref,
                size=int(attrs.get("Size", 0)),
                base=base,
                base_size=int(base_attrs.get("Size", 0)) if base_attrs else None,
            )
        )
    return out
