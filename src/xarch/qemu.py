"""Obtaining the pinned emulator binaries and checking their sha256.

Sources: Debian's package at an exact version fetched with apt, a local
directory, or a URL. Every binary is checked against the sha256 in the config
before it is used; a mismatching file never enters the cache.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path

import requests

from .arch import Arch
from .config import QemuPin, QemuSource
from .errors import ChecksumMismatch, FetchError
from .paths import cache_dir

Log = Callable[[str], None]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _source_key(pin: QemuPin) -> str:
    s = pin.source
    raw = f"{s.kind}|{s.package}|{s.version}|{s.debian_arch}|{s.path}|{s.url}"
    slug = re.sub(r"[^A-Za-z0-9.+-]+", "_", pin.version)
    return f"{slug}-{hashlib.sha256(raw.encode()).hexdigest()[:12]}"


def emulator_dir(pin: QemuPin) -> Path:
    return cache_dir() / "qemu" / _source_key(pin)


def _candidates(binary: str) -> list[str]:
    # QEMU >= 8 in Debian ships the static binaries in qemu-user as qemu-<arch>.
    plain = binary.removesuffix("-static")
    return [binary, plain]


def _verify(path: Path, binary: str, expected: str, origin: str, source_name: str = "") -> None:
    """Check path against the pin of binary. source_name: the file's name in the source,
    when it differs (qemu-<arch> for qemu-<arch>-static, a symlink's target)."""
    found = sha256_file(path)
    if found != expected:
        as_file = f" (file {source_name})" if source_name and source_name != binary else ""
        label = f"expected (config qemu.sha256.{binary}):"
        raise ChecksumMismatch(
            f"{origin}: sha256 mismatch for {binary}{as_file}\n"
            f"  {label} {expected}\n"
            f"  {'found:':<{len(label)}} {found}\n"
            "  The file was not used. If the new binary is the one you want, update the pin "
            "(and qemu.version) in the config; otherwise check the source."
        )


def ensure_emulators(pin: QemuPin, arches: Iterable[Arch], log: Log = print) -> dict[str, Path]:
    """Return {arch name: path to the verified emulator}, fetching what is missing."""
    wanted = {a.name: a for a in arches}
    out: dict[str, Path] = {}
    missing: list[Arch] = []
    d = emulator_dir(pin)
    for a in wanted.values():
        if a.qemu_binary not in pin.sha256:
            raise FetchError(
                f"no sha256 pinned for {a.qemu_binary}; add it under qemu.sha256 in the config"
            )
        p = d / a.qemu_binary
        if p.is_file() and sha256_file(p) == pin.sha256_for(a):
            out[a.name] = p
        else:
            missing.append(a)
    if missing:
        d.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="xarch-qemu-", dir=d) as tmp:
            fetched = _fetch(pin.source, [a.qemu_binary for a in missing], Path(tmp), log)
            for a in missing:
                src = fetched[a.qemu_binary]
                staged = Path(tmp) / f".{a.qemu_binary}.staged"
                # Verify the copy, not the source: what is checked is what gets cached.
                shutil.copyfile(src, staged)
                _verify(
                    staged,
                    a.qemu_binary,
                    pin.sha256_for(a),
                    _describe_source(pin.source),
                    source_name=src.name,
                )
                os.chmod(staged, 0o755)
                os.replace(staged, d / a.qemu_binary)  # atomic: the cache never holds a bad file
                out[a.name] = d / a.qemu_binary
                log(f"  {a.qemu_binary}: sha256 {pin.sha256_for(a)[:16]}... ok")
    return {name: out[name] for name in wanted}


def _describe_source(s: QemuSource) -> str:
    if s.kind == "apt":
        arch = f":{s.debian_arch}" if s.debian_arch else ""
        return f"apt package {s.package}{arch}={s.version}"
    if s.kind == "dir":
        return f"directory {s.path}"
    return f"URL {s.url}"


def _fetch(s: QemuSource, binaries: list[str], tmp: Path, log: Log) -> dict[str, Path]:
    if s.kind == "apt":
        return _fetch_apt(s, binaries, tmp, log)
    if s.kind == "dir":
        assert s.path is not None
        out = {}
        for b in binaries:
            for name in _candidates(b):
                if (s.path / name).is_file():
                    out[b] = s.path / name
                    break
            else:
                raise FetchError(
                    f"{b} not found in {s.path} (config qemu.source.dir); put the binary there "
                    "or change the source"
                )
        return out
    out = {}
    for b in binaries:
        url = s.url.replace("{binary}", b)
        dest = tmp / b
        log(f"+ GET {_redact(url)}")
        try:
            if url.startswith("file://"):
                shutil.copyfile(urllib.request.url2pathname(urllib.parse.urlparse(url).path), dest)
            else:
                with requests.get(url, stream=True, timeout=60) as r:
                    r.raise_for_status()
                    with dest.open("wb") as f:
                        for chunk in r.iter_content(1 << 20):
                            f.write(chunk)
        except (OSError, requests.RequestException) as e:
            raise FetchError(f"cannot download {b} from {_redact(url)}: {e}") from None
        out[b] = dest
    return out


def _redact(url: str) -> str:
    p = urllib.parse.urlsplit(url)
    if p.username or p.password:
        netloc = p.hostname or ""
        if p.port:
            netloc += f":{p.port}"
        p = p._replace(netloc=f"***@{netloc}")
    return urllib.parse.urlunsplit(p)


def _fetch_apt(s: QemuSource, binaries: list[str], tmp: Path, log: Log) -> dict[str, Path]:
    if not shutil.which("apt-get"):
        raise FetchError(
            "apt-get is not available on this host; use qemu.source.dir or qemu.source.url"
        )
    spec = f"{s.package}{':' + s.debian_arch if s.debian_arch else ''}={s.version}"
    log(f"+ apt-get download {spec}")
    r = subprocess.run(
        ["apt-get", "download", spec], cwd=tmp, capture_output=True, text=True, check=False
    )
    if r.returncode != 0:
        lines = (r.stderr or r.stdout).strip().splitlines()
        detail = lines[-1] if lines else f"exit {r.returncode}"
        raise FetchError(
            f"apt-get download {spec} failed: {detail}\n"
            "  Run `apt-get update` (as root); if the version is gone from the archive, pin the "
            "version apt offers (`apt-cache policy "
            f"{s.package}`) and its binaries' sha256 in the config."
            + (
                f"\n  For a foreign architecture first: dpkg --add-architecture {s.debian_arch}"
                if s.debian_arch
                else ""
            )
        )
    debs = list(tmp.glob("*.deb"))
    if len(debs) != 1:
        raise FetchError(f"apt-get download {spec} produced {len(debs)} .deb files, expected 1")
    root = tmp / "extract"
    subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(root)], check=True)
    out = {}
    for b in binaries:
        for name in _candidates(b):
            p = root / "usr" / "bin" / name
            if p.exists():
                out[b] = p.resolve()
                break
        else:
            raise FetchError(f"{b} is not in {debs[0].name} (looked in /usr/bin)")
    return out
