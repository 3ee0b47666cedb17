"""Equivalence probe of an accelerated image: the corpus compiled both ways, compared.

``resources/native/probe.sh`` runs inside the image and compiles the corpus with the
emulated leaves (``XARCH_NATIVE_TOOLS=0``) and with the native ones (``=1``) into
``out/emulated`` and ``out/native``; :func:`compare_trees` (pure, on the host) then
requires:

- assembly (``*.s``) identical, ``.ident`` lines included (the hook gives the native
  output the image's identification where Debian's cross package names another
  revision), except one spelling of the ``.init_array`` section type that assembles
  to the same bytes (see :func:`normalise_asm_line`);
- objects identical, ``.comment`` included (``*.o``), and without it (``*.nc.o``, the
  image's ``objcopy --remove-section .comment``: a difference there is code, not
  identification);
- the linked programs (``*.bin`` and ``*.nc.bin``: linked without a build-id; a hooked
  ``ld`` must write the same bytes) and their output (``*.out``), the
  compilers' exit codes (``*.rc``) and the include search lists (``search-*.txt``)
  identical;
- the same set of files on both sides;
- every step (compile, assemble, link, run) succeeded on the emulated side: a step
  that fails the same way on both sides compares nothing.

The first difference names the file and, for text, the line. The corpus: the bench's
generated C file (with a ``main``), C++ with templates, exceptions, RTTI and
``<iostream>``, a C extension module against the image's ``Python.h`` and a compact
LZSS compressor, each at ``-O0``, ``-O2`` and ``-O3 -g``, with and without ``-fPIC``,
and the linked programs also at ``-O2 -flto``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from xarch.errors import XarchError
from xarch.images.resources import resource_text
from xarch.model.csource import generate_c_source
from xarch.oci.engine import Engine

#: Functions in the probe's generated C file (the bench's generator; 400 is the bench's
#: large size, which takes about 25 s per compile under emulation).
PROBE_FUNCTIONS = 120
CORPUS = ("cxx_features.cpp", "lzss.c", "pyext_module.c")
PROBE_DIR_IN_IMAGE = "/xarch-probe"
SIDES = ("emulated", "native")

Log = Callable[[str], None]


NOT_COMPARED = "not compared: the probe needs every step to succeed emulated"


class ProbeFailed(XarchError):
    """The native leaves did not produce what the emulated ones did: exit 1, the image
    is not tagged as accelerated."""


@dataclass(frozen=True, kw_only=True)
class Difference:
    file: str  # relative to out/<side>
    line: int  # 1-based; 0 for binary files and missing files
    emulated: str  # the emulated side's line (or a description)
    native: str

    def describe(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}\n  emulated: {self.emulated}\n  native:   {self.native}"


@dataclass(frozen=True, kw_only=True)
class ProbeResult:
    compared: int  # files compared
    difference: Difference | None

    @property
    def passed(self) -> bool:
        return self.difference is None and self.compared > 0

    def label(self) -> str:
        """The org.xarch.native.probe label value."""
        if self.passed:
            return f"passed ({self.compared} files equivalent)"
        return "failed" if self.difference else "empty"


# ------------------------------------------------------------------ comparisons (pure)


#: ``.section .init_array,"aw",%init_array``: Debian's cross cc1plus 10.2.1 spells out
#: the section type its native twin leaves to the assembler (a configure-time result of
#: the cross build, not a code difference). GAS gives ``.init_array``, ``.fini_array``,
#: ``.preinit_array`` and their ``.NNNNN`` priority variants exactly that type by name
#: (bfd's special sections), so both spellings assemble to the same bytes; the probe
#: still requires the objects to be identical.
_ARRAY_SECTION_TYPE = re.compile(
    r'^(\s*\.section\s+\.(init|fini|preinit)_array(?:\.[0-9]+)?,"aw"),%\2_array\s*$'
)


def normalise_asm_line(line: str) -> str:
    """The line with the redundant array-section type dropped (see above)."""
    m = _ARRAY_SECTION_TYPE.match(line)
    return m.group(1) if m else line


def compare_assembly(emulated: str, native: str) -> tuple[int, str, str] | None:
    """The first differing line (1-based number in the emulated text, both lines),
    ``.ident`` lines included, ignoring only :func:`normalise_asm_line`'s one spelling;
    None when equivalent."""
    a = list(enumerate(emulated.splitlines(), 1))
    b = list(enumerate(native.splitlines(), 1))
    for (ia, la), (_ib, lb) in zip(a, b, strict=False):
        if la != lb and normalise_asm_line(la) != normalise_asm_line(lb):
            return (ia, la, lb)
    if len(a) != len(b):
        if len(a) > len(b):
            return (a[len(b)][0], a[len(b)][1], "<end of file>")
        last = a[-1][0] + 1 if a else 1
        return (last, "<end of file>", b[len(a)][1])
    return None


def compare_text(emulated: str, native: str) -> tuple[int, str, str] | None:
    """The first differing line of two texts (program output, search lists)."""
    a, b = emulated.splitlines(), native.splitlines()
    for i, (la, lb) in enumerate(zip(a, b, strict=False), 1):
        if la != lb:
            return (i, la, lb)
    if len(a) != len(b):
        i = min(len(a), len(b))
        return (
            i + 1,
            a[i] if i < len(a) else "<end of file>",
            b[i] if i < len(b) else "<end of file>",
        )
    return None


def first_byte_difference(emulated: bytes, native: bytes) -> int | None:
    """Offset of the first differing byte (or the shorter length); None if equal."""
    if emulated == native:
        return None
    for i, (x, y) in enumerate(zip(emulated, native, strict=False)):
        if x != y:
            return i
    return min(len(emulated), len(native))


def compared_files(side: Path) -> set[str]:
    """The files of one side that the probe compares (relative names)."""
    out = set()
    for p in side.rglob("*"):
        if not p.is_file():
            continue
        name = p.name
        if name.endswith((".o", ".bin", ".s", ".out", ".rc", ".txt")):
            out.add(str(p.relative_to(side)))
    return out


def compare_file(name: str, emulated: bytes, native: bytes) -> Difference | None:
    """Compare one output file by its kind (suffix)."""
    if name.endswith((".o", ".bin")):
        off = first_byte_difference(emulated, native)
        if off is None:
            return None
        return Difference(
            file=name,
            line=0,
            emulated=f"{len(emulated)} bytes; first difference at byte offset {off}",
            native=f"{len(native)} bytes",
        )
    a = emulated.decode(errors="replace")
    b = native.decode(errors="replace")
    found = compare_assembly(a, b) if name.endswith(".s") else compare_text(a, b)
    if found is None:
        return None
    line, la, lb = found
    return Difference(file=name, line=line, emulated=la, native=lb)


def _failed_step(emulated: Path, rc_name: str) -> Difference | None:
    """A compile, assemble or link that failed on the emulated side makes the probe
    fail: identical failures on both sides would otherwise pass without comparing
    the code the step was there to compare."""
    for number, line in enumerate((emulated / rc_name).read_text().splitlines(), 1):
        step, _, code = line.partition(" ")
        if code.strip() != "0":
            err = emulated / (rc_name.removesuffix(".rc") + ".err")
            why = err.read_text(errors="replace").strip().splitlines() if err.exists() else []
            return Difference(
                file=rc_name,
                line=number,
                emulated=f"step {step} exited {code.strip()} with the image's own leaves: "
                + (" / ".join(why[-3:]) or "no message"),
                native=NOT_COMPARED,
            )
    return None


def compare_trees(emulated: Path, native: Path) -> ProbeResult:
    """Compare the probe outputs of both sides (see the module docstring)."""
    a, b = compared_files(emulated), compared_files(native)
    for name in sorted(a ^ b):
        present = "present" if name in a else "missing"
        other = "missing" if name in a else "present"
        return ProbeResult(
            compared=len(a & b),
            difference=Difference(file=name, line=0, emulated=present, native=other),
        )
    for name in sorted(n for n in a if n.endswith(".rc")):
        failed = _failed_step(emulated, name)
        if failed is not None:
            return ProbeResult(compared=len(a), difference=failed)
    for name in sorted(a):
        diff = compare_file(name, (emulated / name).read_bytes(), (native / name).read_bytes())
        if diff is not None:
            return ProbeResult(compared=len(a), difference=diff)
    return ProbeResult(compared=len(a), difference=None)


# --------------------------------------------------------------------------- running


def write_corpus(directory: Path, functions: int = PROBE_FUNCTIONS) -> None:
    """The corpus and the probe script, as probe.sh expects them in its DIR."""
    directory.mkdir(parents=True, exist_ok=True)
    main = (
        "\n#include <stdio.h>\n"
        "int main(void) {\n"
        "    struct pair p = {1, 2};\n"
        "    long acc = 0;\n"
        f"    for (long i = 0; i < 1000; i++) acc ^= f{functions - 1}(i, &p) + f0(i, &p);\n"
        '    printf("%ld %ld %ld\\n", acc, p.a, p.b);\n'
        "    return 0;\n"
        "}\n"
    )
    (directory / "generated_main.c").write_text(generate_c_source(functions) + main)
    for name in CORPUS:
        (directory / name).write_text(resource_text(f"native/corpus/{name}"))
    (directory / "probe.sh").write_text(resource_text("native/probe.sh"))


def _result(workdir: Path, log: Log) -> ProbeResult:
    out = workdir / "out"
    result = compare_trees(out / "emulated", out / "native")
    if result.passed:
        log(f"native probe: {result.label()}")
    return result


def require_passed(result: ProbeResult, image: str) -> None:
    """Raise ProbeFailed naming the first differing file and line."""
    if result.passed:
        return
    if result.difference is None:
        raise ProbeFailed(f"native probe of {image}: the probe produced no outputs")
    what = (
        "a step failed with the image's own (emulated) leaves, so nothing was compared, at"
        if result.difference.native == NOT_COMPARED
        else "the native leaves differ from the emulated ones at"
    )
    raise ProbeFailed(
        f"native probe of {image}: {what} "
        f"{result.difference.describe()}\n  hint: the image is not tagged as accelerated; "
        "set accelerate.enabled: false for this target to build it without acceleration"
    )


def run_probe(
    engine: Engine, image: str, platform: str, workdir: Path, log: Log = print
) -> ProbeResult:
    """Run the probe in a container of ``image`` (``workdir`` bind-mounted at
    /xarch-probe) and compare; the caller decides with :func:`require_passed`."""
    if workdir.exists():
        shutil.rmtree(workdir)
    write_corpus(workdir)
    log(f"+ docker run {image} sh {PROBE_DIR_IN_IMAGE}/probe.sh {PROBE_DIR_IN_IMAGE}")
    code, output = engine.run_output(
        image,
        ["/bin/sh", f"{PROBE_DIR_IN_IMAGE}/probe.sh", PROBE_DIR_IN_IMAGE],
        platform=platform,
        entrypoint=[],
        network="none",
        volumes={str(workdir): (PROBE_DIR_IN_IMAGE, "rw")},
    )
    for line in output.splitlines():
        if line.startswith("xarch probe: "):
            log(f"  {line}")  # each step and its time
    if code != 0:
        tail = "\n    ".join(output.splitlines()[-8:])
        raise ProbeFailed(f"native probe of {image}: probe.sh exited with {code}:\n    {tail}")
    return _result(workdir, log)


def run_probe_chroot(root: Path, log: Log = print) -> ProbeResult:
    """The same probe in an unpacked root filesystem (``chroot``; needs root and the
    image's binfmt handler). For developing a toolchain pin without an engine."""
    workdir = root / PROBE_DIR_IN_IMAGE.lstrip("/")
    if workdir.exists():
        shutil.rmtree(workdir)
    write_corpus(workdir)
    argv = ["chroot", str(root), "/bin/sh", f"{PROBE_DIR_IN_IMAGE}/probe.sh", PROBE_DIR_IN_IMAGE]
    log("+ " + " ".join(argv))
    done = subprocess.run(argv, check=False)
    if done.returncode != 0:
        raise ProbeFailed(f"native probe in {root}: probe.sh exited with {done.returncode}")
    return _result(workdir, log)
