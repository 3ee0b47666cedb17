"""Accelerated helper images (issue 10): the native leaves are installed, proven and
used, and building a C and a C++ extension with them gives what the emulated leaves
give. Skipped for an image without org.xarch.native.* labels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import docker
import pytest

from xarch.images import native_probe
from xarch.images.native import LABEL_PREFIX, NATIVE_PREFIX
from xarch.images.resources import resource_text
from xarch.images.suite.plugin import ImageUnderTest
from xarch.oci.engine import Engine

WORK = "/tmp/xarch-native-test"

CXX_EXTENSION = r"""
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <typeinfo>

template <typename T> static T twice(T x) { return x + x; }

static PyObject *describe(PyObject *, PyObject *args) {
    long n;
    if (!PyArg_ParseTuple(args, "l", &n))
        return NULL;
    std::map<long, std::string> names;
    std::ostringstream out;
    try {
        if (n < 0)
            throw std::invalid_argument("negative");
        for (long i = 0; i < n; ++i)
            names[twice(i)] = typeid(i).name();
        out << names.size() << " " << names.rbegin()->first;
    } catch (const std::exception &e) {
        out << "caught " << e.what();
    }
    return PyUnicode_FromString(out.str().c_str());
}

static PyMethodDef methods[] = {{"describe", describe, METH_VARARGS, ""}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "xarch_cxx", NULL, -1, methods};
PyMODINIT_FUNC PyInit_xarch_cxx(void) { return PyModule_Create(&module); }
"""


@pytest.fixture
def accelerated(image: ImageUnderTest) -> dict[str, str]:
    labels = image.labels
    if f"{LABEL_PREFIX}.toolchain" not in labels:
        pytest.skip(f"{image.ref} carries no native leaves")
    return labels


def _python(guest: Any) -> str:
    """The image's CPython, as probe.sh finds it (a stand-in may carry only python3.N)."""
    found = guest.run(
        "command -v python3 || ls /usr/bin/python3.[0-9]* /opt/python/cp3*/bin/python "
        "2>/dev/null | head -n 1"
    ).stdout.strip()
    if not found:
        pytest.fail("the image has no CPython (python3, /usr/bin/python3.N, /opt/python)")
    return str(found)


def test_the_probe_passed_at_build_time(accelerated: dict[str, str]) -> None:
    assert accelerated[f"{LABEL_PREFIX}.probe"].startswith("passed")


def test_the_probe_passes_again_on_this_host(
    image: ImageUnderTest,
    accelerated: dict[str, str],
    docker_client: docker.DockerClient,
    tmp_path: Path,
) -> None:
    """The build's proof, repeated where the image runs now: the whole corpus both ways.
    Once per test-images run: under the F (or host) handler, not again under no-F (the
    same compilers; only how the kernel finds QEMU differs)."""
    if image.binfmt_mode == "no-F":
        pytest.skip("the probe ran in this test-images run's F pass")
    result = native_probe.run_probe(
        Engine(docker_client), image.ref, image.target.arch.platform, tmp_path / "probe"
    )
    native_probe.require_passed(result, image.ref)  # names the first differing file and line
    assert result.passed and result.compared > 0


def test_each_leaf_is_hooked_and_its_original_kept(
    guest: Any, image: ImageUnderTest, accelerated: dict[str, str]
) -> None:
    triplet = image.target.arch.gnu_triplet
    # Where the image's driver runs them (/usr/lib/gcc/... to gcc 13, libexec in gcc 14).
    paths = {
        "cc1": guest.check_output("gcc -print-prog-name=cc1"),
        "cc1plus": guest.check_output("gcc -print-prog-name=cc1plus"),
        "as": f"/usr/bin/{triplet}-as",
        "ld": f"/usr/bin/{triplet}-ld.bfd",
    }
    for leaf in accelerated[f"{LABEL_PREFIX}.leaves"].split(","):
        assert guest.file(paths[leaf] + ".xarch-emulated").exists, leaf
        assert guest.file(f"{NATIVE_PREFIX}/hooks{paths[leaf]}.conf").exists, leaf


def test_the_drivers_report_the_same_search_list_both_ways(
    guest: Any, accelerated: dict[str, str]
) -> None:
    for driver, lang in (("gcc", "c"), ("g++", "c++")):
        lists = [
            guest.run(f"XARCH_NATIVE_TOOLS={mode} {driver} -v -E -x {lang} - </dev/null").stderr
            for mode in (0, 1)
        ]
        cut = [t[t.index("#include <...>") : t.index("End of search list.")] for t in lists]
        assert cut[0] == cut[1], driver


def test_a_bad_switch_value_is_a_clear_compile_error(
    guest: Any, accelerated: dict[str, str]
) -> None:
    r = guest.run(f"mkdir -p {WORK} && echo 'int x;' > {WORK}/x.c && "
                  f"XARCH_NATIVE_TOOLS=yes gcc -c {WORK}/x.c -o {WORK}/x.o")  # fmt: skip
    assert r.rc != 0
    assert "XARCH_NATIVE_TOOLS=yes is not an allowed value" in r.stderr


@pytest.mark.parametrize(
    ("name", "driver", "source"),
    [
        ("xarch_probe", "gcc", "c"),
        ("xarch_cxx", "g++", "cpp"),
    ],
)
def test_an_extension_built_with_native_leaves_matches_the_emulated_build(
    guest: Any, accelerated: dict[str, str], name: str, driver: str, source: str
) -> None:
    py = _python(guest)
    text = resource_text("native/corpus/pyext_module.c") if source == "c" else CXX_EXTENSION
    guest.check_output(f"mkdir -p {WORK}")
    guest.run_expect([0], f"cat > {WORK}/{name}.{source} <<'XARCH_EOF'\n{text}\nXARCH_EOF")
    inc = guest.check_output(
        f"{py} -c 'import sysconfig; print(sysconfig.get_paths()[\"include\"])'"
    )
    suffix = guest.check_output(
        f"{py} -c 'import sysconfig; print(sysconfig.get_config_var(\"EXT_SUFFIX\"))'"
    )
    outputs = []
    for mode in (0, 1):
        d = f"{WORK}/mode{mode}"
        so = f"{d}/{name}{suffix}"
        guest.run_expect(
            [0],
            f"mkdir -p {d} && cd {WORK} && XARCH_NATIVE_TOOLS={mode} {driver} -O2 -fPIC -shared "
            f"-Wl,--build-id=none -I{inc} {name}.{source} -o {so} && "
            f"objcopy --remove-section .comment {so} {so}.nc",
        )
        call = "fold([1, 2, 3])" if name == "xarch_probe" else "describe(40)"
        outputs.append(
            guest.check_output(f"cd {d} && {py} -c 'import {name}; print({name}.{call})'")
        )
    assert outputs[0] == outputs[1]
    same = guest.run(f"cmp {WORK}/mode0/{name}{suffix}.nc {WORK}/mode1/{name}{suffix}.nc")
    assert same.rc == 0, same.stdout + same.stderr
