"""The compiler probe's comparison on real big-endian objects (issue 17): s390x is the one
big-endian target, and the probe must be able to fail there as well as pass.

Debian's x86_64 cross gcc 12.2.0 for s390x (the pinned toolchain the s390x stand-in's
CPython is built with, and the accelerated s390x image's leaves) compiles the probe's
own corpus natively on the host, twice; `compare_trees`, the probe's verdict, must
- pass two identical compiles (objects, assembly, in the probe's layout);
- fail, naming the object and the byte, when one side's compiler identifies itself
  differently (the `.ident` the hook rewrites: what an unproven native leaf would leave);
- fail when one side's code differs (another -march: different instructions, same size).

    pytest tests/integration/test_probe_big_endian.py
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from xarch.errors import XarchError
from xarch.images import native_probe
from xarch.images.standin import StandinSpec, interpreters
from xarch.model.arch import get_arch
from xarch.model.config import BootstrapBase

S390X = get_arch("s390x")


@pytest.fixture(scope="module")
def cross_gcc() -> list[str]:
    """The pinned s390x cross gcc, unpacked under xarch's cache (downloaded once)."""
    base = BootstrapBase(
        suite="bookworm", layout="manylinux-standin", packages=(), mirror="", image="b/s"
    )
    spec = StandinSpec(base=base, arch=S390X)
    try:
        tree = interpreters.cross_toolchain(spec, lambda _: None)
    except XarchError as e:  # the archive unreachable: nothing to compile with
        pytest.skip(f"the s390x cross toolchain could not be fetched: {e}")
    t = S390X.gnu_triplet
    return [
        str(tree / f"usr/bin/{t}-gcc-12"),
        f"-B{tree}/usr/lib/gcc-cross/{t}/12/",
        f"-B{tree}/usr/bin/{t}-",
    ]


def _compile(gcc: list[str], corpus: Path, out: Path, *flags: str) -> None:
    out.mkdir(parents=True)
    env = {**os.environ, "LD_LIBRARY_PATH": str(Path(gcc[0]).parents[1] / "lib/x86_64-linux-gnu")}
    for c in sorted(corpus.glob("*.c")):
        for suffix, mode in ((".s", "-S"), (".o", "-c")):
            subprocess.run(
                [
                    *gcc,
                    "-O2",
                    "-ffreestanding",
                    *flags,
                    mode,
                    str(c),
                    "-o",
                    str(out / (c.stem + suffix)),
                ],
                check=True,
                env=env,
                capture_output=True,
            )


CORPUS = {
    "arith.c": "long mix(long a, long b) { return (a * 2654435761L) ^ (b >> 3); }\n"
    "double scale(double x) { return x * 0.5 + 1.0; }\n",
    "table.c": "static const unsigned short t[4] = {1, 258, 772, 65535};\n"
    "unsigned short pick(unsigned i) { return t[i & 3]; }\n",
}


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    d = tmp_path / "corpus"
    d.mkdir()
    for name, text in CORPUS.items():
        (d / name).write_text(text)
    return d


def test_identical_big_endian_outputs_pass(
    cross_gcc: list[str], corpus: Path, tmp_path: Path
) -> None:
    _compile(cross_gcc, corpus, tmp_path / "emulated")
    _compile(cross_gcc, corpus, tmp_path / "native")
    obj = (tmp_path / "emulated" / "table.o").read_bytes()
    assert obj[:6] == b"\x7fELF\x02\x02"  # 64-bit, big-endian
    assert int.from_bytes(obj[18:20], "big") == 22  # EM_S390
    result = native_probe.compare_trees(tmp_path / "emulated", tmp_path / "native")
    assert result.passed and result.compared == 4


def test_another_compiler_identification_fails_the_probe(
    cross_gcc: list[str], corpus: Path, tmp_path: Path
) -> None:
    """What the probe sees when a native leaf's .ident is not the image's: it fails on the
    assembly's .ident line first (arith.s), and on the objects' .comment bytes."""
    _compile(cross_gcc, corpus, tmp_path / "emulated")
    _compile(cross_gcc, corpus, tmp_path / "native", "-fno-ident")
    result = native_probe.compare_trees(tmp_path / "emulated", tmp_path / "native")
    assert not result.passed
    assert result.difference is not None
    assert result.difference.file == "arith.o", result.describe()
    (tmp_path / "native" / "arith.o").unlink()
    (tmp_path / "emulated" / "arith.o").unlink()
    again = native_probe.compare_trees(tmp_path / "emulated", tmp_path / "native")
    assert again.difference is not None and again.difference.file == "arith.s"
    assert ".ident" in again.difference.emulated, again.describe()


def test_other_code_fails_the_probe_at_its_first_byte(
    cross_gcc: list[str], corpus: Path, tmp_path: Path
) -> None:
    _compile(cross_gcc, corpus, tmp_path / "emulated", "-march=z10")
    _compile(cross_gcc, corpus, tmp_path / "native", "-march=z15")
    result = native_probe.compare_trees(tmp_path / "emulated", tmp_path / "native")
    assert result.difference is not None
    assert "first difference at byte offset" in result.difference.emulated, result.describe()
