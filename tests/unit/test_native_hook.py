"""The native-leaf hook (resources/native/hook.c), compiled for real with the host's
``gcc -static`` (its configuration root moved into tmp_path) and run in front of two
stand-in leaves: shell scripts that print the arguments they were given."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from xarch.images.resources import resource_text

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs the host's gcc")


@pytest.fixture(scope="module")
def hook_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(hooks dir, hook binary); the binary is compiled once per test module."""
    root = tmp_path_factory.mktemp("hook")
    confs = root / "hooks"
    confs.mkdir()
    src = root / "hook.c"
    src.write_text(resource_text("native/hook.c"))
    binary = root / "xarch-hook"
    done = subprocess.run(
        ["gcc", "-static", "-O2", f'-DCONF_ROOT="{confs}"', "-o", str(binary), str(src)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"gcc -static failed (no static libc?): {done.stderr[-300:]}")
    return confs, binary


def leaf(path: Path, label: str) -> Path:
    path.write_text(f'#!/bin/sh\necho {label} "$@"\n')
    path.chmod(0o755)
    return path


@pytest.fixture
def hooked(hook_build: tuple[Path, Path], tmp_path: Path) -> Path:
    """A hooked cc1 in tmp_path, with its configuration; returns the hook's path."""
    confs, binary = hook_build
    cc1 = tmp_path / "cc1"
    shutil.copy(binary, cc1)
    native = leaf(tmp_path / "native-cc1", "NATIVE")
    emulated = leaf(tmp_path / "cc1.xarch-emulated", "EMULATED")
    conf = confs / f"{cc1.resolve().relative_to('/')}.conf"
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(
        f"# test\nnative={native}\nemulated={emulated}\nemulate-if=-fplugin\nnostdinc\n"
        "cxx=/usr/include/c++/10\nsys=/usr/lib/gcc/x/10/include\nsys=/usr/include\n"
    )
    return cc1


def run(hook: Path, *args: str, mode: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "XARCH_NATIVE_TOOLS"}
    if mode is not None:
        env["XARCH_NATIVE_TOOLS"] = mode
    return subprocess.run([str(hook), *args], capture_output=True, text=True, env=env, check=False)


@pytest.mark.parametrize("mode", [None, "1"])
def test_native_by_default_with_the_images_search_list(hooked: Path, mode: str | None) -> None:
    r = run(hooked, "-quiet", "a.c", "-o", "a.s", mode=mode)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [
        "NATIVE", "-quiet", "a.c", "-o", "a.s", "-nostdinc",
        "-isystem", "/usr/include/c++/10",
        "-isystem", "/usr/lib/gcc/x/10/include",
        "-isystem", "/usr/include",
    ]  # fmt: skip


def test_zero_runs_the_emulated_leaf_with_the_arguments_unchanged(hooked: Path) -> None:
    r = run(hooked, "-quiet", "a.c", mode="0")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["EMULATED", "-quiet", "a.c"]


@pytest.mark.parametrize("value", ["2", "yes", "", "true", "01"])
def test_any_other_value_is_an_error_naming_the_variable(hooked: Path, value: str) -> None:
    r = run(hooked, "a.c", mode=value)
    assert r.returncode == 2
    assert r.stdout == ""
    assert f"XARCH_NATIVE_TOOLS={value} is not an allowed value" in r.stderr
    assert "use 1" in r.stderr and "or 0" in r.stderr


def test_user_nostdinc_keeps_every_standard_directory_out(hooked: Path) -> None:
    r = run(hooked, "-nostdinc", "a.c")
    assert r.stdout.split() == ["NATIVE", "-nostdinc", "a.c"]


def test_user_nostdinc_plus_plus_drops_only_the_cxx_directories(hooked: Path) -> None:
    r = run(hooked, "-nostdinc++", "a.c")
    assert r.stdout.split() == [
        "NATIVE", "-nostdinc++", "a.c", "-nostdinc",
        "-isystem", "/usr/lib/gcc/x/10/include", "-isystem", "/usr/include",
    ]  # fmt: skip


def test_a_target_plugin_goes_to_the_emulated_leaf(hooked: Path) -> None:
    r = run(hooked, "-fplugin=/usr/lib/gcc/x/10/plugin/foo.so", "a.c")
    assert r.stdout.split()[0] == "EMULATED"


def test_replace_swaps_only_an_exactly_equal_argument(
    hook_build: tuple[Path, Path], tmp_path: Path
) -> None:
    confs, binary = hook_build
    ld = tmp_path / "ld"
    shutil.copy(binary, ld)
    native = leaf(tmp_path / "native-ld", "NATIVE")
    conf = confs / f"{ld.resolve().relative_to('/')}.conf"
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(
        f"native={native}\nemulated=/nonexistent\n"
        "replace=/usr/lib/gcc/x/10/liblto_plugin.so=/opt/xarch/native/liblto_plugin.so\n"
    )
    r = run(
        ld, "-plugin", "/usr/lib/gcc/x/10/liblto_plugin.so", "/usr/lib/gcc/x/10/liblto_plugin.so.0"
    )
    assert r.stdout.split() == [
        "NATIVE", "-plugin", "/opt/xarch/native/liblto_plugin.so",
        "/usr/lib/gcc/x/10/liblto_plugin.so.0",
    ]  # fmt: skip


def test_a_missing_native_leaf_is_an_error_not_a_fallback(hooked: Path, tmp_path: Path) -> None:
    (tmp_path / "native-cc1").unlink()
    r = run(hooked, "a.c")
    assert r.returncode == 1
    assert "EMULATED" not in r.stdout
    assert f"cannot run the native leaf {tmp_path / 'native-cc1'}" in r.stderr
    assert "No such file or directory" in r.stderr


def test_a_crashing_native_leaf_fails_the_compile(hooked: Path, tmp_path: Path) -> None:
    (tmp_path / "native-cc1").write_text("#!/bin/sh\necho internal error >&2\nkill -SEGV $$\n")
    r = run(hooked, "a.c")
    assert r.returncode != 0
    assert "internal error" in r.stderr
    assert "EMULATED" not in r.stdout


def test_a_hook_without_configuration_says_which_file_it_read(
    hook_build: tuple[Path, Path], tmp_path: Path
) -> None:
    confs, binary = hook_build
    lone = tmp_path / "as"
    shutil.copy(binary, lone)
    r = run(lone, "x.s")
    assert r.returncode == 1
    assert f"cannot read its configuration {confs}{lone.resolve()}.conf" in r.stderr


# --- .ident: Debian's cross cc1 may name another package revision than the image's gcc.

NATIVE_IDENT = "GCC: (Debian 12.2.0-14) 12.2.0"
IMAGE_IDENT = "GCC: (Debian 12.2.0-14+deb12u1) 12.2.0"
# What a cc1 writes: its .ident, and lines that merely mention the text elsewhere.
ASM_OUT = (
    '\t.file\t"a.c"\n'
    '\t.string\t"GCC: (Debian 12.2.0-14) 12.2.0"\n'
    "\t.text\n"
    f'\t.ident\t"{NATIVE_IDENT}"\n'
    '\t.section\t.note.GNU-stack,"",@progbits\n'
)


@pytest.fixture
def ident_hooked(hook_build: tuple[Path, Path], tmp_path: Path) -> Path:
    confs, binary = hook_build
    cc1 = tmp_path / "cc1"
    shutil.copy(binary, cc1)
    native = tmp_path / "native-cc1"
    (tmp_path / "asm.txt").write_text(ASM_OUT)
    # writes its assembly to -o FILE, or to standard output for -o - (as with -pipe)
    native.write_text(
        '#!/bin/sh\nout=-\nwhile [ $# -gt 0 ]; do [ "$1" = -o ] && out=$2; shift; done\n'
        f'if [ "$out" = - ]; then cat {tmp_path}/asm.txt; else cat {tmp_path}/asm.txt >"$out"; fi\n'
    )
    native.chmod(0o755)
    leaf(tmp_path / "cc1.xarch-emulated", "EMULATED")
    conf = confs / f"{cc1.resolve().relative_to('/')}.conf"
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(
        f"native={native}\nemulated={tmp_path / 'cc1.xarch-emulated'}\n"
        f"ident-native={NATIVE_IDENT}\nident-image={IMAGE_IDENT}\n"
    )
    return cc1


def _expected() -> str:
    return ASM_OUT.replace(f'.ident\t"{NATIVE_IDENT}"', f'.ident\t"{IMAGE_IDENT}"')


def test_the_ident_line_of_an_output_file_becomes_the_images(
    ident_hooked: Path, tmp_path: Path
) -> None:
    out = tmp_path / "a.s"
    r = run(ident_hooked, "-quiet", "a.c", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert out.read_text() == _expected()  # only the .ident line changed
    assert not list(tmp_path.glob("*.xarch-ident"))


def test_the_ident_line_on_standard_output_becomes_the_images(ident_hooked: Path) -> None:
    r = run(ident_hooked, "-quiet", "a.c", "-o", "-")
    assert r.returncode == 0, r.stderr
    assert r.stdout == _expected()


def test_the_emulated_leaf_is_never_rewritten(ident_hooked: Path) -> None:
    r = run(ident_hooked, "a.c", "-o", "-", mode="0")
    assert r.stdout.split() == ["EMULATED", "a.c", "-o", "-"]


def test_a_failing_native_leaf_keeps_its_exit_code_when_rewriting(
    ident_hooked: Path, tmp_path: Path
) -> None:
    (tmp_path / "native-cc1").write_text("#!/bin/sh\necho 'a.c:1: error' >&2\nexit 1\n")
    r = run(ident_hooked, "a.c", "-o", str(tmp_path / "a.s"))
    assert r.returncode == 1
    assert "a.c:1: error" in r.stderr
