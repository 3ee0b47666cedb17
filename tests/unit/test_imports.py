"""The package's import graph, read from the source with ast: no cycles, and each
layer imports only its own package and the layers below it.

Every import counts: at module level, inside functions, under ``if TYPE_CHECKING:``,
relative or absolute, and ``importlib.import_module("xarch....")`` with a literal name.
``from xarch.model import config`` imports the submodule ``xarch.model.config``; ``from
xarch.model.config import Config`` imports ``xarch.model.config``.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = "xarch"

#: Lowest first. A module may import modules of its own layer and of lower layers.
LAYERS = (
    "errors",
    "model",
    "oci",
    "host",
    "images",
    "publish",
    "runner",
    "wheels",
    "ci",
    "bench",
    "cli",
)
#: Modules outside the layers: the package root (imported by every import of the
#: package, so it may import nothing) and ``python -m xarch`` (above everything).
ROOT_RANK = -1
MAIN_MODULE = f"{PACKAGE}.__main__"


@dataclass(frozen=True)
class ImportEdge:
    importer: str
    imported: str
    path: Path
    line: int

    def where(self) -> str:
        return f"{self.path.relative_to(SRC.parent)}:{self.line}"


# --------------------------------------------------------------------------- reading


def module_name(path: Path, src: Path = SRC) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def discover(src: Path = SRC, package: str = PACKAGE) -> dict[str, Path]:
    """Every module of the package: dotted name -> file."""
    return {module_name(p, src): p for p in sorted((src / package).rglob("*.py"))}


def _resolve_relative(importer: str, is_package: bool, level: int, module: str | None) -> str:
    base = importer.split(".")
    if not is_package:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, *([module] if module else [])])


def _owner(name: str, modules: Mapping[str, Path]) -> str | None:
    """The module a dotted name lives in: itself, or its longest module prefix."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        candidate = ".".join(parts[:n])
        if candidate in modules:
            return candidate
    return None


def imports_of(name: str, path: Path, modules: Mapping[str, Path]) -> Iterator[ImportEdge]:
    """Every import of a package module by `name`, wherever it is in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = (
                _resolve_relative(name, is_package, node.level, node.module)
                if node.level
                else node.module or ""
            )
            # `from pkg import sub` imports pkg.sub when that is a module, else pkg.
            targets = [f"{base}.{a.name}" if a.name != "*" else base for a in node.names]
        elif (
            isinstance(node, ast.Call)
            and (
                (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                or (isinstance(node.func, ast.Name) and node.func.id == "__import__")
            )
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            targets = [node.args[0].value]
        # `from x import A, B` is one import of x.
        for owner in dict.fromkeys(_owner(t, modules) for t in targets):
            if owner is not None and owner != name:
                yield ImportEdge(name, owner, path, node.lineno)


def import_edges(src: Path = SRC, package: str = PACKAGE) -> list[ImportEdge]:
    modules = discover(src, package)
    return [e for name, path in modules.items() for e in imports_of(name, path, modules)]


def graph_of(edges: list[ImportEdge]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for e in edges:
        graph.setdefault(e.importer, set()).add(e.imported)
        graph.setdefault(e.imported, set())
    return graph


# --------------------------------------------------------------------------- cycles


def cyclic_components(graph: Mapping[str, set[str]]) -> list[set[str]]:
    """The strongly connected components that hold a cycle (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[set[str]] = []

    def connect(v: str) -> None:  # Tarjan; the graphs here are small enough to recurse
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component: set[str] = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            components.append(component)

    for v in sorted(graph):
        if v not in index:
            connect(v)

    return [c for c in components if len(c) > 1 or next(iter(c)) in graph.get(next(iter(c)), ())]


def find_cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component that has one, each as the path
    ``[a, b, c, a]`` from the component's first module, sorted for a stable output."""
    return sorted(_cycle_through(min(c), c, graph) for c in cyclic_components(graph))


def _cycle_through(start: str, component: set[str], graph: Mapping[str, set[str]]) -> list[str]:
    """The shortest path start -> ... -> start inside one component (breadth first)."""
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for v in frontier:
            for w in sorted(graph.get(v, ())):
                if w not in component:
                    continue
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [*reversed(path), start]
                if w not in parents:
                    parents[w] = v
                    following.append(w)
        frontier = following
    raise AssertionError(f"{start} is in a component without a cycle through it")


def show(cycle: list[str]) -> str:
    return " -> ".join(cycle)


# --------------------------------------------------------------------------- layers


def rank(module: str) -> int | None:
    """The layer of a package module (its index in LAYERS), None when it has none."""
    if module == PACKAGE:
        return ROOT_RANK
    if module == MAIN_MODULE:
        return len(LAYERS)
    layer = module.split(".")[1]
    return LAYERS.index(layer) if layer in LAYERS else None


def layer_violations(edges: list[ImportEdge]) -> list[str]:
    out = []
    for e in edges:
        mine, theirs = rank(e.importer), rank(e.imported)
        if mine is None or theirs is None:
            continue  # reported by test_every_module_is_in_a_layer
        if theirs > mine or (mine == ROOT_RANK and theirs != ROOT_RANK):
            out.append(
                f"{e.where()}: {e.importer} (layer {_layer_name(mine)}) imports "
                f"{e.imported} (layer {_layer_name(theirs)}, above it)"
            )
    return out


def _layer_name(r: int) -> str:
    if r == ROOT_RANK:
        return "package root"
    return LAYERS[r] if r < len(LAYERS) else "__main__"


# --------------------------------------------------------------------------- tests


def test_the_package_is_found() -> None:
    modules = discover()
    assert f"{PACKAGE}.errors" in modules
    assert f"{PACKAGE}.model.config" in modules
    assert f"{PACKAGE}.cli.tasks" in modules
    # The reader sees real imports: the config loader imports the error hierarchy.
    edges = import_edges()
    assert any(
        e.importer == f"{PACKAGE}.model.config" and e.imported == f"{PACKAGE}.errors" for e in edges
    )


def test_no_import_cycles() -> None:
    edges = import_edges()
    graph = graph_of(edges)
    cycles = find_cycles(graph)
    where: dict[tuple[str, str], str] = {}
    for e in edges:
        where.setdefault((e.importer, e.imported), e.where())
    members = {min(c): c for c in cyclic_components(graph)}
    lines = []
    for c in cycles:
        steps = ", ".join(f"{a} -> {b} at {where[(a, b)]}" for a, b in itertools.pairwise(c))
        lines.append(f"  {show(c)}\n      ({steps})")
        if len(members[c[0]]) > len(c) - 1:
            lines.append(f"      all entangled: {', '.join(sorted(members[c[0]]))}")
    assert not cycles, f"{len(cycles)} import cycle(s):\n" + "\n".join(lines)


def test_every_module_is_in_a_layer() -> None:
    stray = [m for m in discover() if rank(m) is None]
    assert not stray, (
        f"modules outside the layers {', '.join(LAYERS)}: {', '.join(stray)} "
        "(move them into a layer, or add a layer to LAYERS in tests/unit/test_imports.py)"
    )


def test_layers_import_only_downwards() -> None:
    violations = layer_violations(import_edges())
    assert not violations, (
        f"{len(violations)} import(s) of a higher layer (order, lowest first: "
        f"{' < '.join(LAYERS)}):\n  " + "\n  ".join(violations)
    )


# --- the machinery itself, on graphs small enough to check by eye


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        pytest.param({"a": {"b"}, "b": {"c"}, "c": set()}, [], id="chain"),
        pytest.param({"a": {"b", "c"}, "b": {"d"}, "c": {"d"}, "d": set()}, [], id="diamond"),
        pytest.param({"a": {"a"}}, [["a", "a"]], id="self-import"),
        pytest.param({"a": {"b"}, "b": {"a"}}, [["a", "b", "a"]], id="pair"),
        pytest.param(
            {"a": {"b"}, "b": {"c"}, "c": {"a"}, "x": {"a"}},
            [["a", "b", "c", "a"]],
            id="triangle-with-a-tail",
        ),
        pytest.param(
            {"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"c"}, "b2": {"c"}},
            [["a", "b", "a"], ["c", "d", "c"]],
            id="two-separate-cycles",
        ),
        pytest.param(
            # a -> b -> c -> d -> a and a shortcut c -> a: the shortest cycle is shown.
            {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": {"a"}},
            [["a", "b", "c", "a"]],
            id="shortest-cycle-shown",
        ),
    ],
)
def test_find_cycles(graph: dict[str, set[str]], expected: list[list[str]]) -> None:
    assert find_cycles(graph) == expected


def test_show_names_the_cycle() -> None:
    assert show(["a", "b", "c", "a"]) == "a -> b -> c -> a"


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")


def test_every_form_of_import_is_read(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/low/__init__.py": "from . import leaf\n",
            "pkg/low/leaf.py": "X = 1\n",
            "pkg/low/other.py": "from .leaf import X\n",
            "pkg/high/__init__.py": "",
            "pkg/high/user.py": (
                "from __future__ import annotations\n"
                "from typing import TYPE_CHECKING\n"
                "import pkg.low.other\n"
                "from pkg.low import leaf\n"
                "from ..low.leaf import X\n"
                "if TYPE_CHECKING:\n"
                "    from pkg import errors_missing\n"
                "def late() -> None:\n"
                "    from pkg.high import user as me  # itself: not an edge\n"
                "    import importlib\n"
                "    importlib.import_module('pkg.low')\n"
            ),
        },
    )
    edges = import_edges(tmp_path, "pkg")
    got = {(e.importer, e.imported, e.line) for e in edges}
    assert got == {
        ("pkg.low", "pkg.low.leaf", 1),
        ("pkg.low.other", "pkg.low.leaf", 1),
        ("pkg.high.user", "pkg.low.other", 3),
        ("pkg.high.user", "pkg.low.leaf", 4),
        ("pkg.high.user", "pkg.low.leaf", 5),
        # `from pkg import errors_missing` names no module: the package itself.
        ("pkg.high.user", "pkg", 7),
        ("pkg.high.user", "pkg.low", 11),
    }


def test_a_function_level_import_closes_a_cycle(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "from pkg import b\n",
            "pkg/b.py": "def f() -> None:\n    from pkg.a import g\n",
        },
    )
    assert find_cycles(graph_of(import_edges(tmp_path, "pkg"))) == [["pkg.a", "pkg.b", "pkg.a"]]


def test_an_upward_import_is_named_with_file_and_line() -> None:
    path = SRC / PACKAGE / "model" / "config.py"
    edges = [
        ImportEdge(f"{PACKAGE}.model.config", f"{PACKAGE}.publish.push", path, 42),
        ImportEdge(f"{PACKAGE}.cli.tasks", f"{PACKAGE}.model.config", path, 7),
        ImportEdge(f"{PACKAGE}.images.helper", f"{PACKAGE}.images.standin", path, 9),
        ImportEdge(PACKAGE, f"{PACKAGE}.errors", path, 1),
    ]
    assert layer_violations(edges) == [
        "src/xarch/model/config.py:42: xarch.model.config (layer model) imports "
        "xarch.publish.push (layer publish, above it)",
        "src/xarch/model/config.py:1: xarch (layer package root) imports "
        "xarch.errors (layer errors, above it)",
    ]
