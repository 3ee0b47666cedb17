#!/bin/sh
# xarch native-compiler equivalence probe. Runs inside the image (under emulation):
# compiles the corpus in DIR with the emulated leaves (XARCH_NATIVE_TOOLS=0) and with
# the native ones (=1), into DIR/out/emulated and DIR/out/native, for the host-side
# comparison (xarch.images.native_probe.compare_trees). Never compares itself.
#
#   probe.sh DIR
#
# Per source and flag set: NAME.TAG.s (-S), NAME.TAG.o (-c), NAME.TAG.nc.o (the object
# with .comment removed), NAME.TAG.rc (the compiler's exit codes) and, for programs,
# NAME.TAG.nc.bin (the linked program, no build-id, .comment removed) and NAME.TAG.out
# (what it printed). TAG: O0, O2, O3g (-O3 -g), each -nopic/-pic, and O2lto-nopic
# (-O2 -flto) for the LZSS program. Plus search-c.txt and search-c++.txt, the include
# search lists the drivers report.
set -u
DIR=$1
# The image's CPython for Python.h: python3, else the first /usr/bin/python3.N (a
# stand-in may carry only python3.11), else a manylinux /opt/python interpreter.
PY=$(command -v python3 || ls /usr/bin/python3.[0-9]* /opt/python/cp3*/bin/python 2>/dev/null | head -n 1)
PYINC=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])') || {
    echo "xarch probe: no CPython with Python.h in this image (tried python3, /usr/bin/python3.N, /opt/python)" >&2
    exit 1
}
OBJCOPY=$(command -v objcopy || true)

search_list() {
    "$@" -v -E - </dev/null 2>&1 >/dev/null \
        | sed -n '/^#include <\.\.\.> search starts here:$/,/^End of search list\.$/p'
}

build() { # MODE DRIVER NAME SRC LINK(yes/no) EXTRA_CFLAGS
    mode=$1 drv=$2 name=$3 src=$4 link=$5 extra=$6
    out=$DIR/out/$mode
    for opt in O0 O2 O3g; do
        case $opt in
        O0) flags="-O0" ;;
        O2) flags="-O2" ;;
        O3g) flags="-O3 -g" ;;
        # gcc names LTO sections with a random suffix unless seeded (in any mode)
        O2lto) flags="-O2 -flto -frandom-seed=xarch-probe" ;;
        esac
        for pic in $PICS; do
            f=$flags
            [ $pic = pic ] && f="$f -fPIC"
            tag=$opt-$pic
            # shellcheck disable=SC2086
            # The object is assembled from the compiler's own .s by the driver, as
            # `gcc -c` does after cc1 (one compile per flag set, not two: the probe's
            # time is the emulated side's). No -g there: with a .s input the driver
            # would add --gdwarf to as, which `gcc -c file.c` never does.
            {
                $drv $f $extra -S "$DIR/$src" -o "$out/$name.$tag.s" 2>"$out/$name.$tag.err"
                echo "S $?"
                $drv -c "$out/$name.$tag.s" -o "$out/$name.$tag.o" 2>>"$out/$name.$tag.err"
                echo "C $?"
            } >"$out/$name.$tag.rc"
            if [ -n "$OBJCOPY" ] && [ -f "$out/$name.$tag.o" ]; then
                "$OBJCOPY" --remove-section .comment "$out/$name.$tag.o" "$out/$name.$tag.nc.o"
            fi
            if [ "$link" = yes ] && [ -f "$out/$name.$tag.o" ]; then
                # The linked program is compared too (a hooked ld must write the same
                # bytes): without a build-id (a hash that covers .comment) and, like the
                # objects, with .comment removed.
                $drv $f -Wl,--build-id=none "$out/$name.$tag.o" -o "$out/$name.$tag.bin" \
                    2>>"$out/$name.$tag.err" && "$out/$name.$tag.bin" >"$out/$name.$tag.out" 2>&1
                echo "L $?" >>"$out/$name.$tag.rc"
                if [ -n "$OBJCOPY" ] && [ -f "$out/$name.$tag.bin" ]; then
                    "$OBJCOPY" --remove-section .comment "$out/$name.$tag.bin" "$out/$name.$tag.nc.bin"
                fi
            fi
        done
    done
}

# One flag set, -O2 -flto (seeded: gcc names LTO sections with a random suffix).
build_lto() { # MODE DRIVER NAME SRC
    mode=$1 drv=$2 name=$3 src=$4
    out=$DIR/out/$mode
    f="-O2 -flto -frandom-seed=xarch-probe"
    tag=O2lto-nopic
    # shellcheck disable=SC2086
    {
        $drv $f -S "$DIR/$src" -o "$out/$name.$tag.s" 2>"$out/$name.$tag.err"
        echo "S $?"
        $drv $f -c "$DIR/$src" -o "$out/$name.$tag.o" 2>>"$out/$name.$tag.err"
        echo "C $?"
    } >"$out/$name.$tag.rc"
    if [ -n "$OBJCOPY" ] && [ -f "$out/$name.$tag.o" ]; then
        "$OBJCOPY" --remove-section .comment "$out/$name.$tag.o" "$out/$name.$tag.nc.o"
        $drv $f -Wl,--build-id=none "$out/$name.$tag.o" -o "$out/$name.$tag.bin" \
            2>>"$out/$name.$tag.err" && "$out/$name.$tag.bin" >"$out/$name.$tag.out" 2>&1
        echo "L $?" >>"$out/$name.$tag.rc"
        [ -f "$out/$name.$tag.bin" ] &&
            "$OBJCOPY" --remove-section .comment "$out/$name.$tag.bin" "$out/$name.$tag.nc.bin"
    fi
}

# Runs a step and says how long it took (the probe is minutes under emulation).
step() {
    t0=$(date +%s)
    "$@"
    echo "xarch probe: $2 $4 $(($(date +%s) - t0)) s"
}

for mode in emulated native; do
    XARCH_NATIVE_TOOLS=0
    [ $mode = native ] && XARCH_NATIVE_TOOLS=1
    export XARCH_NATIVE_TOOLS
    # A failure here (say, the binfmt handler vanished: "Exec format error") must fail
    # the probe, not leave a half-empty side for the comparison.
    rm -rf "$DIR/out/$mode" || exit 1
    mkdir -p "$DIR/out/$mode" || exit 1
    # The same working directory both ways: -g records it (DW_AT_comp_dir).
    cd "$DIR" || exit 1
    search_list gcc -x c >"$DIR/out/$mode/search-c.txt"
    search_list g++ -x c++ >"$DIR/out/$mode/search-c++.txt"
    PICS="nopic pic"
    step build $mode gcc generated generated_main.c yes ""
    step build $mode g++ cxx_features cxx_features.cpp yes ""
    step build $mode gcc lzss lzss.c yes ""
    step build $mode gcc pyext_module pyext_module.c no "-I$PYINC -fwrapv"
    # -flto compiles stay emulated (the hook's emulate-if): one program proves that.
    PICS=nopic
    step build_lto $mode gcc lzss lzss.c
done
echo "xarch probe: outputs in $DIR/out"
