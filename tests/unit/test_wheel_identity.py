"""Two wheels compared byte for byte, and the first difference named: a member, its zip
metadata, or (for ELF members, in either byte order) the section and byte."""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import pytest

from xarch.wheels.identity import compare_wheels, elf_sections


def elf(comment: bytes, *, big: bool = False, is64: bool = True) -> bytes:
    """A minimal ELF file: a .text section, a .comment section and .shstrtab."""
    end = ">" if big else "<"
    text = b"\x90" * 16
    names = b"\0.text\0.comment\0.shstrtab\0"
    ehsize, shentsize = (64, 64) if is64 else (52, 40)
    body = text + comment + names
    shoff = ehsize + len(body)
    ident = b"\x7fELF" + bytes([2 if is64 else 1, 2 if big else 1, 1]) + bytes(9)
    if is64:
        header = ident + struct.pack(
            end + "HHIQQQIHHHHHH", 3, 22 if big else 183, 1, 0, 0, shoff, 0, ehsize, 0, 0,
            shentsize, 4, 3,
        )  # fmt: skip
    else:
        header = ident + struct.pack(
            end + "HHIIIIIHHHHHH", 3, 40, 1, 0, 0, shoff, 0, ehsize, 0, 0, shentsize, 4, 3
        )
    offsets = [(0, 0, 0, 0)]
    pos = ehsize
    for name_off, data in ((1, text), (7, comment), (16, names)):
        offsets.append((name_off, 1, pos, len(data)))
        pos += len(data)
    shdrs = b""
    for name_off, kind, off, size in offsets:
        if is64:
            shdrs += struct.pack(end + "IIQQQQIIQQ", name_off, kind, 0, 0, off, size, 0, 0, 1, 0)
        else:
            shdrs += struct.pack(end + "IIIIIIIIII", name_off, kind, 0, 0, off, size, 0, 0, 1, 0)
    return header + body + shdrs


def wheel(
    path: Path, members: dict[str, bytes], date: tuple[int, ...] = (2020, 1, 1, 0, 0, 0)
) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(zipfile.ZipInfo(name, date_time=date), data)
    return path


@pytest.mark.parametrize(("big", "is64"), [(False, True), (True, True), (False, False)])
def test_elf_sections_are_read_in_either_byte_order(big: bool, is64: bool) -> None:
    sections = elf_sections(elf(b"GCC: (Debian 10.2.1-6) 10.2.1\0", big=big, is64=is64))
    assert sections is not None
    assert [s.name for s in sections] == ["", ".text", ".comment", ".shstrtab"]
    assert sections[2].size == len(b"GCC: (Debian 10.2.1-6) 10.2.1\0")


def test_not_elf_is_none() -> None:
    assert elf_sections(b"#!/bin/sh\n" * 10) is None


def test_the_same_file_is_the_same(tmp_path: Path) -> None:
    a = wheel(tmp_path / "a.whl", {"x.so": elf(b"GCC: A\0")})
    b = tmp_path / "b.whl"
    b.write_bytes(a.read_bytes())
    assert compare_wheels(a, b) is None


@pytest.mark.parametrize("big", [False, True])
def test_an_elf_member_names_its_first_differing_section(tmp_path: Path, big: bool) -> None:
    a = wheel(tmp_path / "a.whl", {"m/x.so": elf(b"GCC: (Debian 10.2.1-6)\0", big=big)})
    b = wheel(tmp_path / "b.whl", {"m/x.so": elf(b"GCC: (Debian 10.2.1-7)\0", big=big)})
    diff = compare_wheels(a, b)
    assert diff is not None
    assert diff.startswith("m/x.so: section .comment differs at byte 20 of 23")


def test_a_text_member_names_its_byte_and_line(tmp_path: Path) -> None:
    a = wheel(tmp_path / "a.whl", {"RECORD": b"a,1\nb,2\n"})
    b = wheel(tmp_path / "b.whl", {"RECORD": b"a,1\nb,3\n"})
    assert compare_wheels(a, b) == "RECORD: differs at byte 6 (line 2); sizes 8 and 8"


def test_members_only_on_one_side(tmp_path: Path) -> None:
    a = wheel(tmp_path / "a.whl", {"x": b"1", "y": b"2"})
    b = wheel(tmp_path / "b.whl", {"x": b"1"})
    assert compare_wheels(a, b) == "members only in a.whl: ['y']; only in b.whl: []"


def test_time_stamps_and_order(tmp_path: Path) -> None:
    a = wheel(tmp_path / "a.whl", {"x": b"1"})
    b = wheel(tmp_path / "b.whl", {"x": b"1"}, date=(2026, 12, 7, 0, 0, 0))
    assert "x: zip date_time (2020, 1, 1, 0, 0, 0) against (2026, 12, 7, 0, 0, 0)" in str(
        compare_wheels(a, b)
    )
    c = wheel(tmp_path / "c.whl", {"x": b"1", "y": b"2"})
    d = wheel(tmp_path / "d.whl", {"y": b"2", "x": b"1"})
    assert compare_wheels(c, d) == "member order differs from entry 0: x against y"
