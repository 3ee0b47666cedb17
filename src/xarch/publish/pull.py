"""Pulling helper images by digest, the way a CI job or a runner gets them, and
checking that what arrived is what the config describes.

The digests come from the config's push record in the report (build/xarch-report.json),
never from a tag: a tag can move, a digest cannot. After the pull the image's
platform and its xarch labels (QEMU version and sha256, base digest) are compared
with the config. An image that matches is tagged with its per-arch tag for
convenience; one that does not is never tagged, and is removed again when this
run pulled it, so nothing wrong stays usable under the config's names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from xarch.errors import DaemonError, ImageNotFound, NotPushed, TestFailure
from xarch.model.arch import Arch
from xarch.model.config import Config, PinnedBase, Target
from xarch.model.naming import L_BASE_DIGEST, L_QEMU_SHA, L_QEMU_VERSION, helper_ref
from xarch.model.report import read_report, report_path, require_push_record
from xarch.model.tables import format_table
from xarch.oci.engine import Engine, image_labels
from xarch.oci.registry import is_digest

Log = Callable[[str], None]

# --------------------------------------------------------------------------- pure checks


@dataclass(frozen=True)
class ExpectedLabel:
    label: str
    value: str  # "" when the config does not pin it (then it is not checked)
    source: str  # where the expected value comes from, e.g. "qemu.version"


def expected_labels(config: Config, target: Target) -> list[ExpectedLabel]:
    """The xarch labels a helper image of ``target`` must carry, per the config."""
    i = config.targets.index(target)
    base = target.base
    return [
        ExpectedLabel(L_QEMU_VERSION, config.qemu.version, "qemu.version"),
        ExpectedLabel(
            L_QEMU_SHA,
            config.qemu.sha256_for(target.arch),
            f"qemu.sha256.{target.arch.qemu_binary}",
        ),
        # A bootstrapped stand-in base gets its digest when it is pushed: the config
        # does not pin one, so there is nothing to compare with.
        ExpectedLabel(
            L_BASE_DIGEST,
            base.digest if isinstance(base, PinnedBase) else "",
            f"targets[{i}].base.digest",
        ),
    ]


def platform_of(attrs: Mapping[str, Any]) -> str:
    """os/architecture[/variant] of an image as `docker image inspect` shows it."""
    parts = [str(attrs.get("Os") or "?"), str(attrs.get("Architecture") or "?")]
    if attrs.get("Variant"):
        parts.append(str(attrs["Variant"]))
    return "/".join(parts)


def platform_mismatch(attrs: Mapping[str, Any], arch: Arch) -> str:
    """ "" when the inspected image is of ``arch``'s platform, else what is wrong."""
    if arch.matches_platform(
        str(attrs.get("Os") or ""),
        str(attrs.get("Architecture") or ""),
        str(attrs.get("Variant") or ""),
    ):
        return ""
    return f"platform: the config's target is {arch.platform}, the image is {platform_of(attrs)}"


def label_mismatches(labels: Mapping[str, str], expected: list[ExpectedLabel]) -> list[str]:
    """One line per label that is missing or differs from the config."""
    out = []
    for e in expected:
        if not e.value:
            continue
        found = labels.get(e.label)
        if found is None:
            out.append(
                f"label {e.label}: missing (the config's {e.source} is {e.value}); "
                "not an xarch helper image?"
            )
        elif found != e.value:
            out.append(
                f"label {e.label}: the config's {e.source} is {e.value}, the image has {found}"
            )
    return out


def image_mismatches(attrs: Mapping[str, Any], config: Config, target: Target) -> list[str]:
    """Everything in which the inspected image differs from what the config describes."""
    out = []
    wrong_platform = platform_mismatch(attrs, target.arch)
    if wrong_platform:
        out.append(wrong_platform)
    out += label_mismatches(image_labels(attrs), expected_labels(config, target))
    return out


@dataclass(frozen=True)
class PushedRef:
    """Where the report says a target's image was pushed: name@digest."""

    target: str
    name: str  # registry/repository, no tag
    digest: str
    tag_refs: tuple[str, ...]  # the per-arch tags this image is tagged with locally

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.digest}"


def pushed_refs(
    report: dict[str, Any], config: Config, targets: tuple[Target, ...], report_file: Path
) -> dict[str, PushedRef]:
    """The digest of each target's image from the config's push record.

    Raises NotPushed naming every target the record has no digest for, before
    anything is pulled.
    """
    push = require_push_record(report, config, report_file)
    images = [im for im in push.get("images") or [] if isinstance(im, Mapping)]
    todo = f"run `invoke push-images --config {config.path}` first (it records the digests)"
    out: dict[str, PushedRef] = {}
    missing: list[str] = []
    for t in targets:
        name = config.registry.image_name(t.family)
        wanted = [helper_ref(config, t, tag) for tag in t.tags]
        rows = [im for im in images if im.get("target") == t.name]
        found = next(
            (
                im
                for ref in wanted
                for im in rows
                if im.get("ref") == ref and is_digest(str(im.get("digest", "")))
            ),
            None,
        )
        if found is None:
            if rows and not any(im.get("ref") in wanted for im in rows):
                missing.append(
                    f"{t.name}: the report has it as {rows[0].get('ref')}, not as {wanted[0]} "
                    "(pushed with another config?)"
                )
            else:
                missing.append(f"{t.name}: no digest recorded for {wanted[0]}")
            continue
        out[t.name] = PushedRef(
            target=t.name, name=name, digest=str(found["digest"]), tag_refs=tuple(wanted)
        )
    if missing:
        raise NotPushed(
            f"{report_file} has no pushed digest for:\n"
            + "\n".join(f"  - {m}" for m in missing)
            + f"\n  {todo}, or pass --report PATH to the report of that push."
        )
    return out


# --------------------------------------------------------------------------- pulling


@dataclass
class PulledImage:
    target: str
    arch: str
    platform: str  # the target's, from the config
    ref: str  # name@digest
    status: str = "error"  # ok | mismatch | error
    action: str = ""  # pulled | present | removed (pulled, then removed after a mismatch)
    image_id: str = ""
    image_platform: str = ""  # what the image says it is
    tagged: list[str] = field(default_factory=list)  # tags set (or already right)
    mismatches: list[str] = field(default_factory=list)
    error: str = ""
    changed: bool = False  # this run pulled, tagged or removed something


@dataclass
class PullOutcome:
    report: str
    images: list[PulledImage]

    @property
    def ok(self) -> bool:
        return all(im.status == "ok" for im in self.images)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "report": self.report, "images": [asdict(i) for i in self.images]}

    def failure(self) -> TestFailure | None:
        """The error that lists every mismatch and failed pull, or None when all is well."""
        bad = [im for im in self.images if im.status != "ok"]
        if not bad:
            return None
        lines = []
        for im in bad:
            lines.append(f"  {im.target} ({im.ref}):")
            lines += [f"    - {m}" for m in im.mismatches]
            if im.error:
                lines += [f"    - {line}" for line in im.error.splitlines()]
        text = f"{len(bad)} image(s) failed the check against the config:\n" + "\n".join(lines)
        if any(im.mismatches for im in bad):
            text += (
                "\n  Images that do not match were not tagged, and removed again when this run "
                "pulled them.\n  Build and push them from this config (`invoke build-images`, "
                "`invoke push-images`), or use the config and report they were pushed with."
            )
        return TestFailure(text)


def pull_one(
    engine: Engine,
    config: Config,
    target: Target,
    pushed: PushedRef,
    *,
    tag: bool = True,
    log: Log = print,
) -> PulledImage:
    """Pull one helper image by digest (unless it is present), check it, tag it."""
    result = PulledImage(
        target=target.name, arch=target.arch.name, platform=target.arch.platform, ref=pushed.ref
    )
    present = engine.inspect(pushed.ref) is not None
    if present:
        log(f"ok: {pushed.ref} is present locally (unchanged)")
        result.action = "present"
    else:
        try:
            engine.pull(pushed.ref, "helper", log, platform=target.arch.platform)
        except ImageNotFound as e:
            result.error = str(e)
            log(f"  FAILED: {str(e).splitlines()[0]}")
            return result
        result.action = "pulled"
        result.changed = True
    attrs = engine.inspect(pushed.ref)
    if attrs is None:
        result.error = f"pulled {pushed.ref} but the engine does not show it"
        return result
    result.image_id = str(attrs["Id"])
    result.image_platform = platform_of(attrs)
    result.mismatches = image_mismatches(attrs, config, target)
    if result.mismatches:
        result.status = "mismatch"
        n = len(result.mismatches)
        log(f"  MISMATCH: {n} difference(s) from the config (listed at the end), not tagged")
        if not present:
            log(f"+ docker rmi {pushed.ref}")
            try:
                engine.remove_image(pushed.ref)
            except DaemonError as e:
                log(f"  could not remove it: {e}")
            result.action = "removed"
        return result
    if tag:
        for ref in pushed.tag_refs:
            now = engine.inspect(ref)
            if now is not None and now.get("Id") == result.image_id:
                log(f"ok: {ref} is tagged (unchanged)")
            else:
                log(f"+ docker tag {pushed.ref} {ref}")
                engine.tag(result.image_id, ref)
                result.changed = True
            result.tagged.append(ref)
    result.status = "ok"
    return result


def pull_images(
    config: Config,
    target_names: list[str] | None = None,
    *,
    report: Path | None = None,
    engine: Engine | None = None,
    tag: bool = True,
    log: Log = print,
) -> PullOutcome:
    """Pull the selected targets' helper images by the digests the config's push
    record holds.

    Raises NotPushed before pulling anything when the report lacks a digest.
    Mismatches and failed pulls do not raise: see ``PullOutcome.failure()``.
    """
    targets = config.select(target_names)
    report_file = report or report_path()
    refs = pushed_refs(read_report(report_file), config, targets, report_file)
    engine = engine or Engine.connect()
    images = []
    for i, t in enumerate(targets, 1):
        log(f"[{i}/{len(targets)}] {t.name} ({t.arch.platform})")
        images.append(pull_one(engine, config, t, refs[t.name], tag=tag, log=log))
    return PullOutcome(report=str(report_file), images=images)


def summary_table(outcome: PullOutcome) -> str:
    rows = [("TARGET", "PLATFORM", "STATUS", "IMAGE")]
    for im in outcome.images:
        rows.append((im.target, im.image_platform or im.platform, im.status, im.ref))
    return format_table(rows)
