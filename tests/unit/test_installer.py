"""The binfmt installer image (xarch.installer) without an engine: the generated
entrypoint script, the ``installer:`` config section, the inputs that decide a
rebuild, the reproducible layer writer, and the private apt state for foreign
architectures (with a fake apt-get)."""

from __future__ import annotations

import copy
import hashlib
import os
import re
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from xarch.errors import BadInput, BuildError, ConfigError, FetchError
from xarch.host import qemu
from xarch.host.binfmt import escape_bytes
from xarch.images import installer
from xarch.images.resources import resource_text
from xarch.model.arch import ARCHES, Arch, get_arch
from xarch.model.config import INSTALLER_TARGET, Config, QemuSource, load_config
from xarch.oci import archive as imagearchive

REPO_ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ["config/images.yaml", "config/offline.yaml"]


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# ------------------------------------------------------------------ the generated script

ASSIGN_RE = re.compile(r"A_(MAGIC|MASK)='([^']*)'")


def _assignments(script: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {"MAGIC": [], "MASK": []}
    for kind, value in ASSIGN_RE.findall(script):
        out[kind].append(value)
    return out


@pytest.mark.parametrize("relpath", SHIPPED)
def test_script_carries_exactly_the_tables_magic_and_mask(relpath: str) -> None:
    cfg = load_config(REPO_ROOT / relpath)
    assert cfg.installer is not None
    for host in cfg.installer.hosts:
        script = installer.render_entrypoint(host.arch, host.emulates, cfg.qemu.version)
        found = _assignments(script)
        # One magic and one mask per carried architecture, plus the variant's own (for
        # the check that the container does not run emulated); nothing else.
        described = [*host.emulates, host.arch]
        assert sorted(found["MAGIC"]) == sorted(escape_bytes(a.magic) for a in described)
        assert sorted(found["MASK"]) == sorted(escape_bytes(a.mask) for a in described)
        for a in described:
            magic, mask = escape_bytes(a.magic), escape_bytes(a.mask)
            assert re.fullmatch(r"(\\x[0-9a-f]{2})+", magic)
            assert bytes.fromhex(magic.replace("\\x", "")) == a.magic
            assert bytes.fromhex(mask.replace("\\x", "")) == a.mask
            assert f"A_ENTRY={a.binfmt_name} A_INTERP={a.emulator_path}" in script
        # Every \xNN in the script is inside one of those assignments.
        outside = ASSIGN_RE.sub("", script)
        assert not re.search(r"\\x[0-9a-f]{2}", outside)
        assert f"ARCHES='{' '.join(a.name for a in host.emulates)}'" in script
        assert f"VARIANT={host.arch.name}\n" in script
        assert not re.search(r"@[A-Z_]+@", script)  # every placeholder filled


def test_template_spells_no_magic() -> None:
    template = resource_text(installer.TEMPLATE)
    assert not re.search(r"\\x[0-9a-f]{2}", template)
    for a in ARCHES.values():
        assert a.magic.hex() not in template


def test_script_writes_the_line_with_printf_percent_s_and_busybox() -> None:
    aarch64 = get_arch("aarch64")
    script = installer.render_entrypoint(get_arch("x86_64"), [aarch64], "7.2")
    assert script.startswith("#!/bin/busybox sh\n")
    assert 'printf \'%s\' "$2" >"$1"' in script
    assert 'line=":$A_ENTRY:M::$A_MAGIC:$A_MASK:$A_INTERP:$WANT_FLAGS"' in script
    # The canonical names include every alias of the table.
    assert "aarch64|arm64) CANON=aarch64 ;;" in script
    assert "armv7l|armhf|arm) CANON=armv7l ;;" in script


def test_aliases_come_from_get_arch() -> None:
    assert installer.aliases(get_arch("aarch64")) == ["arm64"]
    assert installer.aliases(get_arch("armv7l")) == ["armhf", "arm"]
    assert installer.aliases(get_arch("s390x")) == []
    for a in ARCHES.values():
        assert all(get_arch(alias) is a for alias in installer.aliases(a))


def test_script_refuses_values_that_could_break_it() -> None:
    with pytest.raises(BuildError, match="cannot be written"):
        installer.render_entrypoint(get_arch("x86_64"), [get_arch("aarch64")], "7.2'; rm -rf /")


# ------------------------------------------------------------------------ the config

BASE: dict[str, Any] = {
    "registry": {"address": "127.0.0.1:5000", "namespace": "xarch"},
    "qemu": {
        "version": "7.2",
        "source": {"apt": {"package": "qemu-user-static", "version": "1:7.2"}},
        "sha256": {a.qemu_binary: _sha(a.qemu_binary) for a in ARCHES.values()},
    },
    "targets": [
        {
            "name": "t-aarch64",
            "arch": "aarch64",
            "base": {"image": "example.org/base", "digest": "sha256:" + "a" * 64},
            "family": "fam",
            "tags": ["1"],
        }
    ],
    "installer": {
        "image": "binfmt",
        "tags": ["qemu-7.2"],
        "busybox": {
            "package": "busybox-static",
            "version": "1:1.35.0-4+deb12u1+b1",
            "sha256": {"amd64": _sha("bb-amd64"), "arm64": _sha("bb-arm64")},
        },
        "hosts": {
            "x86_64": {"emulates": ["aarch64", "ppc64le"]},
            "aarch64": {
                "emulates": ["x86_64"],
                "sha256": {"qemu-x86_64-static": _sha("x86_64 on arm64")},
            },
        },
    },
}


def _load(tmp_path: Path, doc: dict[str, Any]) -> Config:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return load_config(path)


def _with(changes: dict[str, Any]) -> dict[str, Any]:
    """BASE with installer keys set (dotted paths below installer; None deletes)."""
    doc = copy.deepcopy(BASE)
    for path, value in changes.items():
        node: Any = doc
        *parents, last = path.split(".")
        for p in parents:
            node = node[p]
        if value is None:
            del node[last]
        else:
            node[last] = value
    return doc


def test_installer_section_parses(tmp_path: Path) -> None:
    cfg = _load(tmp_path, BASE)
    inst = cfg.installer
    assert inst is not None
    assert (inst.image, inst.tags) == ("binfmt", ("qemu-7.2",))
    assert inst.busybox.sha256 == {"x86_64": _sha("bb-amd64"), "aarch64": _sha("bb-arm64")}
    x86, arm = inst.hosts
    assert x86.arch is ARCHES["x86_64"] and arm.arch is ARCHES["aarch64"]
    assert [a.name for a in x86.emulates] == ["aarch64", "ppc64le"]
    # The amd64 host takes its sums from qemu.sha256; the arm64 host names its own.
    assert x86.sha256 == {b: _sha(b) for b in ("qemu-aarch64-static", "qemu-ppc64le-static")}
    assert arm.sha256 == {"qemu-x86_64-static": _sha("x86_64 on arm64")}
    assert inst.host(ARCHES["aarch64"]) is arm
    assert inst.host(ARCHES["s390x"]) is None


def test_installer_section_is_optional(tmp_path: Path) -> None:
    cfg = _load(tmp_path, _with({"installer": None}))
    assert cfg.installer is None
    assert not cfg.wants_installer(None)


def test_installer_defaults(tmp_path: Path) -> None:
    cfg = _load(tmp_path, _with({"installer.image": None, "installer.busybox.package": None}))
    assert cfg.installer is not None
    assert cfg.installer.image == "binfmt"
    assert cfg.installer.busybox.package == "busybox-static"


INSTALLER_ERRORS = [
    pytest.param(
        {"installer.tag": ["x"]},
        "installer.tag",
        ["unknown key 'tag'", "did you mean 'tags'?"],
        id="unknown-key",
    ),
    pytest.param(
        {"installer.hosts.x86_64.emulate": ["aarch64"]},
        "installer.hosts.x86_64.emulate",
        ["unknown key 'emulate'", "did you mean 'emulates'?"],
        id="unknown-host-key",
    ),
    pytest.param(
        {"installer.busybox.versoin": "1"},
        "installer.busybox.versoin",
        ["unknown key 'versoin'", "did you mean 'version'?"],
        id="unknown-busybox-key",
    ),
    pytest.param({"installer.tags": []}, "installer.tags", ["at least one tag"], id="no-tags"),
    pytest.param(
        {"installer.tags": ["bad tag"]}, "installer.tags[0]", ["not a valid image tag"], id="tag"
    ),
    pytest.param(
        {"installer.image": "Binfmt"},
        "installer.image",
        ["not a valid repository path"],
        id="image",
    ),
    pytest.param(
        {"installer.image": "fam"}, "installer.image", ["also the family"], id="image-is-family"
    ),
    pytest.param({"installer.hosts": {}}, "installer.hosts", ["expected a mapping"], id="hosts"),
    pytest.param(
        {"installer.hosts.sparc64": {"emulates": ["aarch64"]}},
        "installer.hosts.sparc64",
        ["unknown architecture 'sparc64'"],
        id="unknown-host",
    ),
    pytest.param(
        {"installer.hosts.amd64": {"emulates": ["s390x"]}},
        "installer.hosts.amd64",
        ["x86_64 is listed twice"],
        id="host-twice-by-alias",
    ),
    pytest.param(
        {"installer.hosts.x86_64.emulates": ["aarch64", "x86_64"]},
        "installer.hosts.x86_64.emulates[1]",
        ["never emulates its own architecture"],
        id="emulates-itself",
    ),
    pytest.param(
        {"installer.hosts.x86_64.emulates": ["aarch46"]},
        "installer.hosts.x86_64.emulates[0]",
        ["unknown architecture 'aarch46'", "Did you mean 'aarch64'?"],
        id="emulates-unknown",
    ),
    pytest.param(
        {"installer.hosts.x86_64.emulates": ["arm64", "aarch64"]},
        "installer.hosts.x86_64.emulates[1]",
        ["aarch64 is listed twice"],
        id="emulates-twice",
    ),
    pytest.param(
        {"installer.hosts.x86_64.emulates": []},
        "installer.hosts.x86_64.emulates",
        ["at least one architecture"],
        id="emulates-nothing",
    ),
    pytest.param(
        {"installer.hosts.aarch64.sha256": None},
        "installer.hosts.aarch64.sha256",
        ["no sha256 pinned for qemu-x86_64-static of the arm64 package", "amd64 package"],
        id="foreign-host-without-sha256",
    ),
    pytest.param(
        {"installer.hosts.aarch64.sha256": {"qemu-x86_64-static": "abc"}},
        "installer.hosts.aarch64.sha256.qemu-x86_64-static",
        ["expected 64 lowercase hex digits"],
        id="bad-sha256",
    ),
    pytest.param(
        {"installer.hosts.aarch64.sha256": {"qemu-s390x-static": "0" * 64}},
        "installer.hosts.aarch64.sha256.qemu-s390x-static",
        ["not carried by this host's variant"],
        id="sha256-not-carried",
    ),
    pytest.param(
        {"installer.busybox.sha256": {"x86_64": _sha("bb")}},
        "installer.busybox.sha256",
        ["no sha256 pinned for the aarch64 (arm64) busybox"],
        id="busybox-without-sha256",
    ),
    pytest.param(
        {"installer.busybox.sha256": {"vax": _sha("bb")}},
        "installer.busybox.sha256.vax",
        ["unknown architecture 'vax'"],
        id="busybox-unknown-arch",
    ),
    pytest.param(
        {"installer.busybox.version": None},
        "installer.busybox.version",
        ["missing required key"],
        id="busybox-version",
    ),
    pytest.param(
        {"qemu.source": {"dir": "/opt/qemu"}},
        "installer.hosts.aarch64",
        ["needs an apt source"],
        id="foreign-host-without-apt",
    ),
    pytest.param(
        {"targets": [dict(BASE["targets"][0], name=INSTALLER_TARGET)]},
        "targets[0].name",
        ["reserved for the installer image"],
        id="reserved-target-name",
    ),
]


@pytest.mark.parametrize(("changes", "key", "fragments"), INSTALLER_ERRORS)
def test_installer_config_errors(
    tmp_path: Path, changes: dict[str, Any], key: str, fragments: list[str]
) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, _with(changes))
    err = info.value
    text = str(err)
    assert err.exit_code == 2
    assert err.key == key, text
    assert f"{tmp_path / 'config.yaml'}: {key}: " in text
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in {text!r}"


def test_select_and_the_installer_target(tmp_path: Path) -> None:
    cfg = _load(tmp_path, BASE)
    assert cfg.select([INSTALLER_TARGET]) == ()
    assert [t.name for t in cfg.select([INSTALLER_TARGET, "t-aarch64"])] == ["t-aarch64"]
    assert cfg.wants_installer(None) and cfg.wants_installer([])
    assert cfg.wants_installer([INSTALLER_TARGET])
    assert not cfg.wants_installer(["t-aarch64"])
    with pytest.raises(BadInput, match="targets: t-aarch64, binfmt-installer"):
        cfg.select(["nosuch"])
    with pytest.raises(BadInput, match="Did you mean 'binfmt-installer'"):
        cfg.select(["binfmt-instaler"])
    bare = _load(tmp_path, _with({"installer": None}))
    with pytest.raises(BadInput, match="no `installer:` section") as info:
        bare.select([INSTALLER_TARGET])
    assert info.value.exit_code == 2


@pytest.mark.parametrize("relpath", SHIPPED)
def test_shipped_configs_ship_the_installer(relpath: str) -> None:
    cfg = load_config(REPO_ROOT / relpath)
    inst = cfg.installer
    assert inst is not None
    assert cfg.registry.image_name(inst.image) == "127.0.0.1:5000/xarch/binfmt"
    assert [h.arch.name for h in inst.hosts] == ["x86_64", "aarch64"]
    x86, arm = inst.hosts
    assert [a.qemu_binary for a in x86.emulates] == [
        "qemu-aarch64-static",
        "qemu-ppc64le-static",
        "qemu-s390x-static",
        "qemu-arm-static",
        "qemu-riscv64-static",
    ]
    assert [a.name for a in arm.emulates] == ["x86_64"]
    assert inst.busybox.version == "1:1.35.0-4+deb12u1+b1"
    assert set(inst.busybox.sha256) == {"x86_64", "aarch64"}
    # Both profiles pin the same binaries: the amd64 ones agree with images.yaml's qemu pin.
    images = load_config(REPO_ROOT / "config/images.yaml")
    for binary, value in x86.sha256.items():
        assert images.qemu.sha256[binary] == value
    assert [installer.variant_refs(cfg, h) for h in inst.hosts] == [
        ["127.0.0.1:5000/xarch/binfmt:qemu-7.2-x86_64"],
        ["127.0.0.1:5000/xarch/binfmt:qemu-7.2-aarch64"],
    ]


# ------------------------------------------------------------------ inputs and labels


def test_plan_labels_and_inputs_hash(tmp_path: Path) -> None:
    cfg = _load(tmp_path, BASE)
    assert cfg.installer is not None
    x86, arm = cfg.installer.hosts
    p = installer.plan(cfg, arm)
    assert p.labels["io.xarch.qemu.sha256.qemu-x86_64-static"] == _sha("x86_64 on arm64")
    assert p.labels["io.xarch.qemu.version"] == "7.2"
    assert p.labels["io.xarch.busybox.sha256"] == _sha("bb-arm64")
    assert p.labels["io.xarch.installer.emulates"] == "x86_64"
    assert p.inputs_hash == installer.plan(cfg, arm).inputs_hash  # deterministic
    assert p.inputs_hash != installer.plan(cfg, x86).inputs_hash
    changed = _load(
        tmp_path,
        _with({"installer.hosts.aarch64.sha256": {"qemu-x86_64-static": _sha("new")}}),
    )
    assert changed.installer is not None
    assert installer.plan(changed, changed.installer.hosts[1]).inputs_hash != p.inputs_hash
    paths = [f[0] for f in p.files]
    assert paths == ["/bin/busybox", "/bin/sh", "/usr/bin/xarch-binfmt", arm_path(arm.emulates)]


def arm_path(emulates: tuple[Arch, ...]) -> str:
    (only,) = emulates
    return only.emulator_path


def test_qemu_pin_of_a_foreign_host_names_its_debian_arch(tmp_path: Path) -> None:
    cfg = _load(tmp_path, BASE)
    assert cfg.installer is not None
    for host in cfg.installer.hosts:
        pin = installer.qemu_pin(cfg, host)
        assert pin.source.package == "qemu-user-static"
        assert (pin.source.debian_arch or qemu.native_debian_arch()) == host.arch.debian_arch
        assert dict(pin.sha256) == dict(host.sha256)


# ------------------------------------------------------------------ the layer writer


def test_layer_is_reproducible_and_complete(tmp_path: Path) -> None:
    src = tmp_path / "bin"
    src.write_bytes(b"\x7fELF not really")
    entries = [
        imagearchive.LayerEntry(path="usr/bin/tool", source=src),
        imagearchive.LayerEntry(path="bin/sh", kind="symlink", link="busybox"),
        imagearchive.LayerEntry(path="etc/note", data=b"hello\n", mode=0o644),
    ]
    one = imagearchive.write_layer(entries, tmp_path / "a.tar")
    os.utime(src, (1, 1))
    two = imagearchive.write_layer(list(reversed(entries)), tmp_path / "b.tar")
    assert one == two
    assert one == "sha256:" + hashlib.sha256((tmp_path / "a.tar").read_bytes()).hexdigest()
    with tarfile.open(tmp_path / "a.tar") as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert list(members) == sorted(members)
        assert set(members) == {
            "bin",
            "bin/sh",
            "etc",
            "etc/note",
            "usr",
            "usr/bin",
            "usr/bin/tool",
        }
        assert members["bin/sh"].issym() and members["bin/sh"].linkname == "busybox"
        assert members["usr"].isdir() and members["usr"].mode == 0o755
        assert members["usr/bin/tool"].mode == 0o755 and members["etc/note"].mode == 0o644
        assert all(m.uid == 0 and m.mtime == 0 for m in members.values())
        f = tar.extractfile("usr/bin/tool")
        assert f is not None and f.read() == b"\x7fELF not really"


def test_platform_config_is_the_arch_not_the_host() -> None:
    cfg = imagearchive.platform_config(
        get_arch("aarch64"), config={"Cmd": ["x"]}, diff_ids=["sha256:" + "0" * 64], history=[]
    )
    assert (cfg["os"], cfg["architecture"], cfg["variant"]) == ("linux", "arm64", "v8")
    assert "variant" not in imagearchive.platform_config(
        get_arch("x86_64"), config={}, diff_ids=[], history=[]
    )


# ---------------------------------------------------- the private apt state (fake apt-get)


def test_foreign_arch_uses_a_private_apt_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    foreign = "riscv64" if qemu.native_debian_arch() != "riscv64" else "s390x"
    monkeypatch.setenv("XARCH_CACHE_DIR", str(tmp_path / "cache"))
    bindir = tmp_path / "fakebin"
    bindir.mkdir()
    calls = tmp_path / "calls"
    fake = bindir / "apt-get"
    fake.write_text(
        f'#!/bin/sh\nprintf "%s\\n" "$*" >> {calls}\n'
        'case "$*" in *download*) echo "E: Can\'t find a source" >&2; exit 100;; esac\n'
        "exit 0\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    source = QemuSource(kind="apt", package="busybox-static", version="1:1", debian_arch=foreign)
    with pytest.raises(FetchError, match=f"private {foreign} apt state was refreshed") as info:
        qemu.ensure_binaries(source, {"busybox": ("0" * 64, "k")}, tmp_path / "out", log=print)
    assert "Can't find a source" in str(info.value)
    lines = calls.read_text().splitlines()
    # update (no lists yet), download, update (refresh), download again
    assert [ln.split()[-1] if "update" in ln else "download" for ln in lines] == [
        "update",
        "download",
        "update",
        "download",
    ]
    state = qemu.apt_state_dir(foreign)
    for ln in lines:
        assert f"APT::Architecture={foreign}" in ln
        assert f"Dir::State::Lists={state / 'lists'}" in ln
        assert f"Dir::State::status={state / 'status'}" in ln
    assert f"busybox-static:{foreign}=1:1" in lines[1]
    assert (state / "status").read_text() == ""
    assert not (tmp_path / "out" / "busybox").exists()
