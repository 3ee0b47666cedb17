"""Building helper images: pinned base + pinned emulator, labelled, platform-correct.

A target whose build inputs are unchanged (same base digest, emulator sha256,
rendered Dockerfile, labels, environment and toolkit version) is skipped: the
local image carries the hash of its inputs in a label.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import string
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors

from xarch import __version__
from xarch.errors import BuildError, XarchError
from xarch.host import qemu
from xarch.images.resources import resource_text
from xarch.model.config import BootstrapBase, Config, PinnedBase, Target
from xarch.model.report import write_section
from xarch.model.tables import format_table
from xarch.oci import engine

Log = Callable[[str], None]

LABEL_PREFIX = "io.xarch"
L_INPUTS = f"{LABEL_PREFIX}.inputs-hash"
L_QEMU_VERSION = f"{LABEL_PREFIX}.qemu.version"
L_QEMU_SHA = f"{LABEL_PREFIX}.qemu.sha256"
L_QEMU_BINARY = f"{LABEL_PREFIX}.qemu.binary"
L_VERSION = f"{LABEL_PREFIX}.version"
L_TARGET = f"{LABEL_PREFIX}.target"
L_ARCH = f"{LABEL_PREFIX}.arch"
L_BASE_NAME = "org.opencontainers.image.base.name"
L_BASE_DIGEST = "org.opencontainers.image.base.digest"
L_REVISION = "org.opencontainers.image.revision"
L_BASE_REF = f"{LABEL_PREFIX}.base.ref"  # name@digest, what FROM used


def helper_ref(config: Config, target: Target, tag: str) -> str:
    """The per-arch image reference of a target for one of its family's tags."""
    return f"{config.registry.image_name(target.family)}:{target.arch_tag(tag)}"


def source_revision() -> str:
    root = Path(__file__).resolve().parent  # a checkout's revision; outside one, unknown
    try:
        rev = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{rev}-dirty" if dirty else rev


def target_env(config: Config, target: Target) -> dict[str, str]:
    env: dict[str, str] = {}
    cpu = config.qemu.cpu.get(target.arch.name)
    if cpu:
        env["QEMU_CPU"] = cpu
    env.update(target.env)
    return env


def render_dockerfile(base_ref: str, target: Target, env: dict[str, str]) -> str:
    template = resource_text("helper/Dockerfile.in")
    env_lines = "\n".join(f"ENV {k}={json.dumps(v)}" for k, v in sorted(env.items()))
    return string.Template(template).substitute(
        BASE=base_ref, QEMU_BINARY=target.arch.qemu_binary, ENV=env_lines
    )


def build_labels(config: Config, target: Target, base: PinnedBase) -> dict[str, str]:
    """Labels that describe the inputs (everything but the revision is hashed)."""
    base_name = f"{base.image}:{base.tag}" if base.tag else base.image
    labels = dict(target.labels)
    labels.update(
        {
            L_BASE_NAME: base_name,
            L_BASE_DIGEST: base.digest,
            L_BASE_REF: base.pull_ref,
            L_QEMU_VERSION: config.qemu.version,
            L_QEMU_BINARY: target.arch.emulator_path,
            L_QEMU_SHA: config.qemu.sha256_for(target.arch),
            L_VERSION: __version__,
            L_TARGET: target.name,
            L_ARCH: target.arch.name,
        }
    )
    return labels


def inputs_hash(dockerfile: str, labels: dict[str, str], emulator_sha256: str) -> str:
    h = hashlib.sha256()
    h.update(
        json.dumps(
            {"dockerfile": dockerfile, "labels": labels, "emulator": emulator_sha256},
            sort_keys=True,
        ).encode()
    )
    return "sha256:" + h.hexdigest()


@dataclass
class BuildResult:
    target: str
    arch: str
    platform: str
    image: str
    tags: list[str]
    status: str  # built | up-to-date | failed
    seconds: float
    inputs_hash: str = ""
    image_id: str = ""
    size: int = 0
    base: dict[str, str] = field(default_factory=dict)
    qemu: dict[str, str] = field(default_factory=dict)
    error: str = ""


def resolve_base(
    client: docker.DockerClient,
    config: Config,
    target: Target,
    emulator: Path,
    log: Log,
) -> PinnedBase:
    """The base as a digest-pinned reference that is present in the local engine."""
    if isinstance(target.base, BootstrapBase):
        from xarch.images.standin import StandinSpec, ensure_standin_base

        base = ensure_standin_base(
            client, config.registry, StandinSpec(base=target.base, arch=target.arch), emulator, log
        )
    else:
        base = target.base
    ref = base.pull_ref
    attrs = engine.inspect(client, ref)
    if attrs is None:
        engine.pull(client, ref, log, platform=target.arch.platform)
        attrs = engine.inspect(client, ref)
        if attrs is None:
            raise BuildError(f"pulled {ref} but the engine does not show it")
    arch = attrs.get("Architecture")
    if arch != target.arch.docker_arch:
        raise BuildError(
            f"the base {ref} is a {attrs.get('Os')}/{arch} image, but target {target.name!r} "
            f"is {target.arch.platform}.\n"
            "  Pin the digest of the per-architecture manifest (not of a multi-arch index "
            "resolved for another platform), or fix targets[].arch."
        )
    if not base.digest:
        # --allow-unpinned: record what the tag resolved to.
        repo_digests = [d for d in attrs.get("RepoDigests") or [] if d.startswith(base.image + "@")]
        if repo_digests:
            base = PinnedBase(
                image=base.image, tag=base.tag, digest=repo_digests[0].split("@", 1)[1]
            )
    return base


def build_target(
    client: docker.DockerClient,
    config: Config,
    target: Target,
    emulator: Path,
    *,
    no_cache: bool,
    revision: str,
    log: Log,
) -> BuildResult:
    start = time.monotonic()
    refs = [helper_ref(config, target, t) for t in target.tags]
    result = BuildResult(
        target=target.name,
        arch=target.arch.name,
        platform=target.arch.platform,
        image=refs[0],
        tags=refs,
        status="failed",
        seconds=0.0,
        qemu={
            "version": config.qemu.version,
            "binary": target.arch.emulator_path,
            "sha256": config.qemu.sha256_for(target.arch),
        },
    )
    base = resolve_base(client, config, target, emulator, log)
    result.base = {"image": base.image, "tag": base.tag, "digest": base.digest}
    env = target_env(config, target)
    dockerfile = render_dockerfile(base.pull_ref, target, env)
    labels = build_labels(config, target, base)
    digest = inputs_hash(dockerfile, labels, config.qemu.sha256_for(target.arch))
    result.inputs_hash = digest

    existing = engine.inspect(client, refs[0])
    if (
        not no_cache
        and existing is not None
        and ((existing.get("Config") or {}).get("Labels") or {}).get(L_INPUTS) == digest
        and existing.get("Architecture") == target.arch.docker_arch
    ):
        for ref in refs[1:]:
            _tag(client, existing["Id"], ref)
        result.status = "up-to-date"
        result.image_id = existing["Id"]
        result.size = int(existing.get("Size", 0))
        result.seconds = time.monotonic() - start
        log(f"  {target.name}: up to date ({refs[0]}), skipped")
        return result

    labels[L_INPUTS] = digest
    labels[L_REVISION] = revision
    with tempfile.TemporaryDirectory(prefix="xarch-ctx-") as ctx:
        ctxp = Path(ctx)
        (ctxp / "Dockerfile").write_text(dockerfile)
        shutil.copy2(emulator, ctxp / target.arch.qemu_binary)
        log(f"+ docker build -t {refs[0]} ({target.name}, FROM {base.pull_ref})")
        image_id = _run_build(client, ctxp, refs[0], labels, no_cache=no_cache, log=log)
    for ref in refs[1:]:
        _tag(client, image_id, ref)
    attrs = engine.inspect(client, image_id) or {}
    if attrs.get("Architecture") != target.arch.docker_arch or (
        target.arch.docker_variant and attrs.get("Variant") != target.arch.docker_variant
    ):
        raise BuildError(
            f"{refs[0]} was built with platform {attrs.get('Os')}/{attrs.get('Architecture')}"
            f"/{attrs.get('Variant') or ''}, expected {target.arch.platform}"
        )
    result.status = "built"
    result.image_id = image_id
    result.size = int(attrs.get("Size", 0))
    result.seconds = time.monotonic() - start
    return result


def _tag(client: docker.DockerClient, image_id: str, ref: str) -> None:
    repo, _, tag = ref.rpartition(":")
    client.api.tag(image_id, repo, tag)


def _run_build(
    client: docker.DockerClient,
    ctx: Path,
    ref: str,
    labels: dict[str, str],
    *,
    no_cache: bool,
    log: Log,
) -> str:
    image_id = ""
    try:
        for event in client.api.build(
            path=str(ctx),
            tag=ref,
            labels=labels,
            nocache=no_cache,
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
        ):
            if "error" in event or "errorDetail" in event:
                detail = event.get("errorDetail", {}).get("message") or event.get("error")
                raise BuildError(f"docker build of {ref} failed: {detail}")
            line = str(event.get("stream", "")).rstrip()
            if line.startswith("Step "):
                log(f"    {line}")
            aux = event.get("aux")
            if isinstance(aux, dict) and aux.get("ID"):
                image_id = str(aux["ID"])
    except docker.errors.APIError as e:
        raise BuildError(f"docker build of {ref} failed: {e.explanation or e}") from None
    if not image_id:
        attrs = engine.inspect(client, ref)
        if attrs is None:
            raise BuildError(f"docker build of {ref} produced no image")
        image_id = str(attrs["Id"])
    return image_id


def build_images(
    config: Config,
    target_names: list[str] | None = None,
    *,
    no_cache: bool = False,
    client: docker.DockerClient | None = None,
    report: Path | None = None,
    log: Log = print,
) -> list[BuildResult]:
    """Build the selected targets; returns one result per target (failures included).

    The binfmt installer image (one result per variant) is built too when the config
    has an ``installer`` section and no target, or ``binfmt-installer``, is named.
    Raises the first XarchError after writing the report when any target failed.
    """
    targets = config.select(target_names)
    with_installer = config.wants_installer(target_names)
    total = len(targets) + (
        len(config.installer.hosts) if with_installer and config.installer else 0
    )
    client = client or engine.connect()
    if targets:
        log(f"Checking the pinned emulators (QEMU {config.qemu.version})")
    emulators = qemu.ensure_emulators(config.qemu, [t.arch for t in targets], log)
    revision = source_revision()
    results: list[BuildResult] = []
    first_error: XarchError | None = None
    for i, t in enumerate(targets, 1):
        log(f"[{i}/{total}] {t.name} ({t.arch.platform})")
        try:
            results.append(
                build_target(
                    client,
                    config,
                    t,
                    emulators[t.arch.name],
                    no_cache=no_cache,
                    revision=revision,
                    log=log,
                )
            )
        except XarchError as e:
            first_error = first_error or e
            results.append(
                BuildResult(
                    target=t.name,
                    arch=t.arch.name,
                    platform=t.arch.platform,
                    image=helper_ref(config, t, t.tags[0]),
                    tags=[helper_ref(config, t, tag) for tag in t.tags],
                    status="failed",
                    seconds=0.0,
                    error=str(e),
                )
            )
            log(f"  {t.name}: FAILED: {str(e).splitlines()[0]}")
    if with_installer:
        from xarch.images.installer import build_installer

        inst_results, inst_error = build_installer(
            config,
            client=client,
            no_cache=no_cache,
            revision=revision,
            log=log,
            first=len(targets) + 1,
            total=total,
        )
        results.extend(inst_results)
        first_error = first_error or inst_error
    path = write_section(
        "build",
        {
            "config": str(config.path),
            "xarch_version": __version__,
            "revision": revision,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "targets": [asdict(r) for r in results],
        },
        report,
    )
    log("")
    log(summary_table(results))
    log(f"\nReport: {path}")
    if first_error is not None:
        raise first_error
    return results


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


def results_json(results: list[BuildResult]) -> list[dict[str, Any]]:
    return [asdict(r) for r in results]
