"""Platform-correct images without the engine's platform handling: a docker-archive
(``manifest.json``, the image config, one tar per layer) written here and ``docker
load``ed.

Docker 20.10 ignores ``--platform`` on ``docker import`` and on classic builds and
records the host's architecture (for ``FROM scratch`` too). An image config written
by us says what the image really is: ``architecture``, ``variant`` and ``os`` are
set from the architecture table. Used for the stand-in bases (images/standin) and the
binfmt installer image (installer.py).

Layers made here from files (:func:`write_layer`) are reproducible: entries sorted,
owner root, mtime 0, so the same inputs give the same layer digest.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from xarch.errors import BuildError
from xarch.model.arch import Arch
from xarch.model.hashing import sha256_file
from xarch.oci.engine import Engine

Log = Callable[[str], None]

#: The creation time recorded in configs written here (reproducible images).
EPOCH = "1970-01-01T00:00:00Z"


def mib(n: int) -> str:
    return f"{n / (1 << 20):.0f} MiB"


def platform_config(
    arch: Arch,
    *,
    config: Mapping[str, Any],
    diff_ids: Sequence[str],
    history: Sequence[Mapping[str, str]],
    created: str = EPOCH,
) -> dict[str, Any]:
    """An image config whose platform is ``arch``'s (not the host's)."""
    cfg: dict[str, Any] = {
        "architecture": arch.docker_arch,
        "os": arch.docker_os,
        "created": created,
        "config": dict(config),
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
        "history": [dict(h) for h in history],
    }
    if arch.docker_variant:
        cfg["variant"] = arch.docker_variant
    return cfg


@dataclass(frozen=True, kw_only=True)
class LayerEntry:
    """One entry of a layer made by :func:`write_layer`."""

    path: str  # inside the image, without leading "/": "usr/bin/qemu-aarch64-static"
    kind: Literal["dir", "file", "symlink"] = "file"
    mode: int = 0o755
    source: Path | None = None  # file: its content on the host ...
    data: bytes | None = None  # ... or in memory
    link: str = ""  # symlink: its target


def write_layer(entries: Sequence[LayerEntry], dest: Path) -> str:
    """Write a reproducible layer tar; returns its diff id (``sha256:...``).

    Parent directories are added (mode 0755) when not listed.
    """
    by_path: dict[str, LayerEntry] = {}
    for e in entries:
        path = e.path.strip("/")
        if not path or path in by_path:
            raise BuildError(f"layer entry {e.path!r} is empty or listed twice")
        by_path[path] = e
        parts = path.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            by_path.setdefault(parent, LayerEntry(path=parent, kind="dir"))
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(by_path):
            e = by_path[path]
            info = tarfile.TarInfo(path)
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mode = e.mode
            if e.kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif e.kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = e.link
                info.mode = 0o777
                tar.addfile(info)
            elif e.source is not None:
                info.size = e.source.stat().st_size
                with e.source.open("rb") as f:
                    tar.addfile(info, f)
            else:
                data = e.data or b""
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return "sha256:" + sha256_file(dest)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def load(
    engine: Engine,
    repo_tag: str,
    config: Mapping[str, Any],
    layers: Sequence[Path],
    *,
    what: str,
    log: Log = print,
) -> str:
    """``docker load`` an image made of ``config`` and ``layers`` (tar files, in order,
    whose sha256 are ``config["rootfs"]["diff_ids"]``) as ``repo_tag``; returns the
    image id after checking the engine reports the config's platform."""
    diff_ids = list(config["rootfs"]["diff_ids"])
    if len(diff_ids) != len(layers):
        raise BuildError(f"{what}: {len(layers)} layer(s) but {len(diff_ids)} diff id(s)")
    layer_names = [f"{d.removeprefix('sha256:')}/layer.tar" for d in diff_ids]
    cfg_bytes = json.dumps(config, sort_keys=True).encode()
    cfg_hex = hashlib.sha256(cfg_bytes).hexdigest()
    manifest = [{"Config": f"{cfg_hex}.json", "RepoTags": [repo_tag], "Layers": layer_names}]
    with tempfile.TemporaryDirectory(prefix="xarch-archive-") as tmp:
        archive = Path(tmp) / "image.tar"
        with tarfile.open(archive, "w") as tar:
            _add_bytes(tar, "manifest.json", json.dumps(manifest).encode())
            _add_bytes(tar, f"{cfg_hex}.json", cfg_bytes)
            for name, layer in zip(layer_names, layers, strict=True):
                tar.add(str(layer), arcname=name)
        log(f"+ docker load < {what} ({mib(archive.stat().st_size)})")
        engine.load(archive, what)
    attrs = engine.inspect(repo_tag)
    if attrs is None:
        raise BuildError(f"docker load did not produce {repo_tag}")
    want_variant = str(config.get("variant") or "")
    if attrs.get("Architecture") != config["architecture"] or (
        want_variant and (attrs.get("Variant") or "") != want_variant
    ):
        raise BuildError(
            f"the loaded {what} says platform {attrs.get('Os')}/{attrs.get('Architecture')}"
            f"/{attrs.get('Variant') or ''}, expected {config['os']}/{config['architecture']}"
            f"/{want_variant}"
        )
    return str(attrs["Id"])
