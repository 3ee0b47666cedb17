"""pin's pure parts: image names, the byte-exact config rewrite, and the QEMU
comparison (with the host's real dpkg)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from xarch.errors import FetchError
from xarch.model.config import Config, load_config
from xarch.publish.pin import check_qemu, dpkg_newer, qemu_advice, rewrite_digests, split_image

OLD = "sha256:" + "a" * 64
NEW = "sha256:" + "b" * 64
SHA = "1" * 64

HEAD = f"""\
# Comment at the top: kept.
registry:
  address: 127.0.0.1:5000   # trailing comment
  namespace: xarch
qemu:
  version: 7.2+dfsg-7+deb12u18+b3
  source:
    apt: {{package: qemu-user-static, version: "1:7.2+dfsg-7+deb12u18+b3"}}
  sha256:
    qemu-aarch64-static: {SHA}
    qemu-ppc64le-static: {SHA}
"""


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("quay.io/pypa/manylinux2014_aarch64", ("quay.io", "pypa/manylinux2014_aarch64")),
        ("127.0.0.1:5000/xarch/base", ("127.0.0.1:5000", "xarch/base")),
        ("localhost/x", ("localhost", "x")),
        ("debian", ("registry-1.docker.io", "library/debian")),
        ("pypa/manylinux", ("registry-1.docker.io", "pypa/manylinux")),
        ("docker.io/debian", ("registry-1.docker.io", "library/debian")),
    ],
)
def test_split_image_follows_dockers_rules(image: str, expected: tuple[str, str]) -> None:
    assert split_image(image) == expected


def write(tmp_path: Path, targets: str) -> Path:
    p = tmp_path / "c.yaml"
    p.write_text(HEAD + "targets:\n" + targets)
    load_config(p, allow_unpinned=True)  # the fixture itself is a valid config
    return p


def test_only_the_digest_bytes_change_comments_and_order_survive(tmp_path: Path) -> None:
    targets = f"""\
  # first target
  - name: a
    arch: aarch64
    base:
      image: 127.0.0.1:5000/x/base   # where it comes from
      tag: moving                     # the tag pin follows
      digest: {OLD}  # pinned
    family: f
    tags: [t]
  - name: p
    arch: ppc64le
    base:
      digest: '{OLD}'
      image: 127.0.0.1:5000/x/base
      tag: other
    family: f
    tags: [t]
"""
    p = write(tmp_path, targets)
    text = p.read_text()
    out = rewrite_digests(text, p, {0: NEW, 1: NEW})
    assert out == text.replace(f"digest: {OLD}  # pinned", f"digest: {NEW}  # pinned").replace(
        f"digest: '{OLD}'", f"digest: '{NEW}'"
    )


def test_a_missing_digest_is_inserted_after_the_tag(tmp_path: Path) -> None:
    targets = """\
  - name: a
    arch: aarch64
    base:
      image: 127.0.0.1:5000/x/base
      tag: moving  # no digest yet
    family: f
    tags: [t]
"""
    p = write(tmp_path, targets)
    out = rewrite_digests(p.read_text(), p, {0: NEW})
    assert out == p.read_text().replace(
        "      tag: moving  # no digest yet\n",
        f"      tag: moving  # no digest yet\n      digest: {NEW}\n",
    )


def test_flow_style_bases_are_rewritten_in_place(tmp_path: Path) -> None:
    targets = f"""\
  - {{name: a, arch: aarch64, family: f, tags: [t],
     base: {{image: 127.0.0.1:5000/x/base, tag: moving, digest: "{OLD}"}}}}
  - {{name: p, arch: ppc64le, family: f, tags: [t],
     base: {{image: 127.0.0.1:5000/x/base, tag: moving}}}}
"""
    p = write(tmp_path, targets)
    text = p.read_text()
    out = rewrite_digests(text, p, {0: NEW, 1: NEW})
    assert out == text.replace(f'"{OLD}"', f'"{NEW}"').replace(
        "tag: moving}}\n", f"tag: moving, digest: {NEW}}}}}\n"
    )
    cfg = load_config_text(tmp_path, out)
    assert [t.base.digest for t in cfg.targets] == [NEW, NEW]  # type: ignore[union-attr]


def load_config_text(tmp_path: Path, text: str) -> Config:
    q = tmp_path / "check.yaml"
    q.write_text(text)
    return load_config(q)


# ----------------------------------------------------------------------------- QEMU


needs_dpkg = pytest.mark.skipif(shutil.which("dpkg") is None, reason="needs dpkg")


@needs_dpkg
@pytest.mark.parametrize(
    ("a", "b", "newer"),
    [
        ("1:7.2+dfsg-7+deb12u19", "1:7.2+dfsg-7+deb12u18+b3", True),
        ("1:7.2+dfsg-7+deb12u18+b3", "1:7.2+dfsg-7+deb12u18", True),  # binNMU
        ("1:10.0.2+ds-1~bpo12+1", "1:7.2+dfsg-7+deb12u18+b3", True),
        ("7.2+dfsg-7+deb12u20", "1:7.2+dfsg-7+deb12u18+b3", False),  # the epoch wins
        ("1:7.2+dfsg-7+deb12u18+b3", "1:7.2+dfsg-7+deb12u18+b3", False),
    ],
)
def test_debian_versions_compare_like_dpkg(a: str, b: str, newer: bool) -> None:
    assert dpkg_newer(a, b) is newer


@needs_dpkg
def test_a_newer_candidate_is_reported_with_what_to_change(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        f"""\
  - name: a
    arch: aarch64
    base: {{image: 127.0.0.1:5000/x/base, tag: t, digest: {OLD}}}
    family: f
    tags: [t]
""",
    )
    cfg = load_config(p)
    q = check_qemu(cfg.qemu, candidate=lambda pkg, arch: "1:7.2+dfsg-7+deb12u19")
    assert q.newer and q.candidate == "1:7.2+dfsg-7+deb12u19"
    advice = qemu_advice(cfg, q)
    assert "qemu.version: 7.2+dfsg-7+deb12u19" in advice
    assert 'qemu.source.apt.version: "1:7.2+dfsg-7+deb12u19"' in advice
    assert "sha256" in advice
    same = check_qemu(cfg.qemu, candidate=lambda pkg, arch: cfg.qemu.source.version)
    assert not same.newer and not same.note
    older = check_qemu(cfg.qemu, candidate=lambda pkg, arch: "1:7.2+dfsg-7+deb12u1")
    assert not older.newer and "apt-get update" in older.note


def test_no_candidate_is_an_error_not_a_pass(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        f"""\
  - name: a
    arch: aarch64
    base: {{image: 127.0.0.1:5000/x/base, tag: t, digest: {OLD}}}
    family: f
    tags: [t]
""",
    )
    cfg = load_config(p)
    with pytest.raises(FetchError, match="apt offers no qemu-user-static"):
        check_qemu(cfg.qemu, candidate=lambda pkg, arch: "", newer=lambda a, b: False)
