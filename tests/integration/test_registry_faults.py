"""Registry faults (issue 11, item 7), each through the real CLI against a real
docker-registry behind the fault-injecting proxy (faultproxy.py): the registry killed
during the index write and during a layer upload, answering 500, answering slower
than the client's timeout, dropping the connection mid-answer, refusing credentials.

Each case checks what a user relies on: exit 1, a message naming the registry and no
traceback, no index in the registry pointing at anything missing, a report that does
not claim the failed index, and a rerun that converges once the registry is back.

The index-write cases need no Docker: the per-arch images are uploaded with the
registry API and `push-index` (the CI fan-out step) writes the index. The layer-upload
case needs a real `docker push` and is marked docker.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.integration.conftest import OFFLINE, free_port, write_config
from tests.integration.faultproxy import FaultProxy, Rule
from xarch.model.config import Config, PinnedBase, load_config
from xarch.model.naming import L_INPUTS, PublishItem, helper_items
from xarch.model.report import push_record, read_report
from xarch.oci import registry_server as rs
from xarch.oci.registry import DOCKER_MANIFEST, INDEX_MEDIA_TYPES, RegistryClient
from xarch.publish.fanout import DIGEST_SCHEMA

pytestmark = pytest.mark.registry

FAMILY = "faults"
CLI_TIMEOUT = 120
LAYER_MEDIA = "application/vnd.docker.image.rootfs.diff.tar.gzip"
CONFIG_MEDIA = "application/vnd.docker.container.image.v1+json"


def _quiet(_: str) -> None:
    pass


# -- a registry behind the proxy, killable and restartable -----------------------------


@dataclass
class Faulty:
    state: Path
    port: int
    server: rs.RegistryServer
    proxy: FaultProxy
    htpasswd: Path | None = None
    auth: tuple[str, str] | None = None

    def kill(self) -> None:
        os.kill(self.server.pid, signal.SIGKILL)

    def restart(self) -> None:
        """Start the registry again on the same port and storage (it was killed)."""
        self.server = rs.start(self.state, port=self.port, htpasswd=self.htpasswd, log=_quiet)

    @property
    def backend(self) -> RegistryClient:
        """A client that talks to the registry itself, past the proxy."""
        return RegistryClient(f"127.0.0.1:{self.port}", auth=self.auth, timeout=30)


def _faulty(tmp_path: Path, htpasswd_user: tuple[str, str] | None = None) -> Iterator[Faulty]:
    if not shutil.which(rs.BINARY):
        pytest.skip("docker-registry is not installed (apt-get install docker-registry)")
    state = tmp_path / "registry"
    state.mkdir()
    htpasswd = None
    if htpasswd_user is not None:
        if not shutil.which("htpasswd"):
            pytest.skip("htpasswd is not installed (apt-get install apache2-utils)")
        htpasswd = rs.make_htpasswd(state / "htpasswd", *htpasswd_user)
    port = free_port()
    server = rs.start(state, port=port, htpasswd=htpasswd, log=_quiet)
    faulty = Faulty(state, port, server, FaultProxy("127.0.0.1", port), htpasswd, htpasswd_user)
    faulty.proxy.kill = faulty.kill
    faulty.proxy.start()
    try:
        yield faulty
    finally:
        faulty.proxy.stop()
        rs.stop(state, log=_quiet, purge=True)


@pytest.fixture
def faulty(tmp_path: Path) -> Iterator[Faulty]:
    yield from _faulty(tmp_path)


@pytest.fixture
def faulty_auth(tmp_path: Path) -> Iterator[Faulty]:
    yield from _faulty(tmp_path, ("xarch-faults", "right-password-" + os.urandom(4).hex()))


# -- per-arch images uploaded with the registry API (no Docker) ------------------------


def _upload_blob(s: requests.Session, base: str, repo: str, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    r = s.post(f"{base}/v2/{repo}/blobs/uploads/", timeout=30)
    assert r.status_code == 202, r.text
    location = r.headers["Location"]
    location = location if location.startswith("http") else base + location
    sep = "&" if "?" in location else "?"
    r = s.put(f"{location}{sep}digest={digest}", data=data, timeout=30)
    assert r.status_code == 201, r.text
    return digest


def upload_image(faulty: Faulty, item: PublishItem) -> dict[str, Any]:
    """A one-layer image of item's platform under item.repository:item.tag, uploaded to
    the registry directly; its digest-file entry."""
    base = f"http://127.0.0.1:{faulty.port}"
    s = requests.Session()
    s.trust_env = False
    if faulty.auth:
        s.auth = faulty.auth
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w:gz") as tar:
        data = f"{item.target} {item.arch.name}\n".encode()
        info = tarfile.TarInfo("hello.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    layer_bytes = layer.getvalue()
    platform = item.arch.oci_platform()
    config = json.dumps(
        {**platform, "config": {"Labels": {L_INPUTS: "faults"}}, "rootfs": {"type": "layers"}}
    ).encode()
    layer_digest = _upload_blob(s, base, item.repository, layer_bytes)
    config_digest = _upload_blob(s, base, item.repository, config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": CONFIG_MEDIA, "size": len(config), "digest": config_digest},
            "layers": [
                {"mediaType": LAYER_MEDIA, "size": len(layer_bytes), "digest": layer_digest}
            ],
        }
    ).encode()
    r = s.put(
        f"{base}/v2/{item.repository}/manifests/{item.tag}",
        data=manifest,
        headers={"Content-Type": DOCKER_MANIFEST},
        timeout=30,
    )
    assert r.status_code == 201, r.text
    return {
        "tag": item.index_tag,
        "ref": item.ref,
        "digest": "sha256:" + hashlib.sha256(manifest).hexdigest(),
        "media_type": DOCKER_MANIFEST,
        "size": len(manifest),
        "platform": platform,
    }


@dataclass
class Published:
    config: Config
    digests: Path
    items: list[PublishItem]
    env: dict[str, str]
    report: Path


def fake_bases() -> dict[str, PinnedBase]:
    return {
        arch: PinnedBase(
            image=f"quay.io/pypa/manylinux2014_{arch}",
            tag="2026.08.15-1",
            digest="sha256:" + hashlib.sha256(arch.encode()).hexdigest(),
        )
        for arch in ("aarch64", "ppc64le")
    }


def publish_images(faulty: Faulty, tmp_path: Path, docker_config: dict[str, Any]) -> Published:
    """A config publishing to the proxy, its images in the registry, the digest files
    push-arch would have written, and the CLI's environment."""
    cfg_path = write_config(
        tmp_path / "faults.yaml",
        faulty.proxy.address,
        fake_bases(),
        load_config(OFFLINE),
        namespace="xarch-faults",
        family=FAMILY,
    )
    config = load_config(cfg_path)
    digests = tmp_path / "digests"
    digests.mkdir()
    items = helper_items(config, config.targets)
    for t in config.targets:
        images = [upload_image(faulty, i) for i in items if i.target == t.name]
        doc = {
            "schema": DIGEST_SCHEMA,
            "target": t.name,
            "family": t.family,
            "arch": t.arch.name,
            "registry": config.registry.address,
            "repository": config.registry.repository(t.family),
            "images": images,
        }
        (digests / f"{t.name}.json").write_text(json.dumps(doc))
    dcfg = tmp_path / "docker-config"
    dcfg.mkdir()
    (dcfg / "config.json").write_text(json.dumps(docker_config))
    env = {
        **os.environ,
        "XARCH_BUILD_DIR": str(tmp_path / "build"),
        "XARCH_STATE_DIR": str(tmp_path / "state"),
        "DOCKER_CONFIG": str(dcfg),
        "XARCH_REGISTRY_TIMEOUT": "20",
    }
    env.pop("XARCH_DEBUG", None)
    return Published(config, digests, items, env, tmp_path / "build" / "xarch-report.json")


def run_cli(published: Published, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "xarch", *args, "--config", str(published.config.path)],
        env={**published.env, **env},
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )


def push_index(published: Published, **env: str) -> subprocess.CompletedProcess[str]:
    return run_cli(published, "push-index", "--digests-dir", str(published.digests), **env)


# -- what must hold after every fault --------------------------------------------------


def assert_failed_clearly(r: subprocess.CompletedProcess[str], published: Published) -> None:
    assert r.returncode == 1, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    assert "Traceback" not in r.stderr + r.stdout
    assert published.config.registry.address in r.stderr, r.stderr


def assert_no_dangling_index(faulty: Faulty, published: Published) -> None:
    """Every tag in the repository that is an index lists only manifests the registry
    has (asked of the registry itself, past the proxy)."""
    with faulty.backend as reg:
        repo = published.items[0].repository
        for tag in reg.tags(repo):
            desc, doc = reg.get_manifest(repo, tag)
            if desc.media_type in INDEX_MEDIA_TYPES:
                for m in doc["manifests"]:
                    assert reg.head_manifest(repo, m["digest"]) is not None, (tag, m)


def index_in_registry(faulty: Faulty, published: Published) -> str | None:
    item = published.items[0]
    with faulty.backend as reg:
        desc = reg.head_manifest(item.repository, item.index_tag)
    return desc.digest if desc else None


def recorded_indexes(published: Published) -> dict[str, str]:
    record = push_record(read_report(published.report), published.config) or {}
    return {str(i["ref"]): str(i["digest"]) for i in record.get("indexes", [])}


def assert_converges(faulty: Faulty, published: Published) -> None:
    """With the fault gone, a rerun writes the index, and the report records it."""
    faulty.proxy.clear()
    r = push_index(published)
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-2000:])
    digest = index_in_registry(faulty, published)
    assert digest is not None
    assert recorded_indexes(published) == {published.items[0].index_ref: digest}
    assert_no_dangling_index(faulty, published)


NO_CREDS: dict[str, Any] = {"auths": {}}


# -- the index write -------------------------------------------------------------------


def test_index_write_answered_500(faulty: Faulty, tmp_path: Path) -> None:
    published = publish_images(faulty, tmp_path, NO_CREDS)
    rule = faulty.proxy.add(Rule("PUT", r"/manifests/", "status", code=500))
    r = push_index(published)
    assert rule.fired == 1
    assert_failed_clearly(r, published)
    assert "HTTP 500" in r.stderr
    assert index_in_registry(faulty, published) is None
    assert recorded_indexes(published) == {}
    assert_no_dangling_index(faulty, published)
    assert_converges(faulty, published)


def test_registry_killed_during_the_index_write(faulty: Faulty, tmp_path: Path) -> None:
    published = publish_images(faulty, tmp_path, NO_CREDS)
    faulty.proxy.add(Rule("PUT", r"/manifests/", "kill"))
    r = push_index(published)
    assert_failed_clearly(r, published)
    assert "cannot reach the registry" in r.stderr or "did not answer" in r.stderr
    assert recorded_indexes(published) == {}
    faulty.restart()
    assert index_in_registry(faulty, published) is None  # half a body is never stored
    assert_no_dangling_index(faulty, published)
    assert_converges(faulty, published)


def test_registry_down_from_the_start(faulty: Faulty, tmp_path: Path) -> None:
    published = publish_images(faulty, tmp_path, NO_CREDS)
    faulty.kill()
    r = push_index(published)
    assert_failed_clearly(r, published)
    assert "is the registry running?" in r.stderr
    faulty.restart()
    assert_converges(faulty, published)


def test_connection_dropped_after_the_registry_stored_the_index(
    faulty: Faulty, tmp_path: Path
) -> None:
    published = publish_images(faulty, tmp_path, NO_CREDS)
    faulty.proxy.add(Rule("PUT", r"/manifests/", "drop-response"))
    r = push_index(published)
    assert_failed_clearly(r, published)
    # The registry did store it (every entry present); the report does not claim it.
    assert recorded_indexes(published) == {}
    assert_no_dangling_index(faulty, published)
    assert_converges(faulty, published)


@pytest.mark.parametrize("path", [r"/manifests/", r"/blobs/"])
def test_read_back_dropped_mid_body(faulty: Faulty, tmp_path: Path, path: str) -> None:
    published = publish_images(faulty, tmp_path, NO_CREDS)
    rule = faulty.proxy.add(Rule("GET", path, "drop-response"))
    r = push_index(published)
    assert rule.fired >= 1
    assert_failed_clearly(r, published)
    assert index_in_registry(faulty, published) is None
    assert_converges(faulty, published)


@pytest.mark.parametrize("where", [("GET", r"^/v2/$"), ("PUT", r"/manifests/")])
def test_slow_registry_gives_a_timeout_message_not_a_hang(
    faulty: Faulty, tmp_path: Path, where: tuple[str, str]
) -> None:
    published = publish_images(faulty, tmp_path, NO_CREDS)
    faulty.proxy.add(Rule(where[0], where[1], "delay", seconds=6))
    start = time.monotonic()
    r = push_index(published, XARCH_REGISTRY_TIMEOUT="1.5")
    elapsed = time.monotonic() - start
    assert_failed_clearly(r, published)
    assert "did not answer within 1.5 s" in r.stderr
    assert "XARCH_REGISTRY_TIMEOUT" in r.stderr
    assert elapsed < 5.5, f"took {elapsed:.1f} s: the 1.5 s timeout was not applied"
    assert recorded_indexes(published) == {}
    time.sleep(6)  # the slow registry may still write what it was sent: never dangling
    assert_no_dangling_index(faulty, published)
    assert_converges(faulty, published)


def test_bad_registry_timeout_is_bad_input(faulty: Faulty, tmp_path: Path) -> None:
    published = publish_images(faulty, tmp_path, NO_CREDS)
    r = push_index(published, XARCH_REGISTRY_TIMEOUT="forever")
    assert r.returncode == 2
    assert "XARCH_REGISTRY_TIMEOUT='forever'" in r.stderr
    assert "Traceback" not in r.stderr
    assert faulty.proxy.requests == []  # refused before any request


def _docker_auth(address: str, user: str, password: str) -> dict[str, Any]:
    token = f"{user}:{password}".encode()
    return {"auths": {address: {"auth": base64.b64encode(token).decode()}}}


def test_registry_refuses_the_credentials(faulty_auth: Faulty, tmp_path: Path) -> None:
    assert faulty_auth.auth is not None
    user, password = faulty_auth.auth
    address = faulty_auth.proxy.address
    published = publish_images(faulty_auth, tmp_path, _docker_auth(address, user, "wrong"))
    r = push_index(published)
    assert_failed_clearly(r, published)
    assert "HTTP 401" in r.stderr
    assert f"credentials for user {user!r} were sent and refused" in r.stderr
    assert f"docker login {address}" in r.stderr
    assert "wrong" not in r.stderr + r.stdout  # the password is never printed
    assert index_in_registry(faulty_auth, published) is None
    # Logged in (the right password in docker's config): the rerun converges.
    (Path(published.env["DOCKER_CONFIG"]) / "config.json").write_text(
        json.dumps(_docker_auth(address, user, password))
    )
    assert_converges(faulty_auth, published)


def test_no_credentials_for_an_auth_registry(faulty_auth: Faulty, tmp_path: Path) -> None:
    published = publish_images(faulty_auth, tmp_path, NO_CREDS)
    r = push_index(published)
    assert_failed_clearly(r, published)
    assert "no credentials" in r.stderr
    assert index_in_registry(faulty_auth, published) is None


# -- layer uploads: a real docker push through the proxy -------------------------------


def _docker_archive(ref: str, platform: dict[str, str], content: bytes) -> bytes:
    """A `docker save` archive of a labelled one-layer image of ``platform`` (Docker
    20.10 records the host's platform on builds, so the config is written here)."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        info = tarfile.TarInfo("payload.bin")
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    layer_bytes = layer.getvalue()
    diff_id = hashlib.sha256(layer_bytes).hexdigest()
    config = json.dumps(
        {
            **platform,
            "created": "2026-01-01T00:00:00Z",
            "config": {"Labels": {L_INPUTS: "faults"}},
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
        }
    ).encode()
    name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = [{"Config": name, "RepoTags": [ref], "Layers": [f"{diff_id}/layer.tar"]}]
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for member, data in (
            (name, config),
            (f"{diff_id}/layer.tar", layer_bytes),
            ("manifest.json", json.dumps(manifest).encode()),
        ):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def docker_errors(_: Any) -> type[Exception]:
    import docker.errors

    return docker.errors.APIError  # type: ignore[no-any-return]


@pytest.fixture
def docker_client() -> Iterator[Any]:
    docker = pytest.importorskip("docker")
    try:
        client = docker.from_env(timeout=300)
        client.ping()
    except docker.errors.DockerException as e:
        pytest.skip(f"no Docker engine: {e}")
    yield client
    client.close()


@pytest.mark.docker
def test_registry_killed_during_a_layer_upload(
    faulty: Faulty, tmp_path: Path, docker_client: Any
) -> None:
    """push-images with the registry killed in the middle of a layer's upload: no index
    at all, exit 1 naming the registry; restarted, the rerun pushes and indexes all."""
    published = publish_images(faulty, tmp_path, NO_CREDS)
    # Fresh repositories for the docker push (the API-uploaded images stay apart).
    refs = []
    for n, item in enumerate(published.items):
        payload = os.urandom(4 << 20) + str(n).encode()  # several MiB: a real upload
        docker_client.images.load(_docker_archive(item.ref, item.arch.oci_platform(), payload))
        refs.append(item.ref)
    with faulty.backend as reg:
        for item in published.items:  # remove the API-uploaded per-arch tags' manifests
            desc = reg.head_manifest(item.repository, item.tag)
            if desc is not None:
                reg.delete_manifest(item.repository, desc.digest)
    try:
        # The second image's layer: the first image and its manifest are already in.
        rule = faulty.proxy.add(Rule("PATCH|PUT", r"/blobs/uploads/", "kill", nth=3))
        targets = [a for t in published.config.targets for a in ("--target", t.name)]
        r = run_cli(published, "push-images", *targets)
        assert rule.fired == 1
        assert_failed_clearly(r, published)
        assert recorded_indexes(published) == {}
        faulty.restart()
        assert index_in_registry(faulty, published) is None
        assert_no_dangling_index(faulty, published)
        faulty.proxy.clear()
        r = run_cli(published, "push-images", *targets)
        assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
        digest = index_in_registry(faulty, published)
        assert digest is not None
        assert recorded_indexes(published) == {published.items[0].index_ref: digest}
        assert_no_dangling_index(faulty, published)
    finally:
        for ref in refs:
            with contextlib.suppress(docker_errors(docker_client)):
                docker_client.images.remove(ref, force=True)


@pytest.mark.docker
def test_layer_upload_answered_500(faulty: Faulty, tmp_path: Path, docker_client: Any) -> None:
    published = publish_images(faulty, tmp_path, NO_CREDS)
    refs = []
    for n, item in enumerate(published.items):
        payload = os.urandom(1 << 20) + str(n).encode()
        docker_client.images.load(_docker_archive(item.ref, item.arch.oci_platform(), payload))
        refs.append(item.ref)
    try:
        faulty.proxy.add(Rule("PATCH|PUT", r"/blobs/uploads/", "status", code=500))
        targets = [a for t in published.config.targets for a in ("--target", t.name)]
        r = run_cli(published, "push-images", *targets)
        assert_failed_clearly(r, published)
        assert recorded_indexes(published) == {}
        assert_no_dangling_index(faulty, published)
        faulty.proxy.clear()
        r = run_cli(published, "push-images", *targets)
        assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
        assert index_in_registry(faulty, published) is not None
        assert_no_dangling_index(faulty, published)
    finally:
        for ref in refs:
            with contextlib.suppress(docker_errors(docker_client)):
                docker_client.images.remove(ref, force=True)
