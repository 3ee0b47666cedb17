"""The host's binfmt_misc: parse, register, unregister, enable/disable, and put
back exactly what was there.

Every change is printed first as the shell command that does the same thing
(``+ echo ':...' > /proc/sys/fs/binfmt_misc/register``), through a ``log``
callable that defaults to :func:`print`.

What the kernel prints for an entry (measured on 6.18, and the format has been
stable for years)::

    enabled                      <- or "disabled"
    interpreter /usr/bin/qemu-aarch64-static
    flags: OCF                   <- letters always in the order P O C F; C implies O
    offset 0
    magic 7f454c46...            <- lowercase hex, exactly as registered (not masked)
    mask ffffffffff...           <- absent when registered without a mask

Extension entries print ``extension .foo`` instead of offset/magic/mask.
Disabled entries print the full data on current kernels; very old kernels print
only ``disabled``, which :func:`parse_entry` accepts (the entry's data is then
unknown and it cannot be re-created if it disappears).

The kernel hands an executable to the most recently registered enabled entry
that matches, so registering a second handler for an architecture takes
precedence over an older one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shlex
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from xarch.errors import BadInput, BinfmtError
from xarch.model.arch import ARCHES, Arch

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")

#: The flags binfmt_misc accepts, in the order the kernel prints them.
FLAG_ORDER = "POCF"
#: Files in the binfmt_misc directory that are not entries.
SPECIAL_FILES = frozenset({"register", "status"})
#: The kernel's limit on one registration write (fs/binfmt_misc.c).
MAX_REGISTER_LENGTH = 1920
#: The kernel's limit on offset + magic length (BINPRM_BUF_SIZE).
MAX_MAGIC_END = 256

Log = Callable[[str], None]
Kind = Literal["magic", "extension"]

_MOUNT_CMD = ("mount", "-t", "binfmt_misc", "binfmt_misc")


# ---------------------------------------------------------------------------
# data


@dataclass(frozen=True)
class BinfmtEntry:
    """One binfmt_misc entry as the kernel shows it.

    For ``kind == "extension"`` entries, ``magic`` holds the file-name extension
    (without the dot) and ``mask`` is empty, which is how the kernel stores it.
    """

    name: str
    enabled: bool
    interpreter: str
    flags: str  # kernel order, e.g. "OCF"
    offset: int
    magic: bytes
    mask: bytes  # b"" when the entry has no mask
    kind: Kind = "magic"

    @property
    def extension(self) -> str:
        """The extension (without dot) of an extension entry, else ""."""
        return self.magic.decode("utf-8", "replace") if self.kind == "extension" else ""

    @property
    def details_known(self) -> bool:
        """False only for a disabled entry read from a kernel that hides its data."""
        return bool(self.interpreter)

    def effective_mask(self) -> bytes:
        """The mask, with the kernel's meaning of "no mask" (all bits compared)."""
        return self.mask or b"\xff" * len(self.magic)

    def matches(self, arch: Arch) -> bool:
        """Whether this entry catches executables of ``arch``.

        True when, on every bit that both the entry's mask and the
        architecture's mask compare, the entry's magic equals the
        architecture's: ``magic & mask & arch.mask == arch.magic & mask & arch.mask``
        byte by byte (at the entry's offset). This is implied by the two
        one-sided tests (``arch.magic & mask == magic & mask`` and
        ``magic & arch.mask == arch.magic & arch.mask``) and also accepts
        entries that compare a few bits more or fewer than QEMU's mask (Debian's
        ppc64le and s390x masks also compare EI_OSABI) or that compare bytes
        beyond the architecture's magic. An entry comparing only ``\x7fELF``
        matches every architecture.
        """
        if self.kind != "magic" or not self.details_known:
            return False
        emask = self.effective_mask()
        for i, (em, mk) in enumerate(zip(self.magic, emask, strict=True)):
            j = self.offset + i
            if j >= len(arch.magic):
                break
            both = mk & arch.mask[j]
            if (em & both) != (arch.magic[j] & both):
                return False
        return True

    def arch(self) -> Arch | None:
        """The one architecture in the table this entry handles; None when it
        handles none of them or several (a generic ``\\x7fELF`` handler)."""
        found = [a for a in ARCHES.values() if self.matches(a)]
        return found[0] if len(found) == 1 else None

    def same_registration(self, other: BinfmtEntry) -> bool:
        """Whether both register the same handler (ignoring the enabled state)."""
        return (
            self.name == other.name
            and self.kind == other.kind
            and self.interpreter == other.interpreter
            and normalize_flags(self.flags) == normalize_flags(other.flags)
            and self.offset == other.offset
            and self.magic == other.magic
            and self.effective_mask() == other.effective_mask()
        )

    def registration_line(self) -> str:
        """The line that registers this entry again (enabled)."""
        if not self.details_known:
            raise BinfmtError(
                f"the binfmt_misc entry {self.name!r} is disabled and this kernel hides "
                "its interpreter and magic; it cannot be re-created from what was read"
            )
        _check_magic_size(self.name, self.offset, self.magic)
        if self.kind == "extension":
            return _line(self.name, "E", "", self.extension, "", self.interpreter, self.flags)
        return _line(
            self.name,
            "M",
            str(self.offset),
            escape_bytes(self.magic),
            escape_bytes(self.mask),
            self.interpreter,
            self.flags,
        )


@dataclass(frozen=True)
class HostBinfmtState:
    """Everything binfmt_misc held at one moment."""

    entries: tuple[BinfmtEntry, ...]
    status_enabled: bool = True

    @property
    def by_name(self) -> dict[str, BinfmtEntry]:
        return {e.name: e for e in self.entries}

    @property
    def names(self) -> list[str]:
        return [e.name for e in self.entries]


# ---------------------------------------------------------------------------
# validation and formatting (pure)


def normalize_flags(flags: str) -> str:
    """Validate flags and return them as the kernel prints them ("CF" -> "OCF")."""
    bad = sorted({c for c in flags if c not in FLAG_ORDER})
    if bad:
        raise BadInput(
            f"invalid binfmt_misc flag(s) {''.join(bad)!r} in {flags!r}; allowed flags are "
            "F (fix binary: open the interpreter now), P (preserve argv[0]), "
            "O (open binary), C (credentials, implies O)"
        )
    letters = set(flags)
    if "C" in letters:
        letters.add("O")
    return "".join(c for c in FLAG_ORDER if c in letters)


def validate_name(name: str) -> str:
    """An entry name the kernel accepts and that cannot hit register/status."""
    if (
        not name
        or name in (".", "..")
        or name in SPECIAL_FILES
        or any(c in name for c in "/:\n\x00")
        or name != name.strip()
    ):
        raise BadInput(
            f"invalid binfmt_misc entry name {name!r}: it must be non-empty, contain no "
            "'/', ':', newline or surrounding whitespace, and not be 'register', "
            "'status', '.' or '..'"
        )
    return name


def _validate_interpreter(interpreter: str) -> str:
    if not interpreter or any(c in interpreter for c in ":\n\x00"):
        raise BadInput(
            f"invalid interpreter path {interpreter!r}: it must be non-empty and contain "
            "no ':' or newline"
        )
    return interpreter


def escape_bytes(data: bytes) -> str:
    """Every byte as ``\\xNN``: the kernel decodes these, and a raw ':' never appears."""
    return "".join(f"\\x{b:02x}" for b in data)


def _line(
    name: str, kind: str, offset: str, magic: str, mask: str, interpreter: str, flags: str
) -> str:
    validate_name(name)
    _validate_interpreter(interpreter)
    line = f":{name}:{kind}:{offset}:{magic}:{mask}:{interpreter}:{normalize_flags(flags)}"
    if len(line) > MAX_REGISTER_LENGTH:
        raise BadInput(
            f"binfmt_misc registration line for {name!r} is {len(line)} characters; "
            f"the kernel accepts at most {MAX_REGISTER_LENGTH}"
        )
    return line


def _check_magic_size(name: str, offset: int, magic: bytes) -> None:
    if not magic or offset < 0 or offset + len(magic) > MAX_MAGIC_END:
        raise BadInput(
            f"binfmt_misc entry {name!r}: offset {offset} + magic length {len(magic)} must "
            f"be between 1 and {MAX_MAGIC_END}"
        )


def registration_line(name: str, arch: Arch, interpreter: str, flags: str = "F") -> str:
    """``:NAME:M::MAGIC:MASK:INTERPRETER:FLAGS`` for ``arch``, bytes escaped as ``\\xNN``."""
    if len(arch.mask) != len(arch.magic):
        raise BadInput(f"architecture {arch.name}: magic and mask differ in length")
    _check_magic_size(name, 0, arch.magic)
    return _line(
        name, "M", "", escape_bytes(arch.magic), escape_bytes(arch.mask), interpreter, flags
    )


def _read_text(path: Path) -> str:
    """A binfmt_misc file's text. The kernel prints an interpreter path as the bytes
    it was given, which need not be UTF-8: they are kept as surrogate escapes, so the
    entry can be written back byte for byte."""
    return path.read_bytes().decode("utf-8", "surrogateescape")


def parse_entry(name: str, text: str) -> BinfmtEntry:
    """Parse the text the kernel shows in ``/proc/sys/fs/binfmt_misc/NAME``."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines or lines[0].strip() not in ("enabled", "disabled"):
        raise BinfmtError(
            f"cannot parse binfmt_misc entry {name!r}: expected 'enabled' or 'disabled' "
            f"on the first line, got {text[:60]!r}"
        )
    enabled = lines[0].strip() == "enabled"
    interpreter = ""
    flags = ""
    offset = 0
    magic = b""
    mask = b""
    kind: Kind = "magic"
    try:
        for raw in lines[1:]:
            key, _, value = raw.partition(" ")
            value = value.strip()
            if key == "interpreter":
                interpreter = value
            elif key == "flags:":
                flags = normalize_flags(value)
            elif key == "offset":
                offset = int(value)
                if offset < 0:
                    raise ValueError(f"negative offset {offset}")
            elif key == "magic":
                magic = bytes.fromhex(value)
            elif key == "mask":
                mask = bytes.fromhex(value)
            elif key == "extension":
                kind = "extension"
                magic = value.removeprefix(".").encode()
            # unknown lines are ignored: newer kernels may add some
    except (ValueError, BadInput) as exc:
        raise BinfmtError(f"cannot parse binfmt_misc entry {name!r}: {exc}") from None
    if kind == "magic" and interpreter and mask and len(mask) != len(magic):
        raise BinfmtError(
            f"cannot parse binfmt_misc entry {name!r}: mask and magic differ in length"
        )
    return BinfmtEntry(
        name=name,
        enabled=enabled,
        interpreter=interpreter,
        flags=flags,
        offset=offset,
        magic=magic,
        mask=mask,
        kind=kind,
    )


# ---------------------------------------------------------------------------
# reading the host


def _not_mounted(root: Path) -> BinfmtError:
    return BinfmtError(
        f"binfmt_misc is not mounted at {root} ({root / 'register'} is missing); "
        f"mount it as root: {shlex.join([*_MOUNT_CMD, str(root)])}"
    )


def is_available(root: Path = BINFMT_DIR) -> bool:
    """Whether binfmt_misc is mounted there (its register file exists)."""
    return (root / "register").exists()


def _unescape_mountinfo(path: str) -> str:
    return (path.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n")).replace(
        "\\134", "\\"
    )


def is_mounted(root: Path = BINFMT_DIR) -> bool:
    """Whether a binfmt_misc file system is mounted exactly at ``root``."""
    try:
        text = Path("/proc/self/mountinfo").read_text()
    except OSError:
        return is_available(root)
    target = os.path.realpath(root)
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields = left.split()
        if not sep or len(fields) < 5 or not right:
            continue
        if right.split()[0] == "binfmt_misc" and _unescape_mountinfo(fields[4]) == target:
            return True
    return False


def mount(root: Path = BINFMT_DIR, log: Log = print) -> bool:
    """Mount binfmt_misc at ``root`` unless it already is; True if it mounted now."""
    if is_available(root):
        return False
    cmd = [*_MOUNT_CMD, str(root)]
    log(f"+ {shlex.join(cmd)}")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise BinfmtError(f"cannot run {shlex.join(cmd)}: {exc}") from None
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()
        hint = " (run as root)" if os.geteuid() != 0 else ""
        raise BinfmtError(f"{shlex.join(cmd)} failed{hint}: {detail or proc.returncode}")
    if not is_available(root):
        raise _not_mounted(root)
    return True


def status_enabled(root: Path = BINFMT_DIR) -> bool:
    """The global switch (``status``): False means no entry is used at all."""
    try:
        text = _read_text(root / "status").strip()
    except FileNotFoundError:
        raise _not_mounted(root) from None
    except OSError as exc:
        raise BinfmtError(f"cannot read {root / 'status'}: {exc.strerror or exc}") from None
    return text == "enabled"


def read_entry(name: str, root: Path = BINFMT_DIR) -> BinfmtEntry:
    """One entry; BinfmtError when it does not exist."""
    path = root / validate_name(name)
    try:
        text = _read_text(path)
    except FileNotFoundError:
        if not is_available(root):
            raise _not_mounted(root) from None
        raise BinfmtError(f"there is no binfmt_misc entry named {name!r} in {root}") from None
    except OSError as exc:
        raise BinfmtError(f"cannot read {path}: {exc.strerror or exc}") from None
    return parse_entry(name, text)


def list_entries(root: Path = BINFMT_DIR) -> list[BinfmtEntry]:
    """Every entry (every file except register and status), sorted by name."""
    if not is_available(root):
        raise _not_mounted(root)
    try:
        names = sorted(os.listdir(root))
    except OSError as exc:
        raise BinfmtError(f"cannot list {root}: {exc.strerror or exc}") from None
    out: list[BinfmtEntry] = []
    for name in names:
        if name in SPECIAL_FILES:
            continue
        try:
            text = _read_text(root / name)
        except FileNotFoundError:  # removed while we were listing
            continue
        except OSError as exc:
            raise BinfmtError(f"cannot read {root / name}: {exc.strerror or exc}") from None
        out.append(parse_entry(name, text))
    return out


def entries_for(arch: Arch, root: Path = BINFMT_DIR) -> list[BinfmtEntry]:
    """The entries (enabled or not) that catch executables of ``arch``."""
    return [e for e in list_entries(root) if e.matches(arch)]


# ---------------------------------------------------------------------------
# changing the host


def _write(path: Path, data: str, root: Path, log: Log, *, entry: str = "") -> None:
    """Write ``data`` in one write(2), printing the equivalent shell command first,
    and turn the kernel's refusals into BinfmtError."""
    log(f"+ echo {shlex.quote(data)} > {shlex.quote(str(path))}")
    try:
        fd = os.open(path, os.O_WRONLY)
    except FileNotFoundError:
        if not is_available(root):
            raise _not_mounted(root) from None
        raise BinfmtError(f"there is no binfmt_misc entry named {entry!r} in {root}") from None
    except PermissionError:
        raise BinfmtError(
            f"permission denied opening {path} for writing; changing binfmt_misc needs "
            "root (CAP_SYS_ADMIN): run as root, e.g. with sudo"
        ) from None
    except OSError as exc:
        raise BinfmtError(f"cannot open {path}: {exc.strerror or exc}") from None
    try:
        os.write(fd, data.encode("utf-8", "surrogateescape"))
    except PermissionError:
        raise BinfmtError(
            f"permission denied writing to {path}; changing binfmt_misc needs root "
            "(CAP_SYS_ADMIN): run as root, e.g. with sudo"
        ) from None
    except OSError as exc:
        raise _write_error(exc, path, data, entry) from None
    finally:
        os.close(fd)


def _write_error(exc: OSError, path: Path, data: str, entry: str) -> BinfmtError:
    reason = exc.strerror or str(exc)
    if path.name != "register":
        return BinfmtError(f"the kernel refused writing {data!r} to {path}: {reason}")
    if exc.errno == errno.EEXIST:
        return BinfmtError(
            f"a binfmt_misc entry named {entry!r} already exists; unregister it first "
            f"(echo -1 > {path.parent / entry}) or choose another name"
        )
    if exc.errno == errno.ENOENT:
        return BinfmtError(
            f"the kernel could not open the interpreter of {entry!r} ({reason}): with flag F "
            "it opens the interpreter at registration time, so it must exist (as seen from "
            f"the process that registers); registration line: {data}"
        )
    if exc.errno == errno.EINVAL:
        return BinfmtError(
            f"the kernel rejected the registration line: {data}; check the format "
            ":NAME:M:OFFSET:MAGIC:MASK:INTERPRETER:FLAGS (flags from FPCO, magic and mask "
            "of equal length, offset + magic length <= 256)"
        )
    return BinfmtError(
        f"registering binfmt_misc entry {entry!r} failed ({reason}); for flag F the "
        f"interpreter must exist and be executable; registration line: {data}"
    )


def _register_line(name: str, line: str, root: Path, log: Log) -> BinfmtEntry:
    _write(root / "register", line, root, log, entry=name)
    return read_entry(name, root)


def register(
    entry_name: str,
    arch: Arch,
    interpreter: str,
    flags: str = "F",
    root: Path = BINFMT_DIR,
    log: Log = print,
) -> BinfmtEntry:
    """Register a handler for ``arch`` and return the entry as the kernel shows it."""
    line = registration_line(entry_name, arch, interpreter, flags)
    return _register_line(entry_name, line, root, log)


def register_entry(entry: BinfmtEntry, root: Path = BINFMT_DIR, log: Log = print) -> BinfmtEntry:
    """Register an entry as it was read (e.g. from a snapshot), including a
    disabled state."""
    got = _register_line(entry.name, entry.registration_line(), root, log)
    if not entry.enabled:
        set_enabled(entry.name, False, root, log)
        got = read_entry(entry.name, root)
    return got


def unregister(name: str, root: Path = BINFMT_DIR, log: Log = print) -> None:
    """Remove one entry (``echo -1 > ENTRY``)."""
    _write(root / validate_name(name), "-1", root, log, entry=name)


def set_enabled(name: str, enabled: bool, root: Path = BINFMT_DIR, log: Log = print) -> None:
    """Enable (``echo 1``) or disable (``echo 0``) one entry, keeping it registered."""
    _write(root / validate_name(name), "1" if enabled else "0", root, log, entry=name)


# ---------------------------------------------------------------------------
# snapshot / restore


def snapshot(root: Path = BINFMT_DIR) -> HostBinfmtState:
    """Everything needed to put binfmt_misc back as it is now."""
    return HostBinfmtState(entries=tuple(list_entries(root)), status_enabled=status_enabled(root))


def _unbreakable(log: Log) -> Log:
    """`log` that cannot stop a restore: output piped into `head` that has exited (a
    BrokenPipeError) or a closed terminal must not leave temporary handlers behind."""

    def out(line: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            log(line)

    return out


def restore(state: HostBinfmtState, root: Path = BINFMT_DIR, log: Log = print) -> None:
    """Put binfmt_misc back as ``state`` recorded it.

    Entries of the snapshot are re-created, re-registered (when their
    interpreter, flags, offset, magic or mask changed) and re-enabled first;
    entries added since are removed last, so an architecture that had a handler
    before and during the change is never without one in between. Every step is
    attempted; failures are reported together at the end.

    Re-registering an entry with flag F opens its interpreter again: it must
    exist (in this mount namespace) at the path the entry names.
    """
    current = {e.name: e for e in list_entries(root)}
    failures: list[str] = []
    log = _unbreakable(log)

    def attempt(action: Callable[..., object], *args: object) -> None:
        try:
            action(*args)
        except (BinfmtError, BadInput) as exc:
            failures.append(str(exc))

    for old in state.entries:
        now = current.get(old.name)
        if now is None:
            attempt(register_entry, old, root, log)
        elif old.details_known and now.details_known and not old.same_registration(now):
            attempt(_reregister, old, root, log)
        elif old.enabled != now.enabled:
            attempt(set_enabled, old.name, old.enabled, root, log)
    known = state.by_name
    for name in sorted(set(current) - set(known)):
        attempt(unregister, name, root, log)
    try:
        if status_enabled(root) != state.status_enabled:
            value = "1" if state.status_enabled else "0"
            attempt(_write, root / "status", value, root, log)
    except BinfmtError as exc:
        failures.append(str(exc))
    if failures:
        raise BinfmtError("could not restore binfmt_misc completely:\n  " + "\n  ".join(failures))


def _reregister(entry: BinfmtEntry, root: Path, log: Log) -> None:
    line = entry.registration_line()  # validate before removing anything
    unregister(entry.name, root, log)
    _register_line(entry.name, line, root, log)
    if not entry.enabled:
        set_enabled(entry.name, False, root, log)


@contextlib.contextmanager
def preserved(root: Path = BINFMT_DIR, log: Log = print) -> Iterator[HostBinfmtState]:
    """Snapshot binfmt_misc, and restore it on leaving, even on exceptions."""
    state = snapshot(root)
    try:
        yield state
    finally:
        restore(state, root, log)


@contextlib.contextmanager
def temporary_handler(
    arch: Arch,
    interpreter: str,
    flags: str = "F",
    exclusive: bool = True,
    root: Path = BINFMT_DIR,
    log: Log = print,
) -> Iterator[BinfmtEntry]:
    """Register ``qemu-<name>`` for ``arch`` for the duration of the block.

    An existing entry of that name is replaced; with ``exclusive`` every other
    enabled entry for ``arch`` is disabled, so the block's handler is the only
    one. Ours is registered before the others are disabled (and they are
    re-enabled before ours is removed), so the architecture never lacks a
    handler in between unless it lacked one before. Everything is restored on
    leaving, even on exceptions.
    """
    name = arch.binfmt_name
    line = registration_line(name, arch, interpreter, flags)  # BadInput before any change
    with preserved(root, log) as state:
        existing = state.by_name.get(name)
        if existing is not None:
            if not existing.details_known:
                raise BinfmtError(
                    f"the binfmt_misc entry {name!r} exists but is disabled and this kernel "
                    "hides its data, so it could not be restored after replacing it; "
                    f"enable it (echo 1 > {root / name}) or remove it first"
                )
            unregister(name, root, log)
        entry = _register_line(name, line, root, log)
        if exclusive:
            for other in state.entries:
                if other.name != name and other.enabled and other.matches(arch):
                    set_enabled(other.name, False, root, log)
        yield entry


@contextlib.contextmanager
def no_handler(
    arch: Arch, root: Path = BINFMT_DIR, log: Log = print
) -> Iterator[list[BinfmtEntry]]:
    """Disable every entry that catches ``arch`` for the duration of the block
    (yielding those it disabled), and restore everything on leaving."""
    with preserved(root, log) as state:
        disabled = [e for e in state.entries if e.enabled and e.matches(arch)]
        for e in disabled:
            set_enabled(e.name, False, root, log)
        yield disabled
