#!/bin/sh
# Runs inside the freshly bootstrapped Debian root (under emulation) to give it the
# manylinux layout cibuildwheel relies on. xarch STAND-IN, not manylinux.
set -eu
chmod 0755 /usr/local/bin/manylinux-entrypoint
tag=$(python3 -c 'import sys; print("cp%d%d" % sys.version_info[:2])')
# A venv with the system site-packages keeps Debian's pip and build available
# while allowing installs (Debian marks its system Python EXTERNALLY-MANAGED).
python3 -m venv --system-site-packages "/opt/python/$tag-$tag"
echo "xarch stand-in for manylinux2014: Debian $(cat /etc/debian_version), /opt/python/$tag-$tag" \
  > /etc/xarch-standin
