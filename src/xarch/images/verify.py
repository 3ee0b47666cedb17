"""Running the image suite (xarch/imagetests) under a chosen host binfmt state.

Modes: ``host`` leaves the host as it is; ``F`` registers the pinned emulator
with flag F; ``no-F`` registers a handler without F at /usr/bin/qemu-<arch>-static,
which only images that bundle the emulator survive. ``both`` runs F then no-F.
Handlers are registered for the duration of the run and the host's previous
entries are restored afterwards, even when the run fails.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from xarch.errors import BadInput, EngineGone, NotBuilt, TestFailure
from xarch.host import binfmt, qemu
from xarch.images.suite import RUN_ENV, RUN_LABEL
from xarch.model.arch import Arch
from xarch.model.children import run_stoppable
from xarch.model.config import Config, Target
from xarch.model.naming import helper_ref
from xarch.model.paths import build_dir
from xarch.oci.engine import START_HINT, Engine

Log = Callable[[str], None]
MODES = ("host", "F", "no-F", "both")
SUITE_DIR = Path(__file__).parent / "suite"
#: The image suite: every helper image, and the native leaves of an accelerated one
#: (those tests skip an image without org.xarch.native labels).
SUITE = (
    SUITE_DIR / "test_helper_image.py",
    SUITE_DIR / "test_native_leaves.py",
    SUITE_DIR / "test_native_uv.py",
)


@dataclass(frozen=True)
class SuiteRun:
    mode: str
    returncode: int
    junit: Path


@contextlib.contextmanager
def binfmt_state(
    mode: str, arches: list[Arch], emulators: dict[str, Path], log: Log
) -> Iterator[None]:
    if mode == "host":
        yield
        return
    with contextlib.ExitStack() as stack:
        for a in arches:
            if mode == "F":
                stack.enter_context(
                    binfmt.temporary_handler(a, str(emulators[a.name]), flags="F", log=log)
                )
            else:
                stack.enter_context(binfmt.temporary_handler(a, a.emulator_path, flags="", log=log))
        yield


def _run_pid(value: str) -> int | None:
    head = value.split("-", 1)[0]
    return int(head) if head.isdigit() and "-" in value else None


def remove_leftovers(engine: Engine, log: Log) -> int:
    """Remove the containers earlier test-images runs left behind (the engine or xarch
    killed mid-run, a reboot): those whose run's process is gone. A live run's are
    kept (its pid, the first part of its run label, still exists); a label without a
    pid (an older xarch's) counts as dead only when its container no longer runs."""
    removed = 0
    for cid, value, status in engine.labelled(RUN_LABEL):
        pid = _run_pid(value)
        alive = pid is not None and Path(f"/proc/{pid}").exists() and pid != os.getpid()
        if alive or (pid is None and status == "running"):
            continue
        if engine.remove_container(cid):
            removed += 1
            who = f"pid {pid}, gone" if pid is not None else "no pid recorded"
            log(f"  removed container {cid[:12]} ({status}) left by an earlier run ({who})")
    return removed


def _junit_for(junit: Path | None, mode: str, modes: list[str]) -> Path:
    if junit is None:
        junit = build_dir() / "test-images.xml"
    if len(modes) > 1:
        return junit.with_name(f"{junit.stem}-{mode}{junit.suffix}")
    return junit


def run_suite(
    config: Config,
    targets: tuple[Target, ...],
    *,
    mode: str = "host",
    junit: Path | None = None,
    allow_unpinned: bool = False,
    pytest_args: list[str] | None = None,
    jobs: int = 0,
    log: Log = print,
) -> list[SuiteRun]:
    """Run the image suite once per binfmt mode; raise TestFailure if any run failed.

    With more than one target, the tests run on up to `jobs` pytest-xdist workers (0: one
    per core, at most one per image), shared out one by one; each worker starts its own
    session container per image it tests (every test is independent of the others).
    The emulated tests keep a core busy each."""
    if mode not in MODES:
        raise BadInput(f"--binfmt-mode must be one of {', '.join(MODES)}, not {mode!r}")
    if jobs < 0:
        raise BadInput(f"--jobs must be 0 (one per core) or more, not {jobs}")
    workers = min(len(targets), jobs or os.cpu_count() or 1)
    engine = Engine.connect()
    missing = [
        helper_ref(config, t, t.tags[0])
        for t in targets
        if engine.inspect(helper_ref(config, t, t.tags[0])) is None
    ]
    if missing:
        raise NotBuilt(
            "no helper image built yet for: "
            + ", ".join(missing)
            + f"\n  run `invoke build-images --config {config.path}` first"
        )
    remove_leftovers(engine, log)
    arches = list({t.arch.name: t.arch for t in targets}.values())
    emulators = qemu.ensure_emulators(config.qemu, arches, log) if mode != "host" else {}
    modes = ["F", "no-F"] if mode == "both" else [mode]
    runs: list[SuiteRun] = []
    for m in modes:
        out = _junit_for(junit, m, modes)
        out.parent.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            *(str(f) for f in SUITE),
            "-p",
            "xarch.images.suite.plugin",
            "--rootdir",
            str(SUITE_DIR),
            "-c",
            str(SUITE_DIR / "pytest.ini"),
            f"--xarch-config={config.path}",
            f"--xarch-binfmt-mode={m}",
            f"--junitxml={out}",
            "-v",
            *(f"--xarch-target={t.name}" for t in targets),
            *(["--xarch-allow-unpinned"] if allow_unpinned else []),
            *(["-n", str(workers), "--dist", "load"] if workers > 1 else ["-p", "no:xdist"]),
            *(pytest_args or []),
        ]
        side = f", {workers} side by side" if workers > 1 else ""
        log(f"== test-images: {len(targets)} image(s){side}, host binfmt mode {m!r} ==")
        # The pid first: the next run tells a live run's containers from a dead one's.
        run_id = f"{os.getpid()}-{uuid.uuid4().hex}"
        env = {**os.environ, RUN_ENV: run_id}
        with binfmt_state(m, arches, emulators, log):
            try:
                # Interrupted, pytest gets SIGINT so its fixtures remove their containers;
                # an xdist worker stopped before its fixtures ran leaves them, so every
                # container labelled with this run is removed here too.
                rc = run_stoppable(cmd, signum=signal.SIGINT, grace=120, env=env)
            finally:
                engine.remove_labelled(RUN_LABEL, run_id)
        runs.append(SuiteRun(mode=m, returncode=rc, junit=out))
        log(f"JUnit report: {out}")
        if rc != 0 and not Engine.answers(timeout=10):
            raise EngineGone(
                f"the Docker engine at {Engine.address()} stopped answering during test-images "
                f"(binfmt mode {m!r}); the tests it cut short are errors in {out}, not "
                "failures of the images.\n"
                f"  fix: start the engine again ({START_HINT}), then run test-images again"
            )
    failed = [r for r in runs if r.returncode != 0]
    if failed:
        raise TestFailure(
            "image verification failed in binfmt mode(s) "
            + ", ".join(r.mode for r in failed)
            + "; see the test output above and "
            + ", ".join(str(r.junit) for r in failed)
        )
    return runs
