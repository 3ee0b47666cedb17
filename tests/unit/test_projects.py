"""The real-project list: pins checked at load, a project's own test settings win, the
bench table's ratios (pure; downloads and builds run in tests/e2e and the bench)."""

from __future__ import annotations

from pathlib import Path

import pytest

from xarch.bench.projects import ProjectRow, SideRun, render
from xarch.errors import ConfigError
from xarch.wheels.projects import RealProject, load_projects, select

REPO = Path(__file__).resolve().parents[2]
SHA = "a" * 64


def test_the_shipped_list_loads() -> None:
    names = [p.name for p in load_projects(REPO / "config/projects/pypi.yaml")]
    assert {"markupsafe", "bitarray", "zstandard", "levenshtein"} <= set(names)


@pytest.mark.parametrize(
    ("body", "key", "says"),
    [
        ("projects: {}", "projects", "expected a list"),
        ("projects: [{name: x, version: 1, sha256: abc}]", "projects[0].sha256", "not a sha256"),
        (f"projects: [{{name: x, version: 1, sha256: {SHA}, tests: y}}]", "projects[0].tests",
         "unknown key"),
        (f"projects: [{{version: 1, sha256: {SHA}}}]", "projects[0].name", "expected a string"),
        (f"projects: [{{name: x, version: 1, sha256: {SHA}}}, {{name: x, version: 2, "
         f"sha256: {SHA}}}]", "projects[1].name", "listed twice"),
    ],
)  # fmt: skip
def test_a_bad_list_names_file_and_key(body: str, key: str, says: str, tmp_path: Path) -> None:
    p = tmp_path / "list.yaml"
    p.write_text(body)
    with pytest.raises(ConfigError) as e:
        load_projects(p)
    assert str(p) in str(e.value) and key in str(e.value) and says in str(e.value)


def test_an_unknown_name_is_refused_naming_the_known() -> None:
    projects = [RealProject(name="a", version="1", sha256=SHA)]
    with pytest.raises(ConfigError, match="known: a"):
        select(projects, ["b"])


def test_the_lists_test_command_only_where_the_project_has_none(tmp_path: Path) -> None:
    p = RealProject(
        name="x", version="1", sha256=SHA, test_command="pytest", test_requires=("pytest",)
    )
    (tmp_path / "pyproject.toml").write_text("[tool.cibuildwheel]\nbuild = '*'\n")
    assert p.test_env(tmp_path) == {"CIBW_TEST_COMMAND": "pytest", "CIBW_TEST_REQUIRES": "pytest"}
    (tmp_path / "pyproject.toml").write_text("[tool.cibuildwheel.linux]\ntest-command = 'true'\n")
    assert p.test_env(tmp_path) == {}


def test_the_table_gives_the_ratios_side_by_side() -> None:
    row = ProjectRow(project=RealProject(name="x", version="1", sha256=SHA))
    row.add(SideRun(side="plain", seconds=60.0, steps={"build": 40.0}))
    row.add(SideRun(side="accelerated", seconds=20.0, steps={"build": 8.0}))
    row.add(SideRun(side="native", seconds=5.0, steps={"build": 3.0}))
    assert row.ratio("plain", "accelerated") == 3.0
    assert row.ratio("accelerated", "native") == 4.0
    text = render([row])
    assert "3.00x" in text and "4.00x" in text and "12.00x" in text
    assert "[" not in text  # one round: no range
    row.rounds["native"] = [SideRun(side="native", error="uv build failed")]
    assert row.ratio("accelerated", "native") is None
    assert "FAILED" in render([row])


def test_rounds_become_medians_with_the_range_and_failed_rounds_said() -> None:
    row = ProjectRow(project=RealProject(name="x", version="1", sha256=SHA))
    for total, build, test in ((44.0, 19.0, 15.0), (27.0, 12.0, 8.0), (30.0, 13.0, 9.0)):
        row.add(SideRun(side="accelerated", seconds=total, steps={"build": build, "test": test}))
    for total in (100.0, 120.0):
        row.add(SideRun(side="plain", seconds=total, steps={"build": total / 2}))
    row.add(SideRun(side="plain", error="engine went away"))
    acc = row.runs["accelerated"]
    assert acc.seconds == 30.0 and acc.steps == {"build": 13.0, "test": 9.0}
    assert row.runs["plain"].seconds == 110.0  # the failed round is not a zero
    assert row.ratio("plain", "accelerated") == 110.0 / 30.0
    text = render([row])
    assert "30.0 [27.0-44.0]" in text and "110.0 [100.0-120.0]" in text
    assert "(1 of 3 rounds failed)" in text
    data = row.to_json()
    assert data["totals"]["accelerated"]["n"] == 3
    assert [r["seconds"] for r in data["rounds"]["accelerated"]] == [44.0, 27.0, 30.0]


def test_a_side_whose_every_round_failed_keeps_its_error() -> None:
    row = ProjectRow(project=RealProject(name="x", version="1", sha256=SHA))
    row.add(SideRun(side="native", error="first"))
    row.add(SideRun(side="native", error="second"))
    assert row.runs["native"].error == "first"
    assert row.totals("native") is None
