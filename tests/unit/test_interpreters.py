"""Stand-ins that build CPython 3.9 from source: which suites do, what keys and labels say,
and the bad input and failures that must stop a bootstrap (issue 17)."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from xarch.errors import BadInput, BuildError, ChecksumMismatch
from xarch.images.resources import resource_path
from xarch.images.standin import StandinSpec, interpreters, pins, wheels
from xarch.model.arch import get_arch
from xarch.model.config import BootstrapBase

MIRROR = "http://deb.debian.org/debian"


def _spec(suite: str, arch: str) -> StandinSpec:
    base = BootstrapBase(
        suite=suite, layout="manylinux-standin", packages=(), mirror=MIRROR, image="bases/s"
    )
    return StandinSpec(base=base, arch=get_arch(arch))


def test_a_suite_without_the_architecture_is_refused_naming_the_suites_that_have_it() -> None:
    with pytest.raises(BadInput) as e:
        _spec("bullseye", "s390x").key()
    msg = str(e.value)
    assert "bullseye does not carry s390x" in msg
    assert "base.bootstrap.suite" in msg
    assert "bookworm, trixie" in msg
    with pytest.raises(BadInput, match="trixie"):
        _spec("bookworm", "riscv64").packages  # noqa: B018


def test_bookworm_stand_ins_build_cp39_beside_debians_python() -> None:
    spec = _spec("bookworm", "s390x")
    assert spec.pythons == ("3.9", "3.11")
    labels = spec.labels()
    assert labels["io.xarch.standin.python"] == "3.9"
    assert labels["io.xarch.standin.pythons"] == "3.9 3.11"
    assert pins.CP39_SOURCE.sha256 in labels["io.xarch.standin.cpython-source"]
    assert "libssl-dev" in spec.packages and "libffi-dev" in spec.packages
    names = {f.name for f in spec.layout_files()}
    assert {"build-cpython.sh", "setup-built-python.sh"} <= names


def test_bullseye_keeps_its_own_python_and_its_key() -> None:
    spec = _spec("bullseye", "aarch64")
    assert spec.pythons == ("3.9",)
    assert "io.xarch.standin.cpython-source" not in spec.labels()
    assert "libssl-dev" not in spec.packages
    assert "build-cpython.sh" not in {f.name for f in spec.layout_files()}


def test_the_cp39_pins_are_part_of_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _spec("bookworm", "ppc64le")
    before = spec.key()
    monkeypatch.setattr(
        pins, "CP39_SOURCE", pins.PythonSource(version="3.9.2", pool="p/x.tar.xz", sha256="0" * 64)
    )
    assert spec.key() != before
    middle = spec.key()
    build = (pins.DebPin(package="python3.9-minimal", version="3.9.2-2", sha256="1" * 64),)
    monkeypatch.setattr(pins, "BUILD_PYTHON_DEBS", build)
    assert spec.key() != middle  # the build Python is an input of the built cp39 too
    bull = _spec("bullseye", "aarch64").key()
    assert _spec("bullseye", "aarch64").key() == bull


@pytest.mark.parametrize(
    ("suite", "arch", "gcc"), [("bookworm", "ppc64le", "12"), ("bookworm", "s390x", "12"),
                               ("trixie", "riscv64", "14")]
)  # fmt: skip
def test_every_built_arch_has_a_pinned_cross_toolchain(suite: str, arch: str, gcc: str) -> None:
    spec = _spec(suite, arch)
    assert spec.suite.gcc == gcc
    got = interpreters.toolchain_pins(spec)
    triplet = get_arch(arch).gnu_triplet
    assert {p.package for p in got} >= {
        f"gcc-{gcc}-{triplet}",
        f"cpp-{gcc}-{triplet}",
        f"binutils-{triplet}",
    }
    assert all(len(p.sha256) == 64 for p in got)
    # trixie's tools need glibc 2.38: the tree brings its own C library and loader
    assert ("libc6" in {p.package for p in got}) == (suite == "trixie")


def test_trixie_riscv64_builds_cp39_beside_313_and_repairs_for_the_newest_policy_known() -> None:
    spec = _spec("trixie", "riscv64")
    assert spec.pythons == ("3.9", "3.13")
    # glibc 2.41, but auditwheel 6.4.2 knows manylinux_2_39 at most
    assert spec.suite.glibc == "2.41"
    assert "AUDITWHEEL_PLAT=manylinux_2_39_riscv64" in spec.env()
    assert "AUDITWHEEL_PLAT=manylinux_2_36_ppc64le" in _spec("bookworm", "ppc64le").env()


def test_pip_download_platforms_cover_every_manylinux_tag_the_glibc_runs() -> None:
    tags = wheels.platform_tags(_spec("trixie", "riscv64"))
    assert tags[0] == "manylinux_2_41_riscv64" and "manylinux_2_31_riscv64" in tags
    assert tags[-1] == "manylinux2014_riscv64" and "manylinux_2_17_riscv64" in tags
    assert "manylinux_2_37_ppc64le" not in wheels.platform_tags(_spec("bookworm", "ppc64le"))


def _mirror_with(tmp_path: Path, content: bytes) -> str:
    f = tmp_path / "mirror" / pins.CP39_SOURCE.pool
    f.parent.mkdir(parents=True)
    f.write_bytes(content)
    return f"file://{tmp_path / 'mirror'}"


def test_a_source_whose_sha256_differs_is_refused_naming_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XARCH_CACHE_DIR", str(tmp_path / "cache"))
    mirror = _mirror_with(tmp_path, b"not the tarball")
    with pytest.raises(ChecksumMismatch) as e:
        interpreters.fetch_source(mirror, lambda _: None)
    msg = str(e.value)
    assert pins.CP39_SOURCE.sha256 in msg
    assert hashlib.sha256(b"not the tarball").hexdigest() in msg
    assert list((tmp_path / "cache" / "sources").iterdir()) == []  # nothing kept


def test_a_failed_interpreter_build_exits_1_with_the_tail_of_its_log(tmp_path: Path) -> None:
    """build-cpython.sh, the bootstrap's host-side hook, on a source whose configure
    fails: exit 1, and the tail of the build log on stderr (mmdebstrap passes it on, the
    bootstrap raises it, and no root filesystem is cached)."""
    src = io.BytesIO()
    with tarfile.open(fileobj=src, mode="w:xz") as tar:
        body = b"#!/bin/sh\necho 'checking for a working compiler... no' >&2\nexit 1\n"
        info = tarfile.TarInfo("Python-3.9.2/configure")
        info.size, info.mode = len(body), 0o755
        tar.addfile(info, io.BytesIO(body))
    source = tmp_path / "src.tar.xz"
    source.write_bytes(src.getvalue())
    t = "powerpc64le-linux-gnu"
    root = tmp_path / "root"
    (root / f"usr/lib/{t}").mkdir(parents=True)
    (root / f"usr/lib/{t}/libc.so").write_text(
        f"GROUP ( /lib/{t}/libc.so.6 /usr/lib/{t}/libc_nonshared.a "
        "AS_NEEDED ( /lib64/ld64.so.2 ) )\n"
    )
    env = {
        **os.environ,
        "XARCH_CPYTHON_SOURCE": str(source),
        "XARCH_BUILD_PYTHON": str(tmp_path),
        "XARCH_CROSS_TREE": str(tmp_path / "tree"),
        "XARCH_TRIPLET": t,
        "XARCH_GCC_MAJOR": "12",
        "XARCH_WORK": str(tmp_path / "work"),
        "XARCH_PREFIX": "/opt/python/cp39-cp39",
    }
    script = Path(str(resource_path("standin-manylinux"))) / "build-cpython.sh"
    r = subprocess.run(
        ["/bin/sh", str(script), str(root)], env=env, capture_output=True, text=True, check=False
    )
    assert r.returncode == 1, r.stderr
    assert "E: building CPython for /opt/python/cp39-cp39 failed (configure)" in r.stderr
    assert "checking for a working compiler... no" in r.stderr
    assert not (root / "opt").exists()
    # libc.so's absolute paths become sysroot-relative in the scratch copy only
    fixed = (tmp_path / "work" / "lib" / "libc.so").read_text()
    assert f"=/lib/{t}/libc.so.6" in fixed and "( =/lib64/ld64.so.2 )" in fixed


def _fake_build_python(tmp_path: Path, answer: str) -> Path:
    tree = tmp_path / "tree"
    python = tree / "usr" / "bin" / "python3.9"
    python.parent.mkdir(parents=True)
    python.write_text(f"#!/bin/sh\necho {answer}\n")
    python.chmod(0o755)
    return tree


def test_the_build_python_is_debians_of_the_sources_release(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert {p.package for p in pins.BUILD_PYTHON_DEBS} == {
        "python3.9-minimal", "libpython3.9-minimal", "libpython3.9-stdlib"
    }  # fmt: skip
    assert all(p.suite == "bullseye" and p.version.startswith(pins.CP39_SOURCE.version + "-")
               for p in pins.BUILD_PYTHON_DEBS)  # fmt: skip
    tree = _fake_build_python(tmp_path, pins.CP39_SOURCE.version)
    monkeypatch.setattr(interpreters, "_unpacked", lambda *a: tree)
    assert interpreters.build_python(MIRROR, lambda _: None) == tree / "usr" / "bin"


def test_a_build_python_of_another_release_is_refused_naming_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = _fake_build_python(tmp_path, "3.9.1")
    monkeypatch.setattr(interpreters, "_unpacked", lambda *a: tree)
    with pytest.raises(BuildError) as e:
        interpreters.build_python(MIRROR, lambda _: None)
    msg = str(e.value)
    assert "answered '3.9.1', not 3.9.2" in msg
    assert "BUILD_PYTHON_DEBS" in msg and f"remove {tree}" in msg
