"""The native uv's pure parts: the pins (a base's version picks one, none is refused),
the probe's wheel set and its judgement, where every way the probe can fail is shown
failing (the in-image run is tests/e2e/test_native_wheels.py and test-images)."""

from __future__ import annotations

import copy
import io
import zipfile
from pathlib import Path
from typing import Any

import pytest

from xarch.errors import BadInput, ConfigError, XarchError
from xarch.images import native_uv
from xarch.model.arch import get_arch
from xarch.model.config import load_config

AARCH64 = get_arch("aarch64")
S390X = get_arch("s390x")
PIN = "2" * 64


def test_the_bases_version_picks_its_pin() -> None:
    assert native_uv.require_pin(Path("c.yaml"), "t", {"0.13.8": PIN}, "0.13.8") == PIN


def test_a_base_without_uv_is_refused() -> None:
    with pytest.raises(BadInput) as e:
        native_uv.require_pin(Path("c.yaml"), "t", {"0.13.8": PIN}, "")
    assert e.value.exit_code == 2 and "no uv on PATH" in str(e.value)


def test_a_version_without_a_pin_is_refused_naming_both() -> None:
    with pytest.raises(BadInput) as e:
        native_uv.require_pin(Path("c.yaml"), "t", {"0.13.8": PIN}, "0.11.3")
    text = str(e.value)
    assert "c.yaml" in text and "0.11.3" in text and "0.13.8" in text
    assert "uv-0.11.3-py3-none-musllinux_1_1_x86_64.whl" in text


def _wheel_with(member: str, data: bytes, tmp_path: Path) -> Path:
    p = tmp_path / "uv-0.13.8-py3-none-musllinux_1_1_x86_64.whl"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr(member, data)
    return p


def test_the_binary_must_be_x86_64(tmp_path: Path) -> None:
    elf_aarch64 = b"\x7fELF\x02\x01\x01" + bytes(11) + (183).to_bytes(2, "little") + bytes(40)
    wheel = _wheel_with("uv-0.13.8.data/scripts/uv", elf_aarch64, tmp_path)
    with pytest.raises(XarchError, match="not an x86_64 ELF"):
        native_uv.extract_binary(wheel, tmp_path / "out" / "uv")
    elf_x86 = elf_aarch64[:18] + (62).to_bytes(2, "little") + elf_aarch64[20:]
    wheel = _wheel_with("uv-0.13.8.data/scripts/uv", elf_x86, tmp_path)
    sha = native_uv.extract_binary(wheel, tmp_path / "out" / "uv")
    assert len(sha) == 64 and (tmp_path / "out" / "uv").stat().st_mode & 0o111


def test_probe_tags_cover_the_arch_the_host_and_too_new_a_glibc() -> None:
    tags = native_uv.probe_tags(AARCH64)
    assert "py3-none-manylinux_2_17_x86_64" in tags  # the host's own: must be refused
    assert "py3-none-manylinux_2_99_aarch64" in tags  # newer than any glibc
    assert "py3-none-linux_aarch64" in tags and "py3-none-musllinux_1_2_aarch64" in tags
    assert "py3-none-manylinux_2_17_s390x" in tags
    assert "py3-none-manylinux_2_17_aarch64" in native_uv.probe_tags(S390X)


def test_the_probe_wheels_are_valid_wheels(tmp_path: Path) -> None:
    setuptools = tmp_path / "setuptools-82.0.1-py3-none-any.whl"
    setuptools.write_bytes(b"PK")
    tags = native_uv.write_probe_dir(tmp_path / "probe", AARCH64, setuptools)
    wheels = sorted((tmp_path / "probe" / "wheels").glob("xarch_uv_probe_*.whl"))
    assert len(wheels) == 2 * len(tags)
    with zipfile.ZipFile(wheels[1]) as z:
        wheel = z.read("xarch_uv_probe_00-2.0.dist-info/WHEEL").decode()
        record = z.read("xarch_uv_probe_00-2.0.dist-info/RECORD").decode()
    assert f"Tag: {tags[0]}" in wheel
    assert "xarch_uv_probe_00/__init__.py,sha256=" in record
    assert (tmp_path / "probe" / "uv-probe.py").is_file()


def interp_tags(arch: str, glibc_minor: int) -> list[str]:
    """The interpreter's tags: the manylinux ones up to its glibc (2.<glibc_minor>),
    linux_<arch>, and any."""
    return [
        f"{py}-{abi}-{plat}"
        for py, abi in (("cp39", "cp39"), ("cp39", "abi3"), ("py3", "none"), ("py2", "none"))
        for plat in (
            *(f"manylinux_2_{n}_{arch}" for n in range(17, glibc_minor + 1)),
            f"manylinux2014_{arch}",
            f"linux_{arch}",
            "any",
        )
    ]


# What uv-probe.py writes for an aarch64 image (glibc 2.31) whose uv behaves.
INTERP_TAGS = interp_tags("aarch64", 31)


def good_probe() -> tuple[dict[str, Any], list[str]]:
    tags = native_uv.probe_tags(AARCH64)
    interp = set(INTERP_TAGS)
    installed = {
        native_uv.probe_package(i): "2.0" if native_uv._tag_set(t) & interp else "1.0"
        for i, t in enumerate(tags)
    }
    files = {"lib/python3.9/site-packages/x.py": "a" * 64, "bin/python": "link:/opt/py"}
    control = dict(installed)
    control[native_uv.probe_package(tags.index("py3-none-manylinux_2_17_x86_64"))] = "2.0"
    control[native_uv.probe_package(tags.index("py3-none-linux_aarch64"))] = "1.0"
    data = {
        "view": {"platform": "linux-aarch64", "machine": "aarch64", "libc": ["glibc", "2.31"],
                 "tags": INTERP_TAGS},
        "native": {"version": "uv 0.13.8 (x86_64-unknown-linux-musl)", "installed": installed,
                   "files": files},
        "emulated": {"version": "uv 0.13.8 (aarch64-unknown-linux-musl)",
                     "installed": dict(installed), "files": dict(files)},
        "control": {"installed": control},
        "build": {"wheel": "x-1.0-cp39-cp39-linux_aarch64.whl",
                  "tags": ["cp39-cp39-linux_aarch64"], "elf_machine": {"x.so": 183},
                  "call": "42", "seconds": 1.0},
        "steps": {},
    }  # fmt: skip
    return data, tags


def test_a_behaving_uv_passes() -> None:
    data, tags = good_probe()
    result = native_uv.compare(data, tags, AARCH64)
    assert result.passed, result.differences
    assert "py3-none-manylinux_2_31_aarch64" in result.taken
    assert "py3-none-manylinux_2_34_aarch64" not in result.taken
    assert result.label().startswith("passed (")


def _mutated(change: Any) -> list[str]:
    data, tags = good_probe()
    data = copy.deepcopy(data)
    change(data, tags)
    return native_uv.compare(data, tags, AARCH64).differences


def _take(side: str, tag: str, version: str) -> Any:
    def change(data: dict[str, Any], tags: list[str]) -> None:
        data[side]["installed"][native_uv.probe_package(tags.index(tag))] = version

    return change


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (_take("native", "py3-none-manylinux_2_17_x86_64", "2.0"),
         "the native uv takes the wheel tag py3-none-manylinux_2_17_x86_64"),
        (_take("native", "py3-none-manylinux_2_31_aarch64", "1.0"),
         "the native uv refuses the wheel tag py3-none-manylinux_2_31_aarch64"),
        (_take("emulated", "py3-none-musllinux_1_2_aarch64", "2.0"),
         "the emulated uv takes the wheel tag py3-none-musllinux_1_2_aarch64"),
        (lambda d, t: d["native"]["files"].update({"bin/activate": "b" * 64}),
         "installed file bin/activate"),
        (lambda d, t: d["native"].update(version="uv 0.13.9 (x86_64-unknown-linux-musl)"),
         "is not the image's"),
        (lambda d, t: d["control"].update(installed=dict(d["native"]["installed"])),
         "negative control"),
        (lambda d, t: d["build"].update(elf_machine={"x.so": 62}), "ELF machine"),
        (lambda d, t: d["build"].update(tags=["cp39-cp39-linux_x86_64"]), "not for aarch64"),
        (lambda d, t: d["build"].update(call="Traceback ..."), "not 42"),
        (lambda d, t: d["view"].update(machine="x86_64"), "platform.machine() = x86_64"),
    ],
)  # fmt: skip
def test_every_difference_fails_the_probe_and_is_named(change: Any, says: str) -> None:
    diffs = _mutated(change)
    assert diffs, "the probe passed"
    assert any(says in d for d in diffs), diffs


def test_a_failed_probe_refuses_naming_the_first_difference() -> None:
    data, tags = good_probe()
    data["native"]["files"]["bin/activate"] = "b" * 64
    result = native_uv.compare(data, tags, AARCH64)
    with pytest.raises(native_uv.UvProbeFailed, match="installed file bin/activate"):
        native_uv.require_passed(result, "img")


CONFIG = Path(__file__).resolve().parents[2] / "config" / "offline-native.yaml"


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ('{"0.13": "' + PIN + '"}', "not an exact uv version"),
        ('{"0.13.8": "abc"}', "not a sha256"),
        ("{}", "at least one"),
        ('["0.13.8"]', "expected a mapping"),
    ],
)
def test_bad_native_uv_pins_are_refused_naming_the_key(
    value: str, says: str, tmp_path: Path
) -> None:
    text = CONFIG.read_text()
    start = text.index("    native-uv:\n")
    end = text.index("\n", text.index('"0.13.8"', start)) + 1
    bad = tmp_path / "bad.yaml"
    bad.write_text(text[:start] + f"    native-uv: {value}\n" + text[end:])
    with pytest.raises(ConfigError) as e:
        load_config(bad)
    assert "targets[0].native-uv" in str(e.value) and says in str(e.value)


def test_the_shipped_native_config_pins_the_standins_uv() -> None:
    [aarch64] = [t for t in load_config(CONFIG).targets if t.arch.name == "aarch64"]
    assert set(aarch64.native_uv) == {"0.13.8"}
    req = io.StringIO(
        (
            Path(native_uv.__file__).parent / "resources/standin-manylinux/requirements-uv.txt"
        ).read_text()
    )
    assert any(line.startswith("uv==0.13.8 ") for line in req)


def riscv64_probe(uv_takes_below_2_31: bool) -> tuple[dict[str, Any], list[str]]:
    """A riscv64 image with glibc 2.41: packaging takes manylinux_2_17.._2_41_riscv64;
    uv (both builds) only from manylinux_2_31 (UV_MANYLINUX_FLOOR)."""
    rv = get_arch("riscv64")
    tags = native_uv.probe_tags(rv)
    interp = set(interp_tags("riscv64", 41))
    installed = {}
    for i, t in enumerate(tags):
        taken = native_uv._tag_set(t) & interp
        if not uv_takes_below_2_31:
            taken = {p for p in taken if not native_uv.below_uv_floor(p, rv)}
        installed[native_uv.probe_package(i)] = "2.0" if taken else "1.0"
    data, _ = good_probe()
    data = copy.deepcopy(data)
    data["view"].update(machine="riscv64", tags=sorted(interp))
    for side in ("native", "emulated"):
        data[side]["installed"] = dict(installed)
    control = dict(installed)
    control[native_uv.probe_package(tags.index("py3-none-manylinux_2_17_x86_64"))] = "2.0"
    data["control"]["installed"] = control
    data["build"].update(
        wheel="x-1.0-cp39-cp39-linux_riscv64.whl",
        tags=["cp39-cp39-linux_riscv64"],
        elf_machine={"x.so": 243},
    )
    return data, tags


def test_riscv64_uv_takes_no_manylinux_below_2_31_by_design_and_the_probe_knows_it() -> None:
    rv = get_arch("riscv64")
    data, tags = riscv64_probe(uv_takes_below_2_31=False)
    result = native_uv.compare(data, tags, rv)
    assert result.passed, result.differences
    assert "py3-none-manylinux_2_17_riscv64" in result.by_design
    assert "py3-none-manylinux2014_riscv64" in result.by_design
    assert "py3-none-manylinux_2_31_riscv64" in result.taken
    assert "older manylinux tags left, as uv does" in result.label()
    # One side taking them after all is a difference again, and says why it is expected.
    data["native"]["installed"][
        native_uv.probe_package(tags.index("py3-none-manylinux_2_24_riscv64"))
    ] = "2.0"
    diffs = native_uv.compare(data, tags, rv).differences
    assert diffs == [
        "the native uv takes the wheel tag py3-none-manylinux_2_24_riscv64, the interpreter's "
        "own tags (packaging.tags.sys_tags()) refuses it (uv takes no manylinux tag below "
        "2_31 on riscv64)"
    ]


def test_the_uv_floor_reads_every_spelling_of_a_manylinux_tag() -> None:
    rv, a64 = get_arch("riscv64"), get_arch("aarch64")
    assert native_uv.below_uv_floor("py3-none-manylinux_2_30_riscv64", rv)
    assert not native_uv.below_uv_floor("py3-none-manylinux_2_31_riscv64", rv)
    assert native_uv.below_uv_floor("py3-none-manylinux2014_riscv64", rv)
    assert not native_uv.below_uv_floor("py3-none-linux_riscv64", rv)
    assert not native_uv.below_uv_floor("py3-none-manylinux_2_17_aarch64", a64)
