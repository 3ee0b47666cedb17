#!/bin/sh
# mmdebstrap customize hook (xarch): undo host-dpkg-deb-extract.sh. Runs before the
# eatmydata hook undoes its dpkg diversion, so the chroot's dpkg database ends exactly
# as a bootstrap without this hook leaves it.
set -eu
root=$1
for tool in dpkg-split dpkg-deb; do
  rm "$root/usr/bin/$tool"
  chroot "$root" dpkg-divert --local --rename --remove "/usr/bin/$tool" >/dev/null
done
rm -rf "$root/tmp/.xarch-host-deb"
