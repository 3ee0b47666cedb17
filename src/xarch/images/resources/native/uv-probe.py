# xarch uv probe: runs inside a helper image whose uv was replaced by the native x86_64
# one, with the image's own CPython (under emulation). It writes what it saw as JSON to
# OUT_DIR/uv-probe.json; the host compares (xarch.images.native_uv), so this script
# decides nothing itself.
#
#   python uv-probe.py PROBE_DIR OUT_DIR
#
# PROBE_DIR holds wheels/ (generated on the host: each probe package has a 1.0 wheel
# for any platform and a 2.0 wheel with one tag under test, so which version uv installs
# says whether it takes that tag) and ext/ (a small C extension project).
from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import sysconfig
import time
import zipfile
from typing import Any

probe_dir, out_dir = sys.argv[1], sys.argv[2]
wheels = os.path.join(probe_dir, "wheels")
names = sorted({f.split("-")[0] for f in os.listdir(wheels) if f.endswith(".whl")})
result: dict[str, Any] = {"python": sys.executable, "steps": {}}


def log(msg: str) -> None:
    print("xarch uv probe: " + msg, flush=True)


try:
    from packaging import tags
except ImportError:  # an interpreter without packaging: pip's vendored copy
    from pip._vendor.packaging import tags  # type: ignore[no-redef]

result["view"] = {
    "platform": sysconfig.get_platform(),
    "machine": platform.machine(),
    "libc": list(platform.libc_ver()),
    "tags": [str(t) for t in tags.sys_tags()],
}


def uv(mode: str, *args: str, cwd: str | None = None) -> tuple[str, float]:
    env = dict(os.environ)
    env["XARCH_NATIVE_TOOLS"] = mode  # 1: the native uv, 0: the image's own (emulated)
    env["UV_CACHE_DIR"] = "/tmp/xarch-uv-cache-" + mode  # never one cache for both
    env["UV_PYTHON_DOWNLOADS"] = "never"
    env["UV_OFFLINE"] = "1"
    env["UV_NO_PROGRESS"] = "1"
    t0 = time.monotonic()
    r = subprocess.run(
        ["uv", *args], env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    seconds = time.monotonic() - t0
    text = r.stdout.decode("utf-8", "replace")
    if r.returncode != 0:
        raise SystemExit(f"uv {' '.join(args)} (XARCH_NATIVE_TOOLS={mode}) failed:\n{text}")
    return text, seconds


def tree(root: str) -> dict[str, str]:
    files = {}
    for d, _, fs in os.walk(root):
        for f in fs:
            p = os.path.join(d, f)
            rel = os.path.relpath(p, root)
            if os.path.islink(p):
                files[rel] = "link:" + os.readlink(p)
            elif rel.endswith(".pyc") or "__pycache__" in rel:
                continue
            else:
                with open(p, "rb") as fh:
                    files[rel] = hashlib.sha256(fh.read()).hexdigest()
    return files


def installed(venv: str) -> dict[str, str]:
    """name -> version of the probe packages in a venv (their dist-info directories)."""
    site = sysconfig.get_path("purelib", vars={"base": venv, "platbase": venv})
    out = {}
    for d in os.listdir(site):
        if d.endswith(".dist-info"):
            name, version = d[: -len(".dist-info")].rsplit("-", 1)
            if name in names:
                out[name] = version
    return out


for mode in ("1", "0"):
    # Both sides make their venv at the same path (the path is written into it), then
    # it moves aside for the next.
    side = "native" if mode == "1" else "emulated"
    venv = "/tmp/xarch-uv-venv"
    version, _t = uv(mode, "--version")
    _out, t_venv = uv(mode, "venv", "--quiet", "--python", sys.executable, venv)
    _out, t_install = uv(
        mode, "pip", "install", "--quiet", "--python", venv + "/bin/python",
        "--no-index", "--find-links", wheels, *names,
    )  # fmt: skip
    result[side] = {
        "version": version.strip(),
        "installed": installed(venv),
        "files": tree(venv),
    }
    os.rename(venv, venv + "-" + mode)
    result["steps"][side] = {"venv": round(t_venv, 2), "install": round(t_install, 2)}
    log(f"{side}: {version.strip()}, venv {t_venv:.2f} s, install {t_install:.2f} s")

# Negative control: the same install, told to take an x86_64 platform, must come out
# different, or the comparison could not see a wrong platform at all.
control = "/tmp/xarch-uv-venv-control"
uv("1", "venv", "--quiet", "--python", sys.executable, control)
uv(
    "1", "pip", "install", "--quiet", "--python", control + "/bin/python",
    "--python-platform", "x86_64-manylinux_2_17", "--no-index", "--find-links", wheels, *names,
)  # fmt: skip
result["control"] = {"installed": installed(control)}

# uv drives a real build: the C extension's wheel, built by the native uv with the
# image's own compiler, in the native side's venv (which holds setuptools from the set:
# no isolation, nothing to download).
ext = os.path.join(probe_dir, "ext")
dist = os.path.join(out_dir, "dist")
_out, t_build = uv(
    "1", "build", "--wheel", "--no-build-isolation", "--python",
    "/tmp/xarch-uv-venv-1/bin/python", "--out-dir", dist, ext,
)  # fmt: skip
[whl] = [f for f in os.listdir(dist) if f.endswith(".whl")]
with zipfile.ZipFile(os.path.join(dist, whl)) as z:
    wheel_file = next(n for n in z.namelist() if n.endswith(".dist-info/WHEEL"))
    wheel_tags = [
        ln.split(":", 1)[1].strip()
        for ln in z.read(wheel_file).decode().splitlines()
        if ln.startswith("Tag:")
    ]
    elf = {
        n: int.from_bytes(z.read(n)[18:20], "little" if z.read(n)[5] == 1 else "big")
        for n in z.namelist()
        if n.endswith(".so")
    }
# ... and installed by the native uv, then imported and called by the emulated Python.
uv("1", "pip", "install", "--quiet", "--python", "/tmp/xarch-uv-venv-1/bin/python",
   "--no-index", os.path.join(dist, whl))  # fmt: skip
call = subprocess.run(
    ["/tmp/xarch-uv-venv-1/bin/python", "-c", "import xarch_uv_probe as m; print(m.answer())"],
    stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
)  # fmt: skip
result["build"] = {
    "wheel": whl,
    "tags": wheel_tags,
    "elf_machine": elf,
    "call": call.stdout.decode("utf-8", "replace").strip(),
    "seconds": round(t_build, 2),
}
log(f"uv build: {whl} in {t_build:.2f} s")
with open(os.path.join(out_dir, "uv-probe.json"), "w") as fh:
    json.dump(result, fh, indent=1, sort_keys=True)
