"""Publishing: per-arch images first, then one multi-arch index per family and tag.

Helper images and the binfmt installer's variants take the same path: each is a
:class:`~xarch.model.naming.PublishItem`, checked built (one check), pushed, read
back with its platform checked (one check), and listed in its index (one writer).
An index is written only after every image it lists has been pushed and read back
from the registry with the right platform, so a registry never holds an index that
points at a missing image. Digests go into the config's push record in the report.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from xarch.errors import NotBuilt, RegistryError, XarchError
from xarch.model.arch import Arch
from xarch.model.config import Config
from xarch.model.naming import L_INPUTS, PublishItem, all_items, publish_items, select
from xarch.model.report import push_record, read_report, write_push_record
from xarch.model.tables import format_table
from xarch.oci.engine import Engine, image_labels
from xarch.oci.registry import Descriptor, RegistryClient

Log = Callable[[str], None]


@dataclass
class PushedImage:
    target: str
    ref: str
    digest: str
    platform: str
    media_type: str
    size: int


@dataclass
class PushedIndex:
    family: str
    ref: str
    digest: str
    media_type: str
    manifests: list[dict[str, str]] = field(default_factory=list)


@dataclass
class PushOutcome:
    images: list[PushedImage] = field(default_factory=list)
    indexes: list[PushedIndex] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def failed(self, e: XarchError, log: Log) -> None:
        self.errors.append(str(e))
        log(f"  FAILED: {str(e).splitlines()[0]}")


def require_built(engine: Engine, config: Config, items: Sequence[PublishItem]) -> None:
    """Raise NotBuilt before the first push when an image is missing or lacks xarch's
    labels (nothing is half-published for an image that was never built)."""
    for item in items:
        attrs = engine.inspect(item.ref)
        if attrs is None or L_INPUTS not in image_labels(attrs):
            raise NotBuilt(
                f"{item.ref} is not built; run `{item.build_command} --config {config.path}` first"
            )


def has_platform(desc: Descriptor, arch: Arch) -> bool:
    """Whether a manifest read back from the registry carries exactly ``arch``'s
    os/architecture/variant (strict: what xarch pushes always names the variant)."""
    got = dict(desc.platform or {})
    return all(got.get(k, "") == v for k, v in arch.oci_platform().items())


def check_platform(reg: RegistryClient, item: PublishItem, digest: str, what: str) -> Descriptor:
    """The descriptor of ``digest`` in the item's repository, read back from the
    registry; RegistryError when its platform is not the item's."""
    desc = reg.manifest_descriptor(item.repository, digest)
    if not has_platform(desc, item.arch):
        raise RegistryError(
            f"{what}{reg.registry}/{item.repository}@{desc.digest} reads back as "
            f"{desc.platform_string}, expected {item.arch.platform}"
        )
    return desc


def push_item(engine: Engine, reg: RegistryClient, item: PublishItem, log: Log) -> Descriptor:
    """Push one per-arch image and read it back, platform checked."""
    digest = engine.push(item.name, item.tag, log)
    return check_platform(reg, item, digest, "")


def pushed_image(item: PublishItem, desc: Descriptor) -> PushedImage:
    return PushedImage(
        target=item.target,
        ref=item.ref,
        digest=desc.digest,
        platform=desc.platform_string,
        media_type=desc.media_type,
        size=desc.size,
    )


def push_items(
    engine: Engine,
    reg: RegistryClient,
    items: Sequence[PublishItem],
    members: Sequence[PublishItem],
    outcome: PushOutcome,
    log: Log,
) -> None:
    """Push ``items``, then each index they belong to, listing its ``members`` in
    order. A member not pushed this run is taken from the registry; an index with a
    member that failed, or was never pushed, is not written."""
    pushed: dict[str, Descriptor] = {}  # ref -> descriptor
    failed: dict[str, PublishItem] = {}
    for i, item in enumerate(items, 1):
        log(f"[{i}/{len(items)}] {item.target}: {item.index_tag}")
        try:
            pushed[item.ref] = push_item(engine, reg, item, log)
        except XarchError as e:
            failed[item.ref] = item
            outcome.failed(e, log)
            continue
        outcome.images.append(pushed_image(item, pushed[item.ref]))

    for index_ref in dict.fromkeys(item.index_ref for item in items):
        group = [m for m in members if m.index_ref == index_ref]
        broken = list(dict.fromkeys(m.target for m in group if m.ref in failed))
        if broken:
            msg = f"index {index_ref} not pushed: {', '.join(broken)} failed to push"
            outcome.errors.append(msg)
            log(f"  {msg}")
            continue
        entries: list[Descriptor] = []
        try:
            for m in group:
                if m.ref in pushed:
                    entries.append(pushed[m.ref])
                    continue
                # Not selected this run: use what the registry holds for it.
                found = reg.head_manifest(m.repository, m.tag)
                if found is None:
                    raise RegistryError(
                        f"index {index_ref} not pushed: {m.target} ({m.arch.name}) has never "
                        f"been pushed; push it too (`--target {m.selector}`)"
                    )
                desc = check_platform(reg, m, found.digest, f"index {index_ref} not pushed: ")
                log(f"  {m.target}: not selected, using the registry's {desc.digest[:19]}...")
                entries.append(desc)
        except XarchError as e:
            outcome.failed(e, log)
            continue
        write_index(reg, group[0], entries, outcome, log)


def write_index(
    reg: RegistryClient,
    item: PublishItem,
    entries: list[Descriptor],
    outcome: PushOutcome,
    log: Log,
) -> None:
    """Put the index ``item`` belongs to (push_index refuses unless every entry is in
    the registry, and reads it back) and record the result or the error in outcome."""
    try:
        log(f"+ PUT index {item.index_ref} ({len(entries)} platform(s))")
        idx = reg.push_index(item.repository, item.index_tag, entries)
    except XarchError as e:
        outcome.failed(e, log)
        return
    log(f"  index {item.index_ref} -> {idx.digest} (read back, every entry present)")
    outcome.indexes.append(
        PushedIndex(
            family=item.family,
            ref=item.index_ref,
            digest=idx.digest,
            media_type=idx.media_type,
            manifests=[{"digest": e.digest, "platform": e.platform_string} for e in entries],
        )
    )


def connect_registry(config: Config) -> RegistryClient:
    reg = RegistryClient(config.registry.address, insecure=config.registry.insecure)
    reg.ping()
    return reg


def push_images(
    config: Config,
    target_names: list[str] | None = None,
    *,
    engine: Engine | None = None,
    report: Path | None = None,
    log: Log = print,
) -> PushOutcome:
    """Push the selected images (the installer's too, when naming.select says so),
    then their indexes; record the outcome in the config's push record."""
    items = publish_items(config, select(config, target_names))
    engine = engine or Engine.connect()
    # Check everything local before the first push: nothing half-published for a typo.
    require_built(engine, config, items)
    reg = connect_registry(config)
    outcome = PushOutcome()
    push_items(engine, reg, items, all_items(config), outcome, log)
    record_outcome(config, outcome, report, log, steps="push")
    return outcome


def record_outcome(
    config: Config,
    outcome: PushOutcome,
    report: Path | None,
    log: Log,
    *,
    steps: str,
    extra: dict[str, str] | None = None,
) -> None:
    """Update the config's push record (the images and indexes of this run replace
    the recorded ones with the same reference; the others are kept), print the
    summary, and raise RegistryError naming every failed step (`steps`: push, index)."""
    previous = push_record(read_report(report), config) or {}
    images = [asdict(x) for x in outcome.images]
    indexes = [asdict(x) for x in outcome.indexes]
    path = write_push_record(
        config,
        {
            "config": str(config.path),
            "registry": config.registry.address,
            "namespace": config.registry.namespace,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "images": _merge(previous.get("images"), images),
            "indexes": _merge(previous.get("indexes"), indexes),
            "errors": outcome.errors,
            **(extra or {}),
        },
        report,
    )
    log("")
    log(summary_table(outcome))
    log(f"\nReport: {path}")
    if outcome.errors:
        first = outcome.errors[0]
        raise RegistryError(
            f"{len(outcome.errors)} {steps} step(s) failed:\n"
            + "\n".join(f"  - {e.splitlines()[0]}" for e in outcome.errors)
            + ("\n" + first if len(first.splitlines()) > 1 else "")
        )


def _merge(previous: Any, new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The recorded entries whose ref this run did not write, then this run's."""
    written = {x["ref"] for x in new}
    kept = [
        x
        for x in previous or []
        if isinstance(x, dict) and x.get("ref") not in written and x.get("ref")
    ]
    return kept + new


def summary_table(outcome: PushOutcome) -> str:
    rows = [("KIND", "PLATFORM", "DIGEST", "REFERENCE")]
    for im in outcome.images:
        rows.append(("image", im.platform, im.digest, im.ref))
    for ix in outcome.indexes:
        rows.append(("index", ",".join(m["platform"] for m in ix.manifests), ix.digest, ix.ref))
    return format_table(rows)
