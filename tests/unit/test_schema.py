"""The config schema (src/xarch/model/config.schema.json) against the loader.

The schema is hand-written for editors; the loader (xarch.model.config) is the
authority. These tests keep them one truth:

- every shipped config points at the schema on its first line and validates;
- a corpus of invalid configs is refused by BOTH the loader and the schema, and a
  corpus of valid variants is accepted by both;
- the keys of every ``check_keys(...)`` call in the loader (read with ast) are exactly
  the properties of one schema object, and every schema object is one such call: a key
  added to the loader and not to the schema (or the reverse) fails, naming the key;
- the schema's patterns and enums are the loader's own regexes and tables.

The schema cannot say everything the loader checks (cross-references such as "every
target's emulator is pinned"); ``LOADER_ONLY`` lists those, so the boundary is explicit.
"""

from __future__ import annotations

import ast
import copy
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from xarch.errors import ConfigError
from xarch.model import arch as arch_module
from xarch.model import config as loader
from xarch.model.arch import ARCHES

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO_ROOT / "config"
SHIPPED = sorted(CONFIG_DIR.glob("*.yaml"))
LOADER_SOURCE = Path(loader.__file__)
SCHEMA_NAME = "config.schema.json"


def load_schema() -> dict[str, Any]:
    """The schema as the installed package ships it (package data, not the checkout)."""
    text = resources.files("xarch.model").joinpath(SCHEMA_NAME).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


SCHEMA = load_schema()
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def read_yaml(path: Path) -> Any:
    """The data exactly as the loader sees it (numbers and dates stay strings)."""
    return yaml.load(path.read_text(encoding="utf-8"), Loader=loader._Loader)


def schema_errors(data: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
        for e in VALIDATOR.iter_errors(data)
    ]


def loader_error(data: Any, tmp_path: Path) -> ConfigError | None:
    try:
        loader.parse_config(tmp_path / "case.yaml", data)
    except ConfigError as e:
        return e
    return None


# --------------------------------------------------------------------------- shipped


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_there_are_shipped_configs() -> None:
    assert {p.name for p in SHIPPED} >= {"images.yaml", "offline.yaml"}


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_config_points_at_the_schema(path: Path) -> None:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    m = re.fullmatch(r"# yaml-language-server: \$schema=(\S+)", first)
    assert m, f"{path.name}: first line must be `# yaml-language-server: $schema=...`"
    target = (path.parent / m.group(1)).resolve()
    assert target == (REPO_ROOT / "src" / "xarch" / "model" / SCHEMA_NAME).resolve()


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_config_validates(path: Path) -> None:
    assert schema_errors(read_yaml(path)) == []
    loader.load_config(path)  # and the loader agrees


# --------------------------------------------------------------------------- corpus

IMAGES = read_yaml(CONFIG_DIR / "images.yaml")  # pinned base, installer
OFFLINE = read_yaml(CONFIG_DIR / "offline.yaml")  # bootstrapped bases
DELETE = object()

Key = str | int


@dataclass(frozen=True)
class Case:
    id: str
    base: dict[str, Any]
    changes: tuple[tuple[tuple[Key, ...], Any], ...]

    def data(self) -> Any:
        data = copy.deepcopy(self.base)
        for path, value in self.changes:
            if not path:
                return value
            parent = data
            for k in path[:-1]:
                parent = parent[k]
            if value is DELETE:
                del parent[path[-1]]
            else:
                parent[path[-1]] = value
        return data


def case(id: str, *changes: tuple[tuple[Key, ...], Any], base: str = "images") -> Any:
    c = Case(id, IMAGES if base == "images" else OFFLINE, tuple(changes))
    return pytest.param(c, id=id)


T0: tuple[Key, ...] = ("targets", 0)
BASE = (*T0, "base")
BOOT = (*BASE, "bootstrap")
SRC = ("qemu", "source")
INST: tuple[Key, ...] = ("installer",)
HOSTS = (*INST, "hosts")
SHA_A = "a" * 64
AARCH64_PIN = ("qemu", "sha256", "qemu-aarch64-static")

INVALID = [
    # unknown keys, at every level
    case("unknown-root", (("registy",), {})),
    case("unknown-registry", (("registry", "adress"), "x")),
    case("unknown-qemu", (("qemu", "cpus"), {})),
    case("unknown-source", ((*SRC, "git"), "x")),
    case("unknown-apt", ((*SRC, "apt", "suite"), "bookworm")),
    case("unknown-target", ((*T0, "platform"), "linux/arm64")),
    case("unknown-pinned-base", ((*BASE, "sha256"), SHA_A)),
    case("unknown-bootstrap-wrapper", ((*BASE, "image"), "x"), base="offline"),
    case("unknown-bootstrap", ((*BOOT, "variant"), "x"), base="offline"),
    case("unknown-installer", ((*INST, "platforms"), [])),
    case("unknown-busybox", ((*INST, "busybox", "url"), "x")),
    case("unknown-installer-host", ((*HOSTS, "x86_64", "flags"), "F")),
    case("unknown-cibuildwheel", (("cibuildwheel", "image"), "x")),
    # missing required keys and sections
    case("missing-registry", (("registry",), DELETE)),
    case("missing-qemu", (("qemu",), DELETE)),
    case("missing-targets", (("targets",), DELETE)),
    case("missing-address", (("registry", "address"), DELETE)),
    case("missing-qemu-version", (("qemu", "version"), DELETE)),
    case("missing-source", ((*SRC,), DELETE)),
    case("missing-apt-version", ((*SRC, "apt", "version"), DELETE)),
    case("missing-qemu-sha256", (("qemu", "sha256"), DELETE)),
    case("empty-qemu-sha256", (("qemu", "sha256"), {})),
    case("missing-target-name", ((*T0, "name"), DELETE)),
    case("missing-target-arch", ((*T0, "arch"), DELETE)),
    case("missing-target-base", ((*T0, "base"), DELETE)),
    case("missing-target-family", ((*T0, "family"), DELETE)),
    case("missing-target-tags", ((*T0, "tags"), DELETE)),
    case("missing-base-image", ((*BASE, "image"), DELETE)),
    case("missing-base-digest", ((*BASE, "digest"), DELETE)),
    case("missing-bootstrap-image", ((*BOOT, "image"), DELETE), base="offline"),
    case("missing-installer-tags", ((*INST, "tags"), DELETE)),
    case("missing-busybox", ((*INST, "busybox"), DELETE)),
    case("missing-busybox-version", ((*INST, "busybox", "version"), DELETE)),
    case("missing-busybox-sha256", ((*INST, "busybox", "sha256"), DELETE)),
    case("missing-hosts", ((*HOSTS,), DELETE)),
    case("missing-emulates", ((*HOSTS, "x86_64", "emulates"), DELETE)),
    case("missing-cibuildwheel-version", (("cibuildwheel",), {})),
    case("required-key-null", (("registry", "address"), None)),
    # wrong types
    case("config-is-a-list", ((), [])),
    case("config-is-empty", ((), None)),
    case("registry-is-a-string", (("registry",), "127.0.0.1:5000")),
    case("insecure-is-a-string", (("registry", "insecure"), "yes")),
    case("version-is-a-list", (("qemu", "version"), ["7.2"])),
    case("source-is-a-string", ((*SRC,), "apt")),
    case("sha256-is-a-list", (("qemu", "sha256"), [SHA_A])),
    case("targets-is-a-mapping", (("targets",), {})),
    case("targets-is-empty", (("targets",), [])),
    case("target-is-a-string", (T0, "manylinux2014_aarch64")),
    case("name-is-a-boolean", ((*T0, "name"), True)),
    case("tags-is-a-string", ((*T0, "tags"), "2026.08.15-1")),
    case("tags-is-empty", ((*T0, "tags"), [])),
    case("tag-is-a-boolean", ((*T0, "tags"), [True])),
    case("tag-is-a-mapping", ((*T0, "tags"), [{"a": "b"}])),
    case("labels-is-a-list", ((*T0, "labels"), ["a"])),
    case("label-is-null", ((*T0, "labels"), {"a": None})),
    case("env-value-is-a-mapping", ((*T0, "env"), {"A": {"b": "c"}})),
    case("base-is-a-string", ((*BASE,), "quay.io/pypa/manylinux2014_aarch64")),
    case("packages-is-a-string", ((*BOOT, "packages"), "gcc"), base="offline"),
    case("installer-is-a-list", ((*INST,), [])),
    case("hosts-is-a-list", ((*HOSTS,), ["x86_64"])),
    case("hosts-is-empty", ((*HOSTS,), {})),
    case("emulates-is-empty", ((*HOSTS, "x86_64", "emulates"), [])),
    case("emulates-is-a-string", ((*HOSTS, "x86_64", "emulates"), "aarch64")),
    # digests and checksums
    case("digest-too-short", ((*BASE, "digest"), "sha256:abc")),
    case("digest-uppercase", ((*BASE, "digest"), "sha256:" + "A" * 64)),
    case("digest-other-algorithm", ((*BASE, "digest"), "sha512:" + "a" * 64)),
    case("digest-without-algorithm", ((*BASE, "digest"), SHA_A)),
    case("digest-empty", ((*BASE, "digest"), "")),
    case("qemu-sha256-not-hex", (AARCH64_PIN, "z" * 64)),
    case("qemu-sha256-uppercase", (AARCH64_PIN, "A" * 64)),
    case("qemu-sha256-with-prefix", (AARCH64_PIN, "sha256:" + SHA_A)),
    case("qemu-sha256-bad-key", (("qemu", "sha256", "aarch64"), SHA_A)),
    case("busybox-sha256-short", ((*INST, "busybox", "sha256", "x86_64"), "abc")),
    case("busybox-sha256-unknown-arch", ((*INST, "busybox", "sha256", "sparc"), SHA_A)),
    case("host-sha256-bad", ((*HOSTS, "aarch64", "sha256", "qemu-x86_64-static"), "abc")),
    # names, tags and enumerations
    case("address-with-scheme", (("registry", "address"), "https://127.0.0.1:5000")),
    case("namespace-uppercase", (("registry", "namespace"), "Xarch")),
    case("source-none", ((*SRC,), {})),
    case("source-two-kinds", ((*SRC, "url"), "https://example.org/{binary}")),
    case("source-url-ftp", ((*SRC,), {"url": "ftp://example.org/{binary}"})),
    case("apt-unknown-arch", ((*SRC, "apt", "arch"), "i386")),
    case("cpu-unknown-arch", (("qemu", "cpu"), {"sparc": "max"})),
    case("target-unknown-arch", ((*T0, "arch"), "sparc")),
    case("target-name-leading-dash", ((*T0, "name"), "-aarch64")),
    case("family-uppercase", ((*T0, "family"), "Manylinux2014")),
    case("family-with-slash", ((*T0, "family"), "a/b")),
    case("tag-leading-dot", ((*T0, "tags"), [".x"])),
    case("tag-with-space", ((*T0, "tags"), ["a b"])),
    case("base-image-with-tag", ((*BASE, "image"), "quay.io/pypa/manylinux2014_aarch64:1")),
    case("base-image-with-digest", ((*BASE, "image"), "quay.io/pypa/x@sha256:" + SHA_A)),
    case("base-image-uppercase", ((*BASE, "image"), "quay.io/PyPA/x")),
    case("base-tag-with-space", ((*BASE, "tag"), "a b")),
    case("base-both-kinds", ((*BASE, "bootstrap"), {"image": "bases/x"})),
    case("bootstrap-unknown-layout", ((*BOOT, "layout"), "alpine"), base="offline"),
    case("bootstrap-image-uppercase", ((*BOOT, "image"), "Bases/x"), base="offline"),
    case("installer-image-uppercase", ((*INST, "image"), "Binfmt")),
    case("installer-tag-with-space", ((*INST, "tags"), ["qemu 7.2"])),
    case("installer-unknown-host", ((*HOSTS, "sparc"), {"emulates": ["aarch64"]})),
    case("installer-unknown-emulated", ((*HOSTS, "x86_64", "emulates"), ["sparc"])),
    case("cibuildwheel-version-range", (("cibuildwheel", "version"), ">=4.3")),
    case("cibuildwheel-version-prefixed", (("cibuildwheel", "version"), "v4.3.5")),
    case("installer-emulates-twice", ((*HOSTS, "x86_64", "emulates"), ["aarch64", "aarch64"])),
]

VALID_VARIANTS = [
    case("images-as-shipped"),
    case("offline-as-shipped", base="offline"),
    case("optional-keys-null", (("registry", "namespace"), None), (("registry", "insecure"), None)),
    case("no-installer", ((*INST,), DELETE)),
    case("no-cibuildwheel", (("cibuildwheel",), DELETE)),
    case("cibuildwheel-null", (("cibuildwheel",), None)),
    case("installer-null", ((*INST,), None)),
    case("insecure-true", (("registry", "insecure"), True)),
    case("arch-alias", ((*T0, "arch"), "arm64")),
    case("cpu-by-alias", (("qemu", "cpu"), {"arm64": "cortex-a72"})),
    case("apt-arch", ((*SRC, "apt", "arch"), "amd64")),
    case("url-source", ((*SRC,), {"url": "https://example.org/{binary}"}), ((*INST,), DELETE)),
    case("dir-source", ((*SRC,), {"dir": "qemu-bin"}), ((*INST,), DELETE)),
    case("base-without-tag", ((*BASE, "tag"), DELETE)),
    case("labels-and-env", ((*T0, "labels"), {"a": "b"}), ((*T0, "env"), {"A": "1"})),
    case("bootstrap-minimal", ((*BASE,), {"bootstrap": {"image": "bases/x"}}), base="offline"),
    case("bootstrap-packages", ((*BOOT, "packages"), ["gcc", "make"]), base="offline"),
    case("bootstrap-debian-layout", ((*BOOT, "layout"), "debian"), base="offline"),
]


@pytest.mark.parametrize("c", INVALID)
def test_both_refuse(c: Case, tmp_path: Path) -> None:
    data = c.data()
    error = loader_error(data, tmp_path)
    assert error is not None, f"{c.id}: the loader accepted it"
    assert error.exit_code == 2
    assert schema_errors(data), f"{c.id}: the schema accepted what the loader refuses: {error}"


@pytest.mark.parametrize("c", VALID_VARIANTS)
def test_both_accept(c: Case, tmp_path: Path) -> None:
    data = c.data()
    assert loader_error(data, tmp_path) is None
    assert schema_errors(data) == []


def _targets_of_one_family(cfg: Any) -> Any:
    second = copy.deepcopy(cfg["targets"][0])
    second["name"] = "other"
    cfg["targets"].append(second)
    return cfg


# What only the loader can check: it relates keys to each other.
LOADER_ONLY: list[tuple[str, Callable[[Any], Any]]] = [
    ("target-emulator-not-pinned", lambda c: c["qemu"]["sha256"].pop("qemu-aarch64-static")),
    ("duplicate-target-name", lambda c: c["targets"].append(copy.deepcopy(c["targets"][0]))),
    ("family-has-the-arch-twice", _targets_of_one_family),
    ("installer-host-emulates-itself", lambda c: c["installer"]["hosts"]["x86_64"].update(
        emulates=["x86_64"])),
    ("installer-busybox-not-pinned-for-a-host", lambda c: c["installer"]["busybox"]["sha256"]
     .pop("aarch64")),
]  # fmt: skip


@pytest.mark.parametrize("mutate", [m for _, m in LOADER_ONLY], ids=[i for i, _ in LOADER_ONLY])
def test_what_only_the_loader_refuses(mutate: Callable[[Any], Any], tmp_path: Path) -> None:
    data = copy.deepcopy(IMAGES)
    mutate(data)
    assert loader_error(data, tmp_path) is not None
    # Structurally fine: if the schema learns to refuse it, move it to INVALID.
    assert schema_errors(data) == []


# --------------------------------------------------------------------------- keys


@dataclass(frozen=True)
class KeyCall:
    function: str
    reader: str
    line: int
    keys: frozenset[str]

    def where(self) -> str:
        return f"{LOADER_SOURCE.name}:{self.line} ({self.function}, {self.reader}.check_keys)"


def loader_key_sets(source: Path = LOADER_SOURCE) -> list[KeyCall]:
    """Every ``READER.check_keys((...))`` call of the loader, with its literal keys."""
    tree = ast.parse(source.read_text(encoding="utf-8"))
    calls: dict[int, KeyCall] = {}
    for fn in ast.walk(tree):
        if not isinstance(fn, ast.FunctionDef):
            continue
        for node in ast.walk(fn):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "check_keys"
                and fn.name != "check_keys"
            ):
                continue
            arg = node.args[0] if node.args else None
            if not isinstance(arg, ast.Tuple | ast.List) or not all(
                isinstance(e, ast.Constant) and isinstance(e.value, str) for e in arg.elts
            ):
                raise AssertionError(
                    f"{source.name}:{node.lineno}: check_keys needs a literal tuple of key "
                    "names, so that tests/unit/test_schema.py can compare it with the schema"
                )
            reader = ast.unparse(node.func.value)
            keys = frozenset(e.value for e in arg.elts if isinstance(e, ast.Constant))
            # Breadth first: a call inside a nested function is named by the outer one.
            calls.setdefault(node.lineno, KeyCall(fn.name, reader, node.lineno, keys))
    return sorted(calls.values(), key=lambda c: c.line)


def schema_objects(node: Any, pointer: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every object schema with listed properties, with its JSON pointer."""
    if isinstance(node, dict):
        if "properties" in node and node.get("type") == "object":
            yield pointer, node
        for k, v in node.items():
            if k in ("enum", "required", "const"):
                continue
            yield from schema_objects(v, f"{pointer}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from schema_objects(v, f"{pointer}/{i}")


def _closest(keys: frozenset[str], others: list[frozenset[str]]) -> frozenset[str]:
    return max(others, key=lambda o: (len(keys & o), -len(keys ^ o)))


def _difference(ours: frozenset[str], theirs: frozenset[str], other: str) -> str:
    """What `ours` has that `other` (holding `theirs`) lacks, and the reverse."""
    parts = []
    if ours - theirs:
        parts.append(f"missing from {other}: {', '.join(sorted(ours - theirs))}")
    if theirs - ours:
        parts.append(f"only in {other}: {', '.join(sorted(theirs - ours))}")
    return "; ".join(parts)


def test_loader_finds_every_section() -> None:
    calls = loader_key_sets()
    # The reader sees the real calls: the root, and the key that says which base it is.
    assert any({"registry", "qemu", "targets"} <= c.keys for c in calls)
    assert frozenset({"bootstrap"}) in {c.keys for c in calls}
    assert len(calls) >= 12


def test_every_loader_key_is_in_the_schema() -> None:
    objects = {frozenset(o["properties"]): p for p, o in schema_objects(SCHEMA)}
    problems = []
    for call in loader_key_sets():
        if call.keys in objects:
            continue
        near = _closest(call.keys, list(objects))
        problems.append(
            f"{call.where()} accepts {sorted(call.keys)}, which no schema object has exactly; "
            f"nearest is {objects[near]} in {SCHEMA_NAME}: "
            + _difference(call.keys, near, "the schema")
        )
    assert not problems, (
        "add the loader's keys to src/xarch/model/config.schema.json (with a description):\n  "
        + "\n  ".join(problems)
    )


def test_every_schema_property_is_a_loader_key() -> None:
    calls = loader_key_sets()
    known = {c.keys: c for c in calls}
    problems = []
    for pointer, obj in schema_objects(SCHEMA):
        keys = frozenset(obj["properties"])
        if keys in known:
            continue
        near = _closest(keys, list(known))
        problems.append(
            f"{pointer} has properties {sorted(keys)}, which no check_keys call of the "
            f"loader accepts exactly; nearest is {known[near].where()}: "
            + _difference(keys, near, "the loader")
        )
    assert not problems, "the schema describes keys the loader refuses:\n  " + "\n  ".join(problems)


def test_every_schema_object_refuses_unknown_keys() -> None:
    open_objects = [
        p for p, o in schema_objects(SCHEMA) if o.get("additionalProperties") is not False
    ]
    assert not open_objects, f"objects without additionalProperties: false: {open_objects}"


def test_every_property_has_a_description() -> None:
    missing = [
        f"{pointer}/properties/{name}"
        for pointer, obj in schema_objects(SCHEMA)
        for name, prop in obj["properties"].items()
        if not prop.get("description")
    ]
    assert not missing, f"properties without a description: {missing}"


def test_key_comparison_names_a_key_added_to_the_loader(tmp_path: Path) -> None:
    source = tmp_path / "config.py"
    source.write_text(
        LOADER_SOURCE.read_text(encoding="utf-8").replace(
            '("address", "namespace", "insecure")', '("address", "namespace", "insecure", "mirror")'
        ),
        encoding="utf-8",
    )
    objects = {frozenset(o["properties"]) for _, o in schema_objects(SCHEMA)}
    # Only the edited call: keys other engineers are adding right now may be missing too.
    added = [c for c in loader_key_sets(source) if c.keys not in objects and "address" in c.keys]
    assert [sorted(c.keys) for c in added] == [["address", "insecure", "mirror", "namespace"]]
    near = _closest(added[0].keys, list(objects))
    assert _difference(added[0].keys, near, "the schema") == ("missing from the schema: mirror")


# --------------------------------------------------------------------------- patterns


def _def(name: str) -> dict[str, Any]:
    d: dict[str, Any] = SCHEMA["$defs"][name]
    return d


def _pointer(pointer: str) -> Any:
    node: Any = SCHEMA
    for part in pointer.removeprefix("#/").split("/"):
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def _property(object_pointer: str, name: str) -> dict[str, Any]:
    prop: dict[str, Any] = _pointer(object_pointer)["properties"][name]
    return prop


def test_patterns_are_the_loaders() -> None:
    assert _def("digest")["pattern"] == loader.DIGEST_RE.pattern
    assert _def("sha256")["pattern"] == loader.SHA256_RE.pattern
    assert _def("tag")["pattern"] == loader.TAG_RE.pattern
    assert _def("component")["pattern"] == loader.COMPONENT_RE.pattern
    version = _property("#/properties/cibuildwheel/anyOf/0", "version")
    assert version["pattern"] == loader.CIBUILDWHEEL_VERSION_RE.pattern
    registry = _property("#/properties/registry", "address")
    assert registry["pattern"] == loader.REGISTRY_RE.pattern
    image = _property("#/$defs/pinnedBase", "image")
    # ECMA-262 has no (?P<name>...): the same regex without the group names.
    assert image["pattern"] == re.sub(r"\?P<\w+>", "", loader.IMAGE_NAME_RE.pattern)


def test_enums_are_the_loaders() -> None:
    arch_names = set(ARCHES) | set(arch_module._ALIASES)
    assert set(_def("arch")["enum"]) == arch_names
    layout = _property("#/$defs/bootstrapBase/properties/bootstrap", "layout")
    assert tuple(layout["anyOf"][0]["enum"]) == loader.STANDIN_LAYOUTS
    apt_arch = _property("#/properties/qemu/properties/source/properties/apt", "arch")
    assert set(apt_arch["anyOf"][0]["enum"]) == {"", *(a.debian_arch for a in ARCHES.values())}
