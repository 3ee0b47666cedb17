"""What one bench run measured: the images, the series, the toolkit timings and the
environment, shared by the runner (bench.py) and the renderings (report.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from xarch.bench import emulators as emu
from xarch.bench.runner import Series
from xarch.bench.toolkit import ImageSize, ToolkitTiming
from xarch.bench.wheels import WheelRow
from xarch.bench.workloads import Plan

#: QEMU's own default model in user mode (7.2 and 10.0), when the image sets no
#: QEMU_CPU. For ppc64le the probe shows it: the same AT_HWCAP/AT_HWCAP2 as power9.
QEMU_DEFAULT_CPU = {"aarch64": "max", "ppc64le": "power9"}


@dataclass
class ImageInfo:
    target: str
    arch: str
    image: str
    image_id: str
    baked_cpu: str  # QEMU_CPU in the image's environment ("" = none)
    python: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    #: per setting key: what the emulated CPU reports (AT_PLATFORM, AT_HWCAP, AT_HWCAP2)
    probes: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # settings not run, and why

    @property
    def default_cpu(self) -> str:
        """The model runs get when no QEMU_CPU is passed ("" when not known)."""
        return self.baked_cpu or QEMU_DEFAULT_CPU.get(self.arch, "")

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "arch": self.arch,
            "image": self.image,
            "image_id": self.image_id,
            "qemu_cpu_in_image": self.baked_cpu,
            "default_cpu": self.default_cpu,
            "python": self.python,
            "versions": self.versions,
            "probes": self.probes,
            "skipped": self.skipped,
        }


@dataclass
class BenchResult:
    plan: Plan
    config: str
    started: str
    wall_seconds: float = 0.0
    environment: dict[str, Any] = field(default_factory=dict)
    emulators: list[emu.Emulator] = field(default_factory=list)
    images: list[ImageInfo] = field(default_factory=list)
    series: list[Series] = field(default_factory=list)
    toolkit: list[ToolkitTiming] = field(default_factory=list)
    sizes: list[ImageSize] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    binfmt_events: list[str] = field(default_factory=list)
    wheels: list[WheelRow] = field(default_factory=list)

    def failures(self) -> list[tuple[Series, int]]:
        return [(s, len(s.failures)) for s in self.series if s.failures]
