"""Obtaining the pinned emulator binaries and checking their sha256.

Sources: Debian's package at an exact version fetched with apt, a local
directory, or a URL. Every binary is checked against the sha256 in the config
before it is used; a mismatching file never enters the cache.

An apt source may name a foreign Debian architecture (``arch: arm64``): its
package is fetched through a private apt state under the cache (its own package
lists, an empty dpkg status, ``APT::Architecture=arm64``) with the host's
sources, so the host's dpkg architectures and package lists are never changed.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shlex
import shutil
import stat
import subprocess
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import requests

from xarch.errors import ChecksumMismatch, FetchError
from xarch.model import faults
from xarch.model.arch import Arch
from xarch.model.config import QemuPin, QemuSource
from xarch.model.hashing import sha256_file as sha256_file  # re-exported: qemu.sha256_file
from xarch.model.paths import cache_dir

Log = Callable[[str], None]


def _source_key(pin: QemuPin) -> str:
    s = pin.source
    raw = f"{s.kind}|{s.package}|{s.version}|{s.debian_arch}|{s.path}|{s.url}"
    slug = re.sub(r"[^A-Za-z0-9.+-]+", "_", pin.version)
    return f"{slug}-{hashlib.sha256(raw.encode()).hexdigest()[:12]}"


def emulator_dir(pin: QemuPin) -> Path:
    return cache_dir() / "qemu" / _source_key(pin)


def _cached(path: Path, expected: str, log: Log) -> bool:
    """Whether the cache holds a verified copy at ``path``.

    The cache is checked against the pins on every use. An entry that is a regular file
    with another sha256 (a truncated copy, a disk error) is fetched again, and that is
    said, not done silently; an entry that is not a regular file (a directory, a FIFO)
    is not xarch's, and is an error naming it."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    except NotADirectoryError:
        raise FetchError(
            f"the cache path {path.parent} exists and is not a directory; remove it and run again"
        ) from None
    except OSError as e:
        raise FetchError(f"cannot read the cached {path}: {e.strerror or e}") from None
    if not stat.S_ISREG(st.st_mode):
        raise FetchError(
            f"the cache entry {path} is not a regular file; xarch did not write it. "
            f"Remove it (rm -r {shlex.quote(str(path))}) and run again"
        )
    if sha256_file(path) == expected:
        return True
    log(
        f"  {path}: cached copy does not match its pin (sha256 {expected[:16]}...): a "
        "damaged cache entry; fetching it again"
    )
    return False


def _cache_dir(d: Path) -> Path:
    """Create the cache directory ``d``; a file in its place is an error naming it."""
    try:
        d.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise FetchError(
            f"the cache path {d} exists and is not a directory; remove it and run again"
        ) from None
    except OSError as e:
        raise FetchError(
            f"cannot create the cache directory {d}: {e.strerror or e} "
            "(set XARCH_CACHE_DIR to a writable directory)"
        ) from None
    return d


def _candidates(binary: str) -> list[str]:
    # QEMU >= 8 in Debian ships the static binaries in qemu-user as qemu-<arch>.
    plain = binary.removesuffix("-static")
    return [binary, plain]


def _verify(
    path: Path,
    binary: str,
    expected: str,
    origin: str,
    source_name: str = "",
    config_key: str = "",
) -> None:
    """Check path against the pin of binary. source_name: the file's name in the source,
    when it differs (qemu-<arch> for qemu-<arch>-static, a symlink's target);
    config_key: where the pin is in the config (default qemu.sha256.<binary>)."""
    found = sha256_file(path)
    if found != expected:
        as_file = f" (file {source_name})" if source_name and source_name != binary else ""
        label = f"expected (config {config_key or 'qemu.sha256.' + binary}):"
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
        if _cached(p, pin.sha256_for(a), log):
            out[a.name] = p
        else:
            missing.append(a)
    if missing:
        _cache_dir(d)
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


def ensure_binaries(
    source: QemuSource,
    pins: Mapping[str, tuple[str, str]],
    directory: Path,
    log: Log = print,
) -> dict[str, Path]:
    """Like :func:`ensure_emulators` for any binaries of a source (busybox, say):
    ``pins`` maps binary name -> (sha256, its key path in the config). Verified copies
    are cached in ``directory``; returns {binary: path}."""
    out: dict[str, Path] = {}
    missing = []
    for binary, (expected, _) in pins.items():
        p = directory / binary
        if _cached(p, expected, log):
            out[binary] = p
        else:
            missing.append(binary)
    if missing:
        _cache_dir(directory)
        with tempfile.TemporaryDirectory(prefix="xarch-fetch-", dir=directory) as tmp:
            fetched = _fetch(source, missing, Path(tmp), log)
            for binary in missing:
                expected, key = pins[binary]
                staged = Path(tmp) / f".{binary}.staged"
                shutil.copyfile(fetched[binary], staged)
                _verify(
                    staged,
                    binary,
                    expected,
                    _describe_source(source),
                    source_name=fetched[binary].name,
                    config_key=key,
                )
                os.chmod(staged, 0o755)
                os.replace(staged, directory / binary)
                out[binary] = directory / binary
                log(f"  {binary} ({_describe_source(source)}): sha256 {expected[:16]}... ok")
    return {b: out[b] for b in pins}


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


@functools.cache
def native_debian_arch() -> str:
    """The host's dpkg architecture ("" when dpkg is not there)."""
    try:
        r = subprocess.run(
            ["dpkg", "--print-architecture"], capture_output=True, text=True, check=False
        )
    except OSError:
        return ""
    return r.stdout.strip() if r.returncode == 0 else ""


def apt_state_dir(debian_arch: str) -> Path:
    """The private apt state used to fetch packages of a foreign architecture."""
    return cache_dir() / "apt" / debian_arch


def private_apt_options(state: Path, *, debian_arch: str = "", sources_list: str = "") -> list[str]:
    """apt-get options for a private apt state under ``state``: its own lists, cache
    and an empty dpkg status, so the host's apt lists and dpkg are never touched.

    ``debian_arch`` makes it a state of that architecture; ``sources_list`` (the
    text of a sources.list) replaces the host's sources with those alone. Used for
    foreign-architecture pins here and for the bench's bookworm-backports QEMU."""
    for sub in ("lists/partial", "cache/archives/partial"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    status = state / "status"
    if not status.exists():
        status.write_text("")
    options: list[str] = []
    if debian_arch:
        options += ["-o", f"APT::Architecture={debian_arch}"]
        options += ["-o", f"APT::Architectures={debian_arch}"]
    if sources_list:
        for sub in ("sources.list.d", "preferences.d"):
            (state / sub).mkdir(parents=True, exist_ok=True)
        (state / "sources.list").write_text(sources_list)
        options += ["-o", f"Dir::Etc::SourceList={state / 'sources.list'}"]
        options += ["-o", f"Dir::Etc::SourceParts={state / 'sources.list.d'}"]
        options += ["-o", f"Dir::Etc::Preferences={state / 'preferences'}"]
        options += ["-o", f"Dir::Etc::PreferencesParts={state / 'preferences.d'}"]
        options += ["-o", "APT::Sandbox::User=root"]
    return [
        *options,
        "-o",
        f"Dir::State={state}",
        "-o",
        f"Dir::State::Lists={state / 'lists'}",
        "-o",
        f"Dir::State::status={status}",
        "-o",
        f"Dir::Cache={state / 'cache'}",
        "-o",
        "Acquire::Languages=none",
    ]


def _private_apt_options(debian_arch: str) -> list[str]:
    return private_apt_options(apt_state_dir(debian_arch), debian_arch=debian_arch)


def _has_lists(debian_arch: str) -> bool:
    return any((apt_state_dir(debian_arch) / "lists").glob("*_Packages*"))


def _apt(args: list[str], cwd: Path, log: Log) -> subprocess.CompletedProcess[str]:
    log("+ " + shlex.join(["apt-get", *args]))
    return subprocess.run(
        ["apt-get", "-q", *args], cwd=cwd, capture_output=True, text=True, check=False
    )


def apt_last_line(r: subprocess.CompletedProcess[str]) -> str:
    """The line of apt-get's output that says why it failed (its last ``E:`` line)."""
    lines = [ln for ln in (r.stderr or r.stdout).splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("E:")]
    return (errors or lines or [f"exit {r.returncode}"])[-1]


def _fetch_apt(s: QemuSource, binaries: list[str], tmp: Path, log: Log) -> dict[str, Path]:
    if not shutil.which("apt-get"):
        raise FetchError(
            "apt-get is not available on this host; use qemu.source.dir or qemu.source.url"
        )
    spec = f"{s.package}{':' + s.debian_arch if s.debian_arch else ''}={s.version}"
    foreign = bool(s.debian_arch) and s.debian_arch != native_debian_arch()
    options = _private_apt_options(s.debian_arch) if foreign else []
    if foreign and not _has_lists(s.debian_arch):
        log(
            f"  fetching {s.debian_arch} package lists into a private apt state "
            f"({apt_state_dir(s.debian_arch)}); the host's dpkg architectures are unchanged"
        )
        upd = _apt([*options, "update"], tmp, log)
        if upd.returncode != 0:
            fault = faults.recognise(
                upd.stderr + upd.stdout, path=str(apt_state_dir(s.debian_arch))
            )
            raise FetchError(
                f"apt-get update for {s.debian_arch} failed: {apt_last_line(upd)}"
                + (f"\n  {fault}" if fault else "")
            )
    r = _apt([*options, "download", spec], tmp, log)
    refreshed = ""
    if r.returncode != 0 and foreign:
        # The private lists may be older than the pin: refresh once and retry.
        upd = _apt([*options, "update"], tmp, log)
        refreshed = "refreshed" if upd.returncode == 0 else f"not refreshed ({apt_last_line(upd)})"
        if upd.returncode == 0:
            r = _apt([*options, "download", spec], tmp, log)
    if r.returncode != 0:
        fault = faults.recognise(r.stderr + r.stdout, path=str(tmp))
        if fault is not None:  # the host's fault, not the archive's: say that instead
            raise FetchError(f"apt-get download {spec} failed: {apt_last_line(r)}\n  {fault}")
        policy = shlex.join(["apt-cache", *options, "policy", s.package])
        how = (
            f"The private {s.debian_arch} apt state was {refreshed}; "
            if foreign
            else "Run `apt-get update` (as root); "
        )
        raise FetchError(
            f"apt-get download {spec} failed: {apt_last_line(r)}\n"
            f"  {how}if the version is gone from the archive, pin the version apt offers "
            f"(`{policy}`) and its binaries' sha256 in the config."
        )
    debs = list(tmp.glob("*.deb"))
    if len(debs) != 1:
        raise FetchError(f"apt-get download {spec} produced {len(debs)} .deb files, expected 1")
    root = tmp / "extract"
    subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(root)], check=True)
    out = {}
    for b in binaries:
        for name in _candidates(b):
            found = [root / d / name for d in ("usr/bin", "bin")]
            p = next((f for f in found if f.exists()), None)
            if p is not None:
                out[b] = p.resolve()
                break
        else:
            raise FetchError(f"{b} is not in {debs[0].name} (looked in /usr/bin and /bin)")
    return out
