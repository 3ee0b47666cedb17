"""A native x86_64 uv in place of a helper image's own (issue 16, item 2).

uv's PyPI wheel ``uv-<version>-py3-none-musllinux_1_1_x86_64.whl`` carries a static
x86_64 binary, which the kernel runs natively inside an emulated container. uv takes the
target platform from the interpreter it is given (its query script runs under the
interpreter, so under emulation: ``platform.machine()`` is the image's), so the native
uv installs and builds for the image's architecture. Where it uses its own architecture
(Python downloads, the interpreter cache's shard key), the image sets
``UV_PYTHON_DOWNLOADS=never`` and the probe keeps one cache per side.

A target asks for it with ``native-uv:`` (uv version -> sha256 of the x86_64 wheel).
At build time xarch reads the base's own ``uv --version`` (emulated), refuses a base
without uv or a version without a pin (exit 2, naming both), fetches the pinned wheel
(pip, hashes required), and ``setup-uv.sh`` hooks the base's uv: the original stays as
``<path>.xarch-emulated``, reached with ``XARCH_NATIVE_TOOLS=0`` as for the compiler
leaves (the same static hook, ``resources/native/hook.c``).

Before the image gets its tag, the **uv probe** (:func:`run_uv_probe`) runs in it: the
interpreter's own view of its platform and tags against what the native and the
emulated uv install from a generated set of wheels (one per tag under test), the
installed files both ways, a negative control (the same install told to take an x86_64
platform must differ), and a ``uv build`` of a small C extension whose wheel must be
tagged for, and contain ELF code of, the image's architecture.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xarch.errors import BadInput, ChecksumMismatch, FetchError, XarchError
from xarch.images.native import labels_record, run_in_base
from xarch.images.resources import resource_text
from xarch.model import faults, manylinux
from xarch.model.arch import Arch
from xarch.model.hashing import sha256_file
from xarch.oci.engine import Engine

Log = Callable[[str], None]

NATIVE_PREFIX = "/opt/xarch/native"
CONTEXT_DIR = "xarch-uv"
LABEL_PREFIX = "org.xarch.uv"
WHEEL_PLATFORM = "musllinux_1_1_x86_64"
PROBE_DIR_IN_IMAGE = "/xarch-uv-probe"
#: ELF e_machine of each architecture's code (the ELF specification's EM_* numbers).
ELF_MACHINE = {"aarch64": 183, "armv7l": 40, "ppc64le": 21, "s390x": 22, "riscv64": 243}
#: The interpreter the probe runs with: cibuildwheel's utility interpreter, else any.
PROBE_PYTHON = (
    "for p in /opt/python/cp39-cp39/bin/python /opt/python/cp3*-cp3*/bin/python; "
    'do [ -x "$p" ] && exec "$p" "$@"; done; echo "no /opt/python interpreter" >&2; exit 3'
)


class UvProbeFailed(XarchError):
    """The native uv did not do what the image's own uv and interpreter do: exit 1, the
    image is not tagged."""


@dataclass(frozen=True, kw_only=True)
class UvContext:
    dockerfile_lines: tuple[str, ...]
    labels: Mapping[str, str]


# ----------------------------------------------------------------------------- pins


#: Run in the base (emulated): uv's version as cibuildwheel would find it (`which uv`).
VERSION_SCRIPT = "command -v uv >/dev/null 2>&1 || exit 0; uv --version"


def base_uv_version(engine: Engine, image: str, arch: Arch) -> str:
    """The version of the uv on the base's PATH ("" when there is none)."""
    out = run_in_base(
        engine, image, arch, VERSION_SCRIPT,
        what="the uv version", off="remove native-uv from this target",
    )  # fmt: skip
    m = re.search(r"^uv (\d+\.\d+\.\d+)", out.strip(), re.MULTILINE)
    return m.group(1) if m else ""


def require_pin(config_path: Path, target: str, pins: Mapping[str, str], version: str) -> str:
    """The sha256 pinned for the base's uv ``version``; exit 2 naming both otherwise."""
    key = f"{config_path}: targets[{target}].native-uv"
    if not version:
        raise BadInput(
            f"{key}: the base has no uv on PATH, so there is nothing to replace; remove "
            "native-uv from this target (cibuildwheel's uv frontends need a uv in the base)"
        )
    if version not in pins:
        raise BadInput(
            f"{key}: the base's uv is {version}, but the pins are for "
            f'{", ".join(sorted(pins))}\n  hint: add "{version}": <sha256 of '
            f"uv-{version}-py3-none-{WHEEL_PLATFORM}.whl> (a native uv of another version "
            "would not be the same program)"
        )
    return pins[version]


def fetch_wheel(version: str, sha256: str, store: Path, log: Log = print) -> Path:
    """The pinned x86_64 uv wheel from xarch's cache, downloaded by pip (hash required)
    when missing. A hash pip refuses is ChecksumMismatch naming both hashes."""
    return _download(
        f"uv=={version}", sha256, store, [f"--platform={WHEEL_PLATFORM}"],
        f"uv {version} ({WHEEL_PLATFORM})", log,
    )  # fmt: skip


def probe_setuptools(store: Path, log: Log = print) -> Path:
    """setuptools as the stand-ins pin it (requirements-python.txt): the probe's real
    wheel from PyPI, and the backend its C extension is built with."""
    text = resource_text("standin-manylinux/requirements-python.txt")
    m = re.search(r"^setuptools==(\S+) --hash=sha256:([0-9a-f]{64})", text, re.MULTILINE)
    assert m, "requirements-python.txt pins setuptools"
    return _download(f"setuptools=={m[1]}", m[2], store, [], f"setuptools {m[1]}", log)


def _download(
    requirement: str, sha256: str, store: Path, extra: Sequence[str], what: str, log: Log
) -> Path:
    store.mkdir(parents=True, exist_ok=True)
    name, _, version = requirement.partition("==")
    for f in store.glob(f"{name}-{version}-*.whl"):
        if sha256_file(f) == sha256:
            return f
    with tempfile.TemporaryDirectory(prefix=".download-", dir=store) as tmp:
        req = Path(tmp) / "requirements.txt"
        req.write_text(f"{requirement} --hash=sha256:{sha256}\n")
        cmd = [
            sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
            "--no-deps", "--require-hashes", "--only-binary=:all:", "--python-version=3.9",
            *extra, f"--dest={tmp}/out", "-r", str(req),
        ]  # fmt: skip
        log("+ " + " ".join(cmd))
        r = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if r.returncode != 0:
            got = re.search(r"Got\s+([0-9a-f]{64})", r.stderr or "")
            if got:
                raise ChecksumMismatch(
                    f"{what} from the package index has sha256 {got.group(1)}, the config "
                    f"pins {sha256}; nothing was built"
                )
            tail = "\n    ".join((r.stderr or r.stdout).strip().splitlines()[-6:])
            fault = faults.recognise(
                r.stderr + r.stdout, path=str(store), host=faults.pip_index_host()
            )
            raise FetchError(
                f"pip could not download {what}:\n    {tail}" + (f"\n  {fault}" if fault else "")
            )
        [whl] = list((Path(tmp) / "out").glob("*.whl"))
        dest = store / whl.name
        shutil.move(str(whl), dest)
    return dest


def extract_binary(wheel: Path, dest: Path) -> str:
    """uv's binary out of the wheel (``uv-<v>.data/scripts/uv``); its sha256."""
    with zipfile.ZipFile(wheel) as z:
        [member] = [n for n in z.namelist() if re.fullmatch(r"uv-[^/]+\.data/scripts/uv", n)]
        data = z.read(member)
    if data[:4] != b"\x7fELF" or int.from_bytes(data[18:20], "little") != 62:
        raise XarchError(f"{wheel.name}: {member} is not an x86_64 ELF executable")
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data)
    dest.chmod(0o755)
    return hashlib.sha256(data).hexdigest()


def dockerfile_lines() -> tuple[str, ...]:
    """Fixed lines (part of the inputs hash, known before the base is read): the version
    setup-uv.sh expects is in the context's uv/VERSION, read from the base."""
    return (
        f"COPY {CONTEXT_DIR}/ {NATIVE_PREFIX}/",
        f'RUN ["/bin/sh", "{NATIVE_PREFIX}/uv/setup-uv.sh"]',
        # uv would download Pythons for its own (x86_64) architecture: never here.
        "ENV UV_PYTHON_DOWNLOADS=never",
    )


#: Package resources that shape the native-uv image or its proof.
RESOURCES = ("native/hook.c", "native/setup-uv.sh", "native/uv-probe.py")


def resources_digest() -> str:
    h = hashlib.sha256()
    for name in RESOURCES:
        h.update(name.encode() + b"\0" + resource_text(name).encode() + b"\0")
    return "sha256:" + h.hexdigest()


def pin_labels(pins: Mapping[str, str]) -> dict[str, str]:
    """Labels known before the base is read (part of the build's inputs)."""
    return {
        f"{LABEL_PREFIX}.pins": ",".join(f"{v}@sha256:{s}" for v, s in sorted(pins.items())),
        f"{LABEL_PREFIX}.resources": resources_digest(),
    }


def prepare_context(
    version: str, wheel: Path, wheel_sha256: str, context: Path, build_hook: Callable[[Path], None]
) -> UvContext:
    """Write ``context/xarch-uv`` (the binary, the setup script, the hook)."""
    out = context / CONTEXT_DIR
    if out.exists():
        shutil.rmtree(out)
    binary_sha = extract_binary(wheel, out / "uv" / "uv")
    (out / "uv" / "VERSION").write_text(version + "\n")
    setup = out / "uv" / "setup-uv.sh"
    setup.write_text(resource_text("native/setup-uv.sh"))
    setup.chmod(0o755)
    (out / "bin").mkdir(parents=True)
    build_hook(out / "bin" / "xarch-hook")
    return UvContext(
        dockerfile_lines=dockerfile_lines(),
        labels={
            f"{LABEL_PREFIX}.version": version,
            f"{LABEL_PREFIX}.wheel": (
                f"uv-{version}-py3-none-{WHEEL_PLATFORM}.whl@sha256:{wheel_sha256}"
            ),
            f"{LABEL_PREFIX}.binary": f"sha256:{binary_sha}",
            f"{LABEL_PREFIX}.probe": "pending",
        },
    )


def record_from_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """The report's ``uv`` record of a built image, as its labels say."""
    return labels_record(labels, LABEL_PREFIX, ("version", "binary", "probe"))


def status_from_labels(labels: Mapping[str, str]) -> str:
    """One line for doctor and the report: the image's uv, native or not, proven or not."""
    version = labels.get(f"{LABEL_PREFIX}.version")
    if not version:
        return "uv: the image's own (emulated)"
    probe = labels.get(f"{LABEL_PREFIX}.probe", "")
    if probe.startswith("passed"):
        return f"uv {version}: native x86_64, probe {probe}"
    return f"uv {version}: native x86_64 NOT proven (probe: {probe or 'missing'})"


# ----------------------------------------------------------------------------- probe


def probe_tags(arch: Arch) -> list[str]:
    """The wheel tags the probe offers: the image's own platform at every manylinux
    level (some newer than any glibc here), its legacy and plain linux tags, musllinux,
    the host's x86_64 and another architecture, several Python and ABI tags."""
    m = arch.uname_m
    other = "s390x" if m != "s390x" else "aarch64"
    plats = [
        *(f"manylinux_2_{n}_{m}" for n in (17, 24, 28, 31, 34, 36, 39, 41, 99)),
        f"manylinux2014_{m}",
        f"linux_{m}",
        f"musllinux_1_2_{m}",
        "manylinux_2_17_x86_64",
        f"manylinux_2_17_{other}",
    ]
    out = [f"py3-none-{p}" for p in plats]
    out += [f"cp39-cp39-manylinux_2_17_{m}", f"cp39-abi3-manylinux_2_17_{m}"]
    out += [f"cp311-cp311-manylinux_2_17_{m}", f"cp313-cp313-manylinux_2_17_{m}"]
    out += ["py2.py3-none-any", "py3-none-any"]
    return out


def _wheel(directory: Path, name: str, version: str, tag: str) -> None:
    dist = f"{name}-{version}"
    files = {
        f"{name}/__init__.py": f"TAG = {tag!r}\n".encode(),
        f"{dist}.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        ).encode(),
        f"{dist}.dist-info/WHEEL": (
            f"Wheel-Version: 1.0\nGenerator: xarch\nRoot-Is-Purelib: true\nTag: {tag}\n"
        ).encode(),
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist}.dist-info/RECORD,,")
    files[f"{dist}.dist-info/RECORD"] = ("\n".join(record) + "\n").encode()
    with zipfile.ZipFile(directory / f"{dist}-{tag}.whl", "w") as z:
        for path, data in files.items():
            info = zipfile.ZipInfo(path, date_time=(2020, 1, 1, 0, 0, 0))
            z.writestr(info, data)


def probe_package(i: int) -> str:
    return f"xarch_uv_probe_{i:02d}"


EXT_C = r"""#include <Python.h>
static PyObject *answer(PyObject *self, PyObject *args) { return PyLong_FromLong(42); }
static PyMethodDef methods[] = {{"answer", answer, METH_NOARGS, ""}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef mod = {PyModuleDef_HEAD_INIT, "xarch_uv_probe", NULL, -1, methods};
PyMODINIT_FUNC PyInit_xarch_uv_probe(void) { return PyModule_Create(&mod); }
"""
EXT_PYPROJECT = """[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "xarch-uv-probe-ext"
version = "1.0"
"""
EXT_SETUP = """from setuptools import Extension, setup
setup(ext_modules=[Extension("xarch_uv_probe", ["probe.c"])])
"""


def write_probe_dir(directory: Path, arch: Arch, setuptools_wheel: Path) -> list[str]:
    """The probe's inputs (wheels/, ext/, uv-probe.py); the tag of each probe package."""
    wheels = directory / "wheels"
    wheels.mkdir(parents=True)
    tags = probe_tags(arch)
    for i, tag in enumerate(tags):
        _wheel(wheels, probe_package(i), "1.0", "py3-none-any")
        _wheel(wheels, probe_package(i), "2.0", tag)
    # A real wheel from PyPI in the set, and what the extension's build needs.
    shutil.copy2(setuptools_wheel, wheels / setuptools_wheel.name)
    ext = directory / "ext"
    ext.mkdir()
    (ext / "probe.c").write_text(EXT_C)
    (ext / "pyproject.toml").write_text(EXT_PYPROJECT)
    (ext / "setup.py").write_text(EXT_SETUP)
    (directory / "uv-probe.py").write_text(resource_text("native/uv-probe.py"))
    (directory / "out").mkdir()
    return tags


#: uv takes no manylinux tag older than ``manylinux_2_<floor>`` on these architectures
#: (uv-platform-tags, ``Arch::get_minimum_manylinux_minor``: riscv64's first manylinux is
#: 2_31), where packaging.tags.sys_tags() lists every one down to 2_17. Both of the
#: image's uvs, native and emulated, are held to that: a difference by uv's design, not by
#: where it runs. pip (cibuildwheel's `build` frontend) takes the older ones.
UV_MANYLINUX_FLOOR = {"riscv64": 31, "loongarch64": 36}


def below_uv_floor(plain_tag: str, arch: Arch) -> bool:
    """Whether uv, by design, takes no wheel of this (uncompressed) tag on ``arch``."""
    floor = UV_MANYLINUX_FLOOR.get(arch.uname_m)
    plat = plain_tag.rsplit("-", 1)[-1]
    if floor is None or not plat.endswith(f"_{arch.uname_m}"):
        return False
    glibc = manylinux.glibc_of(plat[: -len(arch.uname_m) - 1])
    return glibc is not None and glibc < (2, floor)


def _tag_set(tag: str) -> set[str]:
    """A compressed wheel tag (py2.py3-none-any) as the set of plain tags it stands for."""
    py, abi, plat = tag.split("-")
    return {f"{a}-{b}-{c}" for a in py.split(".") for b in abi.split(".") for c in plat.split(".")}


@dataclass(frozen=True, kw_only=True)
class UvProbeResult:
    differences: list[str] = field(default_factory=list)
    native_version: str = ""
    taken: list[str] = field(default_factory=list)  # tags the interpreter and uv take
    # Tags the interpreter takes and uv, by design, does not (UV_MANYLINUX_FLOOR).
    by_design: list[str] = field(default_factory=list)
    steps: Mapping[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.differences

    def label(self) -> str:
        if not self.passed:
            return f"failed: {self.differences[0]}"
        extra = (
            f"; {len(self.by_design)} older manylinux tags left, as uv does on this architecture"
            if self.by_design
            else ""
        )
        return (
            f"passed ({len(self.taken)} tags taken of the probe set, install and build "
            f"alike{extra})"
        )


def compare(data: Mapping[str, Any], tags: Sequence[str], arch: Arch) -> UvProbeResult:
    """Judge what uv-probe.py saw. The first difference names what and where."""
    diffs: list[str] = []
    view = data["view"]
    interp = set(view["tags"])
    if view["machine"] != arch.uname_m:
        diffs.append(
            f"the interpreter says platform.machine() = {view['machine']}, not {arch.uname_m}"
        )
    by_uv = {
        i: {p for p in _tag_set(t) & interp if not below_uv_floor(p, arch)}
        for i, t in enumerate(tags)
    }
    expected = {probe_package(i): "2.0" if by_uv[i] else "1.0" for i in range(len(tags))}
    by_design = [t for i, t in enumerate(tags) if _tag_set(t) & interp and not by_uv[i]]
    native, emulated = data["native"], data["emulated"]
    for side in ("native", "emulated"):
        got = data[side]["installed"]
        for i, tag in enumerate(tags):
            name = probe_package(i)
            want = expected[name]
            if got.get(name) != want:
                verb = "takes" if got.get(name) == "2.0" else "refuses"
                says = "takes" if want == "2.0" else "refuses"
                floor = UV_MANYLINUX_FLOOR.get(arch.uname_m)
                why = (
                    f" (uv takes no manylinux tag below 2_{floor} on {arch.uname_m})"
                    if floor and tag in by_design
                    else ""
                )
                diffs.append(
                    f"the {side} uv {verb} the wheel tag {tag}, the interpreter's own tags "
                    f"(packaging.tags.sys_tags()) {says} it{why}"
                )
    # "uv 0.13.8 (x86_64-unknown-linux-musl)": the build triple differs by construction.
    if native["version"].split()[:2] != emulated["version"].split()[:2]:
        diffs.append(f"native {native['version']!r} is not the image's {emulated['version']!r}")
    nf, ef = native["files"], emulated["files"]
    for path in sorted(set(nf) | set(ef)):
        if nf.get(path) != ef.get(path):
            diffs.append(
                f"installed file {path}: native {nf.get(path, 'missing')}, "
                f"emulated {ef.get(path, 'missing')}"
            )
            break
    if data["control"]["installed"] == native["installed"]:
        diffs.append(
            "negative control: told to take an x86_64 platform, uv installed the same "
            "wheels, so this probe could not see a wrong platform"
        )
    build = data["build"]
    want_machine = ELF_MACHINE[arch.uname_m]
    if not build["tags"] or not all(t.endswith(f"_{arch.uname_m}") for t in build["tags"]):
        diffs.append(
            f"uv build made {build['wheel']} tagged {build['tags']}, not for {arch.uname_m}"
        )
    if not build["elf_machine"] or set(build["elf_machine"].values()) != {want_machine}:
        diffs.append(
            f"uv build's extension has ELF machine {build['elf_machine']}, not {want_machine} "
            f"({arch.uname_m})"
        )
    if build["call"] != "42":
        diffs.append(f"the extension built by uv, called: {build['call']!r}, not 42")
    taken = [t for i, t in enumerate(tags) if expected[probe_package(i)] == "2.0"]
    return UvProbeResult(
        differences=diffs,
        native_version=native["version"],
        taken=taken,
        by_design=by_design,
        steps=data["steps"],
    )


def run_uv_probe(
    engine: Engine,
    image: str,
    arch: Arch,
    workdir: Path,
    setuptools_wheel: Path,
    log: Log = print,
) -> UvProbeResult:
    """Run uv-probe.py in a container of ``image`` (no network) and judge it."""
    if workdir.exists():
        shutil.rmtree(workdir)
    tags = write_probe_dir(workdir, arch, setuptools_wheel)
    d = PROBE_DIR_IN_IMAGE
    log(f"+ docker run {image} python {d}/uv-probe.py {d} {d}/out")
    code, output = engine.run_output(
        image,
        ["/bin/sh", "-c", PROBE_PYTHON, "sh", f"{d}/uv-probe.py", d, f"{d}/out"],
        platform=arch.platform,
        entrypoint=[],
        network="none",
        volumes={str(workdir): (d, "rw")},
    )
    for line in output.splitlines():
        if line.startswith("xarch uv probe: "):
            log(f"  {line}")
    report = workdir / "out" / "uv-probe.json"
    if code != 0 or not report.is_file():
        tail = "\n    ".join(output.splitlines()[-10:])
        raise UvProbeFailed(f"uv probe of {image}: uv-probe.py exited with {code}:\n    {tail}")
    result = compare(json.loads(report.read_text()), tags, arch)
    if result.passed:
        log(f"  uv probe: {result.label()}")
    return result


def require_passed(result: UvProbeResult, image: str) -> None:
    if result.passed:
        return
    more = f" (and {len(result.differences) - 1} more)" if len(result.differences) > 1 else ""
    raise UvProbeFailed(
        f"uv probe of {image}: {result.differences[0]}{more}\n  hint: the image is not "
        "tagged; remove native-uv from this target to build it with the base's own uv"
    )
