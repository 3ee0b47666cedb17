"""Real projects from PyPI, as their maintainers configured them.

A project list (``config/projects.yaml``) pins sdists by exact version and sha256. Each
is fetched once into ``<cache>/sdists`` (PyPI's JSON API names the file; the download is
checked against the pin before it is kept) and unpacked, unchanged, into a directory
of the caller's, ready for ``invoke wheels --project`` or the bench.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import yaml

from xarch.errors import BadInput, ChecksumMismatch, ConfigError, FetchError
from xarch.model import faults
from xarch.model.hashing import sha256_file
from xarch.model.paths import cache_dir
from xarch.wheels import frontend

Log = Callable[[str], None]

#: The PEP 691 JSON form of the index pip would use (faults.pip_index_url).
SIMPLE_TYPE = "application/vnd.pypi.simple.v1+json"
TIMEOUT = 60
_KEYS = ("name", "version", "sha256", "what", "test-command", "test-requires", "environment")


@dataclass(frozen=True, kw_only=True)
class RealProject:
    name: str
    version: str
    sha256: str
    what: str = ""
    test_command: str = ""  # the user's CIBW_TEST_COMMAND when the project sets none
    test_requires: tuple[str, ...] = ()
    # CIBW_* variables a user's CI sets for this project with this cibuildwheel (a
    # config option the release no longer knows, say); always said in the list
    environment: Mapping[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.name}-{self.version}"

    def user_env(self, src: Path | None = None) -> dict[str, str]:
        """Everything the user's CI sets for this project: its ``environment`` and,
        where the project configures no test of its own, the test command."""
        return {**self.test_env(src), **self.environment}

    def test_env(self, src: Path | None = None) -> dict[str, str]:
        """CIBW_TEST_COMMAND / CIBW_TEST_REQUIRES as a user's CI would set them; none for
        a project (unpacked at ``src``) that configures its own cibuildwheel test, since
        the variables would override it."""
        if src is not None and _has_own_test(src):
            return {}
        env = {}
        if self.test_command:
            env["CIBW_TEST_COMMAND"] = self.test_command
        if self.test_requires:
            env["CIBW_TEST_REQUIRES"] = " ".join(self.test_requires)
        return env


def _has_own_test(src: Path) -> bool:
    try:
        cibw = frontend.cibuildwheel_table(src)
    except BadInput:  # cibuildwheel will say what is wrong with the file
        return False
    tables = [cibw, cibw.get("linux", {})]
    return any(isinstance(t, dict) and "test-command" in t for t in tables)


def load_projects(path: Path) -> list[RealProject]:
    """The project list; ConfigError (exit 2) naming the file and key on any problem."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(str(path), "", f"cannot read: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        raise ConfigError(str(path), "", f"YAML syntax error: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("projects"), list):
        raise ConfigError(str(path), "projects", "expected a list of projects under `projects`")
    out: list[RealProject] = []
    for i, item in enumerate(data["projects"]):
        key = f"projects[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(str(path), key, "expected a mapping")
        for k in item:
            if k not in _KEYS:
                raise ConfigError(str(path), f"{key}.{k}", "unknown key", f"allowed: {_KEYS}")
        p = _project(path, key, item)
        if any(o.name == p.name for o in out):
            raise ConfigError(str(path), f"{key}.name", f"{p.name!r} is listed twice")
        out.append(p)
    return out


def _project(path: Path, key: str, item: Mapping[str, Any]) -> RealProject:
    def text(name: str, required: bool = True) -> str:
        v = item.get(name)
        if v is None and not required:
            return ""
        if not isinstance(v, str | int | float) or isinstance(v, bool) or not str(v).strip():
            raise ConfigError(str(path), f"{key}.{name}", f"expected a string, found {v!r}")
        return str(v)

    sha = text("sha256")
    if not re.fullmatch(r"[0-9a-f]{64}", sha):
        raise ConfigError(
            str(path), f"{key}.sha256", f"{sha!r} is not a sha256 (64 lowercase hex digits)"
        )
    environment = item.get("environment") or {}
    if not isinstance(environment, dict) or not all(
        isinstance(k, str) and k.startswith("CIBW_") and isinstance(v, str)
        for k, v in environment.items()
    ):
        raise ConfigError(
            str(path), f"{key}.environment", "expected a mapping of CIBW_* names to strings"
        )
    requires = item.get("test-requires") or []
    if not isinstance(requires, list) or not all(isinstance(r, str) for r in requires):
        raise ConfigError(str(path), f"{key}.test-requires", "expected a list of strings")
    return RealProject(
        name=text("name"),
        version=text("version"),
        sha256=sha,
        what=text("what", required=False),
        test_command=text("test-command", required=False),
        test_requires=tuple(requires),
        environment=dict(environment),
    )


def select(projects: list[RealProject], names: list[str] | None) -> list[RealProject]:
    if not names:
        return projects
    known = {p.name: p for p in projects}
    missing = [n for n in names if n not in known]
    if missing:
        raise ConfigError(
            "--project-name",
            "",
            f"not in the project list: {', '.join(missing)}",
            f"known: {', '.join(known)}",
        )
    return [known[n] for n in names]


def sdist(project: RealProject, *, log: Log = print) -> Path:
    """The pinned sdist in xarch's cache, downloaded first when it is not there."""
    store = cache_dir() / "sdists"
    for f in store.glob(f"*-{project.version}.*"):  # not .download-* (a dot first)
        if sha256_file(f) == project.sha256:
            return f
    # PEP 691's JSON form of the simple index lists every file with its sha256: the pinned
    # sdist is the one whose hash is the pin.
    index = faults.pip_index_url().rstrip("/")
    index_url = f"{index}/{project.name}/"
    try:
        r = requests.get(index_url, timeout=TIMEOUT, headers={"Accept": SIMPLE_TYPE})
        r.raise_for_status()
        files = [
            f
            for f in r.json()["files"]
            if f.get("hashes", {}).get("sha256") == project.sha256
            and str(f["filename"]).endswith((".tar.gz", ".zip"))
        ]
    except (requests.RequestException, ValueError, KeyError) as e:
        fault = faults.recognise(f"{type(e).__name__}: {e}", host=urlsplit(index_url).hostname)
        hint = f"\n  {fault}" if fault else ""
        raise FetchError(f"cannot read {index_url}: {e}{hint}") from None
    if not files:
        raise FetchError(
            f"{index_url} lists no sdist with sha256 {project.sha256} ({project.label}): "
            "check the version and sha256 in the project list"
        )
    url, filename = str(files[0]["url"]), str(files[0]["filename"])
    store.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".download-", dir=store)
    tmp = Path(tmp_name)
    try:
        log(f"+ download {url}")
        h = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, requests.get(url, timeout=TIMEOUT, stream=True) as resp:
            resp.raise_for_status()
            for chunk in resp.iter_content(1 << 20):
                out.write(chunk)
                h.update(chunk)
        if h.hexdigest() != project.sha256:
            raise ChecksumMismatch(
                f"{filename} from PyPI has sha256 {h.hexdigest()}, but the project list pins "
                f"{project.sha256} for {project.label}; nothing was kept"
            )
        dest = store / str(filename)
        os.replace(tmp, dest)
        return dest
    except requests.RequestException as e:
        fault = faults.recognise(f"{type(e).__name__}: {e}", host=urlsplit(url).hostname)
        raise FetchError(
            f"cannot download {url}: {e}" + (f"\n  {fault}" if fault else "")
        ) from None
    except OSError as e:  # the cache's disk
        fault = faults.recognise(str(e), path=str(store))
        hint = f"\n  {fault}" if fault else ""
        raise FetchError(f"cannot store {filename} in {store}: {e}{hint}") from None
    finally:
        tmp.unlink(missing_ok=True)


def unpack(archive: Path, into: Path) -> Path:
    """Unpack an sdist into ``into`` (which must not exist); the project's directory."""
    into.mkdir(parents=True)
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as z:
            z.extractall(into)
    else:
        with tarfile.open(archive) as t:
            t.extractall(into, filter="data")
    [top] = [p for p in into.iterdir() if p.is_dir()]
    return Path(top)


def checkout(project: RealProject, into: Path, *, log: Log = print) -> Path:
    """The project's unpacked sdist under ``into`` (replaced when it is there)."""
    archive = sdist(project, log=log)
    if into.exists():
        shutil.rmtree(into)
    return unpack(archive, into)
