"""The native-compiler probe's comparison rules (xarch.images.native_probe), on real
files in tmp_path: what counts as equivalent, and that the first difference is named
with its file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from xarch.images import native_probe as probe

ASM = """\
\t.arch armv8-a
\t.file\t"lzss.c"
\t.text
\t.align\t2
\t.global\tf0
f0:
\tadd\tx0, x0, 3
\tret
\t.ident\t"GCC: (Debian 10.2.1-6) 10.2.1 20210110"
\t.section\t.note.GNU-stack,"",@progbits
"""


def write_side(root: Path, files: dict[str, bytes | str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            p.write_text(content)
        else:
            p.write_bytes(content)
    return root


def sides(
    tmp_path: Path, emulated: dict[str, bytes | str], native: dict[str, bytes | str]
) -> probe.ProbeResult:
    return probe.compare_trees(
        write_side(tmp_path / "emulated", emulated), write_side(tmp_path / "native", native)
    )


GOOD: dict[str, bytes | str] = {
    "lzss.O2-pic.s": ASM,
    "lzss.O2-pic.nc.o": b"\x7fELF\x02\x01\x01object bytes",
    "lzss.O2-pic.out": "in 200000 crc 743fc4aa packed 29726\n",
    "lzss.O2-pic.rc": "S 0\nC 0\nL 0\n",
    "search-c.txt": "#include <...> search starts here:\n /usr/include\nEnd of search list.\n",
}


def test_identical_outputs_pass(tmp_path: Path) -> None:
    result = sides(tmp_path, GOOD, GOOD)
    assert result.passed
    assert result.compared == 5
    assert result.label() == "passed (5 files equivalent)"


def test_ident_lines_must_match_too(tmp_path: Path) -> None:
    """The hook gives native output the image's identification: a differing .ident
    means it did not (the wheel's .comment would differ)."""
    other = dict(GOOD, **{"lzss.O2-pic.s": ASM.replace("10.2.1-6)", "10.2.1-6cross1)")})
    result = sides(tmp_path, GOOD, other)
    assert result.difference is not None
    assert result.difference.file == "lzss.O2-pic.s"
    assert "10.2.1-6cross1" in result.difference.native


def test_an_assembly_difference_names_file_and_line(tmp_path: Path) -> None:
    other = dict(GOOD, **{"lzss.O2-pic.s": ASM.replace("add\tx0, x0, 3", "add\tx0, x0, 4")})
    result = sides(tmp_path, GOOD, other)
    assert not result.passed
    assert result.difference == probe.Difference(
        file="lzss.O2-pic.s", line=7, emulated="\tadd\tx0, x0, 3", native="\tadd\tx0, x0, 4"
    )
    assert result.label() == "failed"
    with pytest.raises(probe.ProbeFailed, match=r"lzss\.O2-pic\.s:7\n  emulated: \tadd\tx0, x0, 3"):
        probe.require_passed(result, "helper:aarch64")


def test_a_missing_ident_line_is_a_difference() -> None:
    assert probe.compare_assembly('x\n\t.ident "a"\n', "x\n") == (
        2, '\t.ident "a"', "<end of file>"
    )  # fmt: skip


def test_assembly_truncated_on_one_side() -> None:
    assert probe.compare_assembly("a\nb\n", "a\n") == (2, "b", "<end of file>")
    assert probe.compare_assembly("a\n", "a\nb\n") == (2, "<end of file>", "b")


def test_object_difference_names_the_byte_offset(tmp_path: Path) -> None:
    other = dict(GOOD, **{"lzss.O2-pic.nc.o": b"\x7fELF\x02\x01\x01object bytez"})
    result = sides(tmp_path, GOOD, other)
    assert result.difference is not None
    assert result.difference.file == "lzss.O2-pic.nc.o"
    assert result.difference.line == 0
    assert "byte offset 18" in result.difference.emulated


def test_raw_objects_are_compared_comment_and_all(tmp_path: Path) -> None:
    result = sides(
        tmp_path,
        dict(GOOD, **{"lzss.O2-pic.o": b"comment A"}),
        dict(GOOD, **{"lzss.O2-pic.o": b"comment B"}),
    )
    assert result.difference is not None and result.difference.file == "lzss.O2-pic.o"


def test_program_output_difference(tmp_path: Path) -> None:
    other = dict(GOOD, **{"lzss.O2-pic.out": "in 200000 crc 00000000 packed 29726\n"})
    result = sides(tmp_path, GOOD, other)
    assert result.difference is not None
    assert (result.difference.file, result.difference.line) == ("lzss.O2-pic.out", 1)


def test_exit_code_difference_is_a_difference(tmp_path: Path) -> None:
    """A native leaf that fails (crash, missing) shows as a different exit code."""
    other = dict(GOOD, **{"lzss.O2-pic.rc": "S 0\nC 1\nL 0\n"})
    result = sides(tmp_path, GOOD, other)
    assert result.difference == probe.Difference(
        file="lzss.O2-pic.rc", line=2, emulated="C 0", native="C 1"
    )


def test_a_file_missing_on_one_side(tmp_path: Path) -> None:
    native = {k: v for k, v in GOOD.items() if k != "lzss.O2-pic.out"}
    result = sides(tmp_path, GOOD, native)
    assert result.difference == probe.Difference(
        file="lzss.O2-pic.out", line=0, emulated="present", native="missing"
    )


def test_no_outputs_is_not_a_pass(tmp_path: Path) -> None:
    result = sides(tmp_path, {}, {})
    assert not result.passed
    assert result.label() == "empty"
    with pytest.raises(probe.ProbeFailed, match="no outputs"):
        probe.require_passed(result, "img")


def test_the_first_difference_in_name_order_is_reported(tmp_path: Path) -> None:
    other = dict(GOOD)
    other["lzss.O2-pic.out"] = "changed\n"
    other["lzss.O2-pic.s"] = ASM.replace("ret", "nop")
    result = sides(tmp_path, GOOD, other)
    assert result.difference is not None
    assert result.difference.file == "lzss.O2-pic.out"


def test_first_byte_difference() -> None:
    assert probe.first_byte_difference(b"abc", b"abc") is None
    assert probe.first_byte_difference(b"abc", b"abd") == 2
    assert probe.first_byte_difference(b"abc", b"ab") == 2


def test_write_corpus_holds_every_probe_input(tmp_path: Path) -> None:
    probe.write_corpus(tmp_path, functions=8)
    names = {p.name for p in tmp_path.iterdir()}
    assert names == {"generated_main.c", "probe.sh", *probe.CORPUS}
    main = (tmp_path / "generated_main.c").read_text()
    assert "long f7(long x, struct pair *p)" in main
    assert "f7(i, &p)" in main


@pytest.mark.parametrize(
    ("emulated", "native"),
    [
        ('\t.section\t.init_array,"aw"', '\t.section\t.init_array,"aw",%init_array'),
        ('\t.section\t.fini_array,"aw"', '\t.section\t.fini_array,"aw",%fini_array'),
        ('\t.section\t.init_array.00101,"aw"', '\t.section\t.init_array.00101,"aw",%init_array'),
    ],
)
def test_the_array_section_type_the_assembler_implies_may_be_spelled_out(
    emulated: str, native: str
) -> None:
    assert probe.compare_assembly(f"a\n{emulated}\nb\n", f"a\n{native}\nb\n") is None


@pytest.mark.parametrize(
    ("emulated", "native"),
    [
        # another type than the name implies is a real difference
        ('\t.section\t.init_array,"aw"', '\t.section\t.init_array,"aw",%progbits'),
        ('\t.section\t.init_array,"aw"', '\t.section\t.init_array,"aw",%fini_array'),
        # other flags, other sections: never normalised
        ('\t.section\t.init_array,"a"', '\t.section\t.init_array,"aw",%init_array'),
        ('\t.section\t.data.rel,"aw"', '\t.section\t.data.rel,"aw",%progbits'),
    ],
)
def test_other_section_spellings_still_differ(emulated: str, native: str) -> None:
    assert probe.compare_assembly(f"a\n{emulated}\n", f"a\n{native}\n") == (2, emulated, native)


def test_linked_programs_are_compared_byte_for_byte(tmp_path: Path) -> None:
    a = dict(GOOD, **{"lzss.O2lto-nopic.nc.bin": b"\x7fELF program"})
    b = dict(GOOD, **{"lzss.O2lto-nopic.nc.bin": b"\x7fELF progran"})
    result = sides(tmp_path, a, b)
    assert result.difference is not None
    assert result.difference.file == "lzss.O2lto-nopic.nc.bin"
    assert "byte offset 11" in result.difference.emulated


def test_a_step_failing_the_same_way_on_both_sides_fails_the_probe(tmp_path: Path) -> None:
    """Both sides failing to link would leave equal .rc files and no program to compare:
    that is not a pass."""
    failed = dict(GOOD, **{"lzss.O2-pic.rc": "S 0\nC 0\nL 1\n"})
    failed["lzss.O2-pic.err"] = "ld: cannot find -lfoo\ncollect2: error: ld returned 1\n"
    result = sides(tmp_path, failed, failed)
    assert not result.passed
    assert result.difference is not None
    assert (result.difference.file, result.difference.line) == ("lzss.O2-pic.rc", 3)
    assert "step L exited 1" in result.difference.emulated
    assert "collect2: error: ld returned 1" in result.difference.emulated
