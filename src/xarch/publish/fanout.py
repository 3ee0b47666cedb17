"""Publishing from many machines: one job per target pushes its per-arch image and
writes its digest to a file; a final job assembles each family's multi-arch index
from those files.

``push-images`` does both halves on one machine. In CI the halves run on different
machines (a build matrix, then one job that needs them all), so the per-arch
digests travel between them as small JSON files (CI artifacts):

    digests/<target>.json   {"target", "family", "arch", "registry", "repository",
                             "images": [{"tag", "ref", "digest", "media_type",
                                         "size", "platform"}]}

``push_index`` writes an index only when every member of the family has a digest
file and every digest reads back from the registry with its target's platform;
it lists the entries in config order, so the index has the same digest that
``push-images`` writes for the same images.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from xarch.errors import BadInput, RegistryError, XarchError
from xarch.model.config import Config
from xarch.model.naming import PublishItem, helper_items
from xarch.oci.engine import Engine
from xarch.oci.registry import Descriptor, RegistryClient, is_digest
from xarch.publish.push import (
    PushOutcome,
    check_platform,
    connect_registry,
    push_item,
    pushed_image,
    record_outcome,
    require_built,
    write_index,
)

Log = Callable[[str], None]

DIGEST_SCHEMA = "xarch-digest/1"


@dataclass(frozen=True, kw_only=True)
class DigestRecord:
    """What one target's job pushed, read from (or written to) its digest file."""

    target: str
    family: str
    arch: str
    registry: str
    repository: str
    images: tuple[dict[str, Any], ...]  # one per family tag

    def to_json(self) -> dict[str, Any]:
        return {"schema": DIGEST_SCHEMA, **asdict(self), "images": list(self.images)}

    def image_for(self, tag: str) -> dict[str, Any] | None:
        return next((im for im in self.images if im.get("tag") == tag), None)


def digest_file(directory: Path, target: str) -> Path:
    return directory / f"{target}.json"


def push_arch(
    config: Config,
    target_names: list[str],
    digests_dir: Path,
    *,
    engine: Engine | None = None,
    log: Log = print,
) -> list[DigestRecord]:
    """Push each named target's per-arch image (every family tag), read it back, check
    its platform, and write ``<digests_dir>/<target>.json``. No index is written."""
    if not target_names:
        raise BadInput("name the target(s) to push: --target NAME (one per CI job)")
    targets = config.select(target_names)
    engine = engine or Engine.connect()
    require_built(engine, config, helper_items(config, targets))
    reg = connect_registry(config)
    records = []
    for t in targets:
        images = []
        for item in helper_items(config, (t,)):
            desc = push_item(engine, reg, item, log)
            images.append(
                {
                    "tag": item.index_tag,
                    "ref": item.ref,
                    "digest": desc.digest,
                    "media_type": desc.media_type,
                    "size": desc.size,
                    "platform": dict(desc.platform or {}),
                }
            )
        record = DigestRecord(
            target=t.name,
            family=t.family,
            arch=t.arch.name,
            registry=config.registry.address,
            repository=config.registry.repository(t.family),
            images=tuple(images),
        )
        path = digest_file(digests_dir, t.name)
        _write_json(path, record.to_json())
        log(f"  {t.name}: {images[0]['digest']} ({t.arch.platform}) -> {path}")
        records.append(record)
    return records


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def read_digests(config: Config, digests_dir: Path) -> dict[str, DigestRecord]:
    """Every digest file under digests_dir (CI artifact downloads may nest them in
    sub-directories), checked against the config; keyed by target name."""
    if not digests_dir.is_dir():
        raise BadInput(
            f"{digests_dir} is not a directory; pass --digests-dir DIR where the push-arch "
            "jobs' digest files were downloaded"
        )
    known = {t.name: t for t in config.targets}
    out: dict[str, DigestRecord] = {}
    where: dict[str, Path] = {}
    for path in sorted(digests_dir.rglob("*.json")):
        if not path.is_file():  # a FIFO would block the read; a directory is not ours
            raise BadInput(f"{path}: not a regular file, so not a digest file push-arch wrote")
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError, RecursionError) as e:  # RecursionError: deep nesting
            raise BadInput(f"{path}: not a readable JSON digest file ({e})") from None
        if not isinstance(doc, dict) or doc.get("schema") != DIGEST_SCHEMA:
            raise BadInput(f"{path}: not an xarch digest file (schema {DIGEST_SCHEMA!r})")
        name = str(doc.get("target", ""))
        t = known.get(name)
        if t is None:
            raise BadInput(
                f"{path}: target {name!r} is not in {config.path}; "
                "the digests come from another config"
            )
        if doc.get("family") != t.family or doc.get("arch") != t.arch.name:
            raise BadInput(
                f"{path}: {name} is family {doc.get('family')!r} / {doc.get('arch')!r} there, "
                f"{t.family!r} / {t.arch.name!r} in {config.path}"
            )
        if doc.get("registry") != config.registry.address:
            raise BadInput(
                f"{path}: pushed to {doc.get('registry')!r}, but {config.path} publishes to "
                f"{config.registry.address!r}"
            )
        images = doc.get("images")
        if not isinstance(images, list) or not all(
            isinstance(im, dict) and is_digest(str(im.get("digest", ""))) for im in images
        ):
            raise BadInput(f"{path}: 'images' must list digests (sha256:<64 hex>)")
        if name in out:
            raise BadInput(f"{path} and {where[name]} both hold digests for {name}")
        where[name] = path
        out[name] = DigestRecord(
            target=name,
            family=t.family,
            arch=t.arch.name,
            registry=config.registry.address,
            repository=str(doc.get("repository", "")),
            images=tuple(images),
        )
    return out


def push_index(
    config: Config,
    digests_dir: Path,
    families: list[str] | None = None,
    *,
    report: Path | None = None,
    log: Log = print,
) -> PushOutcome:
    """Write each family's multi-arch index (one per family tag) from the digest files.

    A family whose digests are incomplete gets no index; the others still do. The
    config's push record gets the images (from the digest files) and the indexes;
    what it holds for other images (the installer's, other families) is kept.
    """
    all_families = config.families()
    wanted = families or list(all_families)
    for f in wanted:
        if f not in all_families:
            raise BadInput(
                f"{config.path}: no family named {f!r}; families: {', '.join(all_families)}"
            )
    records = read_digests(config, digests_dir)
    reg = connect_registry(config)
    outcome = PushOutcome()
    for family in wanted:
        members = all_families[family]
        missing = [m.name for m in members if m.name not in records]
        if missing:
            msg = (
                f"no index for family {family}: no digest file for {', '.join(missing)} in "
                f"{digests_dir} (did its build job fail, or was its artifact not downloaded?)"
            )
            outcome.errors.append(msg)
            log(f"  {msg}")
            continue
        items = helper_items(config, tuple(members))
        for tag in members[0].tags:
            group = [item for item in items if item.index_tag == tag]
            entries: list[Descriptor] = []
            try:
                for item in group:
                    entries.append(_recorded(reg, records[item.target], item))
            except XarchError as e:
                outcome.failed(e, log)
                continue
            outcome.images += [pushed_image(i, d) for i, d in zip(group, entries, strict=True)]
            write_index(reg, group[0], entries, outcome, log)
    record_outcome(
        config, outcome, report, log, steps="index", extra={"from_digests": str(digests_dir)}
    )
    return outcome


def _recorded(reg: RegistryClient, record: DigestRecord, item: PublishItem) -> Descriptor:
    """The descriptor of the image a digest file records for ``item``, read back."""
    im = record.image_for(item.index_tag)
    if im is None:
        raise RegistryError(
            f"index {item.index_ref} not pushed: the digest file of {item.target} has no "
            f"image for tag {item.index_tag!r}"
        )
    return check_platform(reg, item, str(im["digest"]), f"index {item.index_ref} not pushed: ")
