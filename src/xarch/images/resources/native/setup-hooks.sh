#!/bin/sh
# xarch: hook the heavy leaves of this image's own toolchain onto the native x86_64
# toolchain under /opt/xarch/native. Runs once, at image build time, under emulation.
#
#   setup-hooks.sh TRIPLET GCC_VERSION BINUTILS_VERSION LEAF...
#
# LEAF is cc1, cc1plus, as or ld. The image's gcc/g++/cc/c++ drivers, specs, -dumpmachine
# and include order stay untouched: each hooked leaf is replaced by the static hook,
# the original kept as LEAF.xarch-emulated, and the hook's configuration repeats the
# image's own include search list (read from the emulated drivers here) so the native
# leaf searches exactly the same directories in the same order.
#
# Refuses (exit 2, nothing changed) when the image's compiler or assembler is not the
# version the native toolchain is.
set -eu

P=/opt/xarch/native
fail() {
    echo "xarch native toolchain: $*" >&2
    exit 2
}
[ $# -ge 4 ] || fail "usage: setup-hooks.sh TRIPLET GCC_VERSION BINUTILS_VERSION LEAF..."
TRIPLET=$1
GCC_WANT=$2
BINUTILS_WANT=$3
shift 3

command -v gcc >/dev/null 2>&1 || fail "the base has no gcc: there is nothing to accelerate; set accelerate.enabled: false for this target"
GCC_HAVE=$(gcc -dumpfullversion 2>/dev/null || gcc -dumpversion)
[ "$GCC_HAVE" = "$GCC_WANT" ] || fail "the base's gcc is $GCC_HAVE (gcc -dumpfullversion) but the native toolchain is gcc $GCC_WANT: refusing to accelerate; pin a toolchain of gcc $GCC_HAVE or set accelerate.enabled: false"
MACHINE=$(gcc -dumpmachine)
[ "$MACHINE" = "$TRIPLET" ] || fail "the base's gcc targets $MACHINE (gcc -dumpmachine) but the native toolchain targets $TRIPLET: refusing to accelerate"
AS_PATH=$(gcc -print-prog-name=as)
AS_LINE=$("$AS_PATH" --version </dev/null | head -n 1)
BINUTILS_HAVE=${AS_LINE##* }
[ "$BINUTILS_HAVE" = "$BINUTILS_WANT" ] || fail "the base's assembler is binutils $BINUTILS_HAVE ($AS_LINE) but the native toolchain is binutils $BINUTILS_WANT: refusing to accelerate"
MAJOR=${GCC_WANT%%.*}

# The search list of `#include <...>` as the emulated driver shows it, one per line.
search_list() {
    "$@" -v -E - </dev/null 2>&1 >/dev/null \
        | sed -n '/^#include <\.\.\.> search starts here:$/,/^End of search list\.$/s/^ //p'
}
C_DIRS=$(search_list gcc -x c)
# The text each compiler's `.ident` line quotes ("GCC: (Debian 12.2.0-14+deb12u1) 12.2.0"):
# the image's (its own cc1, not hooked yet) and the native cc1's. Debian's cross
# packages may carry another version suffix; then the hook gives the native output the
# image's text, so objects are the same bytes, .comment included (the probe checks).
ident_of() {
    "$@" </dev/null 2>/dev/null | sed -n 's/^\t\.ident\t"\(.*\)"$/\1/p' | head -n 1
}
IDENT_IMAGE=$(ident_of gcc -S -x c - -o -)
IDENT_NATIVE=$(ident_of "$P/lib/gcc-cross/$TRIPLET/$MAJOR/cc1" -quiet - -o -)
[ -n "$IDENT_IMAGE" ] || fail "gcc -S printed no .ident line"
[ -n "$IDENT_NATIVE" ] || fail "the native cc1 printed no .ident line"
[ "$IDENT_IMAGE" = "$IDENT_NATIVE" ] || echo "+ .ident: '$IDENT_NATIVE' becomes '$IDENT_IMAGE'"
CXX_DIRS=$(search_list g++ -x c++)
[ -n "$C_DIRS" ] || fail "gcc -v -E printed no include search list"

write_conf() { # CONF NATIVE EMULATED KIND
    mkdir -p "$(dirname "$1")"
    {
        echo "# written by xarch setup-hooks.sh from the emulated driver's search list"
        echo "native=$2"
        echo "emulated=$3"
        echo "emulate-if=-fplugin"
        echo "emulate-if=-isysroot"
        case $4 in c | c++)
            # The image's gcc writes LTO bytecode compressed with zstd, Debian's cross
            # cc1 (built without zstd) with zlib: the image's lto1 refuses the latter
            # ("original not compressed with zstd"). LTO compiles stay emulated.
            echo "emulate-if=-flto"
            ;;
        esac
        case $4 in c | c++)
            if [ "$IDENT_IMAGE" != "$IDENT_NATIVE" ]; then
                echo "ident-native=$IDENT_NATIVE"
                echo "ident-image=$IDENT_IMAGE"
            fi
            ;;
        esac
        case $4 in
        c)
            echo nostdinc
            printf '%s\n' "$C_DIRS" | sed 's/^/sys=/'
            ;;
        ld)
            # the image's target LTO plugin cannot load into a native ld: the cross one can
            echo "replace=/usr/lib/gcc/$TRIPLET/$MAJOR/liblto_plugin.so=$P/lib/gcc-cross/$TRIPLET/$MAJOR/liblto_plugin.so"
            ;;
        c++)
            echo nostdinc
            printf '%s\n' "$CXX_DIRS" | while IFS= read -r d; do
                if printf '%s\n' "$C_DIRS" | grep -qxF -- "$d"; then
                    echo "sys=$d"
                else
                    echo "cxx=$d"
                fi
            done
            ;;
        esac
    } >"$1"
}

hook() { # LEAF_PATH NATIVE_PATH KIND
    real=$(readlink -f "$1")
    [ -f "$real" ] || fail "the base has no $1 to hook"
    [ -x "$2" ] || fail "the native toolchain lacks $2"
    [ ! -e "$real.xarch-emulated" ] || fail "$real is already hooked"
    echo "+ hook $real -> $2"
    mv "$real" "$real.xarch-emulated"
    cp "$P/bin/xarch-hook" "$real"
    chmod 0755 "$real"
    write_conf "$P/hooks$real.conf" "$2" "$real.xarch-emulated" "$3"
}

for leaf in "$@"; do
    case $leaf in
    # The driver's own answer: /usr/lib/gcc/... up to gcc 13, /usr/libexec/gcc/... in
    # Debian's gcc 14 (trixie).
    cc1) hook "$(gcc -print-prog-name=cc1)" "$P/lib/gcc-cross/$TRIPLET/$MAJOR/cc1" c ;;
    cc1plus) hook "$(gcc -print-prog-name=cc1plus)" "$P/lib/gcc-cross/$TRIPLET/$MAJOR/cc1plus" c++ ;;
    as) hook "$(command -v "$AS_PATH")" "$P/bin/$TRIPLET-as" none ;;
    ld) hook "$(command -v "$(gcc -print-prog-name=ld)")" "$P/bin/$TRIPLET-ld.bfd" ld ;;
    *) fail "unknown leaf $leaf (cc1, cc1plus, as, ld)" ;;
    esac
done
