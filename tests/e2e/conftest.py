"""Fixtures of the end-to-end tests: real cibuildwheel (from PyPI, in xarch's venv) in
the offline helper images as the quick start pushed them, on the real engine, registry
and binfmt_misc handlers. Nothing here changes the host: the tests skip, saying what to
run, when the images were not pushed, the registry does not answer, or no handler for
an architecture is registered.

The sample projects under projects/ are built by cibuildwheel, not collected here:
their own suites run inside the images through cibuildwheel's test-command.

Environment:
  XARCH_E2E_CONFIG     the config whose pushed images are used (default config/offline.yaml)
  XARCH_E2E_REPORT     the report holding its push record (default build/xarch-report.json)
  XARCH_E2E_CA_BUNDLE  the extra CA bundle for pip in the images (default: $SSL_CERT_FILE,
                       else this Python's default CA file; "" turns it off)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from xarch.errors import XarchError
from xarch.host import binfmt, qemu
from xarch.host.binfmt import list_entries
from xarch.model.arch import get_arch
from xarch.model.config import Config, Target, load_config
from xarch.model.report import read_report
from xarch.publish.pull import PushedRef, pushed_refs

collect_ignore_glob = ["projects/*"]

REPO_ROOT = Path(__file__).resolve().parents[2]
PROJECTS = Path(__file__).resolve().parent / "projects"
QUICK_START = (
    "build and push the offline images first (the quick start does): "
    "`invoke registry-up`, `invoke build-images --config config/offline.yaml`, "
    "`invoke push-images --config config/offline.yaml`"
)


@dataclass(frozen=True)
class Pushed:
    config: Config
    report: Path
    refs: dict[str, PushedRef]

    @property
    def targets(self) -> tuple[Target, ...]:
        return self.config.targets


@pytest.fixture(scope="session")
def pushed() -> Pushed:
    """The config's helper images as pushed (by digest), with the registry answering."""
    config = load_config(
        Path(os.environ.get("XARCH_E2E_CONFIG", REPO_ROOT / "config/offline.yaml"))
    )
    report = Path(os.environ.get("XARCH_E2E_REPORT", REPO_ROOT / "build/xarch-report.json"))
    try:
        refs = pushed_refs(read_report(report), config, config.targets, report)
    except XarchError as e:
        pytest.skip(f"{e}\n{QUICK_START}")
    url = f"http://{config.registry.address}/v2/"
    try:
        urllib.request.urlopen(url, timeout=5).close()
    except urllib.error.HTTPError:
        pass  # 401 and the like: it answers
    except OSError as e:
        pytest.skip(
            f"the registry {config.registry.address} does not answer ({e}); "
            "start it with `invoke registry-up`"
        )
    if shutil.which("docker") is None and not Path("/var/run/docker.sock").exists():
        pytest.skip("no Docker engine here (cibuildwheel needs one)")
    return Pushed(config=config, report=report, refs=refs)


@pytest.fixture(scope="session")
def handlers() -> set[str]:
    """The architectures with an enabled binfmt_misc handler (read, never changed)."""
    try:
        entries = list_entries()
    except XarchError as e:
        pytest.skip(f"binfmt_misc cannot be read: {e}")
    return {a.name for e in entries if e.enabled and (a := e.arch()) is not None}


@pytest.fixture(scope="session")
def ca_bundle() -> str | None:
    value = os.environ.get("XARCH_E2E_CA_BUNDLE")
    if value is not None:
        return value or None
    for candidate in (os.environ.get("SSL_CERT_FILE"), ssl.get_default_verify_paths().cafile):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def need_handler(handlers: set[str], arch: str) -> None:
    if arch not in handlers:
        pytest.skip(
            f"no enabled binfmt_misc handler for {arch}: register one first "
            f"(`invoke binfmt-install --arch {arch}`); these tests do not change binfmt_misc"
        )


def copy_project(name: str, tmp_path: Path) -> Path:
    """A fresh copy of a sample project (cibuildwheel runs in the copy)."""
    dest = tmp_path / name
    shutil.copytree(PROJECTS / name, dest)
    return dest


#: ppc64le, s390x (bookworm) and riscv64 (trixie): stand-ins with CPython 3.9 built from
#: source (issue 17).
EMULATED_CONFIG = REPO_ROOT / "config" / "offline-emulated.yaml"
INVOKE = str(Path(sys.executable).with_name("invoke"))


def _quiet(_: str) -> None:
    pass


def invoke(*args: str, log: Path, report: Path | None = None) -> subprocess.CompletedProcess[str]:
    """A task as a user runs it (the CLI), its output appended to `log`; with `report`,
    the build directory is the report's."""
    with log.open("a") as out:
        out.write(f"\n+ invoke {' '.join(args)}\n")
    env = {**os.environ, **({"XARCH_BUILD_DIR": str(report.parent)} if report else {})}
    r = subprocess.run(
        [INVOKE, *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False, env=env
    )
    with log.open("a") as out:
        out.write(r.stdout + r.stderr)
    return r


@pytest.fixture(scope="session")
def emulated(pushed: Pushed, tmp_path_factory: pytest.TempPathFactory) -> Pushed:
    """config/offline-emulated.yaml's helper images, built and pushed by this code.

    Always through `build-images` and `push-images`: quick when nothing changed (the
    root filesystems, with the interpreter, are cached; an unchanged image is not built
    again, its layers are not pushed again), and never the report's images of an older
    build, which the registry may no longer hold or which an earlier version of the code
    made."""
    config = load_config(EMULATED_CONFIG)
    report = pushed.report
    log = tmp_path_factory.mktemp("emulated") / "build.log"
    for task in ("build-images", "push-images"):
        r = invoke(task, "--config", str(EMULATED_CONFIG), log=log, report=report)
        assert r.returncode == 0, f"invoke {task} failed:\n{(r.stdout + r.stderr)[-3000:]}"
    refs = pushed_refs(read_report(report), config, config.targets, report)
    return Pushed(config=config, report=report, refs=refs)


@contextlib.contextmanager
def handler_only(arch_name: str, flags: str) -> Iterator[None]:
    """Only a handler of these flags for the architecture; the host's put back after."""
    if not binfmt.is_available():
        pytest.skip("binfmt_misc is not mounted")
    arch = get_arch(arch_name)
    with binfmt.preserved(log=_quiet):
        for e in binfmt.entries_for(arch):
            binfmt.unregister(e.name, log=_quiet)
        path = arch.emulator_path if flags == "" else str(_pinned_emulator(arch_name))
        with binfmt.temporary_handler(arch, path, flags=flags, log=_quiet):
            yield


def _pinned_emulator(arch_name: str) -> Path:
    config = load_config(EMULATED_CONFIG)
    return qemu.ensure_emulators(config.qemu, [get_arch(arch_name)], _quiet)[arch_name]
