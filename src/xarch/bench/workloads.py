"""The reference workloads and the two plans (quick, full).

Every input is generated here, deterministically: the same plan always writes the
same bytes, so runs on different days and machines compile and execute the same
thing. Each workload runs the same way on every side (in the helper image under
emulation, in an accelerated image with its native compiler leaves, and on the
host), only the paths differ (:class:`Side`).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

# Re-exported: the bench's C file is part of this module's interface.
from xarch.model.csource import generate_c_source as generate_c_source

C_SOURCE = "generated.c"
CXX_SOURCE = "generated.cpp"
LINK_MAIN = "link_main.c"  # the program's main(), linked with the generated C file
PY_LOOP = "dictloop.py"
EXT_PROJECT = "ext"
EXT_HEAVY = "heavy.c"  # the generated C file, compiled into the pip-wheel extension
#: No index, no cache, no self-update check: pip must not touch the network.
PIP_ENV = {
    "PIP_NO_INDEX": "1",
    "PIP_NO_CACHE_DIR": "1",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
}

GCC = "gcc"
GXX = "g++"
LINK = "link"
PYTHON = "python"
PIP_WHEEL = "pip-wheel"
WORKLOADS = (GCC, GXX, LINK, PYTHON, PIP_WHEEL)
#: The workloads that run the image's compiler toolchain, so that native leaves can
#: change their time: an accelerated image runs these a third way. The Python loop
#: starts no compiler; with native leaves it would time the same thing again.
COMPILER_WORKLOADS = (GCC, GXX, LINK, PIP_WHEEL)

#: What selects the leaves in an accelerated image (docs/native-compilers.md):
#: unset or "1" = the native x86_64 leaves, "0" = the image's own, emulated ones.
NATIVE_TOOLS_ENV = "XARCH_NATIVE_TOOLS"


@dataclass(frozen=True, kw_only=True)
class Plan:
    """What one `invoke bench` run measures, and how often."""

    name: str
    reps: int  # emulated (default setting), accelerated and native repetitions per workload
    config_reps: int  # repetitions per alternative QEMU setting
    workloads: tuple[str, ...]
    config_workloads: tuple[str, ...]  # the workloads alternative settings run
    c_functions: int
    cxx_classes: int  # class templates in the generated C++ file
    python_iterations: int
    #: QEMU_CPU models to try per architecture (besides the image's default).
    cpu_models: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    alt_emulators: bool = False  # also QEMU from bookworm-backports
    alt_cpu_models: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    toolkit: bool = True
    toolkit_reps: int = 3
    sizes: bool = True
    timeout: int = 900  # seconds per workload run
    #: the wheel row: cibuildwheel of the sample C extension per image vs natively
    #: (bench/wheels.py); minutes per image under emulation, so the full plan only
    wheels: bool = False

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "reps": self.reps,
            "config_reps": self.config_reps,
            "workloads": {w: title(w, self) for w in self.workloads},
            "config_workloads": list(self.config_workloads),
            "accelerated_workloads": [w for w in self.workloads if w in COMPILER_WORKLOADS],
            "cpu_models": {k: list(v) for k, v in self.cpu_models.items()},
            "alt_emulators": self.alt_emulators,
            "alt_cpu_models": {k: list(v) for k, v in self.alt_cpu_models.items()},
            "toolkit_reps": self.toolkit_reps if self.toolkit else 0,
            "timeout": self.timeout,
            "wheels": self.wheels,
        }


QUICK = Plan(
    name="quick",
    reps=3,
    config_reps=3,
    # The link costs well under a second even emulated; the C++ file is kept small
    # (two class templates: mostly the parsing of <map>, <string>, <vector>).
    workloads=WORKLOADS,
    config_workloads=(GCC, PYTHON),
    c_functions=100,
    cxx_classes=2,
    python_iterations=300_000,
    cpu_models={"aarch64": ("cortex-a72",), "ppc64le": ("power10",)},
    alt_emulators=False,
    toolkit_reps=2,
    timeout=300,
)

FULL = Plan(
    name="full",
    reps=5,
    config_reps=3,
    workloads=WORKLOADS,
    config_workloads=(GCC, PYTHON),
    c_functions=300,
    cxx_classes=12,
    python_iterations=1_000_000,
    cpu_models={
        # max is QEMU's default; pauth-impdef=on keeps max's features but replaces the
        # architected pointer-authentication hash (costly to emulate) by a cheap one.
        "aarch64": ("max", "max,pauth-impdef=on", "cortex-a72", "neoverse-n1", "a64fx"),
        "ppc64le": ("power9", "power10"),
    },
    alt_emulators=True,
    alt_cpu_models={"aarch64": ("cortex-a72", "neoverse-n1"), "ppc64le": ("power9",)},
    toolkit_reps=3,
    timeout=900,
    wheels=True,
)


def title(workload: str, plan: Plan) -> str:
    if workload == GCC:
        return f"gcc -O2 -c, {plan.c_functions} generated functions"
    if workload == GXX:
        return (
            f"g++ -O2 -c, {plan.cxx_classes} generated class templates (<map>, <string>, <vector>)"
        )
    if workload == LINK:
        return (
            f"gcc link of the -O2 objects of the {plan.c_functions}-function C file and a main "
            "into a program (objects compiled before the timing)"
        )
    if workload == PYTHON:
        return f"pure-Python dict loop, {plan.python_iterations:,} iterations"
    if workload == PIP_WHEEL:
        return "pip wheel of a one-function C extension (no index, no network)"
    raise ValueError(f"unknown workload {workload!r}")


# ------------------------------------------------------------------------------ inputs


PYTHON_LOOP_SOURCE = '''\
"""xarch bench: a dict-heavy pure-Python loop. Prints a checksum, the same everywhere."""
import sys

n = int(sys.argv[1])
words = [f"k{i}" for i in range(997)]
table = {}
total = 0
for i in range(n):
    key = words[i % 997]
    table[key] = table.get(key, 0) + i
    if i % 3 == 0:
        table[(i, key)] = i
    if len(table) > 5000:
        total = (total + sum(table.values())) % 1000003
        table.clear()
print(total, len(table))
'''

EXT_FILES = {
    "pyproject.toml": (
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
    ),
    "setup.py": (
        "from setuptools import Extension, setup\n\n"
        "setup(\n"
        '    name="xbench-ext",\n'
        '    version="1.0",\n'
        '    ext_modules=[Extension("xbench_ext", ["xbench_ext.c", "heavy.c"])],\n'
        ")\n"
    ),
    "xbench_ext.c": (
        "#define PY_SSIZE_T_CLEAN\n"
        "#include <Python.h>\n\n"
        "static PyObject *add(PyObject *self, PyObject *args) {\n"
        "    long a, b;\n"
        '    if (!PyArg_ParseTuple(args, "ll", &a, &b))\n'
        "        return NULL;\n"
        "    return PyLong_FromLong(a + b);\n"
        "}\n\n"
        "static PyMethodDef methods[] = {\n"
        '    {"add", add, METH_VARARGS, "a + b"},\n'
        "    {NULL, NULL, 0, NULL},\n"
        "};\n\n"
        "static struct PyModuleDef module = {\n"
        '    PyModuleDef_HEAD_INIT, "xbench_ext", NULL, -1, methods,\n'
        "};\n\n"
        "PyMODINIT_FUNC PyInit_xbench_ext(void) { return PyModule_Create(&module); }\n"
    ),
}


def generate_cxx_source(classes: int) -> str:
    """A C++ file of ``classes`` class templates for ``g++ -O2`` to chew on.

    Each template (a ``Shape`` with a virtual ``area``) keeps a ``std::vector``, a
    ``std::map<std::string, std::size_t>`` index and a name, and is instantiated for
    ``long`` and ``double`` by one function, every fourth calling its predecessor; a
    function template folds the vectors. So header parsing (``<map>``, ``<string>``,
    ``<vector>``), template instantiation and inlining all weigh. C++11, so every
    stand-in's g++ (10 and 12) takes it as it is. No randomness: the text depends on
    ``classes`` only.
    """
    if classes < 1:
        raise ValueError("classes must be at least 1")
    out = [
        f"// Generated by xarch bench/workloads.py: {classes} class templates.",
        "#include <cstddef>",
        "#include <map>",
        "#include <string>",
        "#include <utility>",
        "#include <vector>",
        "",
        "namespace xbench {",
        "",
        "class Shape {",
        "public:",
        "    virtual ~Shape() {}",
        "    virtual long area() const = 0;",
        "};",
        "",
        "template <typename T, int Scale>",
        "T scaled(const std::vector<T>& xs) {",
        "    T total = T();",
        "    for (const T& x : xs)",
        "        total = total * Scale + x;",
        "    return total;",
        "}",
        "",
    ]
    for i in range(classes):
        call = f"\n    total += run{i - 1}(x / 2);" if i % 4 == 1 else ""
        out.append(
            f"template <typename T>\n"
            f"class Table{i} : public Shape {{\n"
            f"public:\n"
            f"    explicit Table{i}(std::string name) : name_(std::move(name)) {{}}\n"
            f"    void add(const T& value) {{\n"
            f"        items_.push_back(value);\n"
            f"        index_[name_ + std::to_string(items_.size())] = items_.size();\n"
            f"    }}\n"
            f"    std::size_t find(const std::string& key) const {{\n"
            f"        typename std::map<std::string, std::size_t>::const_iterator it =\n"
            f"            index_.find(key);\n"
            f"        return it == index_.end() ? 0 : it->second;\n"
            f"    }}\n"
            f"    T fold() const {{ return scaled<T, {i % 7 + 2}>(items_); }}\n"
            f"    long area() const override {{\n"
            f"        return static_cast<long>(items_.size()) * {i % 11 + 1};\n"
            f"    }}\n"
            f"\n"
            f"private:\n"
            f"    std::string name_;\n"
            f"    std::vector<T> items_;\n"
            f"    std::map<std::string, std::size_t> index_;\n"
            f"}};\n"
            f"\n"
            f"long run{i}(long x) {{\n"
            f'    Table{i}<long> ints("i{i}");\n'
            f'    Table{i}<double> reals("r{i}");\n'
            f"    for (long k = 0; k < {i % 5 + 2}; ++k) {{\n"
            f"        ints.add(x + k * {i % 13 + 1});\n"
            f"        reals.add(static_cast<double>(x) / {i % 3 + 2}.0 + static_cast<double>(k));\n"
            f"    }}\n"
            f"    const Shape& shape = ints;\n"
            f"    long total = ints.fold() + static_cast<long>(reals.fold()) + shape.area() +\n"
            f'                 static_cast<long>(ints.find("i{i}1"));{call}\n'
            f"    return total;\n"
            f"}}\n"
        )
    out += [
        "}  // namespace xbench",
        "",
        'extern "C" long xbench_cxx_entry(long x) {',
        f"    return xbench::run{classes - 1}(x);",
        "}",
    ]
    return "\n".join(out) + "\n"


def generate_link_main(functions: int) -> str:
    """The ``main`` the link workload links with the generated C file: it calls the
    last generated function, so the program needs that object."""
    if functions < 1:
        raise ValueError("functions must be at least 1")
    last = f"f{functions - 1}"
    return (
        "/* Generated by xarch bench/workloads.py: the link workload's main. */\n"
        "struct pair { long a; long b; };\n"
        f"long {last}(long x, struct pair *p);\n"
        "\n"
        "int main(int argc, char **argv) {\n"
        "    struct pair p = {argc, 7};\n"
        "    (void)argv;\n"
        f"    return (int)({last}(argc, &p) & 1);\n"
        "}\n"
    )


def write_inputs(directory: Path, plan: Plan) -> None:
    """Write every input of the plan's workloads into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / C_SOURCE).write_text(generate_c_source(plan.c_functions))
    (directory / CXX_SOURCE).write_text(generate_cxx_source(plan.cxx_classes))
    (directory / LINK_MAIN).write_text(generate_link_main(plan.c_functions))
    (directory / PY_LOOP).write_text(PYTHON_LOOP_SOURCE)
    ext = directory / EXT_PROJECT
    ext.mkdir(exist_ok=True)
    for name, text in EXT_FILES.items():
        (ext / name).write_text(text)
    # Compile-heavy: the extension carries the plan's generated C file too, so the wheel
    # is mostly compiling, as the wheels the native leaves are for.
    (ext / EXT_HEAVY).write_text(generate_c_source(plan.c_functions))


# --------------------------------------------------------------------------- commands


@dataclass(frozen=True, kw_only=True)
class Side:
    """Where a workload runs, as that side sees its paths. "accelerated": in the
    image under emulation, with its native compiler leaves (XARCH_NATIVE_TOOLS=1)."""

    kind: Literal["emulated", "accelerated", "native"]
    inputs: str  # the directory write_inputs() filled
    scratch: str  # a writable directory for outputs
    python: str  # the interpreter (with pip, setuptools, wheel and headers)


@dataclass(frozen=True, kw_only=True)
class Invocation:
    argv: tuple[str, ...]  # measured
    workdir: str
    env: Mapping[str, str]
    prepare: tuple[str, ...] = ()  # run first, not measured
    #: compare the first line of stdout across sides (deterministic output)
    same_output: bool = False


def invocation(workload: str, side: Side, run_id: str, plan: Plan) -> Invocation:
    """The command of one run of ``workload``; ``run_id`` keeps outputs apart."""
    if workload == GCC:
        return Invocation(
            argv=(
                "gcc",
                "-O2",
                "-c",
                f"{side.inputs}/{C_SOURCE}",
                "-o",
                f"{side.scratch}/gen-{run_id}.o",
            ),
            workdir=side.scratch,
            env={},
        )
    if workload == GXX:
        return Invocation(
            argv=(
                "g++",
                "-O2",
                "-c",
                f"{side.inputs}/{CXX_SOURCE}",
                "-o",
                f"{side.scratch}/gen-{run_id}.cxx.o",
            ),
            workdir=side.scratch,
            env={},
        )
    if workload == LINK:
        objects = link_objects(side)
        return Invocation(
            argv=(
                "gcc",
                "-o",
                f"{side.scratch}/linked-{run_id}",
                f"{objects}/generated.o",
                f"{objects}/main.o",
            ),
            workdir=side.scratch,
            env={},
            prepare=link_prepare(side),
        )
    if workload == PYTHON:
        return Invocation(
            argv=(side.python, f"{side.inputs}/{PY_LOOP}", str(plan.python_iterations)),
            workdir=side.scratch,
            env={"PYTHONDONTWRITEBYTECODE": "1"},
            same_output=True,
        )
    if workload == PIP_WHEEL:
        project = f"{side.scratch}/ext-{run_id}"
        return Invocation(
            argv=(
                side.python,
                "-m",
                "pip",
                "wheel",
                "--no-deps",
                "--no-build-isolation",
                "-w",
                f"{project}/dist",
                project,
            ),
            workdir=project,
            env=PIP_ENV,
            prepare=("cp", "-r", f"{side.inputs}/{EXT_PROJECT}", project),
        )
    raise ValueError(f"unknown workload {workload!r}")


def link_objects(side: Side) -> str:
    """Where the link workload's objects are: one directory per side kind, so the
    emulated and the accelerated runs in one container link objects each compiled
    its own way."""
    return f"{side.scratch}/link-objects-{side.kind}"


def link_prepare(side: Side) -> tuple[str, ...]:
    """The link workload's untimed preparation: ``gcc -O2 -c`` of the generated C
    file and of the main, once per side (``main.o`` appears last, by a rename, and
    marks a finished preparation; later runs find it and compile nothing)."""
    d = shlex.quote(link_objects(side))
    src = shlex.quote(f"{side.inputs}/{C_SOURCE}")
    main = shlex.quote(f"{side.inputs}/{LINK_MAIN}")
    script = (
        f"set -e; [ -f {d}/main.o ] && exit 0; mkdir -p {d}; "
        f"gcc -O2 -c {src} -o {d}/generated.o; "
        f"gcc -O2 -c {main} -o {d}/main.o.tmp; mv {d}/main.o.tmp {d}/main.o"
    )
    return ("sh", "-c", script)
