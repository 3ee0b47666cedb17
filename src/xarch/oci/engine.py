"""The Docker engine: one ``Engine`` owns the docker client, and every docker call
xarch makes goes through it.

It checks readiness once (:meth:`Engine.connect`, one message saying how to start
a daemon), reads images (inspect, labels), builds, loads, tags, pushes (reading the
push stream for errors: the SDK's push does not raise on failure), pulls, runs
containers and removes images. Daemon and registry errors are turned into advice
by one classifier, :func:`advice`, whatever the operation.
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import docker
import docker.errors
import requests
from docker.models.containers import Container as SdkContainer

from xarch.errors import BuildError, DaemonError, EngineUnavailable, ImageNotFound, RegistryError
from xarch.model import faults

Log = Callable[[str], None]

MIN_API_VERSION = (1, 41)  # Docker 20.10

#: How many of a failed build step's last output lines its error carries.
BUILD_TAIL_LINES = 15

#: How to get a daemon that answers: shown by connect() and by doctor.
START_HINT = "systemctl start docker   # or: dockerd &   (install: apt-get install docker.io)"

#: What an image is to the user, for the advice when it cannot be pulled.
ImageKind = Literal["base", "helper", "image"]


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _step_output(line: str) -> bool:
    """A line a build step printed, not the classic builder's own bookkeeping."""
    return bool(line.strip()) and not line.startswith(
        (" ---> ", "Removing intermediate container ", "Successfully ")
    )


def short(e: BaseException) -> str:
    """The first line of an error, the daemon's own words when it gave some."""
    explanation = getattr(e, "explanation", None)  # docker.errors.APIError: the daemon's words
    text = str(explanation or e).strip().splitlines()
    return text[0][:200] if text else type(e).__name__


def advice(action: Literal["push", "pull"], ref: str, detail: str, kind: ImageKind) -> str:
    """The one classifier of daemon and registry errors: the message a user reads
    when ``action`` of ``ref`` failed with ``detail`` (the daemon's words)."""
    registry = ref.split("/", 1)[0]
    what = {"base": "the base image ", "helper": "the helper image ", "image": ""}[kind]
    text = (
        f"pushing {ref} failed: {detail}"
        if action == "push"
        else f"cannot pull {what}{ref}: {detail}"
    )
    fault = faults.recognise(detail, host=registry)
    if fault is not None and fault.kind != "permission":  # "denied" is the registry's
        return text + f"\n  {fault}"
    low = detail.lower()
    if "unauthorized" in low or "authentication required" in low or "denied" in low:
        return text + (
            f"\n  log in first: `docker login {registry}` (xarch uses docker's credential store)"
        )
    if "connection refused" in low or "no such host" in low or "timeout" in low:
        return text + (
            f"\n  is the registry at {registry} running? For the embedded one: `invoke registry-up`"
        )
    if action == "pull" and ("manifest unknown" in low or "not found" in low):
        if kind == "base":
            return text + (
                "\n  the digest is not in that repository: check base.image and base.digest"
            )
        return text + (
            "\n  the registry does not hold that digest: push again (`invoke push-images`) or "
            "pass --report PATH to the report of the push you mean"
        )
    if action == "pull" and kind == "base":
        return text + (
            "\n  this host may not reach that registry; on hosts without access to public "
            "registries use an offline profile (config/offline.yaml) or push the base to a "
            "reachable registry and pin it there"
        )
    return text


def _stream_error(event: Mapping[str, Any]) -> str | None:
    if "error" in event or "errorDetail" in event:
        return str((event.get("errorDetail") or {}).get("message") or event.get("error"))
    return None


def split_ref(ref: str) -> tuple[str, str]:
    """(name, tag or digest) of ``name:tag`` or ``name@sha256:...``."""
    name, sep, rest = ref.partition("@")
    if sep:
        return name, rest
    name, _, tag = ref.rpartition(":")
    return name, tag


class Container:
    """A started container; remove() (or leaving the ``with`` block) removes it."""

    def __init__(self, sdk: SdkContainer) -> None:
        self._sdk = sdk

    @property
    def id(self) -> str:
        return str(self._sdk.id)

    @property
    def short_id(self) -> str:
        return str(self._sdk.short_id)

    def status(self) -> str:
        self._sdk.reload()
        return str(self._sdk.status)

    def logs(self) -> str:
        return bytes(self._sdk.logs()).decode(errors="replace").strip()

    def exec(
        self, argv: Sequence[str], *, workdir: str, env: Mapping[str, str]
    ) -> tuple[int, str, str]:
        """``docker exec``: (exit code, stdout, stderr)."""
        code, (out, err) = self._sdk.exec_run(
            list(argv),
            environment=[f"{k}={v}" for k, v in env.items()],
            workdir=workdir,
            demux=True,
        )
        return (
            int(code if code is not None else -1),
            (out or b"").decode(errors="replace"),
            (err or b"").decode(errors="replace"),
        )

    def archive(self, path: str) -> bytes:
        """`docker cp CONTAINER:path -`: a tar stream of ``path``."""
        try:
            stream, _ = self._sdk.get_archive(path)
            return b"".join(stream)
        except (docker.errors.APIError, requests.RequestException) as e:
            raise DaemonError(
                f"cannot copy {path} out of {self.short_id}: {short(e)}", short(e)
            ) from None

    def wait(self) -> int:
        """Wait for it to exit; its exit status."""
        try:
            result = self._sdk.wait()
        except (docker.errors.APIError, requests.RequestException) as e:
            raise DaemonError(
                f"waiting for container {self.short_id}: {short(e)}", short(e)
            ) from None
        return int(result.get("StatusCode", 1))

    def remove(self) -> None:
        """Remove it (forced). Best effort: this runs while cleaning up after another
        failure, which must stay the error the user sees."""
        with contextlib.suppress(docker.errors.APIError, requests.RequestException):
            self._sdk.remove(force=True)

    def __enter__(self) -> Container:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


class Engine:
    """The local Docker engine (``DOCKER_HOST`` respected)."""

    def __init__(self, client: docker.DockerClient, version: dict[str, Any] | None = None) -> None:
        self.client = client
        self._version = version

    # ------------------------------------------------------------------ readiness

    @classmethod
    def connect(cls, timeout: int = 600) -> Engine:
        """The engine, or EngineUnavailable saying how to start one."""
        try:
            client = docker.from_env(timeout=timeout)
            client.ping()
            version = client.version()
        except (docker.errors.DockerException, requests.RequestException) as e:
            raise EngineUnavailable(
                f"the Docker daemon does not answer ({short(e)}).\n"
                f"  fix: {START_HINT}\n"
                "  DOCKER_HOST selects another engine."
            ) from None
        api = tuple(int(x) for x in str(version.get("ApiVersion", "0.0")).split(".")[:2])
        if api < MIN_API_VERSION:
            raise EngineUnavailable(
                f"the Docker engine's API {version.get('ApiVersion')} is older than "
                f"{'.'.join(map(str, MIN_API_VERSION))} (Docker 20.10); upgrade the engine"
            )
        return cls(client, dict(version))

    def version(self) -> dict[str, Any]:
        """The engine's `docker version` answer (read once, at connect)."""
        if self._version is None:
            try:
                self._version = dict(self.client.version())
            except (docker.errors.DockerException, requests.RequestException) as e:
                raise EngineUnavailable(
                    f"the Docker daemon stopped answering ({short(e)})"
                ) from None
        return self._version

    # ------------------------------------------------------------------ images

    def inspect(self, ref: str) -> dict[str, Any] | None:
        """`docker image inspect`, or None when the image is not there."""
        try:
            result: dict[str, Any] = self.client.api.inspect_image(ref)
        except docker.errors.ImageNotFound:
            return None
        except docker.errors.APIError as e:
            raise DaemonError(f"cannot inspect {ref}: {short(e)}", short(e)) from None
        return result

    def labels(self, ref: str) -> dict[str, str] | None:
        """Labels of a local image, or None when it is not there."""
        attrs = self.inspect(ref)
        if attrs is None:
            return None
        return image_labels(attrs)

    def tag(self, image: str, ref: str) -> None:
        """Tag an image (id or reference) as ``ref`` (name:tag)."""
        repo, _, tag = ref.rpartition(":")
        try:
            self.client.api.tag(image, repo, tag)
        except docker.errors.APIError as e:
            raise DaemonError(f"cannot tag {image} as {ref}: {short(e)}", short(e)) from None

    def remove_image(self, ref: str) -> None:
        """`docker rmi`; raises DaemonError when the daemon refuses."""
        try:
            self.client.api.remove_image(ref)
        except docker.errors.APIError as e:
            raise DaemonError(f"cannot remove {ref}: {short(e)}", short(e)) from None

    def build(
        self, context: Path, ref: str, labels: Mapping[str, str], *, no_cache: bool, log: Log
    ) -> str:
        """A classic build of ``context`` tagged ``ref``; returns the image id."""
        image_id = ""
        # The step's own output is not shown as it runs (only "Step N/M" lines), but a
        # failed step's last lines are what says why: they go into the error.
        tail: collections.deque[str] = collections.deque(maxlen=BUILD_TAIL_LINES)
        try:
            for event in self.client.api.build(
                path=str(context),
                tag=ref,
                labels=dict(labels),
                nocache=no_cache,
                rm=True,
                forcerm=True,
                pull=False,
                decode=True,
            ):
                detail = _stream_error(event)
                if detail is not None:
                    said = "".join(f"\n    {t}" for t in tail)
                    raise BuildError(
                        f"docker build of {ref} failed: {detail}"
                        + (f"\n  the step's last lines:{said}" if said else "")
                    )
                line = str(event.get("stream", "")).rstrip()
                if line.startswith("Step "):
                    log(f"    {line}")
                    tail.clear()
                else:
                    # The classic builder colours a step's stderr (ANSI escapes).
                    plain = _ANSI.sub("", line)
                    tail.extend(x for x in plain.splitlines() if _step_output(x))
                aux = event.get("aux")
                if isinstance(aux, dict) and aux.get("ID"):
                    image_id = str(aux["ID"])
        except (docker.errors.APIError, requests.RequestException) as e:
            raise BuildError(f"docker build of {ref} failed: {short(e)}") from None
        if not image_id:
            attrs = self.inspect(ref)
            if attrs is None:
                raise BuildError(f"docker build of {ref} produced no image")
            image_id = str(attrs["Id"])
        return image_id

    def load(self, archive: Path, what: str) -> None:
        """`docker load < archive` (a docker-archive tar)."""
        try:
            with archive.open("rb") as f:
                self.client.api.load_image(f)
        except (docker.errors.APIError, requests.RequestException) as e:
            raise BuildError(f"docker load of {what} failed: {short(e)}") from None

    def push(self, repository: str, tag: str, log: Log = print) -> str:
        """Push repository:tag and return the manifest digest the registry reported.

        Credentials come from docker's own store (the engine resolves them from the
        client config); they are never printed.
        """
        ref = f"{repository}:{tag}"
        log(f"+ docker push {ref}")
        digest = ""
        try:
            stream: Iterator[dict[str, Any]] = self.client.api.push(
                repository, tag=tag, stream=True, decode=True
            )
            for event in stream:
                detail = _stream_error(event)
                if detail is not None:
                    raise RegistryError(advice("push", ref, detail, "image"))
                aux = event.get("aux")
                if isinstance(aux, dict) and aux.get("Digest"):
                    digest = str(aux["Digest"])
        except (docker.errors.APIError, requests.RequestException) as e:
            raise RegistryError(advice("push", ref, short(e), "image")) from None
        if not digest:
            raise RegistryError(
                f"pushing {ref} ended without a digest from the registry; the push did not complete"
            )
        log(f"  pushed {ref} -> {digest}")
        return digest

    def pull(self, ref: str, kind: ImageKind, log: Log = print, platform: str = "") -> None:
        """Pull name@digest or name:tag; ImageNotFound with the classifier's advice."""
        log(f"+ docker pull {'--platform ' + platform + ' ' if platform else ''}{ref}")
        name, tag = split_ref(ref)
        try:
            for event in self.client.api.pull(
                name, tag=tag, stream=True, decode=True, platform=platform or None
            ):
                detail = _stream_error(event)
                if detail is not None:
                    raise ImageNotFound(advice("pull", ref, detail, kind))
        except (docker.errors.APIError, requests.RequestException) as e:
            raise ImageNotFound(advice("pull", ref, short(e), kind)) from None

    # ------------------------------------------------------------------ containers

    def start(
        self,
        image: str,
        command: Sequence[str],
        *,
        platform: str = "",
        entrypoint: Sequence[str] | None = None,
        network: str | None = None,
        volumes: Mapping[str, tuple[str, str]] | None = None,
        labels: Mapping[str, str] | None = None,
        privileged: bool = False,
    ) -> Container:
        """Create and start a detached container (``volumes``: host -> (path, mode)).

        A container whose start fails is removed before DaemonError is raised (the
        SDK's run(remove=True) leaves one behind when the start itself fails)."""
        kwargs: dict[str, Any] = {}
        if platform:
            kwargs["platform"] = platform
        if entrypoint is not None:
            kwargs["entrypoint"] = list(entrypoint)
        if network is not None:
            kwargs["network_mode"] = network
        if volumes:
            kwargs["volumes"] = {h: {"bind": p, "mode": m} for h, (p, m) in volumes.items()}
        if labels:
            kwargs["labels"] = dict(labels)
        if privileged:
            kwargs["privileged"] = True
        try:
            sdk = self.client.containers.create(image, list(command), **kwargs)
        except (docker.errors.APIError, requests.RequestException) as e:
            raise DaemonError(
                f"cannot create a container of {image}: {short(e)}", short(e)
            ) from None
        container = Container(sdk)
        try:
            sdk.start()
        except (docker.errors.APIError, requests.RequestException) as e:
            container.remove()
            raise DaemonError(
                f"cannot start a container of {image}: {short(e)}", short(e)
            ) from None
        return container

    def run(
        self,
        image: str,
        command: Sequence[str],
        **kwargs: Any,
    ) -> int:
        """Start a container (the same keywords as :meth:`start`), wait for it, remove
        it; returns its exit status."""
        with self.start(image, command, **kwargs) as container:
            return container.wait()

    @staticmethod
    def address() -> str:
        """Where the engine is asked (DOCKER_HOST, else the default socket)."""
        return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"

    @staticmethod
    def answers(timeout: int = 5) -> bool:
        """Whether the engine (DOCKER_HOST respected) answers a ping within `timeout` s."""
        try:
            client = docker.from_env(timeout=timeout)
            try:
                return bool(client.ping())
            finally:
                client.close()
        except (docker.errors.DockerException, requests.RequestException, OSError):
            return False

    def labelled(self, label: str) -> list[tuple[str, str, str]]:
        """(id, the label's value, status) of every container carrying `label`."""
        return [
            (c.id, str(c.labels.get(label, "")), str(c.status))
            for c in self.client.containers.list(all=True, filters={"label": label})
        ]

    def remove_container(self, container_id: str) -> bool:
        """Remove (forced) one container; False when it was already gone or refused."""
        try:
            self.client.containers.get(container_id).remove(force=True)
        except (docker.errors.APIError, requests.RequestException):
            return False
        return True

    def remove_labelled(self, label: str, value: str) -> int:
        """Remove (forced) every container whose `label` is `value`; how many. Best
        effort, as Container.remove: it runs while cleaning up after an interrupt."""
        n = 0
        with contextlib.suppress(docker.errors.APIError, requests.RequestException):
            for c in self.client.containers.list(all=True, filters={"label": f"{label}={value}"}):
                with contextlib.suppress(docker.errors.APIError, requests.RequestException):
                    c.remove(force=True)
                    n += 1
        return n

    def run_output(self, image: str, command: Sequence[str], **kwargs: Any) -> tuple[int, str]:
        """:meth:`run`, and what the container printed (stdout and stderr, stripped)."""
        with self.start(image, command, **kwargs) as container:
            code = container.wait()
            return code, container.logs()


def image_labels(attrs: Mapping[str, Any]) -> dict[str, str]:
    """The labels in an inspected image's config."""
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    return {str(k): str(v) for k, v in labels.items()}
