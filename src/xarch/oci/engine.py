"""The Docker engine: connecting with a friendly error, and pushing with the
push stream read for errors (the SDK's push does not raise on failure)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import docker
import docker.errors
import requests

from xarch.errors import EngineUnavailable, RegistryError

Log = Callable[[str], None]

MIN_API_VERSION = (1, 41)  # Docker 20.10


def connect(timeout: int = 600) -> docker.DockerClient:
    """A client for the local engine, or EngineUnavailable saying how to start one."""
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
        version = client.version()
    except (docker.errors.DockerException, requests.RequestException) as e:
        raise EngineUnavailable(
            "the Docker daemon does not answer "
            f"({_short(e)}).\n"
            "  Start it (`systemctl start docker`, or `dockerd &` where systemd does not run),\n"
            "  or install it first: `apt-get install docker.io` (Debian), then retry.\n"
            "  DOCKER_HOST selects another engine."
        ) from None
    api = tuple(int(x) for x in str(version.get("ApiVersion", "0.0")).split(".")[:2])
    if api < MIN_API_VERSION:
        raise EngineUnavailable(
            f"the Docker engine's API {version.get('ApiVersion')} is older than "
            f"{'.'.join(map(str, MIN_API_VERSION))} (Docker 20.10); upgrade the engine"
        )
    return client


def _short(e: BaseException) -> str:
    explanation = getattr(e, "explanation", None)  # docker.errors.APIError: the daemon's words
    text = str(explanation or e).strip().splitlines()
    return text[0][:200] if text else type(e).__name__


def push(client: docker.DockerClient, repository: str, tag: str, log: Log = print) -> str:
    """Push repository:tag and return the manifest digest the registry reported.

    Credentials come from docker's own store (the engine resolves them from the
    client config); they are never printed.
    """
    log(f"+ docker push {repository}:{tag}")
    digest = ""
    last_status = ""
    try:
        stream: Iterator[dict[str, Any]] = client.api.push(
            repository, tag=tag, stream=True, decode=True
        )
        for event in stream:
            if "error" in event or "errorDetail" in event:
                detail = event.get("errorDetail", {}).get("message") or event.get("error")
                raise RegistryError(_push_hint(repository, tag, str(detail)))
            aux = event.get("aux")
            if isinstance(aux, dict) and aux.get("Digest"):
                digest = str(aux["Digest"])
            status = event.get("status", "")
            if status and status != last_status and "id" not in event:
                last_status = status
    except docker.errors.APIError as e:
        raise RegistryError(_push_hint(repository, tag, _short(e))) from None
    except requests.RequestException as e:
        raise RegistryError(_push_hint(repository, tag, _short(e))) from None
    if not digest:
        raise RegistryError(
            f"pushing {repository}:{tag} ended without a digest from the registry; "
            "the push did not complete"
        )
    log(f"  pushed {repository}:{tag} -> {digest}")
    return digest


def _push_hint(repository: str, tag: str, detail: str) -> str:
    registry = repository.split("/", 1)[0]
    text = f"pushing {repository}:{tag} failed: {detail}"
    low = detail.lower()
    if "unauthorized" in low or "authentication required" in low or "denied" in low:
        text += (
            f"\n  log in first: `docker login {registry}` (xarch uses docker's credential store)"
        )
    elif "connection refused" in low or "no such host" in low or "timeout" in low:
        text += (
            f"\n  is the registry at {registry} running? For the embedded one: `invoke registry-up`"
        )
    return text


def pull(
    client: docker.DockerClient,
    ref: str,
    log: Log = print,
    platform: str = "",
    hint: Callable[[str, str], str] | None = None,
) -> None:
    """Pull an image reference (name@digest or name:tag), raising ImageNotFound clearly.

    ``hint(ref, daemon's words)`` writes the message; the default is for base images."""
    from xarch.errors import ImageNotFound

    log(f"+ docker pull {'--platform ' + platform + ' ' if platform else ''}{ref}")
    name, sep, rest = ref.partition("@")
    if not sep:
        name, _, rest = ref.rpartition(":")
        tag = rest
    else:
        tag = rest
    try:
        for event in client.api.pull(
            name, tag=tag, stream=True, decode=True, platform=platform or None
        ):
            if "error" in event or "errorDetail" in event:
                detail = event.get("errorDetail", {}).get("message") or event.get("error")
                raise ImageNotFound((hint or _pull_hint)(ref, str(detail)))
    except docker.errors.APIError as e:
        raise ImageNotFound((hint or _pull_hint)(ref, _short(e))) from None


def _pull_hint(ref: str, detail: str) -> str:
    registry = ref.split("/", 1)[0]
    text = f"cannot pull the base image {ref}: {detail}"
    low = detail.lower()
    if "unauthorized" in low or "denied" in low:
        text += f"\n  log in first: `docker login {registry}`"
    elif "manifest unknown" in low or "not found" in low:
        text += "\n  the digest is not in that repository: check base.image and base.digest"
    else:
        text += (
            "\n  this host may not reach that registry; on hosts without access to public "
            "registries use an offline profile (config/offline.yaml) or push the base to a "
            "reachable registry and pin it there"
        )
    return text


def image_labels(client: docker.DockerClient, ref: str) -> dict[str, str] | None:
    """Labels of a local image, or None when it is not there."""
    try:
        attrs = client.api.inspect_image(ref)
    except docker.errors.ImageNotFound:
        return None
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    return {str(k): str(v) for k, v in labels.items()}


def inspect(client: docker.DockerClient, ref: str) -> dict[str, Any] | None:
    try:
        result: dict[str, Any] = client.api.inspect_image(ref)
        return result
    except docker.errors.ImageNotFound:
        return None


def dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))
