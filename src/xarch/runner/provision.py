"""provision-runner: turn a Debian or Ubuntu host into a runner for every
configured image, idempotently.

The host is inspected first, without changing anything, into a plan: one step
per thing that is or is not in place (the Docker engine; per target the helper
image by digest, checked against the config; binfmt_misc and, per architecture,
the pinned emulator, its binfmt handler and its binfmt.d file). ``--dry-run``
prints that plan. A real run prints ``ok: ... (unchanged)`` for each step already
in place and carries out the others in that order, each external command printed
as ``+ ...`` before it runs; then doctor says whether every image runs. A run that
finds everything in place says "nothing to change".

What can be refused is refused before the first change: an unsupported host, a
report without digests, a conflicting binfmt handler (without --force), an image
already present that does not match the config. Images come before handlers, so
an image that turns out wrong after its pull stops the run with binfmt_misc
untouched.

Everything the plan touches on the host can be redirected by a keyword argument
(apt-get, systemctl, the systemd marker, dockerd, the emulator and binfmt.d
directories, the os-release file), so the tests run the real code on the CI
machine without leaving anything behind.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from xarch.errors import BadInput, EngineUnavailable, TestFailure, XarchError
from xarch.host import binfmt, qemu
from xarch.host import emulators as hostemu
from xarch.images.installer import local_probe_image
from xarch.model.arch import Arch, host_arch
from xarch.model.config import Config
from xarch.model.report import read_report, report_path
from xarch.oci.engine import Engine
from xarch.publish.pull import PullOutcome, PushedRef, image_mismatches, pull_one, pushed_refs
from xarch.runner.doctor import DoctorReport, diagnose, render

Log = Callable[[str], None]

SUPPORTED_IDS = ("debian", "ubuntu")
DOCKERD_LOG = Path("/var/log/xarch-dockerd.log")
#: systemctl is-enabled answers that mean "starts at boot" (or cannot be disabled).
ENABLED_STATES = ("enabled", "enabled-runtime", "static", "alias", "indirect", "generated")


@dataclass(frozen=True, kw_only=True)
class HostInfo:
    os_id: str
    os_like: tuple[str, ...]
    pretty_name: str
    apt_get: str  # resolved path


def read_os_release(path: Path) -> dict[str, str]:
    """KEY=value pairs of an os-release file (values unquoted as a shell would)."""
    out: dict[str, str] = {}
    for raw in path.read_text(errors="replace").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        try:
            words = shlex.split(value)
        except ValueError:
            words = [value]
        out[key.strip()] = " ".join(words)
    return out


def check_host(
    *, os_release: Path = Path("/etc/os-release"), apt_get: str = "apt-get", euid: int | None = None
) -> HostInfo:
    """Refuse hosts provision-runner does not support (BadInput, exit 2), in the order
    a user would fix them: root, then the distribution, then apt-get."""
    if (os.geteuid() if euid is None else euid) != 0:
        raise BadInput(
            "provision-runner needs root (it installs packages, starts the Docker engine and "
            "registers binfmt_misc handlers): run it with sudo or as root"
        )
    try:
        info = read_os_release(os_release)
    except OSError as e:
        raise BadInput(
            f"cannot read {os_release} ({e.strerror}); provision-runner supports Debian and "
            "Ubuntu hosts (and their derivatives) only"
        ) from None
    os_id = info.get("ID", "").lower()
    like = tuple(info.get("ID_LIKE", "").lower().split())
    if os_id not in SUPPORTED_IDS and not set(like) & set(SUPPORTED_IDS):
        name = info.get("PRETTY_NAME") or os_id or "unknown"
        raise BadInput(
            f"this host is {name} (ID={os_id or '?'}"
            f"{', ID_LIKE=' + ' '.join(like) if like else ''} in {os_release}); "
            "provision-runner supports Debian and Ubuntu hosts (and distributions whose "
            "ID_LIKE names them) only.\n"
            "  Elsewhere: install and start a Docker engine yourself, then run "
            "`invoke binfmt-install --persist --arch all` and `invoke pull-images`."
        )
    found = shutil.which(apt_get)
    if found is None:
        raise BadInput(
            f"{apt_get} not found: provision-runner installs packages with apt-get "
            "(Debian and Ubuntu hosts only)"
        )
    return HostInfo(
        os_id=os_id, os_like=like, pretty_name=info.get("PRETTY_NAME", os_id), apt_get=found
    )


@dataclass
class Step:
    """One thing a runner needs: in place (``ok``) or to be done by ``apply``."""

    what: str  # what is in place, or what will be done
    ok: bool
    commands: list[str] = field(default_factory=list)  # shown by --dry-run
    apply: Callable[[], None] | None = None
    fails: bool = False  # known already to fail (an image present that does not match)


@dataclass
class ProvisionResult:
    steps: list[Step]
    dry_run: bool
    doctor: DoctorReport | None = None

    @property
    def changes(self) -> list[Step]:
        return [s for s in self.steps if not s.ok]

    @property
    def ok(self) -> bool:
        return self.doctor is None or self.doctor.ok


def _docker_version() -> str | None:
    """The engine's version when a daemon answers (DOCKER_HOST respected), else None."""
    try:
        engine = Engine.connect(timeout=10)
    except EngineUnavailable:
        return None
    return str(engine.version().get("Version", "?"))


def _run(argv: list[str], log: Log, env: dict[str, str] | None = None) -> None:
    log("+ " + shlex.join(argv))
    r = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        tail = "\n".join((r.stderr or r.stdout).strip().splitlines()[-5:])
        raise XarchError(f"`{shlex.join(argv)}` failed (exit {r.returncode}):\n{tail}")


@dataclass(frozen=True, kw_only=True)
class Tools:
    """The host programs and places provision-runner uses (overridable for tests)."""

    apt_get: str = "apt-get"
    systemctl: str = "systemctl"
    systemd_dir: Path = Path("/run/systemd/system")  # exists when systemd runs (sd_booted)
    dockerd: str = "dockerd"
    dockerd_log: Path = DOCKERD_LOG
    docker_wait: float = 60.0  # seconds to wait for a started engine to answer

    @property
    def systemd_runs(self) -> bool:
        return self.systemd_dir.is_dir()


def _docker_steps(tools: Tools, version: str | None, log: Log) -> list[Step]:
    steps: list[Step] = []
    if version is not None:
        steps.append(Step(f"Docker engine {version} answers", ok=True))
        if tools.systemd_runs:
            r = subprocess.run(
                [tools.systemctl, "is-enabled", "docker"],
                capture_output=True,
                text=True,
                check=False,
            )
            state = r.stdout.strip()
            if state == "disabled":
                cmd = [tools.systemctl, "enable", "docker"]
                steps.append(
                    Step(
                        "enable the Docker engine at boot (systemd)",
                        ok=False,
                        commands=[shlex.join(cmd)],
                        apply=lambda: _run(cmd, log),
                    )
                )
            elif state in ENABLED_STATES:
                steps.append(Step(f"docker.service starts at boot ({state})", ok=True))
            else:
                log(
                    f"note: systemd does not know docker.service ({state or 'no answer'}); "
                    "make sure this engine starts at boot"
                )
        return steps

    if shutil.which(tools.dockerd) is None:
        update = [tools.apt_get, "update", "-q"]
        install = [
            tools.apt_get,
            "install",
            "-y",
            "-q",
            "--no-install-recommends",
            "docker.io",
        ]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}

        def install_docker() -> None:
            _run(update, log, env)
            _run(install, log, env)

        steps.append(
            Step(
                "install the Docker engine (Debian/Ubuntu package docker.io)",
                ok=False,
                commands=[shlex.join(update), shlex.join(install)],
                apply=install_docker,
            )
        )
    if tools.systemd_runs:
        start = [tools.systemctl, "enable", "--now", "docker"]
        shown = [shlex.join(start)]
    else:
        start = [tools.dockerd]
        shown = [f"{tools.dockerd} >{tools.dockerd_log} 2>&1 &   # no systemd here"]

    def start_docker() -> None:
        if tools.systemd_runs:
            _run(start, log)
        else:
            log(f"+ {shown[0]}")
            tools.dockerd_log.parent.mkdir(parents=True, exist_ok=True)
            with tools.dockerd_log.open("ab") as out:
                try:
                    subprocess.Popen(
                        start,
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                except OSError as e:
                    raise EngineUnavailable(
                        f"cannot start {tools.dockerd}: {e.strerror}; install the Docker engine "
                        "(`apt-get install docker.io`) and retry"
                    ) from None
        deadline = time.monotonic() + tools.docker_wait
        while time.monotonic() < deadline:
            v = _docker_version()
            if v is not None:
                log(f"  Docker engine {v} answers")
                return
            time.sleep(1)
        where = "journalctl -u docker" if tools.systemd_runs else str(tools.dockerd_log)
        raise EngineUnavailable(
            f"the Docker engine did not answer within {tools.docker_wait:.0f}s of starting it; "
            f"see {where}"
        )

    steps.append(
        Step(
            "start the Docker engine" + (" and enable it at boot" if tools.systemd_runs else ""),
            ok=False,
            commands=shown,
            apply=start_docker,
        )
    )
    return steps


def runner_arches(config: Config) -> list[Arch]:
    """The foreign architectures of the configured targets, in config order."""
    host = host_arch()
    out: list[Arch] = []
    for t in config.targets:
        if t.arch.name != host.name and t.arch not in out:
            out.append(t.arch)
    return out


def _binfmt_steps(
    config: Config,
    *,
    root: Path,
    install_dir: Path | None,
    persist_dir: Path | None,
    force: bool,
    log: Log,
) -> list[Step]:
    steps: list[Step] = []
    available = binfmt.is_available(root)
    if available:
        steps.append(Step(f"binfmt_misc is mounted at {root}", ok=True))
    else:
        steps.append(
            Step(
                f"mount binfmt_misc at {root}",
                ok=False,
                commands=[f"mount -t binfmt_misc binfmt_misc {root}"],
                apply=lambda: _mount(root, log),
            )
        )
    entries = binfmt.list_entries(root) if available else []
    pin = config.qemu
    problems: list[str] = []
    for a in runner_arches(config):
        plan = hostemu.plan_handler(a, hostemu.wanted_entry(a, "F", install_dir), entries)
        want = plan.want
        dest = hostemu.emulator_path(a, install_dir)
        conf = hostemu.persist_path(a, persist_dir)
        problems += plan.problems()
        todo: list[str] = []
        commands: list[str] = []
        if not (dest.is_file() and qemu.sha256_file(dest) == pin.sha256_for(a)):
            cached = qemu.emulator_dir(pin) / a.qemu_binary
            if not (cached.is_file() and qemu.sha256_file(cached) == pin.sha256_for(a)):
                todo.append(f"fetch {a.qemu_binary} (QEMU {pin.version})")
            todo.append(f"install it at {dest}")
            commands.append(f"install -m 0755 {cached} {dest}")
        if plan.action == "replace":
            todo.append(f"replace the binfmt handler {want.name} (flags {want.flags})")
            commands += [f"echo -1 > {root / e.name}" for e in plan.conflicts]
        if plan.identical is None and plan.action in ("register", "replace"):
            if plan.action == "register":
                todo.append(f"register the binfmt handler {want.name} (flags {want.flags})")
            line = binfmt.registration_line(want.name, a, want.interpreter, want.flags)
            commands.append(f"echo '{line}' > {root / 'register'}")
        elif plan.identical is not None and not plan.identical.enabled:
            todo.append(f"enable the existing binfmt handler {want.name}")
            commands.append(f"echo 1 > {root / want.name}")
        content = hostemu.persist_content(want.registration_line())
        if not (conf.is_file() and conf.read_text() == content):
            todo.append(f"write {conf} (registers it again at boot)")
            commands.append(f"write {conf}")
        if not todo:
            steps.append(
                Step(
                    f"{a.name}: {a.qemu_binary} pinned at {dest}, handler {want.name} "
                    f"(flags {want.flags}), persisted in {conf}",
                    ok=True,
                )
            )
            continue

        def apply(arch: Arch = a) -> None:
            [o] = hostemu.install(
                pin,
                [arch.name],
                flags="F",
                persist=True,
                force=force,
                root=root,
                install_dir=install_dir,
                persist_dir=persist_dir,
                log=log,
            )
            log(f"  {o.summary()}")

        steps.append(
            Step(f"{a.name}: " + "; ".join(todo), ok=False, commands=commands, apply=apply)
        )
    if problems and not force:
        raise hostemu.conflict_error(problems)
    return steps


def _mount(root: Path, log: Log) -> None:
    if not binfmt.is_available(root):
        binfmt.mount(root, log=log)


def _image_steps(
    config: Config,
    refs: dict[str, PushedRef],
    *,
    engine_up: bool,
    log: Log,
    failures: list[XarchError],
) -> list[Step]:
    steps: list[Step] = []
    engine = Engine.connect() if engine_up else None
    for t in config.targets:
        pushed = refs[t.name]
        pull_cmd = f"docker pull --platform {t.arch.platform} {pushed.ref}"
        attrs = engine.inspect(pushed.ref) if engine is not None else None
        wrong = image_mismatches(attrs, config, t) if attrs is not None else []
        if engine is not None and attrs is not None and not wrong:
            tagged = [(engine.inspect(ref) or {}).get("Id") for ref in pushed.tag_refs]
            if all(i == attrs["Id"] for i in tagged):
                steps.append(
                    Step(
                        f"{t.name}: {pushed.ref} present, checked, tagged "
                        f"{', '.join(pushed.tag_refs)}",
                        ok=True,
                    )
                )
                continue
        if wrong:
            steps.append(
                Step(
                    f"{t.name}: {pushed.ref} is present but does not match the config: "
                    + "; ".join(wrong),
                    ok=False,
                    fails=True,
                )
            )
            continue
        if attrs is not None:
            what = f"{t.name}: tag {pushed.ref} (present, checked)"
            commands = [f"docker tag {pushed.ref} {ref}" for ref in pushed.tag_refs]
        else:
            what = (
                f"{t.name}: pull {pushed.ref} ({t.arch.platform}), check it against the "
                "config, tag it"
            )
            commands = [pull_cmd] + [f"docker tag {pushed.ref} {ref}" for ref in pushed.tag_refs]

        def apply(target_name: str = t.name) -> None:
            target = next(x for x in config.targets if x.name == target_name)
            result = pull_one(Engine.connect(), config, target, refs[target_name], log=log)
            if result.status != "ok":
                err = PullOutcome(report="", images=[result]).failure()
                if err is not None:
                    failures.append(err)

        steps.append(Step(what, ok=False, commands=commands, apply=apply))
    return steps


def provision_runner(
    config: Config,
    *,
    dry_run: bool = False,
    report: Path | None = None,
    force: bool = False,
    probe: bool = True,
    log: Log = print,
    os_release: Path = Path("/etc/os-release"),
    tools: Tools | None = None,
    root: Path = binfmt.BINFMT_DIR,
    install_dir: Path | None = None,
    persist_dir: Path | None = None,
) -> ProvisionResult:
    """Plan, then (unless ``dry_run``) carry out and check the runner's setup.

    Raises BadInput (exit 2) for unsupported hosts and refused changes before
    anything is changed; TestFailure (exit 1) when an image fails its check.
    """
    tools = tools or Tools()
    host = check_host(os_release=os_release, apt_get=tools.apt_get)
    report_file = report or report_path()
    data = read_report(report_file)
    refs = pushed_refs(data, config, config.targets, report_file)

    mode = "plan (--dry-run: nothing will be changed)" if dry_run else "provisioning"
    log(f"== provision-runner: {mode}")
    log(
        f"   host {host.pretty_name}, config {config.path}, {len(config.targets)} target(s), "
        f"digests from {report_file}"
    )
    version = _docker_version()
    engine_steps = _docker_steps(tools, version, log)
    binfmt_steps = _binfmt_steps(
        config,
        root=root,
        install_dir=install_dir,
        persist_dir=persist_dir,
        force=force,
        log=log,
    )
    failures: list[XarchError] = []
    image_steps = _image_steps(
        config, refs, engine_up=version is not None, log=log, failures=failures
    )
    # Images before handlers: a wrong image stops the run before binfmt_misc is touched.
    phases = (engine_steps, image_steps, binfmt_steps)
    result = ProvisionResult(steps=[s for phase in phases for s in phase], dry_run=dry_run)
    known_bad = [s for s in image_steps if s.fails]
    n = len(result.changes)

    if dry_run:
        for s in result.steps:
            if s.ok:
                log(f"ok: {s.what} (unchanged)")
            else:
                log(f"would: {s.what}")
                for c in s.commands:
                    log(f"    + {c}")
        log("would: run doctor")
        log("")
        log(
            "nothing to change: this host is already a runner for this config"
            if n == 0
            else f"plan: {n} change(s); run without --dry-run to carry them out"
        )
        if known_bad:
            raise _image_failure(known_bad)
        return result

    if known_bad:
        raise _image_failure(known_bad)
    for phase in phases:
        for s in phase:
            if s.ok:
                log(f"ok: {s.what} (unchanged)")
                continue
            log(f"== {s.what}")
            assert s.apply is not None
            s.apply()
        if failures:
            raise TestFailure(
                "\n".join(str(f) for f in failures)
                + "\n  Nothing after the image check was changed (binfmt_misc untouched)."
            )

    log("")
    result.doctor = diagnose(
        config, root=root, probe_image=_probe_image(config, probe), probe_containers=probe
    )
    log(render(result.doctor))
    log("")
    log(
        "nothing to change: this host is already a runner for this config"
        if n == 0
        else f"provisioned: {n} change(s)"
    )
    if not result.doctor.ok:
        raise TestFailure(
            "doctor says some targets would not run on this host (see the fix lines above)"
        )
    return result


def _image_failure(steps: list[Step]) -> TestFailure:
    return TestFailure(
        "helper image(s) present on this host do not match the config; nothing was changed:\n"
        + "\n".join(f"  - {s.what}" for s in steps)
        + "\n  Remove them (`docker rmi NAME@DIGEST`) or use the config and report they were "
        "pushed with."
    )


def _probe_image(config: Config, probe: bool) -> str | None:
    return local_probe_image(config) if probe else None
