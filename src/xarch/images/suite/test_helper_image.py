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
