"""Which build frontend cibuildwheel runs with, and whether the images can serve it.

cibuildwheel's default frontend is ``build``: pypa/build's isolated environment and the
test environment are made by pip, which under emulation costs more than anything else
around the compiler (docs/wheels.md). ``build[uv]`` does the same work with uv. So when
a project names no frontend and every selected image has ``uv`` on PATH (the real
manylinux images and xarch's stand-ins do), ``invoke wheels`` sets
``CIBW_BUILD_FRONTEND=build[uv]`` and says so. A choice the project made (in
``[tool.cibuildwheel]``, its ``linux`` table, an override, or ``CIBW_BUILD_FRONTEND``)
is never overridden; setting ``CIBW_BUILD_FRONTEND=build`` keeps cibuildwheel's default.

Settings only pip reads (``PIP_INDEX_URL``, ``PIP_EXTRA_INDEX_URL``, ``PIP_CERT``, pip
config files, ...) would be silently ignored by uv, so where the project's container
environment names one, or an image carries a pip config file, the default ``build``
is kept and the reason printed. (xarch's own CA option sets ``SSL_CERT_FILE`` beside
``PIP_CERT``, which uv reads: that one is carried.)

cibuildwheel 4.3.5 reads ``build-frontend`` from ``CIBW_BUILD_FRONTEND`` only (no
``_LINUX`` variant: ``env_plat=False`` in ``options.py``), else from the config file
(``[tool.cibuildwheel.linux]`` over ``[tool.cibuildwheel]``, then ``overrides``).
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xarch.errors import BadInput, XarchError

#: What xarch writes when the project names no frontend and the images have uv.
FAST_FRONTEND = "build[uv]"
#: cibuildwheel's frontends that need ``uv`` on PATH in the image (``which uv``).
UV_FRONTENDS = frozenset({"build[uv]", "uv"})
#: Container-environment options of cibuildwheel whose values may name pip settings.
_ENV_OPTIONS = ("environment", "environment-pass")
_ENV_VARIABLES = (
    "CIBW_ENVIRONMENT",
    "CIBW_ENVIRONMENT_LINUX",
    "CIBW_ENVIRONMENT_PASS",
    "CIBW_ENVIRONMENT_PASS_LINUX",
)
#: pip settings that change where packages come from or what is trusted; uv reads none
#: of them (it has UV_INDEX_URL, UV_EXTRA_INDEX_URL, SSL_CERT_FILE, ...).
PIP_ONLY = (
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "PIP_FIND_LINKS",
    "PIP_NO_INDEX",
    "PIP_CERT",
    "PIP_CLIENT_CERT",
    "PIP_TRUSTED_HOST",
    "PIP_CONFIG_FILE",
    "PIP_CONSTRAINT",
    "PIP_ONLY_BINARY",
    "PIP_NO_BINARY",
    "PIP_PRE",
)
_PIP_RE = re.compile(r"\b(" + "|".join(PIP_ONLY) + r")\b")
#: How to keep cibuildwheel's default, said whenever xarch picks the frontend.
OPT_OUT = "set CIBW_BUILD_FRONTEND=build to keep cibuildwheel's default"


@dataclass(frozen=True, kw_only=True)
class ProjectFrontend:
    """What the project itself says about the frontend, read without running anything."""

    name: str | None  # the frontend's name ("build[uv]"), None when the project names none
    where: str  # "CIBW_BUILD_FRONTEND", "pyproject.toml [tool.cibuildwheel]", ...
    pip_settings: tuple[tuple[str, str], ...] = ()  # (variable, where it is set)
    # [[tool.cibuildwheel.overrides]] that set build-frontend: (select, name, where)
    overrides: tuple[tuple[str, str, str], ...] = ()

    def for_identifiers(self, identifiers: Sequence[str]) -> ProjectFrontend:
        """The choice as it applies to a run building ``identifiers``: an override whose
        ``select`` matches one of them is the project's choice for that build (the last
        matching override wins, as in cibuildwheel); CIBW_BUILD_FRONTEND beats both. A
        uv frontend chosen for any of the builds is the one returned (it needs uv)."""
        if self.where == "CIBW_BUILD_FRONTEND":
            return self
        chosen: list[tuple[str, str]] = []
        for ident in identifiers:
            hit = [(n, w) for sel, n, w in self.overrides if _selects(sel, ident)]
            if hit:
                chosen.append(hit[-1])
            elif self.name is not None:
                chosen.append((self.name, self.where))
        if not chosen:
            return ProjectFrontend(name=None, where="", pip_settings=self.pip_settings)
        name, where = next(((n, w) for n, w in chosen if n in UV_FRONTENDS), chosen[0])
        return ProjectFrontend(name=name, where=where, pip_settings=self.pip_settings)


@dataclass(frozen=True, kw_only=True)
class FrontendChoice:
    env: dict[str, str]  # what to add to cibuildwheel's environment ({} or the frontend)
    message: str  # one line for the user: what is used and why


def frontend_name(value: Any) -> str:
    """The frontend's name from a config value: ``"build[uv]; args: -v"``, a table
    ``{name = "build[uv]", args = [...]}``, or a bare name."""
    if isinstance(value, Mapping):
        return str(value.get("name", "")).strip()
    return str(value).split(";", 1)[0].strip()


def cibuildwheel_table(project: Path) -> dict[str, Any]:
    """The project's ``[tool.cibuildwheel]`` ({} without pyproject.toml); BadInput for
    a file that is not TOML."""
    path = project / "pyproject.toml"
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise BadInput(f"{path}: not valid TOML ({e}); fix the file") from None
    tool = data.get("tool", {})
    cibw = tool.get("cibuildwheel", {}) if isinstance(tool, dict) else {}
    return cibw if isinstance(cibw, dict) else {}


def read_project(project: Path, env: Mapping[str, str]) -> ProjectFrontend:
    """The project's frontend choice and the pip-only settings its containers get."""
    cibw = cibuildwheel_table(project)
    pip: list[tuple[str, str]] = []
    for var in _ENV_VARIABLES:
        for name in _PIP_RE.findall(env.get(var, "")):
            pip.append((name, var))
    tables: list[tuple[str, dict[str, Any]]] = [("[tool.cibuildwheel]", cibw)]
    linux = cibw.get("linux")
    if isinstance(linux, dict):
        tables.append(("[tool.cibuildwheel.linux]", linux))
    overrides = cibw.get("overrides")
    for n, o in enumerate(overrides if isinstance(overrides, list) else []):
        if isinstance(o, dict):
            tables.append((f"[[tool.cibuildwheel.overrides]] #{n + 1}", o))
    for where, table in tables:
        for option in _ENV_OPTIONS:
            if option in table:
                for name in _PIP_RE.findall(str(table[option])):
                    pip.append((name, f"pyproject.toml {where} {option}"))
    settings = tuple(dict.fromkeys(pip))
    if env.get("CIBW_BUILD_FRONTEND"):
        return ProjectFrontend(
            name=frontend_name(env["CIBW_BUILD_FRONTEND"]),
            where="CIBW_BUILD_FRONTEND",
            pip_settings=settings,
        )
    overrides = tuple(
        (
            str(table.get("select", "")),
            frontend_name(table["build-frontend"]),
            f"pyproject.toml {where} build-frontend",
        )
        for where, table in tables
        if where.startswith("[[") and "build-frontend" in table
    )
    # The platform table wins over the top level.
    for where, table in reversed(tables):
        if not where.startswith("[[") and "build-frontend" in table:
            return ProjectFrontend(
                name=frontend_name(table["build-frontend"]),
                where=f"pyproject.toml {where} build-frontend",
                pip_settings=settings,
                overrides=tuple(
                    (s, n, f"pyproject.toml {w} build-frontend") for s, n, w in overrides
                ),
            )
    return ProjectFrontend(
        name=None,
        where="",
        pip_settings=settings,
        overrides=overrides,
    )


def _selects(select: str, identifier: str) -> bool:
    """cibuildwheel's ``select``: space-separated fnmatch patterns (``{a,b}`` expanded)."""
    patterns: list[str] = []
    for pattern in select.split():
        m = re.search(r"\{([^{}]*)\}", pattern)
        if m:
            patterns += [pattern[: m.start()] + alt + pattern[m.end() :] for alt in m[1].split(",")]
        else:
            patterns.append(pattern)
    return any(fnmatch.fnmatch(identifier, p) for p in patterns)


@dataclass(frozen=True, kw_only=True)
class ImageTools:
    """What an image offers a frontend, as read inside it (:func:`probe_command`)."""

    uv: str  # uv's version on PATH ("0.13.8"), "" when there is none
    pip_config: str = ""  # the pip config file the image carries, "" when none
    # Why the image could not be looked into (not pulled, no handler), "" when it was:
    # then nothing is known of its uv.
    unreadable: str = ""


def choose(
    project: ProjectFrontend,
    images: Mapping[str, ImageTools],
) -> FrontendChoice:
    """The frontend for a run over ``images`` (ref -> what the image has).

    Raises BadInput when the project asks for a uv frontend an image cannot serve."""
    without_uv = [ref for ref, tools in images.items() if not tools.uv]
    if project.name is not None:
        unknown = [f"{ref} ({t.unreadable})" for ref, t in images.items() if t.unreadable]
        if project.name in UV_FRONTENDS and unknown:
            # Not the project's fault, nor the image's: the image could not be looked into.
            raise XarchError(
                f"{project.where} asks for the {project.name!r} build frontend, and whether "
                f"{', '.join(unknown)} has uv is not known: it could not be looked into. "
                "Make the image runnable here first (pushed, pullable, a handler for its "
                "architecture), then run again"
            )
        if project.name in UV_FRONTENDS and without_uv:
            raise BadInput(
                f"{project.where} asks for the {project.name!r} build frontend, but "
                f"{', '.join(without_uv)} has no uv on PATH, so cibuildwheel would stop at "
                "`which uv`. Select an image that has uv (xarch's stand-ins and the real "
                "manylinux images do), or set CIBW_BUILD_FRONTEND=build"
            )
        return FrontendChoice(env={}, message=f"frontend: {project.name} ({project.where})")
    if without_uv:
        return FrontendChoice(
            env={},
            message=(
                "frontend: build (cibuildwheel's default; no uv on PATH in "
                f"{', '.join(without_uv)})"
            ),
        )
    if project.pip_settings:
        named = ", ".join(f"{v} in {w}" for v, w in project.pip_settings)
        return FrontendChoice(
            env={},
            message=f"frontend: build (cibuildwheel's default, kept: uv does not read {named})",
        )
    pip_conf = [f"{ref} ({tools.pip_config})" for ref, tools in images.items() if tools.pip_config]
    if pip_conf:
        return FrontendChoice(
            env={},
            message=(
                "frontend: build (cibuildwheel's default, kept: uv does not read the pip "
                f"config file in {', '.join(pip_conf)})"
            ),
        )
    versions = sorted({t.uv for t in images.values() if t.uv})
    return FrontendChoice(
        env={"CIBW_BUILD_FRONTEND": FAST_FRONTEND},
        message=(
            f"frontend: {FAST_FRONTEND} (the project names none and every image has uv "
            f"{', '.join(versions)}; {OPT_OUT})"
        ),
    )


#: Run inside an image (its own sh, under emulation): uv's version and any system pip
#: config file, as cibuildwheel would meet them (`which uv`).
UV_PROBE_SCRIPT = (
    'uv=$(command -v uv) && echo "uv=$($uv --version)"; '
    "for f in /etc/pip.conf /etc/xdg/pip/pip.conf; do [ -e $f ] && echo pip_config=$f; done; "
    "exit 0"
)


def parse_probe(output: str) -> ImageTools:
    uv = ""
    pip_config = ""
    for line in output.splitlines():
        key, _, value = line.strip().partition("=")
        if key == "uv":
            m = re.match(r"uv (\S+)", value)
            uv = m.group(1) if m else value
        elif key == "pip_config" and not pip_config:
            pip_config = value
    return ImageTools(uv=uv, pip_config=pip_config)


def probe_command() -> Sequence[str]:
    return ["sh", "-c", UV_PROBE_SCRIPT]
