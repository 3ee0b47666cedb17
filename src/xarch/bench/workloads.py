"""The reference workloads and the two plans (quick, full).

Every input is generated here, deterministically: the same plan always writes the
same bytes, so runs on different days and machines compile and execute the same
thing. Each workload runs the same way on both sides (in the helper image under
emulation, and on the host), only the paths differ (:class:`Side`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from xarch.model.csource import generate_c_source

C_SOURCE = "generated.c"
PY_LOOP = "dictloop.py"
EXT_PROJECT = "ext"
#: No index, no cache, no self-update check: pip must not touch the network.
PIP_ENV = {
    "PIP_NO_INDEX": "1",
    "PIP_NO_CACHE_DIR": "1",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
}

GCC = "gcc"
PYTHON = "python"
PIP_WHEEL = "pip-wheel"
WORKLOADS = (GCC, PYTHON, PIP_WHEEL)


@dataclass(frozen=True, kw_only=True)
class Plan:
    """What one `invoke bench` run measures, and how often."""

    name: str
    reps: int  # emulated (default setting) and native repetitions per workload
    config_reps: int  # repetitions per alternative QEMU setting
    workloads: tuple[str, ...]
    config_workloads: tuple[str, ...]  # the workloads alternative settings run
    c_functions: int
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
    workloads=WORKLOADS,
    config_workloads=(GCC, PYTHON),
    c_functions=100,
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
        '    ext_modules=[Extension("xbench_ext", ["xbench_ext.c"])],\n'
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


def write_inputs(directory: Path, plan: Plan) -> None:
    """Write every input of the plan's workloads into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / C_SOURCE).write_text(generate_c_source(plan.c_functions))
    (directory / PY_LOOP).write_text(PYTHON_LOOP_SOURCE)
    ext = directory / EXT_PROJECT
    ext.mkdir(exist_ok=True)
    for name, text in EXT_FILES.items():
        (ext / name).write_text(text)


# --------------------------------------------------------------------------- commands


@dataclass(frozen=True, kw_only=True)
class Side:
    """Where a workload runs, as that side sees its paths."""

    kind: Literal["emulated", "native"]
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
