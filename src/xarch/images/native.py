"""Native-speed compilers inside emulated helper images (issue 10).

The kernel runs an x86_64 ELF natively even inside an arm64 or ppc64le container; only
its loader and libraries must be found. xarch therefore takes Debian's x86_64 *cross*
toolchain of exactly the image's compiler version (``cpp-10-aarch64-linux-gnu``
10.2.1-6cross1 and ``binutils-aarch64-linux-gnu`` 2.35.2-2 for a bullseye stand-in),
relocates its heavy leaves (``cc1``, ``cc1plus``, ``as``) with their own loader and
libraries under one prefix, :data:`NATIVE_PREFIX`, and hooks only those leaves of the
image's toolchain: the image's ``gcc``/``g++`` drivers, specs, include order,
``-dumpmachine`` and Python stay as they are.

Everything comes from pinned ``.deb`` files (verified by sha256 before anything is
built): the leaves, their x86_64 libraries and loader, and ``patchelf``. Host tools used
at build time only: ``gcc -static`` (the hook, ``resources/native/hook.c``) and
``objcopy --strip-all`` (Debian ships the cross leaves with debug info, 200 MB each).

Entry points for the helper build (``images/helper.py``):

- :func:`prepare_native_context` (target, cache dir, build-context dir) fetches,
  verifies, relocates, writes ``<context>/xarch-native/`` and returns a
  :class:`NativeContext` whose ``dockerfile_lines`` go at the end of the helper
  Dockerfile and whose ``labels`` go on the image.
- :func:`xarch.images.native_probe.run_probe` then proves the built image equivalent.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from xarch.errors import BadInput, ChecksumMismatch, FetchError, XarchError
from xarch.images.resources import resource_text
from xarch.model.arch import Arch
from xarch.model.config import Accelerate, DebPin, Target
from xarch.model.hashing import sha256_file
from xarch.oci.engine import Engine

NATIVE_PREFIX = "/opt/xarch/native"
#: Where the prepared files sit in the build context (copied to NATIVE_PREFIX).
CONTEXT_DIR = "xarch-native"
LABEL_PREFIX = "org.xarch.native"
#: x86_64 library directories of a Debian tree, in the loader's search order.
_LIB_DIRS = ("lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib64", "usr/lib64")
_LOADER = "ld-linux-x86-64.so.2"
_PATCHELF_NEEDS = {"libstdc++.so.6": "libstdc++6", "libgcc_s.so.1": "libgcc-s1"}

Log = Callable[[str], None]


class ToolchainError(XarchError):
    """The native toolchain could not be prepared (a tool failed): exit 1."""


class ToolchainMismatch(BadInput):
    """The pinned toolchain is not the image's compiler/assembler version: exit 2."""


@dataclass(frozen=True, kw_only=True)
class NativeContext:
    """What the helper build needs from a prepared native toolchain."""

    directory: Path  # <context>/xarch-native
    dockerfile_lines: tuple[str, ...]
    labels: Mapping[str, str]
    size_bytes: int  # what /opt/xarch/native adds to the image


# ----------------------------------------------------------------------------- pins


def deb_filename(pin: DebPin) -> str:
    """Debian's pool file name (an epoch's ``:`` is ``%3a`` as apt-get download writes it)."""
    return f"{pin.package}_{pin.version.replace(':', '%3a')}_amd64.deb"


def verify_debs(acc: Accelerate, directory: Path) -> dict[str, Path]:
    """Every pinned .deb of ``acc`` in ``directory``, checked by sha256.

    Missing (or only another version present) is ``BadInput``, a wrong sha256 is
    ``ChecksumMismatch``: both exit 2 before anything is built."""
    found: dict[str, Path] = {}
    for pin in acc.packages:
        path = directory / deb_filename(pin)
        if not path.is_file():
            others = sorted(p.name for p in directory.glob(f"{pin.package}_*_amd64.deb"))
            seen = f"; found only {', '.join(others)}" if others else ""
            raise BadInput(
                f"native toolchain {acc.toolchain}: {pin.package} {pin.version} is not in "
                f"{directory}{seen}\n  hint: pin the version the source holds, or put "
                f"{deb_filename(pin)} there"
            )
        got = sha256_file(path)
        if got != pin.sha256:
            raise ChecksumMismatch(
                f"native toolchain {acc.toolchain}: {path} has sha256 {got}, the config pins "
                f"{pin.sha256}\n  hint: the pin or the download is wrong; nothing was built"
            )
        found[pin.package] = path
    return found


def fetch_debs(acc: Accelerate, cache: Path, log: Log = print) -> dict[str, Path]:
    """The pinned .debs: from ``acc.directory`` as they are, else downloaded with apt
    through a private configuration (the host's apt sources are never touched) into
    ``cache``. Verified either way (:func:`verify_debs`)."""
    if acc.directory:
        return verify_debs(acc, Path(acc.directory))
    cache.mkdir(parents=True, exist_ok=True)
    missing = [p for p in acc.packages if not (cache / deb_filename(p)).is_file()]
    if missing:
        _apt_download(acc, cache, missing, log)
    return verify_debs(acc, cache)


def _apt_download(acc: Accelerate, cache: Path, pins: Sequence[DebPin], log: Log) -> None:
    if shutil.which("apt-get") is None:
        raise FetchError(
            "apt-get is not installed: cannot download the native toolchain\n"
            "  hint: set accelerate.directory to a folder holding the pinned .deb files"
        )
    root = cache.resolve() / "apt"
    for d in ("etc/sources.list.d", "etc/apt.conf.d", "etc/preferences.d", "state/lists/partial",
              "cache/archives/partial"):  # fmt: skip
        (root / d).mkdir(parents=True, exist_ok=True)
    suites = [acc.suite, *sorted({p.suite for p in acc.packages} - {"", acc.suite})]
    (root / "etc/sources.list").write_text(
        "".join(f"deb {acc.mirror} {suite} main\n" for suite in suites)
    )
    (root / "state/status").touch()
    opts = [
        f"-oDir::Etc::SourceList={root}/etc/sources.list",
        f"-oDir::Etc::SourceParts={root}/etc/sources.list.d",
        f"-oDir::Etc::Parts={root}/etc/apt.conf.d",
        f"-oDir::Etc::PreferencesParts={root}/etc/preferences.d",
        f"-oDir::State={root}/state",
        f"-oDir::State::status={root}/state/status",
        f"-oDir::Cache={root}/cache",
        "-oAPT::Architecture=amd64",
        "-oAPT::Architectures::=amd64",
        "-oAPT::Sandbox::User=root",
    ]
    wanted = [f"{p.package}={p.version}" for p in pins]
    for step, argv in (
        ("update", ["apt-get", *opts, "update"]),
        ("download", ["apt-get", *opts, "download", *wanted]),
    ):
        shown = " ".join(argv[len(opts) + 2 :])
        log(f"+ apt-get (private configuration under {root}) {step} {shown}")
        done = subprocess.run(argv, cwd=cache, capture_output=True, text=True, check=False)
        if done.returncode == 0:
            continue
        errors = [line for line in done.stderr.splitlines() if line.startswith("E:")]
        # "Version '0.22-1' for 'libisl23' was not found", "Unable to locate package x":
        # the pin names something the suite does not hold, which is bad input.
        if (
            step == "download"
            and errors
            and all("was not found" in e or "Unable to locate package" in e for e in errors)
        ):
            raise BadInput(
                f"native toolchain {acc.toolchain}: {acc.mirror} {' '.join(suites)} does "
                "not hold "
                + "; ".join(e[3:].strip() for e in errors)
                + "\n  hint: pin the version the suite holds (apt-cache policy), or keep the "
                "pinned .debs in a folder and set accelerate.directory"
            )
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise FetchError(f"apt-get {step} of the native toolchain failed:\n{tail}")


# ------------------------------------------------------------------------ unpacking


def deb_data(deb: Path) -> tarfile.TarFile:
    """The data archive of a .deb (an ``ar`` archive of three members)."""
    blob = deb.read_bytes()
    if not blob.startswith(b"!<arch>\n"):
        raise ToolchainError(f"{deb} is not a Debian package (no ar header)")
    pos = 8
    while pos + 60 <= len(blob):
        header = blob[pos : pos + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        body = blob[pos + 60 : pos + 60 + size]
        if name.startswith("data.tar"):
            return tarfile.open(fileobj=io.BytesIO(body), mode="r:*")
        pos += 60 + size + (size % 2)
    raise ToolchainError(f"{deb} has no data.tar member")


def unpack_debs(debs: Mapping[str, Path], tree: Path) -> None:
    for deb in debs.values():
        with deb_data(deb) as data:
            data.extractall(tree, filter="tar")


# ------------------------------------------------------------------------ relocation


def _run(argv: Sequence[str], what: str) -> str:
    done = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ToolchainError(f"{what} failed ({' '.join(argv)}): {done.stderr.strip()}")
    return done.stdout


def _find_lib(tree: Path, soname: str) -> Path | None:
    for d in _LIB_DIRS:
        p = tree / d / soname
        if p.exists():
            return p
    return None


class _Patchelf:
    """The pinned patchelf, run through the pinned loader (nothing from the host)."""

    def __init__(self, tree: Path) -> None:
        loader = _find_lib(tree, _LOADER)
        binary = tree / "usr/bin/patchelf"
        if loader is None or not binary.exists():
            raise BadInput(
                "the native toolchain's packages lack patchelf or libc6 "
                "(usr/bin/patchelf, ld-linux-x86-64.so.2)\n"
                "  hint: add the patchelf and libc6 packages to accelerate.packages"
            )
        # patchelf is C++: without these in the tree the loader would take the host's.
        for soname, package in _PATCHELF_NEEDS.items():
            if _find_lib(tree, soname) is None:
                raise BadInput(
                    f"the native toolchain's packages lack {soname}, which patchelf needs\n"
                    f"  hint: add the {package} package to accelerate.packages"
                )
        libs = ":".join(str(tree / d) for d in _LIB_DIRS)
        self.argv = [str(loader.resolve()), "--library-path", libs, str(binary)]

    def needed(self, elf: Path) -> list[str]:
        return _run([*self.argv, "--print-needed", str(elf)], "patchelf").split()

    def relocate(self, elf: Path, *, executable: bool) -> None:
        args = ["--set-rpath", f"{NATIVE_PREFIX}/lib"]
        if executable:
            args += ["--set-interpreter", f"{NATIVE_PREFIX}/lib/{_LOADER}"]
        _run([*self.argv, *args, str(elf)], "patchelf")


def leaf_sources(arch: Arch, gcc_major: str, tree: Path | None = None) -> dict[str, str]:
    """Leaf name -> its path in the unpacked cross packages. gcc 14 (Debian trixie) moved
    the compiler proper to usr/libexec/gcc-cross; with ``tree``, the one it holds."""
    t = arch.gnu_triplet
    gcc_dir = f"usr/lib/gcc-cross/{t}/{gcc_major}"
    libexec = f"usr/libexec/gcc-cross/{t}/{gcc_major}"
    if tree is not None and (tree / libexec / "cc1").is_file():
        gcc_dir = libexec
    return {
        "cc1": f"{gcc_dir}/cc1",
        "cc1plus": f"{gcc_dir}/cc1plus",
        "as": f"usr/bin/{t}-as",
        "ld": f"usr/bin/{t}-ld.bfd",
    }


def leaf_extras(arch: Arch, gcc_major: str, leaf: str) -> dict[str, str]:
    """Files a leaf loads besides libraries (source in the packages -> path under
    the prefix): the native linker loads the cross package's x86_64 LTO plugin."""
    t = arch.gnu_triplet
    if leaf == "ld":
        plugin = f"lib/gcc-cross/{t}/{gcc_major}/liblto_plugin.so"
        return {f"usr/{plugin}": plugin}
    return {}


def leaf_targets(arch: Arch, gcc_major: str) -> dict[str, str]:
    """Leaf name -> its path under NATIVE_PREFIX (the cross layout, as the hook confs say)."""
    t = arch.gnu_triplet
    return {
        "cc1": f"lib/gcc-cross/{t}/{gcc_major}/cc1",
        "cc1plus": f"lib/gcc-cross/{t}/{gcc_major}/cc1plus",
        "as": f"bin/{t}-as",
        "ld": f"bin/{t}-ld.bfd",
    }


def relocate(
    tree: Path, out: Path, arch: Arch, acc: Accelerate, log: Log = print
) -> dict[str, str]:
    """Copy the leaves and every library they need (transitively) from the unpacked
    ``tree`` into ``out`` (which becomes NATIVE_PREFIX), strip debug info and point
    loader and RUNPATH at NATIVE_PREFIX. Returns path-under-prefix -> sha256 of the
    file as the package shipped it (before strip and patchelf)."""
    if shutil.which("objcopy") is None:
        raise ToolchainError("objcopy (binutils) is needed on the host to strip the native leaves")
    patchelf = _Patchelf(tree)
    major = acc.gcc_version.split(".")[0]
    sources = leaf_sources(arch, major, tree)
    targets = leaf_targets(arch, major)
    shipped: dict[str, str] = {}
    queue: list[tuple[Path, str, bool]] = []
    for leaf in acc.leaves:
        src = tree / sources[leaf]
        if not src.is_file():
            raise BadInput(
                f"native toolchain {acc.toolchain}: no {sources[leaf]} in its packages\n"
                f"  hint: add the package that ships {leaf} to accelerate.packages"
            )
        queue.append((src, targets[leaf], True))
        for extra_src, extra_rel in leaf_extras(arch, major, leaf).items():
            if not (tree / extra_src).exists():
                raise BadInput(
                    f"native toolchain {acc.toolchain}: no {extra_src} in its packages\n"
                    f"  hint: add the package that ships it to accelerate.packages"
                )
            queue.append((tree / extra_src, extra_rel, False))
    (out / "lib").mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    while queue:
        src, rel, executable = queue.pop(0)
        dest = out / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        real = src.resolve()
        shipped[rel] = sha256_file(real)
        if executable:
            # The leaves are executables: their symbol tables serve only a debugger
            # (plugins resolve against .dynsym, which stays; -fplugin runs emulated).
            log(f"+ objcopy {' '.join(LEAF_STRIP)} {src.relative_to(tree)} {rel}")
            _run(["objcopy", *LEAF_STRIP, str(real), str(dest)], "objcopy")
        else:
            shutil.copyfile(real, dest)
        dest.chmod(0o755)
        for soname in patchelf.needed(dest):
            if soname in seen:
                continue
            seen.add(soname)
            lib = _find_lib(tree, soname)
            if lib is None:
                raise BadInput(
                    f"native toolchain {acc.toolchain}: {rel} needs {soname}, which none of "
                    "its packages ships\n  hint: add the Debian package of that library"
                )
            queue.append((lib, f"lib/{soname}", False))
        if rel != f"lib/{_LOADER}":
            patchelf.relocate(dest, executable=executable)
    loader = _find_lib(tree, _LOADER)
    if loader is not None and f"lib/{_LOADER}" not in shipped:
        shutil.copyfile(loader.resolve(), out / "lib" / _LOADER)
        (out / "lib" / _LOADER).chmod(0o755)
        shipped[f"lib/{_LOADER}"] = sha256_file(loader.resolve())
    for leaf in acc.leaves:
        _check_runs(out, targets[leaf], acc)
    return shipped


def _check_runs(out: Path, rel: str, acc: Accelerate) -> None:
    """The relocated leaf starts on the host, through the prefix's own loader and
    libraries (its RUNPATH names the prefix as it will be in the image): a relocation
    that broke it is said here, by name, not as a compiler that prints nothing inside
    the image."""
    argv = [str(out / "lib" / _LOADER), "--library-path", str(out / "lib"), str(out / rel)]
    try:
        done = subprocess.run(
            [*argv, "--version"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
    except subprocess.TimeoutExpired:
        raise ToolchainError(
            f"native toolchain {acc.toolchain}: the relocated {rel} did not answer "
            "--version within 120 s"
        ) from None
    if done.returncode != 0:
        how = (
            f"killed by signal {-done.returncode}"
            if done.returncode < 0
            else f"exit {done.returncode}"
        )
        raise ToolchainError(
            f"native toolchain {acc.toolchain}: the relocated {rel} does not run ({how}"
            f"{': ' + done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ''})\n"
            "  hint: the patchelf of accelerate.packages may have broken it (patchelf 0.17 "
            "and newer are known to break cross gcc's cc1); pin one that does not"
        )


def build_hook(out: Path, log: Log = print) -> None:
    """Compile the static hook on the host (x86_64, so it starts natively in the image)."""
    cc = shutil.which("gcc")
    if cc is None:
        raise ToolchainError("gcc is needed on the host to build the native-leaf hook")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "hook.c"
        src.write_text(resource_text("native/hook.c"))
        argv = [cc, "-static", "-O2", "-s", "-o", str(out), str(src)]
        log("+ " + " ".join(argv))
        _run(argv, "building the native-leaf hook (needs static libc: libc6-dev)")


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def dockerfile_lines(arch: Arch, acc: Accelerate) -> tuple[str, ...]:
    setup = [
        "/bin/sh",
        f"{NATIVE_PREFIX}/setup-hooks.sh",
        arch.gnu_triplet,
        acc.gcc_version,
        acc.binutils_version,
        *acc.leaves,
    ]
    quoted = ", ".join(f'"{a}"' for a in setup)
    return (
        f"COPY {CONTEXT_DIR}/ {NATIVE_PREFIX}/",
        f"RUN [{quoted}]",
    )


#: The package resources whose content shapes an accelerated image or its proof: a
#: change to any of them is a change of the build's inputs.
RESOURCES = (
    "native/hook.c",
    "native/setup-hooks.sh",
    "native/probe.sh",
    "native/corpus/cxx_features.cpp",
    "native/corpus/lzss.c",
    "native/corpus/pyext_module.c",
)


#: How the leaves are copied into the prefix; part of the inputs (it changes the files).
LEAF_STRIP = ("--strip-all",)


def resources_digest() -> str:
    h = hashlib.sha256()
    h.update(" ".join(LEAF_STRIP).encode() + b"\0")
    for name in RESOURCES:
        h.update(name.encode() + b"\0" + resource_text(name).encode() + b"\0")
    return "sha256:" + h.hexdigest()


def pin_labels(acc: Accelerate) -> dict[str, str]:
    """The labels known before anything is fetched (they go into the build's inputs
    hash): toolchain, versions, leaves, the sha256 of every pinned .deb and a digest of
    the hook, setup script and probe corpus."""
    return {
        f"{LABEL_PREFIX}.toolchain": acc.toolchain,
        f"{LABEL_PREFIX}.gcc": acc.gcc_version,
        f"{LABEL_PREFIX}.binutils": acc.binutils_version,
        f"{LABEL_PREFIX}.leaves": ",".join(acc.leaves),
        f"{LABEL_PREFIX}.packages": ",".join(
            f"{p.package}={p.version}@sha256:{p.sha256}" for p in acc.packages
        ),
        f"{LABEL_PREFIX}.resources": resources_digest(),
    }


def native_labels(acc: Accelerate, shipped: Mapping[str, str], probe: str) -> dict[str, str]:
    """The image labels: :func:`pin_labels`, the sha256 of every file used from the
    packages, and the probe result (``passed ...``, or ``pending`` before it ran)."""
    labels = pin_labels(acc)
    labels[f"{LABEL_PREFIX}.files"] = ",".join(
        f"{k}@sha256:{v}" for k, v in sorted(shipped.items())
    )
    labels[f"{LABEL_PREFIX}.probe"] = probe
    return labels


#: Run in the base (under emulation): the versions setup-hooks.sh will compare.
VERSIONS_SCRIPT = (
    "command -v gcc >/dev/null 2>&1 || { echo; echo; exit 0; }; "
    "gcc -dumpfullversion 2>/dev/null || gcc -dumpversion; "
    '"$(gcc -print-prog-name=as)" --version </dev/null | head -n 1'
)


def run_in_base(engine: Engine, image: str, arch: Arch, script: str, *, what: str, off: str) -> str:
    """What ``script`` prints in the base (its own sh, emulated, no network). A base
    that cannot run (no handler: "exec format error") is named with the fix, and
    ``off`` says how to do without the feature that needed it."""
    code, out = engine.run_output(
        image, ["/bin/sh", "-c", script], platform=arch.platform, entrypoint=[],
        network="none",
    )  # fmt: skip
    if code != 0:
        hint = ""
        if "exec format error" in out.lower():
            hint = (
                f"\n  hint: {what} is read under emulation at build time: register a handler "
                f"first (`invoke binfmt-install --arch {arch.name}`), or {off}"
            )
        raise ToolchainError(
            f"could not read {what} of {image} (exit {code}): {out.strip()[-300:]}{hint}"
        )
    return out


def base_versions(engine: Engine, image: str, arch: Arch) -> tuple[str, str]:
    """(``gcc -dumpfullversion``, the first line of ``as --version``) of ``image``;
    empty strings for a base without gcc."""
    out = run_in_base(
        engine, image, arch, VERSIONS_SCRIPT,
        what="the compiler version", off="set accelerate.enabled: false",
    )  # fmt: skip
    lines = [*out.splitlines(), "", ""][:2]
    return lines[0].strip(), lines[1].strip()


def version_mismatch(acc: Accelerate, gcc_fullversion: str, as_version_line: str) -> str | None:
    """Why ``acc`` does not match a base whose ``gcc -dumpfullversion`` and ``as
    --version`` (first line) are given, naming both versions; None when it matches.
    The same rule setup-hooks.sh applies inside the image build."""
    have_gcc = gcc_fullversion.strip()
    if have_gcc != acc.gcc_version:
        return (
            f"the base's gcc is {have_gcc or 'missing'} (gcc -dumpfullversion) but the native "
            f"toolchain {acc.toolchain} is gcc {acc.gcc_version}"
        )
    line = as_version_line.strip()
    have_as = line.rsplit(" ", 1)[-1] if line else ""
    if have_as != acc.binutils_version:
        return (
            f"the base's assembler is binutils {have_as or 'missing'} "
            f"({line or 'no as --version'}) but the native toolchain {acc.toolchain} is "
            f"binutils {acc.binutils_version}"
        )
    return None


def require_match(acc: Accelerate, gcc_fullversion: str, as_version_line: str) -> None:
    """Refuse (exit 2) a base whose compiler or assembler is not the toolchain's."""
    problem = version_mismatch(acc, gcc_fullversion, as_version_line)
    if problem:
        raise ToolchainMismatch(
            f"{problem}: refusing to accelerate\n  hint: pin a toolchain of the base's "
            "versions, or set accelerate.enabled: false for this target"
        )


def probed_dockerfile(image_id: str, labels: Mapping[str, str]) -> str:
    """A one-step Dockerfile that puts the final labels (with the probe's result) on an
    image that passed the probe; nothing else changes."""
    lines = [f"FROM {image_id}"]
    lines += [f"LABEL {k}={json.dumps(v)}" for k, v in sorted(labels.items())]
    return "\n".join(lines) + "\n"


#: Run in an accelerated image by doctor: the native assembler starts (only an x86_64
#: kernel runs it), and a small compile gives the same object both ways.
WORKING_SCRIPT = """set -e
d=$(mktemp -d)
{prefix}/bin/{triplet}-as --version </dev/null >"$d/version"
head -n 1 "$d/version"
printf 'int xarch_doctor(int x) {{ return x * 3 + 1; }}\\n' >"$d/x.c"
for m in 0 1; do
    XARCH_NATIVE_TOOLS=$m gcc -O2 -c "$d/x.c" -o "$d/$m.o"
    objcopy --remove-section .comment "$d/$m.o" "$d/$m.nc.o"
done
cmp "$d/0.nc.o" "$d/1.nc.o"
echo same-object
"""


def check_working(engine: Engine, image: str, arch: Arch) -> tuple[bool, str]:
    """Whether ``image``'s native leaves work on this host: (ok, what was seen)."""
    script = WORKING_SCRIPT.format(prefix=NATIVE_PREFIX, triplet=arch.gnu_triplet)
    code, out = engine.run_output(
        image, ["/bin/sh", "-c", script], platform=arch.platform, entrypoint=[], network="none"
    )
    if code == 0 and out.endswith("same-object"):
        return True, "native assembler runs; a compile gives the same object both ways"
    tail = " / ".join(out.splitlines()[-3:]) or "no output"
    return False, f"exit {code}: {tail}"


def labels_record(labels: Mapping[str, str], prefix: str, keys: Sequence[str]) -> dict[str, str]:
    """``{key: labels[prefix.key]}`` for the keys the image's labels have."""
    return {k: labels[f"{prefix}.{k}"] for k in keys if f"{prefix}.{k}" in labels}


def record_from_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """The report's ``native`` record of a built image: toolchain, versions, leaves,
    probe result and the prefix's size in bytes, as its labels say."""
    keys = ("toolchain", "gcc", "binutils", "leaves", "probe", "size")
    return labels_record(labels, LABEL_PREFIX, keys)


def status_from_labels(labels: Mapping[str, str]) -> str:
    """One line for doctor: whether an image carries proven native leaves."""
    toolchain = labels.get(f"{LABEL_PREFIX}.toolchain")
    if not toolchain:
        return "no native leaves (emulated compilers)"
    probe = labels.get(f"{LABEL_PREFIX}.probe", "")
    leaves = labels.get(f"{LABEL_PREFIX}.leaves", "")
    if probe.startswith("passed"):
        return f"native leaves {leaves} from {toolchain}: probe {probe}"
    return f"native leaves {leaves} from {toolchain} NOT proven (probe: {probe or 'missing'})"


def prepare_native_context(
    target: Target, cache: Path, context: Path, log: Log = print
) -> NativeContext | None:
    """Fetch, verify and relocate ``target``'s native toolchain into
    ``context/xarch-native``; None when the target has no (or a disabled)
    ``accelerate:`` section. Raises before writing anything on a bad pin."""
    acc = target.accelerate
    if acc is None or not acc.enabled:
        return None
    debs = fetch_debs(acc, cache, log)
    out = context / CONTEXT_DIR
    if out.exists():
        shutil.rmtree(out)
    with tempfile.TemporaryDirectory(prefix="xarch-native-") as tmp:
        tree = Path(tmp)
        unpack_debs(debs, tree)
        shipped = relocate(tree, out, target.arch, acc, log)
    (out / "bin").mkdir(exist_ok=True)
    build_hook(out / "bin" / "xarch-hook", log)
    setup = out / "setup-hooks.sh"
    setup.write_text(resource_text("native/setup-hooks.sh"))
    setup.chmod(0o755)
    manifest = "".join(f"{v}  {k}\n" for k, v in sorted(shipped.items()))
    (out / "SHA256SUMS.shipped").write_text(manifest)
    return NativeContext(
        directory=out,
        dockerfile_lines=dockerfile_lines(target.arch, acc),
        labels=native_labels(acc, shipped, "pending"),
        size_bytes=dir_size(out),
    )
