"""Debian's archive as it is (deb.debian.org, the one archive this machine reaches): a
pin the suite does not hold is the user's input to fix (exit 2, naming the pin and the
suite), found by apt itself before anything is built, and nothing is kept in the cache.
The real `apt-get update` and `apt-get download` through xarch's private configuration;
the host's apt sources are never touched."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from xarch.errors import BadInput
from xarch.images import native
from xarch.model.config import Accelerate, DebPin

MIRROR = "http://deb.debian.org/debian"
SHA = "0" * 64


def accelerate(*packages: DebPin, suite: str = "bookworm") -> Accelerate:
    return Accelerate(
        enabled=True,
        toolchain="archive-fault",
        gcc_version="12.2.0",
        binutils_version="2.40",
        leaves=("cc1",),
        packages=packages,
        suite=suite,
        mirror=MIRROR,
        directory="",
    )


@pytest.fixture
def need_apt() -> None:
    if shutil.which("apt-get") is None:
        pytest.skip("apt-get is not installed")


@pytest.mark.usefixtures("need_apt")
@pytest.mark.parametrize(
    ("pin", "says"),
    [
        (DebPin(package="zlib1g", version="1:0.0.0-1", sha256=SHA),
         "Version '1:0.0.0-1' for 'zlib1g' was not found"),
        (DebPin(package="xarch-no-such-package", version="1.0-1", sha256=SHA),
         "Unable to locate package xarch-no-such-package"),
        # bullseye's patchelf asked of bookworm alone: the entry needs its own suite.
        (DebPin(package="patchelf", version="0.12-1", sha256=SHA),
         "Version '0.12-1' for 'patchelf' was not found"),
    ],
)  # fmt: skip
def test_a_pin_the_suite_does_not_hold_is_bad_input_and_keeps_nothing(
    tmp_path: Path, pin: DebPin, says: str
) -> None:
    cache = tmp_path / "native"
    with pytest.raises(BadInput) as info:
        native.fetch_debs(accelerate(pin), cache, log=lambda _: None)
    text = str(info.value)
    assert info.value.exit_code == 2
    assert f"native toolchain archive-fault: {MIRROR} bookworm does not hold" in text
    assert says in text, text
    assert "hint: pin the version the suite holds" in text
    assert not list(cache.glob("*.deb"))


@pytest.mark.usefixtures("need_apt")
def test_a_package_from_another_suite_is_fetched_from_that_suite(tmp_path: Path) -> None:
    """bookworm's patchelf for a trixie toolchain (config/offline-native.yaml's riscv64
    target): both suites are in the private sources list, the pinned version is fetched
    and checked by its sha256."""
    pin = DebPin(
        package="patchelf",
        version="0.14.3-1+b1",
        sha256="0364b90e81faabbb9569076063952c7bcbf07f83d954a2f2602a163d65be60e6",
        suite="bookworm",
    )
    cache = tmp_path / "native"
    debs = native.fetch_debs(accelerate(pin, suite="trixie"), cache, log=lambda _: None)
    assert debs == {"patchelf": cache / "patchelf_0.14.3-1+b1_amd64.deb"}
    sources = (cache / "apt" / "etc" / "sources.list").read_text().splitlines()
    assert sources == [f"deb {MIRROR} trixie main", f"deb {MIRROR} bookworm main"]
