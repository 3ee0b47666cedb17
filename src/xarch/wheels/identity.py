"""Are two wheels the same file? And if not, where do they first differ?

The strongest proof that native tools inside an image (compiler leaves, uv, ld) change
nothing is a wheel that is the same file both ways. When two wheels differ, this names
the first difference a person can act on: a member only one has, the member order, a
member's zip metadata (time stamp, permissions), or a member's content; for an ELF
member (a ``.so``), the first differing section and the byte within it.

ELF is read by hand (32/64-bit, either byte order: s390x is big-endian), only as far as
the section headers and names.
"""

from __future__ import annotations

import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Section:
    name: str
    offset: int
    size: int


def elf_sections(data: bytes) -> list[Section] | None:
    """The sections of an ELF file (None when ``data`` is not ELF or is truncated)."""
    if len(data) < 52 or data[:4] != b"\x7fELF" or data[4] not in (1, 2) or data[5] not in (1, 2):
        return None
    is64 = data[4] == 2
    end = "<" if data[5] == 1 else ">"
    try:
        if is64:
            (shoff,) = struct.unpack_from(end + "Q", data, 0x28)
            shentsize, shnum, shstrndx = struct.unpack_from(end + "HHH", data, 0x3A)
        else:
            (shoff,) = struct.unpack_from(end + "I", data, 0x20)
            shentsize, shnum, shstrndx = struct.unpack_from(end + "HHH", data, 0x2E)
        raw = []
        for i in range(shnum):
            base = shoff + i * shentsize
            if is64:
                name, _t, _f, _a, off, size = struct.unpack_from(end + "IIQQQQ", data, base)
            else:
                name, _t, _f, _a, off, size = struct.unpack_from(end + "IIIIII", data, base)
            raw.append((name, off, size, _t))
        strtab = raw[shstrndx] if shstrndx < len(raw) else None
    except struct.error:
        return None
    out = []
    for name_off, off, size, kind in raw:
        name = ""
        if strtab is not None:
            start = strtab[1] + name_off
            stop = data.find(b"\0", start)
            name = data[start:stop].decode("ascii", "replace") if stop >= 0 else ""
        out.append(Section(name=name, offset=off, size=0 if kind == 8 else size))  # NOBITS
    return out


def first_byte(a: bytes, b: bytes) -> int | None:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return None if len(a) == len(b) else n


def describe_member(name: str, a: bytes, b: bytes) -> str:
    """Where two versions of one member differ, as a person would want to hear it."""
    at = first_byte(a, b)
    if at is None:
        return ""
    sections = elf_sections(a)
    if sections is not None:
        for s in sections:
            if s.size and s.offset <= at < s.offset + s.size:
                rel = at - s.offset
                return (
                    f"{name}: section {s.name or '(unnamed)'} differs at byte {rel} of "
                    f"{s.size} (file offset {at}); sizes {len(a)} and {len(b)}"
                )
        return f"{name}: ELF headers or tables differ at file offset {at}"
    line = a[:at].count(b"\n") + 1
    return f"{name}: differs at byte {at} (line {line}); sizes {len(a)} and {len(b)}"


def compare_wheels(a: Path, b: Path) -> str | None:
    """None when ``a`` and ``b`` are the same file; else the first difference."""
    if a.read_bytes() == b.read_bytes():
        return None
    with zipfile.ZipFile(a) as za, zipfile.ZipFile(b) as zb:
        na, nb = za.namelist(), zb.namelist()
        only_a = sorted(set(na) - set(nb))
        only_b = sorted(set(nb) - set(na))
        if only_a or only_b:
            return f"members only in {a.name}: {only_a}; only in {b.name}: {only_b}"
        for name in na:
            diff = describe_member(name, za.read(name), zb.read(name))
            if diff:
                return diff
        if na != nb:
            first = next(i for i, (x, y) in enumerate(zip(na, nb, strict=True)) if x != y)
            return f"member order differs from entry {first}: {na[first]} against {nb[first]}"
        for ia, ib in zip(za.infolist(), zb.infolist(), strict=True):
            for attr in ("date_time", "external_attr", "compress_type", "create_system"):
                if getattr(ia, attr) != getattr(ib, attr):
                    return (
                        f"{ia.filename}: zip {attr} {getattr(ia, attr)} against "
                        f"{getattr(ib, attr)} (contents equal)"
                    )
    at = first_byte(a.read_bytes(), b.read_bytes())
    return f"the zip containers differ at byte {at} (every member and its metadata equal)"
