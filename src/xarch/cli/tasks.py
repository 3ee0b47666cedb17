"""The Invoke collection: thin wrappers that parse flags, call the modules and map
errors to exit codes (2: bad input, nothing changed; 1: an operation failed)."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit, Failure, ParseError
from invoke.tasks import task

from xarch.cli.interrupts import interruptible
from xarch.errors import BadInput, EngineGone, XarchError
from xarch.host.lock import exclusive
from xarch.model.paths import build_dir

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_CONFIG = "config/images.yaml"
CONFIG_HELP = (
    f"config file (default {DEFAULT_CONFIG}; "
    "config/offline.yaml for hosts without public registries)"
)
TARGET_HELP = "target name from the config; repeat for several (default: all)"


DEBUG_ENV = "XARCH_DEBUG"


def user_errors(fn: F) -> F:
    """The one error handler of every task.

    An XarchError becomes its message on stderr and its exit code (2: bad input,
    nothing changed; 1: an operation failed). An OSError that no module turned into an
    XarchError (a full disk, a permission) becomes its message and exit 1. Anything else
    is a bug in xarch: one line naming it, exit 1, and the traceback with XARCH_DEBUG=1.
    Invoke's own Exit, Failure and ParseError pass through. SIGINT and SIGTERM end the
    task as a KeyboardInterrupt (cli.interrupts), so every cleanup runs, then exit 130 or
    143 with one line.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with interruptible() as interruption:
            try:
                return _run_task(fn, args, kwargs)
            except KeyboardInterrupt:
                sys.stdout.flush()
                raise Exit(
                    f"error: {interruption.message()}", code=interruption.exit_code
                ) from None

    return wrapper  # type: ignore[return-value]


#: The tasks that drive the Docker engine from start to end: when one of them fails and
#: the engine, which answered when it started, no longer does, the failure is the
#: engine's (issue 18), whatever the step that noticed first said.
ENGINE_TASKS = frozenset(
    {"build_images", "push_images", "test_images", "wheels", "bench", "pull_images"}
)


def engine_gone(task: str, answered_at_start: bool, answers_now: bool) -> str | None:
    """The message for a task whose engine stopped answering under it, else None."""
    if task not in ENGINE_TASKS or not answered_at_start or answers_now:
        return None
    from xarch.oci.engine import START_HINT, Engine

    name = task.replace("_", "-")
    return (
        f"the Docker engine at {Engine.address()} stopped answering during {name}; "
        "what failed below is the engine's failure, not the images' or the build's\n"
        f"  fix: start the engine again ({START_HINT}), then run {name} again"
    )


def _engine_answers() -> bool:
    from xarch.oci.engine import Engine

    return Engine.answers(timeout=5)


def _run_task(fn: Callable[..., Any], args: Any, kwargs: Any) -> Any:
    """The task body under the one error handler (see user_errors)."""
    watched = fn.__name__ in ENGINE_TASKS
    answered = watched and _engine_answers()
    try:
        return fn(*args, **kwargs)
    except XarchError as e:
        sys.stdout.flush()
        if not isinstance(e, BadInput | EngineGone) and watched:
            gone = engine_gone(fn.__name__, answered, _engine_answers())
            if gone:
                raise Exit(f"error: {e}\nerror: {gone}", code=1) from None
        raise Exit(f"error: {e}", code=e.exit_code) from None
    except (Exit, Failure, ParseError):
        raise
    except OSError as e:
        if os.environ.get(DEBUG_ENV) == "1":
            raise
        sys.stdout.flush()
        gone = engine_gone(fn.__name__, answered, _engine_answers()) if watched else None
        tail = f"\nerror: {gone}" if gone else ""
        raise Exit(f"error: {describe_os_error(e)}{tail}", code=1) from None
    except Exception as e:  # the single handler: every bug ends here, named
        if os.environ.get(DEBUG_ENV) == "1":
            raise
        sys.stdout.flush()
        # The engine dying mid-stream surfaces as the HTTP library's error (urllib3's
        # ProtocolError, IncompleteRead): that is the engine's failure, not a bug.
        gone = engine_gone(fn.__name__, answered, _engine_answers()) if watched else None
        if gone:
            raise Exit(f"error: {type(e).__name__}: {e}\nerror: {gone}", code=1) from None
        raise Exit(
            f"error: {type(e).__name__}: {e}\n"
            f"  this is a bug in xarch, please report it "
            f"({DEBUG_ENV}=1 shows the traceback)",
            code=1,
        ) from None


def describe_os_error(e: OSError) -> str:
    """The reason and the file ("No space left on device: /var/x"), not "[Errno 28] ..."."""
    reason = e.strerror or str(e) or type(e).__name__
    files = [str(f) for f in (e.filename, e.filename2) if f is not None]
    return f"{reason}: {' -> '.join(files)}" if files else reason


def _load(config: str, allow_unpinned: bool = False) -> Any:
    from xarch.model.config import load_config

    return load_config(config, allow_unpinned=allow_unpinned)


@task(
    help={
        "config": CONFIG_HELP,
        "target": TARGET_HELP,
        "no_cache": "rebuild even when the build inputs are unchanged",
        "allow_unpinned": "accept bases given by tag alone (not reproducible)",
    },
    iterable=["target"],
)
@user_errors
@exclusive()
def build_images(
    c: Context,
    config: str = DEFAULT_CONFIG,
    target: list[str] | None = None,
    no_cache: bool = False,
    allow_unpinned: bool = False,
) -> None:
    """Build helper images: pinned base + pinned qemu-<arch>-static, labelled, per target."""
    from xarch.images.build import build_images as run

    cfg = _load(config, allow_unpinned)
    run(cfg, target or None, no_cache=no_cache)


@task(
    help={"config": CONFIG_HELP, "target": TARGET_HELP},
    iterable=["target"],
)
@user_errors
@exclusive()
def push_images(c: Context, config: str = DEFAULT_CONFIG, target: list[str] | None = None) -> None:
    """Push per-arch helper images, then one verified multi-arch index per family and tag."""
    from xarch.publish.push import push_images as run

    cfg = _load(config)
    run(cfg, target or None)


@task(
    help={
        "config": CONFIG_HELP,
        "target": TARGET_HELP,
        "junit": "JUnit XML output (default build/test-images.xml; -F/-no-F suffixes for 'both')",
        "binfmt_mode": "host (as it is), F, no-F, or both (F then no-F); "
        "F/no-F register a temporary handler (root) and restore the host's afterwards",
        "allow_unpinned": "accept bases given by tag alone",
        "jobs": "pytest-xdist workers the tests are shared out over (default 0: one per "
        "core, at most one per image; 1: none, one process)",
    },
    iterable=["target"],
)
@user_errors
@exclusive()
def test_images(
    c: Context,
    config: str = DEFAULT_CONFIG,
    target: list[str] | None = None,
    junit: str | None = None,
    binfmt_mode: str = "host",
    allow_unpinned: bool = False,
    jobs: int = 0,
) -> None:
    """Prove with pytest + testinfra that each helper image runs its architecture's code."""
    from xarch.images.verify import run_suite

    cfg = _load(config, allow_unpinned)
    targets = cfg.select(target)
    run_suite(
        cfg,
        targets,
        mode=binfmt_mode,
        junit=Path(junit) if junit else None,
        allow_unpinned=allow_unpinned,
        jobs=jobs,
    )


@task(
    help={
        "port": "port on 127.0.0.1 (default 5000)",
        "state_dir": "where the storage, config and pid file live "
        "(default $XARCH_STATE_DIR/registry or ~/.local/state/xarch/registry)",
        "htpasswd": "require basic auth with this htpasswd (bcrypt) file",
    }
)
@user_errors
@exclusive()
def registry_up(
    c: Context, port: int = 5000, state_dir: str | None = None, htpasswd: str | None = None
) -> None:
    """Start the embedded registry (Debian's docker-registry) on 127.0.0.1."""
    from xarch.model.paths import state_dir as default_state
    from xarch.oci import registry_server

    registry_server.start(
        Path(state_dir) if state_dir else default_state() / "registry",
        port=port,
        htpasswd=Path(htpasswd) if htpasswd else None,
    )


@task(
    help={
        "state_dir": "the registry's state directory (see registry-up)",
        "purge": "also delete the stored images (destructive)",
    }
)
@user_errors
@exclusive()
def registry_down(c: Context, state_dir: str | None = None, purge: bool = False) -> None:
    """Stop the embedded registry; its storage is kept unless --purge."""
    from xarch.model.paths import state_dir as default_state
    from xarch.oci import registry_server

    registry_server.stop(
        Path(state_dir) if state_dir else default_state() / "registry", purge=purge
    )


@task(help={"state_dir": "the registry's state directory", "json": "print JSON"})
@user_errors
def registry_status(c: Context, state_dir: str | None = None, json_: bool = False) -> None:
    """Say whether the embedded registry runs, where, and from which state directory."""
    from xarch.model.paths import state_dir as default_state
    from xarch.oci import registry_server

    d = Path(state_dir) if state_dir else default_state() / "registry"
    s = registry_server.status(d)
    if json_:
        print(
            json.dumps(
                {
                    "running": s is not None,
                    "address": s.address if s else None,
                    "pid": s.pid if s else None,
                    "state_dir": str(d),
                }
            )
        )
    elif s is None:
        print(f"not running (state {d})")
    else:
        print(f"running at {s.address} (pid {s.pid}, state {d})")
    if s is None:
        raise Exit(code=1)


@task(
    help={
        "json": "print the whole report as JSON",
        "path": "report file",
        "config": "show only the push record of this config (default: every config's)",
    }
)
@user_errors
def report(
    c: Context, json_: bool = False, path: str | None = None, config: str | None = None
) -> None:
    """Show what was last built and pushed (images, platforms, digests) from build/."""
    from xarch.errors import NotBuilt
    from xarch.model.report import read_report, report_path, require_push_record, summary

    p = Path(path) if path else report_path()
    data = read_report(p)
    if not data:
        raise NotBuilt(f"no report at {p}; run `invoke build-images` first")
    cfg = _load(config, allow_unpinned=True) if config else None
    if cfg is not None:
        require_push_record(data, cfg, p)
    print(json.dumps(data, indent=2, sort_keys=True) if json_ else summary(data, cfg))


@task(
    help={
        "config": CONFIG_HELP,
        "json": "print the diagnosis as JSON (for CI)",
        "no_probe": "skip the container probes (privileged and least-privilege starts)",
    }
)
@user_errors
def doctor(
    c: Context, config: str = DEFAULT_CONFIG, json_: bool = False, no_probe: bool = False
) -> None:
    """Explain whether each configured image would run here, and the fix when not."""
    from xarch.images.installer import local_probe_image
    from xarch.runner.doctor import diagnose, dumps, render

    cfg = _load(config, allow_unpinned=True)
    report = diagnose(
        cfg,
        probe_image=None if no_probe else local_probe_image(cfg),
        probe_containers=not no_probe,
    )
    print(dumps(report) if json_ else render(report))
    if not report.ok:
        raise Exit(code=1)


ARCH_HELP = "architecture (aarch64 ppc64le s390x armv7l riscv64, or all); repeatable"


@task(
    help={
        "config": CONFIG_HELP + "; its qemu pin names the emulators",
        "arch": ARCH_HELP,
        "flags": "binfmt flags: F (default), P; C and O only on explicit request",
        "persist": "also write /etc/binfmt.d/qemu-<arch>.conf (systemd-binfmt loads it at boot)",
        "force": "replace a different existing handler for the same architecture",
    },
    iterable=["arch"],
)
@user_errors
@exclusive()
def binfmt_install(
    c: Context,
    config: str = DEFAULT_CONFIG,
    arch: list[str] | None = None,
    flags: str = "F",
    persist: bool = False,
    force: bool = False,
) -> None:
    """Register the pinned emulators as binfmt_misc handlers on this host (root)."""
    from xarch.host.emulators import install

    cfg = _load(config, allow_unpinned=True)
    outcomes = install(cfg.qemu, arch or [], flags=flags, persist=persist, force=force)
    for o in outcomes:
        print(o.summary())


@task(help={"arch": ARCH_HELP}, iterable=["arch"])
@user_errors
@exclusive()
def binfmt_uninstall(c: Context, arch: list[str] | None = None) -> None:
    """Remove the qemu-<arch> handlers named (and xarch's persisted files for them)."""
    from xarch.host.emulators import uninstall

    for o in uninstall(arch or []):
        extra = f", removed {o.persisted}" if o.persisted else ""
        print(f"{o.arch}: {o.action} ({o.name}){extra}")


@task(
    help={
        "config": CONFIG_HELP + "; used to check interpreters against the pin",
        "json": "print JSON",
    }
)
@user_errors
def binfmt_status(c: Context, config: str = DEFAULT_CONFIG, json_: bool = False) -> None:
    """List the host's binfmt_misc handlers: interpreter, flags, pinned, persisted."""
    from xarch.host import binfmt
    from xarch.host.emulators import INSTALL_DIR, status
    from xarch.runner.doctor import DoctorReport, render

    cfg = _load(config, allow_unpinned=True) if Path(config).exists() else None
    available = binfmt.is_available()
    rows = [s.to_json() for s in status(cfg.qemu if cfg else None)] if available else []
    if json_:
        print(
            json.dumps(
                {
                    "binfmt_misc": {"available": available, "path": str(binfmt.BINFMT_DIR)},
                    "install_dir": str(INSTALL_DIR),
                    "handlers": rows,
                },
                indent=2,
            )
        )
        return
    if not available:
        raise Exit(f"binfmt_misc is not mounted at {binfmt.BINFMT_DIR}", code=1)
    print(f"xarch installs emulators in {INSTALL_DIR}")
    print(render(DoctorReport(handlers=rows)).split("\n", 1)[1].lstrip("\n"))


REPORT_HELP = "the report whose push section holds the digests (default build/xarch-report.json)"


@task(
    help={
        "config": CONFIG_HELP,
        "target": TARGET_HELP,
        "report": REPORT_HELP,
        "json": "print a JSON summary on stdout (progress goes to stderr)",
    },
    iterable=["target"],
)
@user_errors
def pull_images(
    c: Context,
    config: str = DEFAULT_CONFIG,
    target: list[str] | None = None,
    report: str | None = None,
    json_: bool = False,
) -> None:
    """Pull helper images by their pushed digests and check platform and labels (for CI)."""
    from xarch.publish.pull import pull_images as run
    from xarch.publish.pull import summary_table

    cfg = _load(config)

    def log(line: str) -> None:
        print(line, file=sys.stderr if json_ else sys.stdout, flush=True)

    outcome = run(cfg, target or None, report=Path(report) if report else None, log=log)
    if json_:
        print(json.dumps(outcome.to_json(), indent=2, sort_keys=True))
    else:
        print("")
        print(summary_table(outcome))
    failure = outcome.failure()
    if failure is not None:
        raise failure


@task(
    help={
        "config": CONFIG_HELP,
        "dry_run": "print the plan (what would be installed, started, registered, pulled) "
        "and change nothing",
        "report": REPORT_HELP,
        "force": "replace a different existing binfmt handler for a configured architecture",
    }
)
@user_errors
@exclusive(unless="dry_run")
def provision_runner(
    c: Context,
    config: str = DEFAULT_CONFIG,
    dry_run: bool = False,
    report: str | None = None,
    force: bool = False,
) -> None:
    """Make this Debian/Ubuntu host a runner for every configured image (root; idempotent)."""
    from xarch.runner.provision import provision_runner as run

    cfg = _load(config)
    run(cfg, dry_run=dry_run, report=Path(report) if report else None, force=force)


@task(
    help={
        "provider": "github or gitlab",
        "config": CONFIG_HELP,
        "output": "directory to write into, laid out like the repository "
        "(default build/ci/<provider>; `.` writes .github/workflows/ or .gitlab-ci.yml here)",
        "report": "the report whose push section holds the digests "
        "(default build/xarch-report.json)",
        "family": "build wheels in this family's images (when several provide one arch); "
        "repeatable",
        "runner": "runner labels (GitHub) or tags (GitLab) of the jobs that run xarch itself; "
        "repeatable (default: self-hosted linux x64 / xarch)",
        "wheels_runner": "GitHub runner of the wheel jobs (default ubuntu-24.04)",
        "cibuildwheel": "cibuildwheel version the wheel jobs install (exact; default: the "
        "config's cibuildwheel.version)",
        "force": "replace existing files with other content",
        "ca_bundle": "default of the wheel job's XARCH_CA_BUNDLE: the path on the runner of an "
        "extra CA bundle pip in the images must trust (default: off)",
    },
    iterable=["family", "runner"],
)
@user_errors
def ci_config(
    c: Context,
    provider: str = "",
    config: str = DEFAULT_CONFIG,
    output: str | None = None,
    report: str | None = None,
    family: list[str] | None = None,
    runner: list[str] | None = None,
    wheels_runner: str = "",
    cibuildwheel: str = "",
    force: bool = False,
    ca_bundle: str = "",
) -> None:
    """Write CI files: wheels in the helper images, image publishing, a pin check."""
    from xarch.ci import workflows as ciconfig
    from xarch.errors import BadInput
    from xarch.model.report import read_report, report_path

    if provider not in ciconfig.PROVIDERS:
        raise BadInput(f"--provider is required: one of {', '.join(ciconfig.PROVIDERS)}")
    cfg = _load(config)
    rp = Path(report) if report else report_path()
    ciconfig.ci_config(
        cfg,
        provider,
        output=Path(output) if output else Path("build") / "ci" / provider,
        report=read_report(rp),
        report_file=rp,
        families=family or [],
        runner=runner or [],
        wheels_runner=wheels_runner or ciconfig.WHEELS_RUNNER,
        cibuildwheel=cibuildwheel or None,
        force=force,
        ca_bundle=ca_bundle,
    )


DIGESTS_HELP = "directory of the per-target digest files (CI artifacts)"


@task(
    help={
        "config": CONFIG_HELP,
        "target": "target to push (one per CI job); repeatable",
        "digests_dir": DIGESTS_HELP + " to write <target>.json into",
    },
    iterable=["target"],
)
@user_errors
@exclusive()
def push_arch(
    c: Context,
    config: str = DEFAULT_CONFIG,
    target: list[str] | None = None,
    digests_dir: str = "digests",
) -> None:
    """Push one target's per-arch image and record its digest in a file (CI fan-out)."""
    from xarch.publish.fanout import push_arch as run

    run(_load(config), target or [], Path(digests_dir))


@task(
    help={
        "config": CONFIG_HELP,
        "family": "family to index; repeatable (default: every family of the config)",
        "digests_dir": DIGESTS_HELP + ", as push-arch wrote them (searched recursively)",
    },
    iterable=["family"],
)
@user_errors
@exclusive()
def push_index(
    c: Context,
    config: str = DEFAULT_CONFIG,
    family: list[str] | None = None,
    digests_dir: str = "digests",
) -> None:
    """Write each family's multi-arch index from the digest files of push-arch jobs."""
    from xarch.publish.fanout import push_index as run

    run(_load(config), Path(digests_dir), family or None)


@task(
    help={
        "config": CONFIG_HELP,
        "check": "change nothing; exit 1 listing every stale pin (for a scheduled CI job)",
        "skip_qemu": "do not compare the QEMU pin with apt's candidate",
        "from_cibuildwheel": "take the base pins and cibuildwheel.version from cibuildwheel's "
        "pinned_docker_images.cfg: of the installed cibuildwheel, or of VERSION (downloaded "
        "from PyPI into xarch's cache)",
    },
    optional=["from_cibuildwheel"],
)
@user_errors
@exclusive(unless="check")
def pin(
    c: Context,
    config: str = DEFAULT_CONFIG,
    check: bool = False,
    skip_qemu: bool = False,
    from_cibuildwheel: Any = None,
) -> None:
    """Re-resolve each base tag to its digest and rewrite stale pins; report a newer QEMU."""
    from xarch.publish.pin import pin as run
    from xarch.publish.pin import stale_report

    if from_cibuildwheel is not None and from_cibuildwheel is not False:
        from xarch.publish.cibuildwheel import release_pins
        from xarch.publish.pin import drift_report, pin_from_cibuildwheel

        cfg = _load(config, allow_unpinned=True)
        version = None if from_cibuildwheel is True else str(from_cibuildwheel)
        drift = pin_from_cibuildwheel(cfg, release_pins(version), check=check)
        print(drift_report(drift))
        if check and drift.drift:
            raise Exit(code=1)
        return
    outcome = run(_load(config, allow_unpinned=True), check=check, skip_qemu=skip_qemu)
    if check:
        print(stale_report(outcome))
        if outcome.stale:
            raise Exit(code=1)
    elif not outcome.changed:
        print("nothing to rewrite: every base digest is current")


@task(
    help={
        "config": CONFIG_HELP,
        "target": TARGET_HELP,
        "project": "the Python project to build (a directory with pyproject.toml or setup.py; "
        "default: the current directory)",
        "output": "where the wheels go once every build and test passed (default wheelhouse)",
        "report": "the report whose push section holds the digests "
        "(default build/xarch-report.json)",
        "ca_bundle": "an extra CA bundle (PEM) pip in the images must trust, e.g. a "
        "TLS-intercepting proxy's; off by default",
        "jobs": "cibuildwheel runs side by side (default 1; an emulated run keeps about "
        "one core busy, lines are then prefixed by [arch])",
    },
    iterable=["target"],
)
@user_errors
@exclusive()
def wheels(
    c: Context,
    config: str = DEFAULT_CONFIG,
    target: list[str] | None = None,
    project: str = ".",
    output: str = "wheelhouse",
    report: str | None = None,
    ca_bundle: str | None = None,
    jobs: int = 1,
) -> None:
    """Build a project's wheels with the pinned cibuildwheel in the pushed helper images."""
    from xarch.wheels.run import build_wheels

    build_wheels(
        _load(config),
        target or None,
        project=Path(project),
        output=Path(output),
        report=Path(report) if report else None,
        ca_bundle=ca_bundle,
        jobs=jobs,
    )


@task(
    help={
        "config": CONFIG_HELP,
        "target": TARGET_HELP,
        "quick": "fewer repetitions, smaller workloads, one alternative setting (a few "
        "minutes per image; an accelerated image adds its third column)",
        "wheels": "also the wheel row with --quick: cibuildwheel of the sample C extension "
        "in each image against a native build (minutes per image; the full plan has it)",
        "output": "directory for bench.json and bench-emulation.png (default build/bench)",
        "projects": "instead: the real-project table from this project list (e.g. "
        "config/projects/pypi.yaml): each sdist built by cibuildwheel in the plain image "
        "(cibuildwheel's default frontend), in the accelerated one (xarch's) and natively, "
        "with per-step seconds; --target names one accelerated target of --config",
        "project_name": "with --projects: only this project (repeat for several)",
        "plain_config": "with --projects: the config of the plain image, the target of the "
        "same name (default config/offline.yaml)",
        "repeat": "with --projects: rounds of the three sides, their order rotated each "
        "round; the table shows medians and the totals' range (default 1)",
    },
    iterable=["target", "project_name"],
)
@user_errors
@exclusive()
def bench(
    c: Context,
    config: str = DEFAULT_CONFIG,
    target: list[str] | None = None,
    quick: bool = False,
    wheels: bool = False,
    output: str | None = None,
    projects: str | None = None,
    project_name: list[str] | None = None,
    plain_config: str = "config/offline.yaml",
    repeat: int = 1,
) -> None:
    """Measure emulation overhead, QEMU settings, the toolkit's own overhead and image sizes.

    An image with native compiler leaves is measured emulated, accelerated and native.
    With --projects: real PyPI projects, plain / accelerated / native, per step."""
    import dataclasses

    from xarch.bench.bench import bench as run
    from xarch.bench.workloads import FULL, QUICK

    if repeat < 1:
        raise BadInput(f"--repeat {repeat}: give a number of rounds, 1 or more")
    if repeat > 1 and not projects:
        raise BadInput("--repeat applies to --projects only (the other plan repeats itself)")
    if projects:
        _bench_projects(config, target, projects, project_name, plain_config, output, repeat)
        return
    plan = QUICK if quick else FULL
    if wheels:
        plan = dataclasses.replace(plan, wheels=True)
    run(_load(config), target or None, plan=plan, output=Path(output) if output else None)


def _bench_projects(
    config: str,
    target: list[str] | None,
    project_list: str,
    names: list[str] | None,
    plain_config: str,
    output: str | None,
    repeat: int,
) -> None:
    from xarch.bench.projects import bench_projects

    accel_cfg = _load(config)
    chosen = accel_cfg.select(target or None)
    if len(chosen) != 1:
        raise BadInput(
            f"--projects compares one accelerated target with its plain twin: name one with "
            f"--target (of {', '.join(t.name for t in accel_cfg.targets)})"
        )
    [accel] = chosen
    plain_cfg = _load(plain_config)
    [plain] = plain_cfg.select([accel.name])
    bench_projects(
        (plain_cfg, plain),
        (accel_cfg, accel),
        Path(project_list),
        names,
        Path(output) if output else build_dir() / "bench",
        # as the quick start: XARCH_CA_BUNDLE ("" = off), else the host's SSL_CERT_FILE
        ca_bundle=os.environ.get("XARCH_CA_BUNDLE", os.environ.get("SSL_CERT_FILE", "")) or None,
        repeat=repeat,
    )


ns = Collection()
for _t in (
    build_images,
    push_images,
    test_images,
    registry_up,
    registry_down,
    registry_status,
    report,
    doctor,
    binfmt_install,
    binfmt_uninstall,
    binfmt_status,
    pull_images,
    provision_runner,
    ci_config,
    push_arch,
    push_index,
    pin,
    wheels,
    bench,
):
    ns.add_task(_t)
