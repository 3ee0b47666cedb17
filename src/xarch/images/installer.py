"""The least-privilege binfmt installer image (resources binfmt/).

A ``FROM scratch``-equivalent image per host architecture: Debian's static busybox
at ``/bin/busybox``, the pinned static emulators at ``/usr/bin/qemu-<arch>-static``
and an entrypoint script (``/usr/bin/xarch-binfmt``, run by ``/bin/busybox sh``)
that installs, uninstalls and lists binfmt_misc handlers from inside a container::

    docker run --rm -v /proc/sys/fs/binfmt_misc:/binfmt_misc IMAGE install aarch64

The host's binfmt_misc bind-mounted at ``/binfmt_misc`` is the only privilege it
needs (runc refuses a bind mount at ``/proc/sys/fs/binfmt_misc``: "cannot be mounted
because it is inside /proc"). Without the mount the script uses
``/proc/sys/fs/binfmt_misc``, mounting binfmt_misc there when the container may
(``--cap-add SYS_ADMIN`` or ``--privileged``).

The script is generated from the architecture table (magic and mask are written
once, in src/xarch/model/arch.py) and the image is written as a docker-archive and
``docker load``ed (src/xarch/oci/archive.py): no RUN step, no emulation while
building, and the platform in the image config is the variant's, not the engine's.
Variants are tagged ``<tag>-<host arch>`` and joined by one multi-arch index ``<tag>``.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from xarch import __version__
from xarch.errors import BadInput, BuildError, XarchError
from xarch.host import qemu
from xarch.host.binfmt import escape_bytes
from xarch.images.resources import resource_text
from xarch.images.results import BuildResult, reuse_if_current, tag_all
from xarch.model.arch import ARCHES, Arch, get_arch, host_arch
from xarch.model.config import INSTALLER_TARGET, Config, InstallerHost, QemuPin
from xarch.model.naming import (
    L_ARCH,
    L_BUSYBOX_SHA,
    L_BUSYBOX_VERSION,
    L_EMULATES,
    L_INPUTS,
    L_QEMU_SHA,
    L_QEMU_VERSION,
    L_REVISION,
    L_TARGET,
    L_VERSION,
    installer_settings,
    variant_refs,
    variant_target,
)
from xarch.model.paths import cache_dir
from xarch.oci import archive as imagearchive
from xarch.oci.engine import Engine

Log = Callable[[str], None]

TEMPLATE = "binfmt/xarch-binfmt.sh.in"
BUSYBOX_PATH = "/bin/busybox"
SCRIPT_PATH = "/usr/bin/xarch-binfmt"
ENTRYPOINT = [BUSYBOX_PATH, "sh", SCRIPT_PATH]
#: Where the documented `docker run -v` puts the host's binfmt_misc in the container.
BIND_PATH = "/binfmt_misc"


# --------------------------------------------------------------------------- the script


def aliases(arch: Arch) -> list[str]:
    """The other names get_arch accepts for ``arch`` (arm64 for aarch64, ...)."""
    out: list[str] = []
    for name in (arch.debian_arch, arch.docker_arch, arch.qemu_name):
        if name == arch.name or name in out:
            continue
        try:
            if get_arch(name) is arch:
                out.append(name)
        except BadInput:
            continue
    return out


def _case_label(arch: Arch) -> str:
    return "|".join([arch.name, *aliases(arch)])


def _arch_vars(a: Arch, indent: int) -> str:
    """Shell assignments of one architecture's facts; magic and mask as \\xNN escapes."""
    pad = " " * indent
    return (
        f"{pad}A_NAME={a.name} A_ENTRY={a.binfmt_name} A_INTERP={a.emulator_path}\n"
        f"{pad}A_MAGIC='{escape_bytes(a.magic)}'\n"
        f"{pad}A_MASK='{escape_bytes(a.mask)}'"
    )


def render_entrypoint(host: Arch, emulates: Sequence[Arch], qemu_version: str) -> str:
    """The entrypoint script of the ``host`` variant, carrying ``emulates``."""
    for a in emulates:
        if len(a.magic) != len(a.mask):
            raise BuildError(f"architecture {a.name}: magic and mask differ in length")
    for value in (host.name, qemu_version, *(a.name for a in emulates)):
        if not re.fullmatch(r"[A-Za-z0-9_.:+~-]+", value):
            raise BuildError(f"{value!r} cannot be written into the installer script")
    canon = "\n".join(f"        {_case_label(a)}) CANON={a.name} ;;" for a in ARCHES.values())
    cases = "\n".join(
        f"        {_case_label(a)})\n{_arch_vars(a, 12)}\n            ;;" for a in emulates
    )
    text = resource_text(TEMPLATE)
    for key, value in (
        ("@VARIANT@", host.name),
        ("@QEMU_VERSION@", qemu_version),
        ("@ARCHES@", " ".join(a.name for a in emulates)),
        ("@CANON_CASES@", canon),
        ("@ARCH_CASES@", cases),
        ("@VARIANT_INFO@", _arch_vars(host, 4)),
    ):
        if key not in text:
            raise BuildError(f"{TEMPLATE}: placeholder {key} is missing")
        text = text.replace(key, value)
    return text


# --------------------------------------------------------------------------- names


def local_probe_image(config: Config) -> str | None:
    """The local image of this host's installer variant (a static busybox that doctor
    can start for its container probes), or None when it is not built."""
    if config.installer is None:
        return None
    host = config.installer.host(host_arch())
    if host is None:
        return None
    try:
        engine = Engine.connect(timeout=30)
    except XarchError:
        return None
    for ref in variant_refs(config, host):
        if engine.inspect(ref) is not None:
            return ref
    return None


# --------------------------------------------------------------------------- inputs


def qemu_pin(config: Config, host: InstallerHost) -> QemuPin:
    """Where the host variant's emulators come from: qemu.source for the host's Debian
    architecture (the same cache as the helper images when that is this machine's)."""
    src = config.qemu.source
    if src.kind == "apt" and (src.debian_arch or qemu.native_debian_arch()) != (
        host.arch.debian_arch
    ):
        src = replace(src, debian_arch=host.arch.debian_arch)
    return QemuPin(version=config.qemu.version, source=src, sha256=dict(host.sha256))


def _sha_key(config: Config, host: InstallerHost, binary: str) -> str:
    if config.qemu.sha256.get(binary) == host.sha256[binary]:
        return f"qemu.sha256.{binary}"
    return f"installer.hosts.{host.arch.name}.sha256.{binary}"


@dataclass(frozen=True)
class Plan:
    """Everything that goes into one variant, known before anything is fetched."""

    host: InstallerHost
    script: str
    files: list[tuple[str, str, str]]  # (path in image, kind, sha256 or link target)
    labels: dict[str, str]
    inputs_hash: str


def plan(config: Config, host: InstallerHost) -> Plan:
    inst = installer_settings(config)
    script = render_entrypoint(host.arch, host.emulates, config.qemu.version)
    busybox_sha = inst.busybox.sha256[host.arch.name]
    files = [
        (BUSYBOX_PATH, "file", busybox_sha),
        ("/bin/sh", "symlink", "busybox"),
        (SCRIPT_PATH, "file", hashlib.sha256(script.encode()).hexdigest()),
        *((a.emulator_path, "file", host.sha256[a.qemu_binary]) for a in host.emulates),
    ]
    emulates = ",".join(a.name for a in host.emulates)
    labels = {
        "org.opencontainers.image.title": f"xarch binfmt installer for {host.arch.name} hosts",
        "org.opencontainers.image.description": (
            f"static busybox + qemu-user-static {config.qemu.version} ({emulates}); "
            "docker run --rm -v /proc/sys/fs/binfmt_misc:/binfmt_misc IMAGE "
            "install|uninstall|list"
        ),
        L_QEMU_VERSION: config.qemu.version,
        L_BUSYBOX_VERSION: inst.busybox.version,
        L_BUSYBOX_SHA: busybox_sha,
        L_EMULATES: emulates,
        L_VERSION: __version__,
        L_TARGET: INSTALLER_TARGET,
        L_ARCH: host.arch.name,
    }
    for a in host.emulates:
        labels[f"{L_QEMU_SHA}.{a.qemu_binary}"] = host.sha256[a.qemu_binary]
    h = hashlib.sha256(
        json.dumps(
            {
                "platform": host.arch.platform,
                "files": files,
                "labels": labels,
                "entrypoint": ENTRYPOINT,
                "busybox": [inst.busybox.package, inst.busybox.version],
            },
            sort_keys=True,
        ).encode()
    )
    return Plan(
        host=host,
        script=script,
        files=files,
        labels=labels,
        inputs_hash="sha256:" + h.hexdigest(),
    )


def busybox(config: Config, arch: Arch, log: Log) -> Path:
    """The pinned static busybox for `arch`, fetched and checked (cached)."""
    inst = installer_settings(config)
    src = inst.busybox.source(arch)
    slug = re.sub(r"[^A-Za-z0-9.+-]+", "_", f"{inst.busybox.package}-{inst.busybox.version}")
    got = qemu.ensure_binaries(
        src,
        {"busybox": (inst.busybox.sha256[arch.name], f"installer.busybox.sha256.{arch.name}")},
        cache_dir() / "busybox" / slug / arch.debian_arch,
        log,
    )
    return got["busybox"]


def host_shell(config: Config, log: Log) -> Path | None:
    """This host's pinned static busybox, the shell of the stand-in bootstrap's native
    dpkg-deb wrappers (images.hostdeb); None when the config pins none for this host."""
    if config.installer is None:
        return None
    arch = host_arch()
    if arch.name not in config.installer.busybox.sha256:
        return None
    return busybox(config, arch, log)


def fetch(config: Config, host: InstallerHost, log: Log) -> dict[str, Path]:
    """The verified busybox and emulators of a variant: {path in image: host file}."""
    out = {BUSYBOX_PATH: busybox(config, host.arch, log)}
    pin = qemu_pin(config, host)
    emulators = qemu.ensure_binaries(
        pin.source,
        {
            a.qemu_binary: (host.sha256[a.qemu_binary], _sha_key(config, host, a.qemu_binary))
            for a in host.emulates
        },
        qemu.emulator_dir(pin),
        log,
    )
    for a in host.emulates:
        out[a.emulator_path] = emulators[a.qemu_binary]
    return out


# --------------------------------------------------------------------------- build


def build_variant(
    engine: Engine,
    config: Config,
    host: InstallerHost,
    *,
    no_cache: bool,
    revision: str,
    log: Log,
) -> BuildResult:
    p = plan(config, host)
    result = BuildResult.begin(
        "installer",
        variant_target(host),
        host.arch,
        variant_refs(config, host),
        base={"image": "scratch"},
        qemu={"version": config.qemu.version}
        | {a.qemu_binary: host.sha256[a.qemu_binary] for a in host.emulates},
    )
    result.inputs_hash = p.inputs_hash
    if reuse_if_current(engine, result, host.arch, no_cache=no_cache, log=log):
        return result

    sources = fetch(config, host, log)
    labels = dict(p.labels) | {L_INPUTS: p.inputs_hash, L_REVISION: revision}
    entries: list[imagearchive.LayerEntry] = []
    for path, kind, value in p.files:
        if kind == "symlink":
            entries.append(imagearchive.LayerEntry(path=path, kind="symlink", link=value))
        elif path == SCRIPT_PATH:
            entries.append(imagearchive.LayerEntry(path=path, data=p.script.encode()))
        else:
            entries.append(imagearchive.LayerEntry(path=path, source=sources[path]))
    with tempfile.TemporaryDirectory(prefix="xarch-binfmt-") as tmp:
        layer = Path(tmp) / "layer.tar"
        diff_id = imagearchive.write_layer(entries, layer)
        image_config = imagearchive.platform_config(
            host.arch,
            config={
                "Entrypoint": ENTRYPOINT,
                "Cmd": ["help"],
                "Env": ["PATH=/usr/bin:/bin"],
                "Labels": labels,
                "WorkingDir": "/",
            },
            diff_ids=[diff_id],
            history=[
                {
                    "created": imagearchive.EPOCH,
                    "created_by": (
                        f"xarch {__version__} binfmt installer: "
                        f"{installer_settings(config).busybox.package} + qemu "
                        f"{config.qemu.version} (a layer written by "
                        "src/xarch/images/installer.py; no RUN step)"
                    ),
                }
            ],
        )
        image_id = imagearchive.load(
            engine,
            result.image,
            image_config,
            [layer],
            what=f"{host.arch.platform} binfmt installer",
            log=log,
        )
    result.done("built", tag_all(engine, image_id, result))
    log(f"  {result.target}: built {result.image} ({imagearchive.mib(result.size)})")
    return result
