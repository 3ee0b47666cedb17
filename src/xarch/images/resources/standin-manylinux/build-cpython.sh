#!/bin/sh
# xarch STAND-IN: CPython 3.9 for /opt/python/cp39-cp39, cross-compiled on the HOST
# (natively) into the new root filesystem $1, which is also the sysroot: its headers,
# its libraries and its own gcc's crtbegin.o and libgcc. Run by mmdebstrap as a customize
# hook, before setup-built-python.sh installs pip and build into it (in the chroot).
# See xarch/images/standin/interpreters.py for why it is not built under emulation.
#
# XARCH_CPYTHON_SOURCE  the pinned source tarball (checked by sha256 already)
# XARCH_BUILD_PYTHON    bin/ of the native CPython of the same version (python3.9)
# XARCH_CROSS_TREE      Debian's x86_64 cross gcc and binutils, unpacked (not installed)
# XARCH_TRIPLET, XARCH_GCC_MAJOR, XARCH_PREFIX, XARCH_WORK (scratch; the caller removes it)
set -eu
root=$(cd "$1" && pwd)
t=$XARCH_TRIPLET
x=$XARCH_CROSS_TREE
w=$XARCH_WORK
mkdir -p "$w/bin" "$w/lib" "$w/build"
log=$w/build.log
: >"$log"
fail() {
  echo "E: building CPython for $XARCH_PREFIX failed ($1); the end of its log ($log):" >&2
  tail -n 25 "$log" | sed 's/^/E:   /' >&2
  exit 1
}

# The cross tools run with their own libraries (libbfd, libisl, ...) from the tree. Where
# the tree carries its own C library (trixie's tools need glibc 2.38, more than a bookworm
# host has), every tool runs through the tree's dynamic loader instead, and the driver
# finds wrappers for its leaves (cc1, as, collect2, ld) first (-B).
libs=$x/usr/lib/x86_64-linux-gnu
loader=$libs/ld-linux-x86-64.so.2
wrap() {  # wrap <wrapper> <real tool>
  if [ -e "$loader" ]; then
    printf '#!/bin/sh\nexec %s --library-path %s %s "$@"\n' "$loader" "$libs" "$2" >"$1"
  else
    printf '#!/bin/sh\nLD_LIBRARY_PATH=%s exec %s "$@"\n' "$libs" "$2" >"$1"
  fi
}
for tool in ar ranlib readelf strip; do
  wrap "$w/bin/$t-$tool" "$x/usr/bin/$t-$tool"
done
# gcc 14 moved cc1 and collect2 from lib/ to libexec/gcc-cross/.
leafdir=$x/usr/lib/gcc-cross/$t/$XARCH_GCC_MAJOR
[ -e "$x/usr/libexec/gcc-cross/$t/$XARCH_GCC_MAJOR/cc1" ] && leafdir=$x/usr/libexec/gcc-cross/$t/$XARCH_GCC_MAJOR
mkdir -p "$w/leaves"
for leaf in cc1 collect2; do wrap "$w/leaves/$leaf" "$leafdir/$leaf"; done
for leaf in as ld; do wrap "$w/leaves/$leaf" "$x/usr/bin/$t-$leaf"; done
chmod +x "$w/leaves"/*
# Packages ship absolute symlinks (libm.so -> /lib/<triplet>/libm.so.6) and linker
# scripts with absolute paths (libc.so): resolved on the host they point at the host's
# files. A directory searched first holds the same names resolved inside the root, and
# libc.so with sysroot-relative (=) paths; DT_NEEDED comes from each library's SONAME,
# so what is linked is unchanged.
for d in "$root/usr/lib/$t" "$root/usr/lib"; do
  for f in "$d"/*.so; do
    [ -L "$f" ] || continue
    target=$(readlink "$f")
    case $target in /*) [ -e "$w/lib/${f##*/}" ] || ln -s "$root$target" "$w/lib/${f##*/}" ;; esac
  done
done
rm -f "$w/lib/libc.so"
script=$(cat "$root/usr/lib/$t/libc.so")
for path in $(printf '%s\n' "$script" | grep -o ' /[^ )]*' | sort -u); do
  # the dynamic loader's path (/lib64/ld64.so.2) is often itself an absolute symlink
  if [ -L "$root$path" ]; then
    case $(readlink "$root$path") in /*) script=$(printf '%s\n' "$script" | sed "s# $path# $(readlink "$root$path")#g") ;; esac
  fi
done
printf '%s\n' "$script" | sed 's#\([ (]\)/#\1=/#g' >"$w/lib/libc.so"
# The driver: the tree's cc1 and as first, then the root's own gcc directory for the
# startup files and libgcc (the same gcc version as the root's) and gcc's headers.
gccdir=$root/usr/lib/gcc/$t/$XARCH_GCC_MAJOR
if [ -e "$loader" ]; then driver="$loader --library-path $libs"; else driver="env LD_LIBRARY_PATH=$libs"; fi
# gcc 14 made implicit function declarations errors. CPython 3.9.2's source compiles
# without it, but one configure check (pthread_create in -lpthread) calls exit() without
# <stdlib.h>, so under gcc 14 it fails and LIBS loses -lpthread (pyconfig.h is the same
# either way: compared on riscv64). The flag keeps configure's answers those of the gcc
# it was written for. It lives in this wrapper only, not in CFLAGS: sysconfig does not
# record it, so extensions built later with this interpreter meet gcc 14 as it is.
cflags=
[ "$XARCH_GCC_MAJOR" -ge 14 ] && cflags=-Wno-error=implicit-function-declaration
cat >"$w/bin/$t-gcc" <<EOT
#!/bin/sh
exec $driver $x/usr/bin/$t-gcc-$XARCH_GCC_MAJOR --sysroot=$root \
  -B$w/leaves/ -B$leafdir/ -B$x/usr/bin/$t- -B$gccdir/ \
  -isystem $gccdir/include -L$w/lib $cflags "\$@"
EOT
chmod +x "$w/bin"/*
ln -sf "$XARCH_BUILD_PYTHON/python3.9" "$w/bin/python3.9"
# What configure cannot find out without running target programs.
printf 'ac_cv_file__dev_ptmx=yes\nac_cv_file__dev_ptc=no\n' >"$w/config.site"

echo "I: xarch: extracting $(basename "$XARCH_CPYTHON_SOURCE")"
tar -xJf "$XARCH_CPYTHON_SOURCE" -C "$w/build" --strip-components=1 || fail "extract"
cd "$w/build"
export PATH="$w/bin:$PATH" CONFIG_SITE="$w/config.site"
echo "I: xarch: configure --host=$t --prefix=$XARCH_PREFIX (native cross compiler)"
./configure --host="$t" --build=x86_64-pc-linux-gnu --prefix="$XARCH_PREFIX" \
  --enable-ipv6 --without-ensurepip >>"$log" 2>&1 || fail configure
echo "I: xarch: make -j$(nproc)"
make -j"$(nproc)" >>"$log" 2>&1 || fail make
# Optional modules a manylinux interpreter has: a build that skipped one is a failure
# (but _tkinter, which needs X, and nis, whose NIS client glibc 2.32 dropped).
missing=$(sed -n '/necessary bits to build these optional modules were not found/,/^To find/p;/Failed to build these modules/,/^$/p' "$log" |
  grep -v -e 'necessary bits' -e '^To find' -e 'Failed to build' | tr -s ' \n' ' ' | sed 's/ *$//')
for m in $missing; do
  case $m in _tkinter | nis) ;; *) fail "module $m was not built" ;; esac
done
echo "I: xarch: make install DESTDIR=<root> (byte-compiled by the native build Python)"
make install DESTDIR="$root" >>"$log" 2>&1 || fail "make install"
# As manylinux does: no debug symbols in what every wheel build loads.
find "$root$XARCH_PREFIX" -name '*.so' -exec "$w/bin/$t-strip" --strip-unneeded {} + >>"$log" 2>&1
"$w/bin/$t-strip" --strip-unneeded "$root$XARCH_PREFIX/bin/python3.9" >>"$log" 2>&1
find "$root$XARCH_PREFIX/lib" -name 'libpython3.9.a' -exec "$w/bin/$t-strip" --strip-debug {} + >>"$log" 2>&1
ln -sf python3.9 "$root$XARCH_PREFIX/bin/python"
ln -sf python3.9 "$root$XARCH_PREFIX/bin/python3"
echo "I: xarch: CPython $("$XARCH_BUILD_PYTHON/python3.9" -c 'import sys; print(sys.version.split()[0])') installed at $XARCH_PREFIX"
