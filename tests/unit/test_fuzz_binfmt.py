"""No text crashes the binfmt_misc entry parser: whatever a /proc/sys/fs/binfmt_misc
file (or a binfmt.d file) holds, parsing gives a BinfmtEntry or a BinfmtError, and
what a parsed entry offers (matching, re-registration) raises only xarch errors."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xarch.errors import BadInput, BinfmtError
from xarch.host import binfmt
from xarch.host import emulators as hostemu
from xarch.model.arch import ARCHES

FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
REAL = (
    "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: POCF\noffset 0\n"
    "magic 7f454c460201010000000000000000000200b700\n"
    "mask ffffffffffffff00fffffffffffffffffeffffff\n"
)

keys = st.sampled_from(
    ["enabled", "disabled", "interpreter", "flags:", "offset", "magic", "mask", "extension", "x"]
)
values = st.one_of(
    st.text(max_size=24),
    st.binary(max_size=40).map(bytes.hex),
    st.integers(min_value=-(10**6), max_value=10**40).map(str),
    st.sampled_from(["F", "POCF", "CF", "Z", "", "0", "-1", "7f454c46", "ff" * 300]),
)
entry_lines = st.lists(st.tuples(keys, values).map(" ".join), max_size=9)
texts = st.one_of(
    st.text(max_size=300),
    st.builds(
        lambda first, rest: "\n".join([first, *rest]) + "\n",
        st.sampled_from(["enabled", "disabled", " enabled", "Enabled", ""]),
        entry_lines,
    ),
    st.builds(
        lambda cut, insert: REAL[:cut] + insert + REAL[cut:],
        st.integers(min_value=0, max_value=len(REAL)),
        st.text(max_size=12),
    ),
)


def exercise(e: binfmt.BinfmtEntry) -> None:
    for a in ARCHES.values():
        e.matches(a)
    e.arch()
    assert e.same_registration(e)
    _ = e.extension, e.details_known, e.effective_mask()
    try:
        line = e.registration_line()
    except (BinfmtError, BadInput):
        return
    assert line.startswith(f":{e.name}:")


@FUZZ
@given(text=texts)
def test_parse_entry_never_crashes(text: str) -> None:
    try:
        e = binfmt.parse_entry("fuzz", text)
    except BinfmtError as err:
        assert "'fuzz'" in str(err)
        return
    exercise(e)


@FUZZ
@given(data=st.binary(max_size=400))
def test_list_entries_reads_any_bytes(tmp_path: Path, data: bytes) -> None:
    """Files as the kernel could show them, also with interpreter paths that are not
    UTF-8 (the kernel prints the bytes it was given)."""
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    (root / "register").write_bytes(b"")
    (root / "status").write_bytes(b"enabled\n")
    (root / "fuzz").write_bytes(data)
    try:
        entries = binfmt.list_entries(root)
    except BinfmtError:
        return
    for e in entries:
        exercise(e)


def test_non_utf8_interpreter_round_trips() -> None:
    text = REAL.encode().replace(b"aarch64-binfmt-P", b"caf\xe9").decode("utf-8", "surrogateescape")
    e = binfmt.parse_entry("qemu-aarch64", text)
    assert e.interpreter.encode("utf-8", "surrogateescape").endswith(b"caf\xe9")
    assert e.registration_line().encode("utf-8", "surrogateescape").endswith(b"caf\xe9:POCF")


def test_negative_offset_is_refused() -> None:
    try:
        binfmt.parse_entry("n", REAL.replace("offset 0", "offset -3"))
    except BinfmtError as e:
        assert "negative offset" in str(e)
    else:
        raise AssertionError("a negative offset was accepted")


@FUZZ
@given(
    lines=st.lists(
        st.one_of(st.text(max_size=80), st.just(":qemu-x:M::\\x7fELF::/x:F")), max_size=6
    )
)
def test_persisted_binfmt_d_files_never_crash_status(tmp_path: Path, lines: list[str]) -> None:
    d = tmp_path / "binfmt.d"
    d.mkdir(exist_ok=True)
    (d / "fuzz.conf").write_text("\n".join(lines), encoding="utf-8", errors="surrogateescape")
    for file, entry in hostemu._persisted_lines((d,)):
        assert file.parent == d
        exercise(entry)
