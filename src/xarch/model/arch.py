"""The table of architectures: the one place that maps our names to docker,
kernel, Debian and QEMU names and to the binfmt_misc magic and mask.

Magic and mask are QEMU's own (scripts/qemu-binfmt-conf.sh). Debian's
/usr/lib/binfmt.d files use a slightly wider mask for ppc64le and s390x; both
match the same executables.
"""

from __future__ import annotations

import difflib
import platform
from dataclasses import dataclass

from xarch.errors import BadInput

#: Debian architecture -> GNU triplet, where it is not `uname -m` plus -linux-gnu.
_GNU_TRIPLETS = {"ppc64el": "powerpc64le-linux-gnu", "armhf": "arm-linux-gnueabihf"}


@dataclass(frozen=True, kw_only=True)
class Arch:
    name: str  # our name, equal to `uname -m` inside the image
    docker_os: str
    docker_arch: str  # GOARCH, as in the image config's "architecture"
    docker_variant: str  # "" when the platform has none
    debian_arch: str  # dpkg --print-architecture
    qemu_name: str  # the suffix of qemu-<name>-static
    magic: bytes
    mask: bytes
    file_description: str  # what `file` prints for an executable of this arch

    @property
    def uname_m(self) -> str:
        return self.name

    @property
    def platform(self) -> str:
        """The docker platform string, e.g. linux/arm64/v8."""
        parts = [self.docker_os, self.docker_arch]
        if self.docker_variant:
            parts.append(self.docker_variant)
        return "/".join(parts)

    @property
    def qemu_binary(self) -> str:
        return f"qemu-{self.qemu_name}-static"

    @property
    def emulator_path(self) -> str:
        """Where a helper image carries its emulator, and where a handler without
        flag F makes the kernel look for it."""
        return f"/usr/bin/{self.qemu_binary}"

    @property
    def binfmt_name(self) -> str:
        return f"qemu-{self.qemu_name}"

    @property
    def gnu_triplet(self) -> str:
        """Debian's multiarch triplet (``gcc -dumpmachine``), e.g. aarch64-linux-gnu."""
        return _GNU_TRIPLETS.get(self.debian_arch, f"{self.name}-linux-gnu")

    def matches_platform(self, os: str, architecture: str, variant: str) -> bool:
        """Whether an image's os/architecture/variant is this architecture's platform,
        normalised as docker does (an arm64 image without a variant is arm64/v8)."""

        def norm(arch: str, var: str) -> str:
            return var or DEFAULT_VARIANTS.get(arch, "")

        return (os, architecture, norm(architecture, variant)) == (
            self.docker_os,
            self.docker_arch,
            norm(self.docker_arch, self.docker_variant),
        )

    def oci_platform(self) -> dict[str, str]:
        out = {"os": self.docker_os, "architecture": self.docker_arch}
        if self.docker_variant:
            out["variant"] = self.docker_variant
        return out


#: The variant docker assumes when an image config names none (containerd's
#: platform normalisation).
DEFAULT_VARIANTS = {"arm64": "v8", "arm": "v7"}


def _b(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


_ELF64_LE = "7f454c46 020101 00 0000000000000000 0200"
_STD_MASK = "ffffffffffffff00ffffffffffffffff feffffff"

ARCHES: dict[str, Arch] = {
    a.name: a
    for a in (
        Arch(
            name="aarch64",
            docker_os="linux",
            docker_arch="arm64",
            docker_variant="v8",
            debian_arch="arm64",
            qemu_name="aarch64",
            magic=_b(_ELF64_LE + "b700"),
            mask=_b(_STD_MASK),
            file_description="ARM aarch64",
        ),
        Arch(
            name="ppc64le",
            docker_os="linux",
            docker_arch="ppc64le",
            docker_variant="",
            debian_arch="ppc64el",
            qemu_name="ppc64le",
            magic=_b(_ELF64_LE + "1500"),
            mask=_b("ffffffffffffff00ffffffffffffffff feffff00"),
            file_description="64-bit PowerPC or cisco 7500",
        ),
        Arch(
            name="s390x",
            docker_os="linux",
            docker_arch="s390x",
            docker_variant="",
            debian_arch="s390x",
            qemu_name="s390x",
            magic=_b("7f454c46 020201 00 0000000000000000 00020016"),
            mask=_b("ffffffffffffff00ffffffffffffffff fffeffff"),
            file_description="IBM S/390",
        ),
        Arch(
            name="armv7l",
            docker_os="linux",
            docker_arch="arm",
            docker_variant="v7",
            debian_arch="armhf",
            qemu_name="arm",
            magic=_b("7f454c46 010101 00 0000000000000000 02002800"),
            mask=_b(_STD_MASK),
            file_description="ARM, EABI5",
        ),
        Arch(
            name="riscv64",
            docker_os="linux",
            docker_arch="riscv64",
            docker_variant="",
            debian_arch="riscv64",
            qemu_name="riscv64",
            magic=_b(_ELF64_LE + "f300"),
            mask=_b(_STD_MASK),
            file_description="UCB RISC-V",
        ),
        Arch(
            name="x86_64",
            docker_os="linux",
            docker_arch="amd64",
            docker_variant="",
            debian_arch="amd64",
            qemu_name="x86_64",
            magic=_b(_ELF64_LE + "3e00"),
            mask=_b("fffffffffffefe00ffffffffffffffff feffffff"),
            file_description="x86-64",
        ),
    )
}

_ALIASES = {
    "arm64": "aarch64",
    "ppc64el": "ppc64le",
    "armhf": "armv7l",
    "arm": "armv7l",
    "amd64": "x86_64",
}


def get_arch(name: str) -> Arch:
    """Look an architecture up by our name or a common alias (arm64, ppc64el, ...)."""
    key = _ALIASES.get(name, name)
    try:
        return ARCHES[key]
    except KeyError:
        close = difflib.get_close_matches(name, list(ARCHES) + list(_ALIASES), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise BadInput(
            f"unknown architecture {name!r}; known: {', '.join(ARCHES)}.{hint}"
        ) from None


def host_arch() -> Arch:
    return get_arch(platform.machine())
