#!/bin/sh
# mmdebstrap extract hook (xarch): while the stand-in is bootstrapped, the chroot's
# dpkg runs emulated but hands every .deb to the HOST's dpkg-deb and dpkg-split, which
# run natively. dpkg calls them once or twice per package (split check, control files,
# data stream); emulated, those calls cost about a third of the bootstrap. dpkg-deb
# only decodes the .deb (`--fsys-tarfile` is the decompressed data.tar, byte for byte;
# `--control` unpacks with the chroot's own tar): the chroot's dpkg still writes every
# file and runs every maintainer script. The customize hook puts the chroot's own tools
# back; xarch then checks every installed file against its package's md5sums.
#
# $1: the chroot. $XARCH_HOST_DEB: a directory with the host's dpkg-deb and dpkg-split,
# the shared libraries and dynamic loader they need, and a static busybox (`sh` for
# the two-line wrappers, so no emulated shell starts either).
set -eu
root=$1
stage=${XARCH_HOST_DEB:?XARCH_HOST_DEB is not set}
dir=/tmp/.xarch-host-deb
mkdir -p "$root$dir"
cp -p "$stage"/* "$root$dir/"
loader=$(cat "$stage/.loader")
for tool in dpkg-deb dpkg-split; do
  # A diversion, as mmdebstrap's eatmydata hook does for dpkg: unpacking the dpkg
  # package then writes its tools to *.distrib, not over the wrappers.
  mv "$root/usr/bin/$tool" "$root/usr/bin/$tool.distrib"
  printf '/usr/bin/%s\n/usr/bin/%s.distrib\n:\n' "$tool" "$tool" >>"$root/var/lib/dpkg/diversions"
  cat >"$root/usr/bin/$tool" <<END
#!$dir/busybox sh
exec $dir/$loader --library-path $dir $dir/$tool "\$@"
END
  chmod 0755 "$root/usr/bin/$tool"
done
