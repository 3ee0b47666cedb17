"""Host emulation: install the pinned emulators at a fixed path and register
binfmt_misc handlers for them, directly on the host, as root.

Defaults are the safe ones: flag F (the kernel opens the interpreter once, so it
works in every container and chroot), no C/O unless asked for. An identical
registration is left alone, or enabled when it is disabled (a test fixture or an
admin disabled it: it is still ours); a different handler for the same architecture
is refused unless --force. Nothing is written to /proc/sys/fs/binfmt_misc until
every argument, the emulators and the existing handlers have been checked.
:func:`plan_handler` is that comparison, for install() and provision-runner alike.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from xarch.errors import BadInput, BinfmtError
from xarch.host import binfmt, qemu
from xarch.model.arch import ARCHES, Arch, get_arch, host_arch
from xarch.model.config import QemuPin

Log = Callable[[str], None]

#: Where binfmt-install puts the pinned emulators; status names it.
INSTALL_DIR = Path(os.environ.get("XARCH_EMULATOR_DIR", "/usr/local/lib/xarch/qemu"))
#: systemd-binfmt reads *.conf here at boot (and /etc overrides /usr/lib of the same name).
PERSIST_DIR = Path("/etc/binfmt.d")
SYSTEM_PERSIST_DIRS = (Path("/etc/binfmt.d"), Path("/run/binfmt.d"), Path("/usr/lib/binfmt.d"))

FLAGS_WARNING = (
    "warning: flag {flag} asks the kernel to run setuid/setgid programs (sudo, su, ...) "
    "with their privileges inside emulated containers, which QEMU then holds. Use it only "
    "when a build needs setuid programs under emulation."
)


@dataclass(frozen=True)
class HandlerOutcome:
    arch: str
    name: str
    action: str  # registered | unchanged | enabled | replaced | removed | absent
    interpreter: str
    flags: str
    persisted: str  # "" | path of the binfmt.d file

    def summary(self) -> str:
        """One line for the user: ``aarch64: enabled existing handler qemu-aarch64 (...)``."""
        what = _ACTION_WORDS.get(self.action, self.action)
        extra = f", persisted in {self.persisted}" if self.persisted else ""
        return (
            f"{self.arch}: {what} {self.name} (interpreter {self.interpreter}, "
            f"flags {self.flags or '-'}){extra}"
        )


_ACTION_WORDS = {
    "registered": "registered handler",
    "unchanged": "unchanged handler",
    "enabled": "enabled existing handler",
    "replaced": "replaced existing handlers with",
}


@dataclass(frozen=True)
class HandlerPlan:
    """What binfmt-install does for one architecture, decided from the entries alone.

    ``identical``: an entry registered exactly as wanted (name, interpreter, flags,
    magic, mask), enabled or not. ``conflicts``: the entries --force must remove first:
    an enabled handler for the architecture that differs (it would compete with ours),
    or a different entry holding our name (enabled or disabled). Disabled handlers under
    other names are left alone: the kernel never uses them.
    """

    arch: Arch
    want: binfmt.BinfmtEntry
    identical: binfmt.BinfmtEntry | None
    conflicts: tuple[binfmt.BinfmtEntry, ...]

    @property
    def action(self) -> str:
        """unchanged | enable | register | replace"""
        if self.conflicts:
            return "replace"
        if self.identical is None:
            return "register"
        return "unchanged" if self.identical.enabled else "enable"

    def problems(self) -> list[str]:
        """One line per conflict, for the refusal without --force."""
        return [
            f"{self.arch.name}: existing handler {e.name!r} "
            f"({'enabled' if e.enabled else 'disabled'}, interpreter {e.interpreter or '?'}, "
            f"flags {e.flags or '-'})"
            for e in self.conflicts
        ]


def plan_handler(
    arch: Arch, want: binfmt.BinfmtEntry, entries: list[binfmt.BinfmtEntry]
) -> HandlerPlan:
    """Compare the entry wanted for ``arch`` with the host's entries (pure)."""
    matching = [e for e in entries if e.name == want.name or e.matches(arch)]
    identical = next((e for e in matching if e.same_registration(want)), None)
    conflicts = tuple(
        e for e in matching if not e.same_registration(want) and (e.enabled or e.name == want.name)
    )
    return HandlerPlan(arch=arch, want=want, identical=identical, conflicts=conflicts)


def apply_plan(plan: HandlerPlan, root: Path = binfmt.BINFMT_DIR, log: Log = print) -> str:
    """Carry a plan out; returns the outcome's action (unchanged | enabled | registered
    | replaced). Conflicts are removed first; an identical entry is kept (enabled if
    it was disabled) rather than registered again."""
    name = plan.want.name
    for e in plan.conflicts:
        binfmt.unregister(e.name, root, log=log)
    if plan.identical is None:
        binfmt.register(name, plan.arch, plan.want.interpreter, plan.want.flags, root, log=log)
    elif not plan.identical.enabled:
        binfmt.set_enabled(name, True, root, log=log)
    elif not plan.conflicts:
        log(f"  {plan.arch.name}: {name} already registered identically; left alone")
    if plan.conflicts:
        return "replaced"
    if plan.identical is None:
        return "registered"
    return "unchanged" if plan.identical.enabled else "enabled"


def resolve_arches(names: list[str], pin: QemuPin | None = None) -> list[Arch]:
    """Architecture names (or "all") to Arch objects; never the host's own."""
    if not names:
        raise BadInput("name at least one architecture: --arch aarch64 (repeatable) or --arch all")
    host = host_arch()
    if "all" in names:
        arches = [
            a
            for a in ARCHES.values()
            if a.name != host.name and (pin is None or a.qemu_binary in pin.sha256)
        ]
        if not arches:
            raise BadInput("the config pins no emulator for any foreign architecture")
        return arches
    out: list[Arch] = []
    for n in names:
        a = get_arch(n)
        if a.name == host.name:
            raise BadInput(
                f"{a.name} is this host's own architecture; it needs no emulator and xarch "
                "never registers a handler for it"
            )
        if a not in out:
            out.append(a)
    return out


def emulator_path(arch: Arch, install_dir: Path | None = None) -> Path:
    return (install_dir or INSTALL_DIR) / arch.qemu_binary


def _require_root(root: Path) -> None:
    if root == binfmt.BINFMT_DIR and os.geteuid() != 0:
        raise BadInput(
            "changing binfmt_misc handlers needs root: run this task with sudo or as root"
        )


def _require_binfmt(root: Path, log: Log) -> None:
    if binfmt.is_available(root):
        return
    try:
        binfmt.mount(root, log=log)
    except BinfmtError as e:  # mount failed or the kernel said no: unavailable here
        raise BadInput(
            f"binfmt_misc is not available at {root} and mounting it failed ({e}).\n"
            "  Load the module (`modprobe binfmt_misc`) or enable CONFIG_BINFMT_MISC; "
            "in a container, mount it from the host."
        ) from None
    if not binfmt.is_available(root):
        raise BadInput(f"binfmt_misc is not available at {root} (no register file after mount)")


def conflict_error(problems: list[str]) -> BadInput:
    """The refusal for existing handlers that --force would replace."""
    return BadInput(
        "refusing to change existing binfmt handlers; nothing was changed:\n"
        + "\n".join(f"  - {p}" for p in problems)
        + "\n  Pass --force to replace them (the old entries are unregistered), or remove "
        "them first (`invoke binfmt-uninstall --arch ARCH` for entries named qemu-<arch>)."
    )


def install_emulators(
    pin: QemuPin, arches: list[Arch], install_dir: Path | None = None, log: Log = print
) -> dict[str, Path]:
    """Copy the verified emulators to the fixed install path (atomically)."""
    # A download that fails is FetchError (exit 1: retry when the source answers),
    # not bad input; a wrong sha256 is ChecksumMismatch (exit 2).
    cached = qemu.ensure_emulators(pin, arches, log)
    d = install_dir or INSTALL_DIR
    d.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    for a in arches:
        dest = emulator_path(a, d)
        want = pin.sha256_for(a)
        if not (dest.is_file() and qemu.sha256_file(dest) == want):
            tmp = dest.with_name(f".{dest.name}.tmp{os.getpid()}")
            log(f"+ install -m 0755 {cached[a.name]} {dest}")
            shutil.copyfile(cached[a.name], tmp)
            os.chmod(tmp, 0o755)
            if qemu.sha256_file(tmp) != want:
                tmp.unlink()
                raise BadInput(f"{dest}: the copied emulator does not match its pin")
            # A registered F handler keeps the old inode open; replacing the path is safe.
            os.replace(tmp, dest)
        out[a.name] = dest
    return out


def persist_path(arch: Arch, persist_dir: Path | None = None) -> Path:
    return (persist_dir or PERSIST_DIR) / f"{arch.binfmt_name}.conf"


def install(
    pin: QemuPin,
    arch_names: list[str],
    *,
    flags: str = "F",
    persist: bool = False,
    force: bool = False,
    root: Path = binfmt.BINFMT_DIR,
    install_dir: Path | None = None,
    persist_dir: Path | None = None,
    log: Log = print,
) -> list[HandlerOutcome]:
    """Register pinned emulators as binfmt handlers. Checks everything first."""
    arches = resolve_arches(arch_names, pin)
    flags = binfmt.normalize_flags(flags)
    for a in arches:
        if a.qemu_binary not in pin.sha256:
            raise BadInput(
                f"no emulator pinned for {a.name} ({a.qemu_binary}); add its sha256 under "
                "qemu.sha256 in the config"
            )
    _require_root(root)
    _require_binfmt(root, log)
    for flag in ("C", "O"):
        if flag in flags:
            log(FLAGS_WARNING.format(flag=flag))
            break
    # Plan: compare what we want with what is there, per architecture.
    entries = binfmt.list_entries(root)
    plans = [plan_handler(a, wanted_entry(a, flags, install_dir), entries) for a in arches]
    problems = [p for plan in plans for p in plan.problems()]
    if problems and not force:
        raise conflict_error(problems)
    installed = install_emulators(pin, arches, install_dir, log)
    outcomes: list[HandlerOutcome] = []
    for a, plan in zip(arches, plans, strict=True):
        want = plan.want
        action = apply_plan(plan, root, log)
        persisted = ""
        if persist:
            persisted = str(_persist(a, want.registration_line(), persist_dir, log))
        outcomes.append(
            HandlerOutcome(
                arch=a.name,
                name=want.name,
                action=action,
                interpreter=str(installed[a.name]),
                flags=flags,
                persisted=persisted,
            )
        )
    return outcomes


def _entry_text(line: str) -> str:
    """What the kernel would show for a registration line (to build a BinfmtEntry)."""
    _, _name, _kind, offset, magic, mask, interpreter, flags = line.split(":")
    return (
        "enabled\n"
        f"interpreter {interpreter}\n"
        f"flags: {binfmt.normalize_flags(flags)}\n"
        f"offset {offset or 0}\n"
        f"magic {_unescape(magic).hex()}\n"
        f"mask {_unescape(mask).hex()}\n"
    )


def _unescape(text: str) -> bytes:
    return bytes(int(h, 16) for h in text.split("\\x")[1:])


def wanted_entry(
    arch: Arch, flags: str = "F", install_dir: Path | None = None
) -> binfmt.BinfmtEntry:
    """The entry install() registers for ``arch``, as the kernel would show it (for
    previews that change nothing, such as provision-runner's plan)."""
    interpreter = str(emulator_path(arch, install_dir))
    line = binfmt.registration_line(
        arch.binfmt_name, arch, interpreter, binfmt.normalize_flags(flags)
    )
    return binfmt.parse_entry(arch.binfmt_name, _entry_text(line))


def persist_content(line: str) -> str:
    """What install(persist=True) writes to the binfmt.d file for a registration line."""
    return (
        f"# Written by xarch (invoke binfmt-install --persist); systemd-binfmt loads it at boot.\n"
        f"{line}\n"
    )


def _persist(arch: Arch, line: str, persist_dir: Path | None, log: Log) -> Path:
    path = persist_path(arch, persist_dir)
    content = persist_content(line)
    if path.is_file() and path.read_text() == content:
        log(f"  {path}: already persisted")
        return path
    log(f"+ write {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(content)
    os.replace(tmp, path)
    return path


def uninstall(
    arch_names: list[str],
    *,
    root: Path = binfmt.BINFMT_DIR,
    persist_dir: Path | None = None,
    install_dir: Path | None = None,
    log: Log = print,
) -> list[HandlerOutcome]:
    """Remove the entries named qemu-<arch> for the named arches (and xarch's persisted
    files for them); nothing else."""
    arches = resolve_arches(arch_names)
    _require_root(root)
    if not binfmt.is_available(root):
        raise BadInput(f"binfmt_misc is not available at {root}; nothing to uninstall")
    outcomes = []
    names = {e.name: e for e in binfmt.list_entries(root)}
    for a in arches:
        e = names.get(a.binfmt_name)
        if e is None:
            action = "absent"
            log(f"  {a.name}: no entry named {a.binfmt_name}; nothing to remove")
        else:
            binfmt.unregister(e.name, root, log=log)
            action = "removed"
        persisted = ""
        p = persist_path(a, persist_dir)
        if p.is_file() and str(install_dir or INSTALL_DIR) in p.read_text():
            log(f"+ rm {p}")
            p.unlink()
            persisted = str(p)
        outcomes.append(
            HandlerOutcome(
                arch=a.name,
                name=a.binfmt_name,
                action=action,
                interpreter=e.interpreter if e else "",
                flags=e.flags if e else "",
                persisted=persisted,
            )
        )
    return outcomes


@dataclass(frozen=True)
class HandlerStatus:
    name: str
    enabled: bool
    arch: str  # "" when the magic matches no known architecture
    interpreter: str
    flags: str
    interpreter_exists: bool
    xarch_installed: bool  # the interpreter is in xarch's install dir
    pinned: bool | None  # interpreter's sha256 equals the config's pin (None: no pin known)
    persisted: str  # the binfmt.d file that restores it at boot, or ""

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def status(
    pin: QemuPin | None = None,
    *,
    root: Path = binfmt.BINFMT_DIR,
    install_dir: Path | None = None,
    persist_dirs: tuple[Path, ...] = SYSTEM_PERSIST_DIRS,
) -> list[HandlerStatus]:
    d = str(install_dir or INSTALL_DIR)
    persisted_lines = _persisted_lines(persist_dirs)
    out = []
    for e in binfmt.list_entries(root):
        a = e.arch()
        path = Path(e.interpreter)
        exists = path.is_file()
        pinned: bool | None = None
        if pin is not None and a is not None and a.qemu_binary in pin.sha256 and exists:
            pinned = qemu.sha256_file(path) == pin.sha256_for(a)
        persisted = ""
        for file, entry in persisted_lines:
            if entry.name == e.name and entry.same_registration(e):
                persisted = str(file)
                break
        out.append(
            HandlerStatus(
                name=e.name,
                enabled=e.enabled,
                arch=a.name if a else "",
                interpreter=e.interpreter,
                flags=e.flags,
                interpreter_exists=exists,
                xarch_installed=e.interpreter.startswith(d + "/"),
                pinned=pinned,
                persisted=persisted,
            )
        )
    return out


def _persisted_lines(dirs: tuple[Path, ...]) -> list[tuple[Path, binfmt.BinfmtEntry]]:
    """Entries that systemd-binfmt would register at boot (first directory wins per name)."""
    seen: set[str] = set()
    out = []
    for d in dirs:
        if not d.is_dir():
            continue
        for f in sorted(d.glob("*.conf")):
            if f.name in seen:
                continue
            seen.add(f.name)
            for raw in f.read_text(errors="replace").splitlines():
                line = raw.strip()
                if not line.startswith(":") or line.count(":") < 7:
                    continue
                try:
                    parts = line.split(":")
                    if parts[2] != "M":
                        continue
                    out.append((f, binfmt.parse_entry(parts[1], _entry_text(line))))
                except (BadInput, ValueError, IndexError):
                    continue
    return out
