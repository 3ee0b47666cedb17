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
from xarch.images.native import LABEL_PREFIX, status_from_labels

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
    #: the image's org.xarch.native.* labels (none: no native compiler leaves)
    native_labels: dict[str, str] = field(default_factory=dict)
    native_size: int | None = None  # bytes under /opt/xarch/native (du -sb in the image)
    native_size_error: str = ""  # why native_size is missing, for an accelerated image

    @property
    def native_toolchain(self) -> str:
        return self.native_labels.get(f"{LABEL_PREFIX}.toolchain", "")

    @property
    def accelerated(self) -> bool:
        """Carries native compiler leaves: measured emulated, accelerated and native."""
        return bool(self.native_toolchain)

    @property
    def native_status(self) -> str:
        """doctor's line: no native leaves, or which ones and the probe's result."""
        return status_from_labels(self.native_labels)

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
            "native_leaves": self.accelerated,
            "native_labels": self.native_labels,
            "native_toolchain": self.native_toolchain or None,
            "native_status": self.native_status,
            "native_size": self.native_size,
            "native_size_error": self.native_size_error,
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
