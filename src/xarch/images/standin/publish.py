"""The root filesystem as a platform-correct image, pushed and recorded; the build
path's one question, `ensure_standin_base` / `prepare_targets`."""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from xarch.errors import BuildError, XarchError
from xarch.images.standin.bootstrap import _emulation, bootstrap_rootfs
from xarch.images.standin.suites import STANDIN_NOTE, Log, StandinSpec
from xarch.model import children
from xarch.model.config import BootstrapBase, PinnedBase, RegistrySettings, Target
from xarch.model.hashing import sha256_file
from xarch.model.paths import cache_dir
from xarch.oci import archive as imagearchive
from xarch.oci.engine import Engine
from xarch.oci.registry import RegistryClient


def image_config(spec: StandinSpec, diff_id: str) -> dict[str, Any]:
    """An image config whose platform is the target's, not the host's."""
    config: dict[str, Any] = {
        "Env": spec.env(),
        "Cmd": ["/bin/bash"],
        "Labels": spec.labels(),
        "WorkingDir": "/",
    }
    if spec.base.layout == "manylinux-standin":
        config["Entrypoint"] = ["manylinux-entrypoint"]
    return imagearchive.platform_config(
        spec.arch,
        config=config,
        diff_ids=[diff_id],
        history=[
            {
                "created": imagearchive.EPOCH,
                "created_by": f"mmdebstrap {spec.base.suite} {spec.arch.debian_arch} "
                f"({STANDIN_NOTE})",
            }
        ],
    )


def load_rootfs_image(
    engine: Engine, spec: StandinSpec, rootfs: Path, repo_tag: str, log: Log = print
) -> str:
    """docker load a one-layer image made of `rootfs`; returns the image id."""
    diff_id = "sha256:" + sha256_file(rootfs)
    return imagearchive.load(
        engine,
        repo_tag,
        image_config(spec, diff_id),
        [rootfs],
        what=f"{spec.arch.platform} stand-in image",
        log=log,
    )


def _record_path(registry: RegistrySettings, spec: StandinSpec) -> Path:
    """Where the push of spec's base to `registry` is recorded: by address and namespace
    (the same base pushed under two namespaces is two pushes), image, architecture, key."""
    safe = registry.address.replace(":", "_")
    name = f"{spec.arch.name}-{spec.key()}.json"
    return cache_dir() / "bases" / safe / registry.namespace / spec.base.image / name


def cached_base(registry: RegistrySettings, spec: StandinSpec) -> PinnedBase | None:
    """The stand-in pushed earlier, if the registry still has it (one HEAD request).

    Only "not there" (no record, or the registry answers 404) means bootstrap again; a
    registry that refuses or does not answer is an error now, not after minutes of
    bootstrapping followed by a failed push.
    """
    rec = _record_path(registry, spec)
    try:
        data = json.loads(rec.read_text())
        digest, image, tag = str(data["digest"]), str(data["image"]), str(data["tag"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise BuildError(
            f"the stand-in record {rec} is unreadable ({e}); delete it and run again "
            "(the stand-in is then looked up, or bootstrapped, anew)"
        ) from None
    repo = registry.repository(spec.base.image)
    client = RegistryClient(registry.address, insecure=registry.insecure)
    if client.head_manifest(repo, digest) is None:
        return None
    return PinnedBase(image=image, tag=tag, digest=digest)


def prepare_targets(
    registry: RegistrySettings,
    targets: Sequence[Target],
    emulators: dict[str, Path],
    log: Log = print,
    *,
    shell: Callable[[], Path | None] | None = None,
    engine: Callable[[], Engine] | None = None,
) -> None:
    """prepare_standins for the targets whose base is a stand-in (the others need none)."""
    specs = [
        StandinSpec(base=t.base, arch=t.arch) for t in targets if isinstance(t.base, BootstrapBase)
    ]
    prepare_standins(registry, specs, emulators, log, shell=shell, engine=engine)


def prepare_standins(
    registry: RegistrySettings,
    specs: list[StandinSpec],
    emulators: dict[str, Path],
    log: Log = print,
    *,
    shell: Callable[[], Path | None] | None = None,
    engine: Callable[[], Engine] | None = None,
) -> None:
    """Bootstrap, in parallel, every stand-in root filesystem that is neither in the
    registry nor in the cache, so the builds that follow find them cached; with
    `engine` (one connection per worker), each worker then loads and pushes its base
    at once, while the others still bootstrap (docker push compresses the layer: tens
    of seconds per base, no longer one after the other).

    Each bootstrap is mostly emulated, single-threaded dpkg work: two run side by side
    on two cores in about the time of the longer one. Lines are prefixed by arch.
    `shell` gives the static busybox of images.hostdeb (asked for only when something
    is bootstrapped).
    """
    todo: list[StandinSpec] = []
    for spec in specs:  # bad input (suite, mirror) surfaces here, before any bootstrap
        spec.key()
        if spec in todo or (engine is None and spec.rootfs_path.is_file()):
            continue
        if cached_base(registry, spec) is None:
            todo.append(spec)
    boot = [s for s in todo if not s.rootfs_path.is_file()]
    if not todo:
        return
    busybox = shell() if shell is not None and boot else None
    lock = threading.Lock()

    def prefixed(arch: str) -> Log:
        def out(line: str) -> None:
            with lock:
                log(f"[{arch}] {line.lstrip()}")

        return out

    def work(spec: StandinSpec) -> None:
        out = prefixed(spec.arch.name)
        rootfs = bootstrap_rootfs(spec, emulators[spec.arch.name], out, shell=busybox)
        if engine is not None:
            publish_standin(engine(), registry, spec, rootfs, out)

    log(
        f"Preparing {len(todo)} stand-in base(s) in parallel: "
        + ", ".join(
            f"{s.base.suite}/{s.arch.debian_arch} "
            + ("(bootstrap" if s in boot else "(cached")
            + (", load, push)" if engine is not None else ")")
            for s in todo
        )
    )
    errors: list[XarchError] = []
    with (
        contextlib.ExitStack() as handlers,
        concurrent.futures.ThreadPoolExecutor(max_workers=len(todo)) as pool,
    ):
        # Every architecture's handler is made sure of here, once, before any worker
        # starts: a worker's own temporary handler would restore binfmt_misc as it saw
        # it when it finished, unregistering the handlers the others still run under.
        for arch in {s.arch.name: s.arch for s in boot}.values():
            handlers.enter_context(_emulation(arch, emulators[arch.name], log))
        futures = {pool.submit(work, s): s for s in todo}
        try:
            for fut in concurrent.futures.as_completed(futures):
                try:
                    fut.result()
                except XarchError as e:
                    errors.append(e)
        except BaseException:
            # Interrupted (SIGINT/SIGTERM arrive in this thread only): stop the workers'
            # mmdebstrap groups now, or leaving the pool would wait for them to finish.
            children.stop_all()
            raise
    if errors:
        raise errors[0]


def ensure_standin_base(
    engine: Engine,
    registry: RegistrySettings,
    spec: StandinSpec,
    emulator: Path,
    log: Log = print,
) -> PinnedBase:
    """The stand-in base as a PinnedBase in `registry`: bootstrapped, loaded and pushed
    when needed, otherwise taken from the cache record."""
    found = cached_base(registry, spec)
    if found is not None:
        return found
    rootfs = bootstrap_rootfs(spec, emulator, log)
    return publish_standin(engine, registry, spec, rootfs, log)


def publish_standin(
    engine: Engine, registry: RegistrySettings, spec: StandinSpec, rootfs: Path, log: Log = print
) -> PinnedBase:
    """Load the root filesystem as the stand-in image, push it, record its digest."""
    image = registry.image_name(spec.base.image)
    tag = f"{spec.base.suite}-{spec.arch.name}-{spec.key()}"
    load_rootfs_image(engine, spec, rootfs, f"{image}:{tag}", log)
    digest = engine.push(image, tag, log)
    base = PinnedBase(image=image, tag=tag, digest=digest)
    rec = _record_path(registry, spec)
    rec.parent.mkdir(parents=True, exist_ok=True)
    tmp = rec.with_suffix(".tmp")
    tmp.write_text(json.dumps({"image": image, "tag": tag, "digest": digest}, indent=2))
    os.replace(tmp, rec)
    return base
