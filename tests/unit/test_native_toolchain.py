"""A target's ``accelerate:`` section (xarch.model.config) and the pure parts of the
native toolchain preparation (xarch.images.native): pins verified by sha256 before any
build, .deb unpacking, the Dockerfile lines and labels."""

from __future__ import annotations

import hashlib
import io
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_config import assert_names, config_error, load
from xarch.errors import BadInput, ChecksumMismatch
from xarch.images import native
from xarch.model.arch import get_arch
from xarch.model.config import Accelerate, DebPin, Target

SHA_A = "a" * 64
ACCELERATE: dict[str, Any] = {
    "toolchain": "debian-bullseye-gcc10-aarch64",
    "gcc": "10.2.1",
    "binutils": "2.35.2",
    "suite": "bullseye",
    "packages": [
        {"package": "cpp-10-aarch64-linux-gnu", "version": "10.2.1-6cross1", "sha256": SHA_A},
        {"package": "libgmp10", "version": "2:6.2.1+dfsg-1+deb11u1", "sha256": SHA_A},
    ],
}


# ------------------------------------------------------------------------------ config


def test_accelerate_section_loads_with_defaults(tmp_path: Path) -> None:
    cfg = load(tmp_path, {"targets[0].accelerate": ACCELERATE})
    acc = cfg.targets[0].accelerate
    assert acc == Accelerate(
        enabled=True,
        toolchain="debian-bullseye-gcc10-aarch64",
        gcc_version="10.2.1",
        binutils_version="2.35.2",
        leaves=("cc1", "cc1plus", "as", "ld"),  # the linker too, by default
        packages=(
            DebPin(package="cpp-10-aarch64-linux-gnu", version="10.2.1-6cross1", sha256=SHA_A),
            DebPin(package="libgmp10", version="2:6.2.1+dfsg-1+deb11u1", sha256=SHA_A),
        ),
        suite="bullseye",
        mirror="http://deb.debian.org/debian",
        directory="",
    )
    assert cfg.targets[1].accelerate is None


def test_accelerate_can_be_turned_off(tmp_path: Path) -> None:
    cfg = load(tmp_path, {"targets[0].accelerate": dict(ACCELERATE, enabled=False)})
    assert cfg.targets[0].accelerate is not None
    assert cfg.targets[0].accelerate.enabled is False


def test_a_package_may_come_from_another_suite(tmp_path: Path) -> None:
    """A host-side tool (trixie's riscv64 target relocates with bookworm's patchelf)."""
    pe = {"package": "patchelf", "version": "0.14.3-1+b1", "suite": "bookworm", "sha256": SHA_A}
    acc = dict(ACCELERATE, packages=[*ACCELERATE["packages"], pe])
    cfg = load(tmp_path, {"targets[0].accelerate": acc})
    got = cfg.targets[0].accelerate
    assert got is not None
    assert got.packages[-1] == DebPin(
        package="patchelf", version="0.14.3-1+b1", sha256=SHA_A, suite="bookworm"
    )
    assert got.packages[0].suite == ""  # the section's own suite


def test_directory_is_relative_to_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "debs").mkdir()
    acc = dict(ACCELERATE, directory="debs")
    del acc["suite"]
    cfg = load(tmp_path, {"targets[0].accelerate": acc})
    assert cfg.targets[0].accelerate is not None
    assert cfg.targets[0].accelerate.directory == str(tmp_path / "debs")


GMP = {"package": "libgmp10", "version": "1", "sha256": SHA_A}
ZLIB = {"package": "zlib1g", "version": "1", "sha256": SHA_A}
ERRORS: list[tuple[dict[str, Any], str, tuple[str, ...]]] = [
    ({"gcc": "ten"}, "gcc", ("'ten' is not a version",)),
    ({"leaves": ["cc1", "cc1plu"]}, "leaves[1]", ("unknown leaf 'cc1plu'", "'cc1plus'")),
    ({"packages": []}, "packages", ("expected a non-empty list",)),
    ({"packages": [dict(GMP, sha256="abc")]}, "packages[0].sha256", ("malformed sha256",)),
    ({"packages": [dict(GMP, sha=1)]}, "packages[0].sha", ("unknown key 'sha'",)),
    ({"packages": [ZLIB, ZLIB]}, "packages[1].package", ("listed twice",)),
    ({"packages": [dict(GMP, suite="Book worm")]}, "packages[0].suite", ("not a Debian suite",)),
    ({"directory": "nowhere"}, "directory", ("is not a directory",)),
    ({"suite": None}, "suite", ("missing required key",)),
    ({"mirror": "ftp://x"}, "mirror", ("not an http(s) URL",)),
    ({"enable": True}, "enable", ("unknown key 'enable'", "did you mean 'enabled'")),
]


@pytest.mark.parametrize(("change", "key", "fragments"), ERRORS)
def test_accelerate_errors_name_the_key(
    tmp_path: Path, change: dict[str, Any], key: str, fragments: tuple[str, ...]
) -> None:
    acc = {k: v for k, v in dict(ACCELERATE, **change).items() if v is not None}
    err = config_error(tmp_path, {"targets[0].accelerate": acc})
    assert err.exit_code == 2
    assert_names(err, tmp_path / "config.yaml", f"targets[0].accelerate.{key}", *fragments)


# ------------------------------------------------------------------------------- pins


def _ar(members: dict[str, bytes]) -> bytes:
    out = b"!<arch>\n"
    for name, body in members.items():
        header = f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(body):<10}`\n"
        out += header.encode() + body + (b"\n" if len(body) % 2 else b"")
    return out


def make_deb(path: Path, files: dict[str, bytes]) -> str:
    """A real (minimal) .deb at ``path``; returns its sha256."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz") as tar:
        for name, body in files.items():
            info = tarfile.TarInfo("./" + name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    path.write_bytes(
        _ar({"debian-binary": b"2.0\n", "control.tar.xz": b"", "data.tar.xz": buf.getvalue()})
    )
    return hashlib.sha256(path.read_bytes()).hexdigest()


def accelerate(packages: tuple[DebPin, ...], directory: Path) -> Accelerate:
    return Accelerate(
        enabled=True,
        toolchain="tc",
        gcc_version="10.2.1",
        binutils_version="2.35.2",
        leaves=("cc1", "as"),
        packages=packages,
        suite="",
        mirror="http://deb.debian.org/debian",
        directory=str(directory),
    )


def test_deb_filename_spells_the_epoch_as_apt_does() -> None:
    pin = DebPin(package="libgmp10", version="2:6.2.1+dfsg-1+deb11u1", sha256=SHA_A)
    assert native.deb_filename(pin) == "libgmp10_2%3a6.2.1+dfsg-1+deb11u1_amd64.deb"


def test_verified_debs_unpack(tmp_path: Path) -> None:
    sha = make_deb(
        tmp_path / "zlib1g_1.2_amd64.deb", {"lib/libz.so.1": b"ELF?", "usr/share/x": b"odd"}
    )
    acc = accelerate((DebPin(package="zlib1g", version="1.2", sha256=sha),), tmp_path)
    debs = native.fetch_debs(acc, tmp_path / "cache")
    assert debs == {"zlib1g": tmp_path / "zlib1g_1.2_amd64.deb"}
    native.unpack_debs(debs, tmp_path / "tree")
    assert (tmp_path / "tree/lib/libz.so.1").read_bytes() == b"ELF?"
    assert (tmp_path / "tree/usr/share/x").read_bytes() == b"odd"


def test_a_wrong_sha256_is_refused_before_anything_is_built(tmp_path: Path) -> None:
    make_deb(tmp_path / "zlib1g_1.2_amd64.deb", {"lib/libz.so.1": b"ELF?"})
    acc = accelerate((DebPin(package="zlib1g", version="1.2", sha256=SHA_A),), tmp_path)
    with pytest.raises(ChecksumMismatch) as info:
        native.verify_debs(acc, tmp_path)
    assert info.value.exit_code == 2
    assert f"the config pins {SHA_A}" in str(info.value)
    assert str(tmp_path / "zlib1g_1.2_amd64.deb") in str(info.value)


def test_another_version_than_pinned_is_named(tmp_path: Path) -> None:
    make_deb(tmp_path / "zlib1g_1.3_amd64.deb", {"lib/libz.so.1": b"ELF?"})
    acc = accelerate((DebPin(package="zlib1g", version="1.2", sha256=SHA_A),), tmp_path)
    with pytest.raises(BadInput) as info:
        native.verify_debs(acc, tmp_path)
    assert info.value.exit_code == 2
    assert "zlib1g 1.2 is not in" in str(info.value)
    assert "found only zlib1g_1.3_amd64.deb" in str(info.value)


def test_a_file_that_is_not_a_deb_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "x.deb"
    bad.write_bytes(b"PK\x03\x04 not an ar archive")
    with pytest.raises(native.ToolchainError, match="not a Debian package"):
        native.deb_data(bad)


# ----------------------------------------------------------------- dockerfile, labels


def load_offline_native_target(name: str) -> Target:
    from xarch.model.config import load_config

    root = Path(__file__).resolve().parents[2]
    config = load_config(root / "config" / "offline-native.yaml")
    return next(t for t in config.targets if t.name == name)


def test_the_accelerated_profile_pins_the_stand_ins_compiler_versions() -> None:
    # config/offline-native.yaml: bullseye's gcc 10.2.1 / binutils 2.35.2 for aarch64,
    # bookworm's 12.2.0 / 2.40 for ppc64le (what setup-hooks.sh compares at build time).
    a64 = load_offline_native_target("standin-manylinux2014_aarch64")
    ppc = load_offline_native_target("standin-manylinux2014_ppc64le")
    assert a64.accelerate and ppc.accelerate
    assert (a64.accelerate.gcc_version, a64.accelerate.binutils_version) == ("10.2.1", "2.35.2")
    assert (ppc.accelerate.gcc_version, ppc.accelerate.binutils_version) == ("12.2.0", "2.40")
    assert a64.base.suite == a64.accelerate.suite == "bullseye"  # type: ignore[union-attr]
    assert ppc.base.suite == ppc.accelerate.suite == "bookworm"  # type: ignore[union-attr]
    # trixie's riscv64: gcc 14.2.0 / binutils 2.44, relocated with bookworm's patchelf
    # 0.14.3 (0.18 breaks cc1: the config says why).
    rv = load_offline_native_target("standin-manylinux_2_39_riscv64")
    assert rv.accelerate
    assert (rv.accelerate.gcc_version, rv.accelerate.binutils_version) == ("14.2.0", "2.44")
    assert rv.base.suite == rv.accelerate.suite == "trixie"  # type: ignore[union-attr]
    [pe] = [p for p in rv.accelerate.packages if p.package == "patchelf"]
    assert (pe.version, pe.suite) == ("0.14.3-1+b1", "bookworm")


def test_dockerfile_lines_copy_the_prefix_and_run_the_setup() -> None:
    acc = accelerate((), Path("/x"))
    assert native.dockerfile_lines(get_arch("ppc64le"), acc) == (
        "COPY xarch-native/ /opt/xarch/native/",
        'RUN ["/bin/sh", "/opt/xarch/native/setup-hooks.sh", "powerpc64le-linux-gnu", '
        '"10.2.1", "2.35.2", "cc1", "as"]',
    )


def test_labels_record_toolchain_versions_sha256s_and_probe() -> None:
    pin = DebPin(package="zlib1g", version="1:1.2", sha256=SHA_A)
    labels = native.native_labels(
        accelerate((pin,), Path("/x")), {"lib/libz.so.1": "b" * 64}, "pending"
    )
    assert labels == {
        "org.xarch.native.toolchain": "tc",
        "org.xarch.native.gcc": "10.2.1",
        "org.xarch.native.binutils": "2.35.2",
        "org.xarch.native.leaves": "cc1,as",
        "org.xarch.native.packages": f"zlib1g=1:1.2@sha256:{SHA_A}",
        "org.xarch.native.resources": native.resources_digest(),
        "org.xarch.native.files": f"lib/libz.so.1@sha256:{'b' * 64}",
        "org.xarch.native.probe": "pending",
    }


def test_the_resources_digest_covers_the_hook_setup_and_probe_corpus() -> None:
    # What the build's inputs hash sees of the native machinery: every resource the
    # accelerated image or its proof is made of exists and is part of the digest.
    from xarch.images.resources import resource_text

    for name in native.RESOURCES:
        assert resource_text(name)
    assert {"native/hook.c", "native/setup-hooks.sh", "native/probe.sh"} <= set(native.RESOURCES)
    assert native.resources_digest().startswith("sha256:")
    assert native.pin_labels(accelerate((), Path("/x")))["org.xarch.native.resources"] == (
        native.resources_digest()
    )


def test_the_unproven_tag_is_local_and_names_the_inputs() -> None:
    from xarch.images.helper import unproven_ref

    target = load_offline_native_target("standin-manylinux2014_aarch64")
    ref = unproven_ref(target, "sha256:" + "ab" * 32)
    assert ref == "xarch-unproven/standin-manylinux2014_aarch64:" + "ab" * 8
    assert not ref.startswith("127.0.0.1")  # never a registry name: push cannot reach it


def test_leaf_paths_follow_the_cross_layout() -> None:
    arch = get_arch("aarch64")
    assert (
        native.leaf_sources(arch, "10")["cc1plus"]
        == "usr/lib/gcc-cross/aarch64-linux-gnu/10/cc1plus"
    )
    assert native.leaf_targets(arch, "10")["as"] == "bin/aarch64-linux-gnu-as"


# --------------------------------------------------------------------- matched or refused

AS_LINE = "GNU assembler (GNU Binutils for Debian) 2.35.2"


def test_a_base_of_the_toolchains_versions_matches() -> None:
    acc = accelerate((), Path("/x"))
    assert native.version_mismatch(acc, "10.2.1\n", AS_LINE) is None
    native.require_match(acc, "10.2.1", AS_LINE)


@pytest.mark.parametrize(
    ("gcc", "as_line", "fragment"),
    [
        ("12.2.0", AS_LINE, "gcc is 12.2.0 (gcc -dumpfullversion) but the native toolchain tc is"),
        ("", AS_LINE, "the base's gcc is missing"),
        ("10.2.1", "GNU assembler version 2.35-5.el7", "assembler is binutils 2.35-5.el7"),
        ("10.2.1", "", "binutils missing (no as --version)"),
    ],
)  # fmt: skip
def test_another_version_is_refused_naming_both(gcc: str, as_line: str, fragment: str) -> None:
    acc = accelerate((), Path("/x"))
    with pytest.raises(native.ToolchainMismatch) as info:
        native.require_match(acc, gcc, as_line)
    assert info.value.exit_code == 2
    assert fragment in str(info.value)
    assert "accelerate.enabled: false" in str(info.value)


def test_probed_dockerfile_only_adds_labels() -> None:
    text = native.probed_dockerfile("sha256:abc", {"b": 'say "hi"', "a": "1"})
    assert text == 'FROM sha256:abc\nLABEL a="1"\nLABEL b="say \\"hi\\""\n'


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({}, "no native leaves (emulated compilers)"),
        (
            {"org.xarch.native.toolchain": "tc", "org.xarch.native.leaves": "cc1,as",
             "org.xarch.native.probe": "passed (12 files identical)"},
            "native leaves cc1,as from tc: probe passed (12 files identical)",
        ),
        (
            {"org.xarch.native.toolchain": "tc", "org.xarch.native.leaves": "cc1",
             "org.xarch.native.probe": "pending"},
            "native leaves cc1 from tc NOT proven (probe: pending)",
        ),
    ],
)  # fmt: skip
def test_status_from_labels(labels: dict[str, str], expected: str) -> None:
    assert native.status_from_labels(labels) == expected


def test_patchelf_without_its_cxx_runtime_is_refused_not_run_on_the_hosts(tmp_path: Path) -> None:
    """Else the pinned loader would fall back to the host's libstdc++ (seen: GLIBC_2.34
    not found) and the build would depend on the host."""
    (tmp_path / "lib/x86_64-linux-gnu").mkdir(parents=True)
    (tmp_path / "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2").write_bytes(b"")
    (tmp_path / "usr/bin").mkdir(parents=True)
    (tmp_path / "usr/bin/patchelf").write_bytes(b"")
    with pytest.raises(
        BadInput, match=r"lack libstdc\+\+\.so\.6.*\n  hint: add the libstdc\+\+6 package"
    ):
        native._Patchelf(tmp_path)


def test_gcc_14_leaves_are_found_under_libexec(tmp_path: Path) -> None:
    """Debian's gcc 14 cross packages (trixie) keep cc1 and cc1plus under
    usr/libexec/gcc-cross; older ones under usr/lib/gcc-cross."""
    arch = get_arch("riscv64")
    libexec = tmp_path / "usr/libexec/gcc-cross/riscv64-linux-gnu/14"
    assert native.leaf_sources(arch, "14", tmp_path)["cc1"].startswith("usr/lib/gcc-cross/")
    libexec.mkdir(parents=True)
    (libexec / "cc1").write_bytes(b"\x7fELF")
    got = native.leaf_sources(arch, "14", tmp_path)
    assert got["cc1"] == "usr/libexec/gcc-cross/riscv64-linux-gnu/14/cc1"
    assert got["cc1plus"] == "usr/libexec/gcc-cross/riscv64-linux-gnu/14/cc1plus"
    assert got["as"] == "usr/bin/riscv64-linux-gnu-as"


def test_a_relocated_leaf_that_does_not_run_is_named(tmp_path: Path) -> None:
    """relocate's last check starts each leaf through the prefix's loader: one that fails
    (here /bin/false, standing for a cc1 a patchelf broke) is named with how it ended."""
    lib = tmp_path / "out" / "lib"
    lib.mkdir(parents=True)
    loader = Path("/lib64/ld-linux-x86-64.so.2")
    if not loader.exists():
        pytest.skip("no x86_64 loader on this host")
    (lib / "ld-linux-x86-64.so.2").symlink_to(loader.resolve())
    for name in ("libc.so.6",):
        (lib / name).symlink_to(Path(f"/lib/x86_64-linux-gnu/{name}").resolve())
    acc = accelerate((), tmp_path)
    for tool, ok in (("true", True), ("false", False)):
        shutil.copy(f"/bin/{tool}", tmp_path / "out" / tool)
        if ok:
            native._check_runs(tmp_path / "out", tool, acc)
        else:
            with pytest.raises(
                native.ToolchainError, match=r"the relocated false does not run \(exit 1"
            ):
                native._check_runs(tmp_path / "out", tool, acc)
