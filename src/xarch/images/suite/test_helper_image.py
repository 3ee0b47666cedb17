"""What every helper image must do on an x86_64 host. Parametrized by target."""

from __future__ import annotations

import io
import re
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import pytest

from xarch.images.suite.plugin import ImageUnderTest, docker_run
from xarch.model import manylinux
from xarch.model.config import Config
from xarch.model.naming import L_BASE_DIGEST, L_BASE_NAME, L_BASE_REF, L_QEMU_SHA, L_QEMU_VERSION

# A C program whose output depends on the architecture's data model and byte order,
# so a binary that ran natively on the host by mistake would print something else.
C_PROGRAM = r"""
#include <stdio.h>
#include <stdint.h>
static uint64_t fib(unsigned n) {
    uint64_t a = 0, b = 1;
    while (n--) { uint64_t t = a + b; a = b; b = t; }
    return a;
}
int main(void) {
    uint32_t probe = 0x01020304;
    const char *order = (*(unsigned char *)&probe == 0x04) ? "little" : "big";
    printf("long=%u ptr=%u order=%s fib90=%llu\n", (unsigned)sizeof(long),
           (unsigned)sizeof(void *), order, (unsigned long long)fib(90));
    return 0;
}
"""
EXPECTED_C_OUTPUT = {
    "aarch64": "long=8 ptr=8 order=little fib90=2880067194370816120",
    "ppc64le": "long=8 ptr=8 order=little fib90=2880067194370816120",
    "s390x": "long=8 ptr=8 order=big fib90=2880067194370816120",
    "armv7l": "long=4 ptr=4 order=little fib90=2880067194370816120",
    "riscv64": "long=8 ptr=8 order=little fib90=2880067194370816120",
}


def test_platform_in_image_config(image: ImageUnderTest) -> None:
    arch = image.target.arch
    assert (image.attrs["Os"], image.attrs["Architecture"]) == (arch.docker_os, arch.docker_arch)
    if arch.docker_variant:
        assert image.attrs.get("Variant") == arch.docker_variant


def test_uname_reports_target_machine(guest: Any, image: ImageUnderTest) -> None:
    assert guest.check_output("uname -m") == image.target.arch.uname_m


def test_bundled_emulator_matches_pin(
    guest: Any, image: ImageUnderTest, xarch_config: Config
) -> None:
    arch = image.target.arch
    emulator = guest.file(arch.emulator_path)
    assert emulator.exists, f"{arch.emulator_path} missing"
    assert emulator.is_file
    assert emulator.mode & 0o111, f"{arch.emulator_path} is not executable"
    pinned = xarch_config.qemu.sha256_for(arch)
    assert emulator.sha256sum == pinned
    assert image.labels[L_QEMU_SHA] == pinned
    assert image.labels[L_QEMU_VERSION] == xarch_config.qemu.version


def test_labels_name_the_base(image: ImageUnderTest) -> None:
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", image.labels[L_BASE_DIGEST])
    assert image.labels[L_BASE_NAME]


@pytest.fixture(scope="session")
def compiled_program(guest: Any, image: ImageUnderTest) -> str:
    """Compile C_PROGRAM with the image's own compiler; return the binary's path."""
    cc = next((c for c in ("cc", "gcc", "clang") if guest.exists(c)), None)
    if cc is None:
        pytest.fail(f"{image.ref} has no C compiler (cc, gcc, clang)")
    guest.check_output("mkdir -p /tmp/xarch-test")
    cmd = f"cat > /tmp/xarch-test/probe.c <<'XARCH_EOF'\n{C_PROGRAM}\nXARCH_EOF"
    guest.run_expect([0], cmd)
    result = guest.run(f"{cc} -O2 -o /tmp/xarch-test/probe /tmp/xarch-test/probe.c")
    assert result.rc == 0, f"{cc} failed: {result.stderr}"
    return "/tmp/xarch-test/probe"


def test_c_program_compiled_in_image_runs(
    guest: Any, image: ImageUnderTest, compiled_program: str
) -> None:
    assert guest.check_output(compiled_program) == EXPECTED_C_OUTPUT[image.target.arch.name]


def test_file_reports_target_architecture(
    container: Any, image: ImageUnderTest, compiled_program: str
) -> None:
    """The host's `file` (not the image's) judges the binary the image's compiler made."""
    with (
        tarfile.open(fileobj=io.BytesIO(container.archive(compiled_program))) as raw,
        tempfile.TemporaryDirectory() as tmp,
    ):
        member = raw.extractfile(raw.getmembers()[0])
        assert member is not None
        out = Path(tmp) / "probe"
        out.write_bytes(member.read())
        desc = subprocess.run(["file", "-b", str(out)], capture_output=True, text=True).stdout
    assert image.target.arch.file_description in desc, desc
    assert "ELF" in desc


def _pythons(guest: Any) -> list[str]:
    found = guest.run("ls -1d /opt/python/*/bin/python 2>/dev/null").stdout.split()
    if found:
        return sorted(found)
    return [p for p in ("python3", "python") if guest.exists(p)][:1]


def test_every_python_runs(guest: Any, image: ImageUnderTest) -> None:
    pythons = _pythons(guest)
    if not pythons:
        pytest.skip(f"{image.ref} has no Python interpreter")
    code = "import platform, sys; print(platform.machine(), sys.implementation.name)"
    for py in pythons:
        out = guest.check_output(f"{py} -c '{code}'")
        assert out.split()[0] == image.target.arch.uname_m, f"{py}: {out}"


# Run by each Python of the image over its own library directories: every .pyc there
# must be one the interpreter takes as it is (PEP 552: a timestamp .pyc whose recorded
# mtime and size are the source's, or a hash-based one whose hash is the source's).
# Prints "checked stale" counts, then up to three stale paths.
PYC_CHECK_CODE = r"""
import importlib.util, os, struct, sys, sysconfig
paths = {sysconfig.get_paths()[k] for k in ("stdlib", "purelib", "platlib")}
checked, stale = 0, []
for root in sorted(paths):
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if x != "__pycache__"]
        for f in files:
            if not f.endswith(".py"):
                continue
            src = os.path.join(d, f)
            pyc = importlib.util.cache_from_source(src)
            try:
                with open(pyc, "rb") as fh:
                    head = fh.read(16)
            except OSError:
                continue
            if head[:4] != importlib.util.MAGIC_NUMBER:
                continue
            checked += 1
            flags = struct.unpack("<I", head[4:8])[0]
            if flags & 1:
                if flags & 2:
                    with open(src, "rb") as fh:
                        ok = importlib.util.source_hash(fh.read()) == head[8:16]
                else:
                    ok = True
            else:
                st = os.stat(src)
                ok = struct.unpack("<II", head[8:16]) == (
                    int(st.st_mtime) & 0xFFFFFFFF, st.st_size & 0xFFFFFFFF)
            if not ok:
                stale.append(src)
print(checked, len(stale), *stale[:3])
"""


def test_compiled_bytecode_is_valid(image: ImageUnderTest) -> None:
    """Every .pyc of each Python's library is valid for its source, in a fresh container.

    A stale one is recompiled, under emulation, by every Python start that imports it,
    in every new container (cibuildwheel starts one per run): pip, build, setuptools and
    auditwheel, or a built CPython's whole library. Real manylinux images carry valid
    ones; the stand-ins had 2,400 stale ones until their root filesystem was built with
    SOURCE_DATE_EPOCH (images/standin/bootstrap.py). Once per test-images run."""
    if image.binfmt_mode == "no-F":
        pytest.skip("checked in this test-images run's F pass (the same files)")
    script = (
        "for py in /opt/python/*/bin/python /opt/_internal/pipx/venvs/*/bin/python; do "
        '[ -x "$py" ] || continue; printf "%s " "$py"; "$py" -c "$1" || exit 1; done'
    )
    r = docker_run(
        image.ref, image.target.arch.platform, ["-c", script, "sh", PYC_CHECK_CODE], "sh"
    )
    assert r.returncode == 0, (r.stdout + r.stderr)[-2000:]
    lines = r.stdout.splitlines()
    if not lines:
        pytest.skip(f"{image.ref} has no /opt/python or pipx interpreter")
    for line in lines:
        py, checked, stale, *examples = line.split()
        assert int(checked) > 0, f"{py}: no .pyc found in its library: {line}"
        assert int(stale) == 0, (
            f"{py}: {stale} of {checked} .pyc are stale (recompiled under emulation in every "
            f"new container), e.g. {', '.join(examples)}"
        )


def test_manylinux_layout_when_declared(guest: Any, image: ImageUnderTest) -> None:
    """Images whose environment says AUDITWHEEL_ARCH must agree with their architecture."""
    env = dict(e.split("=", 1) for e in (image.attrs.get("Config") or {}).get("Env") or [])
    if "AUDITWHEEL_ARCH" not in env:
        pytest.skip("not a manylinux layout")
    assert env["AUDITWHEEL_ARCH"] == image.target.arch.uname_m
    assert env["AUDITWHEEL_PLAT"].endswith(image.target.arch.uname_m)
    assert guest.file("/usr/local/bin/manylinux-entrypoint").mode & 0o111


def test_entrypoint_runs_commands(image: ImageUnderTest) -> None:
    """`docker run IMAGE CMD` goes through the image's entrypoint, as cibuildwheel's does."""
    r = docker_run(image.ref, image.target.arch.platform, ["uname", "-m"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == image.target.arch.uname_m


def test_plain_base_fails_without_flag_f(image: ImageUnderTest) -> None:
    """With a handler lacking F, only the bundled emulator makes an image run."""
    if image.binfmt_mode != "no-F":
        pytest.skip("only meaningful with a handler registered without flag F")
    r = docker_run(
        image.labels[L_BASE_REF], image.target.arch.platform, ["/bin/true"], entrypoint=""
    )
    assert r.returncode != 0
    assert "no such file or directory" in r.stderr.lower(), r.stderr


# --- the cibuildwheel contract (cibuildwheel 4.3.5: platforms/linux.py, oci_container.py)
# Checked for every image with a manylinux layout (AUDITWHEEL_POLICY in its environment):
# the real manylinux images and xarch's stand-ins alike.

UTILITY_PYTHON = "/opt/python/cp39-cp39/bin/python"
# Legacy policy names and the glibc they stand for (PEP 600).
L_STANDIN_PYTHON = "io.xarch.standin.python"


def _env(image: ImageUnderTest) -> dict[str, str]:
    return dict(e.split("=", 1) for e in (image.attrs.get("Config") or {}).get("Env") or [])


@pytest.fixture(scope="session")
def manylinux_env(image: ImageUnderTest) -> dict[str, str]:
    env = _env(image)
    if "AUDITWHEEL_POLICY" not in env:
        pytest.skip("not a manylinux layout")
    return env


def _check_py(guest: Any, python: str, code: str) -> str:
    return str(guest.check_output(f"{python} -c {_sh_quote(code)}"))


def _sh_quote(s: str) -> str:
    return "'" + s.replace("'", "'\"'\"'") + "'"


def test_utility_interpreter_is_real_cpython_39(
    guest: Any, image: ImageUnderTest, manylinux_env: dict[str, str]
) -> None:
    """cibuildwheel runs /opt/python/cp39-cp39/bin/python for every glob and environment
    read: it must be CPython 3.9 itself, an ELF executable, not a script or another
    version under that name."""
    has = image.labels.get(L_STANDIN_PYTHON)
    if has is not None and has != "3.9":
        pytest.skip(
            f"STAND-IN with CPython {has} only (its Debian suite has no 3.9): "
            "cibuildwheel 4.3.5 cannot use this image"
        )
    code = (
        "import os, sys; exe = os.path.realpath(sys.executable); "
        "print(sys.implementation.name, '%d.%d' % sys.version_info[:2], "
        "open(exe, 'rb').read(4) == b'\\x7fELF', exe)"
    )
    name, version, is_elf, exe = _check_py(guest, UTILITY_PYTHON, code).split()
    assert (name, version, is_elf) == ("cpython", "3.9", "True"), exe


L_CPYTHON_SOURCE = "io.xarch.standin.cpython-source"
#: What the built-from-source cp39 must have: the modules a manylinux interpreter has
#: (each needs a library configure may silently skip), each made to do some work.
BUILT_MODULES_CODE = """
import bz2, ctypes, ctypes.util, hashlib, lzma, sqlite3, ssl, sys, uuid, zlib, _decimal
data = b'xarch' * 1000
assert zlib.decompress(zlib.compress(data)) == data
assert bz2.decompress(bz2.compress(data)) == data
assert lzma.decompress(lzma.compress(data)) == data
con = sqlite3.connect(':memory:')
assert con.execute('select 6 * 7').fetchone() == (42,)
libc = ctypes.CDLL(ctypes.util.find_library('c'))
assert libc.strlen(b'xarch') == 5
assert ssl.OPENSSL_VERSION.startswith('OpenSSL'), ssl.OPENSSL_VERSION
ssl.create_default_context()
assert hashlib.sha256(b'').hexdigest().startswith('e3b0c442')
uuid.uuid4()
print(sys.version.split()[0], sys.byteorder, ssl.OPENSSL_VERSION)
"""
#: A subset of CPython's own test suite, run under emulation: packing and byte order,
#: compression and binary codecs (ctypes is exercised above).
BUILT_TESTS = ("test_struct", "test_zlib", "test_binascii")


def _built_source(image: ImageUnderTest) -> str:
    source = image.labels.get(L_CPYTHON_SOURCE)
    if source is None:
        pytest.skip("no interpreter built from source in this image")
    return source


def test_built_interpreter_has_its_modules(guest: Any, image: ImageUnderTest) -> None:
    """A stand-in whose cp39 xarch built from source (label io.xarch.standin.cpython-source):
    ssl, ctypes, sqlite3, zlib, bz2, lzma, uuid and _decimal import and work, and the byte
    order is the architecture's."""
    source = _built_source(image)
    out = _check_py(guest, UTILITY_PYTHON, BUILT_MODULES_CODE).split()
    assert out[0] == source.split("_")[1].split(".orig")[0], (out, source)  # 3.9.2
    big = image.target.arch.name == "s390x"
    assert out[1] == ("big" if big else "little"), out


def test_built_interpreter_passes_cpython_tests(guest: Any, image: ImageUnderTest) -> None:
    """A subset of CPython's own tests passes on the built cp39, under emulation. Once per
    test-images run: under the F (or host) handler, not again under no-F (the same
    interpreter; only how the kernel finds QEMU differs)."""
    _built_source(image)
    if image.binfmt_mode == "no-F":
        pytest.skip("CPython's tests ran in this test-images run's F pass")
    r = guest.run(f"{UTILITY_PYTHON} -m test -q {' '.join(BUILT_TESTS)}")
    assert r.rc == 0, (r.stdout + r.stderr)[-3000:]
    assert "SUCCESS" in r.stdout, r.stdout[-2000:]


def test_each_interpreter_is_what_its_directory_says(
    guest: Any, manylinux_env: dict[str, str]
) -> None:
    """/opt/python/cpXY-cpXY/bin/python is CPython X.Y: no link or wrapper pretends to be
    an interpreter it is not (cibuildwheel picks interpreters by these names)."""
    pythons = guest.run("ls -1d /opt/python/cp3*-cp3*/bin/python 2>/dev/null").stdout.split()
    assert pythons, "no /opt/python/cpXY-cpXY/bin/python"
    for py in pythons:
        tag = py.split("/")[3].split("-")[0]  # cp39
        if tag.endswith("t"):  # free-threaded builds (cp313t): same version digits
            tag = tag[:-1]
        got = _check_py(guest, py, "import sys; print('cp%d%d' % sys.version_info[:2])")
        assert got == tag, f"{py} is {got}"


def test_build_frontend_in_each_interpreter(guest: Any, manylinux_env: dict[str, str]) -> None:
    """cibuildwheel's default frontend is `python -m build`; pip must be the interpreter's."""
    for py in guest.run("ls -1d /opt/python/cp3*-cp3*/bin/python").stdout.split():
        out = guest.run(f"{py} -m build --version")
        assert out.rc == 0, f"{py} -m build: {out.stderr}"
        assert out.stdout.startswith("build "), out.stdout
        pip = guest.run(f"{py.removesuffix('/python')}/pip --version")
        assert pip.rc == 0 and pip.stdout.startswith("pip "), pip.stderr


def test_repair_tools_on_path(guest: Any, manylinux_env: dict[str, str]) -> None:
    """The default repair command is `auditwheel repair`, which needs patchelf >= 0.14."""
    aw = guest.run("auditwheel --version")
    assert aw.rc == 0, aw.stderr
    assert re.match(r"auditwheel \d+\.\d+", aw.stdout), aw.stdout
    pe = guest.run("patchelf --version")
    assert pe.rc == 0, pe.stderr
    m = re.match(r"patchelf (\d+)\.(\d+)", pe.stdout)
    assert m and (int(m[1]), int(m[2])) >= (0, 14), pe.stdout


def test_uv_on_path_for_the_uv_frontends(
    guest: Any, image: ImageUnderTest, manylinux_env: dict[str, str]
) -> None:
    """cibuildwheel's `build[uv]` and `uv` frontends stop at `which uv` without it (real
    manylinux images install it at /usr/local/bin/uv), and uv must take the interpreter's
    architecture for its own: a venv it makes runs the image's machine."""
    which = guest.run("which uv")
    assert which.rc == 0, f"no uv on PATH: {which.stderr}"
    version = guest.check_output("uv --version")
    assert re.match(r"uv \d+\.\d+\.\d+", version), version
    py = guest.run("ls -1d /opt/python/cp3*-cp3*/bin/python").stdout.split()[0]
    venv = "/tmp/xarch-uv-venv"
    r = guest.run(
        f"rm -rf {venv} && UV_PYTHON_DOWNLOADS=never uv venv --offline --quiet -p {py} {venv} "
        f"&& {venv}/bin/python -c 'import platform; print(platform.machine())'"
    )
    assert r.rc == 0, r.stdout + r.stderr
    assert r.stdout.strip() == image.target.arch.uname_m


# The policies (name and the architectures it lists symbol versions for) of the auditwheel
# on PATH, read from its own manylinux-policy.json with its own interpreter.
AUDITWHEEL_POLICIES = r"""
set -eu
py=$(head -n1 "$(command -v auditwheel)" | sed 's/^#!//')
"$py" - <<'PY_EOF'
import json, pathlib, auditwheel
f = pathlib.Path(auditwheel.__file__).parent / "policy" / "manylinux-policy.json"
for p in json.loads(f.read_text()):
    print(p["name"], " ".join(sorted(p["symbol_versions"])))
PY_EOF
"""


def _glibc(policy: str) -> tuple[int, int]:
    glibc = manylinux.glibc_of(policy)
    assert glibc, f"unknown policy {policy!r}"
    return glibc


def test_auditwheel_plat_matches_glibc(
    guest: Any, image: ImageUnderTest, manylinux_env: dict[str, str]
) -> None:
    """AUDITWHEEL_PLAT names the image's own glibc: an older one would promise wheels
    that need less than they do, a newer one would not be honest either. The one allowed
    gap: a glibc newer than every policy the image's auditwheel knows for its architecture
    (trixie's 2.41 against auditwheel 6.4.2's newest, manylinux_2_39) gets that newest
    policy, and auditwheel itself then refuses any wheel that needs a newer symbol."""
    policy = manylinux_env["AUDITWHEEL_POLICY"]
    plat = manylinux_env["AUDITWHEEL_PLAT"]
    arch = image.target.arch.uname_m
    assert plat == f"{policy}_{arch}"
    out = guest.check_output("getconf GNU_LIBC_VERSION")  # "glibc 2.31"
    name, version = out.split()
    assert name == "glibc", out
    have = tuple(int(x) for x in version.split(".")[:2])
    want = _glibc(policy)
    if want == have:
        return
    known = [
        _glibc(line.split()[0])
        for line in guest.check_output(AUDITWHEEL_POLICIES).splitlines()
        if line.startswith("manylinux") and arch in line.split()[1:]
    ]
    assert known, f"the image's auditwheel knows no manylinux policy for {arch}"
    assert want < have and want == max(known), (
        f"{policy} but {out}; the newest policy the image's auditwheel knows for {arch} "
        f"is manylinux_{max(known)[0]}_{max(known)[1]}"
    )


# Builds a one-function C extension with the image's gcc against the interpreter's
# Python.h, packs it as a linux_<arch> wheel (zipfile: no setuptools needed offline) and
# lets auditwheel repair it under AUDITWHEEL_PLAT. Prints the repaired wheel's name.
AUDIT_SCRIPT = r"""
set -eu
d=$(mktemp -d)
cd "$d"
cat > probe.c <<'C_EOF'
#include <Python.h>
static PyObject *answer(PyObject *self, PyObject *args) { return PyLong_FromLong(42); }
static PyMethodDef methods[] = {{"answer", answer, METH_NOARGS, ""}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef mod = {PyModuleDef_HEAD_INIT, "probe", NULL, -1, methods};
PyMODINIT_FUNC PyInit_probe(void) { return PyModule_Create(&mod); }
C_EOF
py=$1
inc=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
suffix=$("$py" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
tag=$("$py" -c 'import sys; print("cp%d%d" % sys.version_info[:2])')
gcc -O2 -shared -fPIC -I"$inc" -o "probe$suffix" probe.c
cat > mkwheel.py <<'PY_EOF'
import base64, hashlib, platform, sys, zipfile
tag, so = sys.argv[1], sys.argv[2]
plat = "linux_" + platform.machine()
files = {
    so: open(so, "rb").read(),
    "probe-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: probe\nVersion: 1.0\n",
    "probe-1.0.dist-info/WHEEL": (
        "Wheel-Version: 1.0\nGenerator: xarch\nRoot-Is-Purelib: false\n"
        f"Tag: {tag}-{tag}-{plat}\n"
    ).encode(),
}
record = []
with zipfile.ZipFile(f"probe-1.0-{tag}-{tag}-{plat}.whl", "w") as z:
    for path, data in files.items():
        z.writestr(path, data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(data)}")
    record.append("probe-1.0.dist-info/RECORD,,")
    z.writestr("probe-1.0.dist-info/RECORD", "\n".join(record) + "\n")
PY_EOF
"$py" mkwheel.py "$tag" "probe$suffix"
auditwheel repair --plat "$AUDITWHEEL_PLAT" -w out probe-1.0-*.whl >repair.log 2>&1 \
  || { cat repair.log; exit 1; }
ls out
"""


def test_auditwheel_accepts_a_wheel_built_here(
    guest: Any, image: ImageUnderTest, manylinux_env: dict[str, str]
) -> None:
    """A C extension compiled by the image's gcc against its Python.h is repaired under
    the image's own AUDITWHEEL_PLAT: the policy is one its wheels can meet."""
    plat = manylinux_env["AUDITWHEEL_PLAT"]
    py = guest.run("ls -1d /opt/python/cp3*-cp3*/bin/python").stdout.split()[0]
    guest.run_expect([0], f"cat > /tmp/xarch-audit.sh <<'XARCH_EOF'\n{AUDIT_SCRIPT}\nXARCH_EOF")
    r = guest.run(f"AUDITWHEEL_PLAT={plat} sh /tmp/xarch-audit.sh {py}")
    assert r.rc == 0, r.stdout + r.stderr
    assert r.stdout.strip().endswith(f"{plat}.whl"), r.stdout
