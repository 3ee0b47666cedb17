"""binfmt_misc parsing and formatting, without touching the kernel.

The entry texts are what Linux prints (measured on 6.18): flags always in the
order P O C F, C implying O; magic and mask as lowercase hex exactly as
registered; no ``mask`` line when none was given; ``extension .foo`` for
extension entries.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from xarch.errors import BadInput, BinfmtError
from xarch.host import binfmt
from xarch.host.binfmt import BinfmtEntry, parse_entry, registration_line
from xarch.model.arch import ARCHES, get_arch

AARCH64_MAGIC = bytes.fromhex("7f454c460201010000000000000000000200b700")
AARCH64_MASK = bytes.fromhex("ffffffffffffff00fffffffffffffffffeffffff")
DEBIAN_PPC64LE_MAGIC = bytes.fromhex("7f454c4602010100000000000000000002001500")
DEBIAN_PPC64LE_MASK = bytes.fromhex("fffffffffffffffcfffffffffffffffffeffff00")
DEBIAN_S390X_MASK = bytes.fromhex("fffffffffffffffcfffffffffffffffffffeffff")

TEXT_OCF = """\
enabled
interpreter /usr/bin/qemu-aarch64-static
flags: OCF
offset 0
magic 7f454c460201010000000000000000000200b700
mask ffffffffffffff00fffffffffffffffffeffffff
"""

TEXT_DISABLED_DEBIAN_PPC64LE = """\
disabled
interpreter /usr/libexec/qemu-binfmt/ppc64le-binfmt-P
flags: POF
offset 0
magic 7f454c4602010100000000000000000002001500
mask fffffffffffffffcfffffffffffffffffeffff00
"""

# The kernel prints "flags: " with a trailing space when there are no flags.
TEXT_EXTENSION = "enabled\ninterpreter /usr/bin/wine\nflags: \nextension .exe\n"

TEXT_NO_MASK = "enabled\ninterpreter /usr/bin/foo\nflags: \noffset 3\nmagic 7f58415243\n"

# Old kernels print nothing but the state for a disabled entry.
TEXT_OLD_KERNEL_DISABLED = "disabled\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            TEXT_OCF,
            BinfmtEntry(
                name="e",
                enabled=True,
                interpreter="/usr/bin/qemu-aarch64-static",
                flags="OCF",
                offset=0,
                magic=AARCH64_MAGIC,
                mask=AARCH64_MASK,
                kind="magic",
            ),
            id="magic-OCF",
        ),
        pytest.param(
            TEXT_DISABLED_DEBIAN_PPC64LE,
            BinfmtEntry(
                name="e",
                enabled=False,
                interpreter="/usr/libexec/qemu-binfmt/ppc64le-binfmt-P",
                flags="POF",
                offset=0,
                magic=DEBIAN_PPC64LE_MAGIC,
                mask=DEBIAN_PPC64LE_MASK,
                kind="magic",
            ),
            id="disabled-debian-ppc64le",
        ),
        pytest.param(
            TEXT_EXTENSION,
            BinfmtEntry(
                name="e",
                enabled=True,
                interpreter="/usr/bin/wine",
                flags="",
                offset=0,
                magic=b"exe",
                mask=b"",
                kind="extension",
            ),
            id="extension",
        ),
        pytest.param(
            TEXT_NO_MASK,
            BinfmtEntry(
                name="e",
                enabled=True,
                interpreter="/usr/bin/foo",
                flags="",
                offset=3,
                magic=b"\x7fXARC",
                mask=b"",
                kind="magic",
            ),
            id="no-mask-offset",
        ),
        pytest.param(
            TEXT_OLD_KERNEL_DISABLED,
            BinfmtEntry(
                name="e",
                enabled=False,
                interpreter="",
                flags="",
                offset=0,
                magic=b"",
                mask=b"",
                kind="magic",
            ),
            id="old-kernel-disabled",
        ),
    ],
)
def test_parse_entry(text: str, expected: BinfmtEntry) -> None:
    assert parse_entry("e", text) == expected


def test_extension_entry_properties() -> None:
    entry = parse_entry("wine", TEXT_EXTENSION)
    assert entry.extension == "exe"
    assert entry.arch() is None
    assert entry.registration_line() == ":wine:E::exe::/usr/bin/wine:"


def test_old_kernel_disabled_entry_cannot_be_recreated() -> None:
    entry = parse_entry("e", TEXT_OLD_KERNEL_DISABLED)
    assert not entry.details_known
    assert entry.arch() is None
    with pytest.raises(BinfmtError, match="hides"):
        entry.registration_line()


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("maybe\n", id="bad-state"),
        pytest.param("enabled\ninterpreter /x\nflags: \noffset 0\nmagic 7g\n", id="bad-hex"),
        pytest.param("enabled\ninterpreter /x\nflags: \noffset zero\n", id="bad-offset"),
        pytest.param("enabled\ninterpreter /x\nflags: Z\n", id="bad-flag"),
        pytest.param(
            "enabled\ninterpreter /x\nflags: \noffset 0\nmagic 7f45\nmask ff\n",
            id="mask-length",
        ),
    ],
)
def test_parse_entry_rejects_garbage(text: str) -> None:
    with pytest.raises(BinfmtError, match="cannot parse binfmt_misc entry 'e'"):
        parse_entry("e", text)


# --- flags -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "kernel_prints"),
    [
        ("", ""),
        ("F", "F"),
        ("P", "P"),
        ("O", "O"),
        ("C", "OC"),
        ("CF", "OCF"),
        ("FOC", "OCF"),
        ("FCPO", "POCF"),
        ("OPF", "POF"),
        ("FF", "F"),
    ],
)
def test_normalize_flags_follows_kernel_order(given: str, kernel_prints: str) -> None:
    assert binfmt.normalize_flags(given) == kernel_prints


@pytest.mark.parametrize("flags", ["X", "f", "F C", "FZ", "-"])
def test_bad_flags_rejected(flags: str) -> None:
    aarch64 = get_arch("aarch64")
    with pytest.raises(BadInput, match=r"allowed flags are F .*P .*O .*C"):
        registration_line("qemu-aarch64", aarch64, "/usr/bin/qemu-aarch64-static", flags)


# --- registration line -----------------------------------------------------


def kernel_show(line: str, enabled: bool = True) -> str:
    """What the kernel would print after ``line`` was written to register
    (a model of fs/binfmt_misc.c: the delimiter is the first character, magic and
    mask are \\x-unescaped, C implies O, the magic is kept unmasked)."""
    delim = line[0]
    name, kind, offset, magic, mask, interp, flags = line[1:].split(delim)
    assert kind == "M" and name

    def unescape(text: str) -> bytes:
        return re.sub(r"\\x([0-9a-fA-F]{2})", lambda m: chr(int(m.group(1), 16)), text).encode(
            "latin-1"
        )

    raw_magic, raw_mask = unescape(magic), unescape(mask)
    assert not raw_mask or len(raw_mask) == len(raw_magic)
    out = [
        "enabled" if enabled else "disabled",
        f"interpreter {interp}",
        f"flags: {binfmt.normalize_flags(flags)}",
        f"offset {int(offset or 0)}",
        f"magic {raw_magic.hex()}",
    ]
    if raw_mask:
        out.append(f"mask {raw_mask.hex()}")
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("arch_name", sorted(ARCHES))
@pytest.mark.parametrize("flags", ["F", "CF", "POCF", ""])
def test_registration_line_round_trip(arch_name: str, flags: str) -> None:
    arch = ARCHES[arch_name]
    line = registration_line(arch.binfmt_name, arch, arch.emulator_path, flags)
    entry = parse_entry(arch.binfmt_name, kernel_show(line))
    assert entry.magic == arch.magic
    assert entry.mask == arch.mask
    assert entry.interpreter == arch.emulator_path
    assert entry.flags == binfmt.normalize_flags(flags)
    assert entry.arch() == arch
    # and an entry rebuilds the very same registration
    assert parse_entry(entry.name, kernel_show(entry.registration_line())) == entry


def test_registration_line_aarch64_exact() -> None:
    line = registration_line(
        "qemu-aarch64", get_arch("aarch64"), "/usr/bin/qemu-aarch64-static", "F"
    )
    assert line == (
        ":qemu-aarch64:M::"
        r"\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00"
        ":"
        r"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff"
        ":/usr/bin/qemu-aarch64-static:F"
    )


def test_colon_byte_is_escaped() -> None:
    entry = BinfmtEntry(
        name="colon",
        enabled=True,
        interpreter="/bin/x",
        flags="",
        offset=2,
        magic=b"a:b\\",
        mask=b":::\xff",
        kind="magic",
    )
    line = entry.registration_line()
    assert line.count(":") == 7  # only the field separators
    assert line == r":colon:M:2:\x61\x3a\x62\x5c:\x3a\x3a\x3a\xff:/bin/x:"


@pytest.mark.parametrize("name", ["", "a/b", "a:b", "register", "status", ".", "..", " x", "a\nb"])
def test_bad_names_rejected(name: str) -> None:
    with pytest.raises(BadInput, match="invalid binfmt_misc entry name"):
        registration_line(name, get_arch("aarch64"), "/usr/bin/qemu-aarch64-static")


@pytest.mark.parametrize("interpreter", ["", "/a:b", "/a\nb"])
def test_bad_interpreter_rejected(interpreter: str) -> None:
    with pytest.raises(BadInput, match="invalid interpreter"):
        registration_line("qemu-aarch64", get_arch("aarch64"), interpreter)


# --- architecture detection --------------------------------------------------


def entry(magic: bytes, mask: bytes, offset: int = 0) -> BinfmtEntry:
    return BinfmtEntry("e", True, "/x", "F", offset, magic, mask, "magic")


@pytest.mark.parametrize(
    ("magic", "mask", "expected"),
    [
        pytest.param(AARCH64_MAGIC, AARCH64_MASK, "aarch64", id="qemu-aarch64"),
        pytest.param(AARCH64_MAGIC, b"", "aarch64", id="aarch64-no-mask"),
        pytest.param(
            DEBIAN_PPC64LE_MAGIC, DEBIAN_PPC64LE_MASK, "ppc64le", id="debian-ppc64le-mask"
        ),
        pytest.param(
            DEBIAN_PPC64LE_MAGIC, ARCHES["ppc64le"].mask, "ppc64le", id="qemu-ppc64le-mask"
        ),
        pytest.param(ARCHES["s390x"].magic, DEBIAN_S390X_MASK, "s390x", id="debian-s390x-mask"),
        pytest.param(
            bytes.fromhex("7f454c4601010100000000000000000002002800"),
            AARCH64_MASK,
            "armv7l",
            id="arm",
        ),
        pytest.param(
            bytes.fromhex("7f454c4602010100000000000000000002000200"),
            AARCH64_MASK,
            None,
            id="sparc-unknown",
        ),
        pytest.param(b"\x7fELF", b"", None, id="generic-elf-matches-several"),
        pytest.param(b"MZ", b"", None, id="not-elf"),
    ],
)
def test_entry_arch(magic: bytes, mask: bytes, expected: str | None) -> None:
    got = entry(magic, mask).arch()
    assert (got.name if got else None) == expected


def test_matches_rules() -> None:
    aarch64, ppc64le = get_arch("aarch64"), get_arch("ppc64le")
    assert entry(AARCH64_MAGIC, AARCH64_MASK).matches(aarch64)
    assert not entry(AARCH64_MAGIC, AARCH64_MASK).matches(ppc64le)
    assert entry(DEBIAN_PPC64LE_MAGIC, DEBIAN_PPC64LE_MASK).matches(ppc64le)
    # a generic ELF handler catches every architecture
    assert entry(b"\x7fELF", b"").matches(aarch64)
    assert entry(b"\x7fELF", b"").matches(ppc64le)
    # with an offset: bytes 18..19 hold e_machine
    assert entry(b"\xb7\x00", b"", offset=18).matches(aarch64)
    assert not entry(b"\xb7\x00", b"", offset=18).matches(ppc64le)
    # bytes beyond the architecture's magic do not matter
    assert entry(AARCH64_MAGIC + b"\x01", b"").matches(aarch64)
    assert not entry(DEBIAN_PPC64LE_MAGIC + b"\x01", b"").matches(aarch64)
    # garbage in bits the entry's mask ignores does not matter
    assert entry(AARCH64_MAGIC[:7] + b"\x5a" + AARCH64_MAGIC[8:], AARCH64_MASK).matches(aarch64)
    # an entry comparing more bits than QEMU's mask (EI_OSABI) still matches
    assert entry(AARCH64_MAGIC, DEBIAN_PPC64LE_MASK[:19] + b"\xff").matches(aarch64)
    # an entry that masks out e_machine entirely matches (it catches aarch64 too)
    wide = AARCH64_MASK[:18] + b"\x00\x00"
    assert entry(AARCH64_MAGIC, wide).matches(aarch64)
    assert entry(AARCH64_MAGIC, wide).matches(ppc64le)


# --- reading a directory laid out like binfmt_misc ---------------------------


def fake_root(tmp_path: Path, entries: dict[str, str], status: str = "enabled") -> Path:
    (tmp_path / "register").write_text("")
    (tmp_path / "status").write_text(status + "\n")
    for name, text in entries.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def test_list_entries_and_snapshot(tmp_path: Path) -> None:
    root = fake_root(
        tmp_path,
        {
            "qemu-aarch64": TEXT_OCF,
            "qemu-ppc64le": TEXT_DISABLED_DEBIAN_PPC64LE,
            "w": TEXT_EXTENSION,
        },
    )
    assert binfmt.is_available(root)
    assert not binfmt.is_mounted(root)
    assert binfmt.status_enabled(root)
    names = [e.name for e in binfmt.list_entries(root)]
    assert names == ["qemu-aarch64", "qemu-ppc64le", "w"]
    assert [e.name for e in binfmt.entries_for(get_arch("aarch64"), root)] == ["qemu-aarch64"]
    assert [e.name for e in binfmt.entries_for(get_arch("ppc64le"), root)] == ["qemu-ppc64le"]
    state = binfmt.snapshot(root)
    assert state.names == names
    assert state.status_enabled
    assert state.by_name["qemu-ppc64le"].enabled is False


def test_status_disabled(tmp_path: Path) -> None:
    assert not binfmt.status_enabled(fake_root(tmp_path, {}, status="disabled"))


def test_not_mounted_says_how_to_mount(tmp_path: Path) -> None:
    assert not binfmt.is_available(tmp_path)
    with pytest.raises(BinfmtError, match=r"not mounted.*mount -t binfmt_misc binfmt_misc"):
        binfmt.list_entries(tmp_path)
    with pytest.raises(BinfmtError, match="not mounted"):
        binfmt.unregister("qemu-aarch64", tmp_path, log=lambda _: None)


def test_missing_entry_is_named(tmp_path: Path) -> None:
    root = fake_root(tmp_path, {})
    logged: list[str] = []
    with pytest.raises(BinfmtError, match="no binfmt_misc entry named 'qemu-arm'"):
        binfmt.set_enabled("qemu-arm", False, root, log=logged.append)
    assert logged == [f"+ echo 0 > {root / 'qemu-arm'}"]


def test_register_logs_shell_command_first(tmp_path: Path) -> None:
    # A plain file stands in for register; reading back then finds no entry.
    root = fake_root(tmp_path, {})
    logged: list[str] = []
    with pytest.raises(BinfmtError, match="no binfmt_misc entry named 'qemu-aarch64'"):
        binfmt.register(
            "qemu-aarch64",
            get_arch("aarch64"),
            "/usr/bin/qemu-aarch64-static",
            "F",
            root,
            log=logged.append,
        )
    line = registration_line("qemu-aarch64", get_arch("aarch64"), "/usr/bin/qemu-aarch64-static")
    assert logged == [f"+ echo '{line}' > {root / 'register'}"]
    assert (root / "register").read_text() == line
