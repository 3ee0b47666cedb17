"""A small client of the registry HTTP API v2 (distribution): push multi-arch
indexes, read digests back, resolve tags to digests.

Credentials come from the caller or from docker's own credential store
(``~/.docker/config.json``, credsStore, credHelpers). They are kept out of every
exception, log line and repr.

Measured against Debian's distribution 2.8.2: an OCI image index whose entries
are Docker schema2 manifests (what ``docker push`` from Docker 20.10 writes) is
accepted, stored and served as such, and so is a Docker manifest list; Docker
20.10 pulls through either. The registry checks itself that every entry exists
(400 MANIFEST_BLOB_UNKNOWN otherwise), and a GET whose Accept header lacks the
index's type is answered 404 MANIFEST_UNKNOWN, which is why every manifest
request here accepts all four types.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

import requests

from xarch.errors import BadInput, RegistryError
from xarch.model.envsettings import seconds_from_env

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"

INDEX_MEDIA_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
IMAGE_MEDIA_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
MANIFEST_ACCEPT = ", ".join((OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST))

MAX_MANIFEST_BYTES = 4 * 1024 * 1024  # distribution's own limit for manifests
MAX_JSON_BLOB_BYTES = 64 * 1024 * 1024

_DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPO_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_CHALLENGE_PARAM_RE = re.compile(r'(\w+)\s*=\s*(?:"([^"]*)"|([^\s,]+))')
_ERRNO_RE = re.compile(r"\[Errno -?\d+\][^'\")]*")

UNREACHABLE_HINT = "is the registry running? `invoke registry-up`"

TIMEOUT_ENV = "XARCH_REGISTRY_TIMEOUT"
#: Seconds to wait for a connection and between bytes of an answer (requests' timeout).
DEFAULT_TIMEOUT = 60.0


def timeout_from_env() -> float:
    """XARCH_REGISTRY_TIMEOUT in seconds (default 60); BadInput unless a finite number > 0."""
    return seconds_from_env(TIMEOUT_ENV, DEFAULT_TIMEOUT, allow_zero=False, example="e.g. 60")


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def is_digest(ref: str) -> bool:
    return bool(_DIGEST_RE.match(ref))


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor; platform is set for the entries of an index."""

    media_type: str
    digest: str
    size: int
    # Not hashed (a dict is not hashable); still compared.
    platform: Mapping[str, str] | None = field(default=None, hash=False)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.platform is not None:
            out["platform"] = dict(self.platform)
        return out

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Descriptor:
        platform = doc.get("platform")
        return cls(
            media_type=str(doc.get("mediaType", "")),
            digest=str(doc["digest"]),
            size=int(doc["size"]),
            platform={str(k): str(v) for k, v in platform.items()}
            if isinstance(platform, Mapping)
            else None,
        )

    @property
    def platform_string(self) -> str:
        """os/architecture[/variant], "" without a platform."""
        if not self.platform:
            return ""
        parts = [self.platform.get("os", "?"), self.platform.get("architecture", "?")]
        if self.platform.get("variant"):
            parts.append(self.platform["variant"])
        return "/".join(parts)


# -- building indexes ----------------------------------------------------------------


def index_media_type_for(entries: Sequence[Descriptor]) -> str:
    """The index type for these entries: a Docker manifest list when every entry is a
    Docker schema2 manifest (what `docker push` writes), an OCI index otherwise (an OCI
    index may list Docker schema2 manifests; a Docker list may not list OCI ones)."""
    if not entries:
        raise RegistryError("an index needs at least one entry")
    types = {e.media_type for e in entries}
    if types == {DOCKER_MANIFEST}:
        return DOCKER_MANIFEST_LIST
    return OCI_INDEX


def _check_entries(entries: Sequence[Descriptor], media_type: str) -> None:
    if media_type not in INDEX_MEDIA_TYPES:
        raise RegistryError(
            f"{media_type!r} is not an index media type; use {OCI_INDEX} or {DOCKER_MANIFEST_LIST}"
        )
    if not entries:
        raise RegistryError("an index needs at least one entry")
    seen: dict[str, str] = {}
    for e in entries:
        if not is_digest(e.digest):
            raise RegistryError(f"index entry {e.digest!r} is not a sha256 digest")
        if e.media_type not in IMAGE_MEDIA_TYPES:
            raise RegistryError(
                f"index entry {e.digest} has media type {e.media_type!r}; entries must be image "
                f"manifests ({OCI_MANIFEST} or {DOCKER_MANIFEST})"
            )
        if media_type == DOCKER_MANIFEST_LIST and e.media_type != DOCKER_MANIFEST:
            raise RegistryError(
                f"a Docker manifest list cannot list the OCI manifest {e.digest}; use {OCI_INDEX}"
            )
        if e.size <= 0:
            raise RegistryError(f"index entry {e.digest} has no size")
        if not e.platform or not e.platform.get("os") or not e.platform.get("architecture"):
            raise RegistryError(
                f"index entry {e.digest} has no platform (os and architecture); "
                "an index without platforms cannot be resolved by docker"
            )
        key = e.platform_string
        if key in seen:
            raise RegistryError(
                f"index entries {seen[key]} and {e.digest} have the same platform {key}"
            )
        seen[key] = e.digest


def build_index(entries: Sequence[Descriptor], media_type: str | None = None) -> tuple[bytes, str]:
    """The bytes and digest of an image index listing entries in the given order.

    Deterministic: sorted keys, compact separators, so equal inputs give equal digests.
    media_type defaults to index_media_type_for(entries).
    """
    if media_type is None:
        media_type = index_media_type_for(entries)
    _check_entries(entries, media_type)
    doc = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": [e.to_json() for e in entries],
    }
    body = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
    return body, sha256_digest(body)


# -- the client ------------------------------------------------------------------------


def _split_host(registry: str) -> str:
    """The host part of host[:port], [v6]:port or a bare v6 address."""
    if registry.startswith("["):
        return registry[1:].split("]", 1)[0]
    if registry.count(":") == 1:
        return registry.split(":", 1)[0]
    return registry


def is_local_host(host: str) -> bool:
    return host == "localhost" or host.startswith("127.") or host in ("::1", "0:0:0:0:0:0:0:1")


def _check_repo(repo: str) -> None:
    if not _REPO_RE.match(repo) or len(repo) > 255:
        raise BadInput(
            f"invalid repository name {repo!r}: lowercase letters, digits and separators "
            "(. _ __ -) in '/'-separated components, e.g. 'xarch/manylinux2014'"
        )


def _check_ref(ref: str) -> None:
    if not (_TAG_RE.match(ref) or is_digest(ref)):
        raise BadInput(
            f"invalid reference {ref!r}: a tag ([A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}) "
            "or a digest (sha256:<64 hex>)"
        )


def _short_exc(e: BaseException) -> str:
    text = str(e)
    m = _ERRNO_RE.search(text)
    if m:
        return m.group(0).strip()
    first = text.strip().splitlines()[0] if text.strip() else ""
    return f"{type(e).__name__}: {first[:200]}" if first else type(e).__name__


def _registry_errors(resp: requests.Response) -> list[dict[str, Any]]:
    try:
        doc = resp.json()
    except ValueError:
        return []
    errors = doc.get("errors") if isinstance(doc, dict) else None
    return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


def _parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    params = {
        m.group(1).lower(): m.group(2) or m.group(3) or ""
        for m in _CHALLENGE_PARAM_RE.finditer(rest)
    }
    return scheme.lower(), params


class RegistryClient:
    """A client of one registry ("host[:port]")."""

    def __init__(
        self,
        registry: str,
        *,
        insecure: bool | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
    ) -> None:
        reg = registry.strip().rstrip("/")
        scheme = ""
        for prefix in ("http://", "https://"):
            if reg.startswith(prefix):
                scheme, reg = prefix[:-3], reg[len(prefix) :]
        if not reg or "/" in reg:
            raise BadInput(f"invalid registry {registry!r}: expected host[:port]")
        self.registry = reg
        self.host = _split_host(reg)
        if insecure is None:
            insecure = scheme == "http" if scheme else is_local_host(self.host)
        self.insecure = insecure
        self.base_url = f"{'http' if insecure else 'https'}://{reg}"
        self.timeout = timeout_from_env() if timeout is None else timeout
        self._auth = auth
        self._auth_looked_up = auth is not None
        self._auth_note = ""
        self._authorization: str | None = None  # the header that last worked
        self._session = requests.Session()
        if is_local_host(self.host):
            self._session.trust_env = False  # no proxy for a local registry

    def __repr__(self) -> str:
        creds = (
            "set" if self._auth is not None else ("none" if self._auth_looked_up else "unresolved")
        )
        return f"RegistryClient({self.registry!r}, url={self.base_url!r}, credentials={creds})"

    __str__ = __repr__

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- credentials and auth ----------------------------------------------------------

    def _credentials(self) -> tuple[str, str] | None:
        """Explicit auth, else docker's credential store (looked up once, lazily)."""
        if not self._auth_looked_up:
            self._auth_looked_up = True
            import docker.auth
            import docker.errors

            try:
                cfg = docker.auth.load_config()
                entry = docker.auth.resolve_authconfig(cfg, self.registry)
            # docker wraps a failing credential helper (StoreError) and a malformed
            # config.json in DockerException; the note names the type, never a secret.
            except (docker.errors.DockerException, OSError, ValueError) as e:
                self._auth_note = (
                    f"docker's credential store could not be read ({type(e).__name__})"
                )
                entry = None
            if isinstance(entry, Mapping):
                low = {str(k).lower(): v for k, v in entry.items()}
                user, password = low.get("username"), low.get("password")
                if user and password:
                    self._auth = (str(user), str(password))
                elif low.get("identitytoken"):
                    self._auth_note = (
                        "docker's credential store holds an identity token for this registry, "
                        "which xarch does not use"
                    )
        return self._auth

    def _basic(self) -> str | None:
        creds = self._credentials()
        if creds is None:
            return None
        raw = f"{creds[0]}:{creds[1]}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    def _authorize(self, challenge: str) -> str | None:
        """The Authorization header answering a 401's WWW-Authenticate, or None."""
        scheme, params = _parse_challenge(challenge)
        if scheme == "basic":
            return self._basic()
        if scheme != "bearer" or "realm" not in params:
            return None
        realm = params["realm"]
        query = {k: params[k] for k in ("service", "scope") if params.get(k)}
        headers = {}
        basic = self._basic()
        if basic:
            headers["Authorization"] = basic
        try:
            resp = self._session.get(realm, params=query, headers=headers, timeout=self.timeout)
        except requests.Timeout:
            raise RegistryError(self._timed_out("GET", realm)) from None
        except requests.RequestException as e:
            raise RegistryError(
                f"cannot get a token from {realm} for {self.registry}: {_short_exc(e)}"
                f"\n  hint: {UNREACHABLE_HINT}"
            ) from None
        if resp.status_code in (401, 403):
            raise RegistryError(
                f"GET {realm} (token for {self.registry}) failed: HTTP {resp.status_code}"
                f"{self._creds_state()}\n  hint: log in with `docker login {self.registry}`"
            )
        if resp.status_code != 200:
            raise RegistryError(
                f"GET {realm} (token for {self.registry}) failed: HTTP {resp.status_code}"
            )
        try:
            doc = resp.json()
            token = doc.get("token") or doc.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not token:
            raise RegistryError(f"GET {realm} answered without a token")
        return f"Bearer {token}"

    def _creds_state(self) -> str:
        if self._auth is not None:
            return f" (credentials for user {self._auth[0]!r} were sent and refused)"
        note = f"; {self._auth_note}" if self._auth_note else ""
        return f" (no credentials: none given and none in docker's config{note})"

    # -- requests ----------------------------------------------------------------------

    def _send(
        self, method: str, url: str, headers: dict[str, str], data: bytes | None, stream: bool
    ) -> requests.Response:
        try:
            return self._session.request(
                method, url, headers=headers, data=data, timeout=self.timeout, stream=stream
            )
        except requests.exceptions.SSLError as e:
            raise RegistryError(
                f"{method} {url}: TLS failed ({_short_exc(e)})"
                f"\n  hint: a registry that speaks plain HTTP needs insecure=True; a private CA "
                "belongs in REQUESTS_CA_BUNDLE"
            ) from None
        except requests.Timeout:
            raise RegistryError(self._timed_out(method, url)) from None
        except requests.RequestException as e:
            raise RegistryError(
                f"{method} {url}: cannot reach the registry {self.registry} ({_short_exc(e)})"
                f"\n  hint: {UNREACHABLE_HINT}"
            ) from None

    def _timed_out(self, method: str, url: str) -> str:
        return (
            f"{method} {url}: the registry {self.registry} did not answer within "
            f"{self.timeout:g} s\n  hint: check that it is up and not overloaded; set "
            f"{TIMEOUT_ENV} (seconds) to wait longer"
        )

    def _request(
        self,
        method: str,
        path: str,
        *,
        ok: Iterable[int] = (200,),
        headers: Mapping[str, str] | None = None,
        data: bytes | None = None,
        allow: Iterable[int] = (),
        stream: bool = False,
    ) -> requests.Response:
        """Send with the auth dance; raise RegistryError unless the status is in ok or allow."""
        url = path if path.startswith(("http://", "https://")) else self.base_url + path
        hdrs = dict(headers or {})
        if self._authorization:
            hdrs["Authorization"] = self._authorization
        resp = self._send(method, url, hdrs, data, stream)
        if resp.status_code == 401:
            authorization = self._authorize(resp.headers.get("WWW-Authenticate", ""))
            if authorization is not None and authorization != hdrs.get("Authorization"):
                resp.close()
                hdrs["Authorization"] = authorization
                resp = self._send(method, url, hdrs, data, stream)
                if resp.status_code != 401:
                    self._authorization = authorization
        if resp.status_code in set(ok) | set(allow):
            return resp
        raise self._error(method, url, resp)

    def _error(self, method: str, url: str, resp: requests.Response) -> RegistryError:
        status = resp.status_code
        errors = [] if method == "HEAD" else _registry_errors(resp)
        codes = {str(e.get("code", "")) for e in errors}
        said = "; ".join(
            f"{e.get('code', '?')}: {e.get('message', '')}"
            + (f" ({json.dumps(e['detail'])[:200]})" if e.get("detail") else "")
            for e in errors
        )
        text = f"{method} {url} failed: HTTP {status} {resp.reason or ''}".rstrip()
        if said:
            text += f"; the registry says {said}"
        hint = ""
        if status == 401:
            text += self._creds_state()
            hint = f"log in with `docker login {self.registry}`"
        elif status == 403:
            hint = f"the account lacks permission for this repository on {self.registry}"
        elif "MANIFEST_UNKNOWN" in codes or (status == 404 and "/manifests/" in url and not codes):
            hint = "tag or digest not in repository"
        elif "NAME_UNKNOWN" in codes:
            hint = "the repository does not exist on this registry (nothing pushed to it yet)"
        elif "BLOB_UNKNOWN" in codes:
            hint = "blob not in repository"
        elif "MANIFEST_BLOB_UNKNOWN" in codes:
            hint = "a manifest or blob it references is not in the repository; push those first"
        elif status == 405 or "UNSUPPORTED" in codes:
            hint = "the registry does not allow this (deletes need storage.delete.enabled: true)"
        if hint:
            text += f"\n  hint: {hint}"
        resp.close()
        return RegistryError(text)

    # -- API ---------------------------------------------------------------------------

    def ping(self) -> None:
        """GET /v2/: the registry answers and accepts our credentials (if it wants any)."""
        self._request("GET", "/v2/").close()

    def head_manifest(self, repo: str, ref: str) -> Descriptor | None:
        """The descriptor of repo:ref (tag or digest), None if the registry does not have it."""
        _check_repo(repo)
        _check_ref(ref)
        path = f"/v2/{repo}/manifests/{ref}"
        resp = self._request("HEAD", path, headers={"Accept": MANIFEST_ACCEPT}, allow=(404,))
        if resp.status_code == 404:
            return None
        digest = resp.headers.get("Docker-Content-Digest", "")
        media_type = resp.headers.get("Content-Type", "").split(";", 1)[0].strip()
        size = resp.headers.get("Content-Length", "")
        if not is_digest(digest) or not size.isdigit():
            # Some registries omit the digest on HEAD: read the manifest instead.
            return self.get_manifest_raw(repo, ref)[0]
        if is_digest(ref) and digest != ref:
            raise RegistryError(f"HEAD {self.base_url}{path} answered for digest {digest}")
        return Descriptor(media_type=media_type, digest=digest, size=int(size))

    def get_manifest_raw(self, repo: str, ref: str) -> tuple[Descriptor, bytes]:
        """The descriptor and exact bytes of a manifest; the bytes are checked against
        the digest asked for (ref) and the one the registry reports."""
        _check_repo(repo)
        _check_ref(ref)
        path = f"/v2/{repo}/manifests/{ref}"
        resp = self._request("GET", path, headers={"Accept": MANIFEST_ACCEPT})
        body = resp.content
        if len(body) > MAX_MANIFEST_BYTES:
            raise RegistryError(f"GET {self.base_url}{path}: manifest of {len(body)} bytes")
        digest = sha256_digest(body)
        if is_digest(ref) and digest != ref:
            raise RegistryError(
                f"GET {self.base_url}{path}: the content's sha256 is {digest}, "
                "not the digest asked for"
            )
        header = resp.headers.get("Docker-Content-Digest")
        if header and header != digest:
            raise RegistryError(
                f"GET {self.base_url}{path}: the registry says {header}, "
                f"the content's sha256 is {digest}"
            )
        media_type = resp.headers.get("Content-Type", "").split(";", 1)[0].strip()
        if media_type in ("", "application/json", "application/octet-stream"):
            with contextlib.suppress(ValueError, AttributeError):
                media_type = str(json.loads(body).get("mediaType", media_type))
        return Descriptor(media_type=media_type, digest=digest, size=len(body)), body

    def get_manifest(self, repo: str, ref: str) -> tuple[Descriptor, dict[str, Any]]:
        desc, body = self.get_manifest_raw(repo, ref)
        try:
            doc = json.loads(body)
        except ValueError:
            raise RegistryError(f"the manifest {repo}@{desc.digest} is not JSON") from None
        if not isinstance(doc, dict):
            raise RegistryError(f"the manifest {repo}@{desc.digest} is not a JSON object")
        return desc, doc

    def put_manifest(self, repo: str, ref: str, body: bytes, media_type: str) -> str:
        """Store a manifest under a tag (or its own digest); returns its digest."""
        _check_repo(repo)
        _check_ref(ref)
        digest = sha256_digest(body)
        if is_digest(ref) and ref != digest:
            raise RegistryError(f"cannot store content with digest {digest} under {ref}")
        resp = self._request(
            "PUT",
            f"/v2/{repo}/manifests/{ref}",
            ok=(201, 200),
            headers={"Content-Type": media_type},
            data=body,
        )
        answered = resp.headers.get("Docker-Content-Digest", "")
        resp.close()
        if answered and answered != digest:
            raise RegistryError(
                f"PUT {self.base_url}/v2/{repo}/manifests/{ref}: the registry stored {answered}, "
                f"but the content's sha256 is {digest}"
            )
        return digest

    def resolve(self, repo: str, tag: str) -> str:
        """The digest a tag points to now (never cached)."""
        desc = self.head_manifest(repo, tag)
        if desc is None:
            raise RegistryError(
                f"{self.registry}/{repo}:{tag} not found\n  hint: tag or digest not in repository"
            )
        return desc.digest

    def get_blob_json(self, repo: str, digest: str) -> dict[str, Any]:
        """A JSON blob (an image config), checked against its digest."""
        _check_repo(repo)
        if not is_digest(digest):
            raise BadInput(f"invalid blob digest {digest!r}")
        resp = self._request("GET", f"/v2/{repo}/blobs/{digest}", stream=True)
        try:
            length = resp.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > MAX_JSON_BLOB_BYTES:
                raise RegistryError(f"blob {digest} is {length} bytes, too big for a config")
            try:
                body = resp.content
            except requests.Timeout:
                raise RegistryError(self._timed_out("GET", resp.url)) from None
            except requests.RequestException as e:  # the connection broke mid-body
                raise RegistryError(
                    f"GET {resp.url}: the registry {self.registry} broke off the answer "
                    f"({_short_exc(e)})\n  hint: {UNREACHABLE_HINT}"
                ) from None
        finally:
            resp.close()
        if sha256_digest(body) != digest:
            raise RegistryError(f"blob {repo}@{digest}: the content's sha256 does not match")
        try:
            doc = json.loads(body)
        except ValueError:
            raise RegistryError(f"blob {repo}@{digest} is not JSON") from None
        if not isinstance(doc, dict):
            raise RegistryError(f"blob {repo}@{digest} is not a JSON object")
        return doc

    def image_config(self, repo: str, ref: str) -> dict[str, Any]:
        """The image config (architecture, os, variant, config.Labels, ...) of an image
        manifest; an index is refused."""
        desc, manifest = self.get_manifest(repo, ref)
        if desc.media_type in INDEX_MEDIA_TYPES or "manifests" in manifest:
            raise RegistryError(
                f"{self.registry}/{repo}:{ref} is an index ({desc.media_type}), not an image; "
                "ask for one of its entries by digest"
            )
        config = manifest.get("config")
        if not isinstance(config, dict) or not is_digest(str(config.get("digest", ""))):
            raise RegistryError(f"the manifest {repo}@{desc.digest} names no config blob")
        return self.get_blob_json(repo, str(config["digest"]))

    def image_platform(self, repo: str, ref: str) -> dict[str, str]:
        """{"os", "architecture", "variant"?} from an image's config."""
        config = self.image_config(repo, ref)
        out = {"os": str(config.get("os", "")), "architecture": str(config.get("architecture", ""))}
        if config.get("variant"):
            out["variant"] = str(config["variant"])
        return out

    def manifest_descriptor(
        self, repo: str, ref: str, platform: Mapping[str, str] | None = None
    ) -> Descriptor:
        """An index entry for repo:ref; the platform is read from the image config
        unless given."""
        desc = self.head_manifest(repo, ref)
        if desc is None:
            raise RegistryError(
                f"{self.registry}/{repo}:{ref} not found\n  hint: tag or digest not in repository"
            )
        if platform is None:
            platform = self.image_platform(repo, desc.digest)
        return Descriptor(desc.media_type, desc.digest, desc.size, dict(platform))

    def tags(self, repo: str) -> list[str]:
        """The repository's tags ([] for a repository that does not exist)."""
        _check_repo(repo)
        out: list[str] = []
        url = f"/v2/{repo}/tags/list"
        while url:
            resp = self._request("GET", url, allow=(404,))
            if resp.status_code == 404:
                codes = {str(e.get("code")) for e in _registry_errors(resp)}
                if "NAME_UNKNOWN" in codes or not codes:
                    return []
                raise self._error("GET", self.base_url + url, resp)
            out.extend(str(t) for t in (resp.json().get("tags") or []))
            nxt = resp.links.get("next", {}).get("url", "")
            url = urljoin(self.base_url + "/", nxt) if nxt else ""
        return out

    def delete_manifest(self, repo: str, digest: str) -> None:
        """Delete a manifest by digest (every tag pointing at it goes with it)."""
        _check_repo(repo)
        if not is_digest(digest):
            raise BadInput(
                f"delete_manifest needs a digest, not {digest!r} (tags cannot be deleted)"
            )
        self._request("DELETE", f"/v2/{repo}/manifests/{digest}", ok=(202, 200)).close()

    def push_index(
        self,
        repo: str,
        tag: str,
        entries: Sequence[Descriptor],
        media_type: str | None = None,
    ) -> Descriptor:
        """Put an index of entries under repo:tag and check it by reading it back.

        Nothing is written unless every entry has a platform and its manifest is in
        repo with the same media type and size.
        """
        _check_repo(repo)
        _check_ref(tag)
        if is_digest(tag):
            raise BadInput("push_index needs a tag, not a digest")
        media_type = media_type or index_media_type_for(entries)
        _check_entries(entries, media_type)
        problems = []
        for e in entries:
            found = self.head_manifest(repo, e.digest)
            if found is None:
                problems.append(f"{e.digest} ({e.platform_string}) is not in {repo}")
            elif found.media_type != e.media_type or found.size != e.size:
                problems.append(
                    f"{e.digest} ({e.platform_string}) is a {found.media_type} of {found.size} "
                    f"bytes in {repo}, not a {e.media_type} of {e.size} bytes"
                )
        if problems:
            raise RegistryError(
                f"refusing to push the index {self.registry}/{repo}:{tag}; nothing was written:\n"
                + "\n".join(f"  - {p}" for p in problems)
                + f"\n  hint: push the per-architecture images to {self.registry}/{repo} first"
            )
        body, digest = build_index(entries, media_type)
        self.put_manifest(repo, tag, body, media_type)

        back, doc = self.get_manifest(repo, tag)
        if back.digest != digest:
            raise RegistryError(
                f"{self.registry}/{repo}:{tag} reads back as {back.digest}, not the index just "
                f"pushed ({digest}); did something else push the same tag?"
            )
        listed = {str(m.get("digest")) for m in doc.get("manifests", []) if isinstance(m, dict)}
        missing = [e.digest for e in entries if e.digest not in listed]
        if missing:
            raise RegistryError(
                f"{self.registry}/{repo}:{tag} reads back without entries {', '.join(missing)}"
            )
        return Descriptor(media_type=media_type, digest=digest, size=len(body))
