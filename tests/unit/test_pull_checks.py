"""pull-images' checks as pure logic: the image's platform and xarch labels against
the config, and the digests taken from the report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from xarch.errors import NotPushed
from xarch.model.arch import get_arch
from xarch.model.config import Config, parse_config
from xarch.model.naming import L_BASE_DIGEST, L_QEMU_SHA, L_QEMU_VERSION
from xarch.publish.pull import (
    expected_labels,
    image_mismatches,
    platform_mismatch,
    pushed_refs,
)

QEMU_SHA = {"qemu-aarch64-static": "a" * 64, "qemu-ppc64le-static": "b" * 64}
BASE = {"aarch64": "sha256:" + "1" * 64, "ppc64le": "sha256:" + "2" * 64}
DIGEST = {"aarch64": "sha256:" + "3" * 64, "ppc64le": "sha256:" + "4" * 64}


def make_config(**qemu: str) -> Config:
    return parse_config(
        Path("cfg.yaml"),
        {
            "registry": {"address": "127.0.0.1:5000", "namespace": "xarch"},
            "qemu": {
                "version": qemu.get("version", "7.2"),
                "source": {"dir": "."},
                "sha256": QEMU_SHA,
            },
            "targets": [
                {
                    "name": f"m2014_{arch}",
                    "arch": arch,
                    "base": {"image": f"quay.io/pypa/m2014_{arch}", "digest": BASE[arch]},
                    "family": "m2014",
                    "tags": ["2026.08"],
                }
                for arch in ("aarch64", "ppc64le")
            ],
        },
    )


CFG = make_config()
AARCH64_TARGET = CFG.targets[0]


def image(
    arch: str = "arm64", variant: str | None = "v8", os: str = "linux", **labels: str
) -> dict[str, Any]:
    good = {
        L_QEMU_VERSION: "7.2",
        L_QEMU_SHA: QEMU_SHA["qemu-aarch64-static"],
        L_BASE_DIGEST: BASE["aarch64"],
        "org.opencontainers.image.title": "anything else is not checked",
    }
    attrs: dict[str, Any] = {
        "Id": "sha256:" + "f" * 64,
        "Os": os,
        "Architecture": arch,
        "Config": {"Labels": {**good, **labels}},
    }
    if variant is not None:
        attrs["Variant"] = variant
    return attrs


# ---------------------------------------------------------------------------- platform


@pytest.mark.parametrize(
    ("attrs", "arch"),
    [
        ({"Os": "linux", "Architecture": "arm64", "Variant": "v8"}, "aarch64"),
        # docker assumes v8 for an arm64 image config without a variant
        ({"Os": "linux", "Architecture": "arm64"}, "aarch64"),
        ({"Os": "linux", "Architecture": "ppc64le"}, "ppc64le"),
        ({"Os": "linux", "Architecture": "s390x"}, "s390x"),
        ({"Os": "linux", "Architecture": "arm", "Variant": "v7"}, "armv7l"),
        ({"Os": "linux", "Architecture": "arm"}, "armv7l"),
    ],
)
def test_platform_matches(attrs: dict[str, str], arch: str) -> None:
    assert platform_mismatch(attrs, get_arch(arch)) == ""


@pytest.mark.parametrize(
    ("attrs", "arch", "found"),
    [
        ({"Os": "linux", "Architecture": "ppc64le"}, "aarch64", "linux/ppc64le"),
        ({"Os": "linux", "Architecture": "amd64"}, "aarch64", "linux/amd64"),
        ({"Os": "linux", "Architecture": "arm64", "Variant": "v9"}, "aarch64", "linux/arm64/v9"),
        ({"Os": "linux", "Architecture": "arm", "Variant": "v6"}, "armv7l", "linux/arm/v6"),
        ({"Os": "windows", "Architecture": "arm64"}, "aarch64", "windows/arm64"),
    ],
)
def test_platform_mismatch_names_both_platforms(
    attrs: dict[str, str], arch: str, found: str
) -> None:
    a = get_arch(arch)
    assert platform_mismatch(attrs, a) == (
        f"platform: the config's target is {a.platform}, the image is {found}"
    )


# ------------------------------------------------------------------------------ labels


def test_matching_image_has_no_mismatch() -> None:
    assert image_mismatches(image(), CFG, AARCH64_TARGET) == []
    assert image_mismatches(image(variant=None), CFG, AARCH64_TARGET) == []


@pytest.mark.parametrize(
    ("label", "source"),
    [
        (L_QEMU_VERSION, "qemu.version"),
        (L_QEMU_SHA, "qemu.sha256.qemu-aarch64-static"),
        (L_BASE_DIGEST, "targets[0].base.digest"),
    ],
)
def test_each_differing_label_is_named_with_both_values(label: str, source: str) -> None:
    want = {e.label: e.value for e in expected_labels(CFG, AARCH64_TARGET)}[label]
    [m] = image_mismatches(image(**{label: "other"}), CFG, AARCH64_TARGET)
    assert m == f"label {label}: the config's {source} is {want}, the image has other"


def test_missing_label_is_named() -> None:
    attrs = image()
    del attrs["Config"]["Labels"][L_QEMU_SHA]
    [m] = image_mismatches(attrs, CFG, AARCH64_TARGET)
    assert m.startswith(f"label {L_QEMU_SHA}: missing") and "not an xarch helper image" in m


def test_every_mismatch_is_listed_platform_first() -> None:
    attrs = image(
        arch="ppc64le",
        variant=None,
        **{L_QEMU_VERSION: "10.0", L_QEMU_SHA: "c" * 64, L_BASE_DIGEST: BASE["ppc64le"]},
    )
    found = image_mismatches(attrs, CFG, AARCH64_TARGET)
    assert [m.split(":")[0] for m in found] == [
        "platform",
        f"label {L_QEMU_VERSION}",
        f"label {L_QEMU_SHA}",
        f"label {L_BASE_DIGEST}",
    ]


def test_image_without_labels_lists_each_missing_label() -> None:
    attrs = image()
    attrs["Config"] = {"Labels": None}
    assert len(image_mismatches(attrs, CFG, AARCH64_TARGET)) == 3


def test_bootstrapped_base_has_no_digest_to_compare() -> None:
    cfg = parse_config(
        Path("cfg.yaml"),
        {
            "registry": {"address": "127.0.0.1:5000"},
            "qemu": {"version": "7.2", "source": {"dir": "."}, "sha256": QEMU_SHA},
            "targets": [
                {
                    "name": "standin",
                    "arch": "aarch64",
                    "base": {"bootstrap": {"image": "bases/standin"}},
                    "family": "standin",
                    "tags": ["bookworm"],
                }
            ],
        },
    )
    assert (
        image_mismatches(image(**{L_BASE_DIGEST: "sha256:" + "9" * 64}), cfg, cfg.targets[0]) == []
    )


# ------------------------------------------------------------------- report -> digests


def report(*rows: tuple[str, str, str], key: str = "127.0.0.1:5000/xarch") -> dict[str, Any]:
    """A report whose push record for ``key`` (the config's registry/namespace) has rows."""
    return {
        "pushes": {
            key: {
                "images": [
                    {"target": target, "ref": ref, "digest": digest, "platform": "x"}
                    for target, ref, digest in rows
                ]
            }
        }
    }


GOOD = report(
    ("m2014_aarch64", "127.0.0.1:5000/xarch/m2014:2026.08-aarch64", DIGEST["aarch64"]),
    ("m2014_ppc64le", "127.0.0.1:5000/xarch/m2014:2026.08-ppc64le", DIGEST["ppc64le"]),
)


def test_digests_come_from_the_configs_push_record() -> None:
    refs = pushed_refs(GOOD, CFG, CFG.targets, Path("r.json"))
    assert refs["m2014_aarch64"].ref == f"127.0.0.1:5000/xarch/m2014@{DIGEST['aarch64']}"
    assert refs["m2014_aarch64"].tag_refs == ("127.0.0.1:5000/xarch/m2014:2026.08-aarch64",)
    assert refs["m2014_ppc64le"].digest == DIGEST["ppc64le"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "no report at r.json"),
        ({"build": {"targets": []}}, "no pushed images recorded for 127.0.0.1:5000/xarch"),
        (
            report(
                ("m2014_aarch64", "example.org/xarch/m2014:2026.08-aarch64", DIGEST["aarch64"]),
                key="example.org/xarch",
            ),
            "(it holds pushes to example.org/xarch)",
        ),
        (
            report(("m2014_aarch64", "127.0.0.1:5000/xarch/m2014:2026.08-aarch64", "")),
            "m2014_aarch64: no digest recorded",
        ),
        (
            report(("m2014_aarch64", "example.org/other/m2014:2026.08-aarch64", DIGEST["aarch64"])),
            "m2014_aarch64: the report has it as example.org/other/m2014:2026.08-aarch64",
        ),
    ],
)
def test_missing_digest_is_a_clear_error(data: dict[str, Any], message: str) -> None:
    with pytest.raises(NotPushed, match="push-images") as err:
        pushed_refs(data, CFG, CFG.targets[:1], Path("r.json"))
    assert message in str(err.value)
    assert err.value.exit_code == 1


def test_every_target_without_digest_is_named_at_once() -> None:
    only_other = report(("unrelated", "127.0.0.1:5000/xarch/x:1-aarch64", DIGEST["aarch64"]))
    with pytest.raises(NotPushed) as err:
        pushed_refs(only_other, CFG, CFG.targets, Path("r.json"))
    assert "m2014_aarch64: no digest" in str(err.value)
    assert "m2014_ppc64le: no digest" in str(err.value)
