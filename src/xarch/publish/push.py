"""Publishing: per-arch images first, then one multi-arch index per family and tag.

An index is written only after every image it lists has been pushed and read
back from the registry with the right platform, so a registry never holds an
index that points at a missing image. Digests go into the report.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import docker

from xarch.errors import RegistryError, TestFailure, XarchError
from xarch.images.helper import L_INPUTS, helper_ref
from xarch.model.config import Config, Target
from xarch.model.report import write_section
from xarch.model.tables import format_table
from xarch.oci import engine
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
    images: list[PushedImage]
    indexes: list[PushedIndex]
    errors: list[str]


def require_built(
    config: Config, client: docker.DockerClient, targets: tuple[Target, ...], build_cmd: str
) -> None:
    """Raise before the first push when a target's image is missing for any of its tags
    (nothing is half-published for a target that was never built)."""
    for t in targets:
        for tag in t.tags:
            ref = helper_ref(config, t, tag)
            attrs = engine.inspect(client, ref)
            if attrs is None or L_INPUTS not in ((attrs.get("Config") or {}).get("Labels") or {}):
                raise TestFailure(f"{ref} is not built; run `{build_cmd}` first")


def has_target_platform(desc: Descriptor, target: Target) -> bool:
    """Whether a manifest read back from the registry carries exactly the target's
    os/architecture/variant (strict: what xarch pushes always names the variant)."""
    want = target.arch.oci_platform()
    got = dict(desc.platform or {})
    return all(got.get(k, "") == v for k, v in want.items())


def push_images(
    config: Config,
    target_names: list[str] | None = None,
    *,
    client: docker.DockerClient | None = None,
    report: Path | None = None,
    log: Log = print,
) -> PushOutcome:
    targets = config.select(target_names)
    with_installer = config.wants_installer(target_names)
    client = client or engine.connect()
    # Check everything local before the first push: nothing half-published for a typo.
    if with_installer:
        from xarch.images.installer import check_built

        check_built(config, client)
    require_built(config, client, targets, f"invoke build-images --config {config.path}")
    reg = RegistryClient(config.registry.address, insecure=config.registry.insecure)
    reg.ping()

    outcome = PushOutcome(images=[], indexes=[], errors=[])
    pushed: dict[tuple[str, str], Descriptor] = {}  # (target, tag) -> descriptor
    failed_targets: set[str] = set()
    for i, t in enumerate(targets, 1):
        repo = config.registry.repository(t.family)
        for tag in t.tags:
            log(f"[{i}/{len(targets)}] {t.name}: {tag}")
            try:
                digest = engine.push(
                    client, config.registry.image_name(t.family), t.arch_tag(tag), log
                )
                desc = reg.manifest_descriptor(repo, digest)
                if not has_target_platform(desc, t):
                    raise RegistryError(
                        f"{config.registry.address}/{repo}@{digest} reads back as "
                        f"{desc.platform_string}, expected {t.arch.platform}"
                    )
            except XarchError as e:
                outcome.errors.append(str(e))
                failed_targets.add(t.name)
                log(f"  FAILED: {str(e).splitlines()[0]}")
                continue
            pushed[(t.name, tag)] = desc
            outcome.images.append(
                PushedImage(
                    target=t.name,
                    ref=f"{config.registry.image_name(t.family)}:{t.arch_tag(tag)}",
                    digest=desc.digest,
                    platform=desc.platform_string,
                    media_type=desc.media_type,
                    size=desc.size,
                )
            )

    selected = {t.name for t in targets}
    for family, members in config.families().items():
        if not selected & {m.name for m in members}:
            continue
        repo = config.registry.repository(family)
        for tag in members[0].tags:
            index_ref = f"{config.registry.image_name(family)}:{tag}"
            broken = [m.name for m in members if m.name in failed_targets]
            if broken:
                msg = f"index {index_ref} not pushed: {', '.join(broken)} failed to push"
                outcome.errors.append(msg)
                log(f"  {msg}")
                continue
            entries: list[Descriptor] = []
            try:
                for m in members:
                    if (m.name, tag) in pushed:
                        entries.append(pushed[(m.name, tag)])
                        continue
                    # Not selected this run: use what the registry holds for it.
                    found = reg.head_manifest(repo, m.arch_tag(tag))
                    if found is None:
                        raise RegistryError(
                            f"index {index_ref} not pushed: {m.name} ({m.arch.name}) has never "
                            f"been pushed; push it too (`--target {m.name}`)"
                        )
                    desc = reg.manifest_descriptor(repo, found.digest)
                    log(f"  {m.name}: not selected, using the registry's {desc.digest[:19]}...")
                    entries.append(desc)
            except XarchError as e:
                outcome.errors.append(str(e))
                log(f"  FAILED: {str(e).splitlines()[0]}")
                continue
            write_index(reg, family, repo, tag, index_ref, entries, outcome, log)

    if with_installer:
        from xarch.images.installer import push_installer

        pushed_installer = push_installer(config, client=client, reg=reg, log=log)
        outcome.images.extend(pushed_installer.images)
        outcome.indexes.extend(pushed_installer.indexes)
        outcome.errors.extend(pushed_installer.errors)

    record_outcome(config, outcome, report, log, steps="push")
    return outcome


def record_outcome(
    config: Config,
    outcome: PushOutcome,
    report: Path | None,
    log: Log,
    *,
    steps: str,
    kept_images: list[dict[str, Any]] | None = None,
    kept_indexes: list[dict[str, Any]] | None = None,
    extra: dict[str, str] | None = None,
) -> None:
    """Write the report's push section, print the summary, and raise RegistryError
    naming every failed step (`steps` says which kind: push, index)."""
    path = write_section(
        "push",
        {
            "config": str(config.path),
            "registry": config.registry.address,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "images": [asdict(x) for x in outcome.images] + (kept_images or []),
            "indexes": [asdict(x) for x in outcome.indexes] + (kept_indexes or []),
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


def write_index(
    reg: RegistryClient,
    family: str,
    repo: str,
    tag: str,
    index_ref: str,
    entries: list[Descriptor],
    outcome: PushOutcome,
    log: Log,
) -> None:
    """Put one family's index (push_index refuses unless every entry is in the
    registry and reads it back) and record the result or the error in outcome."""
    try:
        log(f"+ PUT index {index_ref} ({len(entries)} platform(s))")
        idx = reg.push_index(repo, tag, entries)
    except XarchError as e:
        outcome.errors.append(str(e))
        log(f"  FAILED: {str(e).splitlines()[0]}")
        return
    log(f"  index {index_ref} -> {idx.digest} (read back, every entry present)")
    outcome.indexes.append(
        PushedIndex(
            family=family,
            ref=index_ref,
            digest=idx.digest,
            media_type=idx.media_type,
            manifests=[{"digest": e.digest, "platform": e.platform_string} for e in entries],
        )
    )


def summary_table(outcome: PushOutcome) -> str:
    rows = [("KIND", "PLATFORM", "DIGEST", "REFERENCE")]
    for im in outcome.images:
        rows.append(("image", im.platform, im.digest, im.ref))
    for ix in outcome.indexes:
        rows.append(("index", ",".join(m["platform"] for m in ix.manifests), ix.digest, ix.ref))
    return format_table(rows)
