"""Handler-conflict planning as pure logic: the host's entries in, the plan out. One
function (host.emulators.plan_handler) decides for binfmt-install and provision-runner."""

from __future__ import annotations

from pathlib import Path

import pytest

from xarch.errors import BadInput
from xarch.host import binfmt
from xarch.host import emulators as hostemu
from xarch.host.binfmt import BinfmtEntry
from xarch.host.emulators import HandlerOutcome, apply_plan, plan_handler, wanted_entry
from xarch.model.arch import get_arch
from xarch.model.config import load_config
from xarch.runner import provision

AARCH64 = get_arch("aarch64")
PPC64LE = get_arch("ppc64le")
INSTALL = Path("/usr/local/lib/xarch/qemu")
REPO = Path(__file__).resolve().parents[2]


def kernel_text(e: BinfmtEntry, *, enabled: bool = True) -> str:
    """What the kernel shows for an entry."""
    mask = f"mask {e.mask.hex()}\n" if e.mask else ""
    return (
        f"{'enabled' if enabled else 'disabled'}\ninterpreter {e.interpreter}\n"
        f"flags: {e.flags}\noffset {e.offset}\nmagic {e.magic.hex()}\n{mask}"
    )


def host_entry(
    name: str = "qemu-aarch64",
    *,
    arch: str = "aarch64",
    interpreter: str = str(INSTALL / "qemu-aarch64-static"),
    flags: str = "F",
    enabled: bool = True,
) -> BinfmtEntry:
    base = wanted_entry(get_arch(arch), flags, INSTALL)
    text = kernel_text(base, enabled=enabled).replace(base.interpreter, interpreter)
    return binfmt.parse_entry(name, text)


def plan(*entries: BinfmtEntry, arch: str = "aarch64") -> hostemu.HandlerPlan:
    a = get_arch(arch)
    return plan_handler(a, wanted_entry(a, "F", INSTALL), list(entries))


def test_nothing_there_registers() -> None:
    p = plan()
    assert (p.action, p.identical, p.conflicts, p.problems()) == ("register", None, (), [])


def test_identical_enabled_is_left_alone() -> None:
    p = plan(host_entry())
    assert p.action == "unchanged"
    assert p.problems() == []


def test_identical_disabled_is_enabled_not_refused() -> None:
    """The provisioned-runner case of issue 11: a fixture disabled xarch's own handler."""
    existing = host_entry(enabled=False)
    p = plan(existing)
    assert p.action == "enable"
    assert p.identical == existing
    assert p.conflicts == ()
    assert p.problems() == []


@pytest.mark.parametrize("enabled", [True, False], ids=["enabled", "disabled"])
def test_our_name_with_another_interpreter_is_a_conflict(enabled: bool) -> None:
    other = host_entry(interpreter="/usr/bin/qemu-aarch64-static", enabled=enabled)
    p = plan(other)
    assert p.action == "replace"
    assert p.conflicts == (other,)
    state = "enabled" if enabled else "disabled"
    assert p.problems() == [
        f"aarch64: existing handler 'qemu-aarch64' ({state}, interpreter "
        "/usr/bin/qemu-aarch64-static, flags F)"
    ]


@pytest.mark.parametrize("flags", ["", "P", "OCF"])
def test_our_name_with_other_flags_is_a_conflict(flags: str) -> None:
    p = plan(host_entry(flags=flags, enabled=False))
    assert p.action == "replace"
    assert len(p.problems()) == 1


def test_another_enabled_handler_for_the_arch_is_a_conflict() -> None:
    debian = host_entry("aarch64-debian", interpreter="/usr/libexec/qemu-binfmt/aarch64")
    p = plan(debian)
    assert p.conflicts == (debian,)
    assert "existing handler 'aarch64-debian' (enabled" in p.problems()[0]


def test_another_disabled_handler_for_the_arch_is_ignored() -> None:
    p = plan(host_entry("aarch64-debian", interpreter="/x/aarch64", enabled=False))
    assert (p.action, p.problems()) == ("register", [])


def test_identical_disabled_beside_a_competing_handler_keeps_ours() -> None:
    ours = host_entry(enabled=False)
    rival = host_entry("aarch64-debian", interpreter="/usr/libexec/qemu-binfmt/aarch64")
    p = plan(ours, rival)
    assert p.action == "replace"
    assert p.identical == ours
    assert p.conflicts == (rival,)


def test_generic_elf_handler_competes_with_every_arch() -> None:
    generic = binfmt.parse_entry(
        "elf", "enabled\ninterpreter /usr/bin/run-elf\nflags: \noffset 0\nmagic 7f454c46\n"
    )
    assert plan(generic).conflicts == (generic,)
    assert plan(generic, arch="ppc64le").conflicts == (generic,)


def test_handlers_of_other_arches_are_ignored() -> None:
    ppc = host_entry("qemu-ppc64le", arch="ppc64le", interpreter="/x/qemu-ppc64le-static")
    assert plan(ppc).action == "register"
    assert plan(host_entry(), arch="ppc64le").action == "register"


def test_summary_says_enabled_existing_handler() -> None:
    o = HandlerOutcome(
        arch="aarch64",
        name="qemu-aarch64",
        action="enabled",
        interpreter="/usr/local/lib/xarch/qemu/qemu-aarch64-static",
        flags="F",
        persisted="",
    )
    assert o.summary() == (
        "aarch64: enabled existing handler qemu-aarch64 "
        "(interpreter /usr/local/lib/xarch/qemu/qemu-aarch64-static, flags F)"
    )


# --------------------------------------------------------------------------- applying


class Recorder:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[str, ...]] = []
        monkeypatch.setattr(binfmt, "unregister", lambda n, *a, **k: self.calls.append(("rm", n)))
        monkeypatch.setattr(
            binfmt, "set_enabled", lambda n, on, *a, **k: self.calls.append(("on", n, str(on)))
        )
        monkeypatch.setattr(
            binfmt, "register", lambda n, arch, interp, *a, **k: self.calls.append(("reg", n))
        )


@pytest.mark.parametrize(
    ("entries", "action", "calls"),
    [
        ([], "registered", [("reg", "qemu-aarch64")]),
        ([host_entry()], "unchanged", []),
        ([host_entry(enabled=False)], "enabled", [("on", "qemu-aarch64", "True")]),
        (
            [host_entry(interpreter="/usr/bin/qemu-aarch64-static", enabled=False)],
            "replaced",
            [("rm", "qemu-aarch64"), ("reg", "qemu-aarch64")],
        ),
        (
            [host_entry(enabled=False), host_entry("rival", interpreter="/x")],
            "replaced",
            [("rm", "rival"), ("on", "qemu-aarch64", "True")],
        ),
    ],
    ids=["register", "unchanged", "enable", "replace", "replace-rival-keep-ours"],
)
def test_apply_plan(
    monkeypatch: pytest.MonkeyPatch,
    entries: list[BinfmtEntry],
    action: str,
    calls: list[tuple[str, ...]],
) -> None:
    rec = Recorder(monkeypatch)
    assert apply_plan(plan(*entries), Path("/nonexistent"), log=lambda _: None) == action
    assert rec.calls == calls


# --------------------------------------------------------------------------- provision-runner


def fake_root(tmp_path: Path, entries: dict[str, str]) -> Path:
    root = tmp_path / "binfmt_misc"
    root.mkdir()
    (root / "register").write_text("")
    (root / "status").write_text("enabled\n")
    for name, text in entries.items():
        (root / name).write_text(text)
    return root


def _steps(tmp_path: Path, root: Path, *, force: bool = False) -> list[provision.Step]:
    config = load_config(REPO / "config" / "offline.yaml")
    return provision._binfmt_steps(
        config,
        root=root,
        install_dir=INSTALL,
        persist_dir=tmp_path / "binfmt.d",
        force=force,
        log=lambda _: None,
    )


def test_provision_plan_enables_a_disabled_identical_handler(tmp_path: Path) -> None:
    want = wanted_entry(AARCH64, "F", INSTALL)
    root = fake_root(tmp_path, {"qemu-aarch64": kernel_text(want, enabled=False)})
    [step] = [s for s in _steps(tmp_path, root) if s.what.startswith("aarch64:")]
    assert "enable the existing binfmt handler qemu-aarch64" in step.what
    assert f"echo 1 > {root / 'qemu-aarch64'}" in step.commands
    assert not any("register" in c for c in step.commands)


def test_provision_plan_refuses_a_different_handler_like_install(tmp_path: Path) -> None:
    other = host_entry(interpreter="/usr/bin/qemu-aarch64-static", enabled=False)
    root = fake_root(tmp_path, {"qemu-aarch64": kernel_text(other, enabled=False)})
    with pytest.raises(BadInput) as info:
        _steps(tmp_path, root)
    assert "existing handler 'qemu-aarch64' (disabled, interpreter /usr/bin/" in str(info.value)
    steps = _steps(tmp_path, root, force=True)
    [step] = [s for s in steps if s.what.startswith("aarch64:")]
    assert "replace the binfmt handler qemu-aarch64" in step.what
    assert f"echo -1 > {root / 'qemu-aarch64'}" in step.commands
    assert any(c.startswith("echo ':qemu-aarch64:M:") for c in step.commands)
