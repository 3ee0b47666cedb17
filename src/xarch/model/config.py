"""Config loading: YAML in, frozen dataclasses out, validated once.

Every error names the file, the key path (``targets[2].base.digest``), what was
found and what was expected, and is raised before any docker call is made.
"""

from __future__ import annotations

import difflib
import errno
import os
import re
import stat
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NoReturn

import yaml

from xarch.errors import BadInput, ConfigError
from xarch.model.arch import ARCHES, Arch, get_arch

DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
# docker's reference grammar, simplified: lowercase path components, optional registry host.
IMAGE_NAME_RE = re.compile(
    r"^(?:(?P<host>[a-zA-Z0-9.-]+(?::[0-9]+)?)/)?"
    r"(?P<path>[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)$"
)
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
COMPONENT_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
REGISTRY_RE = re.compile(r"^[a-zA-Z0-9.-]+(?::[0-9]{1,5})?$")
STANDIN_LAYOUTS = ("manylinux-standin", "debian")
#: The --target name that selects the binfmt installer image (both variants).
INSTALLER_TARGET = "binfmt-installer"

# Limits on what load_config reads. The shipped configs are at most 11 KB, 450 YAML
# values and 5 levels deep, and use no alias; these leave room for much larger real
# configs and refuse, within about a second (PyYAML's pure-Python parser reads roughly
# 1 MiB/s), files that are not configs (a log, an image, a "billion laughs" of anchors)
# instead of parsing them for minutes.
#: Bytes of a config file.
MAX_CONFIG_BYTES = 1 << 20
#: YAML values (scalars, lists, mappings) in one config, counting what aliases expand to
#: (so a "billion laughs" of nested anchors stops here).
MAX_CONFIG_NODES = 10_000
#: Nesting depth of lists and mappings.
MAX_CONFIG_DEPTH = 32
#: Aliases (``*name``).
MAX_CONFIG_ALIASES = 100


class _LoadRefused(yaml.YAMLError):
    """A config the loader refuses outright: a limit, a duplicate key, a recursive alias."""

    def __init__(self, problem: str, hint: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
        self.hint = hint


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps numbers and dates as the strings written, and refuses
    what a config never needs.

    Every config value is a string (or a boolean). YAML 1.1 would turn ``tags: [3.10]``
    into the float 3.1, ``010`` into 8 and ``2026-08-15`` into a date, silently
    changing a tag or version; here they stay exactly as written. Explicit tags other
    than ``!!str``, ``!!bool``, ``!!null``, ``!!seq`` and ``!!map`` are refused (an
    ``!!int`` beyond 4300 digits or an ``!!timestamp`` of month 13 would otherwise raise
    ValueError from deep inside PyYAML). A key given twice in one mapping is refused
    (YAML would silently keep the last). Size, nesting, node and alias counts are capped
    (see the MAX_CONFIG_* constants).
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._nodes = 0
        self._aliases = 0
        self._depth = 0
        self._open_anchors: list[str] = []
        self._anchor_sizes: dict[str, int] = {}  # anchor -> values it expands to
        self._sizes: list[int] = []  # values inside each node being composed

    def _count(self, values: int, line: int) -> None:
        self._nodes += values
        if self._sizes:
            self._sizes[-1] += values
        if self._nodes > MAX_CONFIG_NODES:
            raise _LoadRefused(
                f"more than {MAX_CONFIG_NODES} YAML values, counting what aliases expand to "
                f"(line {line}); this is not an xarch config"
            )

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            self._aliases += 1
            if self._aliases > MAX_CONFIG_ALIASES:
                raise _LoadRefused(
                    f"more than {MAX_CONFIG_ALIASES} YAML aliases (*name) "
                    f"(line {event.start_mark.line + 1})",
                    "a config needs few anchors; write the values out",
                )
            anchor = getattr(event, "anchor", None)
            if anchor in self._open_anchors:
                raise _LoadRefused(
                    f"the alias *{anchor} at line {event.start_mark.line + 1} refers to the "
                    "mapping or list that contains it (a recursive structure)"
                )
            node = super().compose_node(parent, index)  # undefined alias: ComposerError
            self._count(self._anchor_sizes.get(str(anchor), 1), event.start_mark.line + 1)
            return node
        event = self.peek_event()  # type: ignore[no-untyped-call]
        line = event.start_mark.line + 1
        self._count(1, line)
        nested = self.check_event(yaml.SequenceStartEvent, yaml.MappingStartEvent)
        anchor = getattr(event, "anchor", None) if nested else None
        if nested:
            self._depth += 1
            if self._depth > MAX_CONFIG_DEPTH:
                raise _LoadRefused(
                    f"lists and mappings nested more than {MAX_CONFIG_DEPTH} deep "
                    f"(line {event.start_mark.line + 1}); this is not an xarch config"
                )
        if anchor is not None:
            self._open_anchors.append(anchor)
        self._sizes.append(0)
        try:
            node = super().compose_node(parent, index)
        finally:
            inside = self._sizes.pop()
            if anchor is not None:
                self._open_anchors.pop()
            if nested:
                self._depth -= 1
        if self._sizes:
            self._sizes[-1] += inside
        if anchor is not None:
            self._anchor_sizes[anchor] = 1 + inside
        return node

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: dict[Hashable, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _MERGE_TAG:
                continue  # a merge (<<) may repeat keys on purpose; other keys fail later
            key = self.construct_object(key_node)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise _LoadRefused(
                    f"duplicate key {_short(key)} at line {line} (also at line {seen[key]})",
                    "give each key once; YAML would silently keep only the last one",
                )
            seen[key] = line
        return super().construct_mapping(node, deep)


_MERGE_TAG = "tag:yaml.org,2002:merge"
_KEPT_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("null", "bool", "str", "seq", "map")}
_Loader.yaml_constructors = {
    tag: constructor
    for tag, constructor in yaml.SafeLoader.yaml_constructors.items()
    if tag in _KEPT_TAGS or tag is None  # None: "no constructor for this tag" (refuses)
}


_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag
        not in (
            "tag:yaml.org,2002:int",
            "tag:yaml.org,2002:float",
            "tag:yaml.org,2002:timestamp",
        )
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass(frozen=True, kw_only=True)
class RegistrySettings:
    address: str  # host[:port]
    namespace: str  # repository prefix, e.g. "xarch"
    insecure: bool | None  # None: plain HTTP only for loopback hosts

    def repository(self, family: str) -> str:
        """The repository path (without host) of a family's images."""
        return f"{self.namespace}/{family}" if self.namespace else family

    def image_name(self, family: str) -> str:
        return f"{self.address}/{self.repository(family)}"


@dataclass(frozen=True, kw_only=True)
class QemuSource:
    kind: Literal["apt", "dir", "url"]
    package: str = ""  # apt
    version: str = ""  # apt: the exact Debian version
    debian_arch: str = ""  # apt: the package's architecture ("" = the host's)
    path: Path | None = None  # dir
    url: str = ""  # url: may contain {binary}


@dataclass(frozen=True, kw_only=True)
class QemuPin:
    version: str
    source: QemuSource
    sha256: Mapping[str, str]  # qemu binary name -> hex digest
    cpu: Mapping[str, str] = field(default_factory=dict)  # arch name -> QEMU_CPU default

    def sha256_for(self, arch: Arch) -> str:
        return self.sha256[arch.qemu_binary]


@dataclass(frozen=True, kw_only=True)
class PinnedBase:
    """A base image pulled from a registry, pinned by digest."""

    image: str  # name without tag or digest
    tag: str  # the human tag the digest was taken from ("" if unknown)
    digest: str  # "" only with --allow-unpinned

    @property
    def pull_ref(self) -> str:
        if self.digest:
            return f"{self.image}@{self.digest}"
        return f"{self.image}:{self.tag or 'latest'}"

    @property
    def pinned(self) -> bool:
        return bool(self.digest)


@dataclass(frozen=True, kw_only=True)
class BootstrapBase:
    """A stand-in base bootstrapped from Debian's archive with mmdebstrap.

    For hosts that cannot pull from public image registries. The resulting image
    is pushed to the configured registry and then used by digest, exactly like a
    PinnedBase.
    """

    suite: str
    layout: str  # one of STANDIN_LAYOUTS
    packages: tuple[str, ...]
    mirror: str  # "" = mmdebstrap's default
    image: str  # repository path of the pushed stand-in base, under the registry


Base = PinnedBase | BootstrapBase

#: The leaves of the image's toolchain a native toolchain can replace (issue 10).
NATIVE_LEAVES = ("cc1", "cc1plus", "as", "ld")
#: What ``accelerate.leaves`` defaults to: every leaf, the linker included (the probe
#: compares linked programs byte for byte before an image is tagged; the native ld loads
#: the cross package's x86_64 LTO plugin, whose lto-wrapper and lto1 are the image's).
#: `leaves: [cc1, cc1plus, as]` keeps the linker emulated.
DEFAULT_NATIVE_LEAVES = ("cc1", "cc1plus", "as", "ld")


@dataclass(frozen=True, kw_only=True)
class DebPin:
    """One x86_64 Debian package of a native toolchain: exact version and the sha256
    of its .deb file."""

    package: str
    version: str
    sha256: str
    #: The Debian suite it comes from, where not the section's own (a tool of the host
    #: side only, such as an older patchelf).
    suite: str = ""


@dataclass(frozen=True, kw_only=True)
class Accelerate:
    """A target's ``accelerate:`` section: the native x86_64 toolchain whose leaves
    replace the emulated image's (``xarch.images.native``)."""

    enabled: bool  # false: build the plain, emulated-only image
    toolchain: str  # a name for labels and messages
    gcc_version: str  # must equal the base's `gcc -dumpfullversion`
    binutils_version: str  # must equal the base assembler's `--version`
    leaves: tuple[str, ...]
    packages: tuple[DebPin, ...]
    suite: str  # where apt downloads the packages from (without `directory`)
    mirror: str
    directory: str  # "" = download; else a local folder holding the pinned .debs


@dataclass(frozen=True, kw_only=True)
class Target:
    name: str
    arch: Arch
    base: Base
    family: str
    tags: tuple[str, ...]
    labels: Mapping[str, str]
    env: Mapping[str, str]
    accelerate: Accelerate | None = None
    # ``native-uv:``: uv version -> sha256 of PyPI's uv-<version>-py3-none-
    # musllinux_1_1_x86_64.whl (a static x86_64 uv). Non-empty: the base's own uv is
    # replaced by the native one of its version (xarch.images.native_uv). Empty: off.
    native_uv: Mapping[str, str] = field(default_factory=dict)

    def arch_tag(self, tag: str) -> str:
        """The per-arch tag of this target's image for a family tag."""
        return f"{tag}-{self.arch.name}"


@dataclass(frozen=True, kw_only=True)
class BusyboxPin:
    """The static shell of the binfmt installer image: a Debian package at an exact
    version, and the sha256 of its /bin/busybox per architecture."""

    package: str
    version: str
    sha256: Mapping[str, str]  # our arch name (x86_64, aarch64) -> hex digest

    def source(self, arch: Arch) -> QemuSource:
        return QemuSource(
            kind="apt", package=self.package, version=self.version, debian_arch=arch.debian_arch
        )


@dataclass(frozen=True, kw_only=True)
class InstallerHost:
    """One variant of the installer image: for hosts of ``arch``, carrying the
    emulators of ``emulates``."""

    arch: Arch
    emulates: tuple[Arch, ...]
    sha256: Mapping[str, str]  # every carried qemu binary -> hex digest (resolved)


@dataclass(frozen=True, kw_only=True)
class InstallerSettings:
    """The least-privilege binfmt installer image (images/binfmt/)."""

    image: str  # repository under registry.namespace
    tags: tuple[str, ...]  # multi-arch tags; per variant <tag>-<host arch name>
    busybox: BusyboxPin
    hosts: tuple[InstallerHost, ...]

    def host(self, arch: Arch) -> InstallerHost | None:
        return next((h for h in self.hosts if h.arch is arch), None)


@dataclass(frozen=True, kw_only=True)
class CibuildwheelSettings:
    """The cibuildwheel release `invoke wheels` and the generated CI run (exact version);
    `invoke pin --from-cibuildwheel` keeps it and the base pins in step."""

    version: str


@dataclass(frozen=True, kw_only=True)
class Config:
    path: Path
    registry: RegistrySettings
    qemu: QemuPin
    targets: tuple[Target, ...]
    installer: InstallerSettings | None = None
    cibuildwheel: CibuildwheelSettings | None = None

    def wants_installer(self, names: list[str] | None) -> bool:
        """Whether a build/push of ``names`` includes the installer image: when no
        target is named, or when ``binfmt-installer`` is (and the config has one)."""
        return self.installer is not None and (not names or INSTALLER_TARGET in names)

    def select(self, names: list[str] | None) -> tuple[Target, ...]:
        """The targets named (all when names is empty), in config order.

        ``binfmt-installer`` names the installer image, not a target: it is accepted
        when the config has an ``installer`` section and selects no target.
        """
        if not names:
            return self.targets
        if INSTALLER_TARGET in names:
            if self.installer is None:
                raise BadInput(
                    f"{self.path}: {INSTALLER_TARGET!r} selects the binfmt installer image, "
                    "but this config has no `installer:` section"
                )
            names = [n for n in names if n != INSTALLER_TARGET]
            if not names:
                return ()
        known = {t.name: t for t in self.targets}
        for n in names:
            if n not in known:
                candidates = [*known, *([INSTALLER_TARGET] if self.installer else [])]
                close = difflib.get_close_matches(n, candidates, n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise BadInput(
                    f"{self.path}: no target named {n!r}; targets: {', '.join(known)}"
                    f"{', ' + INSTALLER_TARGET if self.installer else ''}.{hint}"
                )
        return tuple(t for t in self.targets if t.name in names)

    def families(self, targets: tuple[Target, ...] | None = None) -> dict[str, list[Target]]:
        out: dict[str, list[Target]] = {}
        for t in targets if targets is not None else self.targets:
            out.setdefault(t.family, []).append(t)
        return out


# --------------------------------------------------------------------------- parsing


class _Reader:
    """Typed access to one YAML mapping, with errors that name file and key path."""

    def __init__(self, path: Path, key: str, data: Any) -> None:
        self.path = path
        self.key = key
        if not isinstance(data, dict):
            self.fail(f"expected a mapping, found {_describe(data)}")
        self.data: dict[str, Any] = data

    def fail(self, problem: str, key: str | None = None, hint: str = "") -> NoReturn:
        raise ConfigError(str(self.path), key if key is not None else self.key, problem, hint)

    def sub(self, name: str) -> str:
        return f"{self.key}.{name}" if self.key else name

    def check_keys(self, allowed: tuple[str, ...]) -> None:
        for k in self.data:
            if k not in allowed:
                close = difflib.get_close_matches(str(k), allowed, n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"allowed: {', '.join(allowed)}"
                self.fail(f"unknown key {k!r}", self.sub(str(k)), hint)

    def has(self, name: str) -> bool:
        return name in self.data

    def text(self, name: str, default: str | None = None) -> str:
        if name not in self.data or self.data[name] is None:
            if default is None:
                self.fail("missing required key", self.sub(name))
            return default
        v = self.data[name]
        if isinstance(v, bool) or not isinstance(v, str | int | float):
            self.fail(f"expected a string, found {_describe(v)}", self.sub(name))
        return str(v)

    def bool_or_none(self, name: str) -> bool | None:
        v = self.data.get(name)
        if v is None:
            return None
        if not isinstance(v, bool):
            self.fail(f"expected true or false, found {_describe(v)}", self.sub(name))
        return v

    def str_list(self, name: str) -> tuple[str, ...]:
        v = self.data.get(name)
        if v is None:
            return ()
        if not isinstance(v, list):
            self.fail(f"expected a list of strings, found {_describe(v)}", self.sub(name))
        out = []
        for i, item in enumerate(v):
            if isinstance(item, bool) or not isinstance(item, str | int | float):
                self.fail(f"expected a string, found {_describe(item)}", f"{self.sub(name)}[{i}]")
            out.append(str(item))
        return tuple(out)

    def str_map(self, name: str) -> dict[str, str]:
        v = self.data.get(name)
        if v is None:
            return {}
        if not isinstance(v, dict):
            self.fail(f"expected a mapping of strings, found {_describe(v)}", self.sub(name))
        out = {}
        for k, item in v.items():
            if isinstance(item, bool) or not isinstance(item, str | int | float):
                self.fail(f"expected a string, found {_describe(item)}", f"{self.sub(name)}.{k}")
            out[str(k)] = str(item)
        return out

    def reader(self, name: str) -> _Reader:
        if name not in self.data:
            self.fail("missing required section", self.sub(name))
        return _Reader(self.path, self.sub(name), self.data[name])


def _describe(v: Any) -> str:
    if v is None:
        return "nothing (null)"
    if isinstance(v, bool):
        return f"a boolean ({v})"
    if isinstance(v, dict):
        return "a mapping"
    if isinstance(v, list):
        return "a list"
    return f"{type(v).__name__} {_short(v)}"


def _short(v: object, limit: int = 80) -> str:
    """repr(v), cut in the middle when long, so a message stays one readable line."""
    text = repr(v)
    if len(text) <= limit:
        return text
    half = (limit - 5) // 2
    return f"{text[:half]} ... {text[-half:]}"


_KIND = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def _not_regular(mode: int) -> str:
    return next((what for test, what in _KIND if test(mode)), "not a regular file")


def _read_config_bytes(p: Path) -> bytes:
    """The file's bytes, refusing what is not a regular file of at most MAX_CONFIG_BYTES.

    The type is checked with stat before opening (opening a FIFO would block until a
    writer comes) and again on the open descriptor (O_NONBLOCK), in case the path
    changed in between.
    """
    pass_hint = "pass --config PATH to an xarch config file (YAML), e.g. config/images.yaml"
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise ConfigError(str(p), "", "file not found", pass_hint) from None
    except OSError as e:
        raise ConfigError(str(p), "", f"cannot read: {e.strerror or e}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(str(p), "", f"is {_not_regular(st.st_mode)}, not a file", pass_hint)
    limit = f"a config is at most {MAX_CONFIG_BYTES // 1024} KiB"
    if st.st_size > MAX_CONFIG_BYTES:
        raise ConfigError(str(p), "", f"is {st.st_size} bytes; {limit}", pass_hint)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        if e.errno == errno.ENOENT:
            raise ConfigError(str(p), "", "file not found", pass_hint) from None
        raise ConfigError(str(p), "", f"cannot read: {e.strerror or e}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise ConfigError(str(p), "", f"is {_not_regular(mode)}, not a file", pass_hint)
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_CONFIG_BYTES:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as e:
        raise ConfigError(str(p), "", f"cannot read: {e.strerror or e}") from None
    finally:
        os.close(fd)
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(str(p), "", f"is more than {MAX_CONFIG_BYTES} bytes; {limit}")
    return b"".join(chunks)


def load_config(path: str | Path, *, allow_unpinned: bool = False) -> Config:
    """Read and validate a config file. Raises ConfigError (exit 2) on any problem."""
    p = Path(path)
    raw = _read_config_bytes(p)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(
            str(p),
            "",
            f"is not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start})",
            "a config is a YAML text file in UTF-8",
        ) from None
    if not text.strip():
        raise ConfigError(
            str(p),
            "",
            "the file is empty",
            "a config is a YAML mapping with registry, qemu and targets (see config/images.yaml)",
        )
    try:
        data = yaml.load(text, Loader=_Loader)  # a SafeLoader subclass
    except _LoadRefused as e:
        raise ConfigError(str(p), "", e.problem, e.hint) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError(str(p), "", f"YAML syntax error at {where}{problem}") from None
    if data is None:
        raise ConfigError(
            str(p),
            "",
            "holds no YAML content (only comments or null)",
            "a config is a YAML mapping with registry, qemu and targets (see config/images.yaml)",
        )
    return parse_config(p, data, allow_unpinned=allow_unpinned)


def parse_config(path: Path, data: Any, *, allow_unpinned: bool = False) -> Config:
    root = _Reader(path, "", data if data is not None else {})
    root.check_keys(("registry", "qemu", "targets", "installer", "cibuildwheel"))
    registry = _parse_registry(root.reader("registry"))
    qemu = _parse_qemu(root.reader("qemu"), path)
    if "targets" not in root.data:
        root.fail("missing required key", "targets")
    raw_targets = root.data["targets"]
    if not isinstance(raw_targets, list) or not raw_targets:
        root.fail(
            f"expected a non-empty list of targets, found {_describe(raw_targets)}", "targets"
        )
    targets: list[Target] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(raw_targets):
        t = _parse_target(_Reader(path, f"targets[{i}]", raw), allow_unpinned)
        if t.name in seen:
            root.fail(
                f"duplicate target name {t.name!r} (also targets[{seen[t.name]}])",
                f"targets[{i}].name",
                "give every target a unique name",
            )
        seen[t.name] = i
        targets.append(t)
    # A family becomes one multi-arch index: one image per arch and the same tags.
    by_family: dict[str, list[tuple[int, Target]]] = {}
    for i, t in enumerate(targets):
        by_family.setdefault(t.family, []).append((i, t))
    for fam, members in by_family.items():
        arches: dict[str, int] = {}
        for i, t in members:
            if t.arch.name in arches:
                root.fail(
                    f"family {fam!r} already has an {t.arch.name} target "
                    f"(targets[{arches[t.arch.name]}]); a multi-arch index holds one image per "
                    "architecture",
                    f"targets[{i}].family",
                )
            arches[t.arch.name] = i
        first_i, first = members[0]
        for i, t in members[1:]:
            if t.tags != first.tags:
                root.fail(
                    f"tags {list(t.tags)} differ from targets[{first_i}].tags {list(first.tags)} "
                    f"in the same family {fam!r}",
                    f"targets[{i}].tags",
                    "targets of one family share their multi-arch tags",
                )
    for i, t in enumerate(targets):
        if t.arch.qemu_binary not in qemu.sha256:
            root.fail(
                f"no sha256 pinned for {t.arch.qemu_binary}, which target {t.name!r} needs",
                "qemu.sha256",
                f"add `{t.arch.qemu_binary}: <sha256>` (targets[{i}].arch is {t.arch.name})",
            )
    installer = None
    if root.data.get("installer") is not None:
        installer = _parse_installer(root.reader("installer"), qemu)
        for i, t in enumerate(targets):
            if t.name == INSTALLER_TARGET:
                root.fail(
                    f"the target name {INSTALLER_TARGET!r} is reserved for the installer image",
                    f"targets[{i}].name",
                )
            if registry.repository(t.family) == registry.repository(installer.image):
                root.fail(
                    f"{installer.image!r} is also the family of targets[{i}]; the installer "
                    "image needs a repository of its own",
                    "installer.image",
                )
    cibuildwheel = None
    if root.data.get("cibuildwheel") is not None:
        cibuildwheel = _parse_cibuildwheel(root.reader("cibuildwheel"))
    return Config(
        path=path,
        registry=registry,
        qemu=qemu,
        targets=tuple(targets),
        installer=installer,
        cibuildwheel=cibuildwheel,
    )


CIBUILDWHEEL_VERSION_RE = re.compile(r"^[0-9]+(?:\.[0-9]+)*$")


def _parse_cibuildwheel(r: _Reader) -> CibuildwheelSettings:
    """The optional ``cibuildwheel:`` section: ``version`` is an exact release."""
    r.check_keys(("version",))
    version = r.text("version")
    if not CIBUILDWHEEL_VERSION_RE.match(version):
        r.fail(
            f"expected an exact release like 4.3.5, found {version!r}",
            r.sub("version"),
            "cibuildwheel is pinned to one version (`invoke pin --from-cibuildwheel` sets it)",
        )
    return CibuildwheelSettings(version=version)


def _parse_registry(r: _Reader) -> RegistrySettings:
    r.check_keys(("address", "namespace", "insecure"))
    address = r.text("address")
    if not REGISTRY_RE.match(address):
        r.fail(f"expected host[:port], found {address!r}", r.sub("address"))
    namespace = r.text("namespace", "")
    if namespace and not all(COMPONENT_RE.match(c) for c in namespace.split("/")):
        r.fail(
            f"{namespace!r} is not a valid repository path (lowercase letters, digits, . _ -)",
            r.sub("namespace"),
        )
    return RegistrySettings(
        address=address, namespace=namespace, insecure=r.bool_or_none("insecure")
    )


def _parse_qemu(r: _Reader, config_path: Path) -> QemuPin:
    r.check_keys(("version", "source", "sha256", "cpu"))
    version = r.text("version")
    s = r.reader("source")
    s.check_keys(("apt", "dir", "url"))
    kinds = [k for k in ("apt", "dir", "url") if s.has(k)]
    if len(kinds) != 1:
        s.fail("give exactly one of: apt, dir, url", hint=f"found: {', '.join(kinds) or 'none'}")
    kind = kinds[0]
    if kind == "apt":
        a = s.reader("apt")
        a.check_keys(("package", "version", "arch"))
        arch = a.text("arch", "")
        if arch and arch not in {x.debian_arch for x in ARCHES.values()}:
            a.fail(f"unknown Debian architecture {arch!r}", a.sub("arch"))
        source = QemuSource(
            kind="apt",
            package=a.text("package", "qemu-user-static"),
            version=a.text("version"),
            debian_arch=arch,
        )
    elif kind == "dir":
        d = s.text("dir")
        dp = Path(d)
        if not dp.is_absolute():
            dp = (config_path.parent / dp).resolve()
        source = QemuSource(kind="dir", path=dp)
    else:
        url = s.text("url")
        if not url.startswith(("https://", "http://", "file://")):
            s.fail(f"expected an http(s):// or file:// URL, found {url!r}", s.sub("url"))
        source = QemuSource(kind="url", url=url)
    sums = r.str_map("sha256")
    if not sums:
        r.fail("missing: the sha256 of every emulator binary used", r.sub("sha256"))
    for name, value in sums.items():
        if not re.match(r"^qemu-[a-z0-9_]+-static$", name):
            r.fail(
                f"expected keys like qemu-aarch64-static, found {name!r}",
                f"{r.sub('sha256')}.{name}",
            )
        if not SHA256_RE.match(value):
            r.fail(
                f"expected 64 lowercase hex digits, found {value!r}", f"{r.sub('sha256')}.{name}"
            )
    cpu = r.str_map("cpu")
    for arch_name in cpu:
        try:
            get_arch(arch_name)
        except BadInput as e:
            r.fail(str(e), f"{r.sub('cpu')}.{arch_name}")
    return QemuPin(
        version=version,
        source=source,
        sha256=sums,
        cpu={get_arch(k).name: v for k, v in cpu.items()},
    )


def _parse_target(r: _Reader, allow_unpinned: bool) -> Target:
    r.check_keys(
        ("name", "arch", "base", "family", "tags", "labels", "env", "accelerate", "native-uv")
    )
    name = r.text("name")
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", name):
        r.fail(f"{name!r} is not a valid name (letters, digits, . _ -)", r.sub("name"))
    arch_name = r.text("arch")
    try:
        arch = get_arch(arch_name)
    except BadInput as e:
        r.fail(str(e), r.sub("arch"))
    family = r.text("family")
    if not COMPONENT_RE.match(family):
        r.fail(
            f"{family!r} is not a valid repository name (lowercase letters, digits, . _ -)",
            r.sub("family"),
        )
    tags = r.str_list("tags")
    if not tags:
        r.fail("expected at least one tag", r.sub("tags"))
    for i, tag in enumerate(tags):
        if not TAG_RE.match(tag) or len(tag) + 1 + len(arch.name) > 128:
            r.fail(f"{tag!r} is not a valid image tag", f"{r.sub('tags')}[{i}]")
    base = _parse_base(r.reader("base"), allow_unpinned)
    return Target(
        name=name,
        arch=arch,
        base=base,
        family=family,
        tags=tags,
        labels=r.str_map("labels"),
        env=r.str_map("env"),
        accelerate=_parse_accelerate(r.reader("accelerate"), path_dir=r.path.parent)
        if r.data.get("accelerate") is not None
        else None,
        native_uv=_parse_native_uv(r),
    )


_UV_VERSION_RE = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+$")


def _parse_native_uv(r: _Reader) -> dict[str, str]:
    """``native-uv:``: exact uv versions, each with the sha256 of its x86_64 wheel."""
    pins = r.str_map("native-uv")
    if r.has("native-uv") and r.data["native-uv"] is not None and not pins:
        r.fail(
            "expected at least one `<uv version>: <sha256>` pin",
            r.sub("native-uv"),
            "pin the x86_64 uv of the version the base carries, e.g. "
            '"0.13.8": <sha256 of uv-0.13.8-py3-none-musllinux_1_1_x86_64.whl>',
        )
    for version, sha in pins.items():
        key = f"{r.sub('native-uv')}.{version}"
        if not _UV_VERSION_RE.match(version):
            r.fail(f"{version!r} is not an exact uv version like 0.13.8", key)
        if not re.fullmatch(r"[0-9a-f]{64}", sha):
            r.fail(f"{_short(sha)} is not a sha256 (64 lowercase hex digits)", key)
    return pins


_VERSION_RE = re.compile(r"^[0-9][0-9A-Za-z.+~:-]*$")
_PACKAGE_RE = re.compile(r"^[a-z0-9][a-z0-9.+-]+$")


def _parse_accelerate(r: _Reader, path_dir: Path) -> Accelerate:
    r.check_keys(
        (
            "enabled",
            "toolchain",
            "gcc",
            "binutils",
            "leaves",
            "packages",
            "suite",
            "mirror",
            "directory",
        )
    )
    enabled = r.bool_or_none("enabled")
    versions = {}
    for key in ("gcc", "binutils"):
        v = r.text(key)
        if not re.match(r"^[0-9]+(\.[0-9]+)+$", v):
            r.fail(
                f"{v!r} is not a version",
                r.sub(key),
                f"the upstream version the base's {key} reports, such as 10.2.1",
            )
        versions[key] = v
    leaves = r.str_list("leaves") or DEFAULT_NATIVE_LEAVES
    for i, leaf in enumerate(leaves):
        if leaf not in NATIVE_LEAVES:
            close = difflib.get_close_matches(leaf, NATIVE_LEAVES, n=1)
            r.fail(
                f"unknown leaf {leaf!r}",
                f"{r.sub('leaves')}[{i}]",
                f"did you mean {close[0]!r}?" if close else f"one of: {', '.join(NATIVE_LEAVES)}",
            )
    raw = r.data.get("packages")
    if not isinstance(raw, list) or not raw:
        r.fail(
            f"expected a non-empty list of packages, found {_describe(raw)}",
            r.sub("packages"),
            "each item: {package: NAME, version: VERSION, sha256: HEX}",
        )
    packages: list[DebPin] = []
    names: set[str] = set()
    for i, item in enumerate(raw):
        pr = _Reader(r.path, f"{r.sub('packages')}[{i}]", item)
        pr.check_keys(("package", "version", "sha256", "suite"))
        name = pr.text("package")
        if not _PACKAGE_RE.match(name):
            pr.fail(f"{name!r} is not a Debian package name", pr.sub("package"))
        if name in names:
            pr.fail(f"{name!r} is listed twice", pr.sub("package"))
        names.add(name)
        version = pr.text("version")
        if not _VERSION_RE.match(version):
            pr.fail(f"{version!r} is not a Debian version", pr.sub("version"))
        sha = pr.text("sha256")
        if not SHA256_RE.match(sha):
            pr.fail(
                f"malformed sha256 {sha!r}",
                pr.sub("sha256"),
                "64 lowercase hex digits: sha256sum of the .deb file",
            )
        from_suite = pr.text("suite", "")
        if from_suite and not re.match(r"^[a-z0-9-]+$", from_suite):
            pr.fail(f"{from_suite!r} is not a Debian suite name", pr.sub("suite"))
        packages.append(DebPin(package=name, version=version, sha256=sha, suite=from_suite))
    directory = r.text("directory", "")
    if directory:
        d = Path(directory)
        if not d.is_absolute():
            d = path_dir / d
        if not d.is_dir():
            r.fail(f"{str(d)!r} is not a directory", r.sub("directory"))
        directory = str(d)
    mirror = r.text("mirror", "http://deb.debian.org/debian")
    if not re.match(r"^https?://[^\s]+$", mirror):
        r.fail(f"{mirror!r} is not an http(s) URL", r.sub("mirror"))
    suite = r.text("suite", "")
    if not directory and not re.match(r"^[a-z0-9-]+$", suite):
        r.fail(
            "missing or invalid suite" if suite else "missing required key",
            r.sub("suite"),
            "the Debian suite to download from (bullseye), or set directory",
        )
    return Accelerate(
        enabled=True if enabled is None else enabled,
        toolchain=r.text("toolchain"),
        gcc_version=versions["gcc"],
        binutils_version=versions["binutils"],
        leaves=leaves,
        packages=tuple(packages),
        suite=suite,
        mirror=mirror,
        directory=directory,
    )


def _parse_base(r: _Reader, allow_unpinned: bool) -> Base:
    if r.has("bootstrap"):
        r.check_keys(("bootstrap",))
        b = r.reader("bootstrap")
        b.check_keys(("suite", "layout", "packages", "mirror", "image"))
        layout = b.text("layout", "manylinux-standin")
        if layout not in STANDIN_LAYOUTS:
            b.fail(
                f"unknown layout {layout!r}",
                b.sub("layout"),
                f"one of: {', '.join(STANDIN_LAYOUTS)}",
            )
        image = b.text("image")
        if not all(COMPONENT_RE.match(c) for c in image.split("/")):
            b.fail(f"{image!r} is not a valid repository path", b.sub("image"))
        return BootstrapBase(
            suite=b.text("suite", "bookworm"),
            layout=layout,
            packages=b.str_list("packages"),
            mirror=b.text("mirror", ""),
            image=image,
        )
    r.check_keys(("image", "tag", "digest"))
    image = r.text("image")
    if "@" in image:
        r.fail(
            f"the image name {image!r} contains a digest",
            r.sub("image"),
            "put the name in base.image and the digest in base.digest",
        )
    m = IMAGE_NAME_RE.match(image)
    if not m:
        # A ":tag" suffix after the last "/" is the common slip.
        last = image.rsplit("/", 1)[-1]
        if ":" in last:
            r.fail(
                f"the image name {image!r} contains a tag",
                r.sub("image"),
                "put the name in base.image, the tag in base.tag and the digest in base.digest",
            )
        r.fail(f"{image!r} is not a valid image name", r.sub("image"))
    tag = r.text("tag", "")
    if tag and not TAG_RE.match(tag):
        r.fail(f"{tag!r} is not a valid image tag", r.sub("tag"))
    digest = r.text("digest", "")
    if digest and not DIGEST_RE.match(digest):
        r.fail(
            f"malformed digest {digest!r}",
            r.sub("digest"),
            "expected sha256: followed by 64 lowercase hex digits",
        )
    if not digest and not allow_unpinned:
        r.fail(
            "the base is not pinned by digest",
            r.sub("digest"),
            "add `digest: sha256:...` (run `invoke pin` or `docker buildx imagetools inspect "
            "IMAGE:TAG`), or pass --allow-unpinned to build from the tag",
        )
    return PinnedBase(image=image, tag=tag, digest=digest)


def _parse_installer(r: _Reader, qemu: QemuPin) -> InstallerSettings:
    """The optional ``installer:`` section (the binfmt installer image)."""
    r.check_keys(("image", "tags", "busybox", "hosts"))
    image = r.text("image", "binfmt")
    if not all(COMPONENT_RE.match(c) for c in image.split("/")):
        r.fail(
            f"{image!r} is not a valid repository path (lowercase letters, digits, . _ -)",
            r.sub("image"),
        )
    tags = r.str_list("tags")
    if not tags:
        r.fail("expected at least one tag", r.sub("tags"), "e.g. tags: [qemu-7.2]")
    longest = max(len(a.name) for a in ARCHES.values())
    for i, tag in enumerate(tags):
        if not TAG_RE.match(tag) or len(tag) + 1 + longest > 128:
            r.fail(f"{tag!r} is not a valid image tag", f"{r.sub('tags')}[{i}]")

    b = r.reader("busybox")
    b.check_keys(("package", "version", "sha256"))
    busybox_package = b.text("package", "busybox-static")
    busybox_version = b.text("version")
    busybox_sums = _arch_keyed(b, "sha256")
    if not busybox_sums:
        b.fail("missing: the sha256 of /bin/busybox per host architecture", b.sub("sha256"))

    if not isinstance(r.data.get("hosts"), dict) or not r.data["hosts"]:
        r.fail(
            f"expected a mapping of host architectures, found {_describe(r.data.get('hosts'))}",
            r.sub("hosts"),
            "e.g. hosts: {x86_64: {emulates: [aarch64]}}",
        )
    # qemu.sha256 pins the binaries of qemu.source's package: amd64 unless apt.arch says.
    pin_arch = qemu.source.debian_arch or "amd64"
    hosts: list[InstallerHost] = []
    seen: dict[str, str] = {}
    for key, raw in r.data["hosts"].items():
        hr = _Reader(r.path, f"{r.sub('hosts')}.{key}", raw)
        try:
            host = get_arch(str(key))
        except BadInput as e:
            hr.fail(str(e))
        if host.name in seen:
            hr.fail(f"{host.name} is listed twice (also as {seen[host.name]!r})")
        seen[host.name] = str(key)
        hr.check_keys(("emulates", "sha256"))
        names = hr.str_list("emulates")
        if not names:
            hr.fail("expected at least one architecture", hr.sub("emulates"))
        emulates: list[Arch] = []
        for i, name in enumerate(names):
            where = f"{hr.sub('emulates')}[{i}]"
            try:
                a = get_arch(name)
            except BadInput as e:
                hr.fail(str(e), where)
            if a is host:
                hr.fail(
                    f"a host never emulates its own architecture ({host.name})",
                    where,
                    "a handler for the host's own architecture would hand every native "
                    "program to QEMU",
                )
            if a in emulates:
                hr.fail(f"{a.name} is listed twice", where)
            emulates.append(a)
        own = hr.str_map("sha256")
        carried = {a.qemu_binary for a in emulates}
        for binary, value in own.items():
            where = f"{hr.sub('sha256')}.{binary}"
            if binary not in carried:
                hr.fail(
                    f"{binary} is not carried by this host's variant",
                    where,
                    f"it carries: {', '.join(sorted(carried))}",
                )
            if not SHA256_RE.match(value):
                hr.fail(f"expected 64 lowercase hex digits, found {value!r}", where)
        if host.debian_arch != pin_arch and qemu.source.kind != "apt":
            hr.fail(
                f"the {host.name} variant takes its emulators from Debian's {host.debian_arch} "
                "package, which needs an apt source",
                hint="use qemu.source.apt, or drop this host",
            )
        sums: dict[str, str] = {}
        for a in emulates:
            if a.qemu_binary in own:
                sums[a.qemu_binary] = own[a.qemu_binary]
            elif host.debian_arch == pin_arch and a.qemu_binary in qemu.sha256:
                sums[a.qemu_binary] = qemu.sha256[a.qemu_binary]
            else:
                hr.fail(
                    f"no sha256 pinned for {a.qemu_binary} of the {host.debian_arch} package "
                    f"(qemu.sha256 pins the {pin_arch} package's binaries)",
                    hr.sub("sha256"),
                    f"add `{a.qemu_binary}: <sha256>` (of usr/bin/{a.qemu_binary} in "
                    f"{qemu.source.package or 'the package'}:{host.debian_arch})",
                )
        if host.name not in busybox_sums:
            b.fail(
                f"no sha256 pinned for the {host.name} ({host.debian_arch}) busybox, which the "
                f"hosts.{key} variant needs",
                b.sub("sha256"),
                f"add `{host.name}: <sha256 of bin/busybox in {busybox_package}"
                f":{host.debian_arch}>`",
            )
        hosts.append(InstallerHost(arch=host, emulates=tuple(emulates), sha256=sums))
    return InstallerSettings(
        image=image,
        tags=tags,
        busybox=BusyboxPin(package=busybox_package, version=busybox_version, sha256=busybox_sums),
        hosts=tuple(hosts),
    )


def _arch_keyed(r: _Reader, name: str) -> dict[str, str]:
    """A mapping of architecture (name or alias) -> sha256, keyed by our arch name."""
    out: dict[str, str] = {}
    for key, value in r.str_map(name).items():
        where = f"{r.sub(name)}.{key}"
        try:
            a = get_arch(key)
        except BadInput as e:
            r.fail(str(e), where)
        if a.name in out:
            r.fail(f"{a.name} is listed twice", where)
        if not SHA256_RE.match(value):
            r.fail(f"expected 64 lowercase hex digits, found {value!r}", where)
        out[a.name] = value
    return out
