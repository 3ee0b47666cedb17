"""Byte order in every byte-level path (issue 17): s390x is the only big-endian target.

The binfmt_misc magic and mask of each architecture must match that architecture's own
ELF headers (executables and shared objects: ET_EXEC and ET_DYN, in the header's byte
order) and no other architecture's; the wheel-identity reader finds sections in ELF
files of either order.
"""

from __future__ import annotations

import struct

import pytest

from xarch.model.arch import ARCHES
from xarch.wheels import identity

#: (ELF class, byte order, e_machine) of each target, as gcc writes them.
ELF_IDENT = {
    "aarch64": (2, "<", 183),
    "ppc64le": (2, "<", 21),
    "s390x": (2, ">", 22),
    "armv7l": (1, "<", 40),
    "riscv64": (2, "<", 243),
}


def _header(cls: int, order: str, machine: int, e_type: int) -> bytes:
    ident = b"\x7fELF" + bytes([cls, 1 if order == "<" else 2, 1]) + bytes(9)
    return ident + struct.pack(order + "HHI", e_type, machine, 1)


@pytest.mark.parametrize("name", sorted(ELF_IDENT))
@pytest.mark.parametrize("e_type", [2, 3])  # ET_EXEC, ET_DYN
def test_binfmt_magic_matches_its_own_headers_only(name: str, e_type: int) -> None:
    def matches(arch_name: str, header: bytes) -> bool:
        a = ARCHES[arch_name]
        return all((h & m) == g for h, m, g in zip(header, a.mask, a.magic, strict=False))

    header = _header(*ELF_IDENT[name], e_type)
    assert matches(name, header)
    others = [o for o in ELF_IDENT if o != name and matches(o, header)]
    assert others == []


def test_s390x_magic_is_big_endian() -> None:
    a = ARCHES["s390x"]
    assert a.magic[5] == 2  # EI_DATA = ELFDATA2MSB
    assert a.magic[18:20] == b"\x00\x16"  # e_machine 22, most significant byte first


def _elf_with_section(order: str, name: bytes, body: bytes) -> bytes:
    """A 64-bit ELF with a null section, `name` holding `body`, and .shstrtab."""
    shstr = b"\0" + name + b"\0.shstrtab\0"
    head = _header(2, order, 22, 3).ljust(64, b"\0")
    data_off = 64
    shstr_off = data_off + len(body)
    shoff = shstr_off + len(shstr)
    head = head[:0x28] + struct.pack(order + "Q", shoff) + head[0x30:]
    head = head[:0x3A] + struct.pack(order + "HHH", 64, 3, 2) + head[0x40:]
    sections = bytes(64)
    sections += struct.pack(order + "IIQQQQ", 1, 1, 0, 0, data_off, len(body)).ljust(64, b"\0")
    sections += struct.pack(
        order + "IIQQQQ", 1 + len(name) + 1, 3, 0, 0, shstr_off, len(shstr)
    ).ljust(64, b"\0")
    return head + body + shstr + sections


@pytest.mark.parametrize("order", ["<", ">"])
def test_identity_reads_sections_in_either_byte_order(order: str) -> None:
    a = _elf_with_section(order, b".comment", b"GCC: (Debian 12.2.0-14) 12.2.0\0")
    b = _elf_with_section(order, b".comment", b"GCC: (Debian 12.2.0-14) 12.2.1\0")
    sections = identity.elf_sections(a)
    assert sections is not None
    assert [s.name for s in sections] == ["", ".comment", ".shstrtab"]
    where = identity.describe_member("m.so", a, b)
    assert "section .comment differs at byte 29 of 31" in where, where
