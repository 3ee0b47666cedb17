#!/usr/bin/env python3
"""Where one cibuildwheel build's time goes, command by command.

Pipe `invoke wheels` (one target, one identifier) through it:

    CIBW_BUILD='cp39-manylinux*' .venv/bin/invoke wheels --config config/offline-native.yaml \\
        --target standin-manylinux2014_aarch64 --project DIR 2>&1 \\
        | scripts/wheel-timeline.py --save build/timeline-1.log

It echoes every line with the seconds since it started, and at the end prints each
command cibuildwheel ran in the container (`    + ...` lines) with the seconds until the
next one, and the pypa/build markers of a setuptools build split out (pypa/build's
start, the build environment's install, each PEP 517 hook, the compiler, the packing).
`--from FILE [FILE ...]` reads logs saved with `--save` instead, and prints the medians
over them (docs/performance.md, "The floor").
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from collections.abc import Iterable
from pathlib import Path

Rows = list[tuple[float, str]]

_CMD = re.compile(r"^    \+ (?P<cmd>.*)$")  # cibuildwheel's, not uv's " + pkg==1.0"
_TMP = re.compile(r"/tmp/tmp\.\w+")  # mktemp's names, one per run
#: what a test runner says of its own time: unittest, pytest
_TESTS = re.compile(r"^Ran \d+ tests? in (?P<s>[0-9.]+)s$|^=* ?\d+ passed.* in (?P<p>[0-9.]+)s")
_STAMP = re.compile(r"^\s*(?P<t>\d+\.\d+) (?P<line>.*)$")
#: pypa/build's and setuptools' own lines, in the order they come, with what the time
#: from each to the next is spent on.
_MARKERS = (
    (r"\+ python -m build ", "pypa/build: its own start"),
    (r"^\* Creating isolated environment", "pypa/build: the isolated environment"),
    (r"^\* Installing packages in isolated", "build environment: install (uv or pip)"),
    (r"^\* Getting build dependencies", "PEP 517 hook 1: backend imports, requirements"),
    (r"^\* Building wheel\.\.\.", "PEP 517 hook 2: imports, egg_info, build_py"),
    (r"-linux-gnu-(gcc|g\+\+) ", "compile and link"),
    (r"^installing to build/bdist", "install and pack the wheel"),
    (r"^Successfully built ", ""),
)


def stamp(stream: Iterable[str], save: Path | None) -> Rows:
    rows: Rows = []
    t0 = time.monotonic()
    out = save.open("w", encoding="utf-8") if save else None
    for line in stream:
        t = time.monotonic() - t0
        text = line.rstrip("\n")
        rows.append((t, text))
        sys.stdout.write(f"{t:8.2f} {text}\n")
        sys.stdout.flush()
        if out:
            out.write(f"{t:.2f} {text}\n")
    if out:
        out.close()
    return rows


def load(path: Path) -> Rows:
    rows: Rows = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        m = _STAMP.match(raw)
        if m:
            rows.append((float(m.group("t")), m.group("line")))
    return rows


def breakdown(rows: Rows) -> dict[str, float]:
    """label -> seconds: each container command until the next, with pypa/build's run
    split at its markers; the commands' labels keep their first 80 characters."""
    out: dict[str, float] = {}
    cmds = [(t, m.group("cmd")) for t, s in rows if (m := _CMD.match(s))]
    end = next((t for t, s in rows if " finished in " in s), rows[-1][0] if rows else 0.0)
    marks: list[tuple[float, str]] = []
    for pattern, label in _MARKERS:
        hit = next((t for t, s in rows if re.search(pattern, s)), None)
        if hit is not None:
            marks.append((hit, label))
    build_span = None
    for i, (t, cmd) in enumerate(cmds):
        nxt = cmds[i + 1][0] if i + 1 < len(cmds) else end
        if cmd.startswith("python -m build ") and marks:
            build_span = (t, nxt)
            continue
        label = "container: " + _TMP.sub("/tmp/tmp.*", cmd)[:80]
        out[label] = out.get(label, 0.0) + (nxt - t)
    for _, s in rows:
        m = _TESTS.search(s.strip())
        if m:
            out["  of which the tests themselves (as their runner says)"] = float(
                m.group("s") or m.group("p")
            )
    if build_span:
        inside = [m for m in marks if build_span[0] <= m[0] <= build_span[1]]
        for j, (t, label) in enumerate(inside):
            nxt = inside[j + 1][0] if j + 1 < len(inside) else build_span[1]
            name = label or "pypa/build: after the wheel (its exit)"
            out[name] = out.get(name, 0.0) + (nxt - t)
    first_cmd = cmds[0][0] if cmds else end
    start = next((t for t, s in rows if s.startswith("Starting container")), first_cmd)
    out["before the first command (docker create, start)"] = first_cmd - start
    out["TOTAL: container start to 'finished'"] = end - start
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--save", type=Path, help="also write the stamped lines here")
    ap.add_argument("--from", dest="logs", type=Path, nargs="+", help="saved logs instead")
    args = ap.parse_args()
    runs = (
        [breakdown(load(p)) for p in args.logs]
        if args.logs
        else [breakdown(stamp(sys.stdin, args.save))]
    )
    labels: list[str] = []
    for r in runs:
        labels += [k for k in r if k not in labels]
    print(f"\nseconds (median of {len(runs)} run(s) [min-max]):")
    for k in sorted(labels, key=lambda k: -statistics.median(r.get(k, 0.0) for r in runs)):
        vals = [r.get(k, 0.0) for r in runs]
        print(f"{statistics.median(vals):7.2f} [{min(vals):6.2f}-{max(vals):6.2f}]  {k}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
