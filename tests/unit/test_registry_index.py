"""Building multi-arch indexes: structure, determinism, media type choice; and the
client's offline behaviour (scheme choice, no secrets in repr)."""

from __future__ import annotations

import hashlib
import json

import pytest

from xarch.errors import BadInput, RegistryError
from xarch.oci.registry import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    RegistryClient,
    build_index,
    index_media_type_for,
)

ARM64 = {"os": "linux", "architecture": "arm64", "variant": "v8"}
PPC64LE = {"os": "linux", "architecture": "ppc64le"}


def _digest(seed: str) -> str:
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


def _entry(
    seed: str, platform: dict[str, str] | None, media_type: str = DOCKER_MANIFEST
) -> Descriptor:
    return Descriptor(media_type, _digest(seed), 523, platform)


def test_index_structure() -> None:
    arm, ppc = _entry("arm", ARM64), _entry("ppc", PPC64LE)
    body, digest = build_index([arm, ppc], OCI_INDEX)
    assert digest == "sha256:" + hashlib.sha256(body).hexdigest()
    doc = json.loads(body)
    assert doc == {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": DOCKER_MANIFEST, "digest": arm.digest, "size": 523, "platform": ARM64},
            {"mediaType": DOCKER_MANIFEST, "digest": ppc.digest, "size": 523, "platform": PPC64LE},
        ],
    }
    assert b" " not in body and b"\n" not in body  # compact


def test_index_is_deterministic() -> None:
    arm, ppc = _entry("arm", ARM64), _entry("ppc", PPC64LE)
    first = build_index([arm, ppc])
    # Equal content built from differently ordered dicts gives the same bytes.
    arm2 = Descriptor(
        DOCKER_MANIFEST, arm.digest, 523, {"variant": "v8", "architecture": "arm64", "os": "linux"}
    )
    assert build_index([arm2, ppc]) == first
    assert build_index([arm, ppc]) == first
    # The entries' order is kept, so it is part of the identity.
    swapped = build_index([ppc, arm])
    assert swapped[1] != first[1]
    assert [m["digest"] for m in json.loads(swapped[0])["manifests"]] == [ppc.digest, arm.digest]


def test_media_type_choice() -> None:
    docker = [_entry("a", ARM64), _entry("p", PPC64LE)]
    oci = [_entry("a", ARM64, OCI_MANIFEST), _entry("p", PPC64LE, OCI_MANIFEST)]
    mixed = [_entry("a", ARM64), _entry("p", PPC64LE, OCI_MANIFEST)]
    assert index_media_type_for(docker) == DOCKER_MANIFEST_LIST
    assert index_media_type_for(oci) == OCI_INDEX
    assert index_media_type_for(mixed) == OCI_INDEX
    assert json.loads(build_index(docker)[0])["mediaType"] == DOCKER_MANIFEST_LIST
    assert json.loads(build_index(oci)[0])["mediaType"] == OCI_INDEX
    # A Docker manifest list cannot list OCI manifests.
    with pytest.raises(RegistryError, match="cannot list the OCI manifest"):
        build_index(mixed, DOCKER_MANIFEST_LIST)
    with pytest.raises(RegistryError, match="at least one entry"):
        index_media_type_for([])


@pytest.mark.parametrize(
    ("entries", "problem"),
    [
        ([_entry("a", None)], "no platform"),
        ([_entry("a", {"os": "linux"})], "no platform"),
        ([_entry("a", ARM64), _entry("b", dict(ARM64))], "same platform"),
        ([Descriptor(DOCKER_MANIFEST, "sha256:abc", 1, ARM64)], "not a sha256 digest"),
        ([Descriptor(OCI_INDEX, _digest("i"), 1, ARM64)], "must be image manifests"),
        ([Descriptor(DOCKER_MANIFEST, _digest("z"), 0, ARM64)], "no size"),
    ],
)
def test_bad_entries_are_refused(entries: list[Descriptor], problem: str) -> None:
    with pytest.raises(RegistryError, match=problem):
        build_index(entries)


def test_not_an_index_type() -> None:
    with pytest.raises(RegistryError, match="not an index media type"):
        build_index([_entry("a", ARM64)], DOCKER_MANIFEST)


def test_descriptor_json_round_trip() -> None:
    entry = _entry("a", ARM64)
    assert Descriptor.from_json(entry.to_json()) == entry
    assert "platform" not in _entry("a", None).to_json()
    assert entry.platform_string == "linux/arm64/v8"


@pytest.mark.parametrize(
    ("registry", "insecure", "url"),
    [
        ("127.0.0.1:5000", None, "http://127.0.0.1:5000"),
        ("localhost:5000", None, "http://localhost:5000"),
        ("[::1]:5000", None, "http://[::1]:5000"),
        ("registry.example.com", None, "https://registry.example.com"),
        ("registry.example.com:5000", True, "http://registry.example.com:5000"),
        ("127.0.0.1:5000", False, "https://127.0.0.1:5000"),
        ("http://ci-registry:5000/", None, "http://ci-registry:5000"),
    ],
)
def test_scheme_choice(registry: str, insecure: bool | None, url: str) -> None:
    assert RegistryClient(registry, insecure=insecure).base_url == url


def test_repr_hides_credentials() -> None:
    client = RegistryClient("registry.example.com", auth=("robot", "hunter2-secret"))
    assert "hunter2-secret" not in repr(client) and "hunter2-secret" not in str(client)
    assert "credentials=set" in repr(client)


def test_invalid_names_are_bad_input() -> None:
    client = RegistryClient("127.0.0.1:1")
    with pytest.raises(BadInput, match="invalid repository name"):
        client.head_manifest("Upper/Case", "latest")
    with pytest.raises(BadInput, match="invalid reference"):
        client.head_manifest("xarch/ok", "bad tag")
    with pytest.raises(BadInput, match="needs a digest"):
        client.delete_manifest("xarch/ok", "latest")
    with pytest.raises(BadInput):
        RegistryClient("host/with/path")
