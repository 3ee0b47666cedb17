"""binfmt_misc against the real kernel: register, read back, restore.

Every test leaves the host's entries exactly as it found them (an autouse
fixture compares before/after). Entries these tests create are named
``xarch-test-*`` and use a magic no real file has, except where a real aarch64
handler is the point (``qemu-aarch64``); other aarch64 entries are disabled only
for the duration of a block and re-enabled afterwards.
"""

from __future__ import annotations

import errno
import os
import struct
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from xarch.errors import BadInput, BinfmtError
from xarch.host import binfmt
from xarch.host.binfmt import BinfmtEntry
from xarch.model.arch import Arch, get_arch

QEMU_AARCH64 = Path("/usr/bin/qemu-aarch64-static")
TEST_PREFIX = "xarch-test-"


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "changing binfmt_misc needs root"
    if not binfmt.is_available():
        return (
            f"binfmt_misc is not mounted at {binfmt.BINFMT_DIR}; "
            "mount it with: mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc"
        )
    return None


pytestmark = [
    pytest.mark.binfmt,
    pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or ""),
]

# An "architecture" whose magic no real file has: entries for it never catch anything.
FAKE = Arch(
    name="xarchfake",
    docker_os="linux",
    docker_arch="xarchfake",
    docker_variant="",
    debian_arch="xarchfake",
    qemu_name="xarchfake",
    magic=b"\x7fXARCH-TEST:\x00\xff",
    mask=b"\xff" * 12 + b"\x00\xf0",
    file_description="nothing",
)
# Any existing file works as the interpreter for flag F; nothing will ever run it.
FAKE_INTERP = "/bin/true"


def quiet(_: str) -> None:
    pass


def aarch64_exit42(path: Path) -> Path:
    """A 132-byte static aarch64 ELF that exits with status 42."""
    code = struct.pack("<3I", 0xD2800540, 0xD2800BA8, 0xD4000001)  # x0=42; x8=93; svc 0
    base, hdr = 0x400000, 64 + 56
    ehdr = b"\x7fELF\x02\x01\x01\x00" + bytes(8)
    ehdr += struct.pack("<HHIQQQIHHHHHH", 2, 0xB7, 1, base + hdr, 64, 0, 0, 64, 56, 1, 0, 0, 0)
    size = hdr + len(code)
    phdr = struct.pack("<IIQQQQQQ", 1, 5, 0, base, base, size, size, 0x1000)
    path.write_bytes(ehdr + phdr + code)
    path.chmod(0o755)
    return path


@pytest.fixture(autouse=True)
def host_state_unchanged() -> Iterator[list[BinfmtEntry]]:
    before = binfmt.list_entries()
    state = binfmt.snapshot()
    yield before
    after = binfmt.list_entries()
    if after != before:
        binfmt.restore(state, log=quiet)  # repair the host before failing
        pytest.fail(f"binfmt_misc changed:\nbefore={before}\nafter={after}")


@pytest.fixture
def fake_entry() -> Iterator[BinfmtEntry]:
    """A registered xarch-test entry, removed afterwards whatever happens."""
    name = TEST_PREFIX + "a"
    entry = binfmt.register(name, FAKE, FAKE_INTERP, "F", log=quiet)
    yield entry
    if (binfmt.BINFMT_DIR / name).exists():
        binfmt.unregister(name, log=quiet)


def _names() -> set[str]:
    return {e.name for e in binfmt.list_entries()}


def test_temporary_handler_aarch64(tmp_path: Path) -> None:
    if not QEMU_AARCH64.exists():
        pytest.skip(f"{QEMU_AARCH64} missing (apt-get install qemu-user-static)")
    aarch64 = get_arch("aarch64")
    before = binfmt.list_entries()
    others = [e for e in before if e.matches(aarch64) and e.name != aarch64.binfmt_name]
    logged: list[str] = []
    with binfmt.temporary_handler(aarch64, str(QEMU_AARCH64), "F", log=logged.append) as entry:
        assert entry.name == "qemu-aarch64"
        assert entry.enabled
        assert entry.interpreter == str(QEMU_AARCH64)
        assert entry.flags == "F"
        assert (entry.offset, entry.magic, entry.mask) == (0, aarch64.magic, aarch64.mask)
        assert entry.arch() == aarch64
        inside = {e.name: e for e in binfmt.entries_for(aarch64)}
        assert inside["qemu-aarch64"] == entry
        for other in others:  # exclusive: every other aarch64 handler is off
            assert not inside[other.name].enabled
        if binfmt.status_enabled():
            prog = aarch64_exit42(tmp_path / "exit42")
            assert subprocess.run([str(prog)], check=False).returncode == 42
    assert binfmt.list_entries() == before
    assert logged[0].startswith("+ echo ':qemu-aarch64:M::\\x7f\\x45\\x4c\\x46")
    assert logged[0].endswith(
        ":/usr/bin/qemu-aarch64-static:F' > /proc/sys/fs/binfmt_misc/register"
    )
    assert all(line.startswith("+ echo ") for line in logged)


def test_no_handler_aarch64_gives_exec_format_error(tmp_path: Path) -> None:
    aarch64 = get_arch("aarch64")
    if not binfmt.status_enabled():
        pytest.skip("binfmt_misc is globally disabled")
    prog = aarch64_exit42(tmp_path / "exit42")
    before = binfmt.list_entries()
    with binfmt.no_handler(aarch64, log=quiet) as disabled:
        assert {e.name for e in disabled} == {
            e.name for e in before if e.enabled and e.matches(aarch64)
        }
        assert not any(e.enabled for e in binfmt.entries_for(aarch64))
        with pytest.raises(OSError) as info:
            subprocess.run([str(prog)], check=False)
        assert info.value.errno == errno.ENOEXEC  # "Exec format error"
    assert binfmt.list_entries() == before


def test_no_handler_only_touches_matching_entries(fake_entry: BinfmtEntry) -> None:
    other = binfmt.register(TEST_PREFIX + "other", get_arch("s390x"), FAKE_INTERP, "", log=quiet)
    try:
        with binfmt.no_handler(FAKE, log=quiet) as disabled:
            assert [e.name for e in disabled] == [fake_entry.name]
            assert not binfmt.read_entry(fake_entry.name).enabled
            assert binfmt.read_entry(other.name).enabled
        assert binfmt.read_entry(fake_entry.name) == fake_entry
    finally:
        binfmt.unregister(other.name, log=quiet)


def test_restore_recreates_removed_and_removes_added(fake_entry: BinfmtEntry) -> None:
    state = binfmt.snapshot()
    before = binfmt.list_entries()
    binfmt.unregister(fake_entry.name, log=quiet)
    binfmt.register(TEST_PREFIX + "added", FAKE, FAKE_INTERP, "CP", log=quiet)
    assert TEST_PREFIX + "added" in _names()
    assert fake_entry.name not in _names()
    logged: list[str] = []
    binfmt.restore(state, log=logged.append)
    assert binfmt.list_entries() == before
    assert logged == [
        f"+ echo '{fake_entry.registration_line()}' > /proc/sys/fs/binfmt_misc/register",
        f"+ echo -1 > /proc/sys/fs/binfmt_misc/{TEST_PREFIX}added",
    ]


def test_a_broken_log_does_not_stop_the_restore(fake_entry: BinfmtEntry) -> None:
    """Output piped into `head`, which has exited: every log line raises BrokenPipeError.
    The temporary handler must go anyway (it once stayed behind, F flag and all)."""
    before = binfmt.list_entries()

    def broken(_: str) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    state = binfmt.snapshot()
    binfmt.register(TEST_PREFIX + "piped", FAKE, FAKE_INTERP, "F", log=quiet)
    binfmt.restore(state, log=broken)
    assert binfmt.list_entries() == before


def test_restore_reregisters_changed_and_reenables(fake_entry: BinfmtEntry) -> None:
    disabled_name = TEST_PREFIX + "off"
    binfmt.register(disabled_name, FAKE, FAKE_INTERP, "", log=quiet)
    try:
        binfmt.set_enabled(disabled_name, False, log=quiet)
        state = binfmt.snapshot()
        before = binfmt.list_entries()
        assert not state.by_name[disabled_name].enabled
        # change the registration of one, flip the other, remove the disabled one
        binfmt.unregister(fake_entry.name, log=quiet)
        binfmt.register(fake_entry.name, FAKE, "/bin/false", "POC", log=quiet)
        binfmt.unregister(disabled_name, log=quiet)
        binfmt.restore(state, log=quiet)
        assert binfmt.list_entries() == before
        assert binfmt.read_entry(fake_entry.name) == fake_entry
        assert not binfmt.read_entry(disabled_name).enabled
        # a plain disable is undone by an enable
        binfmt.set_enabled(fake_entry.name, False, log=quiet)
        logged: list[str] = []
        binfmt.restore(state, log=logged.append)
        assert logged == [f"+ echo 1 > /proc/sys/fs/binfmt_misc/{fake_entry.name}"]
        assert binfmt.list_entries() == before
    finally:
        if (binfmt.BINFMT_DIR / disabled_name).exists():
            binfmt.unregister(disabled_name, log=quiet)


def test_exception_inside_contexts_still_restores(fake_entry: BinfmtEntry) -> None:
    before = binfmt.list_entries()
    with (
        pytest.raises(RuntimeError, match="boom"),
        binfmt.temporary_handler(FAKE, FAKE_INTERP, "F", log=quiet),
    ):
        assert not binfmt.read_entry(fake_entry.name).enabled
        assert binfmt.read_entry("qemu-xarchfake").enabled
        raise RuntimeError("boom")
    assert binfmt.list_entries() == before
    with pytest.raises(RuntimeError, match="boom"), binfmt.preserved(log=quiet):
        binfmt.unregister(fake_entry.name, log=quiet)
        binfmt.register(TEST_PREFIX + "b", FAKE, FAKE_INTERP, "", log=quiet)
        raise RuntimeError("boom")
    assert binfmt.list_entries() == before


def test_temporary_handler_replaces_same_name_and_puts_it_back() -> None:
    existing = binfmt.register("qemu-xarchfake", FAKE, "/bin/false", "P", log=quiet)
    try:
        before = binfmt.list_entries()
        with binfmt.temporary_handler(FAKE, FAKE_INTERP, "CF", log=quiet) as entry:
            assert entry.interpreter == FAKE_INTERP
            assert entry.flags == "OCF"
        assert binfmt.list_entries() == before
        assert binfmt.read_entry("qemu-xarchfake") == existing
    finally:
        binfmt.unregister("qemu-xarchfake", log=quiet)


def test_duplicate_name_raises_without_change(fake_entry: BinfmtEntry) -> None:
    before = binfmt.list_entries()
    with pytest.raises(BinfmtError, match=r"named 'xarch-test-a' already exists; unregister"):
        binfmt.register(fake_entry.name, FAKE, "/bin/false", "", log=quiet)
    assert binfmt.list_entries() == before


def test_missing_interpreter_with_flag_f() -> None:
    before = binfmt.list_entries()
    with pytest.raises(BinfmtError, match=r"with flag F .* must exist"):
        binfmt.register(TEST_PREFIX + "nf", FAKE, "/nonexistent/xarch-qemu", "F", log=quiet)
    assert binfmt.list_entries() == before


def test_bad_flags_change_nothing() -> None:
    before = binfmt.list_entries()
    logged: list[str] = []
    with pytest.raises(BadInput, match="allowed flags"):
        binfmt.register(TEST_PREFIX + "x", FAKE, FAKE_INTERP, "FX", log=logged.append)
    with (
        pytest.raises(BadInput, match="allowed flags"),
        binfmt.temporary_handler(FAKE, FAKE_INTERP, "Q", log=logged.append),
    ):
        pass
    assert logged == []
    assert binfmt.list_entries() == before


def test_restore_reports_what_it_cannot_recreate(fake_entry: BinfmtEntry) -> None:
    state = binfmt.snapshot()
    gone = replace(fake_entry, name=TEST_PREFIX + "gone", interpreter="/nonexistent/x")
    bad_state = binfmt.HostBinfmtState(
        entries=(*state.entries, gone), status_enabled=state.status_enabled
    )
    with pytest.raises(BinfmtError, match=r"(?s)could not restore.*xarch-test-gone.*must exist"):
        binfmt.restore(bad_state, log=quiet)
    assert binfmt.list_entries() == list(state.entries)


def test_is_mounted() -> None:
    assert binfmt.is_mounted()
    assert not binfmt.mount(log=quiet)  # already mounted: nothing to do
