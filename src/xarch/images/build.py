"""build-images: the selected helper images, then the binfmt installer's variants
when the selection includes it (model/naming.select decides), one report section.

Each image is built by its own builder (helper.py, installer.py), which returns a
BuildResult; a failure is recorded and the next image is still built. The report
is written before the first error is raised.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from xarch import __version__
from xarch.errors import XarchError
from xarch.host import qemu
from xarch.images import installer, standin
from xarch.images.helper import build_target, source_revision
from xarch.images.installer import build_variant
from xarch.images.results import BuildResult, summary_table
from xarch.model.config import Config, InstallerHost
from xarch.model.naming import helper_ref, installer_settings, select, variant_refs, variant_target
from xarch.model.report import write_section
from xarch.oci.engine import Engine

Log = Callable[[str], None]


def _prefetch_installer(config: Config, hosts: Sequence[InstallerHost], log: Log) -> None:
    for host in hosts:
        try:
            installer.fetch(config, host, lambda line: log(f"[installer] {line.lstrip()}"))
        except (XarchError, OSError) as e:
            log(f"[installer] prefetch for {host.arch.name} failed ({str(e).splitlines()[0]})")


def build_images(
    config: Config,
    target_names: list[str] | None = None,
    *,
    no_cache: bool = False,
    engine: Engine | None = None,
    report: Path | None = None,
    log: Log = print,
) -> list[BuildResult]:
    """Build the selected targets (and the installer with them, see naming.select);
    returns one result per image, failures included. Raises the first XarchError
    after writing the report when any image failed."""
    selection = select(config, target_names)
    hosts = installer_settings(config).hosts if selection.installer else ()
    total = len(selection.targets) + len(hosts)
    engine = engine or Engine.connect()
    if selection.targets:
        log(f"Checking the pinned emulators (QEMU {config.qemu.version})")
    emulators = qemu.ensure_emulators(config.qemu, [t.arch for t in selection.targets], log)
    # The installer variants' downloads (network, little CPU) go on beside the stand-in
    # bootstraps (CPU): their builds then find everything cached. A failure here is
    # only said; the build of the variant fetches again and reports it.
    prefetch = threading.Thread(
        target=_prefetch_installer, args=(config, hosts, log), name="installer-fetch", daemon=True
    )
    prefetch.start()
    standin.prepare_targets(
        config.registry,
        selection.targets,
        emulators,
        log,
        shell=lambda: installer.host_shell(config, log),
        engine=lambda: Engine.connect(),
    )
    revision = source_revision()
    results: list[BuildResult] = []
    first_error: XarchError | None = None
    for i, t in enumerate(selection.targets, 1):
        log(f"[{i}/{total}] {t.name} ({t.arch.platform})")
        try:
            results.append(
                build_target(
                    engine,
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
            refs = [helper_ref(config, t, tag) for tag in t.tags]
            results.append(BuildResult.begin("helper", t.name, t.arch, refs, error=str(e)))
            log(f"  {t.name}: FAILED: {str(e).splitlines()[0]}")
    prefetch.join()
    for i, host in enumerate(hosts, len(selection.targets) + 1):
        name = variant_target(host)
        log(f"[{i}/{total}] {name} ({host.arch.platform})")
        try:
            results.append(
                build_variant(engine, config, host, no_cache=no_cache, revision=revision, log=log)
            )
        except XarchError as e:
            first_error = first_error or e
            refs = variant_refs(config, host)
            results.append(BuildResult.begin("installer", name, host.arch, refs, error=str(e)))
            log(f"  {name}: FAILED: {str(e).splitlines()[0]}")
    path = write_section(
        "build",
        {
            "config": str(config.path),
            "xarch_version": __version__,
            "revision": revision,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "targets": [r.to_json() for r in results],
        },
        report,
    )
    log("")
    log(summary_table(results))
    log(f"\nReport: {path}")
    if first_error is not None:
        raise first_error
    return results
