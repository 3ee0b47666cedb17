"""Keeping pins current: base digests re-resolved from their tags, and the QEMU pin
compared with what the package sources offer.

For each pinned base, the tag is resolved through the registry API v2 (anonymous
bearer tokens or docker's credential store, as for pushes). A tag that names a
multi-arch index resolves to the manifest of the target's platform in it: the
**per-arch manifest digest** is what gets pinned, never the index digest. That
digest names exactly one image whatever the engine's platform handling (Docker
20.10 ignores ``--platform`` in places), and it is what build.py checks the pulled
base against (it refuses an image of another platform).

The config file is rewritten in place by replacing only the bytes of each
``base.digest`` value, located with PyYAML's node positions (``yaml.compose``):
comments, key order, quoting and every other byte stay as they were. A missing
``digest:`` (a base pinned by tag alone) is inserted after the base's ``tag:``
line with the same indentation. The result is validated (load + parse) before it
replaces the file atomically; on any error the file is left byte-identical.

Bootstrapped stand-in bases have no upstream tag and are skipped with a note.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from xarch.errors import BadInput, FetchError, RegistryError, XarchError
from xarch.model.arch import ARCHES, Arch
from xarch.model.config import BootstrapBase, Config, PinnedBase, QemuPin, Target, load_config
from xarch.oci.registry import INDEX_MEDIA_TYPES, UNREACHABLE_HINT, RegistryClient, is_local_host
from xarch.publish.cibuildwheel import PinnedImages

Log = Callable[[str], None]

DOCKER_HUB = "registry-1.docker.io"


# --------------------------------------------------------------------------- resolving


def split_image(image: str) -> tuple[str, str]:
    """registry host and repository of an image name, docker's way: the first
    component is a registry when it has a dot or a port or is localhost; otherwise
    the image is on Docker Hub (``library/`` for one-component names)."""
    first, sep, rest = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        host = DOCKER_HUB if first in ("docker.io", "index.docker.io") else first
        if host == DOCKER_HUB and "/" not in rest:
            rest = f"library/{rest}"
        return host, rest
    return DOCKER_HUB, image if sep else f"library/{image}"


def _platform_matches(entry: dict[str, str], arch: Arch) -> bool:
    return arch.matches_platform(
        entry.get("os", ""), entry.get("architecture", ""), entry.get("variant", "")
    )


@dataclass(frozen=True, kw_only=True)
class Resolved:
    digest: str  # the per-arch manifest digest
    via_index: str  # the index digest the tag named ("" for a single image)


def resolve_base(reg: RegistryClient, repo: str, tag: str, arch: Arch) -> Resolved:
    """The digest of the image manifest that repo:tag gives for arch."""
    where = f"{reg.registry}/{repo}:{tag}"
    desc = reg.head_manifest(repo, tag)
    if desc is None:
        raise RegistryError(
            f"{where} not found (the tag or the repository does not exist there)\n"
            "  hint: check base.image and base.tag in the config; nothing was changed"
        )
    if desc.media_type not in INDEX_MEDIA_TYPES:
        platform = reg.image_platform(repo, desc.digest)
        if not _platform_matches(platform, arch):
            found = "/".join(v for v in platform.values() if v)
            raise RegistryError(
                f"{where} is a {found} image, but the target is {arch.platform}\n"
                "  hint: the tag belongs to another architecture; fix base.tag or the "
                "target's arch"
            )
        return Resolved(digest=desc.digest, via_index="")
    _, doc = reg.get_manifest(repo, desc.digest)
    offered = []
    for m in doc.get("manifests") or []:
        entry = m.get("platform") if isinstance(m, dict) else None
        if not isinstance(entry, dict):
            continue
        plat = {str(k): str(v) for k, v in entry.items()}
        if _platform_matches(plat, arch):
            return Resolved(digest=str(m["digest"]), via_index=desc.digest)
        offered.append(
            "/".join(plat.get(k, "") for k in ("os", "architecture", "variant")).rstrip("/")
        )
    raise RegistryError(
        f"{where} is a multi-arch index without {arch.platform} (it has: "
        f"{', '.join(sorted(offered)) or 'no platforms'})\n"
        "  hint: this tag does not exist for the target's architecture"
    )


# --------------------------------------------------------------------------- plan


@dataclass(frozen=True, kw_only=True)
class BasePin:
    index: int  # position in targets[]
    target: str
    image: str
    tag: str
    current: str  # "" = not pinned yet
    resolved: str = ""
    via_index: str = ""
    note: str = ""  # why it was skipped

    @property
    def skipped(self) -> bool:
        return bool(self.note)

    @property
    def stale(self) -> bool:
        return not self.skipped and self.resolved != self.current

    @property
    def key(self) -> str:
        return f"targets[{self.index}].base.digest"


def check_bases(
    config: Config,
    *,
    client_for: Callable[[str], RegistryClient] | None = None,
    log: Log = print,
) -> list[BasePin]:
    """Resolve every pinned base's tag; raises the collected registry errors (after
    trying every target) so that nothing is written when any failed."""
    clients: dict[str, RegistryClient] = {}

    def default_client(host: str) -> RegistryClient:
        insecure = config.registry.insecure if host == config.registry.address else None
        return RegistryClient(host, insecure=insecure, timeout=30)

    make = client_for or default_client
    out: list[BasePin] = []
    errors: list[str] = []
    for i, t in enumerate(config.targets):
        base = t.base
        if isinstance(base, BootstrapBase):
            out.append(
                BasePin(
                    index=i,
                    target=t.name,
                    image=base.image,
                    tag="",
                    current="",
                    note="bootstrapped stand-in base (no upstream tag), skipped",
                )
            )
            continue
        assert isinstance(base, PinnedBase)
        if not base.tag:
            out.append(
                BasePin(
                    index=i,
                    target=t.name,
                    image=base.image,
                    tag="",
                    current=base.digest,
                    note="no base.tag to resolve, skipped (add `tag:` to keep it current)",
                )
            )
            continue
        host, repo = split_image(base.image)
        if host not in clients:
            clients[host] = make(host)
        try:
            r = resolve_base(clients[host], repo, base.tag, t.arch)
        except XarchError as e:
            text = str(e)
            if not is_local_host(host.rsplit(":", 1)[0]):
                text = text.replace(
                    UNREACHABLE_HINT,
                    f"this host cannot reach {host}; run `invoke pin` where it can",
                )
            errors.append(f"{t.name}: {text}")
            log(f"  {t.name}: {base.image}:{base.tag}: FAILED: {str(e).splitlines()[0]}")
            continue
        pin = BasePin(
            index=i,
            target=t.name,
            image=base.image,
            tag=base.tag,
            current=base.digest,
            resolved=r.digest,
            via_index=r.via_index,
        )
        out.append(pin)
    for c in clients.values():
        c.close()
    if errors:
        raise RegistryError(
            f"could not resolve {len(errors)} base tag(s); nothing was changed:\n"
            + "\n".join(f"  - {e}" for e in errors)
        )
    return out


# --------------------------------------------------------------------------- QEMU


@dataclass(frozen=True, kw_only=True)
class QemuCheck:
    package: str
    pinned: str
    candidate: str
    newer: bool
    note: str = ""


def apt_candidate(package: str, debian_arch: str = "") -> str:
    """apt's candidate version of a package (from the host's package lists), "" when
    apt knows no candidate. Raises FetchError when apt-cache is not there."""
    if not shutil.which("apt-cache"):
        raise FetchError(
            "apt-cache is not available on this host, so the QEMU pin cannot be compared "
            "with the package sources; run `invoke pin` on a Debian or Ubuntu host, or pass "
            "--skip-qemu to check the base digests alone"
        )
    spec = f"{package}:{debian_arch}" if debian_arch else package
    r = subprocess.run(["apt-cache", "policy", spec], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise FetchError(f"apt-cache policy {spec} failed: {r.stderr.strip() or r.returncode}")
    m = re.search(r"^\s*Candidate:\s*(\S+)", r.stdout, re.MULTILINE)
    if not m or m.group(1) == "(none)":
        return ""
    return m.group(1)


def dpkg_newer(a: str, b: str) -> bool:
    """Whether Debian version a is newer than b (dpkg --compare-versions a gt b)."""
    r = subprocess.run(["dpkg", "--compare-versions", a, "gt", b], check=False)
    if r.returncode not in (0, 1):
        raise FetchError(f"dpkg --compare-versions {a!r} gt {b!r} failed ({r.returncode})")
    return r.returncode == 0


def check_qemu(
    pin: QemuPin,
    *,
    candidate: Callable[[str, str], str] = apt_candidate,
    newer: Callable[[str, str], bool] = dpkg_newer,
) -> QemuCheck:
    s = pin.source
    if s.kind != "apt":
        return QemuCheck(
            package="",
            pinned=pin.version,
            candidate="",
            newer=False,
            note=f"qemu.source is {s.kind}, not apt: no package source to compare with",
        )
    if shutil.which("dpkg") is None and newer is dpkg_newer:
        raise FetchError("dpkg is not available here to compare Debian versions; pass --skip-qemu")
    found = candidate(s.package, s.debian_arch)
    if not found:
        raise FetchError(
            f"apt offers no {s.package}{':' + s.debian_arch if s.debian_arch else ''} "
            "(no candidate in the host's package lists); run `apt-get update` or check "
            "qemu.source.apt.package"
        )
    is_newer = found != s.version and newer(found, s.version)
    note = ""
    if found != s.version and not is_newer:
        note = (
            "the pin is newer than apt's candidate (are the host's package lists old? "
            "`apt-get update`)"
        )
    return QemuCheck(
        package=s.package, pinned=s.version, candidate=found, newer=is_newer, note=note
    )


def qemu_advice(config: Config, q: QemuCheck) -> str:
    """What to change in the config to move to the newer QEMU."""
    version = q.candidate.split(":", 1)[-1]  # qemu.version carries no epoch
    arch = config.qemu.source.debian_arch
    spec = f"{q.package}{':' + arch if arch else ''}={q.candidate}"
    lines = [
        f"{q.package} {q.candidate} is available; the pin is {q.pinned}. To move to it, edit "
        f"{config.path}:",
        f"    qemu.version: {version}",
        f'    qemu.source.apt.version: "{q.candidate}"',
        "  and replace every sha256 of the emulators with the new package's (qemu.sha256, and",
        "  installer.hosts.*.sha256 where present), e.g.:",
        f"    apt-get download {spec} && dpkg-deb -x {q.package}_*.deb pkg && "
        "sha256sum pkg/usr/bin/qemu-*-static",
        "  then rebuild, test and push the images (the emulator is part of every helper image).",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- rewriting


def _mapping_get(node: yaml.Node, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    """The (key node, value node) of the last ``key`` in a mapping node (the one the
    loader keeps), None when absent."""
    if not isinstance(node, yaml.MappingNode):
        return None
    found = None
    for k, v in node.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            found = (k, v)
    return found


def rewrite_digests(text: str, path: Path, changes: dict[int, str]) -> str:
    """text with targets[i].base.digest set to changes[i]; every other byte kept."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)  # positions only
    targets = _mapping_get(root, "targets") if root is not None else None
    if targets is None or not isinstance(targets[1], yaml.SequenceNode):
        raise BadInput(f"{path}: no targets list found to rewrite")
    edits: list[tuple[int, int, str]] = []  # (start, end, replacement)
    for i, digest in changes.items():
        item = targets[1].value[i]
        base = _mapping_get(item, "base")
        if base is None or not isinstance(base[1], yaml.MappingNode):
            raise BadInput(f"{path}: targets[{i}].base is not a mapping")
        bnode = base[1]
        current = _mapping_get(bnode, "digest")
        if current is not None and isinstance(current[1], yaml.ScalarNode):
            v = current[1]
            if v.value == "" and v.start_mark.index == v.end_mark.index:  # `digest:` (null)
                edits.append((v.start_mark.index, v.end_mark.index, f" {digest}"))
                continue
            quote = v.style if v.style in ("'", '"') else ""
            edits.append((v.start_mark.index, v.end_mark.index, f"{quote}{digest}{quote}"))
            continue
        if current is not None:
            raise BadInput(f"{path}: targets[{i}].base.digest is not a plain value")
        anchor = _mapping_get(bnode, "tag") or _mapping_get(bnode, "image")
        if anchor is None:
            raise BadInput(f"{path}: targets[{i}].base has no image or tag to place digest after")
        if bnode.flow_style:
            last_value = bnode.value[-1][1]
            at = last_value.end_mark.index
            edits.append((at, at, f", digest: {digest}"))
            continue
        key_node, value_node = anchor
        eol = text.find("\n", value_node.end_mark.index)
        at = len(text) if eol < 0 else eol + 1
        prefix = "" if eol >= 0 else "\n"
        indent = " " * key_node.start_mark.column
        edits.append((at, at, f"{prefix}{indent}digest: {digest}\n"))
    out = text
    for start, end, new in sorted(edits, reverse=True):
        out = out[:start] + new + out[end:]
    return out


def write_config(path: Path, new_text: str, expect: dict[int, str]) -> None:
    """Write new_text next to path, check that it loads as a config with the expected
    digests, then atomically replace path with it (keeping its mode)."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(new_text)
        try:
            cfg = load_config(tmp, allow_unpinned=True)
        except XarchError as e:
            raise XarchError(
                f"internal error: the rewritten {path} would not load ({e}); it was not changed"
            ) from None
        for i, digest in expect.items():
            base = cfg.targets[i].base
            if not isinstance(base, PinnedBase) or base.digest != digest:
                raise XarchError(
                    f"internal error: rewriting targets[{i}].base.digest of {path} failed; "
                    "it was not changed"
                )
        shutil.copymode(path, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# --------------------------------------------------------------------------- the task


@dataclass(frozen=True, kw_only=True)
class PinOutcome:
    bases: list[BasePin]
    qemu: QemuCheck | None
    changed: bool

    @property
    def stale(self) -> list[str]:
        out = [
            f"{b.key} ({b.target}): {b.current or '(none)'} -> {b.resolved}"
            for b in self.bases
            if b.stale
        ]
        if self.qemu is not None and self.qemu.newer:
            out.append(
                f"qemu.source.apt.version: {self.qemu.pinned} -> {self.qemu.candidate} "
                "(and the emulators' sha256)"
            )
        return out


def pin(
    config: Config,
    *,
    check: bool = False,
    skip_qemu: bool = False,
    client_for: Callable[[str], RegistryClient] | None = None,
    qemu_check: Callable[[QemuPin], QemuCheck] = check_qemu,
    log: Log = print,
) -> PinOutcome:
    """Resolve every base tag and compare the QEMU pin; rewrite the stale digests
    unless check. Everything is looked up before anything is written."""
    path = config.path
    original = path.read_bytes()
    log(f"Resolving base tags ({path})")
    bases = check_bases(config, client_for=client_for, log=log)
    for b in bases:
        if b.skipped:
            log(f"  {b.target}: {b.note}")
            continue
        via = (
            f" (the {_platform(config.targets[b.index])} entry of index {b.via_index[:19]}...)"
            if b.via_index
            else ""
        )
        state = "current" if not b.stale else f"STALE (pinned {b.current or 'nothing'})"
        log(f"  {b.target}: {b.image}:{b.tag} -> {b.resolved}{via}: {state}")
    q = None
    if skip_qemu:
        log("QEMU: not checked (--skip-qemu)")
    else:
        q = qemu_check(config.qemu)
        if q.note and not q.candidate:
            log(f"QEMU: {q.note}")
        else:
            state = "NEWER AVAILABLE" if q.newer else "current"
            log(f"QEMU: {q.package} pinned {q.pinned}, apt candidate {q.candidate}: {state}")
            if q.note:
                log(f"  note: {q.note}")
    outcome = PinOutcome(bases=bases, qemu=q, changed=False)
    stale_bases = {b.index: b.resolved for b in bases if b.stale}
    if check or not stale_bases:
        if q is not None and q.newer:
            log(qemu_advice(config, q))
        return outcome
    text = original.decode("utf-8")
    new_text = rewrite_digests(text, path, stale_bases)
    if path.read_bytes() != original:
        raise XarchError(f"{path} changed while pin was running; nothing was written, run it again")
    for b in bases:
        if b.stale:
            log(f"+ {path}: {b.key} ({b.target}) {b.current or '(none)'} -> {b.resolved}")
    write_config(path, new_text, stale_bases)
    if q is not None and q.newer:
        log(qemu_advice(config, q))
    return PinOutcome(bases=bases, qemu=q, changed=True)


def _platform(target: Target) -> str:
    return target.arch.platform


def stale_report(outcome: PinOutcome) -> str:
    lines = outcome.stale
    if not lines:
        return "every pin is current"
    return f"{len(lines)} stale pin(s):\n" + "\n".join(f"  - {s}" for s in lines)


# --------------------------------------------------------------------------- from cibuildwheel


@dataclass(frozen=True, kw_only=True)
class CibwDrift:
    """One value of the config that differs from a cibuildwheel release's pins."""

    key: str  # targets[3].base.digest, cibuildwheel.version
    target: str  # "" for cibuildwheel.version
    current: str
    wanted: str
    path: tuple[str | int, ...]  # node path in the YAML document

    def line(self) -> str:
        who = f" ({self.target})" if self.target else ""
        return f"{self.key}{who}: {self.current or '(none)'} -> {self.wanted}"


@dataclass(frozen=True, kw_only=True)
class CibwPinOutcome:
    version: str  # the cibuildwheel release compared with
    source: str
    drift: list[CibwDrift]
    notes: list[str]
    changed: bool


def cibuildwheel_drift(config: Config, pins: PinnedImages) -> tuple[list[CibwDrift], list[str]]:
    """What in the config differs from the release's pins (base digest and tag, the
    helper tags that follow the base tag, cibuildwheel.version), and notes on what
    cannot be compared."""
    by_image = pins.by_image()
    drift: list[CibwDrift] = []
    notes: list[str] = []
    current_version = config.cibuildwheel.version if config.cibuildwheel else ""
    if current_version != pins.version:
        drift.append(
            CibwDrift(
                key="cibuildwheel.version",
                target="",
                current=current_version,
                wanted=pins.version,
                path=("cibuildwheel", "version"),
            )
        )
    matched: set[str] = set()
    for i, t in enumerate(config.targets):
        base = t.base
        if not isinstance(base, PinnedBase):
            notes.append(f"{t.name}: bootstrapped stand-in base, not one of cibuildwheel's")
            continue
        pin = by_image.get(base.image)
        if pin is None:
            notes.append(f"{t.name}: {base.image} is not pinned by cibuildwheel {pins.version}")
            continue
        matched.add(pin.image)
        if pin.arch != t.arch.name:
            notes.append(
                f"{t.name}: cibuildwheel lists {pin.image} under [{pin.arch}], but the target "
                f"is {t.arch.name}; not changed"
            )
            continue
        where = ("targets", i, "base")
        if base.digest != pin.digest:
            drift.append(
                CibwDrift(
                    key=f"targets[{i}].base.digest",
                    target=t.name,
                    current=base.digest,
                    wanted=pin.digest,
                    path=(*where, "digest"),
                )
            )
        if pin.tag and base.tag != pin.tag:
            if not base.tag:
                notes.append(f"{t.name}: no base.tag to update (cibuildwheel's is {pin.tag})")
                continue
            drift.append(
                CibwDrift(
                    key=f"targets[{i}].base.tag",
                    target=t.name,
                    current=base.tag,
                    wanted=pin.tag,
                    path=(*where, "tag"),
                )
            )
            # The helper image's tag named after the base's follows it.
            for j, tag in enumerate(t.tags):
                if tag == base.tag:
                    drift.append(
                        CibwDrift(
                            key=f"targets[{i}].tags[{j}]",
                            target=t.name,
                            current=tag,
                            wanted=pin.tag,
                            path=("targets", i, "tags", j),
                        )
                    )
    emulated = {a.name for a in ARCHES.values() if a.name != "x86_64"}
    for p in pins.pins:
        if p.arch in emulated and p.image not in matched:
            notes.append(
                f"cibuildwheel {pins.version} pins {p.image} ({p.family}, {p.arch}), which no "
                "target of the config uses (add a target to build it)"
            )
    return drift, notes


def _node_at(root: yaml.Node, path: tuple[str | int, ...]) -> yaml.Node | None:
    node: yaml.Node | None = root
    for step in path:
        if node is None:
            return None
        if isinstance(step, int):
            if not isinstance(node, yaml.SequenceNode) or step >= len(node.value):
                return None
            node = node.value[step]
        else:
            found = _mapping_get(node, step)
            node = found[1] if found else None
    return node


def rewrite_scalars(text: str, path: Path, values: dict[tuple[str | int, ...], str]) -> str:
    """text with the scalar at each node path set to its value, quoting kept; a missing
    ``cibuildwheel.version`` is added as a section before ``targets:``."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)  # positions only
    if root is None:
        raise BadInput(f"{path}: empty document")
    edits: list[tuple[int, int, str]] = []
    for node_path, value in values.items():
        node = _node_at(root, node_path)
        if node is None and node_path == ("cibuildwheel", "version"):
            if _mapping_get(root, "cibuildwheel") is not None:
                raise BadInput(f"{path}: cibuildwheel is not a mapping with a version")
            targets = _mapping_get(root, "targets")
            if targets is None:
                raise BadInput(f"{path}: no targets list found")
            at = targets[0].start_mark.index
            block = (
                "# The cibuildwheel release `invoke wheels` and the generated CI install.\n"
                f'cibuildwheel:\n  version: "{value}"\n\n'
            )
            edits.append((at, at, block))
            continue
        if not isinstance(node, yaml.ScalarNode) or node.start_mark.index == node.end_mark.index:
            where = ".".join(str(s) for s in node_path)
            raise BadInput(f"{path}: {where} is not a plain value to rewrite")
        quote = node.style if node.style in ("'", '"') else ""
        edits.append((node.start_mark.index, node.end_mark.index, f"{quote}{value}{quote}"))
    out = text
    for start, end, new in sorted(edits, reverse=True):
        out = out[:start] + new + out[end:]
    return out


def pin_from_cibuildwheel(
    config: Config, pins: PinnedImages, *, check: bool = False, log: Log = print
) -> CibwPinOutcome:
    """Compare the config's base pins and cibuildwheel version with a release's pins;
    rewrite what differs (comments and order kept) unless check."""
    path = config.path
    original = path.read_bytes()
    log(f"Comparing {path} with cibuildwheel {pins.version}'s pins ({pins.source})")
    drift, notes = cibuildwheel_drift(config, pins)
    for n in notes:
        log(f"  note: {n}")
    for d in drift:
        log(f"  DRIFT {d.line()}")
    if not drift:
        log(f"  every base pin and the cibuildwheel version match cibuildwheel {pins.version}")
    outcome = CibwPinOutcome(
        version=pins.version, source=pins.source, drift=drift, notes=notes, changed=False
    )
    if check or not drift:
        return outcome
    new_text = rewrite_scalars(original.decode("utf-8"), path, {d.path: d.wanted for d in drift})
    digests = {
        int(d.path[1]): d.wanted for d in drift if d.path[0] == "targets" and d.path[-1] == "digest"
    }
    if path.read_bytes() != original:
        raise XarchError(f"{path} changed while pin was running; nothing was written, run it again")
    for d in drift:
        log(f"+ {path}: {d.line()}")
    write_config(path, new_text, digests)
    after = load_config(path, allow_unpinned=True)
    left, _ = cibuildwheel_drift(after, pins)
    if left:
        raise XarchError(
            f"internal error: {path} still differs after the rewrite: "
            + "; ".join(d.line() for d in left)
        )
    return CibwPinOutcome(
        version=pins.version, source=pins.source, drift=drift, notes=notes, changed=True
    )


def drift_report(outcome: CibwPinOutcome) -> str:
    if not outcome.drift:
        return f"no drift from cibuildwheel {outcome.version}"
    return (
        f"{len(outcome.drift)} value(s) differ from cibuildwheel {outcome.version}:\n"
        + "\n".join(f"  - {d.line()}" for d in outcome.drift)
    )
