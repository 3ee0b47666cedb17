"""Config loading (xarch.config): the shipped configs, and one test per way a config
can be wrong.

Each error case starts from a valid config (shaped like config/images.yaml, with two
targets of one family so that ``targets[1]`` exists), applies a few mutations by key
path, writes it to tmp_path as YAML and loads it. Every error must be a ConfigError
(exit code 2) whose message names the file and the exact key path.
"""

from __future__ import annotations

import copy
import hashlib
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from xarch.errors import BadInput, ConfigError
from xarch.model.arch import ARCHES
from xarch.model.config import (
    BootstrapBase,
    Config,
    PinnedBase,
    load_config,
)

REPO_ROOT = Path(__file__).resolve().parents[2]

DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "0123456789abcdef" * 4


def _fake_sha(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


# Every emulator of the arch table pinned, so that any arch (or alias) can be a target.
ALL_PINS = {a.qemu_binary: _fake_sha(a.qemu_binary) for a in ARCHES.values()}

VALID: dict[str, Any] = {
    "registry": {"address": "127.0.0.1:5000", "namespace": "xarch"},
    "qemu": {
        "version": "7.2+dfsg-7+deb12u18+b3",
        "source": {"apt": {"package": "qemu-user-static", "version": "1:7.2+dfsg-7+deb12u18+b3"}},
        "sha256": dict(ALL_PINS),
    },
    "targets": [
        {
            "name": "manylinux2014_aarch64",
            "arch": "aarch64",
            "base": {
                "image": "quay.io/pypa/manylinux2014_aarch64",
                "tag": "2026.08.15-1",
                "digest": DIGEST_A,
            },
            "family": "manylinux2014",
            "tags": ["2026.08.15-1"],
            "labels": {"org.opencontainers.image.title": "aarch64"},
        },
        {
            "name": "manylinux2014_ppc64le",
            "arch": "ppc64le",
            "base": {
                "image": "quay.io/pypa/manylinux2014_ppc64le",
                "tag": "2026.08.15-1",
                "digest": DIGEST_B,
            },
            "family": "manylinux2014",
            "tags": ["2026.08.15-1"],
            "env": {"AUDITWHEEL_ARCH": "ppc64le"},
        },
    ],
}

BOOTSTRAP_BASE = {
    "bootstrap": {
        "suite": "bookworm",
        "layout": "manylinux-standin",
        "image": "bases/standin-manylinux2014",
    }
}

DELETE = object()  # a mutation value: remove the key


def _parts(path: str) -> list[str | int]:
    """'targets[1].base.digest' -> ['targets', 1, 'base', 'digest']."""
    out: list[str | int] = []
    for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", path):
        out.append(int(index) if index else name)
    return out


def mutate(data: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of data with each key path set to its value (or deleted)."""
    data = copy.deepcopy(data)
    for path, value in changes.items():
        *parents, last = _parts(path)
        node: Any = data
        for p in parents:
            node = node[p]
        if value is DELETE:
            del node[last]
        elif isinstance(node, list) and last == len(node):
            node.append(copy.deepcopy(value))
        else:
            node[last] = copy.deepcopy(value)
    return data


def write(tmp_path: Path, data: Any, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def load(tmp_path: Path, changes: dict[str, Any], **kwargs: Any) -> Config:
    return load_config(write(tmp_path, mutate(VALID, changes)), **kwargs)


def config_error(tmp_path: Path, changes: dict[str, Any], **kwargs: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, changes, **kwargs)
    return info.value


def assert_names(err: ConfigError, path: Path, key: str, *fragments: str) -> None:
    """The common contract of every config error."""
    text = str(err)
    assert err.exit_code == 2
    assert err.path == str(path)
    assert err.key == key
    assert str(path) in text
    if key:
        assert f"{path}: {key}: " in text
    else:
        assert text.startswith(f"{path}: ")
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in {text!r}"


# --------------------------------------------------------------------------- valid configs


#: (family, arch) of every base cibuildwheel 4.3.5 pins for an architecture xarch
#: emulates (its resources/pinned_docker_images.cfg, tag 2026.10.26-1).
CIBW_PINNED = [
    *[
        (f, a)
        for a in ("aarch64", "ppc64le", "s390x")
        for f in ("manylinux2014", "manylinux_2_28", "manylinux_2_34", "musllinux_1_2")
    ],
    *[("manylinux_2_31", "armv7l"), ("manylinux_2_35", "armv7l"), ("musllinux_1_2", "armv7l")],
    *[("manylinux_2_39", "riscv64"), ("musllinux_1_2", "riscv64")],
]

SHIPPED = [
    pytest.param(
        "config/images.yaml",
        {
            f"{f}_{a}": {
                "arch": a,
                "platform": ARCHES[a].platform,
                "family": f,
                "tags": ("2026.10.26-1",),
                "base": PinnedBase,
            }
            for f, a in CIBW_PINNED
        },
        id="images",
    ),
    pytest.param(
        "config/offline.yaml",
        {
            "standin-manylinux2014_aarch64": {
                "arch": "aarch64",
                "platform": "linux/arm64/v8",
                "family": "standin-manylinux2014",
                "tags": ("standin",),
                "base": BootstrapBase,
            },
            "standin-manylinux_2_31_armv7l": {
                "arch": "armv7l",
                "platform": "linux/arm/v7",
                "family": "standin-manylinux_2_31",
                "tags": ("standin",),
                "base": BootstrapBase,
            },
        },
        id="offline",
    ),
    pytest.param(
        "config/offline-emulated.yaml",
        {
            f"standin-manylinux_2_28_{a}": {
                "arch": a,
                "platform": ARCHES[a].platform,
                "family": "standin-manylinux_2_28",
                "tags": ("standin",),
                "base": BootstrapBase,
            }
            for a in ("ppc64le", "s390x")
        }
        | {
            "standin-manylinux_2_39_riscv64": {
                "arch": "riscv64",
                "platform": ARCHES["riscv64"].platform,
                "family": "standin-manylinux_2_39",
                "tags": ("standin",),
                "base": BootstrapBase,
            }
        },
        id="offline-emulated",
    ),
]


@pytest.mark.parametrize(("relpath", "expected"), SHIPPED)
def test_shipped_config_targets(relpath: str, expected: dict[str, dict[str, Any]]) -> None:
    cfg = load_config(REPO_ROOT / relpath)
    got = {
        t.name: {
            "arch": t.arch.name,
            "platform": t.arch.platform,
            "family": t.family,
            "tags": t.tags,
            "base": type(t.base),
        }
        for t in cfg.targets
    }
    assert got == expected


@pytest.mark.parametrize(("relpath", "expected"), SHIPPED)
def test_shipped_config_families(relpath: str, expected: dict[str, dict[str, Any]]) -> None:
    cfg = load_config(REPO_ROOT / relpath)
    families: dict[str, list[str]] = {}
    for name, t in expected.items():
        families.setdefault(t["family"], []).append(name)
    assert {f: [t.name for t in ts] for f, ts in cfg.families().items()} == families


@pytest.mark.parametrize(("relpath", "expected"), SHIPPED)
def test_shipped_config_arch_objects_are_the_table_entries(
    relpath: str, expected: dict[str, dict[str, Any]]
) -> None:
    cfg = load_config(REPO_ROOT / relpath)
    for t in cfg.targets:
        assert t.arch is ARCHES[expected[t.name]["arch"]]
        assert t.arch.qemu_binary in cfg.qemu.sha256


@pytest.mark.parametrize("relpath", ["config/images.yaml", "config/offline.yaml"])
def test_shipped_config_registry_and_pins(relpath: str) -> None:
    cfg = load_config(REPO_ROOT / relpath)
    assert cfg.registry.address == "127.0.0.1:5000"
    assert cfg.registry.image_name("fam") == "127.0.0.1:5000/xarch/fam"
    assert cfg.qemu.source.kind == "apt"
    assert all(re.fullmatch(r"[0-9a-f]{64}", v) for v in cfg.qemu.sha256.values())


def test_shipped_images_base_is_pinned_by_digest() -> None:
    targets = {t.name: t for t in load_config(REPO_ROOT / "config/images.yaml").targets}
    assert all(isinstance(t.base, PinnedBase) and t.base.pinned for t in targets.values())
    target = targets["manylinux2014_aarch64"]
    assert isinstance(target.base, PinnedBase)
    assert target.base.pull_ref == (
        "quay.io/pypa/manylinux2014_aarch64"
        "@sha256:ec445e2688785976c727d304f421ae8af5489715c19508526a749716e240541a"
    )


def test_valid_fixture_loads(tmp_path: Path) -> None:
    cfg = load(tmp_path, {})
    assert [t.name for t in cfg.targets] == ["manylinux2014_aarch64", "manylinux2014_ppc64le"]
    assert cfg.targets[1].env == {"AUDITWHEEL_ARCH": "ppc64le"}
    assert cfg.path == tmp_path / "config.yaml"


@pytest.mark.parametrize(
    ("alias", "arch"),
    [("arm64", "aarch64"), ("ppc64el", "ppc64le"), ("armhf", "armv7l"), ("amd64", "x86_64")],
)
def test_arch_alias_accepted(tmp_path: Path, alias: str, arch: str) -> None:
    cfg = load(tmp_path, {"targets[0].arch": alias, "targets[1]": DELETE})
    assert cfg.targets[0].arch is ARCHES[arch]


@pytest.mark.parametrize(
    ("tag", "expected_ref"),
    [
        ("2026.08.15-1", "quay.io/pypa/manylinux2014_ppc64le:2026.08.15-1"),
        (DELETE, "quay.io/pypa/manylinux2014_ppc64le:latest"),
    ],
)
def test_unpinned_base_accepted_with_allow_unpinned(
    tmp_path: Path, tag: Any, expected_ref: str
) -> None:
    cfg = load(
        tmp_path,
        {"targets[1].base.digest": DELETE, "targets[1].base.tag": tag},
        allow_unpinned=True,
    )
    base = cfg.targets[1].base
    assert isinstance(base, PinnedBase)
    assert not base.pinned
    assert base.pull_ref == expected_ref


def test_bootstrap_base_defaults(tmp_path: Path) -> None:
    cfg = load(tmp_path, {"targets[0].base": {"bootstrap": {"image": "bases/standin"}}})
    assert cfg.targets[0].base == BootstrapBase(
        suite="bookworm", layout="manylinux-standin", packages=(), mirror="", image="bases/standin"
    )


@pytest.mark.parametrize(
    ("yaml_value", "expected"),
    [
        # YAML 1.1 would read these as 3.1, 8 and a date: the text written must survive.
        ("3.10", ("3.10",)),
        ("010", ("010",)),
        ("2026-08-15", ("2026-08-15",)),
        ("'quoted'", ("quoted",)),
    ],
)
def test_unquoted_tag_kept_as_written(
    tmp_path: Path, yaml_value: str, expected: tuple[str]
) -> None:
    data = mutate(VALID, {"targets[1]": DELETE})
    text = yaml.safe_dump(data, sort_keys=False).replace("- 2026.08.15-1", f"- {yaml_value}")
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    assert load_config(path).targets[0].tags == expected


def test_qemu_cpu_alias_normalised(tmp_path: Path) -> None:
    cfg = load(tmp_path, {"qemu.cpu": {"arm64": "max"}})
    assert cfg.qemu.cpu == {"aarch64": "max"}


def test_qemu_dir_source_relative_to_config_file(tmp_path: Path) -> None:
    cfg = load(tmp_path, {"qemu.source": {"dir": "emulators"}})
    assert cfg.qemu.source.kind == "dir"
    assert cfg.qemu.source.path == (tmp_path / "emulators").resolve()


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"registry.insecure": True}, True),
        ({"registry.insecure": False}, False),
        ({"registry.insecure": None}, None),
        ({}, None),  # absent: plain HTTP for loopback hosts only
    ],
)
def test_registry_insecure(tmp_path: Path, changes: dict[str, Any], expected: bool | None) -> None:
    assert load(tmp_path, changes).registry.insecure is expected


# --------------------------------------------------------------------------- file errors


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert_names(info.value, path, "", "file not found", "--config")


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("registry:\n  address: 127.0.0.1:5000\n  namespace: a: b\n", 3),
        ("registry:\n  address: [127.0.0.1\nqemu: {}\n", 3),
        ("registry:\n\taddress: x\n", 2),
    ],
    ids=["mapping-in-scalar", "unclosed-flow", "tab"],
)
def test_yaml_syntax_error(tmp_path: Path, text: str, line: int) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert_names(info.value, path, "", "YAML syntax error", f"line {line},")


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [
        ("", "", "the file is empty"),
        ("# only a comment\n", "", "holds no YAML content"),
        ("- a\n- b\n", "", "expected a mapping, found a list"),
        ("just text\n", "", "expected a mapping, found str 'just text'"),
    ],
    ids=["empty", "comments", "list", "scalar"],
)
def test_document_not_a_config(tmp_path: Path, text: str, key: str, fragment: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert_names(info.value, path, key, fragment)


# --------------------------------------------------------------------------- bad content

# (mutations, key path named by the error, fragments of the message)
ERRORS = [
    # unknown keys, with a suggestion
    pytest.param({"registy": {}}, "registy", ["unknown key 'registy'", "'registry'"], id="top"),
    pytest.param(
        {"registry.insecur": True},
        "registry.insecur",
        ["unknown key 'insecur'", "did you mean 'insecure'?"],
        id="registry",
    ),
    pytest.param({"qemu.sha265": {}}, "qemu.sha265", ["did you mean 'sha256'?"], id="qemu"),
    pytest.param(
        {"qemu.source.apt.versoin": "1"},
        "qemu.source.apt.versoin",
        ["did you mean 'version'?"],
        id="qemu-apt",
    ),
    pytest.param(
        {"targets[1].tagz": ["x"]},
        "targets[1].tagz",
        ["unknown key 'tagz'", "did you mean 'tags'?"],
        id="target",
    ),
    pytest.param(
        {"targets[1].base.digets": DIGEST_B},
        "targets[1].base.digets",
        ["unknown key 'digets'", "did you mean 'digest'?"],
        id="base",
    ),
    pytest.param(
        {"targets[0].base": {"bootstrap": {"image": "b/s", "sute": "bookworm"}}},
        "targets[0].base.bootstrap.sute",
        ["did you mean 'suite'?"],
        id="bootstrap",
    ),
    pytest.param(
        {"targets[0].base": {"bootstrap": {"image": "b/s"}, "digest": DIGEST_A}},
        "targets[0].base.digest",
        ["unknown key 'digest'"],
        id="bootstrap-and-digest",
    ),
    pytest.param(
        {"targets[0].zzzz": 1}, "targets[0].zzzz", ["allowed: name, arch, base"], id="no-match"
    ),
    # wrong types
    pytest.param(
        {"targets[1].tags": "2026.08.15-1"},
        "targets[1].tags",
        ["expected a list of strings, found str '2026.08.15-1'"],
        id="tags-string",
    ),
    pytest.param(
        {"targets[0].labels": ["a=b"]},
        "targets[0].labels",
        ["expected a mapping of strings, found a list"],
        id="labels-list",
    ),
    pytest.param(
        {"registry.insecure": "yes"},
        "registry.insecure",
        ["expected true or false, found str 'yes'"],
        id="insecure-string",
    ),
    pytest.param(
        {"targets[1].tags": [{"a": "b"}]},
        "targets[1].tags[0]",
        ["expected a string, found a mapping"],
        id="tag-mapping",
    ),
    pytest.param(
        {"targets[0].labels": {"x": ["y"]}},
        "targets[0].labels.x",
        ["expected a string, found a list"],
        id="label-value-list",
    ),
    pytest.param(
        {"targets[0].env": {"X": True}},
        "targets[0].env.X",
        ["expected a string, found a boolean (True)"],
        id="env-bool",
    ),
    pytest.param(
        {"targets[0].name": ["x"]}, "targets[0].name", ["expected a string"], id="name-list"
    ),
    pytest.param(
        {"registry": ["127.0.0.1:5000"]}, "registry", ["expected a mapping"], id="registry-list"
    ),
    pytest.param(
        {"targets[0].base": None}, "targets[0].base", ["found nothing (null)"], id="base-null"
    ),
    pytest.param(
        {"targets": {"a": 1}}, "targets", ["expected a non-empty list"], id="targets-mapping"
    ),
    pytest.param({"targets": []}, "targets", ["expected a non-empty list"], id="targets-empty"),
    # missing keys
    pytest.param({"registry": DELETE}, "registry", ["missing required section"], id="no-registry"),
    pytest.param({"targets": DELETE}, "targets", ["missing required key"], id="no-targets"),
    pytest.param(
        {"targets[1].name": DELETE}, "targets[1].name", ["missing required key"], id="no-name"
    ),
    pytest.param(
        {"targets[1].base": DELETE}, "targets[1].base", ["missing required section"], id="no-base"
    ),
    pytest.param(
        {"targets[1].tags": []}, "targets[1].tags", ["expected at least one tag"], id="no-tags"
    ),
    pytest.param(
        {"qemu.source.apt.version": DELETE},
        "qemu.source.apt.version",
        ["missing required key"],
        id="no-apt-version",
    ),
    # names and tags
    pytest.param(
        {"targets[0].tags": ["-bad"]},
        "targets[0].tags[0]",
        ["'-bad' is not a valid image tag"],
        id="bad-tag",
    ),
    pytest.param(
        {"targets[0].family": "ManyLinux"},
        "targets[0].family",
        ["'ManyLinux' is not a valid repository name"],
        id="bad-family",
    ),
    pytest.param(
        {"targets[0].name": "has space"},
        "targets[0].name",
        ["'has space' is not a valid name"],
        id="bad-name",
    ),
    pytest.param(
        {"registry.address": "http://127.0.0.1:5000"},
        "registry.address",
        ["expected host[:port]"],
        id="address-url",
    ),
    pytest.param(
        {"registry.namespace": "Xarch"},
        "registry.namespace",
        ["not a valid repository path"],
        id="bad-namespace",
    ),
    # architectures
    pytest.param(
        {"targets[0].arch": "aarch46"},
        "targets[0].arch",
        ["unknown architecture 'aarch46'", "Did you mean 'aarch64'?"],
        id="arch-typo",
    ),
    pytest.param(
        {"targets[1].arch": "sparc"},
        "targets[1].arch",
        ["unknown architecture 'sparc'", "known: aarch64"],
        id="arch-unknown",
    ),
    pytest.param(
        {"qemu.cpu": {"aarch46": "max"}},
        "qemu.cpu.aarch46",
        ["Did you mean 'aarch64'?"],
        id="cpu-arch-typo",
    ),
    # base pinning
    pytest.param(
        {"targets[1].base.digest": DELETE},
        "targets[1].base.digest",
        ["not pinned by digest", "--allow-unpinned"],
        id="unpinned",
    ),
    pytest.param(
        {"targets[1].base.digest": "sha256:XYZ"},
        "targets[1].base.digest",
        ["malformed digest 'sha256:XYZ'", "64 lowercase hex digits"],
        id="digest-short",
    ),
    pytest.param(
        {"targets[1].base.digest": "sha256:" + "AB" * 32},
        "targets[1].base.digest",
        ["malformed digest", "lowercase"],
        id="digest-uppercase",
    ),
    pytest.param(
        {"targets[1].base.digest": "ab" * 32},
        "targets[1].base.digest",
        ["malformed digest", "sha256: followed by"],
        id="digest-no-prefix",
    ),
    pytest.param(
        {"targets[1].base.digest": "sha512:" + "ab" * 32},
        "targets[1].base.digest",
        ["malformed digest"],
        id="digest-sha512",
    ),
    pytest.param(
        {"targets[1].base.image": f"quay.io/pypa/manylinux2014_ppc64le@{DIGEST_B}"},
        "targets[1].base.image",
        ["contains a digest", "the digest in base.digest"],
        id="digest-in-image",
    ),
    pytest.param(
        {"targets[1].base.image": "quay.io/pypa/manylinux2014_ppc64le:2026.08.15-1"},
        "targets[1].base.image",
        ["contains a tag", "the tag in base.tag"],
        id="tag-in-image",
    ),
    pytest.param(
        {"targets[1].base.image": "debian:bookworm"},
        "targets[1].base.image",
        ["contains a tag"],
        id="tag-in-short-image",
    ),
    pytest.param(
        {"targets[1].base.image": "Quay.io/Pypa/X"},
        "targets[1].base.image",
        ["is not a valid image name"],
        id="image-uppercase",
    ),
    pytest.param(
        {"targets[1].base.tag": "bad tag"},
        "targets[1].base.tag",
        ["'bad tag' is not a valid image tag"],
        id="base-tag",
    ),
    # bootstrap bases
    pytest.param(
        {"targets[0].base": {"bootstrap": {"image": "b/s", "layout": "centos"}}},
        "targets[0].base.bootstrap.layout",
        ["unknown layout 'centos'", "manylinux-standin", "debian"],
        id="bootstrap-layout",
    ),
    pytest.param(
        {"targets[0].base": {"bootstrap": {"suite": "bookworm"}}},
        "targets[0].base.bootstrap.image",
        ["missing required key"],
        id="bootstrap-no-image",
    ),
    pytest.param(
        {"targets[0].base": {"bootstrap": {"image": "Bases/X"}}},
        "targets[0].base.bootstrap.image",
        ["not a valid repository path"],
        id="bootstrap-bad-image",
    ),
    # across targets
    pytest.param(
        {"targets[1].name": "manylinux2014_aarch64"},
        "targets[1].name",
        ["duplicate target name 'manylinux2014_aarch64'", "also targets[0]"],
        id="duplicate-name",
    ),
    pytest.param(
        {"targets[1].arch": "aarch64"},
        "targets[1].family",
        ["family 'manylinux2014' already has an aarch64 target (targets[0])"],
        id="family-same-arch",
    ),
    pytest.param(
        {"targets[1].arch": "arm64"},
        "targets[1].family",
        ["already has an aarch64 target (targets[0])"],
        id="family-same-arch-alias",
    ),
    pytest.param(
        {"targets[1].tags": ["2026.08.15-1", "latest"]},
        "targets[1].tags",
        ["differ from targets[0].tags", "'manylinux2014'"],
        id="family-tags-differ",
    ),
    # the emulator pin
    pytest.param(
        {"qemu.sha256.qemu-ppc64le-static": DELETE},
        "qemu.sha256",
        ["no sha256 pinned for qemu-ppc64le-static", "'manylinux2014_ppc64le'", "targets[1]"],
        id="arch-not-pinned",
    ),
    pytest.param({"qemu.sha256": DELETE}, "qemu.sha256", ["missing"], id="no-sha256"),
    pytest.param(
        {"qemu.sha256.qemu-aarch64-static": "XYZ"},
        "qemu.sha256.qemu-aarch64-static",
        ["expected 64 lowercase hex digits, found 'XYZ'"],
        id="sha256-short",
    ),
    pytest.param(
        {"qemu.sha256.qemu-aarch64-static": "AB" * 32},
        "qemu.sha256.qemu-aarch64-static",
        ["expected 64 lowercase hex digits"],
        id="sha256-uppercase",
    ),
    pytest.param(
        {"qemu.sha256.qemu-aarch64-static": "sha256:" + "ab" * 32},
        "qemu.sha256.qemu-aarch64-static",
        ["expected 64 lowercase hex digits"],
        id="sha256-prefixed",
    ),
    pytest.param(
        {"qemu.sha256.qemu-aarch64": "ab" * 32},
        "qemu.sha256.qemu-aarch64",
        ["expected keys like qemu-aarch64-static, found 'qemu-aarch64'"],
        id="sha256-bad-name",
    ),
    pytest.param(
        {"qemu.source.dir": "/opt/qemu"},
        "qemu.source",
        ["give exactly one of: apt, dir, url", "found: apt, dir"],
        id="source-two-kinds",
    ),
    pytest.param(
        {"qemu.source": {}},
        "qemu.source",
        ["give exactly one of: apt, dir, url", "found: none"],
        id="source-none",
    ),
    pytest.param(
        {"qemu.source": {"url": "ftp://example.org/{binary}"}},
        "qemu.source.url",
        ["expected an http(s):// or file:// URL"],
        id="source-url-scheme",
    ),
    pytest.param(
        {"qemu.source.apt.arch": "arm7"},
        "qemu.source.apt.arch",
        ["unknown Debian architecture 'arm7'"],
        id="source-apt-arch",
    ),
    pytest.param(
        {"qemu.version": DELETE}, "qemu.version", ["missing required key"], id="no-qemu-version"
    ),
]


@pytest.mark.parametrize(("changes", "key", "fragments"), ERRORS)
def test_config_error(
    tmp_path: Path, changes: dict[str, Any], key: str, fragments: list[str]
) -> None:
    err = config_error(tmp_path, changes)
    assert_names(err, tmp_path / "config.yaml", key, *fragments)


def test_pin_in_wrong_place_refused_even_with_allow_unpinned(tmp_path: Path) -> None:
    err = config_error(
        tmp_path,
        {
            "targets[1].base.image": f"quay.io/pypa/manylinux2014_ppc64le@{DIGEST_B}",
            "targets[1].base.digest": DELETE,
        },
        allow_unpinned=True,
    )
    assert_names(err, tmp_path / "config.yaml", "targets[1].base.image", "contains a digest")


# --------------------------------------------------------------------------- Config.select


@pytest.fixture
def three_targets(tmp_path: Path) -> Config:
    third = mutate(VALID["targets"][0], {"name": "solo", "family": "other"})
    return load(tmp_path, {"targets[2]": third})


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (None, ["manylinux2014_aarch64", "manylinux2014_ppc64le", "solo"]),
        ([], ["manylinux2014_aarch64", "manylinux2014_ppc64le", "solo"]),
        (["solo"], ["solo"]),
        # config order, not the order asked for; each once
        (["solo", "manylinux2014_aarch64"], ["manylinux2014_aarch64", "solo"]),
        (["solo", "solo"], ["solo"]),
    ],
)
def test_select_order(three_targets: Config, names: list[str] | None, expected: list[str]) -> None:
    assert [t.name for t in three_targets.select(names)] == expected


@pytest.mark.parametrize(
    ("names", "fragments"),
    [
        (["manylinux2014_aarch46"], ["no target named 'manylinux2014_aarch46'", "Did you mean"]),
        (["sol"], ["no target named 'sol'", "Did you mean 'solo'?"]),
        (["solo", "nosuch"], ["no target named 'nosuch'", "targets: manylinux2014_aarch64"]),
    ],
)
def test_select_unknown_target(
    three_targets: Config, names: list[str], fragments: list[str]
) -> None:
    with pytest.raises(BadInput) as info:
        three_targets.select(names)
    text = str(info.value)
    assert info.value.exit_code == 2
    assert str(three_targets.path) in text
    for fragment in fragments:
        assert fragment in text


def test_families_groups_in_config_order(three_targets: Config) -> None:
    assert {f: [t.name for t in ts] for f, ts in three_targets.families().items()} == {
        "manylinux2014": ["manylinux2014_aarch64", "manylinux2014_ppc64le"],
        "other": ["solo"],
    }
