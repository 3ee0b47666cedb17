"""The report: one push record per config (by registry and namespace), picked by
--config; a corrupt report is an error naming the file, never read as empty and
overwritten; writes are atomic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xarch.errors import CorruptState, NotPushed, RegistryError
from xarch.model.config import Config, parse_config
from xarch.model.naming import push_key
from xarch.model.report import (
    push_record,
    push_records,
    read_report,
    require_push_record,
    summary,
    write_push_record,
    write_section,
)
from xarch.publish.push import PushedImage, PushedIndex, PushOutcome, record_outcome

DIGEST = "sha256:" + "3" * 64


def make_config(address: str, namespace: str = "xarch") -> Config:
    return parse_config(
        Path(f"{address.replace(':', '_')}.yaml"),
        {
            "registry": {"address": address, "namespace": namespace},
            "qemu": {
                "version": "7.2",
                "source": {"dir": "."},
                "sha256": {"qemu-aarch64-static": "a" * 64},
            },
            "targets": [
                {
                    "name": "m_aarch64",
                    "arch": "aarch64",
                    "base": {"image": "quay.io/x/m", "tag": "1", "digest": "sha256:" + "1" * 64},
                    "family": "m",
                    "tags": ["1"],
                }
            ],
        },
    )


LOCAL = make_config("127.0.0.1:5000")
OTHER = make_config("registry.example.org")


def outcome(config: Config, digest: str = DIGEST) -> PushOutcome:
    name = config.registry.image_name("m")
    return PushOutcome(
        images=[PushedImage("m_aarch64", f"{name}:1-aarch64", digest, "linux/arm64/v8", "m", 1)],
        indexes=[PushedIndex("m", f"{name}:1", "sha256:" + "9" * 64, "i", [])],
    )


def record(config: Config, path: Path, digest: str = DIGEST) -> None:
    record_outcome(config, outcome(config, digest), path, lambda _: None, steps="push")


# ------------------------------------------------------------------ one record per config


def test_the_key_is_registry_and_namespace() -> None:
    assert push_key(LOCAL) == "127.0.0.1:5000/xarch"
    assert push_key(make_config("127.0.0.1:5000", namespace="")) == "127.0.0.1:5000"


def test_a_push_with_another_config_keeps_the_first_record(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    record(LOCAL, path)
    record(OTHER, path, digest="sha256:" + "4" * 64)
    data = read_report(path)
    assert set(push_records(data)) == {"127.0.0.1:5000/xarch", "registry.example.org/xarch"}
    local = push_record(data, LOCAL)
    other = push_record(data, OTHER)
    assert local is not None and other is not None
    assert [im["digest"] for im in local["images"]] == [DIGEST]
    assert [im["digest"] for im in other["images"]] == ["sha256:" + "4" * 64]
    assert local["config"] == str(LOCAL.path)


def test_a_second_push_with_the_same_config_replaces_its_refs_and_keeps_the_others(
    tmp_path: Path,
) -> None:
    path = tmp_path / "r.json"
    record(LOCAL, path)
    name = LOCAL.registry.image_name("binfmt")
    installer = PushOutcome(
        images=[PushedImage("binfmt-installer-x86_64", f"{name}:q-x86_64", DIGEST, "p", "m", 1)]
    )
    record_outcome(LOCAL, installer, path, lambda _: None, steps="push")
    record(LOCAL, path, digest="sha256:" + "5" * 64)
    rec = push_record(read_report(path), LOCAL)
    assert rec is not None
    assert {im["ref"]: im["digest"] for im in rec["images"]} == {
        f"{name}:q-x86_64": DIGEST,
        f"{LOCAL.registry.image_name('m')}:1-aarch64": "sha256:" + "5" * 64,
    }


def test_failed_steps_are_recorded_then_raised(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    failed = PushOutcome(errors=["pushing x failed: connection refused"])
    with pytest.raises(RegistryError, match="1 push step"):
        record_outcome(LOCAL, failed, path, lambda _: None, steps="push")
    rec = push_record(read_report(path), LOCAL)
    assert rec is not None and rec["errors"] == ["pushing x failed: connection refused"]


def test_the_record_for_the_config_is_picked(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    record(OTHER, path)
    data = read_report(path)
    with pytest.raises(NotPushed, match=r"no pushed images recorded for 127.0.0.1:5000/xarch") as e:
        require_push_record(data, LOCAL, path)
    assert "holds pushes to registry.example.org/xarch" in str(e.value)
    assert e.value.exit_code == 1
    assert require_push_record(data, OTHER, path)["images"][0]["digest"] == DIGEST


def test_summary_shows_only_the_configs_record_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    record(LOCAL, path)
    record(OTHER, path)
    data = read_report(path)
    both = summary(data)
    assert "127.0.0.1:5000/xarch" in both and "registry.example.org/xarch" in both
    one = summary(data, OTHER)
    assert "registry.example.org/xarch" in one and "127.0.0.1:5000" not in one


def test_sections_are_kept_when_a_record_is_written(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    write_section("build", {"targets": []}, path)
    write_push_record(LOCAL, {"images": []}, path)
    assert read_report(path)["build"] == {"targets": []}
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


# ------------------------------------------------------------------ corrupt reports


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"{not json", "not JSON"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        (b"[1, 2]", "a JSON list, not an object"),
        (b'{"pushes": [1]}', "'pushes' is not a mapping"),
        (b'{"pushes": {"k": 3}}', "'pushes' is not a mapping"),
    ],
)
def test_a_corrupt_report_names_the_file_and_what_to_do(
    tmp_path: Path, content: bytes, why: str
) -> None:
    path = tmp_path / "r.json"
    path.write_bytes(content)
    with pytest.raises(CorruptState) as e:
        read_report(path)
    assert str(path) in str(e.value)
    assert why in str(e.value)
    assert "Move it away" in str(e.value)


def test_a_corrupt_report_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_bytes(b'{"build": {"targets": [')
    with pytest.raises(CorruptState):
        record(LOCAL, path)
    with pytest.raises(CorruptState):
        write_section("build", {}, path)
    assert path.read_bytes() == b'{"build": {"targets": ['


def test_a_directory_in_place_of_the_report_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.mkdir()
    with pytest.raises(CorruptState, match="it is a directory"):
        read_report(path)


def test_no_report_is_empty(tmp_path: Path) -> None:
    assert read_report(tmp_path / "absent.json") == {}
    with pytest.raises(NotPushed, match="no report at"):
        require_push_record({}, LOCAL, tmp_path / "absent.json")


def test_the_written_report_is_json(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "r.json"
    record(LOCAL, path)
    assert json.loads(path.read_text())["pushes"]["127.0.0.1:5000/xarch"]["namespace"] == "xarch"
