#!/bin/sh
# xarch: put the native x86_64 uv under /opt/xarch/native/uv in place of the image's
# own uv. Runs once, at image build time, under emulation.
#
#   setup-uv.sh     (the version expected is in uv/VERSION beside it, read from the base)
#
# The uv on PATH (as cibuildwheel finds it: `which uv`) is replaced by the static hook,
# the original kept as <path>.xarch-emulated (XARCH_NATIVE_TOOLS=0 runs it). Refuses
# (exit 2, nothing changed) when the base's uv is not VERSION or the native one is not.
set -eu
P=/opt/xarch/native
fail() {
    echo "xarch native uv: $*" >&2
    exit 2
}
WANT=$(cat "$P/uv/VERSION")
UV=$(command -v uv) || fail "the base has no uv on PATH: there is nothing to replace"
real=$(readlink -f "$UV")
version() { "$@" --version </dev/null | sed -n 's/^uv \([0-9][0-9.]*\).*/\1/p'; }
HAVE=$(version "$real")
[ "$HAVE" = "$WANT" ] || fail "the base's uv is $HAVE ($real) but the native one is $WANT"
NATIVE=$(version "$P/uv/uv")
[ "$NATIVE" = "$WANT" ] || fail "the native uv says $NATIVE, not $WANT"
[ ! -e "$real.xarch-emulated" ] || fail "$real is already hooked"
echo "+ hook $real -> $P/uv/uv"
mv "$real" "$real.xarch-emulated"
cp "$P/bin/xarch-hook" "$real"
chmod 0755 "$real"
mkdir -p "$P/hooks$(dirname "$real")"
{
    echo "# written by xarch setup-uv.sh"
    echo "native=$P/uv/uv"
    echo "emulated=$real.xarch-emulated"
} >"$P/hooks$real.conf"
