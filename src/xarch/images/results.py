"""What one image build gave, the same for helper images and installer variants: a
:class:`BuildResult` per image, made by one constructor, and the one up-to-date rule
(the local image carries the hash of its inputs and the right architecture)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from xarch.model.arch import Arch
from xarch.model.naming import L_INPUTS, Kind
from xarch.model.tables import format_table
from xarch.oci.engine import Engine, image_labels

Log = Callable[[str], None]


@dataclass
class BuildResult:
    target: str
    arch: str
    platform: str
    image: str
    tags: list[str]
    status: str  # built | up-to-date | failed
    seconds: float
    kind: Kind = "helper"
    inputs_hash: str = ""
    image_id: str = ""
    size: int = 0
    base: dict[str, str] = field(default_factory=dict)
    qemu: dict[str, str] = field(default_factory=dict)
    error: str = ""
    native: dict[str, str] = field(default_factory=dict)  # accelerated images (issue 10)
    uv: dict[str, str] = field(default_factory=dict)  # images with a native uv (issue 16)
    started: float = field(default=0.0, repr=False, compare=False)

    @classmethod
    def begin(
        cls,
        kind: Kind,
        target: str,
        arch: Arch,
        refs: list[str],
        *,
        qemu: Mapping[str, str] | None = None,
        base: Mapping[str, str] | None = None,
        error: str = "",
    ) -> BuildResult:
        """A result that says "failed" until :meth:`done` is called (the one constructor)."""
        return cls(
            target=target,
            arch=arch.name,
            platform=arch.platform,
            image=refs[0],
            tags=list(refs),
            status="failed",
            seconds=0.0,
            kind=kind,
            qemu=dict(qemu or {}),
            base=dict(base or {}),
            error=error,
            started=time.monotonic(),
        )

    def done(self, status: str, attrs: Mapping[str, Any]) -> BuildResult:
        self.status = status
        self.image_id = str(attrs.get("Id", ""))
        self.size = int(attrs.get("Size", 0))
        self.seconds = time.monotonic() - self.started
        return self

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "kind": self.kind,
            "arch": self.arch,
            "platform": self.platform,
            "image": self.image,
            "tags": self.tags,
            "status": self.status,
            "seconds": self.seconds,
            "inputs_hash": self.inputs_hash,
            "image_id": self.image_id,
            "size": self.size,
            "base": self.base,
            "qemu": self.qemu,
            "error": self.error,
            "native": self.native,
            "uv": self.uv,
        }


def reuse_if_current(
    engine: Engine, result: BuildResult, arch: Arch, *, no_cache: bool, log: Log
) -> bool:
    """When the local image already has these inputs (and ``arch``), tag it with every
    ref, mark ``result`` up to date and return True."""
    existing = engine.inspect(result.image)
    if (
        no_cache
        or existing is None
        or image_labels(existing).get(L_INPUTS) != result.inputs_hash
        or existing.get("Architecture") != arch.docker_arch
    ):
        return False
    for ref in result.tags[1:]:
        engine.tag(str(existing["Id"]), ref)
    result.done("up-to-date", existing)
    log(f"  {result.target}: up to date ({result.image}), skipped")
    return True


def tag_all(engine: Engine, image_id: str, result: BuildResult) -> dict[str, Any]:
    """Tag a new image with the result's other refs; its inspected attributes."""
    for ref in result.tags[1:]:
        engine.tag(image_id, ref)
    return engine.inspect(image_id) or {"Id": image_id}


def summary_table(results: list[BuildResult]) -> str:
    rows = [("TARGET", "PLATFORM", "STATUS", "TIME", "SIZE", "IMAGE")]
    for r in results:
        rows.append(
            (
                r.target,
                r.platform,
                r.status,
                f"{r.seconds:.1f}s",
                f"{r.size / 1e6:.0f} MB" if r.size else "-",
                r.image,
            )
        )
    return format_table(rows)
