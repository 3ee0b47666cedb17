"""Ready-to-commit CI files: a wheel-building workflow on xarch's helper images, a
build-and-publish workflow for the helper images themselves, and a scheduled pin
check, for GitHub Actions or GitLab CI.

Every image reference in the output is pinned by digest, and every digest comes
from the config's push record in the report (build/xarch-report.json), never a tag:

- emulation is registered with xarch's binfmt installer image, by the digest of its
  multi-arch index (the runner's engine picks the variant for its own platform),
  instead of docker/setup-qemu-action's unpinned ``tonistiigi/binfmt:latest``;
- cibuildwheel gets ``CIBW_MANYLINUX_<ARCH>_IMAGE`` (``CIBW_MUSLLINUX_<ARCH>_IMAGE``
  for a family whose name says musllinux) set to each target's per-arch image digest,
  and ``CIBW_ARCHS_LINUX`` set to the configured architectures.

The publish workflow fans out one job per target (``build-images --target T`` then
``push-arch --target T``, which writes the digest to a file uploaded as an artifact)
and assembles the multi-arch indexes in a final job that needs them all
(``push-index`` over the downloaded digest files): the pattern that scales past one
machine. Its jobs run xarch itself, which fetches the QEMU pin with apt, so they run
on Debian/Ubuntu runners set up with ``invoke provision-runner`` (labels/tags are
options); the wheel job needs nothing but Docker and Python.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from xarch.errors import BadInput, NotPushed, TestFailure, XarchError
from xarch.model.arch import Arch, get_arch
from xarch.model.config import INSTALLER_TARGET, Config, Target
from xarch.model.naming import helper_ref
from xarch.model.report import require_push_record
from xarch.model.tables import format_table
from xarch.oci.registry import is_digest, is_local_host
from xarch.publish.cibuildwheel import DEFAULT_VERSION as DEFAULT_CIBUILDWHEEL
from xarch.publish.cibuildwheel import venv_requirements
from xarch.wheels import frontend

Log = Callable[[str], None]

PROVIDERS = ("github", "gitlab")
#: The cibuildwheel release the wheel workflow installs (pip, exact version). Checked
#: against its options: CIBW_MANYLINUX_<ARCH>_IMAGE exists for these arches.
CIBUILDWHEEL_VERSION = DEFAULT_CIBUILDWHEEL  # when the config pins no cibuildwheel.version
CIBW_ARCHES = ("x86_64", "i686", "aarch64", "ppc64le", "s390x", "armv7l", "riscv64")
#: GitHub-hosted runner for the wheel job (Docker and python3 preinstalled).
WHEELS_RUNNER = "ubuntu-24.04"
#: Labels of the runners that run xarch itself (publish, pin check).
XARCH_RUNNER = ("self-hosted", "linux", "x64")
GITLAB_TAGS = ("xarch",)
DIGESTS_DIR = "digests"
PIN_CHECK_CRON = "17 5 * * 1"  # Mondays 05:17 UTC
TIMEOUT_MINUTES = 90

#: Any registry-qualified image reference in generated text: host (with a dot or a
#: port, or localhost) / path, then :tag and/or @digest.
IMAGE_REF_RE = re.compile(
    r"(?<![\w./-])((?:[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)+(?::\d+)?|localhost(?::\d+)?|"
    r"\d+\.\d+\.\d+\.\d+(?::\d+)?)/[a-z0-9._/-]+)(:[\w][\w.-]*)?(@sha256:[0-9a-f]{64})?"
)


@dataclass(frozen=True, kw_only=True)
class PinnedImage:
    name: str  # registry/namespace/repository
    digest: str
    tag: str  # the human tag this digest was pushed as (a comment in the output)
    platforms: tuple[str, ...]

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.digest}"


@dataclass(frozen=True, kw_only=True)
class WheelImage:
    variable: str  # CIBW_MANYLINUX_AARCH64_IMAGE
    target: str
    arch: Arch
    image: PinnedImage


@dataclass(frozen=True, kw_only=True)
class CiPlan:
    config: Config
    config_ref: str  # the config's path as the jobs name it (relative to the checkout)
    installer: PinnedImage
    register: tuple[str, ...]  # arches the wheel job registers
    wheel_images: tuple[WheelImage, ...]
    targets: tuple[Target, ...]  # the publish fan-out (every target of the config)
    cibuildwheel: str
    warnings: tuple[str, ...]
    ca_bundle: str = ""  # XARCH_CA_BUNDLE's value in the files ("" = off)

    @property
    def registry(self) -> str:
        return self.config.registry.address

    @property
    def needs_login(self) -> bool:
        return not registry_is_local(self.registry)


def registry_is_local(address: str) -> bool:
    """Whether a registry address (host[:port]) is on the loopback."""
    return is_local_host(address.rsplit(":", 1)[0] if address.count(":") == 1 else address)


# --------------------------------------------------------------------------- the plan


def cibw_variable(target: Target) -> str:
    """cibuildwheel's image option for a target: CIBW_MANYLINUX_<ARCH>_IMAGE, or
    CIBW_MUSLLINUX_<ARCH>_IMAGE when the family's name says musllinux."""
    if target.arch.name not in CIBW_ARCHES:
        raise BadInput(
            f"target {target.name!r} is {target.arch.name}, which cibuildwheel does not build "
            f"for Linux (it knows {', '.join(CIBW_ARCHES)})"
        )
    kind = "MUSLLINUX" if "musllinux" in target.family else "MANYLINUX"
    return f"CIBW_{kind}_{target.arch.name.upper()}_IMAGE"


def _strip_tag(ref: str) -> tuple[str, str]:
    """name, tag of name:tag (a port's colon is not a tag's)."""
    name, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        return ref, ""
    return name, tag


def find_installer(config: Config, push: Mapping[str, Any], report_file: Path) -> PinnedImage:
    """The installer's multi-arch index from the report (by the installer's image name)."""
    inst = config.installer
    how = (
        f"build and push the installer first: `invoke build-images --config {config.path} "
        f"--target {INSTALLER_TARGET}` and `invoke push-images --config {config.path} "
        f"--target {INSTALLER_TARGET}`"
    )
    if inst is None:
        raise BadInput(
            f"{config.path} has no `installer:` section, and the wheel workflow registers "
            f"emulation with xarch's binfmt installer image; add the section, then {how}"
        )
    name = config.registry.image_name(inst.image)
    found = []
    for ix in push.get("indexes") or []:
        if not isinstance(ix, dict):
            continue
        ref_name, tag = _strip_tag(str(ix.get("ref", "")))
        if ix.get("family") == inst.image and ref_name == name and is_digest(str(ix.get("digest"))):
            found.append((tag, ix))
    if not found:
        raise NotPushed(f"{report_file} has no pushed installer index ({name}); {how}")
    tag, ix = next(((t, i) for t, i in found if t == inst.tags[0]), found[0])
    platforms = tuple(str(m.get("platform", "")) for m in ix.get("manifests") or [])
    return PinnedImage(name=name, digest=str(ix["digest"]), tag=tag, platforms=platforms)


def find_helper(
    config: Config, target: Target, push: Mapping[str, Any], report_file: Path
) -> PinnedImage:
    """A target's per-arch image from the report: the digest pushed for its first tag."""
    want = helper_ref(config, target, target.tags[0])
    rows = [im for im in push.get("images") or [] if isinstance(im, dict)]
    row = next((im for im in rows if im.get("ref") == want), None)
    if row is None or not is_digest(str(row.get("digest"))):
        raise NotPushed(
            f"{report_file} has no pushed digest for {want} (target {target.name}); run "
            f"`invoke push-images --config {config.path}` first"
        )
    if row.get("platform") != target.arch.platform:
        raise TestFailure(
            f"{report_file}: {want} was pushed as {row.get('platform')!r}, but target "
            f"{target.name} is {target.arch.platform}; rebuild and push it"
        )
    name, tag = _strip_tag(want)
    return PinnedImage(
        name=name, digest=str(row["digest"]), tag=tag, platforms=(target.arch.platform,)
    )


def config_ref(path: Path, cwd: Path | None = None) -> tuple[str, str]:
    """The config's path for the jobs (relative to the checkout root, which is the
    current directory here), and a warning when it is outside the checkout."""
    cwd = (cwd or Path.cwd()).resolve()
    full = path if path.is_absolute() else cwd / path
    try:
        return full.resolve().relative_to(cwd).as_posix(), ""
    except ValueError:
        return path.as_posix(), (
            f"the config {path} is outside the checkout ({cwd}); the jobs will look for it "
            "at that path, so commit it to the repository and regenerate from there"
        )


def plan_ci(
    config: Config,
    report: Mapping[str, Any],
    *,
    report_file: Path,
    families: Sequence[str] = (),
    cibuildwheel: str | None = None,
    cwd: Path | None = None,
    ca_bundle: str = "",
) -> CiPlan:
    """Everything the CI files pin, taken from the config and the report; raises a
    clear error for anything missing (nothing is written then)."""
    # The config's cibuildwheel.version (what `invoke wheels` runs) unless overridden.
    cibuildwheel = cibuildwheel or (
        config.cibuildwheel.version if config.cibuildwheel else CIBUILDWHEEL_VERSION
    )
    if ca_bundle and (not ca_bundle.startswith("/") or any(c in ca_bundle for c in "\"'$`\n")):
        raise BadInput(
            f"--ca-bundle {ca_bundle!r}: expected an absolute path on the runner (no quotes, "
            "$ or backticks)"
        )
    if not re.match(r"^\d+(\.\d+)*$", cibuildwheel):
        raise BadInput(f"--cibuildwheel {cibuildwheel!r}: expected an exact version like 4.3.5")
    # The CI files pin the digests of this config's push record.
    push = require_push_record(report, config, report_file)
    installer = find_installer(config, push, report_file)
    known = config.families()
    for f in families:
        if f not in known:
            raise BadInput(f"{config.path}: no family named {f!r}; families: {', '.join(known)}")
    wheel_targets = [t for t in config.targets if not families or t.family in families]
    images: dict[str, WheelImage] = {}
    for t in wheel_targets:
        var = cibw_variable(t)
        if var in images:
            other = images[var].target
            raise BadInput(
                f"targets {other!r} and {t.name!r} both provide {var}; choose the family the "
                f"wheels are built in with --family ({', '.join(known)})"
            )
        images[var] = WheelImage(
            variable=var,
            target=t.name,
            arch=t.arch,
            image=find_helper(config, t, push, report_file),
        )
    # The wheel job runs on an x86_64 runner: the installer's x86_64 variant must carry
    # an emulator for every architecture the wheels are built for.
    assert config.installer is not None  # find_installer checked it
    variant = config.installer.host(get_arch("x86_64"))
    if variant is None:
        raise BadInput(
            f"{config.path}: installer.hosts has no x86_64 variant, which the wheel job's "
            "x86_64 runner pulls"
        )
    if "linux/amd64" not in installer.platforms:
        raise NotPushed(
            f"{installer.name}@{installer.digest} lists {', '.join(installer.platforms)}, "
            "no linux/amd64 variant for the x86_64 runner; push the installer again"
        )
    carried = {a.name for a in variant.emulates}
    register = tuple(dict.fromkeys(w.arch.name for w in images.values() if w.arch.name != "x86_64"))
    lacking = [a for a in register if a not in carried]
    if lacking:
        raise BadInput(
            f"{config.path}: the installer's {variant.arch.name} variant carries no emulator for "
            f"{', '.join(lacking)}; add it to installer.hosts.{variant.arch.name}.emulates, "
            "then build and push the installer again"
        )
    ref, warning = config_ref(config.path, cwd)
    warnings = [warning] if warning else []
    if registry_is_local(config.registry.address):
        warnings.append(
            f"the registry {config.registry.address} is on this host's loopback: a CI runner "
            "cannot pull from it. Publish to a registry your runners reach "
            "(registry.address), push, and regenerate"
        )
    return CiPlan(
        config=config,
        config_ref=ref,
        installer=installer,
        register=register,
        wheel_images=tuple(images.values()),
        targets=config.targets,
        cibuildwheel=cibuildwheel,
        warnings=tuple(warnings),
        ca_bundle=ca_bundle,
    )


# --------------------------------------------------------------------------- YAML out


class Script(str):
    """A multi-line shell script, emitted as a YAML literal block (``|``)."""


class _Dumper(yaml.SafeDumper):
    """Block style, lists indented under their key, no anchors/aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _represent_script(dumper: yaml.SafeDumper, data: Script) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(data), style="|")


_Dumper.add_representer(Script, _represent_script)


def script(*lines: str) -> Script:
    return Script("\n".join(lines) + "\n")


def dump_yaml(doc: Mapping[str, Any], header: Sequence[str], comments: Mapping[str, str]) -> str:
    """YAML text of doc, with header comment lines first and ``# comment`` appended to
    each ``key: value`` line whose value is a key of comments (image references)."""
    text = yaml.dump(
        dict(doc), Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=4096
    )
    out = []
    for line in text.splitlines():
        m = re.match(r"^\s*(?:- )?[\w.-]+: (\S+)$", line)
        value = m.group(1).strip("'\"") if m else ""
        if value in comments:
            line = f"{line}  # {comments[value]}"
        out.append(line)
    body = "\n".join(out) + "\n"
    if yaml.safe_load(body) != yaml.safe_load(text):  # comments must not change the data
        raise XarchError("internal error: a comment changed the generated YAML")
    return "".join(f"# {h}\n".replace("# \n", "#\n") for h in header) + "\n" + body


def unpinned_refs(text: str) -> list[str]:
    """Every registry-qualified image reference in text that has no @sha256 digest."""
    return [m.group(0) for m in IMAGE_REF_RE.finditer(text) if not m.group(3)]


# --------------------------------------------------------------------------- shell steps


def _login(registry: str) -> Script:
    return script(
        "# Private registry: set the XARCH_REGISTRY_USER and XARCH_REGISTRY_PASSWORD secrets.",
        'if [ -n "${XARCH_REGISTRY_PASSWORD:-}" ]; then',
        f'  printf %s "$XARCH_REGISTRY_PASSWORD" | docker login {registry} '
        '-u "$XARCH_REGISTRY_USER" --password-stdin',
        "fi",
    )


def _register(plan: CiPlan, arch: str) -> Script:
    from xarch.images.installer import (
        BIND_PATH,  # where the installer expects the host's binfmt_misc
    )

    inst = plan.installer
    return script(
        f"# xarch's binfmt installer, tag {inst.tag} (index of {', '.join(inst.platforms)}),",
        "# pinned by digest; the engine picks the variant for the runner's platform. It",
        "# registers the pinned qemu-<arch>-static with flag F. Exit 2 means a different",
        "# handler for the architecture is already there (a runner provisioned with",
        "# `invoke provision-runner` has its own): that one is kept.",
        f"docker run --rm -v /proc/sys/fs/binfmt_misc:{BIND_PATH} {inst.ref} install {arch} "
        "|| { rc=$?; [ $rc -eq 2 ] || exit $rc; }",
    )


#: The extra CA bundle in the wheel job, as `invoke wheels --ca-bundle` does it:
#: cibuildwheel copies SSL_CERT_FILE into the container as /cibuildwheel-ca-bundle.pem
#: (and sets PIP_CERT only for pips without truststore); these lines point PIP_CERT,
#: SSL_CERT_FILE and REQUESTS_CA_BUNDLE at it for every build, prepended to the
#: project's own `environment` (CIBW_INHERIT) or to a CIBW_ENVIRONMENT_LINUX it sets.
CA_BUNDLE_LINES = (
    "# Extra CA bundle (XARCH_CA_BUNDLE: a PEM file on the runner, e.g. a TLS proxy's CA;",
    "# empty: off) for pip inside the images.",
    'if [ -n "${XARCH_CA_BUNDLE:-}" ]; then',
    '  export SSL_CERT_FILE="$XARCH_CA_BUNDLE"',
    "  ca='PIP_CERT=/cibuildwheel-ca-bundle.pem SSL_CERT_FILE=/cibuildwheel-ca-bundle.pem "
    "REQUESTS_CA_BUNDLE=/cibuildwheel-ca-bundle.pem'",
    '  if [ -n "${CIBW_ENVIRONMENT_LINUX+set}" ]; then',
    '    export CIBW_ENVIRONMENT_LINUX="$ca $CIBW_ENVIRONMENT_LINUX"',
    "  else",
    '    export CIBW_ENVIRONMENT_LINUX="$ca"',
    '    case "${CIBW_INHERIT:-}" in',
    "      *environment-linux*) ;;",
    '      *) export CIBW_INHERIT="${CIBW_INHERIT:+$CIBW_INHERIT; }environment-linux: prepend" ;;',
    "    esac",
    "  fi",
    "fi",
)


_PIP_ONLY = "|".join(frontend.PIP_ONLY)
#: The build frontend, picked as `invoke wheels` picks it (xarch/wheels/frontend.py):
#: build[uv] when the project names none (CIBW_BUILD_FRONTEND, build-frontend anywhere in
#: pyproject.toml), its containers get no pip-only setting, and each of the job's images
#: has uv on PATH and no pip config file (looked up inside the image, as cibuildwheel's
#: `which uv` will). Otherwise cibuildwheel's default stays, and the job says why.
FRONTEND_LINES = (
    f"# Build frontend: {frontend.FAST_FRONTEND} when the project names none and the images have",
    f"# uv ({frontend.OPT_OUT}).",
    'if [ -n "${CIBW_BUILD_FRONTEND:-}" ]; then',
    '  echo "xarch: frontend $CIBW_BUILD_FRONTEND (CIBW_BUILD_FRONTEND)"',
    "elif grep -qsE '^[[:space:]]*build-frontend[[:space:]]*=' pyproject.toml; then",
    '  echo "xarch: frontend as pyproject.toml sets it (build-frontend)"',
    f"elif grep -qsE '{_PIP_ONLY}' pyproject.toml ||",
    f"    env | grep -qE '^CIBW_ENVIRONMENT[A-Z_]*=.*({_PIP_ONLY})'; then",
    '  echo "xarch: frontend build (kept: the project sets pip-only settings uv does not read)"',
    "else",
    '  fast=yes arch=$(printf %s "$CIBW_ARCHS_LINUX" | tr a-z A-Z)',
    '  for var in "CIBW_MANYLINUX_${arch}_IMAGE" "CIBW_MUSLLINUX_${arch}_IMAGE"; do',
    '    img=$(printenv "$var") || continue',
    '    docker run --rm "$img" sh -c '
    "'command -v uv && ! [ -e /etc/pip.conf ] && ! [ -e /etc/xdg/pip/pip.conf ]' \\",
    '      >/dev/null 2>&1 || { fast=; echo "xarch: no uv (or a pip config file) in $img"; }',
    "  done",
    '  if [ -n "$fast" ]; then',
    f'    export CIBW_BUILD_FRONTEND="{frontend.FAST_FRONTEND}"',
    f'    echo "xarch: frontend {frontend.FAST_FRONTEND} ({frontend.OPT_OUT})"',
    "  else",
    '    echo "xarch: frontend build (cibuildwheel\'s default)"',
    "  fi",
    "fi",
)


def _cibuildwheel(plan: CiPlan, venv: str) -> Script:
    return script(
        *FRONTEND_LINES,  # first: the CA lines below add PIP_CERT for uv and pip alike
        *CA_BUNDLE_LINES,
        f'python3 -m venv "{venv}"',
        "# uv beside cibuildwheel (its uv extra, pinned): with a uv frontend it audits abi3",
        "# wheels in an environment uv makes on this runner.",
        f'"{venv}/bin/pip" install -q {" ".join(venv_requirements(plan.cibuildwheel))}',
        f'"{venv}/bin/cibuildwheel" --platform linux --output-dir wheelhouse',
    )


def _setup_xarch() -> Script:
    return script("python3 -m venv .venv", ".venv/bin/pip install -q -e .")


def _header(plan: CiPlan, provider: str, intro: Sequence[str], report_file: Path) -> list[str]:
    from xarch import __version__

    return [
        *intro,
        "",
        f"Generated by `invoke ci-config --provider {provider}` (xarch {__version__}) from",
        f"{plan.config_ref} and the push recorded in {config_ref(report_file)[0]}.",
        "Every image is pinned by digest: after pushing new images, regenerate this file",
        "instead of editing digests by hand.",
    ]


def _image_comments(plan: CiPlan) -> dict[str, str]:
    out = {w.image.ref: f"{w.target}, tag {w.image.tag}" for w in plan.wheel_images}
    out[plan.installer.ref] = f"binfmt installer, tag {plan.installer.tag}"
    skip = _wheel_env(plan).get("CIBW_SKIP")
    if skip:
        out[skip] = "no helper image of this kind here; overrides `skip` in pyproject.toml"
    return out


def _wheel_env(plan: CiPlan) -> dict[str, str]:
    """The image variables, and CIBW_SKIP for the kind (manylinux/musllinux) that has no
    helper image here: cibuildwheel would build it in its own default images."""
    env = {w.variable: w.image.ref for w in plan.wheel_images}
    kinds = {w.variable.split("_")[1] for w in plan.wheel_images}
    missing = sorted({"MANYLINUX", "MUSLLINUX"} - kinds)
    if missing:
        env["CIBW_SKIP"] = " ".join(f"*-{k.lower()}_*" for k in missing)
    return env


# --------------------------------------------------------------------------- GitHub


GH_CHECKOUT = "actions/checkout@v4"
GH_UPLOAD = "actions/upload-artifact@v4"
GH_DOWNLOAD = "actions/download-artifact@v4"
GH_DEFAULT_BRANCH_ONLY = (
    "github.event_name == 'workflow_dispatch' || "
    "github.ref == format('refs/heads/{0}', github.event.repository.default_branch)"
)


def _gh_login_step(plan: CiPlan) -> list[dict[str, Any]]:
    if not plan.needs_login:
        return []
    return [
        {
            "name": f"Log in to {plan.registry}",
            "env": {
                "XARCH_REGISTRY_USER": "${{ secrets.XARCH_REGISTRY_USER }}",
                "XARCH_REGISTRY_PASSWORD": "${{ secrets.XARCH_REGISTRY_PASSWORD }}",
            },
            "run": _login(plan.registry),
        }
    ]


def github_files(
    plan: CiPlan,
    report_file: Path,
    *,
    runner: Sequence[str] = XARCH_RUNNER,
    wheels_runner: str = WHEELS_RUNNER,
) -> dict[str, str]:
    cfg = plan.config_ref
    runs_on: str | list[str] = list(runner) if len(runner) > 1 else runner[0]
    arches = [w.arch.name for w in plan.wheel_images]
    wheels = {
        "name": "xarch wheels",
        "on": {"push": {}, "pull_request": {}, "workflow_dispatch": {}},
        "permissions": {"contents": "read"},
        "env": {"XARCH_CA_BUNDLE": plan.ca_bundle},
        "jobs": {
            "linux-emulated": {
                "name": "wheels (linux ${{ matrix.arch }}, emulated)",
                "runs-on": wheels_runner,
                "timeout-minutes": TIMEOUT_MINUTES,
                "strategy": {"fail-fast": False, "matrix": {"arch": arches}},
                "steps": [
                    {"uses": GH_CHECKOUT},
                    *_gh_login_step(plan),
                    {
                        "name": "Register QEMU for ${{ matrix.arch }} (xarch installer, by digest)",
                        "run": _register(plan, "${{ matrix.arch }}"),
                    },
                    {
                        "name": f"Build wheels (cibuildwheel {plan.cibuildwheel})",
                        "env": {"CIBW_ARCHS_LINUX": "${{ matrix.arch }}", **_wheel_env(plan)},
                        "run": _cibuildwheel(plan, "$RUNNER_TEMP/cibuildwheel"),
                    },
                    {
                        "uses": GH_UPLOAD,
                        "with": {
                            "name": "wheels-linux-${{ matrix.arch }}",
                            "path": "wheelhouse/*.whl",
                            "if-no-files-found": "error",
                        },
                    },
                ],
            }
        },
    }
    setup = {"name": "Set up xarch", "run": _setup_xarch()}
    build_jobs: dict[str, Any] = {
        "build": {
            "name": "build ${{ matrix.target }}",
            "if": GH_DEFAULT_BRANCH_ONLY,
            "runs-on": runs_on,
            "timeout-minutes": TIMEOUT_MINUTES,
            "strategy": {"fail-fast": False, "matrix": {"target": [t.name for t in plan.targets]}},
            "env": {"XARCH_TARGET": "${{ matrix.target }}"},
            "steps": [
                {"uses": GH_CHECKOUT},
                setup,
                *_gh_login_step(plan),
                {
                    "name": "Build the helper image",
                    "run": f'.venv/bin/invoke build-images --config {cfg} --target "$XARCH_TARGET"',
                },
                {
                    "name": "Push the per-arch image and record its digest",
                    "run": f'.venv/bin/invoke push-arch --config {cfg} --target "$XARCH_TARGET" '
                    f"--digests-dir {DIGESTS_DIR}",
                },
                {
                    "uses": GH_UPLOAD,
                    "with": {
                        "name": "digests-${{ matrix.target }}",
                        "path": f"{DIGESTS_DIR}/",
                        "if-no-files-found": "error",
                        "retention-days": 7,
                    },
                },
            ],
        },
        "index": {
            "name": "multi-arch indexes",
            "needs": ["build"],
            "runs-on": runs_on,
            "timeout-minutes": TIMEOUT_MINUTES,
            "steps": [
                {"uses": GH_CHECKOUT},
                setup,
                *_gh_login_step(plan),
                *(
                    [
                        {
                            "name": "Build and push the binfmt installer",
                            "run": script(
                                f".venv/bin/invoke build-images --config {cfg} "
                                f"--target {INSTALLER_TARGET}",
                                f".venv/bin/invoke push-images --config {cfg} "
                                f"--target {INSTALLER_TARGET}",
                            ),
                        }
                    ]
                    if plan.config.installer is not None
                    else []
                ),
                {
                    "uses": GH_DOWNLOAD,
                    "with": {
                        "pattern": "digests-*",
                        "path": DIGESTS_DIR,
                        "merge-multiple": True,
                    },
                },
                {
                    "name": "Write the indexes from the digests",
                    "run": f".venv/bin/invoke push-index --config {cfg} "
                    f"--digests-dir {DIGESTS_DIR}",
                },
                {
                    "uses": GH_UPLOAD,
                    "with": {"name": "xarch-report", "path": "build/xarch-report.json"},
                },
            ],
        },
    }
    images = {
        "name": "xarch images",
        "on": {
            "push": {"paths": [cfg, "src/xarch/**"]},
            "workflow_dispatch": {},
        },
        "permissions": {"contents": "read"},
        "concurrency": {"group": "xarch-images", "cancel-in-progress": False},
        "jobs": build_jobs,
    }
    pins = {
        "name": "xarch pin check",
        "on": {"schedule": [{"cron": PIN_CHECK_CRON}], "workflow_dispatch": {}},
        "permissions": {"contents": "read"},
        "jobs": {
            "pin-check": {
                "runs-on": runs_on,
                "timeout-minutes": 15,
                "steps": [
                    {"uses": GH_CHECKOUT},
                    setup,
                    {"name": "Refresh the package lists", "run": _apt_update()},
                    {
                        "name": "Are the base digests and the QEMU pin current?",
                        "run": f".venv/bin/invoke pin --config {cfg} --check",
                    },
                ],
            }
        },
    }
    comments = _image_comments(plan)
    intro = {
        "xarch-wheels.yml": [
            "Wheels for emulated Linux architectures: cibuildwheel in xarch's helper images."
        ],
        "xarch-images.yml": [
            "Build and publish xarch's helper images: one job per target, then the multi-arch",
            "indexes. Runs xarch itself, on Debian/Ubuntu runners set up with",
            "`invoke provision-runner` (runner labels: `ci-config --runner`).",
        ],
        "xarch-pin-check.yml": [
            "Weekly: fail when a base tag moved or Debian offers a newer QEMU than the pin",
            "(`invoke pin` updates the base digests in the config).",
        ],
    }
    docs = {"xarch-wheels.yml": wheels, "xarch-images.yml": images, "xarch-pin-check.yml": pins}
    return {
        f".github/workflows/{name}": dump_yaml(
            doc, _header(plan, "github", intro[name], report_file), comments
        )
        for name, doc in docs.items()
    }


def _apt_update() -> Script:
    return script(
        "# `pin --check` compares the QEMU pin with apt's candidate: refresh the lists first.",
        'if [ "$(id -u)" = 0 ]; then apt-get update -q; else sudo -n apt-get update -q; fi \\',
        "  || echo 'could not refresh the package lists; comparing with the last update'",
    )


# --------------------------------------------------------------------------- GitLab


def gitlab_files(
    plan: CiPlan, report_file: Path, *, runner: Sequence[str] = GITLAB_TAGS
) -> dict[str, str]:
    cfg = '"$XARCH_CONFIG"'
    publish_rules = [
        # rules:changes is always true in scheduled pipelines: keep publishing out of them.
        {"if": '$CI_PIPELINE_SOURCE == "schedule"', "when": "never"},
        {"if": '$CI_PIPELINE_SOURCE == "web" || $CI_PIPELINE_SOURCE == "api"'},
        {
            "if": "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH",
            "changes": [plan.config_ref, "src/xarch/**/*"],
        },
    ]
    setup = [_setup_xarch()]
    login = [_login(plan.registry)] if plan.needs_login else []
    installer_lines = (
        [
            script(
                f".venv/bin/invoke build-images --config {cfg} --target {INSTALLER_TARGET}",
                f".venv/bin/invoke push-images --config {cfg} --target {INSTALLER_TARGET}",
            )
        ]
        if plan.config.installer is not None
        else []
    )
    doc: dict[str, Any] = {
        "stages": ["build", "index", "wheels", "check"],
        "variables": {"XARCH_CONFIG": plan.config_ref},
        "default": {"tags": list(runner)},
        "xarch-build": {
            "stage": "build",
            "rules": publish_rules,
            "parallel": {"matrix": [{"XARCH_TARGET": [t.name for t in plan.targets]}]},
            "script": [
                *setup,
                *login,
                f'.venv/bin/invoke build-images --config {cfg} --target "$XARCH_TARGET"',
                f'.venv/bin/invoke push-arch --config {cfg} --target "$XARCH_TARGET" '
                f"--digests-dir {DIGESTS_DIR}",
            ],
            "artifacts": {"paths": [f"{DIGESTS_DIR}/"], "expire_in": "1 week"},
        },
        "xarch-index": {
            "stage": "index",
            "rules": publish_rules,
            "needs": ["xarch-build"],
            "script": [
                *setup,
                *login,
                *installer_lines,
                f".venv/bin/invoke push-index --config {cfg} --digests-dir {DIGESTS_DIR}",
            ],
            "artifacts": {"paths": ["build/xarch-report.json"]},
        },
        "xarch-wheels": {
            "stage": "wheels",
            "rules": [
                {"if": '$CI_PIPELINE_SOURCE == "schedule"', "when": "never"},
                {"when": "on_success"},
            ],
            "needs": [],
            "timeout": f"{TIMEOUT_MINUTES} minutes",
            "parallel": {
                "matrix": [{"CIBW_ARCHS_LINUX": [w.arch.name for w in plan.wheel_images]}]
            },
            "variables": {**_wheel_env(plan), "XARCH_CA_BUNDLE": plan.ca_bundle},
            "script": [
                *login,
                _register(plan, '"$CIBW_ARCHS_LINUX"'),
                _cibuildwheel(plan, ".cibuildwheel-venv"),
            ],
            "artifacts": {"paths": ["wheelhouse/"]},
        },
        "xarch-pin-check": {
            "stage": "check",
            "rules": [{"if": '$CI_PIPELINE_SOURCE == "schedule"'}],
            "needs": [],
            "script": [*setup, _apt_update(), f".venv/bin/invoke pin --config {cfg} --check"],
        },
    }
    intro = [
        "xarch: wheels for emulated Linux architectures (cibuildwheel in xarch's helper",
        "images) on every push; publishing of the helper images (one job per target, then",
        "the multi-arch indexes) on a manual/API pipeline or a change on the default",
        "branch; a pin check in scheduled pipelines.",
        "",
        "The jobs run on shell-executor runners with Docker and python3 (runner tags:",
        f"{', '.join(runner)}); set one up with `invoke provision-runner`. A docker-executor",
        "runner needs an `image:` with Docker access; pin it by digest too.",
    ]
    header = _header(plan, "gitlab", intro, report_file)
    return {".gitlab-ci.yml": dump_yaml(doc, header, _image_comments(plan))}


# --------------------------------------------------------------------------- writing


@dataclass(frozen=True)
class Written:
    path: Path
    status: str  # written | unchanged | replaced


def render(
    plan: CiPlan,
    provider: str,
    report_file: Path,
    *,
    runner: Sequence[str] = (),
    wheels_runner: str = WHEELS_RUNNER,
) -> dict[str, str]:
    if provider == "github":
        files = github_files(
            plan, report_file, runner=runner or XARCH_RUNNER, wheels_runner=wheels_runner
        )
    elif provider == "gitlab":
        files = gitlab_files(plan, report_file, runner=runner or GITLAB_TAGS)
    else:
        raise BadInput(f"unknown provider {provider!r}; one of: {', '.join(PROVIDERS)}")
    for name, text in files.items():
        loose = unpinned_refs(text)
        if loose:
            raise XarchError(
                f"internal error: {name} would name images without a digest: {', '.join(loose)}"
            )
    return files


def write_files(files: Mapping[str, str], output: Path, *, force: bool = False) -> list[Written]:
    """Write the files under output; an existing file with other content is replaced
    only with force (checked for every file before any is written)."""
    clashes = []
    for name, text in files.items():
        p = output / name
        if p.exists() and p.read_text() != text and not force:
            clashes.append(str(p))
    if clashes:
        raise BadInput(
            f"{', '.join(clashes)} already exist(s) with other content; nothing was written. "
            "Pass --force to replace, or --output DIR to write elsewhere"
        )
    out = []
    for name, text in files.items():
        p = output / name
        if p.exists() and p.read_text() == text:
            out.append(Written(p, "unchanged"))
            continue
        status = "replaced" if p.exists() else "written"
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".{p.name}.tmp{os.getpid()}")
        tmp.write_text(text)
        os.replace(tmp, p)
        out.append(Written(p, status))
    return out


def summary(plan: CiPlan) -> str:
    rows = [("USE", "ARCH", "IMAGE (pinned)", "TAG")]
    rows.append(
        ("binfmt installer", ",".join(plan.register), plan.installer.ref, plan.installer.tag)
    )
    for w in plan.wheel_images:
        rows.append((w.variable, w.arch.name, w.image.ref, w.image.tag))
    return format_table(rows)


def ci_config(
    config: Config,
    provider: str,
    *,
    output: Path,
    report: Mapping[str, Any],
    report_file: Path,
    families: Sequence[str] = (),
    runner: Sequence[str] = (),
    wheels_runner: str = WHEELS_RUNNER,
    cibuildwheel: str | None = None,
    force: bool = False,
    ca_bundle: str = "",
    log: Log = print,
) -> list[Written]:
    if provider not in PROVIDERS:
        raise BadInput(f"--provider {provider!r}: one of {', '.join(PROVIDERS)}")
    plan = plan_ci(
        config,
        report,
        report_file=report_file,
        families=families,
        cibuildwheel=cibuildwheel,
        ca_bundle=ca_bundle,
    )
    files = render(plan, provider, report_file, runner=runner, wheels_runner=wheels_runner)
    written = write_files(files, output, force=force)
    log(summary(plan))
    log("")
    for w in written:
        log(f"{w.status}: {w.path}")
    for warning in plan.warnings:
        log(f"warning: {warning}")
    return written
