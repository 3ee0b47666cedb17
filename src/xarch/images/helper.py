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
from collections.abc import Callable
from pathlib import Path

from xarch import __version__
from xarch.errors import BuildError, DaemonError
from xarch.images import native, native_probe, native_uv
from xarch.images.resources import resource_text
from xarch.images.results import BuildResult, reuse_if_current, tag_all
from xarch.images.standin import StandinSpec, ensure_standin_base
from xarch.model.config import BootstrapBase, Config, PinnedBase, Target
from xarch.model.naming import (
    L_ARCH,
    L_BASE_DIGEST,
    L_BASE_NAME,
    L_BASE_REF,
    L_INPUTS,
    L_QEMU_BINARY,
    L_QEMU_SHA,
    L_QEMU_VERSION,
    L_REVISION,
    L_TARGET,
    L_VERSION,
    helper_ref,
)
from xarch.model.paths import cache_dir
from xarch.oci.engine import Engine

Log = Callable[[str], None]


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


def resolve_base(
    engine: Engine, config: Config, target: Target, emulator: Path, log: Log
) -> PinnedBase:
    """The base as a digest-pinned reference that is present in the local engine."""
    if isinstance(target.base, BootstrapBase):
        base = ensure_standin_base(
            engine, config.registry, StandinSpec(base=target.base, arch=target.arch), emulator, log
        )
    else:
        base = target.base
    ref = base.pull_ref
    attrs = engine.inspect(ref)
    if attrs is None:
        engine.pull(ref, "base", log, platform=target.arch.platform)
        attrs = engine.inspect(ref)
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


def qemu_record(config: Config, target: Target) -> dict[str, str]:
    return {
        "version": config.qemu.version,
        "binary": target.arch.emulator_path,
        "sha256": config.qemu.sha256_for(target.arch),
    }


def unproven_ref(target: Target, inputs: str) -> str:
    """The local-only tag an accelerated image has until its probe passed."""
    return f"xarch-unproven/{target.name.lower()}:{inputs.removeprefix('sha256:')[:16]}"


def _prove(
    engine: Engine,
    target: Target,
    image_id: str,
    unproven: str,
    ref: str,
    labels: dict[str, str],
    result: BuildResult,
    log: Log,
    *,
    leaves: bool,
    uv: bool,
) -> str:
    """Run the equivalence probes in the freshly built image (the compiler leaves' and
    the native uv's, whichever it carries); on success return the id of the same image
    with the probes' results in its labels, else raise. The unproven tag is removed
    either way, so no image reaches ``ref`` unproven."""
    try:
        with tempfile.TemporaryDirectory(prefix="xarch-probe-") as work:
            if leaves:
                log(f"  native probe of {target.name}: the corpus both ways, under emulation")
                probe = native_probe.run_probe(
                    engine, image_id, target.arch.platform, Path(work) / "probe", log
                )
                native_probe.require_passed(probe, ref)
                labels[f"{native.LABEL_PREFIX}.probe"] = probe.label()
                result.native = native.record_from_labels(labels)
            if uv:
                log(f"  uv probe of {target.name}: the native uv against the image's own")
                setuptools = native_uv.probe_setuptools(cache_dir() / "pypi", log)
                uv_probe = native_uv.run_uv_probe(
                    engine, image_id, target.arch, Path(work) / "uv-probe", setuptools, log
                )
                native_uv.require_passed(uv_probe, ref)
                labels[f"{native_uv.LABEL_PREFIX}.probe"] = uv_probe.label()
                result.uv = native_uv.record_from_labels(labels)
        with tempfile.TemporaryDirectory(prefix="xarch-ctx-") as ctx:
            ctxp = Path(ctx)
            (ctxp / "Dockerfile").write_text(native.probed_dockerfile(image_id, labels))
            return engine.build(ctxp, ref, {}, no_cache=False, log=log)  # labels: in the Dockerfile
    finally:
        try:
            engine.remove_image(unproven)
        except DaemonError as e:
            log(f"  warning: could not remove the local tag {unproven}: {e.detail}")


def build_target(
    engine: Engine,
    config: Config,
    target: Target,
    emulator: Path,
    *,
    no_cache: bool,
    revision: str,
    log: Log,
) -> BuildResult:
    refs = [helper_ref(config, target, t) for t in target.tags]
    result = BuildResult.begin(
        "helper", target.name, target.arch, refs, qemu=qemu_record(config, target)
    )
    base = resolve_base(engine, config, target, emulator, log)
    result.base = {"image": base.image, "tag": base.tag, "digest": base.digest}
    env = target_env(config, target)
    dockerfile = render_dockerfile(base.pull_ref, target, env)
    labels = build_labels(config, target, base)
    acc = target.accelerate if target.accelerate and target.accelerate.enabled else None
    if acc is not None:
        dockerfile += "".join(line + "\n" for line in native.dockerfile_lines(target.arch, acc))
        labels.update(native.pin_labels(acc))
    uv = bool(target.native_uv)
    if uv:
        dockerfile += "".join(line + "\n" for line in native_uv.dockerfile_lines())
        labels.update(native_uv.pin_labels(target.native_uv))
    result.inputs_hash = inputs_hash(dockerfile, labels, config.qemu.sha256_for(target.arch))
    if reuse_if_current(engine, result, target.arch, no_cache=no_cache, log=log):
        current = engine.labels(refs[0]) or {}
        if acc is not None:
            result.native = native.record_from_labels(current)
        if uv:
            result.uv = native_uv.record_from_labels(current)
        return result

    labels[L_INPUTS] = result.inputs_hash
    labels[L_REVISION] = revision
    if acc is not None:
        # Refused (exit 2) before anything is fetched or built, naming both versions.
        gcc_version, as_line = native.base_versions(engine, base.pull_ref, target.arch)
        native.require_match(acc, gcc_version, as_line)
    uv_version = uv_sha = ""
    if uv:
        # The base's own uv picks the pin: none, or one without a pin, is exit 2.
        uv_version = native_uv.base_uv_version(engine, base.pull_ref, target.arch)
        uv_sha = native_uv.require_pin(config.path, target.name, target.native_uv, uv_version)
    with tempfile.TemporaryDirectory(prefix="xarch-ctx-") as ctx:
        ctxp = Path(ctx)
        (ctxp / "Dockerfile").write_text(dockerfile)
        shutil.copy2(emulator, ctxp / target.arch.qemu_binary)
        tag = refs[0]
        if acc is not None:
            nat = native.prepare_native_context(target, cache_dir() / "native", ctxp, log)
            assert nat is not None  # acc is enabled
            labels.update(nat.labels)
            labels[f"{native.LABEL_PREFIX}.size"] = str(nat.size_bytes)
            log(f"  native toolchain {acc.toolchain}: {nat.size_bytes / 2**20:.1f} MiB "
                f"under {native.NATIVE_PREFIX}")  # fmt: skip
            tag = unproven_ref(target, result.inputs_hash)
        if uv:
            wheel = native_uv.fetch_wheel(uv_version, uv_sha, cache_dir() / "pypi", log)
            uvc = native_uv.prepare_context(
                uv_version, wheel, uv_sha, ctxp, lambda out: native.build_hook(out, log)
            )
            labels.update(uvc.labels)
            log(f"  native uv {uv_version} (x86_64, static) in place of the base's own")
            tag = unproven_ref(target, result.inputs_hash)
        log(f"+ docker build -t {tag} ({target.name}, FROM {base.pull_ref})")
        image_id = engine.build(ctxp, tag, labels, no_cache=no_cache, log=log)
    if acc is not None or uv:
        image_id = _prove(
            engine, target, image_id, tag, refs[0], labels, result, log,
            leaves=acc is not None, uv=uv,
        )  # fmt: skip
    attrs = tag_all(engine, image_id, result)
    if attrs.get("Architecture") != target.arch.docker_arch or (
        target.arch.docker_variant and attrs.get("Variant") != target.arch.docker_variant
    ):
        raise BuildError(
            f"{refs[0]} was built with platform {attrs.get('Os')}/{attrs.get('Architecture')}"
            f"/{attrs.get('Variant') or ''}, expected {target.arch.platform}"
        )
    return result.done("built", attrs)
