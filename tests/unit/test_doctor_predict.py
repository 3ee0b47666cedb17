"""doctor.predict: what `docker run` does, from the kernel's handlers and the image.

The host's architecture is a parameter of predict: every case names the host it
assumes (x86_64, the hosts xarch targets), so the tests mean the same on any machine.
"""

from __future__ import annotations

import pytest

from xarch.host import binfmt
from xarch.model.arch import get_arch
from xarch.runner import doctor

X86_64 = get_arch("x86_64")
AARCH64 = get_arch("aarch64")
PPC = get_arch("ppc64le")
HELPER = frozenset({AARCH64.emulator_path})
PLAIN: frozenset[str] = frozenset()


def entry(
    interpreter: str, flags: str, *, enabled: bool = True, name: str = "qemu-aarch64"
) -> binfmt.BinfmtEntry:
    line = binfmt.registration_line(name, AARCH64, interpreter, flags)
    _, n, _, _, magic, mask, interp, fl = line.split(":")

    def unescape(t: str) -> bytes:
        return bytes(int(h, 16) for h in t.split("\\x")[1:])

    return binfmt.BinfmtEntry(
        name=n,
        enabled=enabled,
        interpreter=interp,
        flags=binfmt.normalize_flags(fl),
        offset=0,
        magic=unescape(magic),
        mask=unescape(mask),
    )


CASES = [
    # (id, entries, bundled, expected verdict)
    ("binfmt-unavailable", None, HELPER, doctor.EXEC_FORMAT),
    ("no-handler", [], HELPER, doctor.EXEC_FORMAT),
    ("disabled-handler", [entry("/x", "F", enabled=False)], HELPER, doctor.EXEC_FORMAT),
    ("flag-F-helper", [entry("/usr/local/lib/q", "F")], HELPER, doctor.RUNS),
    ("flag-F-plain", [entry("/usr/local/lib/q", "F")], PLAIN, doctor.RUNS),
    ("no-F-bundled", [entry(AARCH64.emulator_path, "")], HELPER, doctor.RUNS),
    ("no-F-plain", [entry(AARCH64.emulator_path, "")], PLAIN, doctor.NO_SUCH_FILE),
    (
        "no-F-debian-path",
        [entry("/usr/libexec/qemu-binfmt/aarch64-binfmt-P", "P")],
        HELPER,
        doctor.NO_SUCH_FILE,
    ),
    ("disagreeing", [entry("/a", "F"), entry("/b", "", name="other")], PLAIN, doctor.UNKNOWN),
]


@pytest.mark.parametrize(
    ("entries", "bundled", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_predict(
    entries: list[binfmt.BinfmtEntry] | None, bundled: frozenset[str], expected: str
) -> None:
    verdict, reason = doctor.predict(AARCH64, entries, bundled, host=X86_64)
    assert verdict == expected
    assert reason


def test_status_disabled_means_exec_format_error() -> None:
    verdict, reason = doctor.predict(
        AARCH64, [entry("/q", "F")], HELPER, status_on=False, host=X86_64
    )
    assert verdict == doctor.EXEC_FORMAT
    assert "status" in reason


def test_handler_for_other_arch_does_not_count() -> None:
    verdict, _ = doctor.predict(
        PPC, [entry("/q", "F")], frozenset({PPC.emulator_path}), host=X86_64
    )
    assert verdict == doctor.EXEC_FORMAT


@pytest.mark.parametrize("entries", [None, []], ids=["binfmt-unavailable", "no-handler"])
def test_the_hosts_own_arch_runs_without_a_handler(
    entries: list[binfmt.BinfmtEntry] | None,
) -> None:
    verdict, reason = doctor.predict(AARCH64, entries, PLAIN, host=AARCH64)
    assert verdict == doctor.RUNS
    assert "host" in reason


def test_an_x86_64_image_on_an_aarch64_host_needs_a_handler() -> None:
    verdict, _ = doctor.predict(X86_64, [], PLAIN, host=AARCH64)
    assert verdict == doctor.EXEC_FORMAT


@pytest.mark.parametrize(
    ("verdict", "fragment"),
    [
        (doctor.EXEC_FORMAT, "binfmt-install --config c.yaml --arch aarch64"),
        (doctor.NO_SUCH_FILE, "--force"),
        (doctor.RUNS, ""),
    ],
)
def test_every_failing_verdict_has_a_fix(verdict: str, fragment: str) -> None:
    fix = doctor.fix_for(verdict, AARCH64, [], "c.yaml")
    assert fragment in fix
    assert bool(fix) == (verdict != doctor.RUNS)
