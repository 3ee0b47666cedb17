"""The real CLI (`invoke ...` in the checkout) on bad input, without a Docker engine.

Every run points DOCKER_HOST at a socket that does not exist: a config error must be
reported as such (exit 2, file and key path on stderr) before any docker call, and a
valid config must get as far as the engine and fail there (exit 1) with advice.

Every task of the collection (``ns.task_names``, not a list kept here) is checked for
its ``--help`` (its docstring, every flag with its help text) and its line in
``invoke --list`` and ``xarch --list``. None of this needs Docker.
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from invoke.parser import Argument
from invoke.tasks import Task

from xarch.cli.tasks import ns

REPO_ROOT = Path(__file__).resolve().parents[2]
NO_DOCKER = "unix:///nonexistent/docker.sock"
#: Every task, asked of the collection itself (never a hand-kept list).
TASKS = sorted(ns.task_names)


def _arguments(task: Task[Any]) -> list[Argument]:
    # Task.get_arguments() pops each help text off task.help as it builds the
    # Argument: ask a copy, so that the collection keeps them for whoever asks next.
    probe = copy.copy(task)
    probe.help = dict(task.help)
    return probe.get_arguments()


#: task -> its arguments, read once at collection, before any test runs a Program.
ARGUMENTS = {name: _arguments(ns[name]) for name in TASKS}
DIGEST = "sha256:" + "ab" * 32


def invoke(
    *args: str, tmp_path: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `invoke ARGS` in the checkout, with caches and reports under tmp_path."""
    full_env = {
        **os.environ,
        "DOCKER_HOST": NO_DOCKER,
        "XARCH_CACHE_DIR": str(tmp_path / "cache"),
        "XARCH_STATE_DIR": str(tmp_path / "state"),
        "XARCH_BUILD_DIR": str(tmp_path / "build"),
        **(env or {}),
    }
    full_env.pop("DOCKER_CONTEXT", None)
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=REPO_ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def offline_config() -> dict[str, object]:
    data = yaml.safe_load((REPO_ROOT / "config/offline.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def pinned_config() -> dict[str, object]:
    data = yaml.safe_load((REPO_ROOT / "config/images.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _target0(data: dict[str, object]) -> dict[str, object]:
    targets = data["targets"]
    assert isinstance(targets, list)
    t = targets[0]
    assert isinstance(t, dict)
    return t


def with_typo(data: dict[str, object]) -> dict[str, object]:
    t = _target0(data)
    t["tagz"] = t.pop("tags")
    return data


def unpinned(data: dict[str, object]) -> dict[str, object]:
    base = _target0(data)["base"]
    assert isinstance(base, dict)
    del base["digest"]
    return data


def bad_arch(data: dict[str, object]) -> dict[str, object]:
    _target0(data)["arch"] = "aarch46"
    return data


def digest_in_image(data: dict[str, object]) -> dict[str, object]:
    base = _target0(data)["base"]
    assert isinstance(base, dict)
    base["image"] = f"{base['image']}@{DIGEST}"
    return data


# (config text, key path, fragments of stderr)
BAD_CONFIGS = [
    pytest.param(
        yaml.safe_dump(with_typo(offline_config()), sort_keys=False),
        "targets[0].tagz",
        ["unknown key 'tagz'", "did you mean 'tags'?"],
        id="unknown-key",
    ),
    pytest.param(
        yaml.safe_dump(unpinned(pinned_config()), sort_keys=False),
        "targets[0].base.digest",
        ["not pinned by digest", "--allow-unpinned"],
        id="unpinned",
    ),
    pytest.param(
        yaml.safe_dump(digest_in_image(pinned_config()), sort_keys=False),
        "targets[0].base.image",
        ["contains a digest"],
        id="digest-in-image",
    ),
    pytest.param(
        yaml.safe_dump(bad_arch(offline_config()), sort_keys=False),
        "targets[0].arch",
        ["unknown architecture 'aarch46'", "Did you mean 'aarch64'?"],
        id="unknown-arch",
    ),
    pytest.param(
        "registry:\n  address: 127.0.0.1:5000\n  namespace: a: b\n",
        "",
        ["YAML syntax error", "line 3"],
        id="yaml-syntax",
    ),
]


@pytest.mark.parametrize(("text", "key", "fragments"), BAD_CONFIGS)
def test_build_images_bad_config(tmp_path: Path, text: str, key: str, fragments: list[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    r = invoke("build-images", "--config", str(path), tmp_path=tmp_path)
    assert r.returncode == 2, r.stderr
    assert f"error: {path}: {key}" in r.stderr
    for fragment in fragments:
        assert fragment in r.stderr
    assert "Docker daemon" not in r.stderr + r.stdout
    assert not (tmp_path / "cache").exists()  # no emulator was fetched either


def test_build_images_missing_config(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    r = invoke("build-images", "--config", str(path), tmp_path=tmp_path)
    assert r.returncode == 2
    assert f"error: {path}: file not found" in r.stderr
    assert "Docker daemon" not in r.stderr


def test_build_images_unknown_target(tmp_path: Path) -> None:
    r = invoke(
        "build-images", "--config", "config/offline.yaml", "--target", "nosuch", tmp_path=tmp_path
    )
    assert r.returncode == 2
    assert "config/offline.yaml" in r.stderr
    assert "no target named 'nosuch'" in r.stderr
    assert "standin-manylinux2014_aarch64" in r.stderr
    assert "Docker daemon" not in r.stderr


def test_build_images_unpinned_allowed_reaches_the_engine(tmp_path: Path) -> None:
    """The control: with --allow-unpinned the same config passes, and DOCKER_HOST
    really keeps the run from any engine."""
    path = tmp_path / "unpinned.yaml"
    path.write_text(yaml.safe_dump(unpinned(pinned_config())), encoding="utf-8")
    r = invoke("build-images", "--config", str(path), "--allow-unpinned", tmp_path=tmp_path)
    assert r.returncode == 1
    assert "the Docker daemon does not answer" in r.stderr


@pytest.mark.parametrize("config", ["config/offline.yaml", "config/images.yaml"])
def test_push_images_without_engine(tmp_path: Path, config: str) -> None:
    r = invoke("push-images", "--config", config, tmp_path=tmp_path)
    assert r.returncode == 1
    assert "error: the Docker daemon does not answer" in r.stderr
    assert "systemctl start docker" in r.stderr
    assert "DOCKER_HOST" in r.stderr


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _same_text(shown: str, expected: str) -> bool:
    """Equal but for whitespace: invoke wraps help text, also after a hyphen."""
    return "".join(shown.split()) == "".join(expected.split())


def _first_line(task: Task[Any]) -> str:
    doc = (task.__doc__ or "").strip()
    return doc.splitlines()[0].strip() if doc else ""


def _listed(stdout: str) -> dict[str, str]:
    """Task name -> its help in `--list` output, with the wrapped lines joined."""
    out: dict[str, str] = {}
    name = None
    for line in stdout.splitlines():
        if re.match(r"^  \S", line):  # "  name   help..." starts an entry
            name, _, text = line.strip().partition(" ")
            out[name] = text
        elif name is not None and line.startswith("    ") and line.strip():
            out[name] += " " + line.strip()
        else:
            name = None
    return {k: _one_line(v) for k, v in out.items()}


def _options(stdout: str) -> dict[str, str]:
    """Long flag -> its help text in a task's `--help`, wrapped lines joined."""
    out: dict[str, str] = {}
    section = stdout.partition("Options:\n")[2]
    flag = None
    for line in section.splitlines():
        # "  -c STRING, --config=STRING   help", "  -f [STRING], --from-x[=STRING]   help"
        m = re.match(r"^  (?:-\w(?: \[?\w+\]?)?, )?--([\w-]+)(?:\[?=\w+\]?)?(?:\s+(.*))?$", line)
        if m:
            flag = m.group(1)
            out[flag] = m.group(2) or ""
        elif flag is not None and line.strip():
            out[flag] += " " + line.strip()
    return {k: _one_line(v) for k, v in out.items()}


def _flag(argument: Argument) -> str:
    """The long flag invoke shows for an argument (``json_`` is ``--json``)."""
    return str(argument.names[0])


def test_the_collection_has_every_task() -> None:
    # A floor, so that an empty or half-loaded collection cannot pass the tests below.
    assert len(TASKS) >= 18
    assert {"build-images", "push-images", "test-images", "doctor", "bench"} <= set(TASKS)


@pytest.mark.parametrize("task", TASKS)
def test_every_task_has_a_docstring_and_help_for_every_flag(task: str) -> None:
    t = ns[task]
    assert _first_line(t), f"{task}: no docstring (its first line is the --list help)"
    # get_arguments() itself refuses help for a parameter the task does not take.
    missing = [_flag(a) for a in ARGUMENTS[task] if not (a.help or "").strip()]
    assert not missing, f"{task}: no help text for --{', --'.join(missing)} (task(help={{...}}))"


@pytest.mark.parametrize("task", TASKS)
def test_task_help(tmp_path: Path, task: str) -> None:
    t = ns[task]
    r = invoke(task, "--help", tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"Usage: inv[oke] [--core-opts] {task}" in r.stdout
    docstring = _one_line(r.stdout.partition("Docstring:")[2].partition("Options:")[0])
    assert "".join(docstring.split()).startswith("".join(_first_line(t).split())), r.stdout
    shown = _options(r.stdout)
    for argument in ARGUMENTS[task]:
        flag = _flag(argument)
        assert flag in shown, f"{task} --help does not show --{flag}:\n{r.stdout}"
        assert _same_text(shown[flag], argument.help or ""), f"--{flag}: {shown[flag]!r}"
    assert set(shown) == {_flag(a) for a in ARGUMENTS[task]}
    assert "TODO" not in r.stdout


def test_list_shows_every_task_with_its_one_line_help(tmp_path: Path) -> None:
    r = invoke("--list", tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr
    listed = _listed(r.stdout.partition("Available tasks:")[2])
    assert sorted(listed) == TASKS, r.stdout
    for task in TASKS:
        assert _same_text(listed[task], _first_line(ns[task])), f"{task}: {listed[task]!r}"


def test_console_script_lists_the_same_tasks(tmp_path: Path) -> None:
    # `python -m xarch` runs the console script's Program (xarch.cli.main), from
    # outside the checkout so that no tasks.py can be picked up.
    r = subprocess.run(
        [sys.executable, "-m", "xarch", "--list"],
        cwd=tmp_path,
        env={**os.environ, "DOCKER_HOST": NO_DOCKER},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    listed = _listed(r.stdout.partition("Subcommands:")[2])
    assert sorted(listed) == TASKS, r.stdout
    for task in TASKS:
        assert _same_text(listed[task], _first_line(ns[task])), f"{task}: {listed[task]!r}"
