"""`pin --from-cibuildwheel`: parsing cibuildwheel's pinned_docker_images.cfg, the drift
between it and a config, and the rewrite that keeps every other byte."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest

from xarch.errors import BadInput
from xarch.model.config import load_config
from xarch.publish.cibuildwheel import PINNED_CFG, parse_pinned_images, release_pins, wheel_pins
from xarch.publish.pin import cibuildwheel_drift, drift_report, pin_from_cibuildwheel

REPO_ROOT = Path(__file__).resolve().parents[2]
D = {c: "sha256:" + c * 64 for c in "abcdef"}
SHA = "1" * 64

CFG = f"""\
[x86_64]
manylinux2014 = quay.io/pypa/manylinux2014_x86_64@{D["f"]}  # 2026.12.01-1

[aarch64]
manylinux2014 = quay.io/pypa/manylinux2014_aarch64@{D["b"]}  # 2026.12.01-1
musllinux_1_2 = quay.io/pypa/musllinux_1_2_aarch64@{D["c"]}  # 2026.12.01-1

[pypy_aarch64]
manylinux2014 = quay.io/pypa/manylinux2014_aarch64@{D["b"]}  # 2026.12.01-1

[riscv64]
manylinux_2_39 = quay.io/pypa/manylinux_2_39_riscv64@{D["d"]}  # 2026.12.01-1
"""

CONFIG = f"""\
# top comment: kept
cibuildwheel:
  version: "4.3.4"   # kept too

registry: {{address: 127.0.0.1:5000, namespace: xarch}}
qemu:
  version: "7.2"
  source: {{apt: {{package: qemu-user-static, version: "1:7.2"}}}}
  sha256:
    qemu-aarch64-static: {SHA}
targets:
  - name: manylinux2014_aarch64
    arch: aarch64
    base:
      image: quay.io/pypa/manylinux2014_aarch64
      tag: 2026.10.26-1  # the tag comment stays
      digest: {D["a"]}
    family: manylinux2014
    tags: [2026.10.26-1, stable]
  - name: own_aarch64
    arch: aarch64
    base: {{image: example.org/own/base, tag: "1", digest: {D["e"]}}}
    family: own
    tags: ["1"]
"""


def write(tmp_path: Path, text: str = CONFIG) -> Path:
    p = tmp_path / "images.yaml"
    p.write_text(text)
    return p


def test_parse_pins_reads_every_line_with_its_section() -> None:
    pins = parse_pinned_images(CFG, "pins.cfg", "4.3.6")
    assert [(p.arch, p.family, p.tag) for p in pins.pins][:3] == [
        ("x86_64", "manylinux2014", "2026.12.01-1"),
        ("aarch64", "manylinux2014", "2026.12.01-1"),
        ("aarch64", "musllinux_1_2", "2026.12.01-1"),
    ]
    # pypy sections repeat CPython's images: by_image keeps the CPython section.
    assert pins.by_image()["quay.io/pypa/manylinux2014_aarch64"].arch == "aarch64"


def test_parse_pins_of_the_real_4_3_5_file_matches_the_shipped_config() -> None:
    cfg_file = Path("/tmp/cibw/src/cibuildwheel/resources/pinned_docker_images.cfg")
    if not cfg_file.exists():
        pytest.skip("cibuildwheel 4.3.5's source is not unpacked at /tmp/cibw")
    pins = parse_pinned_images(cfg_file.read_text(), str(cfg_file), "4.3.5")
    drift, _ = cibuildwheel_drift(load_config(REPO_ROOT / "config/images.yaml"), pins)
    assert drift == []


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[aarch64]\nmanylinux2014 = quay.io/x@sha256:abc  # t\n", "line 2: cannot parse"),
        (f"manylinux2014 = quay.io/x@{D['a']}\n", "line 1: a pin before any [arch] section"),
        ("# only a comment\n", "no pinned images found"),
        ("[aarch64]\nthis is not a pin\n", "line 2: cannot parse 'this is not a pin'"),
    ],
)
def test_parse_pins_refuses_what_it_cannot_read(text: str, fragment: str) -> None:
    with pytest.raises(BadInput) as e:
        parse_pinned_images(text, "some/pinned_docker_images.cfg", "1")
    assert str(e.value).startswith("some/pinned_docker_images.cfg: ")
    assert fragment in str(e.value)


def test_drift_lists_digest_tag_helper_tag_and_version(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path))
    drift, notes = cibuildwheel_drift(cfg, parse_pinned_images(CFG, "pins.cfg", "4.3.6"))
    assert [(d.key, d.current, d.wanted) for d in drift] == [
        ("cibuildwheel.version", "4.3.4", "4.3.6"),
        ("targets[0].base.digest", D["a"], D["b"]),
        ("targets[0].base.tag", "2026.10.26-1", "2026.12.01-1"),
        ("targets[0].tags[0]", "2026.10.26-1", "2026.12.01-1"),
    ]
    assert any("own_aarch64: example.org/own/base is not pinned" in n for n in notes)
    # Emulated arches cibuildwheel pins without a target are named; x86_64 is not.
    assert any("musllinux_1_2_aarch64" in n for n in notes)
    assert any("manylinux_2_39_riscv64" in n for n in notes)
    assert not any("x86_64" in n for n in notes)


def test_rewrite_changes_only_the_drifting_values(tmp_path: Path) -> None:
    p = write(tmp_path)
    out = pin_from_cibuildwheel(
        load_config(p), parse_pinned_images(CFG, "pins.cfg", "4.3.6"), log=lambda _: None
    )
    assert out.changed
    expected = (
        CONFIG.replace('"4.3.4"', '"4.3.6"')
        .replace(f"digest: {D['a']}", f"digest: {D['b']}")
        .replace("tag: 2026.10.26-1", "tag: 2026.12.01-1")
        .replace("tags: [2026.10.26-1, stable]", "tags: [2026.12.01-1, stable]")
    )
    assert p.read_text() == expected
    again = pin_from_cibuildwheel(
        load_config(p), parse_pinned_images(CFG, "pins.cfg", "4.3.6"), log=lambda _: None
    )
    assert again.drift == [] and not again.changed
    assert drift_report(again) == "no drift from cibuildwheel 4.3.6"


def test_check_changes_nothing_and_reports_the_drift(tmp_path: Path) -> None:
    p = write(tmp_path)
    out = pin_from_cibuildwheel(
        load_config(p), parse_pinned_images(CFG, "pins.cfg", "4.3.6"), check=True, log=print
    )
    assert p.read_text() == CONFIG
    assert not out.changed
    assert "4 value(s) differ from cibuildwheel 4.3.6" in drift_report(out)


def test_a_config_without_a_cibuildwheel_section_gets_one(tmp_path: Path) -> None:
    text = CONFIG.replace('cibuildwheel:\n  version: "4.3.4"   # kept too\n\n', "")
    p = write(tmp_path, text)
    pin_from_cibuildwheel(
        load_config(p), parse_pinned_images(CFG, "pins.cfg", "4.3.6"), log=lambda _: None
    )
    cfg = load_config(p)
    assert cfg.cibuildwheel is not None and cfg.cibuildwheel.version == "4.3.6"
    assert p.read_text().index("cibuildwheel:") < p.read_text().index("targets:")


def test_wheel_pins_reads_the_file_inside_a_wheel(tmp_path: Path) -> None:
    whl = tmp_path / "cibuildwheel-4.3.6-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w") as z:
        z.writestr(PINNED_CFG, CFG)
    pins = wheel_pins(whl, "4.3.6")
    assert pins.source == f"{whl}!{PINNED_CFG}"
    assert len(pins.pins) == 5


def test_wheel_pins_names_the_wheel_and_line_of_a_broken_file(tmp_path: Path) -> None:
    whl = tmp_path / "cibuildwheel-4.3.6-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w") as z:
        z.writestr(PINNED_CFG, "[aarch64]\nbroken\n")
    with pytest.raises(BadInput, match=r"cibuildwheel-4\.3\.6-py3-none-any\.whl!.*line 2"):
        wheel_pins(whl, "4.3.6")


@pytest.mark.parametrize("version", ["latest", "4.3.5; rm -rf /", ">=4", "4.3.*"])
def test_release_pins_refuses_a_version_that_is_not_exact(version: str) -> None:
    with pytest.raises(BadInput, match="expected an exact version"):
        release_pins(version)


def test_the_shipped_config_rewrites_byte_identical_from_its_own_pins(tmp_path: Path) -> None:
    """Rewriting to a drifted value and back gives the shipped file byte for byte."""
    cfg_file = Path("/tmp/cibw/src/cibuildwheel/resources/pinned_docker_images.cfg")
    if not cfg_file.exists():
        pytest.skip("cibuildwheel 4.3.5's source is not unpacked at /tmp/cibw")
    p = tmp_path / "images.yaml"
    shutil.copy(REPO_ROOT / "config/images.yaml", p)
    shipped = p.read_text()
    p.write_text(shipped.replace('version: "4.3.5"', 'version: "4.3.4"'))
    pins = parse_pinned_images(cfg_file.read_text(), str(cfg_file), "4.3.5")
    pin_from_cibuildwheel(load_config(p), pins, log=lambda _: None)
    assert p.read_text() == shipped
