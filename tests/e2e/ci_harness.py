"""Run a generated CI job on this host, step by step, as the CI service would.

GitHub Actions: each ``run:`` step in order, under ``bash -e FILE`` (GitHub's
``bash -e {0}``: the script is written to a file), with the workflow's, the job's and
the step's ``env:`` layered in that order and ``${{ matrix.X }}`` / ``${{ env.X }}``
substituted, and ``${{ secrets.X }}`` for the secrets the caller passes (a secret it
does not pass is refused). Any other expression (``github``, ``inputs``, functions) is
refused loudly: the harness does not guess what a runner would give. ``uses:`` steps
are stood in by their local meaning:

- ``actions/checkout``: a copy of the sample project becomes the workspace;
- ``actions/upload-artifact``: the files its ``path`` names must exist;
- ``actions/setup-python``: the host's python3 (nothing to do);
- anything else: refused, naming it.

GitLab CI: the job's ``script:`` lines, in one ``bash -e`` script (GitLab's shell
executor stops at the first failing line), with the top-level and the job's
``variables:`` and one entry of ``parallel: matrix:`` in the environment; the checkout
is implicit (the workspace is the copy of the project); ``artifacts: paths:`` must
exist afterwards. Keys whose meaning the harness does not reproduce
(``before_script``, ``after_script``, ``image``, ``services``) are refused.

Keys that only schedule or label a job (``runs-on``, ``name``, ``rules``, ``needs``,
``stage``, ``tags``, ``timeout-minutes``) are ignored, except that ``timeout-minutes``
/ ``timeout`` bound the whole job.
"""

from __future__ import annotations

import glob
import itertools
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EXPR_RE = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
CONTEXT_RE = re.compile(r"^(matrix|env|secrets)\.([A-Za-z_][A-Za-z0-9_-]*)$")
GH_STEP_KEYS = {"name", "run", "uses", "with", "env", "id"}
GH_JOB_KEYS = {"name", "runs-on", "timeout-minutes", "strategy", "steps", "env"}
GL_REFUSED = ("before_script", "after_script", "image", "services")

Log = Callable[[str], None]


class HarnessError(Exception):
    """The job uses something the harness does not stand in for, or is malformed."""


class JobFailed(Exception):
    """A step of the job failed: the job stops there, as on the CI service."""

    def __init__(self, step: str, returncode: int, output: str) -> None:
        self.step = step
        self.returncode = returncode
        self.output = output
        tail = "\n".join(output.rstrip().splitlines()[-40:])
        super().__init__(f"step {step!r} failed with exit {returncode}:\n{tail}")


@dataclass
class StepResult:
    name: str
    kind: str  # run | checkout | upload-artifact | setup-python | script
    seconds: float = 0.0
    output: str = ""
    files: list[str] = field(default_factory=list)  # upload-artifact: what it would upload


# --------------------------------------------------------------------------- substitution


def substitute(text: str, ctx: Mapping[str, Mapping[str, str]], where: str) -> str:
    """text with each ``${{ matrix.X }}`` / ``${{ env.X }}`` replaced; anything else,
    or a name the context lacks, raises HarnessError naming it and where it is."""

    def one(m: re.Match[str]) -> str:
        expr = m.group(1)
        c = CONTEXT_RE.match(expr)
        if c is None:
            raise HarnessError(
                f"{where}: unsupported expression ${{{{ {expr} }}}} (the harness knows only "
                "matrix.*, env.* and the secrets it is given)"
            )
        scope, name = c.groups()
        if name not in ctx.get(scope, {}):
            raise HarnessError(f"{where}: ${{{{ {expr} }}}} is not defined here")
        return str(ctx[scope][name])

    return EXPR_RE.sub(one, text)


def layer_env(
    layers: Sequence[tuple[str, Mapping[str, Any] | None]],
    matrix: Mapping[str, str],
    secrets: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The env: mappings (workflow, job, step), later ones winning; each value is
    substituted with the matrix and the env layered so far."""
    env: dict[str, str] = {}
    for where, layer in layers:
        for k, v in (layer or {}).items():
            value = "" if v is None else str(v).lower() if isinstance(v, bool) else str(v)
            ctx = {"matrix": matrix, "env": env, "secrets": secrets or {}}
            env[str(k)] = substitute(value, ctx, f"{where}.env.{k}")
    return env


def matrix_entries(strategy: Mapping[str, Any] | None) -> list[dict[str, str]]:
    """Every combination of a GitHub ``strategy.matrix`` (include/exclude refused)."""
    matrix = (strategy or {}).get("matrix") or {}
    if not isinstance(matrix, Mapping):
        raise HarnessError(f"strategy.matrix must be a mapping, found {matrix!r}")
    for key in ("include", "exclude"):
        if key in matrix:
            raise HarnessError(f"strategy.matrix.{key} is not supported by the harness")
    keys = list(matrix)
    values = [v if isinstance(v, list) else [v] for v in matrix.values()]
    return [dict(zip(keys, map(str, combo), strict=True)) for combo in itertools.product(*values)]


def gitlab_matrix_entries(job: Mapping[str, Any]) -> list[dict[str, str]]:
    """Every combination of a GitLab ``parallel: matrix:`` (one empty entry without)."""
    parallel = job.get("parallel")
    if parallel is None:
        return [{}]
    if not isinstance(parallel, Mapping) or "matrix" not in parallel:
        raise HarnessError(f"parallel must be `matrix: [...]` here, found {parallel!r}")
    out = []
    for entry in parallel["matrix"]:
        keys = list(entry)
        values = [v if isinstance(v, list) else [v] for v in entry.values()]
        out += [dict(zip(keys, map(str, c), strict=True)) for c in itertools.product(*values)]
    return out


# --------------------------------------------------------------------------- running


def base_env(workspace: Path, temp: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The runner's environment: this host's, without any CIBW_* (a clean runner has
    none), with the variables GitHub and GitLab always set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIBW_")}
    env.update(
        {
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_WORKSPACE": str(workspace),
            "RUNNER_TEMP": str(temp),
            "RUNNER_OS": "Linux",
            "CI_PROJECT_DIR": str(workspace),
        }
    )
    env.update(extra or {})
    return env


def run_bash(
    script: str,
    *,
    name: str,
    cwd: Path,
    env: Mapping[str, str],
    temp: Path,
    deadline: float,
    log: Log,
) -> str:
    """Write script to a file and run ``bash -e FILE``; JobFailed on a non-zero exit."""
    temp.mkdir(parents=True, exist_ok=True)
    f = temp / f"step-{time.monotonic_ns()}.sh"
    f.write_text(script)
    log(f"--- {name}\n{script.rstrip()}")
    remaining = max(1.0, deadline - time.monotonic())
    try:
        r = subprocess.run(
            ["bash", "-e", str(f)],
            cwd=cwd,
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            timeout=remaining,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        out = e.stdout if isinstance(e.stdout, str) else ""
        raise JobFailed(name, -1, out + "\n(the job's timeout expired)") from None
    log(r.stdout.rstrip())
    if r.returncode != 0:
        raise JobFailed(name, r.returncode, r.stdout)
    return r.stdout


def checkout(project: Path, workspace: Path) -> None:
    shutil.copytree(project, workspace, dirs_exist_ok=True)


def artifact_files(workspace: Path, paths: Sequence[str]) -> list[str]:
    """The files the artifact paths (globs, relative to the workspace) name."""
    out: list[str] = []
    for p in paths:
        p = p.strip()
        if not p:
            continue
        if p.startswith("!"):
            raise HarnessError(f"artifact path exclusions ({p}) are not supported")
        matches = sorted(glob.glob(str(workspace / p), recursive=True))
        files = []
        for m in matches:
            mp = Path(m)
            files += [str(f) for f in mp.rglob("*") if f.is_file()] if mp.is_dir() else [m]
        out += files
    return out


def _kind_of_uses(uses: str) -> str:
    name = uses.split("@", 1)[0]
    known = {
        "actions/checkout": "checkout",
        "actions/upload-artifact": "upload-artifact",
        "actions/setup-python": "setup-python",
    }
    if name not in known:
        raise HarnessError(f"uses: {uses}: the harness has no local stand-in for this action")
    return known[name]


def github_job(workflow: Mapping[str, Any], job_id: str) -> Mapping[str, Any]:
    jobs = workflow.get("jobs") or {}
    if job_id not in jobs:
        raise HarnessError(f"no job {job_id!r} in the workflow (jobs: {', '.join(jobs)})")
    job = jobs[job_id]
    unknown = set(job) - GH_JOB_KEYS
    if unknown:
        raise HarnessError(f"jobs.{job_id}: unsupported key(s) {', '.join(sorted(unknown))}")
    return job  # type: ignore[no-any-return]


def run_github_job(
    workflow: Mapping[str, Any],
    job_id: str,
    matrix: Mapping[str, str],
    *,
    project: Path,
    workspace: Path,
    temp: Path,
    extra_env: Mapping[str, str] | None = None,
    secrets: Mapping[str, str] | None = None,
    dry_run: bool = False,
    log: Log = print,
) -> list[StepResult]:
    """Run one matrix entry of a GitHub job. dry_run: substitute everything and check
    every script with ``bash -n`` instead of running it (no step has effects)."""
    job = github_job(workflow, job_id)
    timeout = float(job.get("timeout-minutes") or 360) * 60
    deadline = time.monotonic() + timeout
    workspace.mkdir(parents=True, exist_ok=True)
    results: list[StepResult] = []
    for i, step in enumerate(job.get("steps") or []):
        where = f"jobs.{job_id}.steps[{i}]"
        unknown = set(step) - GH_STEP_KEYS
        if unknown:
            raise HarnessError(f"{where}: unsupported key(s) {', '.join(sorted(unknown))}")
        env = layer_env(
            [
                ("workflow", workflow.get("env")),
                (f"jobs.{job_id}", job.get("env")),
                (where, step.get("env")),
            ],
            matrix,
            secrets,
        )
        ctx = {"matrix": dict(matrix), "env": env, "secrets": dict(secrets or {})}
        name = substitute(str(step.get("name") or step.get("uses") or f"step {i}"), ctx, where)
        t0 = time.monotonic()
        if "run" in step and "uses" in step:
            raise HarnessError(f"{where}: both run and uses")
        if "run" in step:
            script = substitute(str(step["run"]), ctx, f"{where}.run")
            result = StepResult(name=name, kind="run")
            if dry_run:
                _bash_syntax(script, name)
            else:
                result.output = run_bash(
                    script,
                    name=name,
                    cwd=workspace,
                    env=base_env(workspace, temp, extra_env) | env,
                    temp=temp,
                    deadline=deadline,
                    log=log,
                )
        elif "uses" in step:
            kind = _kind_of_uses(str(step["uses"]))
            with_ = {
                str(k): substitute(str(v), ctx, f"{where}.with.{k}")
                for k, v in (step.get("with") or {}).items()
            }
            result = StepResult(name=name, kind=kind)
            if kind == "checkout" and not dry_run:
                checkout(project, workspace)
            elif kind == "upload-artifact" and not dry_run:
                result.files = artifact_files(workspace, with_.get("path", "").splitlines())
                if not result.files and with_.get("if-no-files-found", "warn") == "error":
                    raise JobFailed(name, 1, f"no files found at {with_.get('path')!r}")
        else:
            raise HarnessError(f"{where}: neither run nor uses")
        result.seconds = time.monotonic() - t0
        results.append(result)
    return results


def run_gitlab_job(
    doc: Mapping[str, Any],
    job_name: str,
    matrix: Mapping[str, str],
    *,
    project: Path,
    workspace: Path,
    temp: Path,
    extra_env: Mapping[str, str] | None = None,
    dry_run: bool = False,
    log: Log = print,
) -> list[StepResult]:
    """Run one parallel-matrix entry of a GitLab job (see the module docstring)."""
    if job_name not in doc:
        raise HarnessError(f"no job {job_name!r} in the pipeline")
    job = doc[job_name]
    for key in GL_REFUSED:
        if key in job or key in doc:
            raise HarnessError(f"{job_name}: {key} is not supported by the harness")
    env: dict[str, str] = {}
    for layer in (doc.get("variables"), job.get("variables"), matrix):
        for k, v in (layer or {}).items():
            env[str(k)] = "" if v is None else str(v)
    lines = job.get("script") or []
    if not isinstance(lines, list) or not lines:
        raise HarnessError(f"{job_name}.script must be a non-empty list")
    script = "\n".join(str(line) for line in lines) + "\n"
    timeout = _gitlab_timeout(str(job.get("timeout", "")))
    deadline = time.monotonic() + timeout
    t0 = time.monotonic()
    result = StepResult(name=f"{job_name} script", kind="script")
    if dry_run:
        _bash_syntax(script, result.name)
    else:
        workspace.mkdir(parents=True, exist_ok=True)
        checkout(project, workspace)
        result.output = run_bash(
            script,
            name=result.name,
            cwd=workspace,
            env=base_env(workspace, temp, extra_env) | env,
            temp=temp,
            deadline=deadline,
            log=log,
        )
        paths = (job.get("artifacts") or {}).get("paths") or []
        result.files = artifact_files(workspace, [str(p) for p in paths])
        if paths and not result.files:
            raise JobFailed(result.name, 1, f"no artifact files at {paths}")
    result.seconds = time.monotonic() - t0
    return [result]


def _gitlab_timeout(text: str) -> float:
    m = re.match(r"^\s*(\d+)\s*(minutes?|m|hours?|h)?\s*$", text)
    if not text:
        return 3600.0
    if m is None:
        raise HarnessError(f"timeout {text!r}: the harness reads `N minutes` or `N hours`")
    n = int(m.group(1))
    return n * (3600.0 if (m.group(2) or "m").startswith("h") else 60.0)


def _bash_syntax(script: str, name: str) -> None:
    r = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise JobFailed(name, r.returncode, f"bash -n: {r.stderr}")
