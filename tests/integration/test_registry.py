"""The embedded registry and the registry client against a real docker-registry
(distribution 2.8) process; images are pushed with the docker SDK."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import secrets
import socket
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from xarch.errors import RegistryError
from xarch.oci import registry_server as rs
from xarch.oci.registry import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    Descriptor,
    RegistryClient,
    build_index,
    index_media_type_for,
)
from xarch.oci.registry_server import RegistryServer

pytestmark = pytest.mark.registry

ARM64 = {"os": "linux", "architecture": "arm64", "variant": "v8"}
PPC64LE = {"os": "linux", "architecture": "ppc64le"}


def _quiet(_: str) -> None:
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# -- docker helpers ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def docker_client() -> Iterator[Any]:
    docker = pytest.importorskip("docker")
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except Exception as e:  # no engine: these tests cannot run
        pytest.skip(f"no Docker engine: {e}")
    yield client
    client.close()


def _tar_add(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = 0
    tar.addfile(info, io.BytesIO(data))


def docker_archive(ref: str, platform: dict[str, str], content: bytes) -> bytes:
    """A `docker save` style archive (manifest.json + config + layer.tar) of a one-file
    image whose config records platform. Docker 20.10 ignores --platform on import and
    classic builds, so the config is written here with the architecture we want."""
    layer_buf = io.BytesIO()
    with tarfile.open(fileobj=layer_buf, mode="w", format=tarfile.PAX_FORMAT) as layer:
        _tar_add(layer, "hello.txt", content)
    layer_bytes = layer_buf.getvalue()
    diff_id = hashlib.sha256(layer_bytes).hexdigest()
    config = {
        **platform,
        "created": "2026-01-01T00:00:00Z",
        "config": {"Cmd": ["/hello.txt"], "Labels": {"org.xarch.test": "registry"}},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
        "history": [{"created": "2026-01-01T00:00:00Z", "created_by": "xarch test"}],
    }
    config_bytes = json.dumps(config).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    manifest = [{"Config": config_name, "RepoTags": [ref], "Layers": [f"{diff_id}/layer.tar"]}]
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        _tar_add(tar, config_name, config_bytes)
        _tar_add(tar, f"{diff_id}/layer.tar", layer_bytes)
        _tar_add(tar, "manifest.json", json.dumps(manifest).encode())
    return out.getvalue()


def load_image(client: Any, ref: str, platform: dict[str, str], content: bytes) -> str:
    images = client.images.load(docker_archive(ref, platform, content))
    assert len(images) == 1
    image_id: str = images[0].id
    return image_id


def docker_push(client: Any, ref: str, auth_config: dict[str, str] | None = None) -> str:
    """Push with the SDK, reading the stream: the SDK does not raise on push errors."""
    repo, tag = ref.rsplit(":", 1)
    digest = ""
    for event in client.api.push(repo, tag=tag, stream=True, decode=True, auth_config=auth_config):
        if "error" in event or "errorDetail" in event:
            pytest.fail(f"docker push {ref}: {event.get('error') or event.get('errorDetail')}")
        aux = event.get("aux")
        if isinstance(aux, dict) and aux.get("Digest"):
            digest = str(aux["Digest"])
    assert digest.startswith("sha256:"), f"docker push {ref} reported no digest"
    return digest


def remove_image(client: Any, ref: str) -> None:
    import docker.errors

    with contextlib.suppress(docker.errors.ImageNotFound):
        client.images.remove(ref)


@dataclass(frozen=True)
class Pushed:
    repo: str
    ref: str  # registry/repo:tag
    tag: str
    image_id: str
    digest: str
    platform: dict[str, str]


@pytest.fixture(scope="module")
def pushed(docker_client: Any, registry_server: RegistryServer) -> Iterator[dict[str, Pushed]]:
    """Two real single-arch images (arm64/v8 and ppc64le) pushed to the session registry."""
    repo = "xarch-test/multi"
    token = secrets.token_hex(8).encode()  # unique image ids: nothing shared with others
    out: dict[str, Pushed] = {}
    refs: list[str] = []
    try:
        for tag, platform in (("aarch64", ARM64), ("ppc64le", PPC64LE)):
            ref = f"{registry_server.address}/{repo}:{tag}"
            refs.append(ref)
            image_id = load_image(docker_client, ref, platform, b"hello " + tag.encode() + token)
            attrs = docker_client.api.inspect_image(ref)
            assert attrs["Architecture"] == platform["architecture"]
            digest = docker_push(docker_client, ref)
            out[tag] = Pushed(repo, ref, tag, image_id, digest, platform)
        yield out
    finally:
        for ref in refs:
            remove_image(docker_client, ref)


# -- the server ---------------------------------------------------------------------------


def test_start_status_idempotent_stop(tmp_path: Path) -> None:
    state = tmp_path / "reg"
    port = free_port()
    lines: list[str] = []
    server = rs.start(state, port=port, log=lines.append)
    try:
        assert server.address == f"127.0.0.1:{port}"
        assert lines[0] == f"+ docker-registry serve {state.resolve() / 'config.yml'}"
        assert rs.status(state) == server
        info = json.loads((state / "registry.json").read_text())
        assert info["address"] == server.address and info["pid"] == server.pid
        assert int((state / "registry.pid").read_text()) == server.pid
        config = (state / "config.yml").read_text()
        assert str(state.resolve() / "data") in config

        again: list[str] = []
        assert rs.start(state, port=port, log=again.append) == server
        assert any("already running at" in line for line in again)
        with pytest.raises(RegistryError, match="already runs at"):
            rs.start(state, port=free_port(), log=_quiet)

        with RegistryClient(server.address) as client:
            client.ping()
            assert client.tags("nothing/here") == []
    finally:
        stopped = rs.stop(state, log=_quiet)
    assert stopped
    assert rs.status(state) is None
    assert not (state / "registry.pid").exists()
    assert (state / "data").is_dir()  # the storage is kept
    with pytest.raises(RegistryError, match="invoke registry-up"):
        RegistryClient(server.address).ping()

    lines.clear()
    assert rs.stop(state, log=lines.append) is False
    assert any("not running" in line for line in lines)

    # A restart from the same state dir, then a purge.
    rs.start(state, port=port, log=_quiet)
    assert rs.stop(state, log=_quiet, purge=True)
    assert not (state / "data").exists()


def test_stale_pid_file_is_ignored_and_never_signalled(tmp_path: Path) -> None:
    state = tmp_path / "reg"
    state.mkdir()
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        (state / "registry.pid").write_text(f"{sleeper.pid}\n")
        assert rs.status(state) is None
        assert rs.stop(state, log=_quiet) is False
        assert sleeper.poll() is None  # not ours: left alone
    finally:
        sleeper.kill()
        sleeper.wait()


def test_port_in_use_is_a_clear_error(tmp_path: Path, registry_server: RegistryServer) -> None:
    state = tmp_path / "other"
    with pytest.raises(RegistryError) as exc:
        rs.start(state, port=registry_server.port, log=_quiet)
    text = str(exc.value)
    assert f"127.0.0.1:{registry_server.port} is already in use" in text
    assert "choose another port" in text
    assert rs.status(state) is None
    assert not (state / "registry.pid").exists()

    # A plain listening socket, not a registry, is refused the same way.
    with socket.create_server(("127.0.0.1", 0)) as sock:
        port = sock.getsockname()[1]
        with pytest.raises(RegistryError, match=f"127.0.0.1:{port} is already in use"):
            rs.start(state, port=port, log=_quiet)


def test_registry_exit_shows_the_log_tail(
    tmp_path: Path, registry_server: RegistryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When docker-registry itself fails (here: the port check is skipped, so the
    registry meets the taken port), the error carries the end of its log."""
    monkeypatch.setattr(rs, "_check_port_free", lambda host, port: None)
    state = tmp_path / "other"
    with pytest.raises(RegistryError) as exc:
        rs.start(state, port=registry_server.port, log=_quiet)
    text = str(exc.value)
    assert "exited with status" in text
    assert "address already in use" in text
    assert str(state.resolve() / "registry.log") in text
    assert not (state / "registry.pid").exists()


def test_missing_binary_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RegistryError, match="apt-get install docker-registry"):
        rs.start(tmp_path / "reg", port=free_port(), log=_quiet)


def test_make_htpasswd_writes_bcrypt_and_keeps_other_users(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    rs.make_htpasswd(path, "alice", "s3cret-a")
    rs.make_htpasswd(path, "bob", "s3cret-b")
    rs.make_htpasswd(path, "alice", "changed")
    lines = path.read_text().splitlines()
    assert [line.split(":", 1)[0] for line in lines] == ["bob", "alice"]
    assert all(line.split(":", 1)[1].startswith("$2y$") for line in lines)
    assert "changed" not in path.read_text()
    assert path.stat().st_mode & 0o077 == 0
    ok = subprocess.run(["htpasswd", "-vb", str(path), "alice", "changed"], capture_output=True)
    assert ok.returncode == 0, ok.stderr
    with pytest.raises(RegistryError):
        rs.make_htpasswd(path, "a:b", "x")


# -- the client against images pushed by docker -----------------------------------------


@pytest.mark.docker
def test_pushed_images_have_the_intended_platforms(
    pushed: dict[str, Pushed], registry_server: RegistryServer
) -> None:
    client = RegistryClient(registry_server.address)
    for p in pushed.values():
        desc = client.head_manifest(p.repo, p.tag)
        assert desc is not None
        assert desc.digest == p.digest == client.resolve(p.repo, p.tag)
        assert desc.media_type == DOCKER_MANIFEST  # what Docker 20.10 pushes
        assert client.image_platform(p.repo, p.tag) == p.platform
        assert client.image_config(p.repo, p.digest)["config"]["Labels"] == {
            "org.xarch.test": "registry"
        }
        by_digest, manifest = client.get_manifest(p.repo, p.digest)
        assert by_digest.digest == p.digest and by_digest.size == desc.size
        assert manifest["mediaType"] == DOCKER_MANIFEST
    assert set(client.tags("xarch-test/multi")) >= {"aarch64", "ppc64le"}


@pytest.mark.docker
def test_push_index_and_read_back(
    pushed: dict[str, Pushed], registry_server: RegistryServer, docker_client: Any
) -> None:
    client = RegistryClient(registry_server.address)
    repo = "xarch-test/multi"
    entries = [client.manifest_descriptor(repo, p.digest) for p in pushed.values()]
    assert [e.platform for e in entries] == [ARM64, PPC64LE]
    assert index_media_type_for(entries) == DOCKER_MANIFEST_LIST

    index = client.push_index(repo, "latest", entries)
    assert index.media_type == DOCKER_MANIFEST_LIST
    assert index.digest == build_index(entries)[1]
    assert client.resolve(repo, "latest") == index.digest

    back, doc = client.get_manifest(repo, "latest")
    assert back.digest == index.digest and back.media_type == DOCKER_MANIFEST_LIST
    assert doc["schemaVersion"] == 2
    assert [Descriptor.from_json(m) for m in doc["manifests"]] == entries

    # Idempotent: the same entries give the same digest.
    assert client.push_index(repo, "latest", entries).digest == index.digest

    with pytest.raises(RegistryError, match="is an index"):
        client.image_platform(repo, "latest")

    # Docker itself resolves the index per platform to the right image.
    ref = f"{registry_server.address}/{repo}"
    try:
        docker_client.api.pull(ref, tag="latest", platform="linux/arm64")
        assert docker_client.api.inspect_image(f"{ref}:latest")["Id"] == pushed["aarch64"].image_id
    finally:
        remove_image(docker_client, f"{ref}:latest")


@pytest.mark.docker
def test_distribution_accepts_an_oci_index_of_docker_manifests(
    pushed: dict[str, Pushed], registry_server: RegistryServer, docker_client: Any
) -> None:
    """The measurement behind index_media_type_for: distribution 2.8 stores and serves an
    OCI index whose entries are Docker schema2 manifests, and docker pulls through it."""
    client = RegistryClient(registry_server.address)
    repo = "xarch-test/multi"
    entries = [client.manifest_descriptor(repo, p.digest) for p in pushed.values()]
    index = client.push_index(repo, "oci", entries, media_type=OCI_INDEX)
    back, doc = client.get_manifest(repo, "oci")
    assert back.media_type == doc["mediaType"] == OCI_INDEX
    assert back.digest == index.digest == build_index(entries, OCI_INDEX)[1]
    ref = f"{registry_server.address}/{repo}"
    try:
        docker_client.api.pull(ref, tag="oci", platform="linux/ppc64le")
        assert docker_client.api.inspect_image(f"{ref}:oci")["Id"] == pushed["ppc64le"].image_id
    finally:
        remove_image(docker_client, f"{ref}:oci")


@pytest.mark.docker
def test_push_index_refuses_missing_entries_and_writes_nothing(
    pushed: dict[str, Pushed], registry_server: RegistryServer
) -> None:
    client = RegistryClient(registry_server.address)
    repo = "xarch-test/multi"
    good = client.manifest_descriptor(repo, pushed["aarch64"].digest)
    missing = Descriptor(
        DOCKER_MANIFEST, "sha256:" + hashlib.sha256(b"not pushed").hexdigest(), 523, PPC64LE
    )
    with pytest.raises(RegistryError) as exc:
        client.push_index(repo, "refused", [good, missing])
    assert missing.digest in str(exc.value)
    assert "nothing was written" in str(exc.value)
    assert client.head_manifest(repo, "refused") is None

    # An image of another repository is "missing" here too.
    other = "xarch-test/other"
    with pytest.raises(RegistryError, match="is not in xarch-test/other"):
        client.push_index(other, "refused", [good])
    assert client.head_manifest(other, "refused") is None

    # An entry without a platform is refused before anything is sent.
    bare = Descriptor(good.media_type, good.digest, good.size, None)
    with pytest.raises(RegistryError, match="no platform"):
        client.push_index(repo, "refused", [bare])
    assert client.head_manifest(repo, "refused") is None


@pytest.mark.docker
def test_resolve_follows_a_moved_tag_and_delete(
    pushed: dict[str, Pushed], registry_server: RegistryServer
) -> None:
    client = RegistryClient(registry_server.address)
    repo = "xarch-test/multi"
    arm_desc, arm_body = client.get_manifest_raw(repo, pushed["aarch64"].digest)
    ppc_desc, ppc_body = client.get_manifest_raw(repo, pushed["ppc64le"].digest)

    assert client.put_manifest(repo, "moving", arm_body, arm_desc.media_type) == arm_desc.digest
    assert client.resolve(repo, "moving") == pushed["aarch64"].digest
    assert client.put_manifest(repo, "moving", ppc_body, ppc_desc.media_type) == ppc_desc.digest
    assert client.resolve(repo, "moving") == pushed["ppc64le"].digest

    # Deleting an index removes it and its tag; the images stay.
    entries = [client.manifest_descriptor(repo, p.digest) for p in pushed.values()]
    index = client.push_index(repo, "doomed", entries)
    client.delete_manifest(repo, index.digest)
    assert client.head_manifest(repo, "doomed") is None
    assert client.head_manifest(repo, index.digest) is None
    assert "doomed" not in client.tags(repo)
    assert client.head_manifest(repo, pushed["aarch64"].digest) is not None


def test_client_errors_say_what_to_do(registry_server: RegistryServer) -> None:
    client = RegistryClient(registry_server.address)
    with pytest.raises(RegistryError) as exc:
        client.get_manifest("xarch-test/none", "missing")
    text = str(exc.value)
    assert f"GET http://{registry_server.address}/v2/xarch-test/none/manifests/missing" in text
    assert "HTTP 404" in text and "MANIFEST_UNKNOWN" in text
    assert "tag or digest not in repository" in text
    with pytest.raises(RegistryError, match="tag or digest not in repository"):
        client.resolve("xarch-test/none", "missing")
    assert client.head_manifest("xarch-test/none", "missing") is None

    down = RegistryClient(f"127.0.0.1:{free_port()}")
    with pytest.raises(RegistryError, match="is the registry running"):
        down.ping()


# -- auth ------------------------------------------------------------------------------


@pytest.fixture
def empty_docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point docker's config at an empty directory so host logins do not leak in."""
    cfg = tmp_path / "docker-config"
    cfg.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(cfg))
    return cfg


def _secrets_of(reg: Any) -> list[str]:
    basic = base64.b64encode(f"{reg.user}:{reg.password}".encode()).decode()
    return [reg.password, basic]


def test_auth_required_without_credentials(
    auth_registry_server: Any, empty_docker_config: Path
) -> None:
    client = RegistryClient(auth_registry_server.address)
    with pytest.raises(RegistryError) as exc:
        client.ping()
    text = str(exc.value)
    assert "HTTP 401" in text
    assert f"docker login {auth_registry_server.address}" in text
    assert "no credentials" in text


def test_auth_with_wrong_password_names_no_secret(
    auth_registry_server: Any, empty_docker_config: Path
) -> None:
    wrong = secrets.token_urlsafe(12)
    client = RegistryClient(auth_registry_server.address, auth=(auth_registry_server.user, wrong))
    with pytest.raises(RegistryError) as exc:
        client.ping()
    text = str(exc.value)
    assert "sent and refused" in text and "docker login" in text
    assert wrong not in text and wrong not in repr(client)
    assert base64.b64encode(f"{auth_registry_server.user}:{wrong}".encode()).decode() not in text


def test_auth_with_credentials(auth_registry_server: Any, empty_docker_config: Path) -> None:
    reg = auth_registry_server
    client = RegistryClient(reg.address, auth=(reg.user, reg.password))
    client.ping()
    assert client.tags("xarch-test/private") == []
    for hidden in _secrets_of(reg):
        assert hidden not in repr(client) and hidden not in str(client)
    with pytest.raises(RegistryError) as exc:
        client.get_manifest("xarch-test/private", "missing")
    for hidden in _secrets_of(reg):
        assert hidden not in str(exc.value) and hidden not in repr(exc.value)
    assert "HTTP 404" in str(exc.value)


def test_auth_from_docker_config(auth_registry_server: Any, empty_docker_config: Path) -> None:
    """With no auth= the client uses what `docker login` stored."""
    reg = auth_registry_server
    token = base64.b64encode(f"{reg.user}:{reg.password}".encode()).decode()
    (empty_docker_config / "config.json").write_text(
        json.dumps({"auths": {reg.address: {"auth": token}}})
    )
    client = RegistryClient(reg.address)
    client.ping()
    assert reg.password not in repr(client)


@pytest.mark.docker
def test_auth_registry_push_and_resolve(
    auth_registry_server: Any, empty_docker_config: Path, docker_client: Any
) -> None:
    reg = auth_registry_server
    ref = f"{reg.address}/xarch-test/private:aarch64"
    load_image(docker_client, ref, ARM64, b"private " + secrets.token_hex(8).encode())
    try:
        digest = docker_push(
            docker_client, ref, auth_config={"username": reg.user, "password": reg.password}
        )
        client = RegistryClient(reg.address, auth=(reg.user, reg.password))
        assert client.resolve("xarch-test/private", "aarch64") == digest
        assert client.image_platform("xarch-test/private", digest) == ARM64
        entry = client.manifest_descriptor("xarch-test/private", digest)
        index = client.push_index("xarch-test/private", "latest", [entry])
        assert client.resolve("xarch-test/private", "latest") == index.digest

        anonymous = RegistryClient(reg.address)
        with pytest.raises(RegistryError, match="docker login"):
            anonymous.head_manifest("xarch-test/private", "aarch64")
    finally:
        remove_image(docker_client, ref)
