"""scripts/wheel-timeline.py: one build's time split by container command and by
pypa/build's markers (docs/performance.md, "The floor")."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "wheel-timeline.py"


def timeline() -> ModuleType:
    spec = importlib.util.spec_from_file_location("wheel_timeline", SCRIPT)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


LOG = """\
1.00 Starting container image r/x@sha256:00...
1.10     + /bin/true
1.60     + mkdir -p /project
2.00     + python -m build /project --wheel --outdir=/tmp/cibuildwheel/built_wheel --installer=uv
3.00 * Creating isolated environment: venv+uv...
3.10 * Installing packages in isolated environment:
4.50 * Getting build dependencies for wheel...
7.50 * Building wheel...
9.00 aarch64-linux-gnu-gcc -pthread -c bitarray/_bitarray.c -o x.o
12.00 installing to build/bdist.linux-aarch64/wheel
13.00 Successfully built bitarray-3.12.3-cp39-cp39-linux_aarch64.whl
13.10     + uv venv /tmp/tmp.AbC123/venv --python /opt/python/cp39-cp39/bin/python
14.00     + uv pip install /tmp/cibuildwheel/repaired_wheel/bitarray.whl
14.50  + bitarray==3.12.3 (from file:///tmp/cibuildwheel/repaired_wheel/bitarray.whl)
15.00     + sh -c 'python -c "import bitarray; bitarray.test()"'
21.00 Ran 723 tests in 4.500s
22.00 ✓ cp39-manylinux_aarch64 finished in 21 seconds
"""


def test_a_build_is_split_by_command_and_by_pypa_builds_markers(tmp_path: Path) -> None:
    saved = tmp_path / "t.log"
    saved.write_text(LOG)
    mod = timeline()
    got = {k: round(v, 2) for k, v in mod.breakdown(mod.load(saved)).items()}
    assert got["container: /bin/true"] == 0.5
    assert got["pypa/build: its own start"] == 1.0
    assert got["build environment: install (uv or pip)"] == 1.4
    assert got["PEP 517 hook 1: backend imports, requirements"] == 3.0
    assert got["compile and link"] == 3.0
    assert got["install and pack the wheel"] == 1.0
    # mktemp's name is folded, uv's own " + pkg" line is not a command
    assert (
        got["container: uv venv /tmp/tmp.*/venv --python /opt/python/cp39-cp39/bin/python"] == 0.9
    )
    assert got["container: uv pip install /tmp/cibuildwheel/repaired_wheel/bitarray.whl"] == 1.0
    assert not any("bitarray==3.12.3" in k for k in got)
    assert got["  of which the tests themselves (as their runner says)"] == 4.5
    assert got["TOTAL: container start to 'finished'"] == 21.0
